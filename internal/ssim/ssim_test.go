package ssim

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	_ "image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func testdata(name string) string { return filepath.Join("..", "..", "testdata", name) }

// load decodes a test image to 8-bit RGB (or RGBA when withAlpha).
func load(t testing.TB, name string, withAlpha bool) Image {
	t.Helper()
	f, err := os.Open(testdata(name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src, _, err := image.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return fromImage(src, withAlpha)
}

func fromImage(src image.Image, withAlpha bool) Image {
	b := src.Bounds()
	bands := 3
	if withAlpha {
		bands = 4
	}
	im := Image{W: b.Dx(), H: b.Dy(), Bands: bands, Pix: make([]byte, 0, b.Dx()*b.Dy()*bands)}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(src.At(x, y)).(color.NRGBA)
			im.Pix = append(im.Pix, c.R, c.G, c.B)
			if withAlpha {
				im.Pix = append(im.Pix, c.A)
			}
		}
	}
	return im
}

func toRGBA(im Image) *image.NRGBA {
	out := image.NewNRGBA(image.Rect(0, 0, im.W, im.H))
	for i := range im.W * im.H {
		copy(out.Pix[i*4:], im.Pix[i*im.Bands:i*im.Bands+3])
		out.Pix[i*4+3] = 255
	}
	return out
}

var full = Options{MaxPixels: -1}

