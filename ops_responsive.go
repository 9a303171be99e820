package imgd

import (
	"slices"
	"strings"
)

// Limits of a responsive step: at most MaxResponsiveWidths ×
// MaxResponsiveFormats variants per task.
const (
	MaxResponsiveWidths  = 16
	MaxResponsiveFormats = 4
)

// responsiveFormats are the formats a responsive set may ask for: the ones
// browsers show (no TIFF), and auto (compress chooses per variant).
var responsiveFormats = []Format{FormatJPEG, FormatPNG, FormatWebP, FormatAVIF, FormatGIF, FormatAuto}

// Responsive makes a responsive set: the steps before it run once, then
// every width (fit inside that width, aspect kept) is encoded in every
// format, each output a Variant of the task. It must be the last step.
//
// Without Enlarge no variant is wider than the image the steps before it
// made (the base): the widths larger than the base give one variant at the
// base's own width, and all of them are reported as skipped (in
// outputs.responsive), so a srcset never offers an upscaled copy. See
// docs/responsive.md.
type Responsive struct {
	Widths  []int    `json:"widths"`  // 1..16 values, sorted and deduplicated in the canonical form
	Formats []Format `json:"formats"` // 1..4 of jpeg, png, webp, avif, gif, auto; order kept (preference)
	// Quality (high, the default without target; medium; low) or Target
	// is the perceptual goal of every encoding, as in compress: each
	// variant is encoded by compress's search (GIF, which has no quality,
	// as convert does).
	Quality string          `json:"quality,omitempty"`
	Target  *CompressTarget `json:"target,omitempty"`
	Enlarge bool            `json:"enlarge"`
}

func (*Responsive) Op() string { return "responsive" }

func (s *Responsive) normalize() error {
	if len(s.Widths) == 0 || len(s.Widths) > MaxResponsiveWidths {
		return fieldErr("widths", "must list 1..%d widths, got %d", MaxResponsiveWidths, len(s.Widths))
	}
	for _, w := range s.Widths {
		if w < 1 || w > maxDimension {
			return fieldErr("widths", "each width must be 1..%d, got %d", maxDimension, w)
		}
	}
	s.Widths = slices.Compact(slices.Sorted(slices.Values(s.Widths)))
	if len(s.Formats) == 0 || len(s.Formats) > MaxResponsiveFormats {
		return fieldErr("formats", "must list 1..%d formats, got %d", MaxResponsiveFormats, len(s.Formats))
	}
	formats := make([]Format, 0, len(s.Formats))
	for _, f := range s.Formats {
		f = Format(strings.ToLower(string(f)))
		if f == "jpg" {
			f = FormatJPEG
		}
		if !slices.Contains(responsiveFormats, f) {
			return fieldErr("formats", "each format must be one of jpeg, png, webp, avif, gif, auto, got %q", f)
		}
		if !slices.Contains(formats, f) {
			formats = append(formats, f)
		}
	}
	s.Formats = formats
	// The goal is checked as compress checks it.
	c := s.Compress(FormatAuto)
	if err := c.normalize(); err != nil {
		return err
	}
	s.Quality = c.Quality
	return nil
}

// Compress is the compress step that encodes this set's variants in
// format f (jpeg, png, webp, avif or auto).
func (s *Responsive) Compress(f Format) *Compress {
	strip := true
	return &Compress{Format: f, Quality: s.Quality, Target: s.Target, Strip: &strip}
}

// Count is the number of variants the step asks for (widths × formats);
// the engine may make fewer when widths exceed the image.
func (s *Responsive) Count() int { return len(s.Widths) * len(s.Formats) }

// Responsive returns the final responsive step, or nil.
func (p Pipeline) Responsive() *Responsive {
	if len(p) == 0 {
		return nil
	}
	r, _ := p[len(p)-1].(*Responsive)
	return r
}
