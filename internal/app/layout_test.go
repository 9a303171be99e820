package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/imgd/imgd/internal/imgtest"
)

// This file keeps STYLE.md §1 true: which package may import which, and
// where cgo lives. It reads the packages from `go list -json`, so a rule
// about a package that does not exist yet simply has nothing to check.

const modulePath = "github.com/imgd/imgd"

// listedPackage is the part of `go list -json` output the rules need.
type listedPackage struct {
	ImportPath   string
	Standard     bool
	DepOnly      bool
	CgoFiles     []string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// rel is the package's path inside the module: "" for the root package
// imgd, "internal/engine" for the engine, and not ok for other modules.
func rel(importPath string) (string, bool) {
	if importPath == modulePath {
		return "", true
	}
	r, ok := strings.CutPrefix(importPath, modulePath+"/")
	return r, ok
}

// under reports whether the module package r is dir or inside it.
func under(r, dir string) bool { return r == dir || strings.HasPrefix(r, dir+"/") }

// moduleImports returns the module-relative paths among imports.
func moduleImports(imports []string) []string {
	var out []string
	for _, imp := range imports {
		if r, ok := rel(imp); ok {
			out = append(out, r)
		}
	}
	return out
}

func name(r string) string {
	if r == "" {
		return "imgd (module root)"
	}
	return r
}

// layoutViolations checks the packages of the module (and, through std,
// which import paths are in the standard library) against STYLE.md §1.
func layoutViolations(pkgs []listedPackage, std map[string]bool) []string {
	var bad []string
	for _, p := range pkgs {
		r, ok := rel(p.ImportPath)
		if !ok || p.DepOnly {
			continue
		}
		mod := moduleImports(p.Imports)
		testMod := moduleImports(slices.Concat(p.TestImports, p.XTestImports))

		// Only internal/vips holds cgo.
		if len(p.CgoFiles) > 0 && r != "internal/vips" {
			bad = append(bad, name(r)+": has cgo files "+strings.Join(p.CgoFiles, ", ")+"; only internal/vips may use cgo")
		}

		// The domain imports the standard library only.
		if r == "" {
			for _, imp := range p.Imports {
				if !std[imp] {
					bad = append(bad, name(r)+": imports "+imp+"; the domain may import the standard library only")
				}
			}
		}

		// internal/vips is imported only by the engine (and by its own and
		// the engine's tests).
		if r != "internal/engine" && !under(r, "internal/vips") {
			if slices.Contains(mod, "internal/vips") {
				bad = append(bad, name(r)+": imports internal/vips; only internal/engine may")
			}
			if slices.Contains(testMod, "internal/vips") {
				bad = append(bad, name(r)+": tests import internal/vips; only internal/engine and internal/vips tests may")
			}
		}

		// Transport knows no backend and no libvips.
		if under(r, "internal/httpapi") {
			for _, m := range mod {
				if under(m, "internal/store") || under(m, "internal/blob") || under(m, "internal/vips") {
					bad = append(bad, name(r)+": imports "+m+"; httpapi may not import a backend or internal/vips")
				}
			}
		}

		// Pixel algorithms and test helpers import at most the domain.
		for _, dir := range []string{"internal/dither", "internal/orient", "internal/ssim", "internal/imgtest"} {
			if !under(r, dir) {
				continue
			}
			for _, m := range mod {
				if m != "" {
					bad = append(bad, name(r)+": imports "+m+"; "+dir+" may import at most imgd from this module")
				}
			}
		}
	}
	slices.Sort(bad)
	return bad
}

// goList runs `go list -e -json -deps ./...` in the module root.
func goList(t *testing.T) []listedPackage {
	t.Helper()
	root := imgtest.Root(t)
	cmd := exec.CommandContext(t.Context(), "go", "list", "-e", "-json", "-deps", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -e -json -deps ./... in %s: %v\n%s", root, err, stderr.Bytes())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestLayout(t *testing.T) {
	t.Parallel()
	pkgs := goList(t)
	std := map[string]bool{}
	var module []string
	for _, p := range pkgs {
		if p.Standard {
			std[p.ImportPath] = true
		}
		if r, ok := rel(p.ImportPath); ok && !p.DepOnly {
			module = append(module, r)
		}
	}
	// The check must have something to check: the packages that exist
	// from the start.
	for _, want := range []string{"", "internal/app", "internal/engine", "internal/vips"} {
		if !slices.Contains(module, want) {
			t.Fatalf("go list ./... lists %q, want it to include %s", module, name(want))
		}
	}
	for _, v := range layoutViolations(pkgs, std) {
		t.Errorf("STYLE.md §1: %s", v)
	}
}

// TestLayoutViolations checks that each rule of layoutViolations fires, on
// made-up packages.
func TestLayoutViolations(t *testing.T) {
	t.Parallel()
	std := map[string]bool{"fmt": true, "strings": true}
	m := func(r string) string {
		if r == "" {
			return modulePath
		}
		return modulePath + "/" + r
	}
	tests := []struct {
		name string
		pkg  listedPackage
		want int // violations
	}{
		{"clean domain", listedPackage{ImportPath: m(""), Imports: []string{"fmt", "strings"}}, 0},
		{"domain imports a module package", listedPackage{ImportPath: m(""), Imports: []string{"fmt", m("internal/engine")}}, 1},
		{"domain imports a third-party package", listedPackage{ImportPath: m(""), Imports: []string{"github.com/google/uuid"}}, 1},
		{"domain uses cgo", listedPackage{ImportPath: m(""), Imports: []string{"C"}, CgoFiles: []string{"x.go"}}, 2},
		{"domain tests may use go-cmp", listedPackage{ImportPath: m(""), XTestImports: []string{"github.com/google/go-cmp/cmp"}}, 0},
		{"vips uses cgo", listedPackage{ImportPath: m("internal/vips"), Imports: []string{"C"}, CgoFiles: []string{"vips.go"}}, 0},
		{"engine uses cgo", listedPackage{ImportPath: m("internal/engine"), CgoFiles: []string{"x.go"}}, 1},
		{"engine imports vips", listedPackage{ImportPath: m("internal/engine"), Imports: []string{m("internal/vips")}, TestImports: []string{m("internal/vips")}}, 0},
		{"worker imports vips", listedPackage{ImportPath: m("internal/worker"), Imports: []string{m("internal/vips")}}, 1},
		{"app tests import vips", listedPackage{ImportPath: m("internal/app"), XTestImports: []string{m("internal/vips")}}, 1},
		{"httpapi imports the engine", listedPackage{ImportPath: m("internal/httpapi"), Imports: []string{m(""), m("internal/engine")}}, 0},
		{"httpapi imports a store", listedPackage{ImportPath: m("internal/httpapi"), Imports: []string{m("internal/store/sqlite")}}, 1},
		{"httpapi imports a blob store", listedPackage{ImportPath: m("internal/httpapi"), Imports: []string{m("internal/blob/fileblob")}}, 1},
		{"httpapi imports vips", listedPackage{ImportPath: m("internal/httpapi"), Imports: []string{m("internal/vips")}}, 2},
		{"dither imports imgd", listedPackage{ImportPath: m("internal/dither"), Imports: []string{m(""), "github.com/makeworld-the-better-one/dither/v2"}}, 0},
		{"dither imports the engine", listedPackage{ImportPath: m("internal/dither"), Imports: []string{m("internal/engine")}}, 1},
		{"orient imports dither", listedPackage{ImportPath: m("internal/orient"), Imports: []string{m(""), m("internal/dither")}}, 1},
		{"imgtest imports imgd", listedPackage{ImportPath: m("internal/imgtest"), Imports: []string{m("")}}, 0},
		{"imgtest imports the engine", listedPackage{ImportPath: m("internal/imgtest"), Imports: []string{m("internal/engine")}}, 1},
		{"another module's package", listedPackage{ImportPath: "example.com/x", Imports: []string{m("internal/vips")}, CgoFiles: []string{"x.go"}}, 0},
		{"a dependency only", listedPackage{ImportPath: m("internal/worker"), DepOnly: true, Imports: []string{m("internal/vips")}}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := layoutViolations([]listedPackage{tc.pkg}, std)
			if len(got) != tc.want {
				t.Errorf("layoutViolations(%+v) = %q, want %d violations", tc.pkg, got, tc.want)
			}
		})
	}
}
