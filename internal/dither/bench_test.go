package dither

import (
	"image"
	"image/color"
	"syscall"
	"testing"
	"time"

	mwdither "github.com/makeworld-the-better-one/dither/v2"

	"github.com/imgd/imgd"
)

// The benchmarks dither one 2000×2000 photoImage, restoring the input
// (outside the timer) before each run since Apply works in place.
const benchSize = 2000

// BenchmarkApply: go test -run '^$' -bench Apply -benchtime 10x ./internal/dither
func BenchmarkApply(b *testing.B) {
	src := photoImage(benchSize, benchSize, 3, 1)
	cases := []struct {
		name string
		opt  Options
	}{
		{"floyd-steinberg/levels2", Options{Method: imgd.DitherFloydSteinberg, Levels: 2}},
		{"floyd-steinberg/levels2/serpentine-linear", Options{Method: imgd.DitherFloydSteinberg, Levels: 2, Serpentine: true, Linear: true}},
		{"floyd-steinberg/ega", Options{Method: imgd.DitherFloydSteinberg, Palette: mustPalette("ega")}},
		{"floyd-steinberg/ega/linear", Options{Method: imgd.DitherFloydSteinberg, Palette: mustPalette("ega"), Linear: true}},
		{"floyd-steinberg/websafe", Options{Method: imgd.DitherFloydSteinberg, Palette: mustPalette("websafe")}},
		{"jarvis-judice-ninke/levels2", Options{Method: imgd.DitherJJN, Levels: 2}},
		{"bayer8/levels2", Options{Method: imgd.DitherBayer8, Levels: 2}},
		{"bayer8/ega", Options{Method: imgd.DitherBayer8, Palette: mustPalette("ega")}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			pix := make([]byte, len(src))
			var cpu time.Duration
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				copy(pix, src)
				t0 := cpuTime(b)
				b.StartTimer()
				if err := Apply(pix, benchSize, benchSize, 3, c.opt); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				cpu += cpuTime(b) - t0
				b.StartTimer()
			}
			reportMPix(b, cpu)
		})
	}
}

// BenchmarkMakeworld runs github.com/makeworld-the-better-one/dither/v2 on
// the same image with Floyd–Steinberg and the EGA palette, for comparison
// with BenchmarkApply/floyd-steinberg/ega/linear (it always works in linear
// light, with luminance-weighted distances). It needs an image.Image, so it
// gets the image as *image.RGBA (4 bands, opaque), which it dithers in place.
func BenchmarkMakeworld(b *testing.B) {
	src := photoImage(benchSize, benchSize, 4, 1)
	for i := 3; i < len(src); i += 4 {
		src[i] = 255
	}
	var pal []color.Color
	for _, c := range mustPalette("ega") {
		pal = append(pal, color.RGBA{c.R, c.G, c.B, 255})
	}
	d := mwdither.NewDitherer(pal)
	d.Matrix = mwdither.FloydSteinberg
	img := image.NewRGBA(image.Rect(0, 0, benchSize, benchSize))
	var cpu time.Duration
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		copy(img.Pix, src)
		t0 := cpuTime(b)
		b.StartTimer()
		d.Dither(img)
		b.StopTimer()
		cpu += cpuTime(b) - t0
		b.StartTimer()
	}
	reportMPix(b, cpu)
}

// reportMPix reports megapixels per second of wall time and, because the
// benchmark machine is shared, per second of this process's CPU time
// (which includes the garbage collector's).
func reportMPix(b *testing.B, cpu time.Duration) {
	mpix := float64(b.N) * benchSize * benchSize / 1e6
	b.ReportMetric(mpix/b.Elapsed().Seconds(), "MPix/s")
	b.ReportMetric(mpix/cpu.Seconds(), "MPix/cpu-s")
}

// cpuTime returns the user and system CPU time used by the process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
