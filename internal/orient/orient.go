// Package orient tells how an image was turned: the 0/90/180/270 clockwise
// rotation applied to the upright picture, the small residual skew of a
// scanned page, and how sure it is. It is pure Go and works on decoded
// pixels the engine hands it; EXIF orientation is the engine's business.
//
// Documents (text pages) are recognised and measured from their text
// lines: a projection-profile sweep gives the line direction and the skew,
// and the ascender/descender asymmetry of the lines says which way is up.
// Everything else is a photo, scored by a small trained model whose
// confidence is calibrated (photo_model.go, written by
// cmd/imgd-train-orientation; see TRAINING.md).
package orient

import (
	"fmt"
	"math"
)

// Kinds of answer.
const (
	KindDocument = "document"
	KindPhoto    = "photo"
	KindEXIF     = "exif"
)

// Result is the answer for one image. Angle+Skew is the clockwise rotation
// that was applied to the upright image; turning the image back by it
// (counter-clockwise) makes it upright.
type Result struct {
	Angle      int     `json:"angle"`      // 0, 90, 180 or 270
	Skew       float64 `json:"skew"`       // degrees clockwise, in [-45, 45)
	Confidence float64 `json:"confidence"` // probability that Angle is right, 0..1
	Kind       string  `json:"kind"`
	Method     string  `json:"method"`
}

// Total is Angle+Skew in [0, 360).
func (r Result) Total() float64 {
	return normDeg(float64(r.Angle) + r.Skew)
}

// Image is interleaved 8-bit pixels: 1 (grey), 2 (grey+alpha), 3 (RGB) or
// 4 (RGBA) bands.
type Image struct {
	Pix           []byte
	Width, Height int
	Bands         int
}

func (im Image) check() error {
	if im.Width <= 0 || im.Height <= 0 || im.Bands < 1 || im.Bands > 4 {
		return fmt.Errorf("orient: bad image %dx%d with %d bands", im.Width, im.Height, im.Bands)
	}
	if len(im.Pix) != im.Width*im.Height*im.Bands {
		return fmt.Errorf("orient: %d bytes for %dx%dx%d pixels", len(im.Pix), im.Width, im.Height, im.Bands)
	}
	return nil
}

// Detect decides whether im is a document page or a photo and measures
// its orientation accordingly.
func Detect(im Image) (Result, error) {
	if err := im.check(); err != nil {
		return Result{}, err
	}
	g := grayForText(im)
	if d, ok := analyzeDocument(g); ok {
		return d, nil
	}
	return DetectPhoto(im)
}

// DetectDocument measures im as a text page; ok is false when it is not
// one (Result is then zero).
func DetectDocument(im Image) (r Result, ok bool, err error) {
	if err := im.check(); err != nil {
		return Result{}, false, err
	}
	r, ok = analyzeDocument(grayForText(im))
	return r, ok, nil
}

// FromEXIF answers from an EXIF orientation tag (1..8) with confidence 1.
// Angle is the clockwise turn that the stored pixels have relative to the
// upright scene: tag 6 (shown by turning 90 clockwise) was stored turned
// 270. Tags 2, 4, 5 and 7 also mirror; their Angle is what is left once the
// left-right mirror is undone, and Method says "mirrored".
func FromEXIF(tag int) (Result, bool) {
	angles := [9]int{1: 0, 2: 0, 3: 180, 4: 180, 5: 90, 6: 270, 7: 270, 8: 90}
	if tag < 1 || tag > 8 {
		return Result{}, false
	}
	m := fmt.Sprintf("exif-orientation-%d", tag)
	if tag == 2 || tag == 4 || tag == 5 || tag == 7 {
		m += "-mirrored"
	}
	return Result{Angle: angles[tag], Confidence: 1, Kind: KindEXIF, Method: m}, true
}

// normDeg maps a to [0, 360).
func normDeg(a float64) float64 {
	a = math.Mod(a, 360)
	if a < 0 {
		a += 360
	}
	if a >= 360 {
		a -= 360
	}
	return a
}

// splitAngle splits a clockwise angle into its nearest multiple of 90 and
// the rest, in [-45, 45).
func splitAngle(a float64) (coarse int, skew float64) {
	a = normDeg(a)
	k := int(math.Floor(a/90+0.5)) % 4
	skew = a - 90*math.Floor(a/90+0.5)
	return k * 90, skew
}
