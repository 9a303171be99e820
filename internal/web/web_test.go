package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/imgd/imgd/internal/web"
)

// pageBudget bounds the page's HTML, CSS and JavaScript, uncompressed.
const pageBudget = 100 << 10

func get(t *testing.T, h http.Handler, method, target string, header http.Header) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

var assetLink = regexp.MustCompile(`"(/static/[a-z0-9.-]+)\?v=([0-9a-f]{12})"`)

func TestIndex(t *testing.T) {
	t.Parallel()
	h := web.Handler()
	resp, body := get(t, h, "GET", "/", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d, want 200", resp.StatusCode)
	}
	for k, want := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Cache-Control":           "no-cache",
		"Content-Security-Policy": web.CSP,
		"X-Content-Type-Options":  "nosniff",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("GET / %s = %q, want %q", k, got, want)
		}
	}
	for _, d := range []string{"script-src 'self'", "connect-src 'self'", "img-src 'self' blob: data:", "default-src 'none'"} {
		if !strings.Contains(web.CSP, d) {
			t.Errorf("CSP %q lacks %q", web.CSP, d)
		}
	}
	if strings.Contains(web.CSP, "unsafe-") {
		t.Errorf("CSP %q allows unsafe code", web.CSP)
	}
	// The CSP forbids inline code; the page must not need it.
	for _, re := range []string{`<script(?:\s[^>]*)?>\s*[^<\s]`, `\son[a-z]+=`, `\sstyle=`, `<style`, `https?://`} {
		if m := regexp.MustCompile(re).FindString(body); m != "" {
			t.Errorf("index.html has %q (matching %s): inline code, inline style or an external URL", m, re)
		}
	}
	links := assetLink.FindAllStringSubmatch(body, -1)
	if len(links) < 3 {
		t.Fatalf("index.html links %d versioned assets, want app.js, style.css and icon.svg: %v", len(links), links)
	}
	etag := resp.Header.Get("ETag")
	resp, body = get(t, h, "GET", "/", http.Header{"If-None-Match": {etag}})
	if resp.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("GET / with If-None-Match %s = %d with %d bytes, want 304 and no body", etag, resp.StatusCode, len(body))
	}
}

func TestAssets(t *testing.T) {
	t.Parallel()
	h := web.Handler()
	_, index := get(t, h, "GET", "/", nil)
	types := map[string]string{
		"/static/app.js":    "text/javascript; charset=utf-8",
		"/static/style.css": "text/css; charset=utf-8",
		"/static/icon.svg":  "image/svg+xml",
	}
	seen := map[string]bool{}
	for _, m := range assetLink.FindAllStringSubmatch(index, -1) {
		path, version := m[1], m[2]
		if seen[path] {
			continue
		}
		seen[path] = true
		want, ok := types[path]
		if !ok {
			t.Errorf("index.html links %s, which this test does not know", path)
			continue
		}
		delete(types, path)
		resp, body := get(t, h, "GET", path+"?v="+version, nil)
		if resp.StatusCode != http.StatusOK || body == "" {
			t.Fatalf("GET %s?v=%s = %d with %d bytes, want 200", path, version, resp.StatusCode, len(body))
		}
		if got := resp.Header.Get("Content-Type"); got != want {
			t.Errorf("GET %s Content-Type = %q, want %q", path, got, want)
		}
		if got := resp.Header.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
			t.Errorf("GET %s?v=<current> Cache-Control = %q, want a year, immutable", path, got)
		}
		// Without the current version the asset may be an old link: revalidate.
		resp, _ = get(t, h, "GET", path+"?v=000000000000", nil)
		if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s?v=<old> Cache-Control = %q, want no-cache", path, got)
		}
		etag := resp.Header.Get("ETag")
		if !regexp.MustCompile(`^"[0-9a-f]{64}"$`).MatchString(etag) || etag[1:13] != version {
			t.Errorf("GET %s ETag = %s, want the quoted SHA-256 starting with the version %s", path, etag, version)
		}
		resp, _ = get(t, h, "GET", path, http.Header{"If-None-Match": {etag}})
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with its ETag = %d, want 304", path, resp.StatusCode)
		}
		resp, body = get(t, h, "HEAD", path, nil)
		if resp.StatusCode != http.StatusOK || body != "" || resp.Header.Get("Content-Security-Policy") != web.CSP {
			t.Errorf("HEAD %s = %d, %d bytes, CSP %q; want 200, no body, the CSP", path, resp.StatusCode, len(body), resp.Header.Get("Content-Security-Policy"))
		}
	}
	for path := range types {
		t.Errorf("index.html does not link %s with its version", path)
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	h := web.Handler()
	for _, target := range []string{"/static/", "/static/nope.js", "/static/../web.go", "/favicon.ico", "/index.htm"} {
		resp, _ := get(t, h, "GET", target, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", target, resp.StatusCode)
		}
	}
	resp, _ := get(t, h, "POST", "/", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST / = %d, Allow %q; want 405, GET, HEAD", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestPageWeight(t *testing.T) {
	t.Parallel()
	if n := web.Size(); n <= 0 || n > pageBudget {
		t.Errorf("page weight = %d bytes of HTML, CSS and JavaScript, want 1..%d", n, pageBudget)
	}
}
