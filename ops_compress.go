package imgd

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
)

// FormatAuto lets compress choose the output format.
const FormatAuto Format = "auto"

// CompressFormats are the formats compress may be asked for.
var CompressFormats = []Format{FormatJPEG, FormatWebP, FormatAVIF, FormatPNG, FormatAuto}

// Compress levels, from the largest files to the smallest.
const (
	QualityHigh   = "high"
	QualityMedium = "medium"
	QualityLow    = "low"
)

// MaxCompressBytes bounds max_bytes (1 GiB: more than any output imgd makes).
const MaxCompressBytes = 1 << 30

// Compress encodes in as few bytes as a perceptual goal allows: the engine
// searches the encoder quality, scoring each output by its SSIM against
// the pixels before encoding, for the smallest output that reaches an
// explicit target, or for a named level the best trade-off between SSIM
// and bytes above the level's floor. Like convert, it must be the last
// step.
type Compress struct {
	Format Format `json:"format"` // jpeg, webp, avif, png or auto (default)
	// Quality is a named level (docs/compression.md): high (the default
	// without target), medium, low.
	Quality string `json:"quality,omitempty"`
	// Target is an explicit perceptual target; it replaces Quality.
	Target *CompressTarget `json:"target,omitempty"`
	// MaxBytes caps the output size; alone it means "the best quality
	// that fits".
	MaxBytes int   `json:"max_bytes,omitempty"`
	Strip    *bool `json:"strip"` // as in convert (default true)
}

// CompressTarget is an explicit perceptual target.
type CompressTarget struct {
	SSIM float64 `json:"ssim"` // 0 < ssim <= 1: mean SSIM on linear-light luma
}

func (*Compress) Op() string { return "compress" }

func (s *Compress) normalize() error {
	s.Format = Format(strings.ToLower(string(s.Format)))
	switch s.Format {
	case "":
		s.Format = FormatAuto
	case "jpg":
		s.Format = FormatJPEG
	}
	if !slices.Contains(CompressFormats, s.Format) {
		return fieldErr("format", "must be one of jpeg, webp, avif, png, auto, got %q", s.Format)
	}
	if s.MaxBytes < 0 || s.MaxBytes > MaxCompressBytes {
		return fieldErr("max_bytes", "must be 1..%d, got %d", MaxCompressBytes, s.MaxBytes)
	}
	s.Quality = strings.ToLower(s.Quality)
	if s.Target != nil {
		if s.Quality != "" {
			return fieldErr("quality", "give quality or target, not both")
		}
		if !(s.Target.SSIM > 0 && s.Target.SSIM <= 1) { // also refuses NaN
			return fieldErr("target.ssim", "must be in (0, 1], got %v", s.Target.SSIM)
		}
	}
	if s.Target == nil && s.Quality == "" && s.MaxBytes == 0 {
		s.Quality = QualityHigh
	}
	if s.Quality != "" && !slices.Contains([]string{QualityHigh, QualityMedium, QualityLow}, s.Quality) {
		return fieldErr("quality", "must be high, medium or low, got %q", s.Quality)
	}
	if s.Strip == nil {
		t := true
		s.Strip = &t
	}
	return nil
}

// UnmarshalJSON refuses keys other than ssim, so a misspelt metric is an
// error rather than a default.
func (t *CompressTarget) UnmarshalJSON(data []byte) error {
	type plain CompressTarget
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		return fieldErr("", "must be an object such as {\"ssim\": 0.985}")
	}
	*t = CompressTarget(p)
	return nil
}
