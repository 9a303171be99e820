package orient

import (
	"fmt"
	"math"
	"testing"
)

// upright pages whose text, fonts and resolutions differ from the dev set.
var uprightPages = []string{
	"documents/doc-page-150dpi-gray.jpg",
	"documents/doc-page-200dpi-color.jpg",
	"documents/doc-page-300dpi-gray.png",
}

// TestDocumentTurnsAndSkews turns upright pages by every quarter turn and
// skews them by ±1…±12°: the angle, the skew (within 0.1°) and the kind
// must come back.
func TestDocumentTurnsAndSkews(t *testing.T) {
	skews := []float64{0, 1, -1, 2.5, -3, 4.7, -6, 8, -9.5, 12, -12}
	for pi, rel := range uprightPages {
		page := load(t, rel, true)
		for i, sk := range skews {
			q := (i + pi) % 4
			t.Run(fmt.Sprintf("%s/%d+%.1f", rel, q*90, sk), func(t *testing.T) {
				t.Parallel()
				im := turn(skew(page, sk), q)
				r, err := Detect(im)
				if err != nil {
					t.Fatal(err)
				}
				want := float64(q*90) + sk
				if r.Kind != KindDocument || r.Angle != q*90 || math.Abs(r.Skew-sk) > 0.1 {
					t.Errorf("Detect = %+v, want a document at %d + %.2f", r, q*90, sk)
				}
				if d := angleDiff(r.Total(), want); d > 0.1 {
					t.Errorf("Total() = %.2f, want %.2f", r.Total(), want)
				}
				if r.Confidence < 0.5 {
					t.Errorf("confidence %.3f on a clean page", r.Confidence)
				}
			})
		}
	}
}

// TestLineSweep checks the stage alone: the line direction of a skewed
// page, on either axis, and the axis ratio that says how clear it is.
func TestLineSweep(t *testing.T) {
	page := load(t, "documents/doc-page-150dpi-gray.jpg", true)
	for _, tc := range []struct {
		q  int
		sk float64
	}{{0, 7.25}, {1, -4.5}, {0, -15}, {1, 15}} {
		ik := findInk(grayForText(turn(skew(page, tc.sk), tc.q)))
		sw := findLines(ik)
		want := tc.sk + 90*float64(tc.q%2)
		if math.Abs(sw.theta-want) > 0.1 {
			t.Errorf("turn %d skew %.2f: theta %.2f, want %.2f", tc.q, tc.sk, sw.theta, want)
		}
		if sw.axisRatio < 1.3 {
			t.Errorf("turn %d skew %.2f: axis ratio %.2f, want a clear axis", tc.q, tc.sk, sw.axisRatio)
		}
	}
}

// TestUpDown checks the ascender/descender stage: the evidence flips sign
// when the page is turned half round.
func TestUpDown(t *testing.T) {
	for _, rel := range uprightPages {
		page := load(t, rel, true)
		for q, wantUp := range []bool{true, true, false, false} {
			d, ok := measureDocument(grayForText(turn(page, q)))
			if !ok {
				t.Fatalf("%s turned %d: no lines", rel, q*90)
			}
			if got := d.upEvidence() > 0; got != wantUp {
				t.Errorf("%s turned %d: up evidence %.2f (theta %.2f)", rel, q*90, d.upEvidence(), d.sweep.theta)
			}
		}
	}
}

// TestPageOrPhoto checks the page-vs-photo decision on pages and photos.
func TestPageOrPhoto(t *testing.T) {
	for _, rel := range append(uprightPages, "documents/doc-real-scan.png") {
		d, ok := measureDocument(grayForText(load(t, rel, true)))
		if !ok || !d.isPage() {
			t.Errorf("%s: not taken for a page (ink %.3f, background %.2f, contrast %.0f, lines %d)",
				rel, d.ink.frac, d.ink.bgFrac, d.ink.contrast, d.lines.lines)
		}
	}
	for _, rel := range []string{"photos/jpeg-icc.jpg", "photos/jpeg-baseline-small.jpg", "orientation/orientation-1.jpg",
		"photos/jpeg-progressive-small.jpg", "formats/gif-static-photo.gif"} {
		r, err := Detect(load(t, rel, false))
		if err != nil {
			t.Fatal(err)
		}
		if r.Kind != KindPhoto {
			t.Errorf("%s: taken for a %s (%+v)", rel, r.Kind, r)
		}
	}
}

