package engine

import (
	"context"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/imgtest"
)

// TestModulesLoadDuringWork starts, in fresh processes (where the deferred
// libvips modules are not loaded yet), HEIF, AVIF, BMP and JXL work at the
// moment other goroutines are busy with JPEG and PNG work. Loading a module
// while libvips works elsewhere once aborted the whole process; a crash
// here shows as a failed child.
func TestModulesLoadDuringWork(t *testing.T) {
	if os.Getenv("IMGD_TEST_MODULES_CHILD") == "1" {
		modulesLoadDuringWork(t)
		return
	}
	for i := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestModulesLoadDuringWork$", "-test.count=1")
		cmd.Env = append(os.Environ(), "IMGD_TEST_MODULES_CHILD=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, out)
		}
	}
}

func modulesLoadDuringWork(t *testing.T) {
	e, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	busy := []string{"photos/jpeg-large-baseline.jpg", "png/png-gray.png", "photos/jpeg-icc.jpg", "formats/webp-lossy.webp"}
	late := []string{"formats/heic.heic", "formats/avif.avif", "formats/bmp-24bit.bmp", "formats/bmp-native.bmp"}
	resize := imgd.MustParsePipeline(`[{"op":"resize","width":200}]`)
	toAVIF := imgd.MustParsePipeline(`[{"op":"resize","width":64},{"op":"convert","format":"avif"}]`)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, f := range busy {
		src := imgtest.Read(t, f)
		wg.Go(func() {
			for range 4 {
				if _, err := e.Run(context.Background(), src, resize); err != nil {
					t.Errorf("%s: %v", f, err)
				}
				if f == busy[0] {
					select {
					case <-start:
					default:
						close(start) // the others start while this one is at work
					}
				}
			}
		})
	}
	<-start
	for _, f := range late {
		src := imgtest.Read(t, f)
		wg.Go(func() {
			if _, err := e.Run(context.Background(), src, toAVIF); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		})
	}
	wg.Wait()
}
