package engine

import (
	"fmt"
	"testing"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/imgtest"
	"github.com/imgd/imgd/internal/ssim"
)

// independentSSIM decodes out and ref (each on its own, through Decode)
// and scores them with internal/ssim: no value the compress step computed
// is reused.
func independentSSIM(t *testing.T, ref, out []byte) float64 {
	t.Helper()
	a, b := decode(t, ref), decode(t, out)
	s, err := ssim.SSIM(ssim.Image{Pix: a.Data, W: a.Width, H: a.Height, Bands: a.Bands},
		ssim.Image{Pix: b.Data, W: b.Width, H: b.Height, Bands: b.Bands}, ssim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func compressOut(t *testing.T, res *Result) map[string]any {
	t.Helper()
	co, ok := res.Outputs["compress"].(map[string]any)
	if !ok {
		t.Fatalf("no outputs.compress in %v", res.Outputs)
	}
	for _, k := range []string{"format", "quality_used", "metric", "score", "bytes", "iterations"} {
		if _, ok := co[k]; !ok {
			t.Errorf("outputs.compress has no %q: %v", k, co)
		}
	}
	if co["format"] != res.Format || co["bytes"] != len(res.Data) {
		t.Errorf("outputs.compress says %v, %v bytes; the result is %s, %d bytes", co["format"], co["bytes"], res.Format, len(res.Data))
	}
	return co
}

// TestCompressMeetsTarget: the output reaches its target when measured
// again from the decoded files, the search stays within its budget, and a
// lower target never gives a larger file.
func TestCompressMeetsTarget(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		rel, prefix string
		formats     []imgd.Format
	}{
		{"photos/jpeg-icc.jpg", `{"op":"resize","width":480},`, []imgd.Format{imgd.FormatJPEG, imgd.FormatWebP, imgd.FormatAVIF, imgd.FormatPNG}},
		{"png/png-gray.png", ``, []imgd.Format{imgd.FormatJPEG, imgd.FormatWebP}},
		{"documents/doc-real-scan.png", ``, []imgd.Format{imgd.FormatJPEG, imgd.FormatPNG}},
	} {
		ref := run(t, c.rel, "["+c.prefix+`{"op":"convert","format":"png"}]`).Data
		for _, f := range c.formats {
			t.Run(fmt.Sprintf("%s/%s", c.rel, f), func(t *testing.T) {
				t.Parallel()
				prev := 0
				for _, target := range []float64{0.995, 0.985, 0.96} {
					p := fmt.Sprintf(`[%s{"op":"compress","format":%q,"target":{"ssim":%v}}]`, c.prefix, f, target)
					res := run(t, c.rel, p)
					co := compressOut(t, res)
					if res.Format != f {
						t.Fatalf("%s: format %s", p, res.Format)
					}
					got := independentSSIM(t, ref, res.Data)
					t.Logf("target %.3f: q %v, %d bytes, ssim %.4f (reported %v), %v encodes", target, co["quality_used"], len(res.Data), got, co["score"], co["iterations"])
					if co["target_met"] == true && got < target-1e-4 {
						t.Errorf("%s: measured SSIM %.5f, below the target it claims to meet", p, got)
					}
					if co["target_met"] != true && f != imgd.FormatJPEG && f != imgd.FormatWebP && f != imgd.FormatAVIF {
						t.Errorf("%s: target not met: %v", p, co)
					}
					if n := co["iterations"].(int); n > 7 {
						t.Errorf("%s: %d encodes, want <= 7", p, n)
					}
					if prev > 0 && len(res.Data) > prev {
						t.Errorf("%s: %d bytes, more than for the higher target (%d)", p, len(res.Data), prev)
					}
					prev = len(res.Data)
				}
			})
		}
	}
}

// TestCompressLevels: the named levels order the sizes, each output
// reaches its level's floor, and the quality chosen is where the level's
// trade-off between SSIM and bytes is best: no quality near it does
// better by an independent measurement.
func TestCompressLevels(t *testing.T) {
	t.Parallel()
	const rel, prefix = "photos/jpeg-progressive-native.jpg", `{"op":"resize","width":480},`
	ref := run(t, rel, "["+prefix+`{"op":"convert","format":"png"}]`).Data
	dec := decode(t, ref)
	pixels := float64(dec.Width * dec.Height)
	sizes := map[string]int{}
	for _, name := range []string{"high", "medium", "low"} {
		lv := levels[name]
		res := run(t, rel, "["+prefix+`{"op":"compress","format":"jpeg","quality":"`+name+`"}]`)
		co := compressOut(t, res)
		if co["target"] != lv.floor {
			t.Errorf("%s: target %v, want the floor %v", name, co["target"], lv.floor)
		}
		gainOf := func(data []byte) float64 {
			return independentSSIM(t, ref, data) - 8*float64(len(data))/pixels/lv.lambda
		}
		if n := co["iterations"].(int); n > 8 {
			t.Errorf("%s: %d encodes, want <= 8", name, n)
		}
		chosen := co["quality_used"].(int)
		got := gainOf(res.Data)
		if s := independentSSIM(t, ref, res.Data); s < lv.floor-1e-4 {
			t.Errorf("%s: measured SSIM %.5f under the level's floor", name, s)
		}
		for q := max(chosen-8, 30); q <= min(chosen+8, 95); q += 2 {
			other := run(t, rel, fmt.Sprintf(`[%s{"op":"convert","format":"jpeg","quality":%d,"progressive":true}]`, prefix, q)).Data
			if g := gainOf(other); g > got+2e-4 && independentSSIM(t, ref, other) >= lv.floor {
				t.Errorf("%s: q%d gains %.5f, more than the chosen q%d's %.5f", name, q, g, chosen, got)
			}
		}
		sizes[name] = len(res.Data)
	}
	if !(sizes["high"] >= sizes["medium"] && sizes["medium"] >= sizes["low"] && sizes["high"] > sizes["low"]) {
		t.Errorf("sizes by level %v: want high > low, medium between", sizes)
	}
}

// TestCompressMaxBytes: max_bytes is respected, alone (best quality that
// fits) or with a target (the target gives way and says so), and an
// impossible budget is a clear over_limit error naming max_bytes.
func TestCompressMaxBytes(t *testing.T) {
	t.Parallel()
	const rel, prefix = "photos/jpeg-icc.jpg", `{"op":"resize","width":480},`
	ref := run(t, rel, "["+prefix+`{"op":"convert","format":"png"}]`).Data
	free := run(t, rel, "["+prefix+`{"op":"compress","format":"jpeg","target":{"ssim":0.998}}]`)
	budget := len(free.Data) * 2 / 3
	for _, p := range []string{
		fmt.Sprintf(`[%s{"op":"compress","format":"jpeg","max_bytes":%d}]`, prefix, budget),
		fmt.Sprintf(`[%s{"op":"compress","format":"webp","max_bytes":%d}]`, prefix, budget),
		fmt.Sprintf(`[%s{"op":"compress","format":"jpeg","target":{"ssim":0.998},"max_bytes":%d}]`, prefix, budget),
		fmt.Sprintf(`[%s{"op":"compress","format":"auto","quality":"high","max_bytes":%d}]`, prefix, budget),
	} {
		res := run(t, rel, p)
		co := compressOut(t, res)
		if len(res.Data) > budget {
			t.Errorf("%s: %d bytes, over max_bytes %d", p, len(res.Data), budget)
		}
		// The largest that fits: the next quality up would not.
		if co["quality_used"].(int) < 50 {
			t.Errorf("%s: quality %v; a budget of 2/3 of q~95 should allow far more", p, co["quality_used"])
		}
		if co["target"] == 0.998 && co["target_met"] != false {
			t.Errorf("%s: target reported met at %v", p, co["score"])
		}
		if co["target_met"] == true && co["target"] != nil {
			if s := independentSSIM(t, ref, res.Data); s < co["target"].(float64)-1e-4 {
				t.Errorf("%s: reported met, measured %.5f", p, s)
			}
		}
	}
	for _, f := range []string{"jpeg", "auto"} {
		p := fmt.Sprintf(`[%s{"op":"compress","format":%q,"max_bytes":300}]`, prefix, f)
		_, err := testEngine.Run(t.Context(), imgtest.Read(t, rel), imgd.MustParsePipeline(p))
		e, ok := err.(*imgd.Error)
		if !ok || e.Code != imgd.CodeOverLimit || e.Field != "steps[1].max_bytes" {
			t.Errorf("%s: err = %v, want over_limit on steps[1].max_bytes", p, err)
		}
	}
}

// TestCompressAutoAlpha: auto never picks JPEG for a transparent image and
// the output keeps alpha.
func TestCompressAutoAlpha(t *testing.T) {
	t.Parallel()
	const rel = "png/png-rgba-icon.png"
	src := decode(t, imgtest.Read(t, rel))
	res := run(t, rel, `[{"op":"compress"}]`)
	co := compressOut(t, res)
	if res.Format == imgd.FormatJPEG || !res.Format.SupportsAlpha() {
		t.Fatalf("auto chose %s for a transparent image", res.Format)
	}
	for _, c := range co["candidates"].([]map[string]any) {
		if c["format"] == imgd.FormatJPEG {
			t.Errorf("JPEG was tried for a transparent image: %v", co)
		}
	}
	got := decode(t, res.Data)
	if got.Bands != 4 {
		t.Fatalf("output has %d bands, want 4", got.Bands)
	}
	if p := imgtest.PSNR(alpha(got), alpha(src)); p < 30 {
		t.Errorf("alpha PSNR %.1f dB", p)
	}
	if s := independentSSIM(t, imgtest.Read(t, rel), res.Data); s < co["target"].(float64)-1e-4 {
		t.Errorf("SSIM %.5f under the target %v", s, co["target"])
	}
	// An opaque alpha band does not rule JPEG out.
	opaque := run(t, "photos/jpeg-icc.jpg", `[{"op":"resize","width":300,"height":300,"fit":"contain","background":"#ffffffff"},{"op":"compress"}]`)
	found := false
	for _, c := range compressOut(t, opaque)["candidates"].([]map[string]any) {
		found = found || c["format"] == imgd.FormatJPEG
	}
	if !found {
		t.Errorf("JPEG not tried for an opaque image")
	}
}

// TestCompressAutoAnimation: auto keeps every frame of an animation.
func TestCompressAutoAnimation(t *testing.T) {
	t.Parallel()
	const rel = "formats/gif-animated.gif"
	info, err := testEngine.Probe(imgtest.Read(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, rel, `[{"op":"resize","width":160},{"op":"compress","quality":"medium"}]`)
	compressOut(t, res)
	if !res.Format.SupportsAnimation() {
		t.Fatalf("auto chose %s for an animation", res.Format)
	}
	out, err := testEngine.Probe(res.Data)
	if err != nil {
		t.Fatal(err)
	}
	if res.Frames != info.Frames || out.Frames < info.Frames*3/4 {
		t.Errorf("output has %d frames (result says %d), input %d", out.Frames, res.Frames, info.Frames)
	}
}

// TestCompressLossless: a target of 1 can only be met losslessly.
func TestCompressLossless(t *testing.T) {
	t.Parallel()
	res := run(t, "png/png-gray.png", `[{"op":"compress","format":"png","target":{"ssim":1}}]`)
	co := compressOut(t, res)
	if co["quality_used"] != 0 || co["target_met"] != true {
		t.Errorf("want lossless (quality 0) meeting the target, got %v", co)
	}
	src, out := decode(t, imgtest.Read(t, "png/png-gray.png")), decode(t, res.Data)
	if string(src.Data) != string(out.Data) {
		t.Error("lossless PNG output differs from the input")
	}
}

// TestCompressTiny: an image smaller than the SSIM window still gets a
// measured result.
func TestCompressTiny(t *testing.T) {
	t.Parallel()
	const p = `[{"op":"resize","width":6},{"op":"compress","format":"jpeg","quality":"high"}]`
	res := run(t, "photos/jpeg-icc.jpg", p)
	co := compressOut(t, res)
	ref := run(t, "photos/jpeg-icc.jpg", `[{"op":"resize","width":6},{"op":"convert","format":"png"}]`).Data
	if s := independentSSIM(t, ref, res.Data); co["target_met"] != true || s < co["target"].(float64)-1e-4 {
		t.Errorf("6 px wide: measured %.4f, outputs %v", s, co)
	}
}
