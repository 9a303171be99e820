package imgd_test

import (
	"testing"

	"github.com/imgd/imgd"
)

func TestParsePipelineText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		words []string
		json  string // the same pipeline in JSON form
	}{
		{[]string{"resize:w=300", "convert:webp"}, `[{"op":"resize","width":300},{"op":"convert","format":"webp"}]`},
		{[]string{"resize:300x200,fit=cover rotate:90"}, `[{"op":"resize","width":300,"height":200,"fit":"cover"},{"op":"rotate","angle":90}]`},
		{[]string{"resize:x64"}, `[{"op":"resize","height":64}]`},
		{[]string{"rotate:12.5,background=#ff0000"}, `[{"op":"rotate","angle":12.5,"background":"#ff0000"}]`},
		{[]string{"flip:vertical", "grayscale", "convert:format=jpeg,q=80,progressive=true"},
			`[{"op":"flip","direction":"vertical"},{"op":"grayscale"},{"op":"convert","format":"jpeg","quality":80,"progressive":true}]`},
		{[]string{"dither:method=atkinson,palette=pico8"}, `[{"op":"dither","method":"atkinson","palette":"pico8"}]`},
		{[]string{`[{"op":"resize","width":10}]`}, `[{"op":"resize","width":10}]`},
	} {
		got, err := imgd.ParsePipelineText(tc.words)
		if err != nil {
			t.Errorf("ParsePipelineText(%q): %v", tc.words, err)
			continue
		}
		want := imgd.MustParsePipeline(tc.json)
		if string(got.Canonical()) != string(want.Canonical()) {
			t.Errorf("ParsePipelineText(%q) = %s, want %s", tc.words, got.Canonical(), want.Canonical())
		}
	}
	for _, bad := range [][]string{nil, {""}, {":w=3"}, {"resize:300"}, {"resize:axb"}, {"resize:op=crop"}, {"blur:3"}, {"resize:w=abc"}} {
		if p, err := imgd.ParsePipelineText(bad); err == nil || imgd.CodeOf(err) != imgd.CodeInvalidArgument {
			t.Errorf("ParsePipelineText(%q) = %s, %v; want invalid_argument", bad, p.Canonical(), err)
		}
	}
}
