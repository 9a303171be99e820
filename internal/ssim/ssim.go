// Package ssim measures how similar two images look: windowed SSIM and
// MS-SSIM (Wang, Bovik, Sheikh, Simoncelli 2004; Wang, Simoncelli, Bovik
// 2003) on linear-light luma, in pure Go.
//
// Choices, and why:
//   - Luma is Y = 0.2126 R + 0.7152 G + 0.0722 B of linear-light sRGB
//     (the sRGB transfer curve undone), scaled to 0..1, data range 1. Light
//     adds linearly, so averaging (the window means, the downscale below)
//     mixes pixels the way the eye and a resampling display do. The cost:
//     SSIM's constants are absolute, so on linear values errors in dark
//     areas weigh less than on gamma-encoded values.
//   - The window is an 11×11 Gaussian with σ 1.5, normalised to 1, K1 0.01
//     and K2 0.03, population (not sample) covariances, and the score is the
//     mean of the SSIM map over the positions where the window lies wholly
//     inside the image: scikit-image's structural_similarity with
//     gaussian_weights=True, sigma=1.5, use_sample_covariance=False and
//     data_range=1 computes the same number on the same luma.
//   - Images with more than Options.MaxPixels pixels (default 4 MiP) are
//     first reduced by the smallest integer factor k that brings them under
//     it, averaging k×k blocks in linear light (edge rows and columns that
//     do not fill a block are dropped). Web-sized images (up to about
//     2300×1800) are thus compared pixel for pixel, and a comparison of a
//     24 MP photo costs what a 4 MP one does (BenchmarkCompare).
//   - Images under 11 pixels on a side are enlarged by pixel repetition
//     until the window fits.
//   - With alpha, pixels are composited over black and over white and the
//     lower of the two scores counts: an error in alpha or in a colour under
//     partial transparency shows against one of them.
//   - Windows are separable: two 11-tap passes, float32 planes allocated
//     once per comparison, float64 only for the final sum.
package ssim

import (
	"errors"
	"fmt"
	"math"
)

// DefaultMaxPixels is the size above which images are compared on a
// reduced copy.
const DefaultMaxPixels = 4 << 20

const (
	radius = 5 // 11×11 window
	sigma  = 1.5
	k1     = 0.01
	k2     = 0.03
	c1     = (k1 * 1) * (k1 * 1) // data range 1
	c2     = (k2 * 1) * (k2 * 1)
)

// msWeights are the five scale weights of MS-SSIM (Wang et al. 2003).
var msWeights = [5]float64{0.0448, 0.2856, 0.3001, 0.2363, 0.1333}

// window is the normalised 1-D Gaussian; the 2-D window is its outer product.
var window = func() [2*radius + 1]float32 {
	var w [2*radius + 1]float32
	var sum float64
	g := make([]float64, len(w))
	for i := range g {
		d := float64(i - radius)
		g[i] = math.Exp(-d * d / (2 * sigma * sigma))
		sum += g[i]
	}
	for i := range w {
		w[i] = float32(g[i] / sum)
	}
	return w
}()

// Image is 8-bit sRGB pixels, interleaved: 1 (grey), 2 (grey + alpha),
// 3 (RGB) or 4 (RGBA) bands, W×H.
type Image struct {
	Pix   []byte
	W, H  int
	Bands int
}

func (im Image) check() error {
	if im.W <= 0 || im.H <= 0 || im.Bands < 1 || im.Bands > 4 {
		return fmt.Errorf("ssim: bad image %dx%d with %d bands", im.W, im.H, im.Bands)
	}
	if len(im.Pix) != im.W*im.H*im.Bands {
		return fmt.Errorf("ssim: %d bytes for %dx%dx%d pixels", len(im.Pix), im.W, im.H, im.Bands)
	}
	return nil
}

func (im Image) hasAlpha() bool { return im.Bands == 2 || im.Bands == 4 }

// Options tune a comparison.
type Options struct {
	// MaxPixels: larger images are compared on a copy reduced by an
	// integer factor to at most this many pixels. 0 means
	// DefaultMaxPixels, a negative value never reduces.
	MaxPixels int
}

func (o Options) factor(w, h int) int {
	maxPix := o.MaxPixels
	if maxPix == 0 {
		maxPix = DefaultMaxPixels
	}
	if maxPix < 0 {
		return 1
	}
	k := 1
	for (w/k)*(h/k) > maxPix {
		k++
	}
	return k
}

// ErrTooSmall is returned for images smaller than one 11×11 window after
// a reduction (images smaller than the window to begin with are enlarged).
var ErrTooSmall = errors.New("ssim: image smaller than the 11x11 window")

