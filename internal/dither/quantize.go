package dither

import (
	"math"

	"github.com/imgd/imgd"
)

// Colours are compared and error is diffused in working values in [0, 255]:
// sRGB code values, or linear light scaled by 255 when Options.Linear.
const maxWork = 255

// A pixel plus the error diffused onto it may leave [0, maxWork]; it is
// clamped to [overMin, overMax]. Keeping some overshoot lets the next
// pixels pay back error that a palette could not absorb at once: clamping
// at the cube itself drops the error of colours near its faces that the
// palette reaches only by mixing far colours, and moves their mean. The
// bound stops error from growing without end where the palette cannot
// reach the input colour at all.
const (
	overMin = -256
	overMax = maxWork + 256
)

// sRGBWork and linearWork map an sRGB byte to its working value. They are
// computed once and only read afterwards.
var (
	sRGBWork   = workTable(func(v float64) float64 { return v })
	linearWork = workTable(sRGBToLinear)
)

func workTable(f func(float64) float64) *[256]float32 {
	var t [256]float32
	for i := range t {
		t[i] = float32(f(float64(i)/255) * maxWork)
	}
	return &t
}

// sRGBToLinear is the sRGB transfer function (IEC 61966-2-1), v in [0, 1].
func sRGBToLinear(v float64) float64 {
	if v <= 0.04045 {
		return v / 12.92
	}
	return math.Pow((v+0.055)/1.055, 2.4)
}

// quantizer maps a colour in working values to an output colour: either
// per-channel levels (lv) or the nearest palette colour (pal).
type quantizer struct {
	work *[256]float32 // sRGB byte → working value
	lv   *levels
	pal  *palette
}

// newQuantizer checks opt's colours and prepares them; spread says whether
// palette.spread is needed (ordered dithering).
func newQuantizer(opt Options, spread bool) (*quantizer, error) {
	q := &quantizer{work: sRGBWork}
	if opt.Linear {
		q.work = linearWork
	}
	switch {
	case opt.Levels != 0 && len(opt.Palette) > 0:
		return nil, invalid("levels", "give levels or palette, not both")
	case opt.Levels != 0:
		if opt.Levels < 2 || opt.Levels > 256 {
			return nil, invalid("levels", "must be 2..256, got %d", opt.Levels)
		}
		q.lv = newLevels(opt.Levels, q.work)
	case len(opt.Palette) == 0:
		return nil, invalid("palette", "give levels (2..256) or a palette of 1..%d colours", MaxPaletteColors)
	case len(opt.Palette) > MaxPaletteColors:
		return nil, invalid("palette", "must have 1..%d colours, got %d", MaxPaletteColors, len(opt.Palette))
	default:
		q.pal = newPalette(opt.Palette, q.work, !opt.Linear, spread)
	}
	return q, nil
}

// levelBins is the number of bins levels.nearest divides [0, maxWork] into:
// enough that a bin, widened a little for float rounding, holds at most one
// boundary between levels. Boundaries are at least as far apart as levels,
// and the closest levels (in linear light, 0 and 1/255) are 0.077 apart,
// more than a bin's 255/4096 = 0.062.
const levelBins = 4096

// levels quantises one channel to n values spread evenly in sRGB:
// round(i*255/(n-1)) for i in 0..n-1, the values of imgd's grey ramps.
type levels struct {
	val [256]float32 // working value of level i
	out [256]byte    // sRGB value of level i

	// binLevel[k] is the nearest level to the bottom of bin k and binThr[k]
	// the boundary above that level (+Inf for the last level), so the
	// nearest level to v in bin k is binLevel[k], plus one if v > binThr[k].
	binLevel [levelBins + 1]uint8
	binThr   [levelBins + 1]float32

	// For ordered dithering, per sRGB byte: the levels below and above it
	// (equal at the top) and how far it lies from lo towards hi, 0..1, in
	// working values.
	lo, hi [256]byte
	frac   [256]float32
}

