package dither

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/imgd/imgd"
)

func (s paletteSetup) options(method string, v variant) Options {
	return Options{Method: method, Levels: s.levels, Palette: s.palette, Serpentine: v.serpentine, Linear: v.linear}
}

// TestApplyOutputsOnlyPaletteColors dithers a photo-like image with every
// method, palette and variant, with and without alpha, and checks every
// output pixel against the allowed colours and every alpha byte against the
// input. gameboy is a palette far from most input colours.
func TestApplyOutputsOnlyPaletteColors(t *testing.T) {
	t.Parallel()
	const w, h = 67, 45 // odd sizes, not multiples of any matrix
	all := append(slices.Clone(setups), paletteSetup{name: "gameboy", palette: mustPalette("gameboy")})
	for _, method := range imgd.DitherMethods {
		for _, s := range all {
			for _, v := range variants {
				for _, bands := range []int{3, 4} {
					name := fmt.Sprintf("%s/%s/%s/bands%d", method, s.name, v.name, bands)
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						in := photoImage(w, h, bands, 7)
						out := slices.Clone(in)
						if err := Apply(out, w, h, bands, s.options(method, v)); err != nil {
							t.Fatalf("Apply(%s) = %v, want nil", name, err)
						}
						checkOutput(t, name, in, out, bands, s.allowed())
					})
				}
			}
		}
	}
}

// checkOutput fails t if a pixel of out is not in allowed or an alpha byte
// differs from in.
func checkOutput(t *testing.T, name string, in, out []byte, bands int, allowed func(r, g, b byte) bool) {
	t.Helper()
	bad := 0
	for i := 0; i < len(out); i += bands {
		if !allowed(out[i], out[i+1], out[i+2]) {
			if bad++; bad <= 3 {
				t.Errorf("Apply(%s) pixel %d = #%02x%02x%02x, want a palette colour", name, i/bands, out[i], out[i+1], out[i+2])
			}
		}
		if bands == 4 && out[i+3] != in[i+3] {
			if bad++; bad <= 3 {
				t.Errorf("Apply(%s) alpha of pixel %d = %d, want %d (unchanged)", name, i/bands, out[i+3], in[i+3])
			}
		}
	}
	if bad > 3 {
		t.Errorf("Apply(%s): %d bad pixels in all", name, bad)
	}
}

// Error diffusion keeps the mean colour: what a pixel does not get is given
// to its neighbours. Over a block, the mean differs from the input's by the
// error that crosses the block's border (and by error a palette cannot
// absorb), which shrinks as blocks grow; over the whole image, only by the
// error that falls off its edges. The tolerances are the largest difference
// of a channel's mean from the input's, over 32×32 blocks and over the whole
// 256×256 image, in sRGB code values (0..255), or in linear light ×255 with
// Linear, with about 20% to spare over the worst case measured on the test
// images (in the comments). The custom palette's uneven spacing leaves
// larger errors in flight. Atkinson diffuses only 6/8 of the error, by
// design, so it clips highlights and shadows: its means move much more and
// it has tolerances of its own.
//
// A kernel whose weights sum to 15/16 or 17/16 moves the whole-image mean
// by 1.1 to 2.0 with levels2, ega and custom, over twice their tolerance
// (TestBlockMeanCatchesBrokenKernel); with levels4 and bw on these images
// such an error stays within the tolerance.
type meanTol struct{ block, image float64 }

var (
	meanTolerance = map[string]meanTol{
		"levels2": {6, 0.6},   // 5.0 (jarvis-judice-ninke), 0.45 (jarvis-judice-ninke)
		"levels4": {4, 0.3},   // 3.4 (jarvis-judice-ninke, linear), 0.23 (jarvis-judice-ninke)
		"bw":      {6, 0.5},   // 4.5 (jarvis-judice-ninke, linear), 0.39 (jarvis-judice-ninke)
		"ega":     {6, 0.45},  // 4.2 (jarvis-judice-ninke), 0.36 (jarvis-judice-ninke, linear)
		"custom":  {14, 0.75}, // 11.9 (jarvis-judice-ninke), 0.58 (sierra)
	}
	atkinsonMeanTolerance = map[string]meanTol{
		"levels2": {32, 15}, // 27.0, 12.4 (linear)
		"levels4": {14, 5},  // 11.6, 4.0 (linear)
		"bw":      {32, 20}, // 26.8, 17.0 (linear)
		"ega":     {33, 11}, // 27.4, 9.1 (linear)
		"custom":  {46, 9},  // 39.2, 7.6 (linear)
	}
)

