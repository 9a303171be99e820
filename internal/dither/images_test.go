package dither

import (
	"math"
	"math/rand/v2"

	"github.com/imgd/imgd"
)

// Test images are generated, deterministic, and have an alpha band that
// varies so that a change to it shows.

// gradientImage has R rising left to right, G top to bottom and B along the
// diagonal, each over the full 0..255 range.
func gradientImage(w, h, bands int) []byte {
	pix := make([]byte, w*h*bands)
	for y := range h {
		for x := range w {
			p := pix[(y*w+x)*bands:]
			p[0] = byte(x * 255 / max(w-1, 1))
			p[1] = byte(y * 255 / max(h-1, 1))
			p[2] = byte((x + y) * 255 / max(w+h-2, 1))
			if bands == 4 {
				p[3] = byte(x*7 + y*13)
			}
		}
	}
	return pix
}

// photoImage looks like a photograph more than a test card does: smooth
// shading, soft blobs of colour, flat hard-edged shapes, and Gaussian noise
// (σ 8), all from a fixed seed.
func photoImage(w, h, bands int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	type blob struct{ x, y, r, dr, dg, db float64 }
	blobs := make([]blob, 6)
	for i := range blobs {
		blobs[i] = blob{rng.Float64(), rng.Float64(), 0.05 + 0.2*rng.Float64(),
			rng.Float64()*160 - 80, rng.Float64()*160 - 80, rng.Float64()*160 - 80}
	}
	type rect struct {
		x0, y0, x1, y1 float64
		c              [3]float64
	}
	rects := make([]rect, 4)
	for i := range rects {
		x, y := rng.Float64()*0.8, rng.Float64()*0.8
		rects[i] = rect{x, y, x + 0.05 + 0.15*rng.Float64(), y + 0.05 + 0.15*rng.Float64(),
			[3]float64{rng.Float64() * 255, rng.Float64() * 255, rng.Float64() * 255}}
	}
	pix := make([]byte, w*h*bands)
	for y := range h {
		for x := range w {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			c := [3]float64{
				40 + 180*fx + 30*math.Sin(6*fy+2*fx),
				60 + 150*fy + 25*math.Cos(5*fx),
				200 - 160*fx*fy + 20*math.Sin(9*(fx+fy)),
			}
			for _, b := range blobs {
				d2 := ((fx-b.x)*(fx-b.x) + (fy-b.y)*(fy-b.y)) / (b.r * b.r)
				g := math.Exp(-d2)
				c[0] += b.dr * g
				c[1] += b.dg * g
				c[2] += b.db * g
			}
			for _, r := range rects {
				if fx >= r.x0 && fx < r.x1 && fy >= r.y0 && fy < r.y1 {
					c = r.c
				}
			}
			p := pix[(y*w+x)*bands:]
			for i := range 3 {
				p[i] = byte(min(max(math.Round(c[i]+8*rng.NormFloat64()), 0), 255))
			}
			if bands == 4 {
				p[3] = byte(rng.IntN(256))
			}
		}
	}
	return pix
}

// mapColors applies f to the RGB of every pixel.
func mapColors(pix []byte, bands int, f func(r, g, b byte) (byte, byte, byte)) []byte {
	out := append([]byte(nil), pix...)
	for i := 0; i < len(out); i += bands {
		out[i], out[i+1], out[i+2] = f(out[i], out[i+1], out[i+2])
	}
	return out
}

// gray replaces RGB by its Rec. 709 luma (on the sRGB values).
func gray(r, g, b byte) (byte, byte, byte) {
	v := byte(math.Round(0.2126*float64(r) + 0.7152*float64(g) + 0.0722*float64(b)))
	return v, v, v
}

// squeeze maps each channel into [lo, hi].
func squeeze(lo, hi int) func(r, g, b byte) (byte, byte, byte) {
	f := func(v byte) byte { return byte(lo + (int(v)*(hi-lo)+127)/255) }
	return func(r, g, b byte) (byte, byte, byte) { return f(r), f(g), f(b) }
}

func mustPalette(name string) []imgd.RGBA {
	p, ok := imgd.NamedPalette(name)
	if !ok {
		panic("no palette " + name)
	}
	return p
}

// customPalette is irregular but holds the eight corners of the RGB cube,
// so every colour is inside its convex hull.
var customPalette = parseColors(
	"#000000", "#ff0000", "#00ff00", "#0000ff", "#ffff00", "#ff00ff", "#00ffff", "#ffffff",
	"#808080", "#e08020", "#2060c0", "#c0e0a0",
	"#40302800", // alpha is ignored
)

func parseColors(hexes ...string) []imgd.RGBA {
	cs := make([]imgd.RGBA, len(hexes))
	for i, h := range hexes {
		c, err := imgd.ParseColor(h)
		if err != nil {
			panic(err)
		}
		cs[i] = c
	}
	return cs
}

// paletteSetup is a way of choosing the output colours, as Options fields.
type paletteSetup struct {
	name    string
	levels  int
	palette []imgd.RGBA
}

var setups = []paletteSetup{
	{name: "levels2", levels: 2},
	{name: "levels4", levels: 4},
	{name: "bw", palette: mustPalette("bw")},
	{name: "ega", palette: mustPalette("ega")},
	{name: "custom", palette: customPalette},
}

// allowed returns whether a colour may be output with s.
func (s paletteSetup) allowed() func(r, g, b byte) bool {
	if s.levels > 0 {
		var level [256]bool
		for i := range s.levels {
			level[(i*255+(s.levels-1)/2)/(s.levels-1)] = true
		}
		return func(r, g, b byte) bool { return level[r] && level[g] && level[b] }
	}
	m := make(map[[3]byte]bool)
	for _, c := range s.palette {
		m[[3]byte{c.R, c.G, c.B}] = true
	}
	return func(r, g, b byte) bool { return m[[3]byte{r, g, b}] }
}

// variant is a combination of the scan and colour-space switches.
type variant struct {
	name               string
	serpentine, linear bool
}

var variants = []variant{
	{"raster", false, false},
	{"serpentine", true, false},
	{"linear", false, true},
	{"serpentine-linear", true, true},
}

func isDiffusion(method string) bool {
	_, ok := kernels[method]
	return ok
}
