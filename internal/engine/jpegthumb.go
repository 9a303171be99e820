package engine

import (
	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/vips"
)

// jpegThumbKernel is the kernel of the hand-written JPEG path's final
// reduce: lanczos3, as libvips' thumbnailer. On testdata/photos at 300 px,
// cubic saved 1.2 ms per image (in-process) at SSIM 0.984-0.996 against
// it, linear as much at 0.968-0.994.
const jpegThumbKernel = vips.KernelLanczos3

// jpegThumbMaxDecode bounds the DCT-scaled decode the JPEG path holds in
// memory (3 bytes a pixel): a 100 MP photo thumbnailed to 300 px decodes
// at 1/8, 12.5 MP. Larger scaled decodes go through libvips, which streams.
const jpegThumbMaxDecode = 16_000_000

// jpegThumbnail tries the hand-written JPEG shrink-on-load path (see
// vips.JPEGThumbnail for why it exists) and converts the result to sRGB.
// ok is false when it does not apply and the libvips thumbnailer should
// run instead.
func (j *job) jpegThumbnail(src []byte, info imgd.ImageInfo, g geometry) (ok bool, err error) {
	if info.Format != imgd.FormatJPEG || info.Frames != 1 {
		return false, nil
	}
	im, ok, err := vips.JPEGThumbnail(src, vips.JPEGThumbnailOptions{Width: g.scaledW, Height: g.scaledH,
		Orientation: info.Orientation, FailOn: j.e.failOn, Kernel: jpegThumbKernel,
		MaxDecodePixels: jpegThumbMaxDecode, MaxInputPixels: j.e.limits.MaxPixels})
	if err != nil {
		return false, decodeError(info.Format, err)
	}
	if !ok {
		return false, nil
	}
	j.im = im
	// The thumbnail is in its final size, usually small: converting it on
	// a cached lcms transform costs less than building libvips' (see
	// vips.ToSRGBCached).
	convert := im.ToSRGB
	if int64(g.scaledW)*int64(g.scaledH) <= smallConvertMax {
		convert = im.ToSRGBCached
	}
	if err := convert(); err != nil {
		return false, decodeError(info.Format, err)
	}
	return true, nil
}
