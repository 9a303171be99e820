package imgd_test

import (
	"errors"
	"testing"

	"github.com/imgd/imgd"
)

func TestCompressDefaults(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{`[{"op":"compress"}]`, `[{"format":"auto","op":"compress","quality":"high","strip":true}]`},
		{`[{"op":"compress","format":"JPG","quality":"Low"}]`, `[{"format":"jpeg","op":"compress","quality":"low","strip":true}]`},
		{`[{"op":"compress","format":"webp","target":{"ssim":0.99}}]`,
			`[{"format":"webp","op":"compress","strip":true,"target":{"ssim":0.99}}]`},
		// max_bytes alone: the best quality that fits, no named level.
		{`[{"op":"compress","max_bytes":50000}]`, `[{"format":"auto","max_bytes":50000,"op":"compress","strip":true}]`},
		{`[{"op":"compress","quality":"medium","max_bytes":50000,"strip":false}]`,
			`[{"format":"auto","max_bytes":50000,"op":"compress","quality":"medium","strip":false}]`},
		{`[{"op":"resize","width":10},{"op":"compress","format":"avif"}]`,
			`[{"enlarge":false,"fit":"inside","gravity":"centre","op":"resize","width":10},{"format":"avif","op":"compress","quality":"high","strip":true}]`},
	} {
		p, err := imgd.ParsePipeline([]byte(c.in))
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if got := string(p.Canonical()); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.in, got, c.want)
		}
		if p.Compression() == nil || p.Output() != nil {
			t.Errorf("%s: Compression() = %v, Output() = %v", c.in, p.Compression(), p.Output())
		}
	}
}

func TestCompressInvalid(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, field string }{
		{`[{"op":"compress","format":"tiff"}]`, "steps[0].format"},
		{`[{"op":"compress","format":"gif"}]`, "steps[0].format"},
		{`[{"op":"compress","quality":"best"}]`, "steps[0].quality"},
		{`[{"op":"compress","quality":80}]`, "steps[0].quality"},
		{`[{"op":"compress","quality":"high","target":{"ssim":0.9}}]`, "steps[0].quality"},
		{`[{"op":"compress","target":{"ssim":0}}]`, "steps[0].target.ssim"},
		{`[{"op":"compress","target":{"ssim":1.01}}]`, "steps[0].target.ssim"},
		{`[{"op":"compress","target":{"psnr":40}}]`, "steps[0].target"},
		{`[{"op":"compress","target":0.9}]`, "steps[0].target"},
		{`[{"op":"compress","max_bytes":-1}]`, "steps[0].max_bytes"},
		{`[{"op":"compress","lossless":true}]`, "steps[0].lossless"},
		{`[{"op":"compress"},{"op":"resize","width":10}]`, "steps[0].op"},
		{`[{"op":"compress"},{"op":"convert","format":"png"}]`, "steps[0].op"},
		{`[{"op":"convert","format":"png"},{"op":"compress"}]`, "steps[0].op"},
	} {
		_, err := imgd.ParsePipeline([]byte(c.in))
		var e *imgd.Error
		if !errors.As(err, &e) || e.Code != imgd.CodeInvalidArgument || e.Field != c.field {
			t.Errorf("%s: err = %v, want invalid_argument on %s", c.in, err, c.field)
		}
	}
}

// TestCompressCanonicalStable: the canonical form parses to itself, so
// equal requests share one hash.
func TestCompressCanonicalStable(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`[{"op":"compress","format":"jpg","target":{"ssim":0.985},"max_bytes":1000}]`,
		`[{"op":"compress","quality":"LOW"}]`,
	} {
		p := imgd.MustParsePipeline(in)
		again := imgd.MustParsePipeline(string(p.Canonical()))
		if p.Hash() != again.Hash() {
			t.Errorf("%s: canonical %s does not parse to the same pipeline (%s)", in, p.Canonical(), again.Canonical())
		}
	}
}