const meanBlock, meanSize = 32, 256

// meanTestImages are the inputs of the block-mean tests for setup s: a
// gradient and two photo-like images, made grey for the black-and-white
// palette and squeezed into [96, 240] for EGA, whose colours span a cube
// from 0x55 to 0xff but not the whole RGB cube: error diffusion can only keep
// the mean of colours inside the palette's convex hull.
func meanTestImages(s paletteSetup) map[string][]byte {
	imgs := make(map[string][]byte)
	for name, pix := range meanImages() {
		switch s.name {
		case "bw":
			pix = mapColors(pix, 3, gray)
		case "ega":
			pix = mapColors(pix, 3, squeeze(96, 240))
		}
		imgs[name] = pix
	}
	return imgs
}

// meanImages are made once: tests only read them.
var meanImages = sync.OnceValue(func() map[string][]byte {
	return map[string][]byte{
		"gradient": gradientImage(meanSize, meanSize, 3),
		"photo1":   photoImage(meanSize, meanSize, 3, 1),
		"photo2":   photoImage(meanSize, meanSize, 3, 2),
	}
})

func TestApplyPreservesBlockMeans(t *testing.T) {
	t.Parallel()
	const w, h = meanSize, meanSize
	for _, method := range imgd.DitherMethods {
		if !isDiffusion(method) {
			continue
		}
		for _, s := range setups {
			tol := meanTolerance[s.name]
			if method == imgd.DitherAtkinson {
				tol = atkinsonMeanTolerance[s.name]
			}
			for _, v := range variants {
				t.Run(method+"/"+s.name+"/"+v.name, func(t *testing.T) {
					t.Parallel()
					for img, in := range meanTestImages(s) {
						out := slices.Clone(in)
						name := fmt.Sprintf("%s/%s/%s on %s", method, s.name, v.name, img)
						if err := Apply(out, w, h, 3, s.options(method, v)); err != nil {
							t.Fatalf("Apply(%s) = %v, want nil", name, err)
						}
						if got := blockMeanError(in, out, w, h, 3, meanBlock, v.linear); got > tol.block {
							t.Errorf("Apply(%s): a %dx%d block's mean moved by %.2f, want <= %.2f",
								name, meanBlock, meanBlock, got, tol.block)
						}
						if got := blockMeanError(in, out, w, h, 3, w, v.linear); got > tol.image {
							t.Errorf("Apply(%s): the image's mean moved by %.2f, want <= %.2f", name, got, tol.image)
						}
					}
				})
			}
		}
	}
}

// blockMeanError returns the largest difference between the means of a
// channel of in and out over a block×block block, in working values
// (sRGB code values, or linear light ×255).
func blockMeanError(in, out []byte, w, h, bands, block int, linear bool) float64 {
	work := sRGBWork
	if linear {
		work = linearWork
	}
	worst := 0.0
	for by := 0; by+block <= h; by += block {
		for bx := 0; bx+block <= w; bx += block {
			for c := range 3 {
				var sum float64
				for y := by; y < by+block; y++ {
					for x := bx; x < bx+block; x++ {
						i := (y*w+x)*bands + c
						sum += float64(work[out[i]]) - float64(work[in[i]])
					}
				}
				worst = max(worst, math.Abs(sum)/float64(block*block))
			}
		}
	}
	return worst
}

// TestBlockMeanCatchesBrokenKernel shows that TestApplyPreservesBlockMeans
// would fail if a kernel's weights did not sum to one: Floyd–Steinberg with
// its 1/16 dropped, or doubled, moves the means by more than the tolerance.
func TestBlockMeanCatchesBrokenKernel(t *testing.T) {
	t.Parallel()
	const w, h = meanSize, meanSize
	broken := map[string]*kernel{
		"15/16": newKernel(16, [3]int{1, 0, 7}, [3]int{-1, 1, 3}, [3]int{0, 1, 5}),
		"17/16": newKernel(16, [3]int{1, 0, 7}, [3]int{-1, 1, 3}, [3]int{0, 1, 5}, [3]int{1, 1, 2}),
	}
	for name, k := range broken {
		for _, s := range setups {
			if s.name == "levels4" || s.name == "bw" {
				continue // not sensitive enough on these images, see meanTolerance
			}
			t.Run(name+"/"+s.name, func(t *testing.T) {
				t.Parallel()
				tol := meanTolerance[s.name]
				var block, image float64
				for _, in := range meanTestImages(s) {
					out := slices.Clone(in)
					q, err := newQuantizer(Options{Levels: s.levels, Palette: s.palette}, false)
					if err != nil {
						t.Fatal(err)
					}
					diffuse(pixels{pix: out, width: w, height: h, bands: 3}, k, q, false)
					block = max(block, blockMeanError(in, out, w, h, 3, meanBlock, false))
					image = max(image, blockMeanError(in, out, w, h, 3, w, false))
				}
				if block <= tol.block && image <= tol.image {
					t.Errorf("diffuse(Floyd–Steinberg with weights summing to %s, %s): means moved by %.2f (blocks), %.2f (image), want > %.2f or > %.2f",
						name, s.name, block, image, tol.block, tol.image)
				}
			})
		}
	}
}