// enlargement is the factor by which an image narrower or shorter than the
// window is enlarged (each pixel repeated e×e times) so that the window
// fits: tiny icons still get a score.
func enlargement(w, h int) int {
	side := min(w, h)
	if side >= 2*radius+1 {
		return 1
	}
	return (2*radius + side) / side // ceil((2r+1)/side)
}

// ErrSize is returned when the two images differ in size.
var ErrSize = errors.New("ssim: images differ in size")

// Plane is one channel of float32 samples, row-major.
type Plane struct {
	W, H int
	Pix  []float32
}

// SSIM returns the mean SSIM of a and b (1 when identical).
func SSIM(a, b Image, o Options) (float64, error) {
	r, err := NewReference(a, o)
	if err != nil {
		return 0, err
	}
	return r.SSIM(b)
}

// MSSSIM returns the 5-scale MS-SSIM of a and b (1 when identical).
func MSSSIM(a, b Image, o Options) (float64, error) {
	r, err := NewReference(a, o)
	if err != nil {
		return 0, err
	}
	return r.MSSSIM(b)
}

// Reference holds what a comparison needs from the reference image, so
// that comparing many candidates (an encoder quality search) computes it
// once.
type Reference struct {
	w, h int
	k, e int // reduction and enlargement factors
	// views are the luma planes: one, or two (over black, over white) with alpha.
	views []*view
}

// view is one luma plane at every MS-SSIM scale, with its window statistics.
type view struct {
	scales []*refStats
}

// refStats are the reference's windowed mean and variance on one plane.
type refStats struct {
	x      *Plane
	mu, vv []float32 // valid-size planes: mean, variance
}

// NewReference prepares ref for comparisons.
func NewReference(ref Image, o Options) (*Reference, error) {
	if err := ref.check(); err != nil {
		return nil, err
	}
	r := &Reference{w: ref.W, h: ref.H, k: o.factor(ref.W, ref.H), e: enlargement(ref.W, ref.H)}
	for _, l := range lumaViews(ref, r.k, r.e) {
		if l.W <= 2*radius || l.H <= 2*radius {
			return nil, ErrTooSmall
		}
		v := &view{}
		for p := l; p != nil && len(v.scales) < len(msWeights); p = halve(p) {
			if p.W <= 2*radius || p.H <= 2*radius {
				break
			}
			v.scales = append(v.scales, newRefStats(p))
		}
		r.views = append(r.views, v)
	}
	return r, nil
}

// SSIM compares im with the reference.
func (r *Reference) SSIM(im Image) (float64, error) {
	ls, err := r.lumas(im)
	if err != nil {
		return 0, err
	}
	score := math.Inf(1)
	pairs(r.views, ls, func(v *view, p *Plane) {
		s, _ := compare(v.scales[0], p)
		score = min(score, s)
	})
	return score, nil
}

// MSSSIM compares im with the reference on up to five scales, each half
// the size of the previous one (2×2 averages). Images too small for five
// scales use the scales that fit, with the weights renormalised. Negative
// contrast-structure terms count as 0, so the product stays defined.
func (r *Reference) MSSSIM(im Image) (float64, error) {
	ls, err := r.lumas(im)
	if err != nil {
		return 0, err
	}
	score := math.Inf(1)
	pairs(r.views, ls, func(v *view, p *Plane) { score = min(score, msssim(v, p)) })
	return score, nil
}

func msssim(v *view, p *Plane) float64 {
	n := len(v.scales)
	var wsum float64
	for i := range n {
		wsum += msWeights[i]
	}
	logScore := 0.0
	for i, s := range v.scales {
		if i > 0 {
			p = halve(p)
		}
		ssimMean, csMean := compare(s, p)
		term := csMean
		if i == n-1 {
			term = ssimMean
		}
		if term <= 0 {
			return 0
		}
		logScore += msWeights[i] / wsum * math.Log(term)
	}
	return math.Exp(logScore)
}

func (r *Reference) lumas(im Image) ([]*Plane, error) {
	if err := im.check(); err != nil {
		return nil, err
	}
	if im.W != r.w || im.H != r.h {
		return nil, fmt.Errorf("%w: %dx%d and %dx%d", ErrSize, r.w, r.h, im.W, im.H)
	}
	return lumaViews(im, r.k, r.e), nil
}

// pairs calls f for each (reference view, candidate plane) pair: an image
// without alpha has one view, which stands for both when the other image
// has alpha (it is opaque over black and over white alike).
func pairs[T any](views []T, ls []*Plane, f func(v T, p *Plane)) {
	for i := range max(len(views), len(ls)) {
		f(views[min(i, len(views)-1)], ls[min(i, len(ls)-1)])
	}
}
