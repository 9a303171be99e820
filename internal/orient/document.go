package orient

import "math"

// docMeasure is everything measured on a page candidate.
type docMeasure struct {
	ink       ink // the ink the lines were measured on
	flattened bool
	sweep     sweep
	lines     lineStats
}

// measureDocument finds the ink, the line direction and the up/down
// evidence; ok is false when there is nothing to measure. The image is
// flattened first only when it does not already look like a page.
func measureDocument(g gray) (docMeasure, bool) {
	ik := findInk(g)
	d := docMeasure{ink: ik}
	if !looksPage(ik) {
		d = docMeasure{ink: findInk(flatten(g)), flattened: true}
	}
	if len(d.ink.xs) < 200 {
		return d, false
	}
	d.sweep = findLines(d.ink)
	d.lines = measureLines(d.ink, d.sweep.theta)
	return d, d.lines.lines > 0
}

// upEvidence is log(above/below): positive when the low-r side of the
// lines carries the ascenders, so the page was turned by theta (and not
// theta+180).
func (d docMeasure) upEvidence() float64 {
	return math.Log((d.lines.above + 1) / (d.lines.below + 1))
}

// result turns the measurements into an answer.
func (d docMeasure) result() Result {
	a := d.sweep.theta
	ev := d.upEvidence()
	if ev < 0 {
		a += 180
	}
	coarse, skew := splitAngle(a)
	return Result{Angle: coarse, Skew: math.Round(skew*100) / 100, Confidence: d.confidence(),
		Kind: KindDocument, Method: "text-lines"}
}

// A page is mostly one background tone with clearly darker (or lighter)
// ink in many thin lines; photos fail at least one of these. The limits
// leave a margin around what the dev set's pages and photos show. An
// unevenly lit scan only looks like that once flattened; flattening makes
// some photos look so too, so the flattened test also wants lines of one
// height, which text has and photos have not.
const (
	pageMinBackground = 0.76 // share of pixels near the background tone
	pageMinContrast   = 60   // levels between ink and background medians
	pageMaxInk        = 0.3
	pageMinLines      = 8
	pageMaxSpread     = 0.3 // interquartile range of line heights / median
)

func looksPage(ik ink) bool {
	return ik.bgFrac >= pageMinBackground && ik.contrast >= pageMinContrast && ik.frac <= pageMaxInk
}

func (d docMeasure) isPage() bool {
	short := float64(min(d.ink.w, d.ink.h))
	if d.lines.lines < pageMinLines || d.lines.lineHeight > short/15 || !looksPage(d.ink) {
		return false
	}
	return !d.flattened || d.lines.heightSpread <= pageMaxSpread
}

// analyzeDocument answers for g if it is a page.
func analyzeDocument(g gray) (Result, bool) {
	d, ok := measureDocument(g)
	if !ok || !d.isPage() {
		return Result{}, false
	}
	return d.result(), true
}

// confidence is P(axis right)·P(up/down right), each a logistic of its
// evidence: the line-direction score ratio between the two axes, and the
// ascender/descender log ratio. The slopes put a 1.4 axis ratio at 0.88
// and an up/down log ratio of 0.5 at 0.82.
func (d docMeasure) confidence() float64 {
	pAxis := logistic(6 * math.Log(math.Max(d.sweep.axisRatio, 1)))
	pUp := logistic(3 * math.Abs(d.upEvidence()))
	return math.Round(pAxis*pUp*1000) / 1000
}

func logistic(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
