package imgtest

import (
	"bytes"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"testing"
)

// synthetic returns a deterministic test picture with smooth gradients and sharp edges.
func synthetic(width, height, bands int) []byte {
	p := make([]byte, width*height*bands)
	for y := range height {
		for x := range width {
			for c := range bands {
				v := (x*255/max(width-1, 1) + y*(c+1)*7) % 256
				if (x/8+y/8)%2 == 0 {
					v = 255 - v
				}
				if c == 3 {
					v = 200 + x%56 // alpha
				}
				p[(y*width+x)*bands+c] = byte(v)
			}
		}
	}
	return p
}

// noisy returns p with uniform noise of the given amplitude added to every byte, clamped.
func noisy(p []byte, amplitude int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]byte, len(p))
	for i, v := range p {
		n := int(v) + r.IntN(2*amplitude+1) - amplitude
		out[i] = byte(min(max(n, 0), 255))
	}
	return out
}

func TestMetricsIdentical(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                 string
		width, height, bands int
	}{
		{"gray", 64, 48, 1},
		{"gray+alpha", 64, 48, 2},
		{"rgb", 64, 48, 3},
		{"rgba", 64, 48, 4},
		{"smaller than window", 5, 7, 3},
		{"one pixel", 1, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := synthetic(tc.width, tc.height, tc.bands)
			b := bytes.Clone(a)
			if got := PSNR(a, b); !math.IsInf(got, 1) {
				t.Errorf("PSNR(a, a) = %v, want +Inf", got)
			}
			if got := SSIM(a, b, tc.width, tc.height, tc.bands); math.Abs(got-1) > 1e-9 {
				t.Errorf("SSIM(a, a) = %v, want 1", got)
			}
			if got := MeanAbsDiff(a, b); got != 0 {
				t.Errorf("MeanAbsDiff(a, a) = %v, want 0", got)
			}
			if got := MaxAbsDiff(a, b); got != 0 {
				t.Errorf("MaxAbsDiff(a, a) = %v, want 0", got)
			}
		})
	}
}

func TestMetricsKnownValues(t *testing.T) {
	t.Parallel()
	a := bytes.Repeat([]byte{100}, 20*20)
	b := bytes.Repeat([]byte{110}, 20*20)
	c := bytes.Repeat([]byte{101}, 20*20)

	// Constant images: MSE = 1 gives 10·log10(255²) dB.
	if got, want := PSNR(a, c), 10*math.Log10(255*255); math.Abs(got-want) > 1e-9 {
		t.Errorf("PSNR(100s, 101s) = %v, want %v", got, want)
	}
	// Constant images: variances and covariance vanish, leaving the luminance term.
	if got, want := SSIM(a, b, 20, 20, 1), (2*100*110+ssimC1)/(100*100+110*110+ssimC1); math.Abs(got-want) > 1e-9 {
		t.Errorf("SSIM(100s, 110s) = %v, want %v", got, want)
	}
	if got := MeanAbsDiff(a, b); got != 10 {
		t.Errorf("MeanAbsDiff(100s, 110s) = %v, want 10", got)
	}
	b[17] = 255
	if got := MaxAbsDiff(a, b); got != 155 {
		t.Errorf("MaxAbsDiff(100s, 110s with one 255) = %v, want 155", got)
	}
	if got := MaxAbsDiff(b, a); got != 155 {
		t.Errorf("MaxAbsDiff(b, a) = %v, want 155", got)
	}
}

func TestMetricsNoiseOrder(t *testing.T) {
	t.Parallel()
	const w, h = 96, 64
	for bands := 1; bands <= 4; bands++ {
		a := synthetic(w, h, bands)
		little, much := noisy(a, 4, 1), noisy(a, 40, 2)

		if pl, pm := PSNR(a, little), PSNR(a, much); !(pl > pm) || math.IsInf(pl, 1) {
			t.Errorf("bands %d: PSNR(a, little noise) = %v, PSNR(a, much noise) = %v, want finite and first > second", bands, pl, pm)
		}
		sl, sm := SSIM(a, little, w, h, bands), SSIM(a, much, w, h, bands)
		if !(sl < 1 && sl > sm && sm > 0) {
			t.Errorf("bands %d: SSIM(a, little noise) = %v, SSIM(a, much noise) = %v, want 1 > first > second > 0", bands, sl, sm)
		}
		if ml, mm := MeanAbsDiff(a, little), MeanAbsDiff(a, much); !(ml > 0 && ml < mm) {
			t.Errorf("bands %d: MeanAbsDiff(a, little noise) = %v, MeanAbsDiff(a, much noise) = %v, want 0 < first < second", bands, ml, mm)
		}
		if xl, xm := MaxAbsDiff(a, little), MaxAbsDiff(a, much); !(xl <= 4 && xl < xm && xm <= 40) {
			t.Errorf("bands %d: MaxAbsDiff(a, little noise) = %v, MaxAbsDiff(a, much noise) = %v, want ≤ 4 and < second ≤ 40", bands, xl, xm)
		}
	}
}

