package dither

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/imgd/imgd"
)

// This file holds a slow, plain reference of what Apply computes, written
// from the textbook forms: whole-image float64 buffers, kernels as
// matrices, brute-force nearest colours. Apply works in float32 and in
// another order, so the two agree exactly unless a decision was a near tie.
// The reference marks the pixels it is sure of: with ordered dithering,
// those whose decisions were clear by refMargin; with error diffusion, those
// before the first unclear decision in scan order (a different decision
// there changes the error passed on, and so what follows).
const refMargin = 0.01 // working units (sRGB code values, or linear light ×255)

// X marks the current pixel in refKernels' first row.
const X = -1

// refKernels are the error diffusion matrices as published; each divides
// by div.
var refKernels = map[string]struct {
	div  float64
	rows [][]int
}{
	imgd.DitherFloydSteinberg: {16, [][]int{
		{0, X, 7},
		{3, 5, 1},
	}},
	imgd.DitherAtkinson: {8, [][]int{
		{0, X, 1, 1},
		{1, 1, 1, 0},
		{0, 1, 0, 0},
	}},
	imgd.DitherJJN: {48, [][]int{
		{0, 0, X, 7, 5},
		{3, 5, 7, 5, 3},
		{1, 3, 5, 3, 1},
	}},
	imgd.DitherStucki: {42, [][]int{
		{0, 0, X, 8, 4},
		{2, 4, 8, 4, 2},
		{1, 2, 4, 2, 1},
	}},
	imgd.DitherBurkes: {32, [][]int{
		{0, 0, X, 8, 4},
		{2, 4, 8, 4, 2},
	}},
	imgd.DitherSierra: {32, [][]int{
		{0, 0, X, 5, 3},
		{2, 4, 5, 4, 2},
		{0, 2, 3, 2, 0},
	}},
	imgd.DitherSierraTwoRow: {16, [][]int{
		{0, 0, X, 4, 3},
		{1, 2, 3, 2, 1},
	}},
	imgd.DitherSierraLite: {4, [][]int{
		{0, X, 2},
		{1, 1, 0},
	}},
}

// refMatrices are the published ordered dither matrices (ranks).
var refMatrices = map[string][][]int{
	imgd.DitherBayer2: {
		{0, 2},
		{3, 1},
	},
	imgd.DitherBayer4: {
		{0, 8, 2, 10},
		{12, 4, 14, 6},
		{3, 11, 1, 9},
		{15, 7, 13, 5},
	},
	imgd.DitherBayer8: {
		{0, 32, 8, 40, 2, 34, 10, 42},
		{48, 16, 56, 24, 50, 18, 58, 26},
		{12, 44, 4, 36, 14, 46, 6, 38},
		{60, 28, 52, 20, 62, 30, 54, 22},
		{3, 35, 11, 43, 1, 33, 9, 41},
		{51, 19, 59, 27, 49, 17, 57, 25},
		{15, 47, 7, 39, 13, 45, 5, 37},
		{63, 31, 55, 23, 61, 29, 53, 21},
	},
}

// refColors is the set of output colours of an Options, in working values
// (float64) and as bytes.
type refColors struct {
	work    [][3]float64
	out     [][3]byte
	levels  bool // quantise each channel on its own, to work[i][0]
	redmean bool
}

func refWork(v byte, linear bool) float64 {
	if linear {
		return sRGBToLinear(float64(v)/255) * 255
	}
	return float64(v)
}

func newRefColors(opt Options) refColors {
	rc := refColors{levels: opt.Levels > 0, redmean: !opt.Linear}
	add := func(r, g, b byte) {
		rc.out = append(rc.out, [3]byte{r, g, b})
		rc.work = append(rc.work, [3]float64{refWork(r, opt.Linear), refWork(g, opt.Linear), refWork(b, opt.Linear)})
	}
	if rc.levels {
		for i := range opt.Levels {
			v := byte(math.Round(float64(i) * 255 / float64(opt.Levels-1)))
			add(v, v, v)
		}
	} else {
		for _, c := range opt.Palette {
			add(c.R, c.G, c.B)
		}
	}
	return rc
}

func (rc refColors) dist(a, b [3]float64) float64 {
	dr, dg, db := a[0]-b[0], a[1]-b[1], a[2]-b[2]
	if !rc.redmean {
		return dr*dr + dg*dg + db*db
	}
	rm := (a[0] + b[0]) / 2
	return (2+rm/256)*dr*dr + 4*dg*dg + (2+(255-rm)/256)*db*db
}

