package orient

// Scans are often lit unevenly: one global threshold then takes a dark
// corner for ink. flatten divides each pixel by a smooth estimate of the
// paper's brightness around it (a high percentile per block, interpolated
// between block centres), so that the paper becomes uniformly white.
// Light-on-dark pages (screens) are inverted first so the ink is dark.

// flattenBlocks is the number of blocks across the shorter side: blocks
// must be larger than a text line so that each holds some paper.
const flattenBlocks = 12

func flatten(g gray) gray {
	var hist [256]int
	for _, v := range g.pix {
		hist[v]++
	}
	out := gray{pix: make([]uint8, len(g.pix)), w: g.w, h: g.h}
	invert := histMedian(&hist, 0, 255) < 128
	for i, v := range g.pix {
		if invert {
			v = 255 - v
		}
		out.pix[i] = v
	}
	b := max(8, min(g.w, g.h)/flattenBlocks)
	bw, bh := (g.w+b-1)/b, (g.h+b-1)/b
	paper := make([]float64, bw*bh)
	for by := range bh {
		for bx := range bw {
			paper[by*bw+bx] = blockPercentile(out, bx*b, by*b, b, 0.9)
		}
	}
	for y := range g.h {
		fy := (float64(y)+0.5)/float64(b) - 0.5
		for x := range g.w {
			fx := (float64(x)+0.5)/float64(b) - 0.5
			p := interp(paper, bw, bh, fx, fy)
			v := float64(out.pix[y*g.w+x]) * 255 / max(p, 32)
			out.pix[y*g.w+x] = uint8(min(v, 255) + 0.5)
		}
	}
	return out
}

// blockPercentile is the level below which frac of the block's pixels lie.
func blockPercentile(g gray, x0, y0, b int, frac float64) float64 {
	var hist [256]int
	n := 0
	for y := y0; y < min(y0+b, g.h); y++ {
		for _, v := range g.pix[y*g.w+x0 : y*g.w+min(x0+b, g.w)] {
			hist[v]++
			n++
		}
	}
	want := int(frac * float64(n))
	c := 0
	for i, k := range hist {
		c += k
		if c > want {
			return float64(i)
		}
	}
	return 255
}

// interp samples the block grid bilinearly at block coordinates fx, fy.
func interp(v []float64, w, h int, fx, fy float64) float64 {
	fx = min(max(fx, 0), float64(w-1))
	fy = min(max(fy, 0), float64(h-1))
	x0, y0 := int(fx), int(fy)
	x1, y1 := min(x0+1, w-1), min(y0+1, h-1)
	ax, ay := fx-float64(x0), fy-float64(y0)
	top := v[y0*w+x0]*(1-ax) + v[y0*w+x1]*ax
	bot := v[y1*w+x0]*(1-ax) + v[y1*w+x1]*ax
	return top*(1-ay) + bot*ay
}
