// Package dither reduces 8-bit sRGB pixels to a small set of colours by
// error diffusion (Floyd–Steinberg, Atkinson, Jarvis–Judice–Ninke, Stucki,
// Burkes, the Sierra family) or ordered dithering (Bayer 2×2, 4×4, 8×8 and an
// 8×8 clustered-dot screen), in pure Go.
//
// The colours are either Levels values per channel, each channel quantised
// on its own (levels 2 on RGB gives 8 colours, and grey stays grey), or an
// explicit Palette searched for the nearest colour: by redmean distance on
// sRGB values, or by Euclidean distance in linear light with Linear. Output
// pixels are always exactly level values or palette colours; alpha is never
// changed.
//
// Error diffusion keeps only the kernel's few rows of error (float32), so
// its memory is O(width); the palette search adds a fixed-size cache. With
// Linear, error is diffused in linear light too. A pixel plus its error may
// leave the RGB cube by up to 256 code values before it is clamped, so that
// a palette which cannot absorb an error at once still pays it back later:
// for colours inside the palette's convex hull the mean colour is kept.
// Atkinson's kernel passes on only 6/8 of the error, by design.
//
// Ordered dithering compares each channel's position between the two levels
// around it with the threshold; with a palette it offsets the colour along
// the grey diagonal by (threshold-0.5)×spread before the nearest-colour
// search, the spread being local to the colour's nearest palette colour, so
// that palette colours map to themselves.
package dither

import (
	"fmt"
	"math"

	"github.com/imgd/imgd"
)

// Options come from an imgd.Dither step.
type Options struct {
	Method     string      // one of imgd.DitherMethods (e.g. imgd.DitherFloydSteinberg)
	Levels     int         // 2..256 values per channel; 0 when Palette is used
	Palette    []imgd.RGBA // explicit palette (alpha ignored); nil when Levels is used
	Serpentine bool        // error diffusion: alternate scan direction per row
	Linear     bool        // diffuse error and pick colours in linear light
}

// MaxPaletteColors is the largest palette Apply accepts, the same bound as
// a custom palette of an imgd.Dither step.
const MaxPaletteColors = 256

// Apply dithers pix in place. pix is interleaved 8-bit sRGB pixels, bands is
// 3 (RGB) or 4 (RGBA), row stride = width*bands, and len(pix) must be
// width*height*bands. Alpha (band 4) is left untouched. Bad options or
// dimensions give an *imgd.Error with imgd.CodeInvalidArgument.
//
// Apply allocates its own state, so concurrent calls on distinct buffers
// are safe.
func Apply(pix []byte, width, height, bands int, opt Options) error {
	if err := checkImage(pix, width, height, bands); err != nil {
		return err
	}
	k, m, err := method(opt.Method)
	if err != nil {
		return err
	}
	q, err := newQuantizer(opt, m != nil)
	if err != nil {
		return err
	}
	if width == 0 || height == 0 {
		return nil
	}
	img := pixels{pix: pix, width: width, height: height, bands: bands}
	if k != nil {
		diffuse(img, k, q, opt.Serpentine)
	} else {
		ordered(img, m, q)
	}
	return nil
}

// pixels is the buffer Apply works on.
type pixels struct {
	pix                  []byte
	width, height, bands int
}

func checkImage(pix []byte, width, height, bands int) error {
	if bands != 3 && bands != 4 {
		return invalid("bands", "must be 3 (RGB) or 4 (RGBA), got %d", bands)
	}
	if width < 0 || height < 0 {
		return invalid("size", "must not be negative, got %dx%d", width, height)
	}
	if width > 0 && height > math.MaxInt/bands/width {
		return invalid("size", "%dx%d pixels overflow", width, height)
	}
	if n := width * height * bands; len(pix) != n {
		return invalid("pix", "has %d bytes, want %d for %dx%d with %d bands", len(pix), n, width, height, bands)
	}
	return nil
}

// method returns the error diffusion kernel or the threshold matrix of a
// method name; exactly one is non-nil when err is nil.
func method(name string) (*kernel, *matrix, error) {
	if k, ok := kernels[name]; ok {
		return k, nil, nil
	}
	if m, ok := matrices[name]; ok {
		return nil, m, nil
	}
	return nil, nil, invalid("method", "unknown dither method %q", name)
}

func invalid(field, format string, args ...any) *imgd.Error {
	return &imgd.Error{Code: imgd.CodeInvalidArgument, Field: field, Message: fmt.Sprintf(format, args...)}
}
