package dither

import "github.com/imgd/imgd"

// tap sends weight w of a pixel's error to the pixel dx to the right
// (mirrored when scanning right to left) and dy rows below.
type tap struct {
	dx, dy int
	w      float32
}

// kernel is an error diffusion matrix.
type kernel struct {
	taps []tap
	rows int // 1 + the largest dy
	pad  int // the largest |dx|
}

// newKernel builds a kernel from {dx, dy, weight} triples and the divisor
// of the weights.
func newKernel(div float32, taps ...[3]int) *kernel {
	k := &kernel{rows: 1}
	for _, t := range taps {
		k.taps = append(k.taps, tap{dx: t[0], dy: t[1], w: float32(t[2]) / div})
		k.rows = max(k.rows, t[1]+1)
		k.pad = max(k.pad, t[0], -t[0])
	}
	return k
}

// kernels holds the error diffusion matrices, read-only. Each sums to 1
// except Atkinson's, which diffuses 6/8 of the error by design.
var kernels = map[string]*kernel{
	//     X 7
	//   3 5 1   (/16)
	imgd.DitherFloydSteinberg: newKernel(16,
		[3]int{1, 0, 7},
		[3]int{-1, 1, 3}, [3]int{0, 1, 5}, [3]int{1, 1, 1}),
	//     X 1 1
	//   1 1 1
	//     1      (/8)
	imgd.DitherAtkinson: newKernel(8,
		[3]int{1, 0, 1}, [3]int{2, 0, 1},
		[3]int{-1, 1, 1}, [3]int{0, 1, 1}, [3]int{1, 1, 1},
		[3]int{0, 2, 1}),
	//       X 7 5
	//   3 5 7 5 3
	//   1 3 5 3 1   (/48)
	imgd.DitherJJN: newKernel(48,
		[3]int{1, 0, 7}, [3]int{2, 0, 5},
		[3]int{-2, 1, 3}, [3]int{-1, 1, 5}, [3]int{0, 1, 7}, [3]int{1, 1, 5}, [3]int{2, 1, 3},
		[3]int{-2, 2, 1}, [3]int{-1, 2, 3}, [3]int{0, 2, 5}, [3]int{1, 2, 3}, [3]int{2, 2, 1}),
	//       X 8 4
	//   2 4 8 4 2
	//   1 2 4 2 1   (/42)
	imgd.DitherStucki: newKernel(42,
		[3]int{1, 0, 8}, [3]int{2, 0, 4},
		[3]int{-2, 1, 2}, [3]int{-1, 1, 4}, [3]int{0, 1, 8}, [3]int{1, 1, 4}, [3]int{2, 1, 2},
		[3]int{-2, 2, 1}, [3]int{-1, 2, 2}, [3]int{0, 2, 4}, [3]int{1, 2, 2}, [3]int{2, 2, 1}),
	//       X 8 4
	//   2 4 8 4 2   (/32)
	imgd.DitherBurkes: newKernel(32,
		[3]int{1, 0, 8}, [3]int{2, 0, 4},
		[3]int{-2, 1, 2}, [3]int{-1, 1, 4}, [3]int{0, 1, 8}, [3]int{1, 1, 4}, [3]int{2, 1, 2}),
	//       X 5 3
	//   2 4 5 4 2
	//     2 3 2     (/32)
	imgd.DitherSierra: newKernel(32,
		[3]int{1, 0, 5}, [3]int{2, 0, 3},
		[3]int{-2, 1, 2}, [3]int{-1, 1, 4}, [3]int{0, 1, 5}, [3]int{1, 1, 4}, [3]int{2, 1, 2},
		[3]int{-1, 2, 2}, [3]int{0, 2, 3}, [3]int{1, 2, 2}),
	//       X 4 3
	//   1 2 3 2 1   (/16)
	imgd.DitherSierraTwoRow: newKernel(16,
		[3]int{1, 0, 4}, [3]int{2, 0, 3},
		[3]int{-2, 1, 1}, [3]int{-1, 1, 2}, [3]int{0, 1, 3}, [3]int{1, 1, 2}, [3]int{2, 1, 1}),
	//     X 2
	//   1 1     (/4)
	imgd.DitherSierraLite: newKernel(4,
		[3]int{1, 0, 2},
		[3]int{-1, 1, 1}, [3]int{0, 1, 1}),
}

