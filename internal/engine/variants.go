package engine

import (
	"context"
	"errors"
	"slices"

	"github.com/imgd/imgd"
)

// Variant is one output of a responsive step: one width in one format.
// When it failed, Err is set, Data is nil, Width is the width it was meant
// to have, Height 0 and Format the requested one (possibly "auto").
type Variant struct {
	Data    []byte
	Format  imgd.Format
	Width   int
	Height  int // one frame's height
	Frames  int
	Outputs map[string]any // what the encoding computed (compress)
	Err     *imgd.Error
}

// variantFormats are the encoders a responsive step may use, for
// withThread to load before the work starts.
func variantFormats(rs *imgd.Responsive) []imgd.Format {
	var out []imgd.Format
	for _, f := range rs.Formats {
		if f == imgd.FormatGIF {
			out = append(out, f)
		} else {
			out = append(out, compressFormats(rs.Compress(f))...)
		}
	}
	return out
}

// variantsAnimate reports whether a responsive step (nil: none) may write
// an animation, so that the base keeps every frame; each variant in a
// still format then keeps the first.
func variantsAnimate(rs *imgd.Responsive) bool {
	if rs == nil {
		return false
	}
	return slices.ContainsFunc(rs.Formats, func(f imgd.Format) bool { return f == imgd.FormatAuto || f.SupportsAnimation() })
}

// baseSteps returns the steps that make a responsive set's base image.
// When the set is all there is and no variant needs more than the widest
// width, that width becomes a first resize, so that the image is decoded
// with shrink-on-load at the size the largest variant needs instead of
// whole: a 24 MP photo for a 320..1280 set is decoded at about 1280 wide.
func baseSteps(steps []imgd.Step, info imgd.ImageInfo) []imgd.Step {
	if len(steps) != 1 {
		return steps
	}
	rs, ok := steps[0].(*imgd.Responsive)
	if !ok || rs.Enlarge {
		return steps
	}
	widest := rs.Widths[len(rs.Widths)-1]
	if widest >= info.Width {
		return steps
	}
	return []imgd.Step{&imgd.Resize{Width: widest, Fit: imgd.FitInside, Gravity: "centre"}, rs}
}

// planWidths returns the widths to make from a base baseW wide, ascending,
// and the requested widths that are not made as such. Without enlarge a
// width wider than the base is not upscaled: the first of them gives one
// variant at the base's own width (unless that width was asked for
// already), and all of them are reported as skipped.
func planWidths(widths []int, baseW int, enlarge bool) (plan, skipped []int) {
	for _, w := range widths {
		switch {
		case enlarge || w <= baseW:
			plan = append(plan, w)
		default:
			skipped = append(skipped, w)
			if !slices.Contains(plan, baseW) {
				plan = append(plan, baseW)
			}
		}
	}
	return plan, skipped
}

// variants makes every variant of rs, step index of the pipeline, from the
// job's image (the base), each from its own reference of it: one failing
// does not touch the others. It fails only when ctx ends, the base cannot
// be computed, or every variant failed (with the first variant's error).
func (j *job) variants(ctx context.Context, rs *imgd.Responsive, index int) (*Result, error) {
	// Every variant reads the base: compute it once, here.
	if err := j.im.CopyMemory(); err != nil {
		return nil, j.pixelError(err)
	}
	baseW, baseH := j.width(), j.height()
	plan, skipped := planWidths(rs.Widths, baseW, rs.Enlarge)
	res := &Result{Format: imgd.FormatJSON, Frames: 1, Outputs: j.outputs, Input: j.info}
	var firstErr *imgd.Error
	for _, f := range rs.Formats {
		for _, w := range plan {
			if err := ctx.Err(); err != nil {
				return nil, canceled(err)
			}
			v := j.variant(f, w, rs)
			if v.Err != nil && firstErr == nil {
				firstErr = v.Err
			}
			if v.Err == nil && v.Width > res.Width {
				res.Width, res.Height = v.Width, v.Height
			}
			res.Variants = append(res.Variants, v)
		}
	}
	if res.Width == 0 {
		return nil, stepError(firstErr, index, rs)
	}
	if skipped == nil {
		skipped = []int{}
	}
	j.outputs["responsive"] = map[string]any{"base_width": baseW, "base_height": baseH,
		"widths": plan, "skipped_widths": skipped}
	return res, nil
}

// variant resizes a reference of the base to width and encodes it as f.
func (j *job) variant(f imgd.Format, width int, rs *imgd.Responsive) Variant {
	vj := &job{e: j.e, src: j.src, info: j.info, im: j.im.Ref(), frames: j.frames, outputs: map[string]any{}}
	defer func() { vj.im.Close() }()
	v := Variant{Format: f, Width: width}
	data, format, outputs, err := vj.encodeVariant(f, width, rs)
	if err != nil {
		if _, ok := err.(*imgd.Error); !ok {
			err = vj.pixelError(err)
		}
		v.Err = asError(err)
		return v
	}
	v.Data, v.Format, v.Outputs = data, format, outputs
	v.Width, v.Height, v.Frames = vj.width(), vj.height(), vj.frames
	if !format.SupportsAnimation() {
		v.Frames = 1 // the encoder kept the first frame
	}
	return v
}

func (j *job) encodeVariant(f imgd.Format, width int, rs *imgd.Responsive) ([]byte, imgd.Format, map[string]any, error) {
	r := &imgd.Resize{Width: width, Fit: imgd.FitInside, Gravity: "centre", Enlarge: rs.Enlarge}
	if err := j.resize(r); err != nil {
		return nil, "", nil, err
	}
	if f == imgd.FormatGIF { // no quality to search: GIF is lossless after its palette
		strip := true
		data, err := j.encode(f, &imgd.Convert{Format: f, Strip: &strip})
		return data, f, nil, err
	}
	data, format, out, err := j.compressEncode(rs.Compress(f))
	if err != nil {
		return nil, "", nil, err
	}
	return data, format, map[string]any{"compress": out}, nil
}

// asError returns err as an *imgd.Error, internal when it is not one.
func asError(err error) *imgd.Error {
	if e, ok := errors.AsType[*imgd.Error](err); ok {
		return e
	}
	return &imgd.Error{Code: imgd.CodeInternal, Message: "processing failed", Err: err}
}
