package engine

import (
	"fmt"
	"os"
	"runtime"
	"testing"

	"github.com/imgd/imgd/internal/vips"
)

var testEngine *Engine

// TestMain checks after the whole suite that libvips' tracked memory,
// allocations and open files are back to their start values: every image
// the engine made was released, on success and on failure alike.
func TestMain(m *testing.M) {
	var err error
	if testEngine, err = New(Options{}); err != nil {
		fmt.Fprintln(os.Stderr, "engine tests: cannot start libvips:", err)
		os.Exit(1)
	}
	mem0, allocs0, files0 := vips.Memory()
	code := m.Run()
	runtime.GC()
	mem, allocs, files := vips.Memory()
	if code == 0 && (mem != mem0 || allocs != allocs0 || files != files0) {
		fmt.Fprintf(os.Stderr, "libvips leak: tracked memory %d -> %d bytes, allocations %d -> %d, files %d -> %d\n",
			mem0, mem, allocs0, allocs, files0, files)
		code = 1
	}
	os.Exit(code)
}
