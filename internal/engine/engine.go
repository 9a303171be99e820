// Package engine runs one imgd.Pipeline on one image with libvips: sniff
// the format, check limits from the header before any pixel is decoded,
// choose a load plan (shrink-on-load when the pipeline starts with a
// downscale), apply the steps and encode.
package engine

import (
	"fmt"
	"log/slog"
	"runtime"
	"strings"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/vips"
)

// Limits bound the work and memory of one run. Every limit is checked
// from the header, before pixels are decoded.
type Limits struct {
	MaxInputBytes      int64 // encoded input size
	MaxPixels          int64 // decoded pixels, all frames together, input and output
	MaxFrames          int   // frames of an animation
	MaxOutputDimension int   // width or height of the output
	// Strictness is libvips' fail-on level: "none", "truncated",
	// "error" or "warning" (reject anything the decoder complains about).
	Strictness string
}

// DefaultLimits are safe for a service on a small machine.
func DefaultLimits() Limits {
	return Limits{
		MaxInputBytes:      50 << 20,
		MaxPixels:          100_000_000,
		MaxFrames:          1000,
		MaxOutputDimension: 16384,
		Strictness:         "warning",
	}
}

// Validate reports limits that make no sense.
func (l Limits) Validate() error {
	var errs []string
	if l.MaxInputBytes <= 0 {
		errs = append(errs, fmt.Sprintf("max input bytes must be > 0, got %d", l.MaxInputBytes))
	}
	if l.MaxPixels <= 0 {
		errs = append(errs, fmt.Sprintf("max pixels must be > 0, got %d", l.MaxPixels))
	}
	if l.MaxFrames <= 0 {
		errs = append(errs, fmt.Sprintf("max frames must be > 0, got %d", l.MaxFrames))
	}
	if l.MaxOutputDimension <= 0 {
		errs = append(errs, fmt.Sprintf("max output dimension must be > 0, got %d", l.MaxOutputDimension))
	}
	if _, ok := failOn[l.Strictness]; !ok {
		errs = append(errs, fmt.Sprintf("strictness must be none, truncated, error or warning, got %q", l.Strictness))
	}
	if len(errs) > 0 {
		return fmt.Errorf("engine limits: %s", strings.Join(errs, "; "))
	}
	return nil
}

var failOn = map[string]vips.FailOn{
	"none": vips.FailOnNone, "truncated": vips.FailOnTruncated,
	"error": vips.FailOnError, "warning": vips.FailOnWarning,
}

// Options configure an Engine.
type Options struct {
	Limits Limits
	Logger *slog.Logger // nil: discard
}

// Engine runs pipelines. It is safe for concurrent use; each Run uses one
// locked OS thread and libvips' own threading is off, so parallelism is
// the number of goroutines calling Run.
type Engine struct {
	limits Limits
	failOn vips.FailOn
	log    *slog.Logger
}

