package engine

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/imgtest"
)

// FuzzRun feeds arbitrary bytes through sniffing, the header limits and a
// small pipeline: no panic, only known codes (never internal), and any
// output within the pipeline's bounds. Seeds: the small good files and
// every hostile file.
func FuzzRun(f *testing.F) {
	root := imgtest.Root(f)
	for _, dir := range []string{"bad", "formats", "png", "photos"} {
		entries, err := os.ReadDir(filepath.Join(root, "testdata", dir))
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(root, "testdata", dir, e.Name()))
			if err == nil && len(b) <= 64<<10 {
				f.Add(b)
			}
		}
	}
	small, err := New(Options{Limits: Limits{MaxInputBytes: 1 << 20, MaxPixels: 4_000_000, MaxFrames: 50,
		MaxOutputDimension: 4096, Strictness: "warning"}})
	if err != nil {
		f.Fatal(err)
	}
	p := imgd.MustParsePipeline(`[{"op":"resize","width":64,"height":64},{"op":"convert","format":"png"}]`)
	known := map[imgd.Code]bool{imgd.CodeUnsupported: true, imgd.CodeOverLimit: true, imgd.CodeTooLarge: true}
	f.Fuzz(func(t *testing.T, b []byte) {
		type outcome struct {
			res *Result
			err error
		}
		done := make(chan outcome, 1)
		go func() {
			res, err := small.Run(t.Context(), b, p)
			done <- outcome{res, err}
		}()
		var o outcome
		select {
		case o = <-done:
		case <-time.After(10 * time.Second):
			// A running libvips call cannot be interrupted: fail so the
			// fuzzer saves the input (an unbounded decode is a DoS).
			t.Fatalf("Run did not finish in 10 s on a %d-byte input", len(b))
		}
		res, err := o.res, o.err
		if err != nil {
			if !known[imgd.CodeOf(err)] {
				t.Fatalf("Run error %v has code %s", err, imgd.CodeOf(err))
			}
			return
		}
		if res.Width > 64 || res.Height > 64 || res.Width < 1 || res.Height < 1 {
			t.Fatalf("output %dx%d, want within 64x64", res.Width, res.Height)
		}
		if f, err := Sniff(res.Data); err != nil || f != imgd.FormatPNG {
			t.Fatalf("output sniffs as %v, %v", f, err)
		}
	})
}
