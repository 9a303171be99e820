package engine

import (
	"bytes"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/imgtest"
)

// TestThumbnailProfileReuse: thumbnails of colour-managed photos come out
// the same whether the profile's transform is built for the run or taken
// from the cache, from one goroutine or several at once.
func TestThumbnailProfileReuse(t *testing.T) {
	t.Parallel()
	p := imgd.MustParsePipeline(`[{"op":"resize","width":300},{"op":"convert","format":"png"}]`)
	for _, rel := range []string{"photos/jpeg-icc.jpg", "photos/jpeg-icc-swapped-rg.jpg", "photos/jpeg-cmyk-icc.jpg",
		"photos/jpeg-cmyk.jpg"} {
		t.Run(rel, func(t *testing.T) {
			t.Parallel()
			src := imgtest.Read(t, rel)
			first, err := testEngine.Run(t.Context(), src, p)
			if err != nil {
				t.Fatalf("Run(%s): %v", rel, err)
			}
			want := decode(t, first.Data)
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					res, err := testEngine.Run(t.Context(), src, p)
					if err != nil {
						t.Errorf("Run(%s) #%d: %v", rel, g, err)
						return
					}
					got, err := testEngine.Decode(res.Data)
					if err != nil {
						t.Errorf("Decode #%d: %v", g, err)
						return
					}
					if !bytes.Equal(got.Data, want.Data) {
						t.Errorf("Run(%s) #%d differs from the first run by up to %d levels", rel, g,
							imgtest.MaxAbsDiff(got.Data, want.Data))
					}
				})
			}
			wg.Wait()
		})
	}
}

// BenchmarkThumbnailCPU is BenchmarkThumbnail reporting the process CPU
// time per image (user+sys), which other processes on a shared machine
// disturb less than wall time.
func BenchmarkThumbnailCPU(b *testing.B) {
	p := imgd.MustParsePipeline(`[{"op":"resize","width":300},{"op":"convert","format":"jpeg","quality":80}]`)
	for _, rel := range imgtest.Files(b, "photos") {
		src := imgtest.Read(b, rel)
		b.Run(filepath.Base(rel), func(b *testing.B) {
			c0 := cpuTime()
			for b.Loop() {
				if _, err := testEngine.Run(b.Context(), src, p); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTime()-c0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