// TestApplyFloydSteinbergByHand checks a 3×3 grey image against values
// worked out by hand (in exact fractions): levels 2, so values above 127.5
// become 255; error 7/16 to the next pixel, 3/16 below behind, 5/16 below,
// 1/16 below ahead. Levels are not clamped, so a value over 255 keeps its
// error.
func TestApplyFloydSteinbergByHand(t *testing.T) {
	t.Parallel()
	in := []byte{
		90, 160, 40,
		250, 70, 110,
		140, 230, 120,
	}
	tests := []struct {
		name       string
		serpentine bool
		want       []byte
	}{
		// (x,y) input + error received = value → output, error:
		//   (0,0) 90 = 90.00 → 0, error 90.00
		//   (1,0) 160 + 90.00·7/16 = 199.38 → 255, error -55.62
		//   (2,0) 40 - 55.62·7/16 = 15.66 → 0, error 15.66
		//   (0,1) 250 + 90.00·5/16 - 55.62·3/16 = 267.70 → 255, error 12.70
		//   (1,1) 70 + 90.00·1/16 - 55.62·5/16 + 15.66·3/16 + 12.70·7/16 = 66.73 → 0, error 66.73
		//   (2,1) 110 - 55.62·1/16 + 15.66·5/16 + 66.73·7/16 = 140.61 → 255, error -114.39
		//   (0,2) 140 + 12.70·5/16 + 66.73·3/16 = 156.48 → 255, error -98.52
		//   (1,2) 230 + 12.70·1/16 + 66.73·5/16 - 114.39·3/16 - 98.52·7/16 = 187.10 → 255, error -67.90
		//   (2,2) 120 + 66.73·1/16 - 114.39·5/16 - 67.90·7/16 = 58.72 → 0
		{"raster", false, []byte{
			0, 255, 0,
			255, 0, 255,
			255, 255, 0,
		}},
		// Row 1 runs right to left with the kernel mirrored:
		//   row 0 as above, errors 90.00, -55.62, 15.66
		//   (2,1) 110 - 55.62·1/16 + 15.66·5/16 = 111.42 → 0, error 111.42
		//   (1,1) 70 + 90.00·1/16 - 55.62·5/16 + 15.66·3/16 + 111.42·7/16 = 109.92 → 0, error 109.92
		//   (0,1) 250 + 90.00·5/16 - 55.62·3/16 + 109.92·7/16 = 315.79 → 255, error 60.79
		//   (0,2) 140 + 109.92·1/16 + 60.79·5/16 = 165.87 → 255, error -89.13
		//   (1,2) 230 + 111.42·1/16 + 109.92·5/16 + 60.79·3/16 - 89.13·7/16 = 243.72 → 255, error -11.28
		//   (2,2) 120 + 111.42·5/16 + 109.92·3/16 - 11.28·7/16 = 170.49 → 255
		{"serpentine", true, []byte{
			0, 255, 0,
			255, 0, 0,
			255, 255, 255,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pix := make([]byte, 0, 27)
			for _, v := range in {
				pix = append(pix, v, v, v)
			}
			opt := Options{Method: imgd.DitherFloydSteinberg, Levels: 2, Serpentine: tt.serpentine}
			if err := Apply(pix, 3, 3, 3, opt); err != nil {
				t.Fatalf("Apply(%s) = %v, want nil", tt.name, err)
			}
			got := make([]byte, 9)
			for i := range got {
				got[i] = pix[3*i]
				if pix[3*i+1] != got[i] || pix[3*i+2] != got[i] {
					t.Errorf("Apply(%s) pixel %d = %v, want grey", tt.name, i, pix[3*i:3*i+3])
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Apply(%s) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

// TestApplyOrderedByHand checks Bayer 2×2 on flat grey: thresholds
// t = (rank+0.5)/4 with ranks [0 2; 3 1]; a pixel becomes white when its
// value's fraction of the way from black to white exceeds 1-t.
func TestApplyOrderedByHand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value byte
		want  []byte // 4×2 pixels, one channel
	}{
		{0, []byte{0, 0, 0, 0, 0, 0, 0, 0}},
		{64, []byte{0, 0, 0, 0, 255, 0, 255, 0}},      // 0.25 > 1-t only for rank 3
		{128, []byte{0, 255, 0, 255, 255, 0, 255, 0}}, // ranks 2 and 3
		{200, []byte{0, 255, 0, 255, 255, 255, 255, 255}},
		{255, []byte{255, 255, 255, 255, 255, 255, 255, 255}},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("bayer2 on %d", tt.value)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pix := make([]byte, 4*2*4)
			for i := range pix {
				pix[i] = tt.value
				if i%4 == 3 {
					pix[i] = 77
				}
			}
			if err := Apply(pix, 4, 2, 4, Options{Method: imgd.DitherBayer2, Levels: 2}); err != nil {
				t.Fatalf("Apply(%s) = %v, want nil", name, err)
			}
			for i, want := range tt.want {
				if got := pix[4*i : 4*i+4]; !slices.Equal(got, []byte{want, want, want, 77}) {
					t.Errorf("Apply(%s) pixel %d = %v, want %v", name, i, got, []byte{want, want, want, 77})
				}
			}
		})
	}
}

// TestApplyOrderedLevelsKeepsMean: with levels, ordered dithering picks
// between the two levels around a value with the probability that keeps the
// value on average, so over whole tiles a flat area keeps its mean within
// half a step over the number of thresholds.
func TestApplyOrderedLevelsKeepsMean(t *testing.T) {
	t.Parallel()
	for _, method := range imgd.DitherMethods {
		m, ok := matrices[method]
		if !ok {
			continue
		}
		for _, levels := range []int{2, 3, 4, 16} {
			for _, linear := range []bool{false, true} {
				name := fmt.Sprintf("%s/levels%d/linear=%v", method, levels, linear)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					work := sRGBWork
					if linear {
						work = linearWork
					}
					// Every byte value as a flat 8×8 area (one tile of any
					// matrix), side by side.
					const tile = 8
					w, h := 256*tile, tile
					pix := make([]byte, w*h*3)
					for i := range pix {
						pix[i] = byte(i / 3 % w / tile)
					}
					if err := Apply(pix, w, h, 3, Options{Method: method, Levels: levels, Linear: linear}); err != nil {
						t.Fatalf("Apply(%s) = %v, want nil", name, err)
					}
					for v := range 256 {
						var sum float64
						for y := range h {
							for x := v * tile; x < (v+1)*tile; x++ {
								sum += float64(work[pix[(y*w+x)*3]])
							}
						}
						got := sum / (tile * tile)
						step := float64(work[levelUp(levels, byte(v))] - work[levelDown(levels, byte(v))])
						tol := step/float64(2*m.size*m.size) + 1e-3
						if d := math.Abs(got - float64(work[v])); d > tol {
							t.Errorf("Apply(%s) on flat %d: mean %.3f, want %.3f ± %.3f", name, v, got, work[v], tol)
						}
					}
				})
			}
		}
	}
}

