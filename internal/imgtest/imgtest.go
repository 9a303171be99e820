// Package imgtest holds helpers for tests only: paths into the module's testdata/ folder,
// the expected outcome of each hostile input, image-difference metrics on decoded pixels,
// and gates for tests that need a real external service.
//
// Nothing outside _test.go files and benchmarks may import it.
package imgtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Root returns the module root: the nearest directory at or above the working directory
// that holds a go.mod file. `go test` runs each package in its own directory, so this finds
// the same root from any package.
func Root(tb testing.TB) string {
	tb.Helper()
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatalf("imgtest.Root: %v", err)
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		} else if !errors.Is(err, fs.ErrNotExist) {
			tb.Fatalf("imgtest.Root: %v", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatalf("imgtest.Root: no go.mod in %s or any parent", wd)
		}
		dir = parent
	}
}

// Path returns the absolute path of rel, a slash-separated path relative to testdata/
// (for example "photos/jpeg-baseline-small.jpg"). The test fails if the file does not exist.
func Path(tb testing.TB, rel string) string {
	tb.Helper()
	p := filepath.Join(Root(tb), "testdata", filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("imgtest.Path(%q): %v", rel, err)
	}
	return p
}

// Read returns the contents of testdata/rel, failing the test if it cannot be read.
func Read(tb testing.TB, rel string) []byte {
	tb.Helper()
	b, err := os.ReadFile(Path(tb, rel))
	if err != nil {
		tb.Fatalf("imgtest.Read(%q): %v", rel, err)
	}
	return b
}

// Files returns the files under testdata/dir, recursively, as sorted slash-separated paths
// relative to testdata/ (so each can be passed to Path or Read, e.g. "bad/empty.jpg").
// Metadata files (.tsv, .md) are skipped, as are names starting with a dot.
func Files(tb testing.TB, dir string) []string {
	tb.Helper()
	testdata := filepath.Join(Root(tb), "testdata")
	base := Path(tb, dir)
	var files []string
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if strings.HasPrefix(name, ".") && p != base {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		switch strings.ToLower(filepath.Ext(name)) {
		case ".tsv", ".md":
			return nil
		}
		rel, err := filepath.Rel(testdata, p)
		if err != nil {
			return err
		}
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		tb.Fatalf("imgtest.Files(%q): %v", dir, err)
	}
	if len(files) == 0 {
		tb.Fatalf("imgtest.Files(%q): no files", dir)
	}
	slices.Sort(files)
	return files
}

// BadExpectations reads testdata/bad/EXPECT.tsv and returns, for every hostile input, the
// imgd error code the engine must return for it, or "ok" when the file must be processed
// safely. Keys are paths relative to testdata/ ("bad/png-bomb.png"), as Files returns them.
//
// The test fails if the table is malformed, names a file that does not exist, or misses a
// file of testdata/bad: adding a hostile file without its expected code is an error.
func BadExpectations(tb testing.TB) map[string]string {
	tb.Helper()
	const name = "bad/EXPECT.tsv"
	data := Read(tb, name)
	want := make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSuffix(sc.Text(), "\r")
		if line == 1 {
			if text != "file\tcode" {
				tb.Fatalf("%s:1: header is %q, want %q", name, text, "file\tcode")
			}
			continue
		}
		if text == "" {
			continue
		}
		fields := strings.Split(text, "\t")
		if len(fields) != 2 || fields[0] == "" || fields[1] == "" {
			tb.Fatalf("%s:%d: got %d fields in %q, want 2 non-empty (file, code)", name, line, len(fields), text)
		}
		file, code := "bad/"+fields[0], fields[1]
		if strings.Contains(fields[0], "/") {
			tb.Fatalf("%s:%d: file %q: want a name inside bad/, without a folder", name, line, fields[0])
		}
		if _, dup := want[file]; dup {
			tb.Fatalf("%s:%d: %s listed twice", name, line, fields[0])
		}
		want[file] = code
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("read %s: %v", name, err)
	}

	var problems []string
	present := make(map[string]bool)
	for _, f := range Files(tb, "bad") {
		present[f] = true
		if _, ok := want[f]; !ok {
			problems = append(problems, f+": no row in "+name)
		}
	}
	for f := range want {
		if !present[f] {
			problems = append(problems, f+": listed in "+name+" but missing")
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		tb.Fatalf("imgtest.BadExpectations:\n\t%s", strings.Join(problems, "\n\t"))
	}
	return want
}

// RequireEnv returns the value of the environment variable name, which points a test at a
// real service (IMGD_TEST_POSTGRES_URL, IMGD_TEST_S3_URL, …). When it is empty the test is
// skipped with a message naming the variable, or fails if IMGD_TEST_REQUIRE_ALL=1 (as in CI),
// so that a missing service can never pass silently.
func RequireEnv(tb testing.TB, name string) string {
	tb.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	if os.Getenv("IMGD_TEST_REQUIRE_ALL") == "1" {
		tb.Fatalf("%s is not set, and IMGD_TEST_REQUIRE_ALL=1 forbids skipping: set %s to run this test", name, name)
	}
	tb.Skipf("SKIPPED, NOT RUN: set %s to run this test (IMGD_TEST_REQUIRE_ALL=1 turns this skip into a failure)", name)
	return ""
}

// Unavailable ends a test whose component is missing from this machine:
// a loud skip naming what is not covered, or a failure when
// IMGD_TEST_REQUIRE_ALL=1 (CI), where nothing may go untested.
func Unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("IMGD_TEST_REQUIRE_ALL") == "1" {
		tb.Fatalf("%s, and IMGD_TEST_REQUIRE_ALL=1 forbids skipping", msg)
	}
	tb.Skipf("SKIPPED, NOT RUN: %s (IMGD_TEST_REQUIRE_ALL=1 turns this skip into a failure)", msg)
}
