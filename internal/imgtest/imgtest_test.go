package imgtest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRoot(t *testing.T) {
	t.Parallel()
	root := Root(t)
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatalf("Root() = %q: %v", root, err)
	}
	if !strings.HasPrefix(string(mod), "module github.com/imgd/imgd\n") {
		t.Errorf("Root() = %q, whose go.mod starts %q, want module github.com/imgd/imgd", root, strings.SplitN(string(mod), "\n", 2)[0])
	}
}

func TestPathAndRead(t *testing.T) {
	t.Parallel()
	const rel = "photos/jpeg-baseline-small.jpg"
	p := Path(t, rel)
	if !filepath.IsAbs(p) || !strings.HasSuffix(filepath.ToSlash(p), "/testdata/"+rel) {
		t.Errorf("Path(%q) = %q, want an absolute path ending in /testdata/%s", rel, p, rel)
	}
	b := Read(t, rel)
	if len(b) < 3 || b[0] != 0xFF || b[1] != 0xD8 || b[2] != 0xFF {
		t.Errorf("Read(%q) starts % x, want a JPEG SOI marker ff d8 ff", rel, b[:min(len(b), 3)])
	}
}

func TestPathMissingFails(t *testing.T) {
	t.Parallel()
	tb := &recordTB{TB: t}
	runTB(func() { Path(tb, "photos/no-such-file.jpg") })
	if !tb.failed {
		t.Errorf("Path(missing file) did not fail the test")
	}
}

func TestFiles(t *testing.T) {
	t.Parallel()
	files := Files(t, "bad")
	if !slices.IsSorted(files) {
		t.Errorf("Files(bad) not sorted: %q", files)
	}
	for _, f := range files {
		if !strings.HasPrefix(f, "bad/") {
			t.Errorf("Files(bad) has %q, want paths relative to testdata/ starting with bad/", f)
		}
		if ext := filepath.Ext(f); ext == ".tsv" || ext == ".md" {
			t.Errorf("Files(bad) has metadata file %q", f)
		}
		Path(t, f) // each name must resolve
	}
	if !slices.Contains(files, "bad/empty.jpg") {
		t.Errorf("Files(bad) = %q, want it to include bad/empty.jpg", files)
	}
}

func TestBadExpectations(t *testing.T) {
	t.Parallel()
	want := BadExpectations(t)
	known := map[string]bool{"ok": true, "over_limit": true, "unsupported_image": true, "too_large": true, "invalid_argument": true}
	for f, code := range want {
		if !known[code] {
			t.Errorf("BadExpectations()[%q] = %q, want one of ok, over_limit, unsupported_image, too_large, invalid_argument", f, code)
		}
	}
	for f, code := range map[string]string{
		"bad/png-bomb.png":   "over_limit",
		"bad/empty.jpg":      "unsupported_image",
		"bad/html-named.png": "unsupported_image",
	} {
		if got := want[f]; got != code {
			t.Errorf("BadExpectations()[%q] = %q, want %q", f, got, code)
		}
	}
	if got, n := len(want), len(Files(t, "bad")); got != n {
		t.Errorf("len(BadExpectations()) = %d, want %d (one per file in bad/)", got, n)
	}
}

func TestRequireEnv(t *testing.T) {
	// Not parallel: t.Setenv.
	const name = "IMGD_TEST_IMGTEST_REQUIRE_ENV_PROBE"
	for _, tc := range []struct {
		value, requireAll string
		want              string
		skipped, failed   bool
	}{
		{value: "postgres://x", want: "postgres://x"},
		{value: "postgres://x", requireAll: "1", want: "postgres://x"},
		{skipped: true},
		{requireAll: "0", skipped: true},
		{requireAll: "1", failed: true},
	} {
		t.Run(fmt.Sprintf("value=%q,require_all=%q", tc.value, tc.requireAll), func(t *testing.T) {
			t.Setenv(name, tc.value)
			t.Setenv("IMGD_TEST_REQUIRE_ALL", tc.requireAll)
			tb := &recordTB{TB: t}
			var got string
			runTB(func() { got = RequireEnv(tb, name) })
			if got != tc.want || tb.skipped != tc.skipped || tb.failed != tc.failed {
				t.Errorf("RequireEnv(%q) = %q, skipped %v, failed %v; want %q, skipped %v, failed %v",
					name, got, tb.skipped, tb.failed, tc.want, tc.skipped, tc.failed)
			}
			if (tb.skipped || tb.failed) && !strings.Contains(tb.msg, name) {
				t.Errorf("RequireEnv(%q) message %q does not name the variable", name, tb.msg)
			}
		})
	}
}

// recordTB records Fatalf and Skipf instead of ending the test, so the helpers' failure
// paths can be tested. Both stop the helper by panicking with stopTB, caught by runTB.
type recordTB struct {
	testing.TB
	failed, skipped bool
	msg             string
}

type stopTB struct{}

func (r *recordTB) Helper() {}

func (r *recordTB) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	panic(stopTB{})
}

func (r *recordTB) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
	panic(stopTB{})
}

func runTB(f func()) {
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(stopTB); !ok {
				panic(v)
			}
		}
	}()
	f()
}
