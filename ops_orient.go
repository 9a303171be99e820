package imgd

import "math"

// DetectOrientation measures how the image was turned (EXIF tag, text
// lines of a page, or the photo model) and reports it in the step's
// output; with Fix it also turns the image upright (and deskews a page),
// but only when the answer's confidence is at least MinConfidence.
type DetectOrientation struct {
	Fix bool `json:"fix"`
	// MinConfidence 0..1 (default 0.5): below it the image is left as it is.
	MinConfidence *float64 `json:"min_confidence,omitempty"`
}

// DefaultMinConfidence is the confidence below which detect_orientation
// does not fix an image.
const DefaultMinConfidence = 0.5

func (*DetectOrientation) Op() string { return "detect_orientation" }

func (s *DetectOrientation) normalize() error {
	if s.MinConfidence == nil {
		c := DefaultMinConfidence
		s.MinConfidence = &c
	}
	if c := *s.MinConfidence; math.IsNaN(c) || c < 0 || c > 1 {
		return fieldErr("min_confidence", "must be 0..1, got %v", c)
	}
	return nil
}

// Deskew measures the skew of a page's text lines (up to MaxAngle degrees
// either way) and rotates it straight, filling the corners with Background
// (default white; transparent for images with alpha). The size stays the same.
type Deskew struct {
	MaxAngle   float64 `json:"max_angle"` // degrees, 0.1..20 (default 15)
	Background string  `json:"background,omitempty"`
}

// Deskew's limits: the default largest skew it corrects, and the largest
// it can measure (the line-direction sweep covers ±20° around each axis).
const (
	DefaultDeskewMaxAngle = 15
	MaxDeskewAngle        = 20
)

func (*Deskew) Op() string { return "deskew" }

func (s *Deskew) normalize() error {
	if s.MaxAngle == 0 {
		s.MaxAngle = DefaultDeskewMaxAngle
	}
	if math.IsNaN(s.MaxAngle) || s.MaxAngle < 0.1 || s.MaxAngle > MaxDeskewAngle {
		return fieldErr("max_angle", "must be 0.1..%v degrees, got %v", MaxDeskewAngle, s.MaxAngle)
	}
	return normalizeColor(&s.Background, "background")
}
