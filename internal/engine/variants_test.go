package engine

import (
	"bytes"
	"image/gif"
	"math"
	"slices"
	"testing"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/imgtest"
)

// checkVariant checks that a variant that succeeded is what it says: its
// data sniffs and decodes as its format at its size, and it looks like
// the source scaled down (SSIM against the source decoded at that size).
func checkVariant(t *testing.T, v Variant, wantFormat imgd.Format, wantW, srcW, srcH int) {
	t.Helper()
	if v.Err != nil {
		t.Fatalf("variant %s %dw failed: %v", wantFormat, wantW, v.Err)
	}
	if v.Format != wantFormat {
		t.Errorf("variant %dw format = %s, want %s", wantW, v.Format, wantFormat)
	}
	if f, err := Sniff(v.Data); err != nil || f != wantFormat {
		t.Errorf("variant %s %dw data sniffs as %s, %v", wantFormat, wantW, f, err)
	}
	wantH := int(math.Round(float64(srcH) * float64(wantW) / float64(srcW)))
	if v.Width != wantW || math.Abs(float64(v.Height-wantH)) > 1 {
		t.Errorf("variant %s is %dx%d, want %dx%d (±1)", wantFormat, v.Width, v.Height, wantW, wantH)
	}
	px := decode(t, v.Data)
	if px.Width != v.Width || px.Height != v.Height {
		t.Errorf("variant %s %dw decodes as %dx%d, result says %dx%d", wantFormat, wantW, px.Width, px.Height, v.Width, v.Height)
	}
}

func TestVariantsSizesAndFormats(t *testing.T) {
	t.Parallel()
	const rel = "photos/jpeg-large-camera-exif.jpg" // 4000x3000
	src := imgtest.Read(t, rel)
	info, err := testEngine.Probe(src)
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, rel, `[{"op":"responsive","widths":[480,160,320],"formats":["webp","avif","jpeg"],"quality":"medium"}]`)
	if res.Format != imgd.FormatJSON || res.Data != nil {
		t.Errorf("result format %s with %d bytes of data, want json and none (the caller writes the manifest)", res.Format, len(res.Data))
	}
	if len(res.Variants) != 9 {
		t.Fatalf("%d variants, want 9", len(res.Variants))
	}
	i := 0
	for _, f := range []imgd.Format{imgd.FormatWebP, imgd.FormatAVIF, imgd.FormatJPEG} {
		for _, w := range []int{160, 320, 480} {
			v := res.Variants[i]
			checkVariant(t, v, f, w, info.Width, info.Height)
			c, ok := v.Outputs["compress"].(map[string]any)
			if !ok || c["format"] != f {
				t.Errorf("variant %d outputs = %v, want compress outputs for %s", i, v.Outputs, f)
			}
			i++
		}
	}
	if res.Width != 480 || res.Height != 360 {
		t.Errorf("result size %dx%d, want the widest variant's 480x360", res.Width, res.Height)
	}
	// Shrink-on-load: the base was decoded at the widest width, not whole.
	r := res.Outputs["responsive"].(map[string]any)
	if r["base_width"] != 480 {
		t.Errorf("outputs.responsive = %v, want base_width 480 (shrink-on-load to the widest variant)", r)
	}
	// Each variant looks like the photo at that size: compare the 320 px
	// JPEG with the photo thumbnailed to 320 px.
	ref := decode(t, run(t, rel, `[{"op":"resize","width":320},{"op":"convert","format":"png"}]`).Data)
	got := decode(t, res.Variants[7].Data)
	if s := imgtest.SSIM(ref.Data, got.Data, ref.Width, ref.Height, ref.Bands); got.Width != ref.Width || s < 0.9 {
		t.Errorf("320 px JPEG variant: SSIM %.3f against the photo resized to 320 px, want >= 0.9", s)
	}
}

// Widths wider than the image are not upscaled: the first gives a variant
// at the image's own width, all are reported; with enlarge they are made.
func TestVariantsWiderThanImage(t *testing.T) {
	t.Parallel()
	const rel = "photos/jpeg-baseline-small.jpg" // 640x427
	res := run(t, rel, `[{"op":"responsive","widths":[200,1000,640,2000],"formats":["jpeg"]}]`)
	var widths []int
	for _, v := range res.Variants {
		checkVariant(t, v, imgd.FormatJPEG, v.Width, 640, 427)
		widths = append(widths, v.Width)
	}
	if !slices.Equal(widths, []int{200, 640}) {
		t.Errorf("variant widths %v, want [200 640] (1000 and 2000 give no upscaled copy)", widths)
	}
	r := res.Outputs["responsive"].(map[string]any)
	if !slices.Equal(r["skipped_widths"].([]int), []int{1000, 2000}) || r["base_width"] != 640 {
		t.Errorf("outputs.responsive = %v, want skipped_widths [1000 2000], base_width 640", r)
	}

	res = run(t, rel, `[{"op":"responsive","widths":[1000],"formats":["png"],"enlarge":true}]`)
	if len(res.Variants) != 1 {
		t.Fatalf("%d variants with enlarge, want 1", len(res.Variants))
	}
	checkVariant(t, res.Variants[0], imgd.FormatPNG, 1000, 640, 427)

	// The steps before responsive make the base: a crop to 300x200 caps the
	// set at 300 px.
	res = run(t, rel, `[{"op":"crop","x":10,"y":10,"width":300,"height":200},{"op":"responsive","widths":[100,600],"formats":["webp"]}]`)
	widths = nil
	for _, v := range res.Variants {
		checkVariant(t, v, imgd.FormatWebP, v.Width, 300, 200)
		widths = append(widths, v.Width)
	}
	if !slices.Equal(widths, []int{100, 300}) {
		t.Errorf("cropped base: variant widths %v, want [100 300]", widths)
	}
}