func mustSSIM(t *testing.T, a, b Image, o Options) float64 {
	t.Helper()
	s, err := SSIM(a, b, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestIdenticalScoresOne(t *testing.T) {
	im := load(t, "png/png-interlaced.png", false)
	for _, o := range []Options{full, {}, {MaxPixels: 50_000}} {
		if s := mustSSIM(t, im, im, o); math.Abs(s-1) > 1e-6 {
			t.Errorf("SSIM(x, x) with %+v = %v, want 1", o, s)
		}
		m, err := MSSSIM(im, im, o)
		if err != nil || math.Abs(m-1) > 1e-6 {
			t.Errorf("MSSSIM(x, x) with %+v = %v, %v, want 1", o, m, err)
		}
	}
}

// TestReferenceValues holds numbers produced by scikit-image 0.19.3
// (Debian python3-skimage) on the same files:
//
//	/usr/bin/python3 bench/compress/ssim_ref.py testdata/png/png-interlaced.png testdata/png/png-palette-photo.png
//
// (first column: linear luma). The 256-colour palette copy of the photo is
// a real pair of distinct encodings of one picture.
func TestReferenceValues(t *testing.T) {
	a := load(t, "png/png-interlaced.png", false)
	b := load(t, "png/png-palette-photo.png", false)
	const want = 0.992779
	if got := mustSSIM(t, a, b, full); math.Abs(got-want) > 2e-5 {
		t.Errorf("SSIM = %.6f, scikit-image says %.6f", got, want)
	}
}

func TestSymmetric(t *testing.T) {
	a := load(t, "png/png-interlaced.png", false)
	b := jpegRoundTrip(t, a, 30)
	ab, ba := mustSSIM(t, a, b, Options{}), mustSSIM(t, b, a, Options{})
	if math.Abs(ab-ba) > 1e-6 {
		t.Errorf("SSIM(a,b) = %v, SSIM(b,a) = %v", ab, ba)
	}
	mab, _ := MSSSIM(a, b, Options{})
	mba, _ := MSSSIM(b, a, Options{})
	if math.Abs(mab-mba) > 1e-6 {
		t.Errorf("MSSSIM(a,b) = %v, MSSSIM(b,a) = %v", mab, mba)
	}
}

func jpegRoundTrip(t testing.TB, im Image, q int) Image {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, toRGBA(im), &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	dec, err := jpeg.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return fromImage(dec, false)
}

// boxBlur averages a (2r+1)² neighbourhood of every pixel (edges clamped).
func boxBlur(im Image, r int) Image {
	out := Image{W: im.W, H: im.H, Bands: im.Bands, Pix: make([]byte, len(im.Pix))}
	for y := range im.H {
		for x := range im.W {
			for c := range im.Bands {
				sum, n := 0, 0
				for dy := -r; dy <= r; dy++ {
					for dx := -r; dx <= r; dx++ {
						xx, yy := min(max(x+dx, 0), im.W-1), min(max(y+dy, 0), im.H-1)
						sum += int(im.Pix[(yy*im.W+xx)*im.Bands+c])
						n++
					}
				}
				out.Pix[(y*im.W+x)*im.Bands+c] = byte((sum + n/2) / n)
			}
		}
	}
	return out
}

func noise(im Image, amp float64, seed uint64) Image {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := Image{W: im.W, H: im.H, Bands: im.Bands, Pix: make([]byte, len(im.Pix))}
	for i, v := range im.Pix {
		out.Pix[i] = byte(min(max(float64(v)+rng.NormFloat64()*amp, 0), 255))
	}
	return out
}

// TestDistortionsOrder: stronger blur, noise or JPEG compression must score
// lower, on both metrics.
func TestDistortionsOrder(t *testing.T) {
	im := load(t, "png/png-interlaced.png", false)
	cases := map[string][]Image{
		"blur":  {boxBlur(im, 1), boxBlur(im, 2), boxBlur(im, 4)},
		"noise": {noise(im, 3, 1), noise(im, 8, 1), noise(im, 20, 1)},
		"jpeg":  {jpegRoundTrip(t, im, 90), jpegRoundTrip(t, im, 60), jpegRoundTrip(t, im, 20)},
	}
	for name, levels := range cases {
		prevS, prevM := 1.0, 1.0
		for i, d := range levels {
			s := mustSSIM(t, im, d, Options{})
			m, err := MSSSIM(im, d, Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s level %d: ssim %.5f ms-ssim %.5f", name, i, s, m)
			if s >= prevS || m >= prevM {
				t.Errorf("%s level %d: ssim %.5f ms-ssim %.5f, not below the milder level's %.5f %.5f",
					name, i, s, m, prevS, prevM)
			}
			prevS, prevM = s, m
		}
	}
}

// TestAlpha: a change only in alpha lowers the score; the colour under a
// fully transparent pixel does not count.
func TestAlpha(t *testing.T) {
	im := load(t, "png/png-rgba-icon.png", true)
	alphaCut := Image{W: im.W, H: im.H, Bands: 4, Pix: append([]byte(nil), im.Pix...)}
	hidden := Image{W: im.W, H: im.H, Bands: 4, Pix: append([]byte(nil), im.Pix...)}
	for i := 0; i < len(im.Pix); i += 4 {
		alphaCut.Pix[i+3] /= 2
		if im.Pix[i+3] == 0 {
			hidden.Pix[i], hidden.Pix[i+1], hidden.Pix[i+2] = 255, 0, 255
		}
	}
	if s := mustSSIM(t, im, alphaCut, Options{}); s > 0.95 {
		t.Errorf("halving alpha scores %.4f, want a clear drop", s)
	}
	if s := mustSSIM(t, im, hidden, Options{}); math.Abs(s-1) > 1e-6 {
		t.Errorf("changing fully transparent colours scores %.6f, want 1", s)
	}
}

// TestReduced: the reduced comparison keeps the order of the full one
// and stays close to it for mild distortions.
func TestReduced(t *testing.T) {
	im := load(t, "png/png-interlaced.png", false)
	mild, strong := jpegRoundTrip(t, im, 85), jpegRoundTrip(t, im, 25)
	o := Options{MaxPixels: 70_000} // 640x427 → factor 2
	sm, ss := mustSSIM(t, im, mild, o), mustSSIM(t, im, strong, o)
	if sm <= ss {
		t.Errorf("reduced: mild %.4f <= strong %.4f", sm, ss)
	}
}

// TestTiny: images smaller than the window are enlarged, so they still
// score 1 when equal and below 1 when not.
func TestTiny(t *testing.T) {
	a := Image{W: 3, H: 7, Bands: 1, Pix: []byte{10, 200, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140,
		150, 160, 170, 180, 190, 200, 210}}
	b := Image{W: 3, H: 7, Bands: 1, Pix: append([]byte(nil), a.Pix...)}
	b.Pix[4] = 120
	if s := mustSSIM(t, a, a, Options{}); math.Abs(s-1) > 1e-6 {
		t.Errorf("SSIM(tiny, tiny) = %v", s)
	}
	if s := mustSSIM(t, a, b, Options{}); s >= 0.999 {
		t.Errorf("one changed pixel of 21 scores %v", s)
	}
}

func TestErrors(t *testing.T) {
	a := Image{W: 20, H: 20, Bands: 1, Pix: make([]byte, 400)}
	b := Image{W: 21, H: 20, Bands: 1, Pix: make([]byte, 420)}
	if _, err := SSIM(a, b, Options{}); err == nil {
		t.Error("different sizes: no error")
	}
	if _, err := SSIM(a, Image{W: 20, H: 20, Bands: 3, Pix: make([]byte, 10)}, Options{}); err == nil {
		t.Error("short pixel buffer: no error")
	}
}

// BenchmarkCompare is one candidate against a prepared reference: what the
// compress step pays per encoder quality it tries.
func BenchmarkCompare(b *testing.B) {
	for _, size := range []struct{ w, h int }{{1024, 1024}, {2048, 2048}, {6000, 4000}} {
		im := Image{W: size.w, H: size.h, Bands: 3, Pix: make([]byte, size.w*size.h*3)}
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range im.Pix {
			im.Pix[i] = byte(rng.IntN(256))
		}
		other := noise(im, 5, 3)
		ref, err := NewReference(im, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(image.Pt(size.w, size.h).String(), func(b *testing.B) {
			for b.Loop() {
				if _, err := ref.SSIM(other); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