// levelDown and levelUp return the levels at or below and at or above v.
func levelDown(n int, v byte) byte {
	for i := n - 1; i > 0; i-- {
		if l := byte((i*255 + (n-1)/2) / (n - 1)); l <= v {
			return l
		}
	}
	return 0
}

func levelUp(n int, v byte) byte {
	for i := range n {
		if l := byte((i*255 + (n-1)/2) / (n - 1)); l >= v {
			return l
		}
	}
	return 255
}

// TestApplyKeepsGrey: with levels, each channel is dithered alone with the
// same arithmetic, so grey input stays grey.
func TestApplyKeepsGrey(t *testing.T) {
	t.Parallel()
	const w, h = 61, 40
	in := mapColors(photoImage(w, h, 4, 3), 4, gray)
	for _, method := range imgd.DitherMethods {
		for _, levels := range []int{2, 5} {
			for _, v := range variants {
				name := fmt.Sprintf("%s/levels%d/%s", method, levels, v.name)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					pix := slices.Clone(in)
					opt := Options{Method: method, Levels: levels, Serpentine: v.serpentine, Linear: v.linear}
					if err := Apply(pix, w, h, 4, opt); err != nil {
						t.Fatalf("Apply(%s) = %v, want nil", name, err)
					}
					for i := 0; i < len(pix); i += 4 {
						if pix[i] != pix[i+1] || pix[i] != pix[i+2] {
							t.Fatalf("Apply(%s) pixel %d = %v, want grey", name, i/4, pix[i:i+3])
						}
					}
				})
			}
		}
	}
}

