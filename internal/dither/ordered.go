package dither

import "github.com/imgd/imgd"

// matrix is an ordered dither threshold matrix of size×size (a power of
// two), with thresholds t = (rank+0.5)/size² in (0, 1).
type matrix struct {
	size int
	t    []float32
}

func newMatrix(size int, rank []int) *matrix {
	m := &matrix{size: size, t: make([]float32, len(rank))}
	for i, r := range rank {
		m.t[i] = (float32(r) + 0.5) / float32(len(rank))
	}
	return m
}

// bayer returns the ranks of the size×size Bayer matrix, built recursively:
// M(2n) = [4M+0 4M+2; 4M+3 4M+1].
func bayer(size int) []int {
	m := []int{0}
	for n := 1; n < size; n *= 2 {
		next := make([]int, 4*n*n)
		for y := range n {
			for x := range n {
				v := 4 * m[y*n+x]
				next[y*2*n+x] = v
				next[y*2*n+x+n] = v + 2
				next[(y+n)*2*n+x] = v + 3
				next[(y+n)*2*n+x+n] = v + 1
			}
		}
		m = next
	}
	return m
}

// clusteredDot8 is the classic 8×8 clustered-dot screen at 45°: dark dots
// grow from the centre of rank 0 and light dots from the centre of rank 63,
// two dots per tile, like an offset-print halftone.
var clusteredDot8 = []int{
	24, 10, 12, 26, 35, 47, 49, 37,
	8, 0, 2, 14, 45, 59, 61, 51,
	22, 6, 4, 16, 43, 57, 63, 53,
	30, 20, 18, 28, 33, 41, 55, 39,
	34, 46, 48, 36, 25, 11, 13, 27,
	44, 58, 60, 50, 9, 1, 3, 15,
	42, 56, 62, 52, 23, 7, 5, 17,
	32, 40, 54, 38, 31, 21, 19, 29,
}

// matrices holds the ordered dither matrices, read-only.
var matrices = map[string]*matrix{
	imgd.DitherBayer2:       newMatrix(2, bayer(2)),
	imgd.DitherBayer4:       newMatrix(4, bayer(4)),
	imgd.DitherBayer8:       newMatrix(8, bayer(8)),
	imgd.DitherClusteredDot: newMatrix(8, clusteredDot8),
}

// ordered dithers img with threshold matrix m; one threshold t serves all
// three channels of a pixel, so grey stays grey.
//
// With levels, a channel whose value lies the fraction f of the way from
// level lo to level hi (in working values) becomes hi when f > 1-t: the same
// as offsetting it by (t-0.5)×(hi-lo) and taking the nearer of lo and hi,
// so on average each channel keeps its value (in linear light when Linear).
// With a palette, the colour is offset by (t-0.5)×spread on every channel
// before the nearest colour is looked up, the spread being that of the
// colour's own nearest palette colour (see palette.spread): local rather
// than one figure for the whole palette, so that colours of the palette stay
// as they are and dark colours, close together in linear light, are not
// mixed with far brighter ones.
func ordered(img pixels, m *matrix, q *quantizer) {
	w, bands, mask := img.width, img.bands, m.size-1
	for y := range img.height {
		line := img.pix[y*w*bands : (y+1)*w*bands]
		ts := m.t[(y&mask)*m.size : (y&mask+1)*m.size]
		if lv := q.lv; lv != nil {
			for x := range w {
				p := line[x*bands : x*bands+3 : x*bands+3]
				u := 1 - ts[x&mask]
				for c, v := range p {
					if lv.frac[v] > u {
						p[c] = lv.hi[v]
					} else {
						p[c] = lv.lo[v]
					}
				}
			}
			continue
		}
		pal, work := q.pal, q.work
		for x := range w {
			p := line[x*bands : x*bands+3 : x*bands+3]
			r, g, b := work[p[0]], work[p[1]], work[p[2]]
			o := (ts[x&mask] - 0.5) * pal.spread[pal.nearest(r, g, b)]
			c := pal.out[pal.nearest(clamp(r+o), clamp(g+o), clamp(b+o))]
			p[0], p[1], p[2] = c.R, c.G, c.B
		}
	}
}
