package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// ignorePattern is one .dockerignore line, compiled.
type ignorePattern struct {
	text      string
	exclusion bool // a "!pattern" line: re-includes what it matches
	re        *regexp.Regexp
}

// ignoreRules holds a .dockerignore file in order: the last matching line
// decides, as in Docker's patternmatcher.
type ignoreRules []ignorePattern

// parseDockerignore reads .dockerignore text: one pattern a line, '#'
// comments, '!' exceptions, paths cleaned and made relative to the
// context root.
func parseDockerignore(text string) (ignoreRules, error) {
	var rules ignoreRules
	for _, line := range strings.Split(text, "\n") {
		p := strings.TrimSpace(line)
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		ip := ignorePattern{text: p}
		if rest, ok := strings.CutPrefix(p, "!"); ok {
			ip.exclusion = true
			p = strings.TrimSpace(rest)
		}
		p = strings.TrimPrefix(path.Clean(filepath.ToSlash(p)), "/")
		if p == "." || p == "" {
			continue
		}
		re, err := patternRegexp(p)
		if err != nil {
			return nil, fmt.Errorf(".dockerignore %q: %w", line, err)
		}
		ip.re = re
		rules = append(rules, ip)
	}
	return rules, nil
}

// patternRegexp translates a .dockerignore pattern: '*' and '?' stay
// inside one path element, "**" crosses elements ("**/x" matches x at any
// depth), [classes] and backslash escapes are kept.
func patternRegexp(p string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch c {
		case '*':
			if i+1 < len(p) && p[i+1] == '*' {
				i++
				if i+1 < len(p) && p[i+1] == '/' {
					i++
					b.WriteString("(.*/)?")
				} else {
					b.WriteString(".*")
				}
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		case '\\':
			if i+1 < len(p) {
				i++
				b.WriteString(regexp.QuoteMeta(string(p[i])))
			}
		case '[':
			end := strings.IndexByte(p[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("unterminated [")
			}
			class := p[i+1 : i+end]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + class + "]")
			i += end
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// excluded reports whether the context path rel (slash-separated) is left
// out of the build context: a pattern matches the path or one of its
// parent directories, and the last matching line wins.
func (rules ignoreRules) excluded(rel string) bool {
	parents := []string{rel}
	for d := path.Dir(rel); d != "." && d != "/"; d = path.Dir(d) {
		parents = append(parents, d)
	}
	out := false
	for _, r := range rules {
		for _, p := range parents {
			if r.re.MatchString(p) {
				out = !r.exclusion
				break
			}
		}
	}
	return out
}

// hasExceptions reports whether a "!" line could bring back something
// under an excluded directory, so that the walk must enter it.
func (rules ignoreRules) hasExceptions() bool {
	for _, r := range rules {
		if r.exclusion {
			return true
		}
	}
	return false
}

// contextFile is one entry of the build context.
type contextFile struct {
	rel  string // slash-separated, relative to the context root
	mode fs.FileMode
}

// buildContext lists what `docker build` would send: every file and
// directory under root that .dockerignore does not exclude, sorted. (The
// Dockerfile and .dockerignore reach the builder even when listed, but a
// COPY does not see them, which is all this list is for.)
func buildContext(root string, rules ignoreRules) ([]contextFile, error) {
	var files []contextFile
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rules.excluded(rel) {
			if d.IsDir() && !rules.hasExceptions() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, contextFile{rel: rel, mode: info.Mode()})
		return nil
	})
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })
	return files, err
}

// hashContext digests the paths, modes and contents of files, so a COPY
// layer is rebuilt exactly when what it copies changes.
func hashContext(root string, files []contextFile) (string, error) {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%o\x00", f.rel, f.mode)
		p := filepath.Join(root, filepath.FromSlash(f.rel))
		switch {
		case f.mode.IsRegular():
			fh, err := os.Open(p)
			if err != nil {
				return "", err
			}
			_, err = io.Copy(h, fh)
			fh.Close()
			if err != nil {
				return "", err
			}
		case f.mode&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return "", err
			}
			io.WriteString(h, t)
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
