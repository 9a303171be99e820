package app_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/blob/s3test"
	"github.com/imgd/imgd/internal/imgtest"
)

// fetch GETs url without following redirects; header holds extra request
// headers as name, value pairs.
func fetch(t *testing.T, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", url, err)
	}
	return resp, b
}

// followPresigned checks that resp is the 302 of a presigned download on
// the S3 server and returns what its Location serves.
func followPresigned(t *testing.T, what string, resp *http.Response, srv *s3test.Server) (*http.Response, []byte) {
	t.Helper()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, srv.Endpoint+"/") {
		t.Fatalf("%s = %d, Location %q; want 302 to a URL on %s", what, resp.StatusCode, loc, srv.Endpoint)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s: redirect Cache-Control = %q, want no-store (the URL expires)", what, cc)
	}
	got, body := fetch(t, loc) // no credentials: the signature is the permission
	if got.StatusCode != http.StatusOK {
		t.Fatalf("%s: GET Location = %d %s, want 200", what, got.StatusCode, body)
	}
	return got, body
}

// TestPresignedDownloads: with IMGD_BLOB_PRESIGN, the result and original
// routes answer 302 to a presigned S3 URL that serves the same bytes, type
// and file name as the api does; SVG originals and the web page's own
// requests (Sec-Fetch-Site: same-origin) are still served by the api.
func TestPresignedDownloads(t *testing.T) {
	srv := s3test.StartServer(t)
	d := startDaemon(t, "serve", t.TempDir(), append(s3test.Env(), "IMGD_BLOB_URL="+srv.URL(t),
		"IMGD_BLOB_PRESIGN=10m", "IMGD_WORKERS=1")...)

	const photo = "photos/jpeg-icc.jpg"
	im := d.upload(photo)
	task := d.createTask(im.ID, `[{"op":"resize","width":120},{"op":"convert","format":"webp"}]`)
	done := waitAllCompleted(t, d, []string{task.ID}, time.Minute)[0]
	resultURL := d.URL + "/api/v1/tasks/" + task.ID + "/result"

	direct, want := fetch(t, resultURL, "Sec-Fetch-Site", "same-origin")
	if direct.StatusCode != http.StatusOK || int64(len(want)) != done.Result.Bytes {
		t.Fatalf("GET result from the web page = %d, %d bytes; want 200 served by the api, %d bytes", direct.StatusCode, len(want), done.Result.Bytes)
	}
	resp, _ := fetch(t, resultURL)
	got, body := followPresigned(t, "GET result", resp, srv)
	if !bytes.Equal(body, want) {
		t.Errorf("presigned result: %d bytes, differ from the api's %d", len(body), len(want))
	}
	for _, h := range []string{"Content-Type", "Content-Disposition", "Cache-Control"} {
		if g, w := got.Header.Get(h), direct.Header.Get(h); g != w {
			t.Errorf("presigned result %s = %q, want the api's %q", h, g, w)
		}
	}
	if ct := got.Header.Get("Content-Type"); ct != "image/webp" {
		t.Errorf("presigned result Content-Type = %q, want image/webp", ct)
	}

	resp, _ = fetch(t, d.URL+"/api/v1/images/"+im.ID+"/content")
	_, body = followPresigned(t, "GET original", resp, srv)
	if !bytes.Equal(body, imgtest.Read(t, photo)) {
		t.Errorf("presigned original: %d bytes, differ from %s", len(body), photo)
	}

	svg := d.upload("formats/svg-logo.svg")
	resp, body = fetch(t, d.URL+"/api/v1/images/"+svg.ID+"/content")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, imgtest.Read(t, "formats/svg-logo.svg")) ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("GET SVG original = %d, CSP %q; want 200 from the api with its sandbox", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
}

// TestResultExpiry runs `imgd serve` on S3 with a 3 s IMGD_RESULT_TTL: a
// result is downloadable, then expires: GET result answers 410 expired,
// the task stays completed with error_code expired and no result_url, the
// result's object is gone from the bucket, and the original is untouched.
// The same periodic job sweeps a stale temporary object that appeared
// after the start.
func TestResultExpiry(t *testing.T) {
	srv := s3test.StartServer(t)
	prefix := s3test.Prefix(t)
	d := startDaemon(t, "serve", t.TempDir(), append(s3test.Env(), "IMGD_BLOB_URL="+srv.URLWithPrefix(prefix),
		"IMGD_RESULT_TTL=3s", "IMGD_WORKERS=1")...)
	// What a Put cut short by a crash leaves, once the process runs: the
	// periodic job, not the start-up sweep, must remove it.
	stale := filepath.Join(srv.Dir, s3test.Bucket, prefix, "tmp", "crashed-upload")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-25 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}

	const photo = "photos/jpeg-baseline-small.jpg"
	im := d.upload(photo)
	task := d.createTask(im.ID, `[{"op":"resize","width":64},{"op":"convert","format":"png"}]`)
	waitAllCompleted(t, d, []string{task.ID}, time.Minute)
	resultURL := d.URL + "/api/v1/tasks/" + task.ID + "/result"
	resp, result := fetch(t, resultURL)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET result before expiry = %d, want 200", resp.StatusCode)
	}
	sum := sha256.Sum256(result)
	resultFile := filepath.Join(srv.Dir, s3test.Bucket, prefix, "sha256", hex.EncodeToString(sum[:]))
	if _, err := os.Stat(resultFile); err != nil {
		t.Fatalf("result object before expiry: %v", err)
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, body := fetch(t, resultURL)
		if resp.StatusCode == http.StatusGone {
			var e struct {
				Error struct{ Code string } `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != string(imgd.CodeExpired) {
				t.Errorf("GET expired result = 410 %s, want error code expired", body)
			}
			break
		}
		if resp.StatusCode != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("GET result = %d %s, want 200 until it expires, then 410 (within 30 s)", resp.StatusCode, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var view struct {
		imgd.Task
		ResultURL string `json:"result_url"`
	}
	d.call("GET", "/api/v1/tasks/"+task.ID, nil, "", http.StatusOK, &view)
	if view.Status != imgd.TaskCompleted || view.ErrorCode != imgd.CodeExpired || view.Result != nil || view.ResultURL != "" {
		t.Errorf("expired task = %s, %q, result %+v, result_url %q; want completed, expired, no result, no result_url",
			view.Status, view.ErrorCode, view.Result, view.ResultURL)
	}
	if _, err := os.Stat(resultFile); !os.IsNotExist(err) {
		t.Errorf("result object after expiry: %v, want it deleted", err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("temporary object 25 h old, left while the server ran: %v, want it swept", err)
	}
	resp, body := fetch(t, d.URL+"/api/v1/images/"+im.ID+"/content")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, imgtest.Read(t, photo)) {
		t.Errorf("original after its result expired = %d, %d bytes; want 200 and the upload", resp.StatusCode, len(body))
	}
	// The same work again makes a new result: nothing reuses the expired one.
	again := d.createTask(im.ID, `[{"op":"resize","width":64},{"op":"convert","format":"png"}]`)
	waitAllCompleted(t, d, []string{again.ID}, time.Minute)
	if resp, body := fetch(t, d.URL+"/api/v1/tasks/"+again.ID+"/result"); resp.StatusCode != http.StatusOK || !bytes.Equal(body, result) {
		t.Errorf("result of the same task again = %d, %d bytes; want 200 and the same %d bytes", resp.StatusCode, len(body), len(result))
	}
}
