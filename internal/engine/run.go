package engine

import (
	"context"
	"fmt"
	"math"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/vips"
)

// job is the state of one run: the current image and what the steps
// computed. An animated image is a vertical strip of equal frames.
type job struct {
	e       *Engine
	src     []byte
	info    imgd.ImageInfo
	im      *vips.Image
	frames  int
	outputs map[string]any
}

func (j *job) width() int  { return j.im.Width() }
func (j *job) height() int { return j.im.PageHeight() }

// Run applies p to src and encodes the result.
func (e *Engine) Run(ctx context.Context, src []byte, p imgd.Pipeline) (*Result, error) {
	if len(p) == 0 {
		return nil, imgd.Errorf(imgd.CodeInvalidArgument, "empty pipeline")
	}
	formats := formatsOf(src)
	if out := p.Output(); out != nil {
		formats = append(formats, out.Format)
	}
	if c := p.Compression(); c != nil {
		formats = append(formats, compressFormats(c)...)
	}
	if rs := p.Responsive(); rs != nil {
		formats = append(formats, variantFormats(rs)...)
	}
	return withThread(formats, func() (*Result, error) { return e.run(ctx, src, p) })
}

func (e *Engine) run(ctx context.Context, src []byte, p imgd.Pipeline) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, canceled(err)
	}
	info, hdr, err := e.probe(src)
	if err != nil {
		return nil, err
	}
	out := p.Output()
	format := DefaultOutput(info.Format)
	if out != nil {
		format = out.Format
	}
	comp := p.Compression()
	if comp != nil {
		format = comp.Format // auto keeps frames: it then chooses among animated formats
	}
	keepFrames := info.Frames > 1 && (format.SupportsAnimation() || format == imgd.FormatAuto ||
		variantsAnimate(p.Responsive()))

	defer vips.Pin(src)() // runs after the images below are closed
	j := &job{e: e, src: src, info: info, outputs: map[string]any{}, frames: 1}
	defer func() { j.im.Close() }()
	steps := []imgd.Step(p)
	for len(steps) > 0 {
		if _, ok := steps[0].(*imgd.AutoOrient); !ok {
			break
		}
		steps = steps[1:]
	}
	steps = baseSteps(steps, info)
	r, startsWithResize := first[*imgd.Resize](steps)
	switch {
	case startsWithResize && hdr.CMYK:
		// libvips 8.14's thumbnailer converts CMYK itself and gets
		// embedded profiles wrong: shrink in the DCT domain instead and
		// convert with the profile here.
		if err := j.loadShrunk(src, info, r, sequentialOK(steps)); err != nil {
			return nil, err
		}
	case startsWithResize && e.shrinkOnLoad(info, r):
		if err := j.thumbnail(src, info, r, keepFrames); err != nil {
			return nil, err
		}
		steps = steps[1:]
		if !sequentialOK(steps) {
			if err := j.im.CopyMemory(); err != nil {
				return nil, decodeError(info.Format, err)
			}
		}
	default:
		if err := j.load(src, info, keepFrames, sequentialOK(steps)); err != nil {
			return nil, err
		}
	}
	if keepFrames {
		j.frames = info.Frames
	}

	for i, s := range steps {
		if err := ctx.Err(); err != nil {
			return nil, canceled(err)
		}
		if err := j.step(s); err != nil {
			if _, ok := err.(*imgd.Error); !ok {
				err = j.pixelError(err)
			}
			return nil, stepError(err, i+len(p)-len(steps), s)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, canceled(err)
	}
	if rs := p.Responsive(); rs != nil {
		return j.variants(ctx, rs, len(p)-1)
	}
	var data []byte
	if comp != nil {
		var co map[string]any
		if data, format, co, err = j.compressEncode(comp); err == nil {
			j.outputs["compress"] = co
		} else if _, ok := err.(*imgd.Error); ok {
			err = stepError(err, len(p)-1, comp)
		}
	} else {
		data, err = j.encode(format, out)
	}
	if err != nil {
		if _, ok := err.(*imgd.Error); !ok {
			err = j.pixelError(err)
		}
		return nil, err
	}
	return &Result{Data: data, Format: format, Width: j.width(), Height: j.height(), Frames: j.frames,
		Outputs: j.outputs, Input: info}, nil
}