// One variant failing leaves the others intact; all failing fails the run
// with the first variant's error.
func TestVariantsOneFails(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	lim.MaxOutputDimension = 20000
	e, err := New(Options{Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	src := imgtest.Read(t, "photos/jpeg-baseline-small.jpg")
	// A 600x30 strip enlarged to 17000 px: JPEG stores it, WebP cannot
	// (16383 px a side at most).
	p := imgd.MustParsePipeline(`[{"op":"crop","width":600,"height":30},
		{"op":"responsive","widths":[17000,300],"formats":["webp","jpeg"],"enlarge":true}]`)
	res, err := e.Run(t.Context(), src, p)
	if err != nil {
		t.Fatalf("Run with one impossible variant: %v", err)
	}
	if len(res.Variants) != 4 {
		t.Fatalf("%d variants, want 4", len(res.Variants))
	}
	bad := res.Variants[1] // webp 17000
	if bad.Err == nil || bad.Err.Code != imgd.CodeOverLimit || bad.Data != nil || bad.Width != 17000 || bad.Format != imgd.FormatWebP {
		t.Errorf("webp 17000w variant = %+v, want an over_limit error and no data", bad)
	}
	checkVariant(t, res.Variants[0], imgd.FormatWebP, 300, 600, 30)
	checkVariant(t, res.Variants[2], imgd.FormatJPEG, 300, 600, 30)
	checkVariant(t, res.Variants[3], imgd.FormatJPEG, 17000, 600, 30)
	if res.Width != 17000 {
		t.Errorf("result width %d, want the widest good variant's 17000", res.Width)
	}

	p = imgd.MustParsePipeline(`[{"op":"crop","width":600,"height":30},
		{"op":"responsive","widths":[17000],"formats":["webp"],"enlarge":true}]`)
	_, err = e.Run(t.Context(), src, p)
	if e, ok := err.(*imgd.Error); !ok || e.Code != imgd.CodeOverLimit || e.Field != "steps[1]" {
		t.Errorf("Run with every variant impossible: error %#v, want over_limit on steps[1]", err)
	}
}

// An animation keeps its frames in the formats that store them and its
// first frame in the others.
func TestVariantsAnimation(t *testing.T) {
	t.Parallel()
	const rel = "formats/gif-animated.gif" // 660x666
	in, err := gif.DecodeAll(bytes.NewReader(imgtest.Read(t, rel)))
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, rel, `[{"op":"responsive","widths":[200],"formats":["gif","jpeg"]}]`)
	if len(res.Variants) != 2 {
		t.Fatalf("%d variants, want 2", len(res.Variants))
	}
	g, j := res.Variants[0], res.Variants[1]
	out, err := gif.DecodeAll(bytes.NewReader(g.Data))
	if err != nil || len(out.Image) != len(in.Image) || g.Frames != len(in.Image) {
		t.Errorf("GIF variant: %v, %d frames decoded, %d said; want %d", err, len(out.Image), g.Frames, len(in.Image))
	}
	checkVariant(t, j, imgd.FormatJPEG, 200, 660, 666)
	if j.Frames != 1 {
		t.Errorf("JPEG variant has %d frames, want 1", j.Frames)
	}
}

func TestPlanWidths(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		widths        []int
		base          int
		enlarge       bool
		plan, skipped []int
	}{
		{[]int{320, 640}, 1000, false, []int{320, 640}, nil},
		{[]int{320, 1280, 1920}, 1000, false, []int{320, 1000}, []int{1280, 1920}},
		{[]int{1000, 1280}, 1000, false, []int{1000}, []int{1280}},
		{[]int{2000}, 1000, false, []int{1000}, []int{2000}},
		{[]int{320, 2000}, 1000, true, []int{320, 2000}, nil},
	} {
		plan, skipped := planWidths(c.widths, c.base, c.enlarge)
		if !slices.Equal(plan, c.plan) || !slices.Equal(skipped, c.skipped) {
			t.Errorf("planWidths(%v, %d, %v) = %v, %v; want %v, %v", c.widths, c.base, c.enlarge, plan, skipped, c.plan, c.skipped)
		}
	}
}