// TestApplyEdgeCases: empty and one-pixel-wide images, all-black input
// (nothing to divide by), one-colour palettes, and 256 levels (every byte
// is a level, so nothing changes).
func TestApplyEdgeCases(t *testing.T) {
	t.Parallel()
	sizes := [][2]int{{0, 0}, {0, 5}, {5, 0}, {1, 1}, {1, 17}, {17, 1}, {2, 2}}
	for _, method := range imgd.DitherMethods {
		for _, v := range variants {
			t.Run(method+"/"+v.name, func(t *testing.T) {
				t.Parallel()
				for _, sz := range sizes {
					w, h := sz[0], sz[1]
					in := photoImage(w, h, 4, 5)
					for _, s := range setups {
						out := slices.Clone(in)
						name := fmt.Sprintf("%s/%s/%s %dx%d", method, s.name, v.name, w, h)
						if err := Apply(out, w, h, 4, s.options(method, v)); err != nil {
							t.Fatalf("Apply(%s) = %v, want nil", name, err)
						}
						checkOutput(t, name, in, out, 4, s.allowed())
					}
				}

				black := make([]byte, 20*10*3)
				for _, s := range setups {
					out := slices.Clone(black)
					name := fmt.Sprintf("%s/%s/%s on black", method, s.name, v.name)
					if err := Apply(out, 20, 10, 3, s.options(method, v)); err != nil {
						t.Fatalf("Apply(%s) = %v, want nil", name, err)
					}
					if !slices.Equal(out, black) {
						t.Errorf("Apply(%s) = %v, want all black", name, out)
					}
				}

				in := photoImage(20, 10, 3, 6)
				one := paletteSetup{name: "one", palette: parseColors("#336699")}
				out := slices.Clone(in)
				name := fmt.Sprintf("%s/one-colour/%s", method, v.name)
				if err := Apply(out, 20, 10, 3, one.options(method, v)); err != nil {
					t.Fatalf("Apply(%s) = %v, want nil", name, err)
				}
				checkOutput(t, name, in, out, 3, one.allowed())

				out = slices.Clone(in)
				name = fmt.Sprintf("%s/levels256/%s", method, v.name)
				if err := Apply(out, 20, 10, 3, paletteSetup{levels: 256}.options(method, v)); err != nil {
					t.Fatalf("Apply(%s) = %v, want nil", name, err)
				}
				if !slices.Equal(out, in) {
					t.Errorf("Apply(%s) changed the image, want it unchanged", name)
				}
			})
		}
	}
}

