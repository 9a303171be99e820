package app

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/imgtest"
)

// imgd process with a responsive pipeline writes the manifest and every
// variant beside it, the manifest naming the files.
func TestProcessResponsive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := imgtest.Path(t, "photos/jpeg-baseline-small.jpg") // 640x427
	r := runMain(t, []string{"process", "--json", "-o", dir, "-p",
		`[{"op":"responsive","widths":[100,200,1000],"formats":["webp","jpeg"]}]`, in}, nil, nil)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var l processLine
	if err := json.Unmarshal(r.stdout, &l); err != nil {
		t.Fatalf("--json line: %v: %s", err, r.stdout)
	}
	manifestPath := filepath.Join(dir, "jpeg-baseline-small.json")
	if l.Output != manifestPath || l.Format != imgd.FormatJSON || len(l.Variants) != 6 {
		t.Fatalf("--json line: output %s, format %s, %d variants; want %s, json, 6", l.Output, l.Format, len(l.Variants), manifestPath)
	}
	b, err := os.ReadFile(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	var m imgd.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("manifest: %v: %s", err, b)
	}
	want := "jpeg-baseline-small-100w-0.webp 100w, jpeg-baseline-small-200w-1.webp 200w, jpeg-baseline-small-640w-2.webp 640w"
	if m.Srcset[imgd.FormatWebP] != want {
		t.Errorf("manifest srcset webp = %q, want %q", m.Srcset[imgd.FormatWebP], want)
	}
	var files []string
	for i, v := range m.Variants {
		data, err := os.ReadFile(filepath.Join(dir, v.URL))
		if err != nil || int64(len(data)) != v.Bytes || l.Variants[i].Output != filepath.Join(dir, v.URL) {
			t.Errorf("variant %d file %s: %d bytes, %v; manifest says %d bytes, --json says %s", i, v.URL, len(data), err, v.Bytes, l.Variants[i].Output)
		}
		files = append(files, v.URL)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 7 || !slices.Contains(files, "jpeg-baseline-small-640w-5.jpg") {
		t.Errorf("%d files written (want the manifest and 6 variants), variants %v", len(entries), files)
	}

	if r := runMain(t, []string{"process", "-o", "-", "-p", `[{"op":"responsive","widths":[100],"formats":["png"]}]`, in}, nil, nil); r.code != exitFailed {
		t.Errorf("responsive to standard output: exit %d (%s), want %d", r.code, r.stderr, exitFailed)
	}
}