func first[T imgd.Step](steps []imgd.Step) (T, bool) {
	var zero T
	if len(steps) == 0 {
		return zero, false
	}
	s, ok := steps[0].(T)
	return s, ok
}

func canceled(err error) error {
	return &imgd.Error{Code: imgd.CodeCanceled, Message: "the work was canceled or ran out of time", Err: err}
}

// stepError names the failing step in an error that has no field yet.
func stepError(err error, i int, s imgd.Step) error {
	if e, ok := err.(*imgd.Error); ok {
		c := *e
		if c.Field == "" {
			c.Field = fmt.Sprintf("steps[%d]", i)
		} else {
			c.Field = fmt.Sprintf("steps[%d].%s", i, c.Field)
		}
		return &c
	}
	return &imgd.Error{Code: imgd.CodeInternal, Message: fmt.Sprintf("%s failed", s.Op()),
		Field: fmt.Sprintf("steps[%d]", i), Err: err}
}

// pixelError classifies a libvips failure that happened while pixels were
// computed. Decoding is lazy, so a damaged input fails there too: the input
// is decoded again on its own, strictly and streaming, and only if that
// fails is the input to blame (unsupported_image); otherwise it is ours.
func (j *job) pixelError(err error) error {
	im, lerr := vips.Load(j.src, vips.LoadOptions{Format: loaderOf(j.info.Format), AllPages: j.frames > 1,
		FailOn: j.e.failOn, Sequential: true})
	if lerr != nil {
		return decodeError(j.info.Format, err)
	}
	defer im.Close()
	if derr := im.DecodeCheck(); derr != nil {
		return decodeError(j.info.Format, err)
	}
	return &imgd.Error{Code: imgd.CodeInternal, Message: "processing failed", Err: err}
}

// decodeError is the error for a failure while pixels are computed: the
// loader's strictness turns damaged data into an error there.
func decodeError(f imgd.Format, err error) error {
	return &imgd.Error{Code: imgd.CodeUnsupported,
		Message: fmt.Sprintf("the %s data is damaged or truncated and cannot be decoded", f), Err: err}
}

// shrinkOnLoad reports whether a first resize step can be done by
// libvips' thumbnailer: a downscale on both axes.
func (e *Engine) shrinkOnLoad(info imgd.ImageInfo, r *imgd.Resize) bool {
	g := resizeGeometry(info.Width, info.Height, r)
	return g.scaledW <= info.Width && g.scaledH <= info.Height && (g.scaledW < info.Width || g.scaledH < info.Height)
}

// load decodes the whole image upright, in 8-bit sRGB (or grey).
func (j *job) load(src []byte, info imgd.ImageInfo, allFrames, sequential bool) error {
	return j.loadAt(src, info, allFrames, sequential, 1, false)
}

// smallConvertMax bounds the images converted to sRGB by
// vips.ToSRGBCached, which holds the whole image in memory twice (7 bytes a
// pixel for CMYK): a CMYK JPEG shrunk on load for a thumbnail is well
// under it; larger ones stream through libvips' conversion.
const smallConvertMax = 4_000_000

// loadShrunk loads a JPEG at the largest DCT shrink that keeps it at least
// as large as the first resize step wants; the step then finishes the job.
func (j *job) loadShrunk(src []byte, info imgd.ImageInfo, r *imgd.Resize, sequential bool) error {
	g := resizeGeometry(info.Width, info.Height, r)
	shrink := 1
	for shrink < 8 && info.Format == imgd.FormatJPEG &&
		g.scaledW*shrink*2 <= info.Width && g.scaledH*shrink*2 <= info.Height {
		shrink *= 2
	}
	return j.loadAt(src, info, false, sequential, shrink, true)
}

// loadAt loads at 1/shrink size; small allows vips.ToSRGBCached for the
// conversion to sRGB.
func (j *job) loadAt(src []byte, info imgd.ImageInfo, allFrames, sequential bool, shrink int, small bool) error {
	// Always load sequentially. When later steps need random access the
	// image is decoded into memory here: libvips 8.14's own random-access
	// load leaks its whole pixel buffer when the decode fails (one image
	// per hostile request; TestBadFiles' leak check caught it).
	im, err := vips.Load(src, vips.LoadOptions{Format: loaderOf(info.Format), AllPages: allFrames,
		FailOn: j.e.failOn, Sequential: true, Shrink: shrink})
	if err != nil {
		return decodeError(info.Format, err)
	}
	j.im = im
	if !sequential || info.Orientation != 1 || allFrames {
		if err := im.CopyMemory(); err != nil {
			return decodeError(info.Format, err)
		}
	}
	if info.Orientation != 1 && !allFrames {
		if err := im.AutoRotate(); err != nil {
			return decodeError(info.Format, err)
		}
	}
	convert := im.ToSRGB
	if small && int64(im.Width())*int64(im.Height()) <= smallConvertMax {
		convert = im.ToSRGBCached
	}
	if err := convert(); err != nil {
		return decodeError(info.Format, err)
	}
	return nil
}