func TestApplyRejectsBadArguments(t *testing.T) {
	t.Parallel()
	fs := imgd.DitherFloydSteinberg
	tests := []struct {
		name                 string
		pixLen               int
		width, height, bands int
		opt                  Options
		field                string
	}{
		{"unknown method", 12, 2, 2, 3, Options{Method: "floyd", Levels: 2}, "method"},
		{"empty method", 12, 2, 2, 3, Options{Levels: 2}, "method"},
		{"alias not normalised", 12, 2, 2, 3, Options{Method: "fs", Levels: 2}, "method"},
		{"levels 1", 12, 2, 2, 3, Options{Method: fs, Levels: 1}, "levels"},
		{"levels 257", 12, 2, 2, 3, Options{Method: fs, Levels: 257}, "levels"},
		{"levels -2", 12, 2, 2, 3, Options{Method: fs, Levels: -2}, "levels"},
		{"levels and palette", 12, 2, 2, 3, Options{Method: fs, Levels: 2, Palette: mustPalette("bw")}, "levels"},
		{"neither levels nor palette", 12, 2, 2, 3, Options{Method: fs}, "palette"},
		{"empty palette", 12, 2, 2, 3, Options{Method: fs, Palette: []imgd.RGBA{}}, "palette"},
		{"257 colours", 12, 2, 2, 3, Options{Method: fs, Palette: make([]imgd.RGBA, 257)}, "palette"},
		{"bands 1", 4, 2, 2, 1, Options{Method: fs, Levels: 2}, "bands"},
		{"bands 2", 8, 2, 2, 2, Options{Method: fs, Levels: 2}, "bands"},
		{"bands 5", 20, 2, 2, 5, Options{Method: fs, Levels: 2}, "bands"},
		{"negative width", 0, -1, 2, 3, Options{Method: fs, Levels: 2}, "size"},
		{"negative height", 0, 2, -1, 3, Options{Method: fs, Levels: 2}, "size"},
		{"overflow", 0, 1 << 40, 1 << 40, 3, Options{Method: fs, Levels: 2}, "size"},
		{"short buffer", 11, 2, 2, 3, Options{Method: fs, Levels: 2}, "pix"},
		{"long buffer", 13, 2, 2, 3, Options{Method: fs, Levels: 2}, "pix"},
		{"rgb buffer as rgba", 12, 2, 2, 4, Options{Method: fs, Levels: 2}, "pix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pix := make([]byte, tt.pixLen)
			for i := range pix {
				pix[i] = byte(37 * i)
			}
			in := slices.Clone(pix)
			err := Apply(pix, tt.width, tt.height, tt.bands, tt.opt)
			e, ok := errors.AsType[*imgd.Error](err)
			if !ok || e.Code != imgd.CodeInvalidArgument || e.Field != tt.field {
				t.Fatalf("Apply(%s) = %v, want an *imgd.Error with code %s and field %q",
					tt.name, err, imgd.CodeInvalidArgument, tt.field)
			}
			if !slices.Equal(pix, in) {
				t.Errorf("Apply(%s) changed pix, want it untouched", tt.name)
			}
		})
	}
}

// TestApplyConcurrent runs many Apply calls at once (run with -race) and
// checks each against the same call made alone.
func TestApplyConcurrent(t *testing.T) {
	t.Parallel()
	const w, h = 80, 60
	in := photoImage(w, h, 3, 11)
	var opts []Options
	for _, method := range imgd.DitherMethods {
		for _, s := range setups {
			opts = append(opts, s.options(method, variants[len(opts)%len(variants)]))
		}
	}
	want := make([][]byte, len(opts))
	for i, opt := range opts {
		want[i] = slices.Clone(in)
		if err := Apply(want[i], w, h, 3, opt); err != nil {
			t.Fatalf("Apply(%+v) = %v, want nil", opt, err)
		}
	}
	got := make([][]byte, len(opts))
	var wg sync.WaitGroup
	for i, opt := range opts {
		wg.Go(func() {
			got[i] = slices.Clone(in)
			_ = Apply(got[i], w, h, 3, opt)
		})
	}
	wg.Wait()
	for i, opt := range opts {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("Apply(%s/%d levels/%d colours) concurrently differs from alone, want equal",
				opt.Method, opt.Levels, len(opt.Palette))
		}
	}
}

// TestApplyOrderedKeepsPaletteColors: ordered dithering leaves a flat area
// of a palette colour as it is, for every named palette and the custom one.
func TestApplyOrderedKeepsPaletteColors(t *testing.T) {
	t.Parallel()
	palettes := map[string][]imgd.RGBA{"custom": customPalette}
	for _, name := range imgd.PaletteNames() {
		palettes[name] = mustPalette(name)
	}
	for name, colors := range palettes {
		for _, linear := range []bool{false, true} {
			for _, method := range imgd.DitherMethods {
				if isDiffusion(method) {
					continue
				}
				label := fmt.Sprintf("%s/%s/linear=%v", method, name, linear)
				t.Run(label, func(t *testing.T) {
					t.Parallel()
					const tile = 8
					pix := make([]byte, 0, len(colors)*tile*tile*3)
					for _, c := range colors {
						for range tile * tile {
							pix = append(pix, c.R, c.G, c.B)
						}
					}
					in := slices.Clone(pix)
					opt := Options{Method: method, Palette: colors, Linear: linear}
					if err := Apply(pix, tile, len(colors)*tile, 3, opt); err != nil {
						t.Fatalf("Apply(%s) = %v, want nil", label, err)
					}
					if i := firstDiff(pix, in); i >= 0 {
						p := i / 3
						t.Errorf("Apply(%s) on flat %v: pixel %d = %v, want unchanged", label, in[p*3:p*3+3], p, pix[p*3:p*3+3])
					}
				})
			}
		}
	}
}
