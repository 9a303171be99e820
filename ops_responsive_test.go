package imgd_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/imgd/imgd"
)

func TestResponsiveCanonical(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{`[{"op":"responsive","widths":[1280,320,640,320],"formats":["AVIF","webp","avif","jpg"]}]`,
			`[{"enlarge":false,"formats":["avif","webp","jpeg"],"op":"responsive","quality":"high","widths":[320,640,1280]}]`},
		{`[{"op":"responsive","widths":[1],"formats":["auto"],"quality":"LOW","enlarge":true}]`,
			`[{"enlarge":true,"formats":["auto"],"op":"responsive","quality":"low","widths":[1]}]`},
		{`[{"op":"responsive","widths":[100000],"formats":["gif","png"],"target":{"ssim":0.99}}]`,
			`[{"enlarge":false,"formats":["gif","png"],"op":"responsive","target":{"ssim":0.99},"widths":[100000]}]`},
		{`[{"op":"crop","width":10,"height":10},{"op":"responsive","widths":[5],"formats":["webp"]}]`,
			`[{"height":10,"op":"crop","width":10,"x":0,"y":0},{"enlarge":false,"formats":["webp"],"op":"responsive","quality":"high","widths":[5]}]`},
	} {
		p, err := imgd.ParsePipeline([]byte(c.in))
		if err != nil {
			t.Errorf("ParsePipeline(%s): %v", c.in, err)
			continue
		}
		if got := string(p.Canonical()); got != c.want {
			t.Errorf("ParsePipeline(%s).Canonical() = %s, want %s", c.in, got, c.want)
		}
		// The canonical form parses to itself.
		if again := imgd.MustParsePipeline(string(p.Canonical())); string(again.Canonical()) != c.want {
			t.Errorf("canonical form %s is not stable: %s", c.want, again.Canonical())
		}
		if p.Responsive() == nil || p.Output() != nil || p.Compression() != nil {
			t.Errorf("%s: Responsive() = %v, Output() = %v, Compression() = %v; want only the responsive step",
				c.in, p.Responsive(), p.Output(), p.Compression())
		}
	}
}

func TestResponsiveInvalid(t *testing.T) {
	t.Parallel()
	widths17 := strings.TrimSuffix(strings.Repeat("1,", 17), ",")
	for _, c := range []struct{ name, in, field string }{
		{"no widths", `{"op":"responsive","formats":["webp"]}`, "steps[0].widths"},
		{"empty widths", `{"op":"responsive","widths":[],"formats":["webp"]}`, "steps[0].widths"},
		{"17 widths", `{"op":"responsive","widths":[` + widths17 + `],"formats":["webp"]}`, "steps[0].widths"},
		{"width 0", `{"op":"responsive","widths":[0],"formats":["webp"]}`, "steps[0].widths"},
		{"width too large", `{"op":"responsive","widths":[100001],"formats":["webp"]}`, "steps[0].widths"},
		{"width not a number", `{"op":"responsive","widths":["320"],"formats":["webp"]}`, "steps[0].widths"},
		{"no formats", `{"op":"responsive","widths":[320]}`, "steps[0].formats"},
		{"5 formats", `{"op":"responsive","widths":[320],"formats":["webp","avif","jpeg","png","gif"]}`, "steps[0].formats"},
		{"tiff", `{"op":"responsive","widths":[320],"formats":["tiff"]}`, "steps[0].formats"},
		{"bad quality", `{"op":"responsive","widths":[320],"formats":["webp"],"quality":"best"}`, "steps[0].quality"},
		{"quality and target", `{"op":"responsive","widths":[320],"formats":["webp"],"quality":"low","target":{"ssim":0.9}}`, "steps[0].quality"},
		{"target out of range", `{"op":"responsive","widths":[320],"formats":["webp"],"target":{"ssim":1.5}}`, "steps[0].target.ssim"},
		{"unknown parameter", `{"op":"responsive","widths":[320],"formats":["webp"],"height":200}`, "steps[0].height"},
	} {
		_, err := imgd.ParsePipeline([]byte("[" + c.in + "]"))
		e, ok := err.(*imgd.Error)
		if !ok || e.Code != imgd.CodeInvalidArgument || e.Field != c.field {
			t.Errorf("%s: ParsePipeline error = %#v, want invalid_argument on %s", c.name, err, c.field)
		}
	}
	for _, c := range []struct{ name, in, field string }{
		{"not last", `[{"op":"responsive","widths":[320],"formats":["webp"]},{"op":"grayscale"}]`, "steps[0].op"},
		{"with convert after", `[{"op":"responsive","widths":[320],"formats":["webp"]},{"op":"convert","format":"png"}]`, "steps[0].op"},
		{"with convert before", `[{"op":"convert","format":"png"},{"op":"responsive","widths":[320],"formats":["webp"]}]`, "steps[0].op"},
	} {
		_, err := imgd.ParsePipeline([]byte(c.in))
		if e, ok := err.(*imgd.Error); !ok || e.Field != c.field {
			t.Errorf("%s: ParsePipeline error = %v, want one on %s", c.name, err, c.field)
		}
	}
}

