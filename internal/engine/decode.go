package engine

import (
	"github.com/imgd/imgd/internal/vips"
)

// Pixels is a decoded image: interleaved 8-bit sRGB, 3 bands, or 4 with
// alpha; for an animation, its first frame.
type Pixels struct {
	Data          []byte
	Width, Height int
	Bands         int
}

// Decode returns src's first frame upright, in 8-bit sRGB with alpha if it
// has any. It applies the same limits and strictness as Run. Metrics
// (SSIM of a compressed output) and analysis steps read images this way.
func (e *Engine) Decode(src []byte) (*Pixels, error) {
	return withThread(formatsOf(src), func() (*Pixels, error) {
		info, _, err := e.probe(src)
		if err != nil {
			return nil, err
		}
		defer vips.Pin(src)()
		j := &job{e: e, src: src, info: info, frames: 1}
		defer func() { j.im.Close() }()
		if err := j.load(src, info, false, true); err != nil {
			return nil, err
		}
		if err := j.im.ToRGB(); err != nil {
			return nil, j.pixelError(err)
		}
		pix, err := j.im.Pixels()
		if err != nil {
			return nil, j.pixelError(err)
		}
		return &Pixels{Data: pix, Width: j.width(), Height: j.height(), Bands: j.im.Bands()}, nil
	})
}