// nearest returns the output and working value nearest to v, and how
// clear the choice was: the gap between the nearest and the next in
// working units.
func (rc refColors) nearest(v [3]float64) (out [3]byte, q [3]float64, margin float64) {
	margin = math.Inf(1)
	if rc.levels {
		for c := range 3 {
			best, second := -1, -1
			for i, l := range rc.work {
				d := math.Abs(v[c] - l[0])
				if best < 0 || d < math.Abs(v[c]-rc.work[best][0]) {
					best, second = i, best
				} else if second < 0 || d < math.Abs(v[c]-rc.work[second][0]) {
					second = i
				}
			}
			out[c], q[c] = rc.out[best][0], rc.work[best][0]
			if second >= 0 {
				margin = min(margin, math.Abs(v[c]-rc.work[second][0])-math.Abs(v[c]-q[c]))
			}
		}
		return out, q, margin
	}
	best, bd, sd := 0, math.Inf(1), math.Inf(1)
	for i, p := range rc.work {
		switch d := rc.dist(v, p); {
		case d < bd:
			best, bd, sd = i, d, bd
		case d < sd:
			sd = d
		}
	}
	if !math.IsInf(sd, 1) {
		margin = math.Sqrt(sd) - math.Sqrt(bd)
	}
	return rc.out[best], rc.work[best], margin
}

// refDiffuse dithers pix by error diffusion as textbooks write it, with
// Apply's conventions: serpentine rows are the odd ones; a palette clamps
// the working value to [overMin, overMax], levels do not.
func refDiffuse(pix []byte, w, h, bands int, opt Options) (sure []bool) {
	k := refKernels[opt.Method]
	rc := newRefColors(opt)
	cx := slices.Index(k.rows[0], X)
	buf := make([][3]float64, w*h)
	for i := range buf {
		for c := range 3 {
			buf[i][c] = refWork(pix[i*bands+c], opt.Linear)
		}
	}
	sure = make([]bool, w*h)
	unclear := false
	for y := range h {
		reverse := opt.Serpentine && y%2 == 1
		for i := range w {
			px := i
			if reverse {
				px = w - 1 - i
			}
			v := buf[y*w+px]
			if !rc.levels {
				for c := range v {
					v[c] = min(max(v[c], overMin), overMax)
				}
			}
			out, q, m := rc.nearest(v)
			unclear = unclear || m < refMargin
			sure[y*w+px] = !unclear
			copy(pix[(y*w+px)*bands:], out[:])
			for dy, row := range k.rows {
				for col, wt := range row {
					if wt <= 0 {
						continue
					}
					dx := col - cx
					if reverse {
						dx = -dx
					}
					nx, ny := px+dx, y+dy
					if nx < 0 || nx >= w || ny >= h {
						continue
					}
					for c := range 3 {
						buf[ny*w+nx][c] += (v[c] - q[c]) * float64(wt) / k.div
					}
				}
			}
		}
	}
	return sure
}

// refOrdered dithers pix with an ordered matrix: with levels, each channel
// is offset by (t-0.5) times the step between the levels around it and
// becomes the nearer of those two; with a palette, every channel is offset
// by (t-0.5) times the spread of the colour's nearest palette colour before
// the nearest colour is taken.
func refOrdered(pix []byte, w, h, bands int, opt Options, ranks [][]int) (sure []bool) {
	rc := newRefColors(opt)
	n := len(ranks)
	sure = make([]bool, w*h)
	for y := range h {
		for px := range w {
			t := (float64(ranks[y%n][px%n]) + 0.5) / float64(n*n)
			p := pix[(y*w+px)*bands:]
			sure[y*w+px] = rc.ordered(p, t, opt) >= refMargin
		}
	}
	return sure
}

