package imgd

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Limits on pipeline parameters that hold whatever the engine is configured
// with; the engine applies its own, usually tighter, output limits.
const (
	MaxSteps     = 32
	maxDimension = 100_000
)

// Step is one operation of a pipeline. Each concrete type's JSON fields are
// its public parameter names.
type Step interface {
	// Op is the operation name used in the "op" key.
	Op() string
	// normalize fills defaults and validates; errors name fields relative
	// to the step (e.g. "quality"), the parser adds "steps[i].".
	normalize() error
}

// Fit modes of resize.
const (
	FitInside  = "inside"  // fit within width×height, keep aspect ratio
	FitOutside = "outside" // cover width×height, keep aspect ratio, no crop
	FitCover   = "cover"   // cover width×height, then crop to exactly that
	FitContain = "contain" // fit within, then pad to exactly width×height
	FitFill    = "fill"    // exactly width×height, aspect ratio ignored
)

var fits = []string{FitInside, FitOutside, FitCover, FitContain, FitFill}

// Gravities say where cover crops and contain pads. "attention" (alias
// "smart") and "entropy" choose the crop from the content.
var gravities = []string{"centre", "north", "south", "east", "west", "north-east", "north-west",
	"south-east", "south-west", "attention", "entropy"}

// Resize scales the image. With only one of width and height the other
// follows from the aspect ratio.
type Resize struct {
	Width      int    `json:"width,omitempty"`
	Height     int    `json:"height,omitempty"`
	Fit        string `json:"fit"`
	Gravity    string `json:"gravity"`
	Enlarge    bool   `json:"enlarge"`
	Background string `json:"background,omitempty"` // contain padding; default transparent or white
}

func (*Resize) Op() string { return "resize" }

func (s *Resize) normalize() error {
	if s.Width < 0 || s.Width > maxDimension {
		return fieldErr("width", "must be 0..%d, got %d", maxDimension, s.Width)
	}
	if s.Height < 0 || s.Height > maxDimension {
		return fieldErr("height", "must be 0..%d, got %d", maxDimension, s.Height)
	}
	if s.Width == 0 && s.Height == 0 {
		return fieldErr("width", "width or height is required")
	}
	s.Fit = strings.ToLower(s.Fit)
	if s.Fit == "" {
		s.Fit = FitInside
	}
	if !slices.Contains(fits, s.Fit) {
		return fieldErr("fit", "must be one of %s, got %q", strings.Join(fits, ", "), s.Fit)
	}
	switch g := strings.ToLower(s.Gravity); g {
	case "", "center":
		s.Gravity = "centre"
	case "smart":
		s.Gravity = "attention"
	default:
		s.Gravity = g
	}
	if !slices.Contains(gravities, s.Gravity) {
		return fieldErr("gravity", "must be one of %s, got %q", strings.Join(gravities, ", "), s.Gravity)
	}
	return normalizeColor(&s.Background, "background")
}

// Crop cuts out a rectangle, in pixels of the (upright) image.
type Crop struct {
	X      int `json:"x"`
	Y      int `json:"y"`
	Width  int `json:"width"`
	Height int `json:"height"`
}

func (*Crop) Op() string { return "crop" }

func (s *Crop) normalize() error {
	if s.X < 0 || s.X > maxDimension {
		return fieldErr("x", "must be 0..%d, got %d", maxDimension, s.X)
	}
	if s.Y < 0 || s.Y > maxDimension {
		return fieldErr("y", "must be 0..%d, got %d", maxDimension, s.Y)
	}
	if s.Width <= 0 || s.Width > maxDimension {
		return fieldErr("width", "must be 1..%d, got %d", maxDimension, s.Width)
	}
	if s.Height <= 0 || s.Height > maxDimension {
		return fieldErr("height", "must be 1..%d, got %d", maxDimension, s.Height)
	}
	return nil
}

// Rotate turns the image clockwise by Angle degrees. Multiples of 90 are
// exact; other angles enlarge the canvas and fill the corners with
// Background (default: transparent when the image has alpha, else black).
type Rotate struct {
	Angle      float64 `json:"angle"`
	Background string  `json:"background,omitempty"`
}

