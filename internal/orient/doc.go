package orient

import (
	"math"
)

// Document analysis works on a grey copy whose long side is at most
// textMaxSide: text stays a few pixels tall for 300 dpi pages halved,
// and the work stays within tens of milliseconds.
const textMaxSide = 2400

// MaxSide is the longest side the analysis looks at: a larger image is
// first box-shrunk by the smallest integer factor that brings it under
// MaxSide, so a caller may do that shrink itself (and cheaper) first.
const MaxSide = textMaxSide

// gray is an 8-bit luminance image.
type gray struct {
	pix  []uint8
	w, h int
}

// grayForText converts im to luminance, box-shrinking by the smallest
// integer factor that brings it under textMaxSide. Alpha is composited on
// white, as a page would be shown.
func grayForText(im Image) gray {
	f := (max(im.Width, im.Height) + textMaxSide - 1) / textMaxSide
	return shrinkGray(im, f, f)
}

// shrinkGray box-averages fx×fy blocks of im's luminance.
func shrinkGray(im Image, fx, fy int) gray {
	w, h := max(im.Width/fx, 1), max(im.Height/fy, 1)
	out := gray{pix: make([]uint8, w*h), w: w, h: h}
	if fx == 1 && fy == 1 {
		for i := range out.pix {
			out.pix[i] = luma(im.Pix[i*im.Bands:], im.Bands)
		}
		return out
	}
	acc := make([]uint32, w)
	n := uint32(fx * fy)
	for y := range h {
		clear(acc)
		for yy := y * fy; yy < min((y+1)*fy, im.Height); yy++ {
			row := im.Pix[yy*im.Width*im.Bands:]
			for x := range w {
				var s uint32
				for xx := x * fx; xx < min((x+1)*fx, im.Width); xx++ {
					s += uint32(luma(row[xx*im.Bands:], im.Bands))
				}
				acc[x] += s
			}
		}
		for x := range w {
			out.pix[y*w+x] = uint8((acc[x] + n/2) / n)
		}
	}
	return out
}

// luma is the Rec. 601 luminance of one pixel, composited on white.
func luma(p []byte, bands int) uint8 {
	var v, a uint32
	switch bands {
	case 1:
		return p[0]
	case 2:
		v, a = uint32(p[0]), uint32(p[1])
	case 3:
		return uint8((299*uint32(p[0]) + 587*uint32(p[1]) + 114*uint32(p[2]) + 500) / 1000)
	default:
		v = (299*uint32(p[0]) + 587*uint32(p[1]) + 114*uint32(p[2]) + 500) / 1000
		a = uint32(p[3])
	}
	return uint8((v*a + 255*(255-a) + 127) / 255)
}

// otsu returns the threshold that best splits the histogram in two.
func otsu(hist *[256]int) int {
	total, sum := 0, 0.0
	for i, c := range hist {
		total += c
		sum += float64(i * c)
	}
	best, bestVar := 128, -1.0
	w0, sum0 := 0, 0.0
	for t := range 255 {
		w0 += hist[t]
		sum0 += float64(t * hist[t])
		w1 := total - w0
		if w0 == 0 || w1 == 0 {
			continue
		}
		m0, m1 := sum0/float64(w0), (sum-sum0)/float64(total-w0)
		if v := float64(w0) * float64(w1) * (m0 - m1) * (m0 - m1); v > bestVar {
			best, bestVar = t, v
		}
	}
	return best
}

// ink is the page's foreground: the coordinates of the pixels on the
// minority side of the Otsu threshold (dark text on light paper, or light
// text on a dark screen).
type ink struct {
	xs, ys   []float32
	w, h     int
	frac     float64 // share of pixels that are ink
	bgFrac   float64 // share of pixels within 24 levels of the background's median
	contrast float64 // distance between the two classes' medians, 0..255
}

func findInk(g gray) ink {
	var hist [256]int
	for _, v := range g.pix {
		hist[v]++
	}
	ik, t, darkInk := inkStats(&hist, len(g.pix))
	ik.w, ik.h = g.w, g.h
	n := int(ik.frac * float64(len(g.pix)))
	ik.xs, ik.ys = make([]float32, 0, n), make([]float32, 0, n)
	for y := range g.h {
		row := g.pix[y*g.w : (y+1)*g.w]
		for x, v := range row {
			if (int(v) <= t) == darkInk {
				ik.xs = append(ik.xs, float32(x))
				ik.ys = append(ik.ys, float32(y))
			}
		}
	}
	return ik
}

