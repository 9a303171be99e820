package app

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// readInput allocates the file's size once: a buffer that grows while
// reading costs a copy and twice the memory per input of a batch.
func TestReadInputAllocatesOnce(t *testing.T) {
	want := bytes.Repeat([]byte("imgd"), 1<<20) // 4 MiB
	name := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(name, want, 0o644); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := readInput(name, 1<<30, nil)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want the file's %d", len(got), len(want))
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(len(want))*5/4 {
		t.Errorf("reading a %d byte file allocated %d bytes", len(want), alloc)
	}
}