func (*Rotate) Op() string { return "rotate" }

func (s *Rotate) normalize() error {
	if math.IsNaN(s.Angle) || math.IsInf(s.Angle, 0) || math.Abs(s.Angle) > 3600 {
		return fieldErr("angle", "must be a number of degrees in -3600..3600")
	}
	a := math.Mod(s.Angle, 360)
	if a < 0 {
		a += 360
	}
	s.Angle = math.Round(a*1000) / 1000
	if s.Angle == 0 || s.Angle == 360 { // also turns -0 (from -0, -360, …) into 0 for the canonical form
		s.Angle = 0
	}
	return normalizeColor(&s.Background, "background")
}

// Flip mirrors the image.
type Flip struct {
	Direction string `json:"direction"` // horizontal (default), vertical, both
}

func (*Flip) Op() string { return "flip" }

func (s *Flip) normalize() error {
	s.Direction = strings.ToLower(s.Direction)
	switch s.Direction {
	case "":
		s.Direction = "horizontal"
	case "horizontal", "vertical", "both":
	default:
		return fieldErr("direction", "must be horizontal, vertical or both, got %q", s.Direction)
	}
	return nil
}

// AutoOrient applies the EXIF orientation. The engine always does so on
// decode; the step exists so pipelines can say it explicitly.
type AutoOrient struct{}

func (*AutoOrient) Op() string       { return "auto_orient" }
func (*AutoOrient) normalize() error { return nil }

// Grayscale converts to one luminance channel (alpha kept).
type Grayscale struct{}

func (*Grayscale) Op() string       { return "grayscale" }
func (*Grayscale) normalize() error { return nil }

// Convert sets the output encoding. It must be the last step.
type Convert struct {
	Format Format `json:"format"`
	// Quality 1..100: JPEG, WebP and AVIF encoder quality (defaults 80, 80,
	// 60); for PNG and GIF it enables palette quantisation at that quality.
	Quality     int   `json:"quality,omitempty"`
	Lossless    bool  `json:"lossless"`    // WebP, AVIF; PNG, GIF and TIFF always are
	Progressive bool  `json:"progressive"` // progressive JPEG, interlaced PNG and GIF
	Strip       *bool `json:"strip"`       // drop metadata (default true); pixels stay upright sRGB either way
}

func (*Convert) Op() string { return "convert" }

// DefaultQuality is the encoder quality used when a convert step gives none.
func DefaultQuality(f Format) int {
	switch f {
	case FormatJPEG, FormatWebP:
		return 80
	case FormatAVIF:
		return 60
	}
	return 0
}

func (s *Convert) normalize() error {
	s.Format = Format(strings.ToLower(string(s.Format)))
	if s.Format == "jpg" {
		s.Format = FormatJPEG
	}
	if s.Format == "tif" {
		s.Format = FormatTIFF
	}
	if !s.Format.CanWrite() {
		names := make([]string, len(OutputFormats))
		for i, f := range OutputFormats {
			names[i] = string(f)
		}
		return fieldErr("format", "must be one of %s, got %q", strings.Join(names, ", "), s.Format)
	}
	if s.Quality < 0 || s.Quality > 100 {
		return fieldErr("quality", "must be 1..100, got %d", s.Quality)
	}
	if s.Quality == 0 {
		s.Quality = DefaultQuality(s.Format)
	}
	if s.Strip == nil {
		t := true
		s.Strip = &t
	}
	return nil
}

// Dither methods.
const (
	DitherFloydSteinberg = "floyd-steinberg"
	DitherAtkinson       = "atkinson"
	DitherJJN            = "jarvis-judice-ninke"
	DitherStucki         = "stucki"
	DitherBurkes         = "burkes"
	DitherSierra         = "sierra"
	DitherSierraTwoRow   = "sierra-two-row"
	DitherSierraLite     = "sierra-lite"
	DitherBayer2         = "bayer2"
	DitherBayer4         = "bayer4"
	DitherBayer8         = "bayer8"
	DitherClusteredDot   = "clustered-dot"
)