// inkStats splits the histogram of n pixels at the Otsu threshold t; the
// ink is the minority side (darkInk: the levels <= t).
func inkStats(hist *[256]int, n int) (ik ink, t int, darkInk bool) {
	t = otsu(hist)
	below := 0
	for i := 0; i <= t; i++ {
		below += hist[i]
	}
	darkInk = below*2 <= n
	loMed, hiMed := histMedian(hist, 0, t), histMedian(hist, t+1, 255)
	ik.contrast = float64(hiMed - loMed)
	bgMed, nInk := hiMed, below
	if !darkInk {
		bgMed, nInk = loMed, n-below
	}
	near := 0
	for i := max(0, bgMed-24); i <= min(255, bgMed+24); i++ {
		near += hist[i]
	}
	ik.bgFrac = float64(near) / float64(n)
	ik.frac = float64(nInk) / float64(n)
	return ik, t, darkInk
}

// histMedian is the median level of hist within [lo, hi].
func histMedian(hist *[256]int, lo, hi int) int {
	n := 0
	for i := lo; i <= hi; i++ {
		n += hist[i]
	}
	c := 0
	for i := lo; i <= hi; i++ {
		c += hist[i]
		if 2*c >= n {
			return i
		}
	}
	return (lo + hi) / 2
}

// profiler scores line directions: the points projected across direction
// theta (degrees clockwise from horizontal) into one-pixel bins; text
// lines along theta give a profile of sharp peaks and gaps, whose sum of
// squared differences between neighbouring bins is largest (the measure
// Leptonica's skew finder uses).
type profiler struct {
	xs, ys []float32
	bins   []int32
	off    float64
}

func newProfiler(xs, ys []float32, w, h int) *profiler {
	n := w + h + 4
	return &profiler{xs: xs, ys: ys, bins: make([]int32, 2*n), off: float64(n)}
}

func (p *profiler) score(theta float64) float64 {
	s, c := math.Sincos(theta * math.Pi / 180)
	clear(p.bins)
	fs, fc, off := float32(s), float32(c), float32(p.off)
	for i, x := range p.xs {
		p.bins[int(p.ys[i]*fc-x*fs+off)]++
	}
	var sum float64
	for i := 1; i < len(p.bins); i++ {
		d := float64(p.bins[i] - p.bins[i-1])
		sum += d * d
	}
	return sum
}

// subsample keeps about n of the points, evenly spread.
func subsample(xs, ys []float32, n int) ([]float32, []float32) {
	if len(xs) <= n {
		return xs, ys
	}
	step := float64(len(xs)) / float64(n)
	ox, oy := make([]float32, 0, n), make([]float32, 0, n)
	for f := 0.0; int(f) < len(xs); f += step {
		ox = append(ox, xs[int(f)])
		oy = append(oy, ys[int(f)])
	}
	return ox, oy
}

// Sweep parameters: coarse steps over ±maxSkew around both axes, then
// finer steps around the best, then a parabola through the last three.
const (
	maxSkew      = 20.0
	coarseStep   = 0.5
	coarsePoints = 40_000
	finePoints   = 250_000
)

// sweep is the outcome of the line-direction search.
type sweep struct {
	theta     float64 // best line direction, degrees clockwise, in [-maxSkew, 90+maxSkew]
	axisRatio float64 // best score on the best axis / best score on the other axis
}

func findLines(ik ink) sweep {
	cx, cy := subsample(ik.xs, ik.ys, coarsePoints)
	coarse := newProfiler(cx, cy, ik.w, ik.h)
	var best, bestAt [2]float64
	for axis := range 2 {
		for a := -maxSkew; a <= maxSkew+1e-9; a += coarseStep {
			if s := coarse.score(a + 90*float64(axis)); s > best[axis] {
				best[axis], bestAt[axis] = s, a+90*float64(axis)
			}
		}
	}
	ax := 0
	if best[1] > best[0] {
		ax = 1
	}
	fx, fy := subsample(ik.xs, ik.ys, finePoints)
	return sweep{axisRatio: best[ax] / math.Max(best[1-ax], 1),
		theta: refine(newProfiler(fx, fy, ik.w, ik.h), bestAt[ax])}
}

// refine searches ±coarseStep around theta in 0.1° steps, then ±0.1° in
// 0.02° steps, and interpolates the peak to about 0.01°.
func refine(p *profiler, theta float64) float64 {
	theta = argmaxAround(p, theta, coarseStep, 0.1)
	step := 0.02
	theta = argmaxAround(p, theta, 0.1, step)
	l, c, r := p.score(theta-step), p.score(theta), p.score(theta+step)
	if d := l - 2*c + r; d < 0 {
		theta += step * 0.5 * (l - r) / d
	}
	return math.Round(theta*100) / 100
}

func argmaxAround(p *profiler, theta, span, step float64) float64 {
	best, at := -1.0, theta
	n := int(math.Round(span / step))
	for i := -n; i <= n; i++ {
		a := theta + float64(i)*step
		if s := p.score(a); s > best {
			best, at = s, a
		}
	}
	return at
}
