package vips

import (
	"bytes"
	"testing"
	"time"

	"github.com/imgd/imgd/internal/imgtest"
)

// BenchmarkICCCrossover times building transforms with each choice of
// lcms flags, and converting a 300 px thumbnail's pixels with them (wall
// time: the numbers in icc.go were taken in thread CPU time with the same
// steps, on a quieter machine).
func BenchmarkICCCrossover(b *testing.B) {
	for _, rel := range []string{"photos/jpeg-cmyk-icc.jpg", "photos/jpeg-cmyk.jpg", "photos/jpeg-icc.jpg",
		"photos/jpeg-icc-swapped-rg.jpg"} {
		var pix, profile []byte
		var format, n int
		onThread(func() {
			im, ok, err := JPEGThumbnail(imgtest.Read(b, rel), JPEGThumbnailOptions{Width: 300, Height: 188,
				Orientation: 1, Kernel: KernelLanczos3})
			if err != nil || !ok {
				b.Fatalf("JPEGThumbnail(%s): %v %v", rel, ok, err)
			}
			defer im.Close()
			profile, format = im.profile()
			n = im.Width() * im.Height()
			if pix, err = im.Pixels(); err != nil {
				b.Fatal(err)
			}
		})
		out := make([]byte, n*3)
		for _, f := range []struct {
			name  string
			flags uint32
		}{{"default", 0}, {"unoptimised", uint32(flagsDirect)}, {"grid9", 9 << 16}, {"grid11", 11 << 16},
			{"grid13", 13 << 16}} {
			b.Run(rel[7:]+"/"+f.name+"/build", func(b *testing.B) {
				for b.Loop() {
					x, _ := rawTransform(profile, format, f.flags, false)
					freeTransform(x)
				}
			})
			b.Run(rel[7:]+"/"+f.name+"/pixels", func(b *testing.B) {
				x, _ := rawTransform(profile, format, f.flags, false)
				defer freeTransform(x)
				t0 := time.Now()
				for b.Loop() {
					doTransform(x, pix, out, n)
				}
				b.ReportMetric(float64(time.Since(t0).Nanoseconds())/float64(b.N*n), "ns/px")
			})
		}
	}
}

// BenchmarkICCSRGBTagged converts a 300 px thumbnail of a JPEG tagged with
// lcms' sRGB profile: libvips transforms it, the lcms path only checks the
// profile (first use) or finds its verdict in the cache.
func BenchmarkICCSRGBTagged(b *testing.B) {
	src := imgtest.Read(b, "photos/jpeg-baseline-small.jpg")
	var b2 bytes.Buffer
	b2.Write(src[:2])
	p := lcmsSRGBProfile()
	b2.Write([]byte{0xFF, 0xE2, byte((len(p) + 16) >> 8), byte(len(p) + 16)})
	b2.WriteString("ICC_PROFILE\x00\x01\x01")
	b2.Write(p)
	b2.Write(src[2:])
	tagged := b2.Bytes()
	cached := newICCCache(16, 16<<20)
	defer cached.close()
	for _, c := range []struct {
		name string
		conv func(im *Image) error
	}{
		{"libvips", (*Image).ToSRGB},
		{"lcms-first-use", func(im *Image) error {
			c := newICCCache(16, 16<<20)
			defer c.close()
			return im.toSRGBWith(c)
		}},
		{"lcms-cached", func(im *Image) error { return im.toSRGBWith(cached) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			onThread(func() {
				for b.Loop() {
					im, ok, err := JPEGThumbnail(tagged, JPEGThumbnailOptions{Width: 300, Height: 200,
						Orientation: 1, Kernel: KernelLanczos3})
					if err != nil || !ok {
						b.Fatalf("JPEGThumbnail: %v %v", ok, err)
					}
					if err := c.conv(im); err != nil {
						b.Fatal(err)
					}
					if _, err := im.Pixels(); err != nil {
						b.Fatal(err)
					}
					im.Close()
				}
			})
		})
	}
}