// DitherMethods lists every dither method name.
var DitherMethods = []string{DitherFloydSteinberg, DitherAtkinson, DitherJJN, DitherStucki, DitherBurkes,
	DitherSierra, DitherSierraTwoRow, DitherSierraLite, DitherBayer2, DitherBayer4, DitherBayer8, DitherClusteredDot}

var ditherAliases = map[string]string{
	"fs": DitherFloydSteinberg, "floyd_steinberg": DitherFloydSteinberg, "floydsteinberg": DitherFloydSteinberg,
	"jjn": DitherJJN, "jarvis": DitherJJN, "sierra3": DitherSierra, "sierra2": DitherSierraTwoRow,
	"bayer-2x2": DitherBayer2, "bayer-4x4": DitherBayer4, "bayer-8x8": DitherBayer8, "bayer": DitherBayer4,
	"clustered": DitherClusteredDot, "halftone": DitherClusteredDot,
}

// Dither reduces the image to a palette: either Levels values per channel
// (2..256) or Palette, a named palette or a list of colours.
type Dither struct {
	Method     string  `json:"method"`
	Palette    Palette `json:"palette,omitzero"`
	Levels     int     `json:"levels,omitempty"`
	Serpentine bool    `json:"serpentine"` // alternate scan direction per row (error diffusion)
	Linear     bool    `json:"linear"`     // diffuse error in linear light
}

func (*Dither) Op() string { return "dither" }

func (s *Dither) normalize() error {
	s.Method = strings.ToLower(s.Method)
	if a, ok := ditherAliases[s.Method]; ok {
		s.Method = a
	}
	if s.Method == "" {
		s.Method = DitherFloydSteinberg
	}
	if !slices.Contains(DitherMethods, s.Method) {
		return fieldErr("method", "must be one of %s, got %q", strings.Join(DitherMethods, ", "), s.Method)
	}
	if s.Levels != 0 && !s.Palette.IsZero() {
		return fieldErr("levels", "give levels or palette, not both")
	}
	if s.Levels != 0 && (s.Levels < 2 || s.Levels > 256) {
		return fieldErr("levels", "must be 2..256, got %d", s.Levels)
	}
	if s.Levels == 0 && s.Palette.IsZero() {
		s.Palette.Name = "bw"
	}
	return nil
}

// Colors returns the palette's colours, nil when Levels is used instead.
func (s *Dither) Colors() []RGBA {
	if s.Levels != 0 {
		return nil
	}
	if s.Palette.Name != "" {
		p, _ := NamedPalette(s.Palette.Name)
		return p
	}
	return append([]RGBA(nil), s.Palette.Colors...)
}

// stepTypes maps operation names to constructors. Operations owned by
// later features (compress, detect_orientation, deskew) register here.
var stepTypes = map[string]func() Step{
	"resize":             func() Step { return new(Resize) },
	"crop":               func() Step { return new(Crop) },
	"rotate":             func() Step { return new(Rotate) },
	"flip":               func() Step { return new(Flip) },
	"auto_orient":        func() Step { return new(AutoOrient) },
	"grayscale":          func() Step { return new(Grayscale) },
	"convert":            func() Step { return new(Convert) },
	"compress":           func() Step { return new(Compress) },
	"dither":             func() Step { return new(Dither) },
	"responsive":         func() Step { return new(Responsive) },
	"detect_orientation": func() Step { return new(DetectOrientation) },
	"deskew":             func() Step { return new(Deskew) },
}

// OpNames lists the operations a pipeline may use, sorted.
func OpNames() []string {
	names := make([]string, 0, len(stepTypes))
	for n := range stepTypes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func normalizeColor(s *string, field string) error {
	if *s == "" {
		return nil
	}
	c, err := ParseColor(*s)
	if err != nil {
		return fieldErr(field, "%v", err)
	}
	*s = c.Hex()
	return nil
}

func fieldErr(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidArgument, Field: field, Message: fmt.Sprintf(format, args...)}
}
