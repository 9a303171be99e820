package engine

import (
	"fmt"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/dither"
	"github.com/imgd/imgd/internal/vips"
)

// sequentialOK reports whether steps read their input once, top to
// bottom, so that a sequentially loaded image can feed them without being
// decoded into memory first.
func sequentialOK(steps []imgd.Step) bool {
	for _, s := range steps {
		switch s := s.(type) {
		case *imgd.Resize:
			if s.Gravity == "attention" || s.Gravity == "entropy" {
				return false
			}
		case *imgd.Flip:
			if s.Direction != "horizontal" {
				return false
			}
		case *imgd.Crop, *imgd.Grayscale, *imgd.Convert, *imgd.Dither, *imgd.AutoOrient,
			*imgd.Compress,   // compressEncode copies the image to memory before its encodes
			*imgd.Responsive: // so does variants, once for every variant
		default:
			return false
		}
	}
	return true
}

func (j *job) step(s imgd.Step) error {
	switch s := s.(type) {
	case *imgd.AutoOrient:
		return nil // applied on load
	case *imgd.Resize:
		return j.resize(s)
	case *imgd.Crop:
		return j.crop(s)
	case *imgd.Rotate:
		return j.rotate(s)
	case *imgd.Flip:
		return j.flip(s)
	case *imgd.Grayscale:
		return j.im.Grayscale()
	case *imgd.Dither:
		return j.dither(s)
	case *imgd.DetectOrientation:
		return j.detectOrientation(s)
	case *imgd.Deskew:
		return j.deskew(s)
	case *imgd.Convert:
		return nil // applied by encode
	case *imgd.Compress:
		return nil // applied at encode (compressEncode)
	case *imgd.Responsive:
		return nil // applied after the steps (variants)
	}
	return fmt.Errorf("engine: no implementation for step %q", s.Op())
}

// perFrame applies f to every frame of an animation, or to the image.
func (j *job) perFrame(f func(im *vips.Image) error) error {
	if j.frames <= 1 {
		return f(j.im)
	}
	frames, err := j.im.Frames()
	if err != nil {
		return err
	}
	defer func() {
		for _, fr := range frames {
			fr.Close()
		}
	}()
	for _, fr := range frames {
		if err := f(fr); err != nil {
			return err
		}
	}
	joined, err := vips.JoinFrames(frames)
	if err != nil {
		return err
	}
	j.im.Close()
	j.im = joined
	return nil
}

func (j *job) resize(r *imgd.Resize) error {
	g := resizeGeometry(j.width(), j.height(), r)
	if err := j.e.checkOutput(g.finalW, g.finalH, j.frames); err != nil {
		return err
	}
	if g.scaledW != j.width() || g.scaledH != j.height() {
		if err := j.im.ThumbnailImage(g.scaledW, g.scaledH); err != nil {
			return err
		}
	}
	return j.finishResize(g, r)
}

// finishResize crops (cover) or pads (contain) the scaled image.
func (j *job) finishResize(g geometry, r *imgd.Resize) error {
	w, h := j.width(), j.height()
	if g.pad {
		if g.finalW == w && g.finalH == h {
			return nil
		}
		bg, err := j.background(r.Background, imgd.RGBA{R: 255, G: 255, B: 255, A: 255})
		if err != nil {
			return err
		}
		x, y := gravityOffset(r.Gravity, g.finalW, g.finalH, w, h)
		return j.perFrame(func(im *vips.Image) error { return im.Embed(x, y, g.finalW, g.finalH, bg) })
	}
	if g.finalW == w && g.finalH == h {
		return nil
	}
	if j.frames <= 1 && (r.Gravity == "attention" || r.Gravity == "entropy") {
		how := vips.InterestingAttention
		if r.Gravity == "entropy" {
			how = vips.InterestingEntropy
		}
		// The content analysis reads the image more than once.
		if err := j.im.CopyMemory(); err != nil {
			return err
		}
		return j.im.SmartCrop(g.finalW, g.finalH, how)
	}
	x, y := gravityOffset(r.Gravity, w, h, g.finalW, g.finalH)
	return j.perFrame(func(im *vips.Image) error { return im.Crop(x, y, g.finalW, g.finalH) })
}

// gravityOffset places an inner box in an outer one.
func gravityOffset(gravity string, outerW, outerH, innerW, innerH int) (x, y int) {
	dx, dy := outerW-innerW, outerH-innerH
	x, y = dx/2, dy/2
	switch gravity {
	case "north", "north-east", "north-west":
		y = 0
	case "south", "south-east", "south-west":
		y = dy
	}
	switch gravity {
	case "west", "north-west", "south-west":
		x = 0
	case "east", "north-east", "south-east":
		x = dx
	}
	return x, y
}

// background turns a colour parameter into one value per band, adding an
// alpha band when the colour is not opaque. An empty colour means
// transparent for images with alpha, def otherwise.
func (j *job) background(s string, def imgd.RGBA) ([]float64, error) {
	c := def
	if j.im.HasAlpha() {
		c = imgd.RGBA{}
	}
	if s != "" {
		var err error
		if c, err = imgd.ParseColor(s); err != nil {
			return nil, &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "background", Message: err.Error()}
		}
	}
	if c.A < 255 && !j.im.HasAlpha() {
		if err := j.im.AddAlpha(); err != nil {
			return nil, err
		}
	}
	lum := 0.2126*float64(c.R) + 0.7152*float64(c.G) + 0.0722*float64(c.B)
	switch j.im.Bands() {
	case 1:
		return []float64{lum}, nil
	case 2:
		return []float64{lum, float64(c.A)}, nil
	case 3:
		return []float64{float64(c.R), float64(c.G), float64(c.B)}, nil
	}
	return []float64{float64(c.R), float64(c.G), float64(c.B), float64(c.A)}, nil
}

