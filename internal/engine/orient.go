package engine

import (
	"math"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/orient"
	"github.com/imgd/imgd/internal/vips"
)

// OrientationOutput is what detect_orientation reports: the answer, and
// whether the step turned the image upright.
type OrientationOutput struct {
	orient.Result
	Fixed bool `json:"fixed"`
}

// DeskewOutput is what deskew reports.
type DeskewOutput struct {
	Skew    float64 `json:"skew"`    // measured, degrees clockwise; 0 when no text lines were found
	Applied bool    `json:"applied"` // the image was rotated straight
}

// minSkew is the smallest skew worth a resampling rotation.
const minSkew = 0.05

// detectOrientation answers from the EXIF tag when the input had one (the
// image was turned upright on load and its tag is reset on output);
// otherwise it analyses the current pixels.
func (j *job) detectOrientation(s *imgd.DetectOrientation) error {
	if r, ok := orient.FromEXIF(j.info.Orientation); ok && j.info.Orientation > 1 {
		j.outputs[s.Op()] = OrientationOutput{Result: r, Fixed: true}
		return nil
	}
	im, err := j.firstFramePixels()
	if err != nil {
		return err
	}
	r, err := orient.Detect(im)
	if err != nil {
		return err
	}
	out := OrientationOutput{Result: r}
	if s.Fix && r.Confidence >= *s.MinConfidence {
		if err := j.turnUpright(r); err != nil {
			return err
		}
		out.Fixed = true
	}
	j.outputs[s.Op()] = out
	return nil
}

// turnUpright rotates the image back by r's angle (exactly) and skew (on a
// white background for pages, keeping the size).
func (j *job) turnUpright(r orient.Result) error {
	if r.Angle != 0 {
		if err := j.perFrame(func(im *vips.Image) error { return im.Rot(360 - r.Angle) }); err != nil {
			return err
		}
	}
	if math.Abs(r.Skew) < minSkew {
		return nil
	}
	return j.straighten(r.Skew, "")
}

// deskew measures a page's skew and rotates it straight when it is within
// the step's limit.
func (j *job) deskew(s *imgd.Deskew) error {
	im, err := j.firstFramePixels()
	if err != nil {
		return err
	}
	r, ok, err := orient.DetectDocument(im)
	if err != nil {
		return err
	}
	out := DeskewOutput{}
	if ok {
		out.Skew = r.Skew
	}
	if ok && math.Abs(r.Skew) >= minSkew && math.Abs(r.Skew) <= s.MaxAngle {
		if err := j.straighten(r.Skew, s.Background); err != nil {
			return err
		}
		out.Applied = true
	}
	j.outputs[s.Op()] = out
	return nil
}

// straighten rotates by -skew degrees and crops the enlarged canvas back
// to the original size, around the centre; uncovered corners get bg
// (default white, as paper; transparent for images with alpha).
func (j *job) straighten(skew float64, background string) error {
	bg, err := j.background(background, imgd.RGBA{R: 255, G: 255, B: 255, A: 255})
	if err != nil {
		return err
	}
	w, h := j.width(), j.height()
	return j.perFrame(func(im *vips.Image) error {
		if err := im.Rotate(-skew, bg); err != nil {
			return err
		}
		return im.Crop((im.Width()-w)/2, (im.PageHeight()-h)/2, w, h)
	})
}

// firstFramePixels copies the first frame's pixels for analysis. A large
// image is box-shrunk by libvips first, by the integer factor the analysis
// would shrink it by anyway (orient.MaxSide): a 100 MP photo is then not
// copied into Go memory at full size (300 MB) to be averaged down in Go.
func (j *job) firstFramePixels() (orient.Image, error) {
	w, h := j.width(), j.height()
	f := (max(w, h) + orient.MaxSide - 1) / orient.MaxSide
	im := j.im
	if f > 1 || j.frames > 1 {
		im = j.im.Ref()
		defer im.Close()
		if j.frames > 1 {
			if err := im.Crop(0, 0, w, h); err != nil {
				return orient.Image{}, err
			}
		}
		if f > 1 {
			if err := im.Shrink(f); err != nil {
				return orient.Image{}, err
			}
		}
	}
	pix, err := im.Pixels()
	if err != nil {
		return orient.Image{}, err
	}
	return orient.Image{Pix: pix, Width: im.Width(), Height: im.Height(), Bands: im.Bands()}, nil
}
