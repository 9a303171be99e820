package orient

import (
	"math"
	"testing"
)

// TestEdgeAndColourFeatures: a blue sky over a dark ground puts the
// horizon's edge energy in the band and the signed direction of a
// light-above edge, and the sky share in the top blocks; turned half round,
// the same energy moves to the opposite direction and the sky to the
// bottom blocks.
func TestEdgeAndColourFeatures(t *testing.T) {
	const w, h = 96, 64
	im := Image{Pix: make([]byte, w*h*3), Width: w, Height: h, Bands: 3}
	for y := range h {
		for x := range w {
			p := im.Pix[(y*w+x)*3:]
			if y < h*3/8 { // sky: the horizon lies in the second of four bands
				p[0], p[1], p[2] = 90, 150, 230
			} else {
				p[0], p[1], p[2] = 20, 20, 15
			}
		}
	}
	th, err := MakeThumb(im)
	if err != nil {
		t.Fatal(err)
	}
	edge := gridSide*gridSide*6 + bands*5 // first edge-direction feature
	class := edge + edgeBands*dirBins     // first colour-class share
	// Bin 2 holds gradients pointing up (lighter above), bin 6 down.
	for _, tc := range []struct {
		turn          int
		bin, skyBlock int
	}{{0, 2, 0}, {2, 6, gridSide*gridSide - 1}} {
		f := th.TurnBack(tc.turn).Features()
		if len(f) != NumFeatures {
			t.Fatalf("%d features, want %d", len(f), NumFeatures)
		}
		band := 1
		if tc.turn == 2 {
			band = 2
		}
		if got := f[edge+band*dirBins+tc.bin]; got < 0.9 {
			t.Errorf("turned %d: band %d direction %d holds %.3f of the edge energy, want nearly all", tc.turn*90, band, tc.bin, got)
		}
		if got := f[class+tc.skyBlock*colourClasses]; got != 1 {
			t.Errorf("turned %d: sky share of block %d = %.3f, want 1", tc.turn*90, tc.skyBlock, got)
		}
		if got := f[class+(gridSide*gridSide-1-tc.skyBlock)*colourClasses+4]; got != 1 {
			t.Errorf("turned %d: dark share opposite the sky = %.3f, want 1", tc.turn*90, got)
		}
	}
}

// BenchmarkDetectPhoto times the photo path on a dev-sized photo (640 px
// long side); the engine hands the detector images of at most MaxSide.
func BenchmarkDetectPhoto(b *testing.B) {
	im := load(b, "orientation/orientation-1.jpg", false)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DetectPhoto(im); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDirection checks the arc-tangent-free direction bins against the
// definition, on a fine circle of angles and on the gradients of a photo.
func TestDirection(t *testing.T) {
	ref := func(gx, gy float64) int {
		a := math.Atan2(gy, gx)
		return int(math.Floor((a+math.Pi+math.Pi/dirBins)/(2*math.Pi)*dirBins)) % dirBins
	}
	for i := range 3600 {
		// Half-step offset: no sample sits exactly on a bin edge, where
		// rounding may go either way.
		a := (float64(i) + 0.5) / 3600 * 2 * math.Pi
		for _, r := range []float64{1e-3, 0.3, 1} {
			gx, gy := r*math.Cos(a), r*math.Sin(a)
			if got, want := direction(gx, gy), ref(gx, gy); got != want {
				t.Fatalf("direction(%v, %v) = %d, want %d (angle %.2f°)", gx, gy, got, want, a*180/math.Pi)
			}
		}
	}
	th, err := MakeThumb(load(t, "orientation/orientation-1.jpg", false))
	if err != nil {
		t.Fatal(err)
	}
	var lum [thumbSide * thumbSide]float64
	for i, p := range th.px {
		lum[i] = (p[0] + p[1] + p[2]) / 3
	}
	for i := range len(lum) - thumbSide - 1 {
		gx, gy := lum[i+1]-lum[i], lum[i+thumbSide]-lum[i]
		if (gx != 0 || gy != 0) && direction(gx, gy) != ref(gx, gy) {
			t.Errorf("pixel %d: direction(%v, %v) = %d, want %d", i, gx, gy, direction(gx, gy), ref(gx, gy))
		}
	}
}