func (j *job) crop(c *imgd.Crop) error {
	w, h := j.width(), j.height()
	x0, y0 := min(c.X, w), min(c.Y, h)
	x1, y1 := min(c.X+c.Width, w), min(c.Y+c.Height, h)
	if x1 <= x0 || y1 <= y0 {
		return imgd.Errorf(imgd.CodeInvalidArgument, "the crop area %dx%d at %d,%d lies outside the %dx%d image",
			c.Width, c.Height, c.X, c.Y, w, h)
	}
	return j.perFrame(func(im *vips.Image) error { return im.Crop(x0, y0, x1-x0, y1-y0) })
}

func (j *job) rotate(r *imgd.Rotate) error {
	switch r.Angle {
	case 0:
		return nil
	case 90, 180, 270:
		return j.perFrame(func(im *vips.Image) error { return im.Rot(int(r.Angle)) })
	}
	bg, err := j.background(r.Background, imgd.RGBA{A: 255})
	if err != nil {
		return err
	}
	// A rotated frame's size depends only on the angle, so frames stay equal.
	if err := j.perFrame(func(im *vips.Image) error { return im.Rotate(r.Angle, bg) }); err != nil {
		return err
	}
	return j.e.checkOutput(j.width(), j.height(), j.frames)
}

func (j *job) flip(f *imgd.Flip) error {
	switch f.Direction {
	case "horizontal":
		return j.im.Flip(false)
	case "vertical":
		return j.perFrame(func(im *vips.Image) error { return im.Flip(true) })
	}
	return j.perFrame(func(im *vips.Image) error {
		if err := im.Flip(false); err != nil {
			return err
		}
		return im.Flip(true)
	})
}

// dither runs the pure-Go ditherer on the decoded pixels, frame by frame.
func (j *job) dither(d *imgd.Dither) error {
	if err := j.im.ToRGB(); err != nil {
		return err
	}
	pix, err := j.im.Pixels()
	if err != nil {
		return err
	}
	w, fh, bands := j.width(), j.height(), j.im.Bands()
	opt := dither.Options{Method: d.Method, Levels: d.Levels, Palette: d.Colors(),
		Serpentine: d.Serpentine, Linear: d.Linear}
	frame := w * fh * bands
	for i := range j.frames {
		if err := dither.Apply(pix[i*frame:(i+1)*frame], w, fh, bands, opt); err != nil {
			return err
		}
	}
	im, err := vips.FromPixels(pix, w, fh*j.frames, bands, j.im)
	if err != nil {
		return err
	}
	j.im.Close()
	j.im = im
	return nil
}

// maxSide is the largest width or height each encoder accepts.
var maxSide = map[imgd.Format]int{imgd.FormatWebP: 16383, imgd.FormatAVIF: 16384,
	imgd.FormatJPEG: 65500, imgd.FormatGIF: 65535}

func (j *job) encode(f imgd.Format, c *imgd.Convert) ([]byte, error) {
	o := vips.SaveOptions{Strip: true, Quality: imgd.DefaultQuality(f)}
	if c != nil {
		o = vips.SaveOptions{Quality: c.Quality, Lossless: c.Lossless, Progressive: c.Progressive,
			Strip: *c.Strip, Palette: f == imgd.FormatPNG && c.Quality > 0 && c.Quality < 100}
	}
	switch f {
	case imgd.FormatJPEG:
		o.Format = vips.JPEG
	case imgd.FormatPNG:
		o.Format = vips.PNG
	case imgd.FormatWebP:
		o.Format = vips.WebP
	case imgd.FormatAVIF:
		o.Format = vips.HEIF
	case imgd.FormatGIF:
		o.Format = vips.GIF
	case imgd.FormatTIFF:
		o.Format = vips.TIFF
	default:
		return nil, imgd.Errorf(imgd.CodeInvalidArgument, "cannot write %s", f)
	}
	if j.frames > 1 && !f.SupportsAnimation() {
		if err := j.im.Crop(0, 0, j.width(), j.height()); err != nil {
			return nil, err
		}
		j.frames = 1
	}
	w, h := j.width(), j.height()
	if m, ok := maxSide[f]; ok && (w > m || h > m) {
		return nil, imgd.Errorf(imgd.CodeOverLimit, "%s cannot store %dx%d: at most %d pixels on a side", f, w, h, m)
	}
	if err := j.e.checkOutput(w, h, j.frames); err != nil {
		return nil, err
	}
	if !f.SupportsAlpha() && j.im.HasAlpha() {
		if err := j.im.Flatten(255, 255, 255); err != nil {
			return nil, err
		}
	}
	if f == imgd.FormatAVIF || f == imgd.FormatGIF {
		if err := j.im.ToRGB(); err != nil {
			return nil, err
		}
	}
	if !o.Strip {
		if err := j.im.ResetOrientation(); err != nil {
			return nil, err
		}
	}
	return j.im.Save(o)
}
