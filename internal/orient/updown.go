package orient

import (
	"math"
	"slices"
)

// Latin-script text has more ink above the x-height band (ascenders,
// capitals, digits, i-dots, accents) than below it (descenders of g j p q
// y). Cut along the text lines into strips, each line's profile across
// the line shows its core band; the ink outside it, above against below,
// says which side is up.

const upDownStrips = 6

// lineStats is the ascender/descender evidence of a page.
type lineStats struct {
	above, below float64 // ink outside the core bands, on the low-r and high-r sides
	lines        int     // lines measured
	lineHeight   float64 // median core height, pixels
	heightSpread float64 // interquartile range of the core heights / their median
}

// measureLines projects the ink onto the axis across direction theta, in
// strips along it.
func measureLines(ik ink, theta float64) lineStats {
	s, c := math.Sincos(theta * math.Pi / 180)
	n := len(ik.xs)
	rs, ts := make([]float32, n), make([]float32, n)
	tmin, tmax := float32(math.Inf(1)), float32(math.Inf(-1))
	rmin, rmax := float32(math.Inf(1)), float32(math.Inf(-1))
	fs, fc := float32(s), float32(c)
	for i, x := range ik.xs {
		y := ik.ys[i]
		r, t := y*fc-x*fs, x*fc+y*fs
		rs[i], ts[i] = r, t
		tmin, tmax = min(tmin, t), max(tmax, t)
		rmin, rmax = min(rmin, r), max(rmax, r)
	}
	var st lineStats
	if n == 0 {
		return st
	}
	nr := int(rmax-rmin) + 1
	profiles := make([][]float64, upDownStrips)
	for k := range profiles {
		profiles[k] = make([]float64, nr)
	}
	width := float64(tmax-tmin)/upDownStrips + 1e-6
	for i, r := range rs {
		k := min(int(float64(ts[i]-tmin)/width), upDownStrips-1)
		profiles[k][int(r-rmin)]++
	}
	var heights []float64
	for _, p := range profiles {
		heights = st.addStrip(p, heights)
	}
	st.lineHeight = median(heights)
	if len(heights) >= 4 && st.lineHeight > 0 {
		slices.Sort(heights)
		st.heightSpread = (heights[len(heights)*3/4] - heights[len(heights)/4]) / st.lineHeight
	}
	return st
}

// addStrip finds the lines of one strip's profile and adds their evidence.
func (st *lineStats) addStrip(p []float64, heights []float64) []float64 {
	peak := 0.0
	for _, v := range p {
		peak = max(peak, v)
	}
	// Stray noise pixels must not join neighbouring lines into one run.
	thr := math.Max(1, 0.06*peak)
	for i := 0; i < len(p); {
		if p[i] <= thr {
			i++
			continue
		}
		j := i
		for j < len(p) && p[j] > thr {
			j++
		}
		heights = st.addLine(p[i:j], heights)
		i = j
	}
	return heights
}

// addLine measures one line: the core band is the contiguous run of bins
// around the densest one holding at least 35 % of its ink.
func (st *lineStats) addLine(p []float64, heights []float64) []float64 {
	if len(p) < 4 {
		return heights
	}
	m, at := 0.0, 0
	for i, v := range p {
		if v > m {
			m, at = v, i
		}
	}
	lo, hi := at, at
	for lo > 0 && p[lo-1] >= 0.35*m {
		lo--
	}
	for hi < len(p)-1 && p[hi+1] >= 0.35*m {
		hi++
	}
	if hi-lo+1 < 2 {
		return heights
	}
	var a, b float64
	for _, v := range p[:lo] {
		a += v
	}
	for _, v := range p[hi+1:] {
		b += v
	}
	st.above += a
	st.below += b
	st.lines++
	return append(heights, float64(hi-lo+1))
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