// ordered dithers one pixel p with threshold t and returns how clear its
// decisions were.
func (rc refColors) ordered(p []byte, t float64, opt Options) (margin float64) {
	var v [3]float64
	for c := range 3 {
		v[c] = refWork(p[c], opt.Linear)
	}
	margin = math.Inf(1)
	if rc.levels {
		for c := range 3 {
			lo, hi := levelDown(opt.Levels, p[c]), levelUp(opt.Levels, p[c])
			if lo == hi {
				continue
			}
			wlo, whi := refWork(lo, opt.Linear), refWork(hi, opt.Linear)
			v := v[c] + (t-0.5)*(whi-wlo)
			mid := (wlo + whi) / 2
			margin = min(margin, math.Abs(v-mid))
			if v > mid {
				p[c] = hi
			} else {
				p[c] = lo
			}
		}
		return margin
	}
	_, q, m := rc.nearest(v)
	margin = min(margin, m)
	o := (t - 0.5) * rc.spread(q)
	for c := range 3 {
		v[c] = min(max(v[c]+o, overMin), overMax)
	}
	out, _, m := rc.nearest(v)
	copy(p, out[:])
	return min(margin, m)
}

// spread is how far ordered dithering may offset colours whose nearest
// palette colour is q: twice the smallest offset o along the grey diagonal
// at which q+o is as near to another colour p as to q, at most 2*maxWork.
// dist(q+o, p) - dist(q+o, q) is a quadratic in o for both distances, so it
// is sampled at -1, 0 and 1 and solved.
func (rc refColors) spread(q [3]float64) float64 {
	half := float64(maxWork)
	for _, p := range rc.work {
		f := func(o float64) float64 {
			v := [3]float64{q[0] + o, q[1] + o, q[2] + o}
			return rc.dist(v, p) - rc.dist(v, q)
		}
		c := f(0)
		if c == 0 {
			continue // p is q
		}
		a, b := (f(1)+f(-1))/2-c, (f(1)-f(-1))/2
		if math.Abs(a) < 1e-9*c {
			a = 0
		}
		var roots []float64
		switch disc := b*b - 4*a*c; {
		case a == 0 && b != 0:
			roots = []float64{-c / b}
		case a != 0 && disc >= 0:
			roots = []float64{(-b + math.Sqrt(disc)) / (2 * a), (-b - math.Sqrt(disc)) / (2 * a)}
		}
		for _, r := range roots {
			half = min(half, math.Abs(r))
		}
	}
	return 2 * half
}

// TestApplyMatchesReference compares Apply with the reference on small
// noise images for every method, several palettes and every variant, pixel
// by pixel where the reference is sure.
func TestApplyMatchesReference(t *testing.T) {
	t.Parallel()
	const w, h = 19, 11
	refSetups := append(slices.Clone(setups),
		paletteSetup{name: "levels3", levels: 3},
		paletteSetup{name: "levels256", levels: 256},
		paletteSetup{name: "gameboy", palette: mustPalette("gameboy")},
		paletteSetup{name: "websafe", palette: mustPalette("websafe")},
	)
	for _, method := range imgd.DitherMethods {
		for _, s := range refSetups {
			for _, v := range variants {
				name := method + "/" + s.name + "/" + v.name
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					opt := s.options(method, v)
					compared := 0
					for seed := range uint64(6) {
						rng := rand.New(rand.NewPCG(seed, 42))
						in := make([]byte, w*h*4)
						for i := range in {
							in[i] = byte(rng.UintN(256))
						}
						want := slices.Clone(in)
						var sure []bool
						if ranks, ok := refMatrices[method]; ok {
							sure = refOrdered(want, w, h, 4, opt, ranks)
						} else if method == imgd.DitherClusteredDot {
							sure = refOrdered(want, w, h, 4, opt, squareRanks(clusteredDot8, 8))
						} else {
							sure = refDiffuse(want, w, h, 4, opt)
						}
						got := slices.Clone(in)
						if err := Apply(got, w, h, 4, opt); err != nil {
							t.Fatalf("Apply(%s) = %v, want nil", name, err)
						}
						for i, ok := range sure {
							if !ok {
								continue
							}
							compared++
							if g, w := got[i*4:i*4+4], want[i*4:i*4+4]; !slices.Equal(g, w) {
								t.Fatalf("Apply(%s) on seed %d: pixel %d = %v, want %v (the reference's)", name, seed, i, g, w)
							}
						}
					}
					if total := 6 * w * h; compared < total/4 {
						t.Errorf("Apply(%s): compared %d of %d pixels, want >= 1/4 (too many near ties)", name, compared, total)
					}
				})
			}
		}
	}
}