// thumbnail decodes straight to the first resize step's scale using
// shrink-on-load, then finishes that step (crop or pad). Still JPEGs take
// the hand-written libjpeg path (jpegthumb.go), the rest libvips'
// thumbnailer.
func (j *job) thumbnail(src []byte, info imgd.ImageInfo, r *imgd.Resize, allFrames bool) error {
	g := resizeGeometry(info.Width, info.Height, r)
	if err := j.e.checkOutput(g.finalW, g.finalH, info.Frames); err != nil {
		return err
	}
	done, err := j.jpegThumbnail(src, info, g)
	if err != nil {
		return err
	}
	if !done {
		im, err := vips.Thumbnail(src, vips.ThumbnailOptions{Width: g.scaledW, Height: g.scaledH,
			Size: vips.SizeForce, AllPages: allFrames, FailOn: j.e.failOn, Format: loaderOf(info.Format)})
		if err != nil {
			return decodeError(info.Format, err)
		}
		j.im = im
		if allFrames {
			j.frames = info.Frames
		}
		if err := j.im.ToSRGB(); err != nil {
			return decodeError(info.Format, err)
		}
	}
	return j.finishResize(g, r)
}

// geometry is the plan of one resize: scale to scaledW×scaledH, then crop
// or pad to finalW×finalH.
type geometry struct {
	scaledW, scaledH int
	finalW, finalH   int
	pad              bool // contain: pad instead of crop
}

func resizeGeometry(w, h int, r *imgd.Resize) geometry {
	tw, th := float64(r.Width), float64(r.Height)
	fw, fh := float64(w), float64(h)
	if tw == 0 {
		tw = math.Max(1, math.Round(fw*th/fh))
	}
	if th == 0 {
		th = math.Max(1, math.Round(fh*tw/fw))
	}
	sx, sy := tw/fw, th/fh
	switch {
	case r.Height == 0: // one side given: the scale comes from it alone
		sy = sx
	case r.Width == 0:
		sx = sy
	case r.Fit == imgd.FitInside || r.Fit == imgd.FitContain:
		sx = math.Min(sx, sy)
		sy = sx
	case r.Fit == imgd.FitOutside || r.Fit == imgd.FitCover:
		sx = math.Max(sx, sy)
		sy = sx
	}
	if !r.Enlarge {
		sx, sy = math.Min(sx, 1), math.Min(sy, 1)
	}
	g := geometry{scaledW: scaled(fw, sx, tw), scaledH: scaled(fh, sy, th)}
	g.finalW, g.finalH = g.scaledW, g.scaledH
	switch r.Fit {
	case imgd.FitCover:
		g.finalW, g.finalH = min(g.scaledW, int(tw)), min(g.scaledH, int(th))
	case imgd.FitContain:
		g.finalW, g.finalH, g.pad = int(tw), int(th), true
	}
	return g
}

// scaled is round(n*s), exactly the target when s was derived from it.
func scaled(n, s, target float64) int {
	v := n * s
	if math.Abs(v-target) < 0.5 {
		return int(target)
	}
	return max(1, int(math.Round(v)))
}

func (e *Engine) checkOutput(w, h, frames int) error {
	if w > e.limits.MaxOutputDimension || h > e.limits.MaxOutputDimension {
		return imgd.Errorf(imgd.CodeOverLimit, "the output would be %dx%d, the limit is %d on either side",
			w, h, e.limits.MaxOutputDimension)
	}
	if int64(w)*int64(h)*int64(frames) > e.limits.MaxPixels {
		return imgd.Errorf(imgd.CodeOverLimit, "the output would be %dx%d (%d frames), over the %d pixel limit",
			w, h, frames, e.limits.MaxPixels)
	}
	return nil
}