// TestPhotoModelConsistent: turning a photo a quarter turn moves the same
// probabilities to the next class, so the answer turns with it.
func TestPhotoModelConsistent(t *testing.T) {
	im := load(t, "orientation/orientation-1.jpg", false)
	base, err := MakeThumb(im)
	if err != nil {
		t.Fatal(err)
	}
	p0 := photoModel.Probabilities(base)
	var sum float64
	for _, p := range p0 {
		sum += p
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Fatalf("probabilities %v sum to %v", p0, sum)
	}
	r0, _ := DetectPhoto(im)
	for q := 1; q < 4; q++ {
		th, err := MakeThumb(turn(im, q))
		if err != nil {
			t.Fatal(err)
		}
		p := photoModel.Probabilities(th)
		for k := range 4 {
			if math.Abs(p[(k+q)%4]-p0[k]) > 0.02 {
				t.Errorf("turned %d: P = %v, want %v shifted by %d", q*90, p, p0, q)
				break
			}
		}
		r, _ := DetectPhoto(turn(im, q))
		if r.Angle != (r0.Angle+90*q)%360 {
			t.Errorf("turned %d: angle %d, want %d", q*90, r.Angle, (r0.Angle+90*q)%360)
		}
	}
}

// TestThumbTurns: four quarter turns are the identity, one moves the
// top-right corner to the top-left, and the aspect flips.
func TestThumbTurns(t *testing.T) {
	im := Image{Pix: make([]byte, 64*48*3), Width: 64, Height: 48, Bands: 3}
	for y := range 12 {
		for x := 48; x < 64; x++ {
			im.Pix[(y*64+x)*3] = 255 // red top-right corner
		}
	}
	th, err := MakeThumb(im)
	if err != nil {
		t.Fatal(err)
	}
	if th.Landscape != 1 {
		t.Errorf("Landscape = %v, want 1", th.Landscape)
	}
	b := th.TurnBack(1)
	if b.px[0][0] != 1 || b.px[thumbSide-1][0] != 0 || b.Landscape != -1 {
		t.Errorf("TurnBack(1): top-left %v, top-right %v, landscape %v", b.px[0], b.px[thumbSide-1], b.Landscape)
	}
	if th.TurnBack(4) != th || th.TurnBack(1).TurnBack(3) != th {
		t.Error("four quarter turns are not the identity")
	}
	if th.Mirror().Mirror() != th || th.Mirror().px[0][0] != 1 {
		t.Error("Mirror is wrong")
	}
	if n := len(th.Features()); n != NumFeatures || len(photoModel.W) != n {
		t.Errorf("%d features, model has %d weights, want %d", n, len(photoModel.W), NumFeatures)
	}
}

// TestFromEXIF checks all eight tags against the transforms the EXIF
// standard gives for displaying them.
func TestFromEXIF(t *testing.T) {
	want := map[int]int{1: 0, 2: 0, 3: 180, 4: 180, 5: 90, 6: 270, 7: 270, 8: 90}
	for tag := 1; tag <= 8; tag++ {
		r, ok := FromEXIF(tag)
		if !ok || r.Angle != want[tag] || r.Confidence != 1 || r.Kind != KindEXIF || r.Skew != 0 {
			t.Errorf("FromEXIF(%d) = %+v, %v; want angle %d", tag, r, ok, want[tag])
		}
	}
	for _, tag := range []int{0, 9, -1} {
		if _, ok := FromEXIF(tag); ok {
			t.Errorf("FromEXIF(%d) accepted", tag)
		}
	}
}

func TestBadImage(t *testing.T) {
	for _, im := range []Image{{}, {Pix: make([]byte, 10), Width: 2, Height: 2, Bands: 3}, {Pix: make([]byte, 20), Width: 2, Height: 2, Bands: 5}} {
		if _, err := Detect(im); err == nil {
			t.Errorf("Detect(%dx%dx%d, %d bytes) accepted", im.Width, im.Height, im.Bands, len(im.Pix))
		}
	}
}

func TestSplitAngle(t *testing.T) {
	for _, tc := range []struct {
		a      float64
		coarse int
		skew   float64
	}{{0, 0, 0}, {91.3, 90, 1.3}, {359.3, 0, -0.7}, {-3, 0, -3}, {266.5, 270, -3.5}, {135, 180, -45}} {
		c, s := splitAngle(tc.a)
		if c != tc.coarse || math.Abs(s-tc.skew) > 1e-9 {
			t.Errorf("splitAngle(%v) = %d, %v; want %d, %v", tc.a, c, s, tc.coarse, tc.skew)
		}
	}
}

// TestModelScore checks the scorer's arithmetic, hidden units included,
// against a hand computation.
func TestModelScore(t *testing.T) {
	m := Model{Mean: []float64{1, 2}, Std: []float64{2, 4}, W: []float64{0.5, -1},
		Hidden: [][]float64{{1, 1}}, HiddenBias: []float64{0.25}, Out: []float64{2}, Temperature: 1}
	// z = (3-1)/2, (6-2)/4 = 1, 1: linear 0.5-1 = -0.5; hidden 2·tanh(1+1+0.25).
	want := -0.5 + 2*math.Tanh(2.25)
	if got := m.Score([]float64{3, 6}); math.Abs(got-want) > 1e-12 {
		t.Errorf("Score = %v, want %v", got, want)
	}
}