func TestMetricsSymmetric(t *testing.T) {
	t.Parallel()
	const w, h, bands = 40, 30, 3
	a := synthetic(w, h, bands)
	b := noisy(a, 25, 3)
	if ab, ba := PSNR(a, b), PSNR(b, a); ab != ba {
		t.Errorf("PSNR(a, b) = %v, PSNR(b, a) = %v, want equal", ab, ba)
	}
	if ab, ba := SSIM(a, b, w, h, bands), SSIM(b, a, w, h, bands); math.Abs(ab-ba) > 1e-12 {
		t.Errorf("SSIM(a, b) = %v, SSIM(b, a) = %v, want equal", ab, ba)
	}
	if ab, ba := MeanAbsDiff(a, b), MeanAbsDiff(b, a); ab != ba {
		t.Errorf("MeanAbsDiff(a, b) = %v, MeanAbsDiff(b, a) = %v, want equal", ab, ba)
	}
	if ab, ba := MaxAbsDiff(a, b), MaxAbsDiff(b, a); ab != ba {
		t.Errorf("MaxAbsDiff(a, b) = %v, MaxAbsDiff(b, a) = %v, want equal", ab, ba)
	}
}

// TestSSIMStructure checks that SSIM sees structure, not only error energy: a blur and
// noise with the same mean squared error are not judged alike, and alpha is ignored.
func TestSSIMStructure(t *testing.T) {
	t.Parallel()
	img, err := png.Decode(bytes.NewReader(Read(t, "png/png-gray.png")))
	if err != nil {
		t.Fatalf("decode png/png-gray.png: %v", err)
	}
	g, ok := img.(*image.Gray)
	if !ok {
		t.Fatalf("png/png-gray.png decoded as %T, want *image.Gray", img)
	}
	w, h := g.Rect.Dx(), g.Rect.Dy()
	a := bytes.Clone(g.Pix)

	// Inverting the picture keeps its statistics' magnitudes but destroys correlation.
	inv := make([]byte, len(a))
	for i, v := range a {
		inv[i] = 255 - v
	}
	if s := SSIM(a, inv, w, h, 1); s > 0.2 {
		t.Errorf("SSIM(coins, inverted coins) = %v, want ≤ 0.2", s)
	}
	if s := SSIM(a, noisy(a, 3, 4), w, h, 1); s < 0.9 {
		t.Errorf("SSIM(coins, coins + ±3 noise) = %v, want ≥ 0.9", s)
	}

	// RGBA built from the gray image: alpha differences do not change SSIM.
	rgba1, rgba2 := make([]byte, 4*len(a)), make([]byte, 4*len(a))
	for i, v := range a {
		copy(rgba1[4*i:], []byte{v, v, v, 255})
		copy(rgba2[4*i:], []byte{v, v, v, byte(i)})
	}
	if s := SSIM(rgba1, rgba2, w, h, 4); math.Abs(s-1) > 1e-9 {
		t.Errorf("SSIM(rgba, rgba with other alpha) = %v, want 1", s)
	}
	if s, want := SSIM(rgba1, rgba1, w, h, 4), SSIM(a, a, w, h, 1); math.Abs(s-want) > 1e-9 {
		t.Errorf("SSIM on gray-as-RGBA = %v, on gray = %v, want equal", s, want)
	}
}

func TestMetricsPanicOnMismatch(t *testing.T) {
	t.Parallel()
	for name, f := range map[string]func(){
		"PSNR":        func() { PSNR(make([]byte, 3), make([]byte, 4)) },
		"MeanAbsDiff": func() { MeanAbsDiff(make([]byte, 3), make([]byte, 4)) },
		"MaxAbsDiff":  func() { MaxAbsDiff(make([]byte, 3), make([]byte, 4)) },
		"SSIM size":   func() { SSIM(make([]byte, 12), make([]byte, 12), 2, 2, 4) },
		"SSIM len":    func() { SSIM(make([]byte, 12), make([]byte, 16), 2, 2, 3) },
		"SSIM bands":  func() { SSIM(make([]byte, 20), make([]byte, 20), 2, 2, 5) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			defer func() {
				if recover() == nil {
					t.Errorf("%s with mismatched sizes did not panic", name)
				}
			}()
			f()
		})
	}
}

func BenchmarkSSIM(b *testing.B) {
	const w, h = 1280, 800
	a := synthetic(w, h, 3)
	c := noisy(a, 10, 5)
	for b.Loop() {
		SSIM(a, c, w, h, 3)
	}
}
