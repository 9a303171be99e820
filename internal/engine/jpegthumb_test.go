package engine

import (
	"bytes"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/imgtest"
	"github.com/imgd/imgd/internal/vips"
)

// handThumb runs the hand-written JPEG path the way thumbnail does, up to
// 8-bit pixels.
func handThumb(src []byte, info imgd.ImageInfo, w, h int, o vips.JPEGThumbnailOptions) (*Pixels, error) {
	return withThread(nil, func() (*Pixels, error) {
		o.Width, o.Height, o.Orientation = w, h, info.Orientation
		im, ok, err := vips.JPEGThumbnail(src, o)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errNotApplicable
		}
		defer im.Close()
		return thumbPixels(im)
	})
}

var errNotApplicable = &imgd.Error{Code: imgd.CodeInternal, Message: "JPEGThumbnail did not apply"}

// libvipsThumb is the libvips thumbnailer at the same size, for reference.
func libvipsThumb(src []byte, w, h int) (*Pixels, error) {
	return withThread(nil, func() (*Pixels, error) {
		defer vips.Pin(src)()
		im, err := vips.Thumbnail(src, vips.ThumbnailOptions{Width: w, Height: h, Size: vips.SizeForce, Format: vips.JPEG})
		if err != nil {
			return nil, err
		}
		defer im.Close()
		return thumbPixels(im)
	})
}

func thumbPixels(im *vips.Image) (*Pixels, error) {
	if err := im.ToSRGB(); err != nil {
		return nil, err
	}
	if err := im.ToRGB(); err != nil {
		return nil, err
	}
	pix, err := im.Pixels()
	if err != nil {
		return nil, err
	}
	return &Pixels{Data: pix, Width: im.Width(), Height: im.Height(), Bands: im.Bands()}, nil
}

func jpegFiles(t *testing.T) []string {
	var files []string
	for _, d := range []string{"photos", "orientation", "documents"} {
		for _, f := range imgtest.Files(t, d) {
			if strings.HasSuffix(f, ".jpg") && !strings.Contains(f, "cmyk") {
				files = append(files, f)
			}
		}
	}
	return files
}

// TestJPEGThumbnailMatchesLibvips: the hand-written path gives the exact
// size asked for, upright, and looks like libvips' thumbnailer. They differ
// where the hand path decodes a progressive file at 1/8 and libvips at 1/4
// (a softer block average: SSIM 0.975 for a 1024 px photo at 120 px), and
// by sub-pixel shifts: the hand path scales the true extent of a partial
// last block and libvips the rounded-up pixel, and libvips' reducer places
// samples up to a quarter pixel apart for nearby scales. Text pages, all
// edges, show that most (SSIM down to 0.955).
func TestJPEGThumbnailMatchesLibvips(t *testing.T) {
	t.Parallel()
	for _, rel := range jpegFiles(t) {
		t.Run(rel, func(t *testing.T) {
			t.Parallel()
			src := imgtest.Read(t, rel)
			info, err := testEngine.Probe(src)
			if err != nil {
				t.Fatal(err)
			}
			for _, width := range []int{300, 120} {
				g := resizeGeometry(info.Width, info.Height, &imgd.Resize{Width: width})
				got, err := handThumb(src, info, g.scaledW, g.scaledH, vips.JPEGThumbnailOptions{Kernel: jpegThumbKernel})
				if err != nil {
					t.Fatalf("JPEGThumbnail(%dx%d): %v", g.scaledW, g.scaledH, err)
				}
				if got.Width != g.scaledW || got.Height != g.scaledH {
					t.Fatalf("JPEGThumbnail(%dx%d) = %dx%d", g.scaledW, g.scaledH, got.Width, got.Height)
				}
				ref, err := libvipsThumb(src, g.scaledW, g.scaledH)
				if err != nil {
					t.Fatal(err)
				}
				if ref.Width != got.Width || ref.Height != got.Height || ref.Bands != got.Bands {
					// libvips 8.14 can miss the width by one (640x427 at 200).
					t.Logf("libvips thumbnail is %dx%dx%d, want %dx%dx%d: not compared",
						ref.Width, ref.Height, ref.Bands, got.Width, got.Height, got.Bands)
					continue
				}
				want := 0.97
				if strings.HasPrefix(rel, "documents/") {
					want = 0.95
				}
				if s := imgtest.SSIM(got.Data, ref.Data, got.Width, got.Height, got.Bands); s < want {
					t.Errorf("width %d: SSIM vs libvips thumbnail = %.4f, want >= %.2f", width, s, want)
				}
			}
		})
	}
}