func squareRanks(r []int, n int) [][]int {
	m := make([][]int, n)
	for y := range m {
		m[y] = r[y*n : (y+1)*n]
	}
	return m
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

func TestMatrices(t *testing.T) {
	t.Parallel()
	for name, want := range refMatrices {
		n := len(want)
		if got := squareRanks(bayer(n), n); len(got) != n {
			t.Fatalf("bayer(%d) has %d rows, want %d", n, len(got), n)
		}
		if got := squareRanks(bayer(n), n); !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("bayer(%d) = %v, want %v (%s)", n, got, want, name)
		}
	}
	if got := slices.Sorted(slices.Values(clusteredDot8)); !isPermutation(got) {
		t.Errorf("clusteredDot8 ranks = %v, want 0..63 once each", got)
	}
	for name, m := range matrices {
		for i, v := range m.t {
			if v <= 0 || v >= 1 {
				t.Errorf("matrices[%s].t[%d] = %v, want in (0, 1)", name, i, v)
			}
		}
	}
}

func isPermutation(sorted []int) bool {
	for i, v := range sorted {
		if v != i {
			return false
		}
	}
	return true
}

// TestLevelsNearest checks levels.nearest for every level count, in sRGB
// and linear light, against a search over the levels, at and around every
// boundary and on a fine grid including values outside [0, 255].
func TestLevelsNearest(t *testing.T) {
	t.Parallel()
	for _, linear := range []bool{false, true} {
		work := sRGBWork
		if linear {
			work = linearWork
		}
		for n := 2; n <= 256; n++ {
			l := newLevels(n, work)
			var vs []float32
			for i := range n - 1 {
				mid := (float64(l.val[i]) + float64(l.val[i+1])) / 2
				for _, d := range []float64{-1e-2, -1e-3, 1e-3, 1e-2} {
					vs = append(vs, float32(mid+d))
				}
			}
			for v := -130.0; v < 390; v += 0.0137 {
				vs = append(vs, float32(v))
			}
			for _, v := range vs {
				// The levels are increasing: the nearest is the first at or
				// above v or the one before it, the lower on a tie.
				want, _ := slices.BinarySearch(l.val[:n], v)
				if want == n || want > 0 && float64(v)-float64(l.val[want-1]) <= float64(l.val[want])-float64(v) {
					want--
				}
				if got := l.nearest(v); int(got) != want {
					t.Fatalf("levels(%d, linear=%v).nearest(%v) = %d (%v), want %d (%v)",
						n, linear, v, got, l.val[got], want, l.val[want])
				}
			}
		}
	}
}

// TestPaletteNearest checks the cell search against a search over every
// colour, for named and random palettes up to 256 colours, at random points
// of the whole working range.
func TestPaletteNearest(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	palettes := map[string][]imgd.RGBA{}
	for _, name := range imgd.PaletteNames() {
		palettes[name] = mustPalette(name)
	}
	palettes["custom"] = customPalette
	for _, n := range []int{1, 2, 3, 17, 100, 256} {
		p := make([]imgd.RGBA, n)
		for i := range p {
			p[i] = imgd.RGBA{R: byte(rng.UintN(256)), G: byte(rng.UintN(256)), B: byte(rng.UintN(256)), A: 255}
		}
		palettes[fmt.Sprintf("random%d", n)] = p
	}
	// 256 greys within 8 code values of each other: long candidate lists.
	crowd := make([]imgd.RGBA, 256)
	for i := range crowd {
		v := byte(120 + i%8)
		crowd[i] = imgd.RGBA{R: v, G: v, B: byte(120 + i/32), A: 255}
	}
	palettes["crowd"] = crowd
	for name, colors := range palettes {
		for _, linear := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/linear=%v", name, linear), func(t *testing.T) {
				t.Parallel()
				work := sRGBWork
				if linear {
					work = linearWork
				}
				p := newPalette(colors, work, !linear, true)
				rng := rand.New(rand.NewPCG(5, 6))
				for range 20000 {
					var v [3]float32
					for c := range v {
						v[c] = overMin + rng.Float32()*(overMax-overMin)
						if rng.IntN(2) == 0 {
							v[c] = rng.Float32() * maxWork
						}
					}
					want, wd := 0, float32(math.Inf(1))
					for i := range p.n {
						if d := p.dist(v[0], v[1], v[2], uint8(i)); d < wd {
							want, wd = i, d
						}
					}
					if got := p.nearest(v[0], v[1], v[2]); int(got) != want {
						t.Fatalf("palette(%s).nearest(%v) = %d at %v, want %d at %v",
							name, v, got, p.dist(v[0], v[1], v[2], got), want, wd)
					}
				}
			})
		}
	}
}
