// Package web serves imgd's web page: static HTML, CSS and JavaScript
// embedded in the binary, which talk to the API v1 on the same origin.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// CSP is the Content-Security-Policy of every answer: only our own
// scripts and styles (no inline code), API calls and the event stream to
// our origin, images from our origin or made by the page (blob:, data:).
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// AssetPrefix is the path under which the assets are served.
const AssetPrefix = "/static/"

// contentTypes are set from the extension: the set of files is ours, so
// nothing is sniffed.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

type asset struct {
	body        []byte
	etag        string // strong: quoted hex of the SHA-256
	version     string // first 12 hex digits of the SHA-256, the ?v= of the links
	contentType string
}

type site struct {
	index  asset
	assets map[string]asset // by name under static/, without index.html
}

// Handler serves the page: GET or HEAD "/" is index.html, "/static/NAME"
// an asset; anything else is 404. index.html is revalidated on every load
// (no-cache + ETag); it links each asset with ?v=<hash of its content>, and
// an asset asked with its current hash may be cached for a year, since a
// new build links a new URL. Asked without it (or with an old one), the
// asset is revalidated like the page.
func Handler() http.Handler {
	s, err := load(static)
	if err != nil {
		panic("web: embedded files: " + err.Error()) // the embed is checked by the tests
	}
	return s
}

func load(fsys fs.FS) (*site, error) {
	s := &site{assets: map[string]asset{}}
	var index []byte
	err := fs.WalkDir(fsys, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "static/")
		if name == "index.html" {
			index = b
			return nil
		}
		s.assets[name] = newAsset(name, b)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Link each asset with its version so that a new build is fetched at
	// once although old assets stay cached.
	for name, a := range s.assets {
		index = bytes.ReplaceAll(index, []byte(`"`+AssetPrefix+name+`"`), []byte(`"`+AssetPrefix+name+"?v="+a.version+`"`))
	}
	s.index = newAsset("index.html", index)
	return s, nil
}

func newAsset(name string, b []byte) asset {
	sum := sha256.Sum256(b)
	h := hex.EncodeToString(sum[:])
	ct := contentTypes[path.Ext(name)]
	if ct == "" {
		ct = "application/octet-stream"
	}
	return asset{body: b, etag: `"` + h + `"`, version: h[:12], contentType: ct}
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var a asset
	cache := "no-cache"
	switch p := r.URL.Path; {
	case p == "/" || p == "/index.html":
		a = s.index
	case strings.HasPrefix(p, AssetPrefix):
		var ok bool
		if a, ok = s.assets[strings.TrimPrefix(p, AssetPrefix)]; !ok {
			http.NotFound(w, r)
			return
		}
		if r.URL.Query().Get("v") == a.version {
			cache = "public, max-age=31536000, immutable"
		}
	default:
		http.NotFound(w, r)
		return
	}
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", cache)
	h.Set("ETag", a.etag)
	// ServeContent answers If-None-Match with 304, Range and HEAD.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// Size returns the bytes of the page's HTML, CSS and JavaScript, for the
// page-weight budget.
func Size() int {
	s, err := load(static)
	if err != nil {
		return -1
	}
	n := len(s.index.body)
	for _, a := range s.assets {
		n += len(a.body)
	}
	return n
}
