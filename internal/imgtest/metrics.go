package imgtest

import (
	"fmt"
	"math"
)

// The metrics below compare two images given as raw interleaved 8-bit pixels of the same
// size and band count (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA), as libvips writes them to
// memory. Mismatched lengths are a bug in the calling test, so they panic.

func mustSameLen(fn string, a, b []byte) {
	if len(a) != len(b) {
		panic(fmt.Sprintf("imgtest.%s: len(a) = %d, len(b) = %d, want equal", fn, len(a), len(b)))
	}
}

// PSNR returns the peak signal-to-noise ratio of b against a in decibels, over every byte
// (all bands, alpha included), with a peak of 255. Identical inputs give +Inf.
func PSNR(a, b []byte) float64 {
	mustSameLen("PSNR", a, b)
	var sum uint64
	for i := range a {
		d := int64(a[i]) - int64(b[i])
		sum += uint64(d * d)
	}
	if sum == 0 {
		return math.Inf(1)
	}
	mse := float64(sum) / float64(len(a))
	return 10 * math.Log10(255*255/mse)
}

// MeanAbsDiff returns the mean absolute difference per byte (0 for identical inputs,
// 0 for empty ones).
func MeanAbsDiff(a, b []byte) float64 {
	mustSameLen("MeanAbsDiff", a, b)
	if len(a) == 0 {
		return 0
	}
	var sum uint64
	for i := range a {
		sum += uint64(absDiff(a[i], b[i]))
	}
	return float64(sum) / float64(len(a))
}

// MaxAbsDiff returns the largest absolute difference of any byte.
func MaxAbsDiff(a, b []byte) int {
	mustSameLen("MaxAbsDiff", a, b)
	m := 0
	for i := range a {
		if d := absDiff(a[i], b[i]); d > m {
			m = d
		}
	}
	return m
}

func absDiff(x, y byte) int {
	if x > y {
		return int(x - y)
	}
	return int(y - x)
}

// SSIM constants from Wang, Bovik, Sheikh and Simoncelli, "Image quality assessment: from
// error visibility to structural similarity", IEEE TIP 13(4), 2004: K1 = 0.01, K2 = 0.03,
// L = 255, and an 11x11 circular-symmetric Gaussian window with sigma 1.5.
const (
	ssimC1     = (0.01 * 255) * (0.01 * 255)
	ssimC2     = (0.03 * 255) * (0.03 * 255)
	ssimWindow = 11
	ssimSigma  = 1.5
)

// SSIM returns the mean structural similarity of b against a, computed on luma (Rec. 601:
// 0.299 R + 0.587 G + 0.114 B; the gray band itself for 1 or 2 bands). Alpha is ignored:
// check it with PSNR or MaxAbsDiff. Local statistics use the Gaussian 11x11 window of
// Wang et al. (2004) at every position where it fits inside the image (a smaller window
// when a side is under 11 pixels), without the paper's optional downsampling. The result
// is 1 for identical images and decreases as they differ; it is symmetric in a and b.
func SSIM(a, b []byte, width, height, bands int) float64 {
	if width <= 0 || height <= 0 || bands < 1 || bands > 4 {
		panic(fmt.Sprintf("imgtest.SSIM: width %d, height %d, bands %d: want positive sizes and 1..4 bands", width, height, bands))
	}
	if n := width * height * bands; len(a) != n || len(b) != n {
		panic(fmt.Sprintf("imgtest.SSIM: len(a) = %d, len(b) = %d, want %d (%dx%dx%d)", len(a), len(b), n, width, height, bands))
	}
	x, y := luma(a, bands), luma(b, bands)

	k := min(ssimWindow, width, height)
	w := gaussian(k, ssimSigma)

	// Five local moments through a separable filter: E[x], E[y], E[x²], E[y²], E[xy].
	n := width * height
	xx, yy, xy := make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		xx[i], yy[i], xy[i] = x[i]*x[i], y[i]*y[i], x[i]*y[i]
	}
	ow, oh := width-k+1, height-k+1
	tmp := make([]float64, ow*height)
	mx := filterValid(x, width, height, w, tmp)
	my := filterValid(y, width, height, w, tmp)
	mxx := filterValid(xx, width, height, w, tmp)
	myy := filterValid(yy, width, height, w, tmp)
	mxy := filterValid(xy, width, height, w, tmp)

	var sum float64
	for i := range ow * oh {
		ux, uy := mx[i], my[i]
		vx := mxx[i] - ux*ux
		vy := myy[i] - uy*uy
		cxy := mxy[i] - ux*uy
		sum += ((2*ux*uy + ssimC1) * (2*cxy + ssimC2)) /
			((ux*ux + uy*uy + ssimC1) * (vx + vy + ssimC2))
	}
	return sum / float64(ow*oh)
}

// luma converts interleaved 8-bit pixels to one float64 luma value per pixel.
func luma(p []byte, bands int) []float64 {
	n := len(p) / bands
	out := make([]float64, n)
	for i := range n {
		px := p[i*bands : i*bands+bands]
		if bands >= 3 {
			out[i] = 0.299*float64(px[0]) + 0.587*float64(px[1]) + 0.114*float64(px[2])
		} else {
			out[i] = float64(px[0])
		}
	}
	return out
}

// gaussian returns a normalised 1-D Gaussian of k taps; its outer product with itself is
// the 2-D window.
func gaussian(k int, sigma float64) []float64 {
	w := make([]float64, k)
	c := float64(k-1) / 2
	var sum float64
	for i := range w {
		d := float64(i) - c
		w[i] = math.Exp(-d * d / (2 * sigma * sigma))
		sum += w[i]
	}
	for i := range w {
		w[i] /= sum
	}
	return w
}

// filterValid convolves src (width x height) with the separable window w, keeping only
// positions where the window lies inside the image: the result is (width-k+1) x
// (height-k+1). tmp must hold (width-k+1) x height values.
func filterValid(src []float64, width, height int, w, tmp []float64) []float64 {
	k := len(w)
	ow, oh := width-k+1, height-k+1
	for yy := range height {
		row := src[yy*width : (yy+1)*width]
		for xx := range ow {
			var s float64
			for t, wt := range w {
				s += wt * row[xx+t]
			}
			tmp[yy*ow+xx] = s
		}
	}
	out := make([]float64, ow*oh)
	for yy := range oh {
		for xx := range ow {
			var s float64
			for t, wt := range w {
				s += wt * tmp[(yy+t)*ow+xx]
			}
			out[yy*ow+xx] = s
		}
	}
	return out
}