// TestJPEGThumbnailCMYK compares CMYK thumbnails (inverted Adobe CMYK, with
// and without a profile) with the references made by the libvips CLI, as
// TestColourManagement does for the engine.
func TestJPEGThumbnailCMYK(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, ref string }{
		{"photos/jpeg-cmyk-icc.jpg", "golden/ref-cmyk-icc.png"},
		{"photos/jpeg-cmyk.jpg", "golden/ref-cmyk.png"},
		{"photos/jpeg-icc-swapped-rg.jpg", "golden/ref-icc-swapped-rg.png"},
	} {
		t.Run(c.in, func(t *testing.T) {
			t.Parallel()
			src := imgtest.Read(t, c.in)
			info, err := testEngine.Probe(src)
			if err != nil {
				t.Fatal(err)
			}
			ref := decode(t, imgtest.Read(t, c.ref))
			got, err := handThumb(src, info, ref.Width, ref.Height, vips.JPEGThumbnailOptions{Kernel: jpegThumbKernel})
			if err != nil {
				t.Fatal(err)
			}
			if got.Width != ref.Width || got.Height != ref.Height || got.Bands != 3 {
				t.Fatalf("got %dx%dx%d, reference %dx%dx3", got.Width, got.Height, got.Bands, ref.Width, ref.Height)
			}
			gm, rm := channelMeans(got), channelMeans(ref)
			for i := range 3 {
				if math.Abs(gm[i]-rm[i]) > 3 {
					t.Errorf("mean of channel %d = %.1f, reference %.1f (want within 3)", i, gm[i], rm[i])
				}
			}
			if s := imgtest.SSIM(got.Data, ref.Data, got.Width, got.Height, 3); s < 0.97 {
				t.Errorf("SSIM vs reference = %.4f, want >= 0.97", s)
			}
			if d := imgtest.MeanAbsDiff(got.Data, ref.Data); d > 4 {
				t.Errorf("mean absolute difference vs reference = %.2f, want <= 4", d)
			}
		})
	}
}

// TestJPEGThumbnailScanFilter: at 1/8, progressive files are decoded from
// their DC scans (and the AC scans of 2x2-IDCT chroma) only; the pixels
// must be those of a decode of every scan.
func TestJPEGThumbnailScanFilter(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		rel   string
		width int
	}{
		{"photos/jpeg-large-progressive.jpg", 300},  // 4:2:0, 1/8
		{"photos/jpeg-progressive-small.jpg", 60},   // 1/8
		{"photos/jpeg-progressive-native.jpg", 100}, // DC in three successive-approximation scans
	} {
		t.Run(c.rel, func(t *testing.T) {
			t.Parallel()
			src := imgtest.Read(t, c.rel)
			info, err := testEngine.Probe(src)
			if err != nil {
				t.Fatal(err)
			}
			g := resizeGeometry(info.Width, info.Height, &imgd.Resize{Width: c.width})
			o := vips.JPEGThumbnailOptions{Kernel: jpegThumbKernel, FailOn: vips.FailOnWarning}
			filtered, err := handThumb(src, info, g.scaledW, g.scaledH, o)
			if err != nil {
				t.Fatal(err)
			}
			o.FullScans = true
			full, err := handThumb(src, info, g.scaledW, g.scaledH, o)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(filtered.Data, full.Data) {
				t.Errorf("filtered decode differs from the full decode by up to %d levels (mean %.3f)",
					imgtest.MaxAbsDiff(filtered.Data, full.Data), imgtest.MeanAbsDiff(filtered.Data, full.Data))
			}
		})
	}
}

