package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/imgd/imgd/internal/orient"
)

// scene draws a synthetic upright landscape: a sky that lightens towards
// a horizon at a random height, and darker, noisy ground below, in random
// colours and sizes.
func scene(rng *rand.Rand) orient.Image {
	w, h := 96+rng.IntN(160), 96+rng.IntN(160)
	horizon := h * (3 + rng.IntN(5)) / 10
	sky := [3]float64{60 + rng.Float64()*100, 100 + rng.Float64()*100, 180 + rng.Float64()*75}
	ground := [3]float64{20 + rng.Float64()*80, 30 + rng.Float64()*80, 10 + rng.Float64()*50}
	im := orient.Image{Pix: make([]byte, w*h*3), Width: w, Height: h, Bands: 3}
	for y := range h {
		for x := range w {
			p := im.Pix[(y*w+x)*3:]
			for c := range 3 {
				var v float64
				if y < horizon {
					v = sky[c] + 50*float64(y)/float64(horizon)
				} else {
					v = ground[c] + 40*rng.Float64()
				}
				p[c] = byte(min(v, 255))
			}
		}
	}
	return im
}

// turnCW turns im clockwise by a quarter turn.
func turnCW(im orient.Image) orient.Image {
	out := orient.Image{Pix: make([]byte, len(im.Pix)), Width: im.Height, Height: im.Width, Bands: im.Bands}
	for y := range im.Height {
		for x := range im.Width {
			// Source (x, y) lands at column height-1-y, row x.
			copy(out.Pix[(x*out.Width+im.Height-1-y)*3:][:3], im.Pix[(y*im.Width+x)*3:][:3])
		}
	}
	return out
}

// TestFitLearnsUp: fitted on upright scenes, some handed over turned with
// their label, the model tells the turn of new scenes it never saw, and the
// report has the cross-validation and calibration lines.
func TestFitLearnsUp(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var photos []photo
	for i := range 40 {
		im, turned := scene(rng), i%4
		for range turned {
			im = turnCW(im)
		}
		p, err := thumbsOf(im, turned)
		if err != nil {
			t.Fatal(err)
		}
		p.name, p.group = fmt.Sprint("scene ", i), fmt.Sprint("synthetic/", i)
		photos = append(photos, p)
	}
	m, report := fit(photos, 0)
	for _, want := range []string{"held-out accuracy", "chosen lambda", "held-out calibration", "synthetic"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	right := 0
	const n = 40
	for i := range n {
		im := scene(rng)
		for range i % 4 {
			im = turnCW(im)
		}
		th, err := orient.MakeThumb(im)
		if err != nil {
			t.Fatal(err)
		}
		p := m.Probabilities(th)
		best := 0
		for k := range 4 {
			if p[k] > p[best] {
				best = k
			}
		}
		if best == i%4 {
			right++
		}
	}
	if right < n*9/10 {
		t.Errorf("%d of %d new scenes right, want at least 90 %%\n%s", right, n, report)
	}
}
