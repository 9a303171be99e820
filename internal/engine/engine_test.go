package engine

import (
	"bytes"
	"context"
	"flag"
	"image/gif"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/imgtest"
	"github.com/imgd/imgd/internal/vips"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/golden")

func run(t *testing.T, rel, pipeline string) *Result {
	t.Helper()
	res, err := testEngine.Run(t.Context(), imgtest.Read(t, rel), imgd.MustParsePipeline(pipeline))
	if err != nil {
		t.Fatalf("Run(%s, %s) error: %v", rel, pipeline, err)
	}
	return res
}

func decode(t *testing.T, b []byte) *Pixels {
	t.Helper()
	px, err := testEngine.Decode(b)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return px
}

// goodFiles are every decodable test image.
func goodFiles(t *testing.T) []string {
	var files []string
	for _, d := range []string{"photos", "png", "formats", "orientation", "documents"} {
		files = append(files, imgtest.Files(t, d)...)
	}
	return files
}

// TestGoodFilesEveryOutput runs every good file through a thumbnail and a
// conversion to every output format: dimensions follow the header, the
// output sniffs as the format asked for and decodes again.
func TestGoodFilesEveryOutput(t *testing.T) {
	t.Parallel()
	for _, rel := range goodFiles(t) {
		t.Run(rel, func(t *testing.T) {
			t.Parallel()
			src := imgtest.Read(t, rel)
			info, err := testEngine.Probe(src)
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			wantW := min(info.Width, 120)
			wantH := max(1, int(math.Round(float64(info.Height)*float64(wantW)/float64(info.Width))))
			for _, f := range imgd.OutputFormats {
				p := `[{"op":"resize","width":120},{"op":"convert","format":"` + string(f) + `"}]`
				res, err := testEngine.Run(t.Context(), src, imgd.MustParsePipeline(p))
				if err != nil {
					t.Fatalf("Run(%s) error: %v", p, err)
				}
				if res.Width != wantW || res.Height != wantH {
					t.Errorf("Run(%s) = %dx%d, want %dx%d", p, res.Width, res.Height, wantW, wantH)
				}
				if got, err := Sniff(res.Data); err != nil || got != f {
					t.Errorf("Run(%s) wrote %v (%v), want %s", p, got, err, f)
				}
				out, err := testEngine.Probe(res.Data)
				if err != nil {
					t.Fatalf("Probe(output of %s): %v", p, err)
				}
				if out.Width != wantW || out.Height != wantH {
					t.Errorf("output of %s probes as %dx%d, want %dx%d", p, out.Width, out.Height, wantW, wantH)
				}
				wantFrames := 1
				if f.SupportsAnimation() {
					wantFrames = info.Frames
				}
				// libwebp's animation encoder merges identical consecutive
				// frames (adding their delays), so WebP may hold fewer.
				if res.Frames != wantFrames || out.Frames > wantFrames ||
					(f != imgd.FormatWebP && out.Frames != wantFrames) || (wantFrames > 1 && out.Frames < 2) {
					t.Errorf("output of %s has %d frames (result says %d), want %d", p, out.Frames, res.Frames, wantFrames)
				}
			}
		})
	}
}

// TestOrientation: every EXIF orientation comes out identical to the
// upright reference, both decoded at full size and as a thumbnail.
func TestOrientation(t *testing.T) {
	t.Parallel()
	ref := decode(t, imgtest.Read(t, "orientation/orientation-1.jpg"))
	refThumb := decode(t, run(t, "orientation/orientation-1.jpg", `[{"op":"resize","width":200},{"op":"convert","format":"png"}]`).Data)
	for o := 1; o <= 8; o++ {
		rel := filepath.Join("orientation", "orientation-"+string(rune('0'+o))+".jpg")
		t.Run(rel, func(t *testing.T) {
			t.Parallel()
			src := imgtest.Read(t, rel)
			info, err := testEngine.Probe(src)
			if err != nil || info.Orientation != o || info.Width != ref.Width || info.Height != ref.Height {
				t.Fatalf("Probe = %+v, %v; want orientation %d, %dx%d upright", info, err, o, ref.Width, ref.Height)
			}
			got := decode(t, src)
			if got.Width != ref.Width || got.Height != ref.Height {
				t.Fatalf("Decode = %dx%d, want %dx%d", got.Width, got.Height, ref.Width, ref.Height)
			}
			if d := imgtest.MaxAbsDiff(got.Data, ref.Data); d > 4 {
				t.Errorf("Decode differs from the upright image by up to %d levels, want <= 4", d)
			}
			// Shrink-on-load path: the thumbnailer rotates too.
			thumb := decode(t, run(t, rel, `[{"op":"resize","width":200},{"op":"convert","format":"png"}]`).Data)
			if thumb.Width != refThumb.Width || thumb.Height != refThumb.Height {
				t.Fatalf("thumbnail = %dx%d, want %dx%d", thumb.Width, thumb.Height, refThumb.Width, refThumb.Height)
			}
			if s := imgtest.SSIM(thumb.Data, refThumb.Data, thumb.Width, thumb.Height, thumb.Bands); s < 0.99 {
				t.Errorf("thumbnail SSIM vs upright = %.4f, want >= 0.99", s)
			}
		})
	}
}

// TestColourManagement compares thumbnails of CMYK and ICC-tagged photos
// with references made by the libvips CLI (testdata/golden/README.md),
// and checks that ignoring the profile would have been caught.
func TestColourManagement(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, ref string }{
		{"photos/jpeg-cmyk-icc.jpg", "golden/ref-cmyk-icc.png"},
		{"photos/jpeg-cmyk.jpg", "golden/ref-cmyk.png"},
		{"photos/jpeg-icc-swapped-rg.jpg", "golden/ref-icc-swapped-rg.png"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			t.Parallel()
			got := decode(t, run(t, c.in, `[{"op":"resize","width":300},{"op":"convert","format":"png"}]`).Data)
			ref := decode(t, imgtest.Read(t, c.ref))
			if got.Width != ref.Width || got.Height != ref.Height || got.Bands != 3 {
				t.Fatalf("output %dx%dx%d, reference %dx%dx3", got.Width, got.Height, got.Bands, ref.Width, ref.Height)
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
	// Without colour management the swapped profile shows: make sure the
	// comparison above can tell.
	raw, err := vipsRawThumb(imgtest.Read(t, "photos/jpeg-icc-swapped-rg.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	ref := decode(t, imgtest.Read(t, "golden/ref-icc-swapped-rg.png"))
	if s := imgtest.SSIM(raw.Data, ref.Data, ref.Width, ref.Height, 3); imgtest.MeanAbsDiff(raw.Data, ref.Data) < 10 {
		t.Errorf("unmanaged decode is close to the reference (mean diff %.1f, SSIM %.3f): the test cannot detect an ignored profile",
			imgtest.MeanAbsDiff(raw.Data, ref.Data), s)
	}
}

// vipsRawThumb decodes ignoring the colour profile (a bug to be caught).
func vipsRawThumb(src []byte) (*Pixels, error) {
	return withThread(formatsOf(src), func() (*Pixels, error) {
		defer vips.Pin(src)()
		im, err := vips.Thumbnail(src, vips.ThumbnailOptions{Width: 300, Height: 300, Size: vips.SizeDown})
		if err != nil {
			return nil, err
		}
		defer im.Close()
		pix, err := im.Pixels()
		if err != nil {
			return nil, err
		}
		return &Pixels{Data: pix, Width: im.Width(), Height: im.Height(), Bands: im.Bands()}, nil
	})
}

func channelMeans(p *Pixels) [4]float64 {
	var sum [4]float64
	for i, v := range p.Data {
		sum[i%p.Bands] += float64(v)
	}
	n := float64(p.Width * p.Height)
	for i := range sum {
		sum[i] /= n
	}
	return sum
}

// TestAlphaKept: an RGBA PNG keeps its alpha in WebP (lossless exactly,
// lossy closely) and AVIF.
func TestAlphaKept(t *testing.T) {
	t.Parallel()
	src := decode(t, imgtest.Read(t, "png/png-rgba-icon.png"))
	if src.Bands != 4 {
		t.Fatalf("png-rgba-icon decodes with %d bands, want 4", src.Bands)
	}
	for _, c := range []struct {
		pipeline string
		minPSNR  float64
	}{
		{`[{"op":"convert","format":"webp","lossless":true}]`, math.Inf(1)},
		{`[{"op":"convert","format":"webp","quality":80}]`, 30},
		{`[{"op":"convert","format":"avif","quality":60}]`, 30},
		{`[{"op":"convert","format":"png"}]`, math.Inf(1)},
	} {
		t.Run(c.pipeline, func(t *testing.T) {
			t.Parallel()
			got := decode(t, run(t, "png/png-rgba-icon.png", c.pipeline).Data)
			if got.Bands != 4 {
				t.Fatalf("output has %d bands, want 4 (alpha)", got.Bands)
			}
			if p := imgtest.PSNR(alpha(got), alpha(src)); p < c.minPSNR {
				t.Errorf("alpha PSNR = %.1f dB, want >= %.1f", p, c.minPSNR)
			}
		})
	}
}

func alpha(p *Pixels) []byte {
	a := make([]byte, 0, p.Width*p.Height)
	for i := p.Bands - 1; i < len(p.Data); i += p.Bands {
		a = append(a, p.Data[i])
	}
	return a
}

// TestAnimationKept: resizing an animated GIF or WebP keeps every frame
// and its delay.
func TestAnimationKept(t *testing.T) {
	t.Parallel()
	in, err := gif.DecodeAll(bytes.NewReader(imgtest.Read(t, "formats/gif-animated.gif")))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ rel, pipeline string }{
		{"formats/gif-animated.gif", `[{"op":"resize","width":200}]`},
		{"formats/gif-animated.gif", `[{"op":"flip","direction":"vertical"},{"op":"resize","width":150},{"op":"convert","format":"gif"}]`},
		{"formats/webp-animated.webp", `[{"op":"resize","width":200,"height":200,"fit":"cover"},{"op":"convert","format":"gif"}]`},
		{"formats/gif-animated.gif", `[{"op":"dither","method":"bayer4","palette":"cga"},{"op":"convert","format":"gif"}]`},
	} {
		t.Run(c.rel+c.pipeline, func(t *testing.T) {
			t.Parallel()
			res := run(t, c.rel, c.pipeline)
			out, err := gif.DecodeAll(bytes.NewReader(res.Data))
			if err != nil {
				t.Fatalf("output is not a GIF: %v", err)
			}
			if len(out.Image) != len(in.Image) || res.Frames != len(in.Image) {
				t.Fatalf("output has %d frames (result says %d), want %d", len(out.Image), res.Frames, len(in.Image))
			}
			for i := range in.Delay {
				if out.Delay[i] != in.Delay[i] {
					t.Errorf("frame %d delay = %d, want %d", i, out.Delay[i], in.Delay[i])
				}
			}
		})
	}
	// WebP output stays animated too (identical frames may be merged).
	res := run(t, "formats/gif-animated.gif", `[{"op":"resize","width":100},{"op":"convert","format":"webp"}]`)
	info, err := testEngine.Probe(res.Data)
	if err != nil || info.Frames < len(in.Image)*3/4 || info.Frames > len(in.Image) {
		t.Errorf("WebP output probes as %+v, %v; want about %d frames", info, err, len(in.Image))
	}
}

// TestBadFiles: every hostile file gets its documented code quickly and
// without allocating what its header declares.
func TestBadFiles(t *testing.T) {
	want := imgtest.BadExpectations(t)
	for rel, code := range want {
		t.Run(rel, func(t *testing.T) {
			src := imgtest.Read(t, rel)
			for _, p := range []string{
				`[{"op":"resize","width":300}]`,
				`[{"op":"convert","format":"png"}]`,
				`[{"op":"rotate","angle":90},{"op":"convert","format":"webp"}]`,
			} {
				start := time.Now()
				res, err := testEngine.Run(t.Context(), src, imgd.MustParsePipeline(p))
				elapsed := time.Since(start)
				// A safety net against runaway decoding, far above the
				// milliseconds these take: not a performance assertion.
				if elapsed > 20*time.Second {
					t.Errorf("Run(%s) took %v", p, elapsed)
				}
				if code == "ok" {
					if err != nil {
						t.Errorf("Run(%s) error: %v, want success", p, err)
					} else if bytes.Contains(res.Data, []byte("PK\x03\x04")) || bytes.Contains(res.Data, []byte("<script")) {
						t.Errorf("Run(%s) output carries the input's trailing payload", p)
					}
					continue
				}
				if got := imgd.CodeOf(err); string(got) != code {
					t.Errorf("Run(%s) = %v (%v), want code %s", p, got, err, code)
				}
				if _, err := testEngine.Probe(src); code == string(imgd.CodeOverLimit) && imgd.CodeOf(err) != imgd.CodeOverLimit {
					t.Errorf("Probe error = %v, want over_limit from the header", err)
				}
			}
		})
	}
	// Bombs declare gigabytes; libvips must never have held more than a
	// small fraction of that.
	if hw := vips.MemoryHighwater(); hw > 1<<30 {
		t.Errorf("libvips memory high-water mark %d bytes after the hostile files", hw)
	}
}

// TestLimits: each limit is enforced with over_limit or too_large.
func TestLimits(t *testing.T) {
	t.Parallel()
	small, err := New(Options{Limits: Limits{MaxInputBytes: 1 << 20, MaxPixels: 500_000, MaxFrames: 10,
		MaxOutputDimension: 1000, Strictness: "warning"}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, rel, pipeline string
		want                imgd.Code
	}{
		{"input bytes", "photos/jpeg-large-baseline.jpg", `[{"op":"resize","width":100}]`, imgd.CodeTooLarge},
		{"input pixels", "formats/webp-native.webp", `[{"op":"resize","width":100}]`, imgd.CodeOverLimit},
		{"frames", "formats/gif-animated.gif", `[{"op":"resize","width":100}]`, imgd.CodeOverLimit},
		{"output side", "photos/jpeg-baseline-small.jpg", `[{"op":"resize","width":1200,"enlarge":true}]`, imgd.CodeOverLimit},
		{"output pixels", "photos/jpeg-baseline-small.jpg", `[{"op":"resize","width":800,"height":800,"fit":"fill","enlarge":true}]`, imgd.CodeOverLimit},
		{"rotation grows", "photos/jpeg-baseline-small.jpg", `[{"op":"resize","width":990,"enlarge":true},{"op":"rotate","angle":45}]`, imgd.CodeOverLimit},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := small.Run(t.Context(), imgtest.Read(t, c.rel), imgd.MustParsePipeline(c.pipeline))
			if got := imgd.CodeOf(err); got != c.want {
				t.Errorf("Run(%s, %s) = %v (%v), want %s", c.rel, c.pipeline, got, err, c.want)
			}
		})
	}
	if _, err := New(Options{Limits: Limits{MaxPixels: -1}}); err == nil {
		t.Error("New with MaxPixels -1 succeeded, want an error")
	}
}

// TestOperations checks the geometry and pixels of each operation.
func TestOperations(t *testing.T) {
	t.Parallel()
	const src = "photos/jpeg-baseline-small.jpg" // 640x427
	cases := []struct {
		pipeline string
		w, h     int
	}{
		{`[{"op":"resize","width":300}]`, 300, 200},
		{`[{"op":"resize","height":100}]`, 150, 100},
		{`[{"op":"resize","width":200,"height":200}]`, 200, 133},
		{`[{"op":"resize","width":200,"height":200,"fit":"cover"}]`, 200, 200},
		{`[{"op":"resize","width":200,"height":200,"fit":"cover","gravity":"attention"}]`, 200, 200},
		{`[{"op":"resize","width":200,"height":200,"fit":"cover","gravity":"north-west"}]`, 200, 200},
		{`[{"op":"resize","width":200,"height":200,"fit":"contain"}]`, 200, 200},
		{`[{"op":"resize","width":200,"height":200,"fit":"fill"}]`, 200, 200},
		{`[{"op":"resize","width":200,"height":200,"fit":"outside"}]`, 300, 200},
		{`[{"op":"resize","width":1000}]`, 640, 427},
		{`[{"op":"resize","width":1000,"enlarge":true}]`, 1000, 667},
		{`[{"op":"resize","width":2000,"height":100,"fit":"cover"}]`, 640, 100},
		{`[{"op":"crop","x":10,"y":20,"width":100,"height":50}]`, 100, 50},
		{`[{"op":"crop","x":600,"y":400,"width":100,"height":50}]`, 40, 27},
		{`[{"op":"rotate","angle":90}]`, 427, 640},
		{`[{"op":"rotate","angle":-90}]`, 427, 640},
		{`[{"op":"rotate","angle":180}]`, 640, 427},
		{`[{"op":"flip","direction":"both"}]`, 640, 427},
		{`[{"op":"grayscale"},{"op":"resize","width":64}]`, 64, 43},
		{`[{"op":"auto_orient"},{"op":"resize","width":64},{"op":"rotate","angle":90}]`, 43, 64},
	}
	for _, c := range cases {
		t.Run(c.pipeline, func(t *testing.T) {
			t.Parallel()
			res := run(t, src, c.pipeline)
			if res.Width != c.w || res.Height != c.h {
				t.Errorf("Run(%s) = %dx%d, want %dx%d", c.pipeline, res.Width, res.Height, c.w, c.h)
			}
		})
	}
	t.Run("crop outside", func(t *testing.T) {
		_, err := testEngine.Run(t.Context(), imgtest.Read(t, src), imgd.MustParsePipeline(`[{"op":"crop","x":700,"y":0,"width":10,"height":10}]`))
		if e, ok := err.(*imgd.Error); !ok || e.Code != imgd.CodeInvalidArgument || e.Field != "steps[0]" {
			t.Errorf("crop outside = %v, want invalid_argument at steps[0]", err)
		}
	})
}

// TestPixelOperations checks operations by their effect on pixels.
func TestPixelOperations(t *testing.T) {
	t.Parallel()
	const src = "photos/jpeg-baseline-small.jpg"
	png := func(p string) *Pixels {
		return decode(t, run(t, src, strings.TrimSuffix(p, "]")+`,{"op":"convert","format":"png"}]`).Data)
	}
	orig := png(`[{"op":"auto_orient"}]`)
	for _, c := range []struct{ a, b string }{
		{`[{"op":"flip"},{"op":"flip"}]`, `[{"op":"auto_orient"}]`},
		{`[{"op":"rotate","angle":90},{"op":"rotate","angle":270}]`, `[{"op":"auto_orient"}]`},
		{`[{"op":"rotate","angle":180}]`, `[{"op":"flip","direction":"both"}]`},
	} {
		a, b := png(c.a), png(c.b)
		if !bytes.Equal(a.Data, b.Data) {
			t.Errorf("%s and %s differ", c.a, c.b)
		}
	}
	// Rotating 90 clockwise puts the original's bottom-left pixel at the top-left.
	r := png(`[{"op":"rotate","angle":90}]`)
	w, h := orig.Width, orig.Height
	if got, want := r.Data[0:3], orig.Data[((h-1)*w)*3:((h-1)*w)*3+3]; !bytes.Equal(got, want) {
		t.Errorf("rotate 90: top-left = %v, want original bottom-left %v", got, want)
	}
	// Arbitrary rotation is clockwise too: a 10° turn moves the top-right
	// corner's content down, leaving background at the new top-right area.
	if bg := png(`[{"op":"rotate","angle":10,"background":"#ff0000"}]`); bg.Width <= orig.Width {
		t.Errorf("rotate 10 width %d, want > %d", bg.Width, orig.Width)
	} else if px := bg.Data[0:3]; px[0] < 200 || px[1] > 60 {
		t.Errorf("rotate 10: corner pixel %v, want the red background", px)
	}
	g := decode(t, run(t, src, `[{"op":"grayscale"},{"op":"convert","format":"png"}]`).Data)
	for i := 0; i < len(g.Data); i += 3 {
		if g.Data[i] != g.Data[i+1] || g.Data[i+1] != g.Data[i+2] {
			t.Fatalf("grayscale pixel %d = %v, not grey", i/3, g.Data[i:i+3])
		}
	}
	// contain pads with white by default; transparent when asked.
	c := decode(t, run(t, src, `[{"op":"resize","width":200,"height":200,"fit":"contain"},{"op":"convert","format":"png"}]`).Data)
	if !bytes.Equal(c.Data[0:3], []byte{255, 255, 255}) {
		t.Errorf("contain padding = %v, want white", c.Data[0:3])
	}
	ct := decode(t, run(t, src, `[{"op":"resize","width":200,"height":200,"fit":"contain","background":"transparent"},{"op":"convert","format":"png"}]`).Data)
	if ct.Bands != 4 || ct.Data[3] != 0 {
		t.Errorf("contain with transparent background: bands %d, first alpha %d; want 4, 0", ct.Bands, ct.Data[3])
	}
}

// TestConvertOptions checks encoder settings by their marks in the output.
func TestConvertOptions(t *testing.T) {
	t.Parallel()
	const src = "orientation/orientation-6.jpg" // has EXIF
	prog := run(t, src, `[{"op":"convert","format":"jpeg","progressive":true}]`).Data
	if !bytes.Contains(prog, []byte{0xFF, 0xC2}) {
		t.Error("progressive JPEG has no SOF2 marker")
	}
	base := run(t, src, `[{"op":"convert","format":"jpeg"}]`).Data
	if bytes.Contains(base, []byte("Exif\x00\x00")) {
		t.Error("default convert kept EXIF, want metadata stripped")
	}
	kept := run(t, src, `[{"op":"convert","format":"jpeg","strip":false}]`).Data
	if !bytes.Contains(kept, []byte("Exif\x00\x00")) {
		t.Error("strip:false dropped EXIF")
	}
	if info, err := testEngine.Probe(kept); err != nil || info.Orientation != 1 || info.Width != 800 {
		t.Errorf("strip:false output probes as %+v, %v; want orientation 1 and upright 800 wide", info, err)
	}
	lo := run(t, "photos/jpeg-large-progressive.jpg", `[{"op":"resize","width":800},{"op":"convert","format":"jpeg","quality":30}]`).Data
	hi := run(t, "photos/jpeg-large-progressive.jpg", `[{"op":"resize","width":800},{"op":"convert","format":"jpeg","quality":95}]`).Data
	if len(lo) >= len(hi) {
		t.Errorf("quality 30 gave %d bytes, quality 95 %d: want fewer", len(lo), len(hi))
	}
	pal := run(t, "png/png-palette-photo.png", `[{"op":"convert","format":"png","quality":60}]`).Data
	full := run(t, "png/png-palette-photo.png", `[{"op":"convert","format":"png"}]`).Data
	if !bytes.Contains(pal[:64], []byte("IHDR")) || pal[25] != 3 {
		t.Errorf("png quality 60: colour type %d, want 3 (palette)", pal[25])
	}
	if full[25] == 3 {
		t.Error("lossless png was written as a palette image")
	}
}

// TestDitherThroughEngine: the output holds only palette colours.
func TestDitherThroughEngine(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		pipeline string
		palette  []imgd.RGBA
	}{
		{`[{"op":"resize","width":200},{"op":"dither","palette":"ega"},{"op":"convert","format":"png"}]`, mustPalette("ega")},
		{`[{"op":"resize","width":200},{"op":"dither","method":"bayer8","palette":["#000","#fff","#f00"]},{"op":"convert","format":"png"}]`,
			[]imgd.RGBA{{R: 0, G: 0, B: 0, A: 255}, {R: 255, G: 255, B: 255, A: 255}, {R: 255, G: 0, B: 0, A: 255}}},
		{`[{"op":"resize","width":200},{"op":"dither","levels":2},{"op":"convert","format":"png"}]`, levelsPalette(2)},
	} {
		t.Run(c.pipeline, func(t *testing.T) {
			t.Parallel()
			px := decode(t, run(t, "photos/jpeg-progressive-small.jpg", c.pipeline).Data)
			in := map[[3]byte]bool{}
			for _, p := range c.palette {
				in[[3]byte{p.R, p.G, p.B}] = true
			}
			for i := 0; i < len(px.Data); i += px.Bands {
				if k := [3]byte(px.Data[i : i+3]); !in[k] {
					t.Fatalf("pixel %d = %v, not in the palette", i/px.Bands, k)
				}
			}
		})
	}
}

func mustPalette(name string) []imgd.RGBA {
	p, ok := imgd.NamedPalette(name)
	if !ok {
		panic(name)
	}
	return p
}

func levelsPalette(n int) []imgd.RGBA {
	var p []imgd.RGBA
	for r := range n {
		for g := range n {
			for b := range n {
				s := func(v int) uint8 { return uint8(v * 255 / (n - 1)) }
				p = append(p, imgd.RGBA{R: s(r), G: s(g), B: s(b), A: 255})
			}
		}
	}
	return p
}

// TestConcurrentRunsUnderGC guards the input-buffer pinning: libvips reads
// inputs lazily, so concurrent runs with the collector busy must still
// produce the same bytes as a quiet serial run.
func TestConcurrentRunsUnderGC(t *testing.T) {
	t.Parallel()
	inputs := []string{"photos/jpeg-large-baseline.jpg", "formats/gif-animated.gif", "photos/jpeg-cmyk.jpg", "png/png-16bit-photo.png"}
	const p = `[{"op":"resize","width":160},{"op":"convert","format":"png"}]`
	want := map[string][]byte{}
	for _, in := range inputs {
		want[in] = run(t, in, p).Data
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			runtime.GC()
		}
	}()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for k := range 3 {
				in := inputs[(i+k)%len(inputs)]
				src := append([]byte(nil), imgtest.Read(t, in)...) // a fresh buffer the GC may free
				res, err := testEngine.Run(t.Context(), src, imgd.MustParsePipeline(p))
				if err != nil {
					t.Errorf("Run(%s): %v", in, err)
					continue
				}
				if !bytes.Equal(res.Data, want[in]) {
					t.Errorf("Run(%s) under GC differs from the serial output", in)
				}
			}
		})
	}
	wg.Wait()
}

func TestCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := testEngine.Run(ctx, imgtest.Read(t, "photos/jpeg-baseline-small.jpg"), imgd.MustParsePipeline(`[{"op":"resize","width":10}]`))
	if imgd.CodeOf(err) != imgd.CodeCanceled {
		t.Errorf("Run with a canceled context = %v, want canceled", err)
	}
}

// TestGolden compares a few pipelines with reviewed outputs in
// testdata/golden (-update rewrites them).
func TestGolden(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, in, pipeline string }{
		{"thumb-cover-attention", "photos/jpeg-progressive-native.jpg", `[{"op":"resize","width":160,"height":160,"fit":"cover","gravity":"attention"},{"op":"convert","format":"png"}]`},
		{"rotate-15-grey", "photos/jpeg-gray.jpg", `[{"op":"resize","width":160},{"op":"rotate","angle":15,"background":"#336699"},{"op":"convert","format":"png"}]`},
		{"dither-fs-bw", "documents/doc-real-scan.png", `[{"op":"dither","method":"floyd-steinberg"},{"op":"convert","format":"png"}]`},
		{"dither-atkinson-pico8", "photos/jpeg-icc.jpg", `[{"op":"resize","width":200},{"op":"dither","method":"atkinson","palette":"pico8","serpentine":true},{"op":"convert","format":"png"}]`},
		{"contain-16bit", "png/png-16bit.png", `[{"op":"resize","width":160,"height":120,"fit":"contain","background":"#000"},{"op":"convert","format":"png"}]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, c.in, c.pipeline)
			path := imgtest.Root(t) + "/testdata/golden/" + c.name + ".png"
			if *update {
				if err := os.WriteFile(path, res.Data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("missing golden %s (run with -update and review it): %v", path, err)
			}
			got, want := decode(t, res.Data), decode(t, golden)
			if got.Width != want.Width || got.Height != want.Height || got.Bands != want.Bands {
				t.Fatalf("output %dx%dx%d, golden %dx%dx%d", got.Width, got.Height, got.Bands, want.Width, want.Height, want.Bands)
			}
			if p := imgtest.PSNR(got.Data, want.Data); p < 40 {
				t.Errorf("PSNR vs golden = %.1f dB, want >= 40", p)
				_ = os.WriteFile(filepath.Join(t.ArtifactDir(), c.name+"-got.png"), res.Data, 0o644)
			}
		})
	}
}