// Each format's variants are encoded by the compress step the set names.
func TestResponsiveCompress(t *testing.T) {
	t.Parallel()
	rs := imgd.MustParsePipeline(`[{"op":"responsive","widths":[320,640],"formats":["webp","jpeg"],"target":{"ssim":0.97}}]`).Responsive()
	c := rs.Compress(imgd.FormatJPEG)
	if c.Format != imgd.FormatJPEG || c.Target == nil || c.Target.SSIM != 0.97 || c.Quality != "" || c.Strip == nil || !*c.Strip {
		b, _ := json.Marshal(c)
		t.Errorf("Compress(jpeg) = %s, want jpeg, target 0.97, strip", b)
	}
	if rs.Count() != 4 {
		t.Errorf("Count() = %d, want 4", rs.Count())
	}
}

func TestManifestAndSrcset(t *testing.T) {
	t.Parallel()
	vs := []imgd.Variant{
		{Index: 0, Width: 640, Height: 480, Format: imgd.FormatWebP, Bytes: 10, BlobKey: "k0"},
		{Index: 1, Width: 320, Height: 240, Format: imgd.FormatWebP, Bytes: 5, BlobKey: "k1"},
		{Index: 2, Width: 640, Format: imgd.FormatAVIF, ErrorCode: imgd.CodeOverLimit, ErrorMessage: "too big"},
		{Index: 3, Width: 320, Height: 240, Format: imgd.FormatJPEG, Bytes: 7, BlobKey: "k3"},
	}
	url := func(i int) string { return imgd.VariantURL("T", i) }
	m := imgd.NewManifest(vs, nil, url)
	want := map[imgd.Format]string{
		imgd.FormatWebP: "/api/v1/tasks/T/variants/1 320w, /api/v1/tasks/T/variants/0 640w",
		imgd.FormatJPEG: "/api/v1/tasks/T/variants/3 320w",
	}
	if len(m.Srcset) != len(want) || m.Srcset[imgd.FormatWebP] != want[imgd.FormatWebP] || m.Srcset[imgd.FormatJPEG] != want[imgd.FormatJPEG] {
		t.Errorf("srcset = %v, want %v (narrowest first, failed variants left out)", m.Srcset, want)
	}
	if len(m.Variants) != 3 || m.Variants[0].URL != url(0) || m.Variants[2].MediaType != "image/jpeg" {
		t.Errorf("manifest variants = %+v", m.Variants)
	}
	if len(m.Errors) != 1 || m.Errors[0] != (imgd.ManifestError{Index: 2, Width: 640, Format: imgd.FormatAVIF,
		Code: imgd.CodeOverLimit, Message: "too big"}) {
		t.Errorf("manifest errors = %+v", m.Errors)
	}
	r := imgd.Result{BlobKey: "sha256/" + strings.Repeat("a", 64), Format: imgd.FormatJSON, Width: 640, Height: 480, Variants: vs}
	if r.Status() != imgd.TaskCompletedWithErrors {
		t.Errorf("Status() with a failed variant = %s", r.Status())
	}
	r.Variants = vs[:2]
	if r.Status() != imgd.TaskCompleted {
		t.Errorf("Status() without failed variants = %s", r.Status())
	}
	empty := imgd.NewManifest(vs[2:3], nil, url)
	if b, _ := json.Marshal(empty); !strings.Contains(string(b), `"variants":[],"srcset":{}`) {
		t.Errorf("manifest of failed variants only = %s, want empty lists, not null", b)
	}
}