// New starts libvips (once per process) and returns an Engine.
func New(o Options) (*Engine, error) {
	if o.Limits == (Limits{}) {
		o.Limits = DefaultLimits()
	}
	if err := o.Limits.Validate(); err != nil {
		return nil, err
	}
	if err := vips.Init(); err != nil {
		return nil, fmt.Errorf("start libvips: %w", err)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	vips.SetLogger(log)
	return &Engine{limits: o.Limits, failOn: failOn[o.Limits.Strictness], log: log}, nil
}

// Limits returns the engine's limits.
func (e *Engine) Limits() Limits { return e.limits }

// Result is one pipeline's output.
type Result struct {
	Data    []byte
	Format  imgd.Format
	Width   int
	Height  int // one frame's height
	Frames  int
	Outputs map[string]any // what steps computed, by op name
	Input   imgd.ImageInfo
	// Variants are a responsive step's outputs, in index order (formats
	// in the step's order, each with its widths ascending). The result is
	// then a set: Format is imgd.FormatJSON, Data nil (the caller writes
	// the manifest, which names each variant), Width and Height the
	// widest variant's.
	Variants []Variant
}

// withThread runs f on a locked OS thread and releases libvips' thread
// state afterwards. It first loads the deferred libvips modules that the
// formats need (see vips.Prepare: loading one while libvips works
// elsewhere can abort the process), then marks libvips as busy while f
// runs.
func withThread[T any](formats []imgd.Format, f func() (T, error)) (T, error) {
	var vf []vips.Format
	for _, format := range formats {
		if format != "" {
			vf = append(vf, loaderOf(format))
		}
	}
	if err := vips.Prepare(vf...); err != nil {
		var zero T
		return zero, &imgd.Error{Code: imgd.CodeUnsupported, Message: "the decoder or encoder of this format is not available", Err: err}
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer vips.Enter()()
	defer vips.ThreadDone()
	return f()
}

// formatsOf returns src's sniffed format, or none when it is not one
// (the work itself then reports why).
func formatsOf(src []byte) []imgd.Format {
	if f, err := Sniff(src); err == nil {
		return []imgd.Format{f}
	}
	return nil
}

// Probe sniffs src and reads its header: format, upright dimensions,
// frames and EXIF orientation. It checks the input limits, so an image
// Probe accepts will not be refused by Run for its size.
func (e *Engine) Probe(src []byte) (imgd.ImageInfo, error) {
	return withThread(formatsOf(src), func() (imgd.ImageInfo, error) {
		info, _, err := e.probe(src)
		return info, err
	})
}

func (e *Engine) probe(src []byte) (imgd.ImageInfo, vips.Header, error) {
	if int64(len(src)) > e.limits.MaxInputBytes {
		return imgd.ImageInfo{}, vips.Header{}, imgd.Errorf(imgd.CodeTooLarge,
			"input is %d bytes, the limit is %d", len(src), e.limits.MaxInputBytes)
	}
	f, err := Sniff(src)
	if err != nil {
		return imgd.ImageInfo{}, vips.Header{}, err
	}
	// The header is read leniently: strictness applies to the pixels, and a
	// decoder warning must not hide a limit the header already breaks.
	defer vips.Pin(src)()
	im, err := vips.Load(src, vips.LoadOptions{Format: loaderOf(f), FailOn: vips.FailOnNone, Sequential: true})
	if err != nil {
		return imgd.ImageInfo{}, vips.Header{}, &imgd.Error{Code: imgd.CodeUnsupported,
			Message: fmt.Sprintf("cannot read the %s header: the file is damaged or not a valid %s image", f, f), Err: err}
	}
	defer im.Close()
	h := im.Header()
	frames := 1
	if animated(f) && h.Pages > 1 {
		frames = h.Pages
	}
	info := imgd.ImageInfo{Format: f, MediaType: f.MediaType(), Width: h.Width, Height: h.Height,
		Frames: frames, Orientation: h.Orientation, HasAlpha: h.HasAlpha}
	if h.Orientation >= 5 {
		info.Width, info.Height = h.Height, h.Width
	}
	if err := e.checkInput(info); err != nil {
		return info, h, err
	}
	return info, h, nil
}

func (e *Engine) checkInput(info imgd.ImageInfo) error {
	w, h := int64(info.Width), int64(info.Height)
	if w <= 0 || h <= 0 {
		return imgd.Errorf(imgd.CodeUnsupported, "the header declares an empty %dx%d image", w, h)
	}
	if info.Frames > e.limits.MaxFrames {
		return imgd.Errorf(imgd.CodeOverLimit, "the image has %d frames, the limit is %d", info.Frames, e.limits.MaxFrames)
	}
	// w*h cannot overflow: libvips caps each dimension at 10,000,000.
	if px := w * h * int64(info.Frames); px > e.limits.MaxPixels {
		return imgd.Errorf(imgd.CodeOverLimit, "the image is %dx%d (%d frames): %d pixels, the limit is %d",
			w, h, info.Frames, px, e.limits.MaxPixels)
	}
	return nil
}

// animated reports whether f can hold frames that imgd keeps.
func animated(f imgd.Format) bool { return f == imgd.FormatGIF || f == imgd.FormatWebP }

func loaderOf(f imgd.Format) vips.Format {
	switch f {
	case imgd.FormatJPEG:
		return vips.JPEG
	case imgd.FormatPNG:
		return vips.PNG
	case imgd.FormatWebP:
		return vips.WebP
	case imgd.FormatAVIF, imgd.FormatHEIC:
		return vips.HEIF
	case imgd.FormatGIF:
		return vips.GIF
	case imgd.FormatTIFF:
		return vips.TIFF
	case imgd.FormatBMP:
		return vips.BMP
	case imgd.FormatSVG:
		return vips.SVG
	case imgd.FormatJXL:
		return vips.JXL
	}
	panic("engine: no loader for " + string(f))
}

// DefaultOutput is the format a pipeline without convert writes for an
// input of format f: the same format when imgd can write it.
func DefaultOutput(f imgd.Format) imgd.Format {
	switch f {
	case imgd.FormatHEIC:
		return imgd.FormatJPEG
	case imgd.FormatBMP, imgd.FormatSVG, imgd.FormatJXL:
		return imgd.FormatPNG
	}
	return f
}