// diffuse dithers img by error diffusion with kernel k. The error for the
// rows below lives in k.rows-1 rows of width+2*k.pad float32 triples (plus
// one for the current row), reused as a ring; the padding takes the error
// that falls off the sides. The error for the next two pixels of the current
// row is carried in registers.
//
// A palette may be unable to absorb a pixel's error at once, so the working
// value is clamped to [overMin, overMax] before it is quantised and the error
// is taken from the clamped value. Levels need no clamp: their extremes are 0
// and maxWork, so the error never exceeds half a level step.
func diffuse(img pixels, k *kernel, q *quantizer, serpentine bool) {
	w, bands := img.width, img.bands
	stride := (w + 2*k.pad) * 3
	buf := make([]float32, k.rows*stride)

	// Taps on the current row go to the carries (a1 to the next pixel, a2
	// to the one after); the others become an offset within their row for
	// each scan direction.
	type step struct {
		row, off int
		w        float32
	}
	var a1, a2 float32
	var fwd, bwd []step
	for _, t := range k.taps {
		switch {
		case t.dy == 0 && t.dx == 1:
			a1 = t.w
		case t.dy == 0 && t.dx == 2:
			a2 = t.w
		case t.dy == 0:
			panic("dither: kernel tap on the current row beyond two pixels")
		default:
			fwd = append(fwd, step{row: t.dy, off: 3 * t.dx, w: t.w})
			bwd = append(bwd, step{row: t.dy, off: -3 * t.dx, w: t.w})
		}
	}

	work, lv, pal := q.work, q.lv, q.pal
	offs := make([]int, len(fwd)) // this row's taps, as offsets in buf from the pixel's error
	for y := range img.height {
		base := y % k.rows * stride
		cur := buf[base : base+stride]
		line := img.pix[y*w*bands : (y+1)*w*bands]
		steps, x, end, dir := fwd, 0, w, 1
		if serpentine && y%2 == 1 {
			steps, x, end, dir = bwd, w-1, -1, -1
		}
		for i, s := range steps {
			offs[i] = (y+s.row)%k.rows*stride - base + s.off
		}
		var c1r, c1g, c1b, c2r, c2g, c2b float32 // carried error
		for ; x != end; x += dir {
			p := line[x*bands : x*bands+3 : x*bands+3]
			e := (x + k.pad) * 3
			ec := cur[e : e+3 : e+3]
			r := work[p[0]] + ec[0] + c1r
			g := work[p[1]] + ec[1] + c1g
			b := work[p[2]] + ec[2] + c1b
			var qr, qg, qb float32
			if lv != nil {
				ir, ig, ib := lv.nearest(r), lv.nearest(g), lv.nearest(b)
				p[0], p[1], p[2] = lv.out[ir], lv.out[ig], lv.out[ib]
				qr, qg, qb = lv.val[ir], lv.val[ig], lv.val[ib]
			} else {
				r, g, b = clamp(r), clamp(g), clamp(b)
				i := pal.nearest(r, g, b)
				c := pal.out[i]
				p[0], p[1], p[2] = c.R, c.G, c.B
				qr, qg, qb = pal.r[i], pal.g[i], pal.b[i]
			}
			er, eg, eb := r-qr, g-qg, b-qb
			c1r, c2r = c2r+er*a1, er*a2
			c1g, c2g = c2g+eg*a1, eg*a2
			c1b, c2b = c2b+eb*a1, eb*a2
			for i, s := range steps {
				o := base + e + offs[i]
				d := buf[o : o+3 : o+3]
				d[0] += er * s.w
				d[1] += eg * s.w
				d[2] += eb * s.w
			}
		}
		clear(cur)
	}
}

// clamp limits v to [overMin, overMax].
func clamp(v float32) float32 {
	return min(max(v, overMin), overMax)
}