func newLevels(n int, work *[256]float32) *levels {
	l := new(levels)
	for i := range n {
		l.out[i] = byte((i*255 + (n-1)/2) / (n - 1))
		l.val[i] = work[l.out[i]]
	}
	thr := make([]float32, n) // thr[i]: the boundary between levels i and i+1
	for i := range n - 1 {
		thr[i] = (l.val[i] + l.val[i+1]) / 2
	}
	thr[n-1] = float32(math.Inf(1))
	i := 0
	for k := range l.binLevel {
		// Start a little below the bin so that float rounding of
		// v*levelBins/maxWork cannot put v below its bin's level.
		v := float32(k)*(maxWork/float32(levelBins)) - 1e-3
		for v > thr[i] {
			i++
		}
		l.binLevel[k], l.binThr[k] = uint8(i), thr[i]
	}
	i = 0
	for b := range 256 {
		for i+1 < n && l.out[i+1] <= byte(b) {
			i++
		}
		l.lo[b], l.hi[b] = l.out[i], l.out[min(i+1, n-1)]
		if i+1 < n {
			l.frac[b] = (work[b] - l.val[i]) / (l.val[i+1] - l.val[i])
		}
	}
	return l
}

// nearest returns the index of the level nearest to v; ties go down.
func (l *levels) nearest(v float32) uint8 {
	k := int(min(max(v, 0), maxWork) * (levelBins / maxWork))
	i := l.binLevel[k]
	if v > l.binThr[k] {
		i++
	}
	return i
}

// The palette search divides the working range [overMin, overMax]³ into
// cells of cellSize³ and lists, lazily per cell, the colours that can be
// nearest to some point of the cell; the search then only compares those.
// A cell whose list would be long, or that comes after maxCandidates listed
// colours in all, uses the whole palette instead, which bounds the memory.
const (
	cellSize      = 16
	cellAxis      = (overMax - overMin + 1) / cellSize
	cellInv       = 1.0 / cellSize // exact: a power of two
	maxCellList   = 64
	maxCandidates = 1 << 20
)

// palette finds the nearest palette colour by redmean distance in sRGB, or
// by Euclidean distance in linear light.
type palette struct {
	n       int
	r, g, b [MaxPaletteColors]float32 // working values of the colours
	out     [MaxPaletteColors]imgd.RGBA
	redmean bool

	// cells[c] is 0 until cell c's candidates are listed, then
	// start<<9 | count, the candidates being cand[start:start+count].
	// cand starts with every colour, the list of cells that use them all.
	cells []uint32
	cand  []uint8

	// spread[i] is how far ordered dithering may move a colour whose
	// nearest colour is i: twice the smallest offset o, the same on every
	// channel, at which i+o is as near to another colour as to i (at most
	// 2*maxWork). Offsets in (-spread/2, spread/2) keep a palette colour as
	// it is; between two colours on the grey diagonal (levels, black and
	// white) the spread is their distance. Only ordered dithering sets it.
	spread [MaxPaletteColors]float32
}

func newPalette(colors []imgd.RGBA, work *[256]float32, redmean, spread bool) *palette {
	p := &palette{
		n:       len(colors),
		redmean: redmean,
		cells:   make([]uint32, cellAxis*cellAxis*cellAxis),
		cand:    make([]uint8, len(colors), 4*len(colors)),
	}
	for i, c := range colors {
		p.r[i], p.g[i], p.b[i] = work[c.R], work[c.G], work[c.B]
		p.out[i] = imgd.RGBA{R: c.R, G: c.G, B: c.B}
		p.cand[i] = uint8(i)
	}
	if spread {
		for i := range p.n {
			p.spread[i] = p.localSpread(i)
		}
	}
	return p
}

func (p *palette) localSpread(i int) float32 {
	half := float64(maxWork)
	for j := range p.n {
		// v = c_i + o·(1,1,1) is nearer to c_j than to c_i where
		// dist(v, c_j) - dist(v, c_i) < 0. With d = c_j - c_i, that is
		// a·o² + b·o + c: the two distances' o² terms cancel (redmean's
		// weights sum to 8+255/256 whatever the red), but for redmean's
		// weights following v's red, which gives a. The smallest root
		// bounds the offsets that keep c_i.
		d := [3]float64{float64(p.r[j] - p.r[i]), float64(p.g[j] - p.g[i]), float64(p.b[j] - p.b[i])}
		w := [3]float64{1, 1, 1}
		var a, b float64
		if p.redmean {
			rm := float64(p.r[i]+p.r[j]) / 512
			w = [3]float64{2 + rm, 4, 2 + 255.0/256 - rm}
			a = (d[2] - d[0]) / 256
			b = (d[0]*d[0] - d[2]*d[2]) / 512
		}
		b -= 2 * (w[0]*d[0] + w[1]*d[1] + w[2]*d[2])
		c := w[0]*d[0]*d[0] + w[1]*d[1]*d[1] + w[2]*d[2]*d[2]
		if c > 0 {
			half = min(half, smallestRoot(a, b, c))
		}
	}
	return float32(2 * half)
}