// TestJPEGThumbnailStrictness: damaged files fail or pass by the engine's
// strictness, as libvips' loader decides: warnings fail only at "warning",
// truncation from "truncated" up; on the filtered progressive path too.
func TestJPEGThumbnailStrictness(t *testing.T) {
	t.Parallel()
	cases := []struct {
		rel    string
		width  int
		failOn vips.FailOn
		fails  bool
	}{
		{"bad/corrupt-entropy.jpg", 300, vips.FailOnWarning, true},
		{"bad/corrupt-entropy.jpg", 300, vips.FailOnError, false},
		{"bad/corrupt-entropy.jpg", 60, vips.FailOnWarning, true},
		{"bad/truncated-baseline-50pct.jpg", 300, vips.FailOnTruncated, true},
		{"bad/truncated-baseline-50pct.jpg", 300, vips.FailOnNone, false},
		{"bad/truncated-progressive-50pct.jpg", 300, vips.FailOnTruncated, true},
		{"bad/truncated-progressive-50pct.jpg", 300, vips.FailOnNone, false},
		{"bad/truncated-progressive-50pct.jpg", 60, vips.FailOnTruncated, true}, // scan filter
		{"bad/truncated-progressive-50pct.jpg", 60, vips.FailOnNone, false},
		{"bad/real-jpeg-cve-2017-2862.jpg", 10, vips.FailOnNone, true},
	}
	for _, c := range cases {
		t.Run(filepath.Base(c.rel), func(t *testing.T) {
			t.Parallel()
			src := imgtest.Read(t, c.rel)
			info := imgd.ImageInfo{Width: 640, Height: 427, Orientation: 1}
			if in, err := testEngine.Probe(src); err == nil {
				info = in
			}
			g := resizeGeometry(info.Width, info.Height, &imgd.Resize{Width: c.width})
			_, err := handThumb(src, info, g.scaledW, g.scaledH, vips.JPEGThumbnailOptions{FailOn: c.failOn, Kernel: jpegThumbKernel})
			if (err != nil) != c.fails {
				t.Errorf("JPEGThumbnail(width %d, fail on %d) error = %v, want failure %v", c.width, c.failOn, err, c.fails)
			}
		})
	}
}

// TestJPEGThumbnailKeepsMetadata: with strip false the output keeps the
// EXIF the libvips path kept (the hand path reads none while decoding).
func TestJPEGThumbnailKeepsMetadata(t *testing.T) {
	t.Parallel()
	for _, strip := range []bool{true, false} {
		p := `[{"op":"resize","width":300},{"op":"convert","format":"jpeg","strip":` + map[bool]string{true: "true", false: "false"}[strip] + `}]`
		res := run(t, "photos/jpeg-large-camera-exif.jpg", p)
		if has := bytes.Contains(res.Data, []byte("Mi A3")); has == strip {
			t.Errorf("Run(%s): output has the camera model: %v, want %v", p, has, !strip)
		}
	}
}

// FuzzJPEGThumbnail: no input crashes the hand-written path or leaves it
// with an image of the wrong size. Inputs go straight to the decoder, not
// through Probe, so that damaged headers reach it too.
func FuzzJPEGThumbnail(f *testing.F) {
	for _, d := range []string{"photos", "bad"} {
		for _, rel := range imgtest.Files(f, d) {
			if b := imgtest.Read(f, rel); len(b) < 64<<10 && strings.HasSuffix(rel, ".jpg") {
				f.Add(b, uint8(60), uint8(40), uint8(1))
			}
		}
	}
	f.Fuzz(func(t *testing.T, src []byte, w, h, orientation uint8) {
		if len(src) == 0 || w == 0 || h == 0 {
			return
		}
		for _, full := range []bool{false, true} {
			_, err := withThread(nil, func() (bool, error) {
				im, ok, err := vips.JPEGThumbnail(src, vips.JPEGThumbnailOptions{Width: int(w), Height: int(h),
					Orientation: int(orientation % 9), Kernel: jpegThumbKernel, FullScans: full,
					MaxInputPixels: 4_000_000, FailOn: vips.FailOnNone})
				if err != nil || !ok {
					return ok, err
				}
				defer im.Close()
				if err := im.CopyMemory(); err != nil {
					return ok, err
				}
				wantW, wantH := int(w), int(h)
				if im.Width() != wantW || im.Height() != wantH {
					t.Fatalf("JPEGThumbnail(%dx%d) = %dx%d", wantW, wantH, im.Width(), im.Height())
				}
				return ok, nil
			})
			_ = err // damaged input may fail; it must not crash
		}
	})
}

// BenchmarkThumbnail runs bench's thumb300 pipeline on every photo, in
// process: compare before and after with benchstat (STYLE.md §10).
func BenchmarkThumbnail(b *testing.B) {
	p := imgd.MustParsePipeline(`[{"op":"resize","width":300},{"op":"convert","format":"jpeg","quality":80}]`)
	for _, rel := range imgtest.Files(b, "photos") {
		src := imgtest.Read(b, rel)
		b.Run(filepath.Base(rel), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := testEngine.Run(b.Context(), src, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
