package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestDockerignore(t *testing.T) {
	rules, err := parseDockerignore(`# comment
.git
bench
**/testdata
*.test
/data
docs/*.md
!docs/keep.md
`)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want bool
	}{
		{".git", true},
		{".git/config", true},
		{"bench", true},
		{"bench/main.go", true},
		{"benchmark.go", false}, // a pattern names whole elements
		{"testdata/a.jpg", true},
		{"internal/engine/testdata/fuzz/x", true},
		{"internal/engine/engine.go", false},
		{"imgd.test", true},
		{"internal/x.test", false}, // '*' does not cross '/': only the root's
		{"data/imgd.db", true},
		{"docs/a.md", true},
		{"docs/keep.md", false},
		{"go.mod", false},
	}
	for _, tt := range tests {
		if got := rules.excluded(tt.path); got != tt.want {
			t.Errorf("excluded(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestBuildContext(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"go.mod", "cmd/imgd/main.go", "internal/a/testdata/x", "bench/b.go", "docs/keep.md", "docs/drop.md"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rules, err := parseDockerignore("bench\n**/testdata\ndocs\n!docs/keep.md\n")
	if err != nil {
		t.Fatal(err)
	}
	files, err := buildContext(dir, rules)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.rel)
	}
	want := []string{"cmd", "cmd/imgd", "cmd/imgd/main.go", "docs/keep.md", "go.mod", "internal", "internal/a"}
	if !slices.Equal(got, want) {
		t.Errorf("context = %q, want %q", got, want)
	}

	// COPY . /src/ and COPY cmd /x/ follow Docker's rules for directories.
	b := &builder{contextDir: dir, files: files}
	plan, err := b.contextPlan([]string{"cmd"}, "/x/", true)
	if err != nil {
		t.Fatal(err)
	}
	var dsts []string
	for _, p := range plan {
		dsts = append(dsts, p.dst)
	}
	if !slices.Equal(dsts, []string{"/x", "/x/imgd", "/x/imgd/main.go"}) {
		t.Errorf("COPY cmd /x/ creates %q", dsts)
	}
	plan, err = b.contextPlan([]string{"go.mod"}, "/src/go.mod.copy", false)
	if err != nil || len(plan) != 1 || plan[0].dst != "/src/go.mod.copy" {
		t.Errorf("COPY go.mod /src/go.mod.copy: %+v %v", plan, err)
	}
	if _, err := b.contextPlan([]string{"bench/b.go"}, "/x/", true); err == nil {
		t.Error("COPY of an excluded file: no error")
	}
	h1, _ := hashContext(dir, files)
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("changed"), 0o644)
	h2, _ := hashContext(dir, files)
	if h1 == h2 {
		t.Error("the context hash did not change with a file's content")
	}
}