// smallestRoot returns the smallest |o| with a·o² + b·o + c = 0, c > 0, or
// +Inf when there is none.
func smallestRoot(a, b, c float64) float64 {
	if a == 0 {
		if b == 0 {
			return math.Inf(1)
		}
		return math.Abs(c / b)
	}
	disc := b*b - 4*a*c
	if disc < 0 {
		return math.Inf(1)
	}
	// The roots are q/a and c/q, the form that does not lose precision
	// when b² is much larger than 4ac.
	q := -(b + math.Copysign(math.Sqrt(disc), b)) / 2
	r := math.Abs(q / a)
	if q != 0 {
		r = min(r, math.Abs(c/q))
	}
	return r
}

// dist is the distance from (r, g, b) to colour i: redmean in sRGB
// (https://www.compuphase.com/cmetric.htm), squared Euclidean in linear
// light. Its weights stay positive over [overMin, overMax], so it is >= 0.
func (p *palette) dist(r, g, b float32, i uint8) float32 {
	dr, dg, db := r-p.r[i], g-p.g[i], b-p.b[i]
	if !p.redmean {
		return dr*dr + dg*dg + db*db
	}
	rm := (r + p.r[i]) * (0.5 / 256)
	return (2+rm)*dr*dr + 4*dg*dg + (2+255.0/256-rm)*db*db
}

// nearest returns the index of the palette colour nearest to (r, g, b),
// each in [overMin, overMax]; ties go to the lower index.
func (p *palette) nearest(r, g, b float32) uint8 {
	c := (int((r-overMin)*cellInv)*cellAxis+int((g-overMin)*cellInv))*cellAxis + int((b-overMin)*cellInv)
	e := p.cells[c]
	if e == 0 {
		e = p.fill(c)
	}
	cand := p.cand[e>>9 : e>>9+e&511]
	// Distances are never negative, so their bits order like them; as
	// integers the comparison below compiles to conditional moves rather
	// than an unpredictable branch.
	best := uint32(cand[0])
	bd := math.Float32bits(p.dist(r, g, b, cand[0]))
	for _, i := range cand[1:] {
		if d := math.Float32bits(p.dist(r, g, b, i)); d < bd {
			best, bd = uint32(i), d
		}
	}
	return uint8(best)
}

// fill lists the candidates of cell c: every colour whose smallest possible
// distance to a point of the cell is at most the smallest largest-possible
// distance of any colour. The bounds use the extreme weights dist can have,
// so the list holds every colour that can be nearest to a point of the cell.
func (p *palette) fill(c int) uint32 {
	lo := [3]float64{
		float64(c/(cellAxis*cellAxis))*cellSize + overMin,
		float64(c/cellAxis%cellAxis)*cellSize + overMin,
		float64(c%cellAxis)*cellSize + overMin,
	}
	wlo, whi := [3]float64{1, 1, 1}, [3]float64{1, 1, 1}
	if p.redmean {
		// dist's rm = (r+pr)/512 lies in [overMin/512, (overMax+maxWork)/512].
		const rmMin, rmMax = overMin / 512.0, (overMax + maxWork) / 512.0
		wlo = [3]float64{2 + rmMin, 4, 2 + 255.0/256 - rmMax}
		whi = [3]float64{2 + rmMax, 4, 2 + 255.0/256 - rmMin}
	}
	bound := func(i int) (dmin, dmax float64) {
		for ch, v := range [3]float32{p.r[i], p.g[i], p.b[i]} {
			x, a, b := float64(v), lo[ch], lo[ch]+cellSize
			near := max(a-x, x-b, 0)
			far := max(x-a, b-x)
			dmin += wlo[ch] * near * near
			dmax += whi[ch] * far * far
		}
		return dmin, dmax
	}
	u := math.Inf(1)
	for i := range p.n {
		_, dmax := bound(i)
		u = min(u, dmax)
	}
	u = u*(1+1e-6) + 1e-6 // margin for float32 rounding in dist
	start := len(p.cand)
	for i := range p.n {
		if dmin, _ := bound(i); dmin <= u {
			p.cand = append(p.cand, uint8(i))
		}
	}
	count := len(p.cand) - start
	if count > maxCellList || len(p.cand) > maxCandidates {
		p.cand = p.cand[:start]
		start, count = 0, p.n
	}
	e := uint32(start)<<9 | uint32(count)
	p.cells[c] = e
	return e
}
