// Package vips is imgd's only cgo: a thin, fixed-arity layer over the few
// libvips operations the engine needs. Nothing but internal/engine imports
// it. Every *Image owns one libvips reference; Close is idempotent.
//
// Threading: libvips keeps per-thread state, so callers run one job on one
// locked OS thread and call ThreadDone when it ends (see Engine.Run).
package vips

/*
#cgo pkg-config: vips
#include "vips.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unsafe"
)

// Format selects a loader or saver.
type Format int

const (
	JPEG Format = C.IMGD_JPEG
	PNG  Format = C.IMGD_PNG
	WebP Format = C.IMGD_WEBP
	HEIF Format = C.IMGD_HEIF // HEIC and AVIF
	GIF  Format = C.IMGD_GIF
	TIFF Format = C.IMGD_TIFF
	BMP  Format = C.IMGD_BMP
	SVG  Format = C.IMGD_SVG
	JXL  Format = C.IMGD_JXL
)

// FailOn is libvips' decode strictness.
type FailOn int

const (
	FailOnNone      FailOn = C.VIPS_FAIL_ON_NONE
	FailOnTruncated FailOn = C.VIPS_FAIL_ON_TRUNCATED
	FailOnError     FailOn = C.VIPS_FAIL_ON_ERROR
	FailOnWarning   FailOn = C.VIPS_FAIL_ON_WARNING
)

// Interesting selects how smart crops choose their region.
type Interesting int

const (
	InterestingNone      Interesting = C.VIPS_INTERESTING_NONE
	InterestingCentre    Interesting = C.VIPS_INTERESTING_CENTRE
	InterestingEntropy   Interesting = C.VIPS_INTERESTING_ENTROPY
	InterestingAttention Interesting = C.VIPS_INTERESTING_ATTENTION
)

// Size says whether thumbnail may upscale, downscale, or force exact size.
type Size int

const (
	SizeBoth  Size = C.VIPS_SIZE_BOTH
	SizeDown  Size = C.VIPS_SIZE_DOWN
	SizeForce Size = C.VIPS_SIZE_FORCE
)

var (
	initOnce sync.Once
	initErr  error
)

// Init starts libvips once per process: operation cache off, libvips'
// own threading at 1 (parallelism comes from Go workers), and every loader
// blocked except the formats imgd accepts.
func Init() error {
	initOnce.Do(func() {
		if C.imgd_init() != 0 {
			initErr = takeError("init")
		}
	})
	return initErr
}

// ThreadDone releases libvips' per-thread state and error buffer. Call it
// at the end of a job, on the thread that ran it.
func ThreadDone() { C.imgd_thread_done() }

// Error is a libvips failure. Its text comes from libvips' process-wide
// error buffer and is for logs only: callers classify failures by the
// stage that failed, never by this text.
type Error struct {
	Op   string
	Text string
}

func (e *Error) Error() string { return "vips " + e.Op + ": " + e.Text }

func takeError(op string) error {
	text := strings.TrimSpace(C.GoString(C.vips_error_buffer()))
	C.vips_error_clear()
	if text == "" {
		text = "unknown error"
	}
	return &Error{Op: op, Text: text}
}

// Image is one reference to a libvips image.
type Image struct {
	p *C.VipsImage
	// metaJPEG is the JPEG an image from JPEGThumbnail was decoded from:
	// that path reads no metadata, so Save copies it from here when it
	// keeps metadata.
	metaJPEG []byte
}

// Close drops the reference. It is safe to call more than once.
func (im *Image) Close() {
	if im != nil && im.p != nil {
		C.imgd_unref(im.p)
		im.p = nil
		im.metaJPEG = nil
	}
}

// Ref returns a second reference to the same image. libvips images are
// immutable and every operation makes a new one, so each reference can go
// its own way (the engine's responsive variants each start from one base);
// both must be closed.
func (im *Image) Ref() *Image {
	C.g_object_ref(C.gpointer(im.p))
	return &Image{p: im.p, metaJPEG: im.metaJPEG}
}

// replace makes im hold out instead of its previous image.
func (im *Image) replace(out *C.VipsImage) {
	C.imgd_unref(im.p)
	im.p = out
}

// Header describes an image without computing pixels.
type Header struct {
	Width, Height  int // Height is the whole strip for multi-page images
	Bands          int
	PageHeight     int
	Pages          int
	Orientation    int
	HasAlpha       bool
	HasProfile     bool
	CMYK           bool
	Interpretation int
	BandFormat     int
}

// Header reads the image's header fields.
func (im *Image) Header() Header {
	var h C.imgd_header
	C.imgd_header_of(im.p, &h)
	return Header{
		Width: int(h.width), Height: int(h.height), Bands: int(h.bands),
		PageHeight: int(h.page_height), Pages: int(h.n_pages), Orientation: int(h.orientation),
		HasAlpha: h.has_alpha != 0, HasProfile: h.has_profile != 0, CMYK: h.cmyk != 0,
		Interpretation: int(h.interpretation), BandFormat: int(h.format),
	}
}

// Width is the image width in pixels.
func (im *Image) Width() int { return int(C.vips_image_get_width(im.p)) }

// Height is the full image height (all pages).
func (im *Image) Height() int { return int(C.vips_image_get_height(im.p)) }

// Bands is the number of channels.
func (im *Image) Bands() int { return int(C.vips_image_get_bands(im.p)) }

// PageHeight is one frame's height (the full height for still images).
func (im *Image) PageHeight() int { return int(C.vips_image_get_page_height(im.p)) }

// HasAlpha reports whether the last band is alpha.
func (im *Image) HasAlpha() bool { return C.vips_image_hasalpha(im.p) != 0 }

// LoadOptions select the loader and its strictness.
type LoadOptions struct {
	Format     Format
	AllPages   bool
	FailOn     FailOn
	Sequential bool
	Shrink     int // JPEG only: decode at 1/Shrink size (1, 2, 4 or 8)
}

// Load opens buf with the loader for o.Format. It reads the header only;
// pixels are decoded when an operation needs them. buf must stay alive and
// unchanged until the image and everything derived from it is closed:
// hold it with Pin.
func Load(buf []byte, o LoadOptions) (*Image, error) {
	if len(buf) == 0 {
		return nil, &Error{Op: "load", Text: "empty input"}
	}
	if err := needModule(o.Format); err != nil {
		return nil, err
	}
	co := C.imgd_load_opts{format: C.int(o.Format), n: 1, fail_on: C.int(o.FailOn)}
	if o.AllPages {
		co.n = -1
	}
	if o.Sequential {
		co.sequential = 1
	}
	if o.Shrink > 1 {
		co.shrink = C.int(o.Shrink)
	}
	var out *C.VipsImage
	if C.imgd_load(unsafe.Pointer(unsafe.SliceData(buf)), C.size_t(len(buf)), &co, &out) != 0 {
		return nil, takeError("load")
	}
	return &Image{p: out}, nil
}

// ThumbnailOptions drive libvips' shrink-on-load thumbnailer.
type ThumbnailOptions struct {
	Width, Height int
	Size          Size
	Crop          Interesting
	AllPages      bool
	FailOn        FailOn
	Format        Format // the sniffed format; 0 makes every deferred module load
}

// Thumbnail decodes buf at reduced size (JPEG DCT scaling, WebP and HEIF
// shrink-on-load, TIFF/HEIF embedded thumbnails where exact), applies the
// EXIF orientation and imports embedded colour profiles to sRGB.
func Thumbnail(buf []byte, o ThumbnailOptions) (*Image, error) {
	co := C.imgd_thumb_opts{width: C.int(o.Width), height: C.int(o.Height), size: C.int(o.Size),
		crop: C.int(o.Crop), n: 1, fail_on: C.int(o.FailOn)}
	if o.AllPages {
		co.n = -1
	}
	if err := needModule(o.Format); err != nil {
		return nil, err
	}
	var out *C.VipsImage
	if C.imgd_thumbnail(unsafe.Pointer(unsafe.SliceData(buf)), C.size_t(len(buf)), &co, &out) != 0 {
		return nil, takeError("thumbnail")
	}
	return &Image{p: out}, nil
}

func (im *Image) apply(op string, f func(out **C.VipsImage) C.int) error {
	var out *C.VipsImage
	if f(&out) != 0 {
		return takeError(op)
	}
	im.replace(out)
	return nil
}

// AutoRotate applies and removes the EXIF orientation.
func (im *Image) AutoRotate() error {
	return im.apply("autorot", func(out **C.VipsImage) C.int { return C.imgd_autorot(im.p, out) })
}

// ToSRGB converts to 8-bit sRGB (8-bit grey for grey images), applying an
// embedded colour profile and then dropping it.
func (im *Image) ToSRGB() error {
	return im.apply("colourspace", func(out **C.VipsImage) C.int { return C.imgd_to_srgb(im.p, out) })
}

// ToRGB expands 8-bit grey to 3 bands (alpha kept).
func (im *Image) ToRGB() error {
	return im.apply("colourspace", func(out **C.VipsImage) C.int { return C.imgd_to_uchar_rgb(im.p, out) })
}

// Resize scales by hscale and vscale with libvips' default (lanczos3) kernel.
func (im *Image) Resize(hscale, vscale float64) error {
	return im.apply("resize", func(out **C.VipsImage) C.int {
		return C.imgd_resize(im.p, out, C.double(hscale), C.double(vscale))
	})
}

// Shrink reduces by an integer factor on both axes, averaging each
// factor×factor block (a box filter, no ringing).
func (im *Image) Shrink(factor int) error {
	return im.apply("shrink", func(out **C.VipsImage) C.int { return C.imgd_shrink(im.p, out, C.int(factor)) })
}

// ThumbnailImage scales an already loaded image to exactly width×height.
func (im *Image) ThumbnailImage(width, height int) error {
	return im.apply("thumbnail", func(out **C.VipsImage) C.int {
		return C.imgd_thumbnail_image(im.p, out, C.int(width), C.int(height))
	})
}

// Crop extracts a rectangle.
func (im *Image) Crop(x, y, w, h int) error {
	return im.apply("crop", func(out **C.VipsImage) C.int {
		return C.imgd_crop(im.p, out, C.int(x), C.int(y), C.int(w), C.int(h))
	})
}

// SmartCrop crops to w×h choosing the region by content.
func (im *Image) SmartCrop(w, h int, how Interesting) error {
	return im.apply("smartcrop", func(out **C.VipsImage) C.int {
		return C.imgd_smartcrop(im.p, out, C.int(w), C.int(h), C.int(how))
	})
}

func bgArray(bg []float64) (*C.double, C.int) {
	return (*C.double)(unsafe.Pointer(unsafe.SliceData(bg))), C.int(len(bg))
}

// Embed places the image at x,y on a w×h canvas filled with bg (one value
// per band).
func (im *Image) Embed(x, y, w, h int, bg []float64) error {
	p, n := bgArray(bg)
	defer runtime.KeepAlive(bg)
	return im.apply("embed", func(out **C.VipsImage) C.int {
		return C.imgd_embed(im.p, out, C.int(x), C.int(y), C.int(w), C.int(h), p, n)
	})
}

// Rot turns by a multiple of 90 degrees clockwise, exactly.
func (im *Image) Rot(angle int) error {
	return im.apply("rot", func(out **C.VipsImage) C.int { return C.imgd_rot(im.p, out, C.int(angle)) })
}

// Rotate turns by any angle, filling uncovered corners with bg.
func (im *Image) Rotate(angle float64, bg []float64) error {
	p, n := bgArray(bg)
	defer runtime.KeepAlive(bg)
	return im.apply("rotate", func(out **C.VipsImage) C.int {
		return C.imgd_rotate(im.p, out, C.double(angle), p, n)
	})
}

// Flip mirrors left-right, or top-bottom when vertical.
func (im *Image) Flip(vertical bool) error {
	v := C.int(0)
	if vertical {
		v = 1
	}
	return im.apply("flip", func(out **C.VipsImage) C.int { return C.imgd_flip(im.p, out, v) })
}

// Grayscale converts to one luminance band (alpha kept).
func (im *Image) Grayscale() error {
	return im.apply("grayscale", func(out **C.VipsImage) C.int { return C.imgd_grayscale(im.p, out) })
}

// Flatten removes alpha by compositing over an 8-bit RGB background.
func (im *Image) Flatten(r, g, b float64) error {
	return im.apply("flatten", func(out **C.VipsImage) C.int {
		return C.imgd_flatten(im.p, out, C.double(r), C.double(g), C.double(b))
	})
}

// AddAlpha appends an opaque alpha band.
func (im *Image) AddAlpha() error {
	return im.apply("addalpha", func(out **C.VipsImage) C.int { return C.imgd_add_alpha(im.p, out) })
}

// SetPageHeight marks the image as a strip of frames of height h.
func (im *Image) SetPageHeight(h int) error {
	return im.apply("copy", func(out **C.VipsImage) C.int { return C.imgd_set_pages(im.p, out, C.int(h)) })
}

// ResetOrientation sets the orientation tag to 1 (pixels already upright).
func (im *Image) ResetOrientation() error {
	return im.apply("copy", func(out **C.VipsImage) C.int { return C.imgd_strip_orientation(im.p, out) })
}

// Frames splits a strip of frames into separate images.
func (im *Image) Frames() ([]*Image, error) {
	ph, w, n := im.PageHeight(), im.Width(), im.Height()/im.PageHeight()
	frames := make([]*Image, 0, n)
	for i := range n {
		var out *C.VipsImage
		if C.imgd_crop(im.p, &out, 0, C.int(i*ph), C.int(w), C.int(ph)) != 0 {
			for _, f := range frames {
				f.Close()
			}
			return nil, takeError("frames")
		}
		frames = append(frames, &Image{p: out})
	}
	return frames, nil
}

// JoinFrames stacks equally sized frames vertically into one animated image.
func JoinFrames(frames []*Image) (*Image, error) {
	if len(frames) == 0 {
		return nil, errors.New("vips: no frames to join")
	}
	ps := C.malloc(C.size_t(len(frames)) * C.size_t(unsafe.Sizeof(uintptr(0))))
	defer C.free(ps)
	arr := unsafe.Slice((**C.VipsImage)(ps), len(frames))
	for i, f := range frames {
		arr[i] = f.p
	}
	var out *C.VipsImage
	if C.imgd_join_pages((**C.VipsImage)(ps), C.int(len(frames)), &out) != 0 {
		return nil, takeError("join")
	}
	return &Image{p: out}, nil
}

// Pixels computes the image and copies its 8-bit pixels into Go memory.
func (im *Image) Pixels() ([]byte, error) {
	var n C.size_t
	p := C.imgd_to_memory(im.p, &n)
	if p == nil {
		return nil, takeError("pixels")
	}
	defer C.g_free(C.gpointer(p))
	return C.GoBytes(p, C.int(n)), nil
}

// FromPixels makes an 8-bit image from interleaved pixels, copying the
// animation metadata (page height, delays, loop) of like.
func FromPixels(pix []byte, width, height, bands int, like *Image) (*Image, error) {
	if len(pix) != width*height*bands {
		return nil, fmt.Errorf("vips: %d bytes for %dx%dx%d pixels", len(pix), width, height, bands)
	}
	var out *C.VipsImage
	if C.imgd_from_memory(unsafe.Pointer(unsafe.SliceData(pix)), C.size_t(len(pix)), C.int(width), C.int(height),
		C.int(bands), like.p, &out) != 0 {
		return nil, takeError("from pixels")
	}
	return &Image{p: out}, nil
}

// SaveOptions select the encoder and its settings.
type SaveOptions struct {
	Format      Format
	Quality     int
	Lossless    bool
	Progressive bool
	Strip       bool
	Palette     bool
	Effort      int
}

// Save encodes the image; this is where pixels are computed, so decode
// failures of lazily loaded input surface here too.
func (im *Image) Save(o SaveOptions) ([]byte, error) {
	co := C.imgd_save_opts{format: C.int(o.Format), quality: C.int(o.Quality), lossless: cbool(o.Lossless),
		progressive: cbool(o.Progressive), strip: cbool(o.Strip), palette: cbool(o.Palette), effort: C.int(o.Effort)}
	if err := needModule(o.Format); err != nil {
		return nil, err
	}
	in := im.p
	if !o.Strip && im.metaJPEG != nil {
		src := im.metaJPEG
		if C.imgd_copy_jpeg_meta(im.p, unsafe.Pointer(unsafe.SliceData(src)), C.size_t(len(src)), &in) != 0 {
			return nil, takeError("save")
		}
		defer C.imgd_unref(in)
	}
	var buf unsafe.Pointer
	var n C.size_t
	if C.imgd_save(in, &co, &buf, &n) != 0 {
		return nil, takeError("save")
	}
	defer C.g_free(C.gpointer(buf))
	return C.GoBytes(buf, C.int(n)), nil
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// Memory reports libvips' tracked allocations: bytes, allocation count and
// open files. Tests compare them before and after a suite to find leaks.
func Memory() (bytes int64, allocs, files int) {
	return int64(C.vips_tracked_get_mem()), int(C.vips_tracked_get_allocs()), int(C.vips_tracked_get_files())
}

// MemoryHighwater is the peak of libvips' tracked memory.
func MemoryHighwater() int64 { return int64(C.vips_tracked_get_mem_highwater()) }

// CopyMemory computes the image into memory, so that later operations may
// read it in any order (a sequentially loaded image can only be read top
// to bottom, once).
func (im *Image) CopyMemory() error {
	return im.apply("copy_memory", func(out **C.VipsImage) C.int { return C.imgd_copy_memory(im.p, out) })
}

// Pin keeps buf in place and alive until the returned function is called.
// Load and Thumbnail do not copy their input: libvips reads it lazily, as
// pixels are demanded, so the buffer must outlive every image made from it
// (cgo forbids C from keeping an unpinned Go pointer).
func Pin(buf []byte) (unpin func()) {
	var p runtime.Pinner
	if len(buf) > 0 {
		p.Pin(unsafe.SliceData(buf))
	}
	return p.Unpin
}

// DecodeCheck decodes every pixel once, streaming, and reports the
// loader's failure, if any.
func (im *Image) DecodeCheck() error {
	if C.imgd_decode_check(im.p) != 0 {
		return takeError("decode")
	}
	return nil
}
