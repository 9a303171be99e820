package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/httpapi"
	"github.com/imgd/imgd/internal/metrics"
	"github.com/imgd/imgd/internal/service"
)

// taskCounter is what the SQL stores add to imgd.Store for
// imgd_queue_tasks.
type taskCounter interface {
	TaskCounts(ctx context.Context) (map[imgd.TaskStatus]int64, error)
}

// opsServer serves a second Server over e's service with the given
// metrics (nil: none) and readiness check (nil: the service's).
func opsServer(t *testing.T, e *env, m *metrics.Metrics, ready func(context.Context) error) string {
	t.Helper()
	if ready == nil {
		ready = e.Svc.Ready
	}
	api, err := httpapi.New(httpapi.Options{Store: e.Svc.Store, Blobs: e.Svc.Blobs, Engine: e.Svc.Engine, Hub: e.Svc.Hub,
		Ready: ready, Metrics: m})
	if err != nil {
		t.Fatalf("httpapi.New: %v", err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return srv.URL
}

// get sends a GET to url+path and returns the response with its body.
func get(t *testing.T, url, path string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	return fetch(t, "GET", url+path, nil, header)
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	resp, b := e.do("GET", "/healthz", nil, http.Header{"X-Request-ID": {"probe-1"}})
	if resp.StatusCode != http.StatusOK || string(b) != "{\"status\":\"ok\"}\n" {
		t.Fatalf("GET /healthz = %d %q, want 200 {\"status\":\"ok\"}", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET /healthz Content-Type = %q, want application/json", ct)
	}
	if id := resp.Header.Get("X-Request-ID"); id != "probe-1" {
		t.Errorf("GET /healthz X-Request-ID = %q, want the client's probe-1", id)
	}
	resp, b = e.do("POST", "/healthz", nil, nil)
	if resp.StatusCode != http.StatusMethodNotAllowed || errorCode(t, b) != "method_not_allowed" {
		t.Errorf("POST /healthz = %d %s, want 405 method_not_allowed", resp.StatusCode, b)
	}
}

// makeUnwritable makes the service's data directory refuse new files and
// returns the function that undoes it. As root, permissions stop nothing,
// so the blob store's temporary directory (which readiness also writes
// into) is replaced by a plain file instead.
func makeUnwritable(t *testing.T, e *env) (restore func()) {
	t.Helper()
	if err := os.Chmod(e.DataDir, 0o555); err != nil {
		t.Fatal(err)
	}
	probe, err := os.CreateTemp(e.DataDir, "probe-*")
	if err != nil { // permissions hold: not root
		return func() {
			if err := os.Chmod(e.DataDir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	probe.Close()
	os.Remove(probe.Name())
	if err := os.Chmod(e.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("running as uid %d: chmod does not stop writes, replacing %s/tmp by a file", os.Geteuid(), service.BlobDir)
	tmp := filepath.Join(e.DataDir, service.BlobDir, "tmp")
	if err := os.Rename(tmp, tmp+".saved"); err != nil {
		t.Fatalf("cannot make the data directory unwritable: %v", err)
	}
	if err := os.WriteFile(tmp, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.Remove(tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp+".saved", tmp); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	resp, b := e.do("GET", "/readyz", nil, nil)
	if resp.StatusCode != http.StatusOK || string(b) != "{\"status\":\"ready\"}\n" {
		t.Fatalf("GET /readyz = %d %q, want 200 {\"status\":\"ready\"}", resp.StatusCode, b)
	}

	restore := makeUnwritable(t, e)
	resp, b = e.do("GET", "/readyz", nil, nil)
	restore()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("GET /readyz with an unwritable data dir = %d %s, want 503", resp.StatusCode, b)
	}
	body := decode[struct {
		Status string `json:"status"`
		Error  struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}](t, b)
	if body.Status != "unavailable" || body.Error.Code != "unavailable" || !strings.Contains(body.Error.Message, "not writable") {
		t.Errorf("GET /readyz with an unwritable data dir: body %s, want status and code unavailable, a message saying what is not writable", b)
	}
	if errorCode(t, b) != "unavailable" { // the standard error shape holds too
		t.Errorf("GET /readyz: error code %q", errorCode(t, b))
	}
	if ra := resp.Header.Get("Retry-After"); ra != "1" {
		t.Errorf("GET /readyz 503: Retry-After = %q, want 1", ra)
	}

	resp, b = e.do("GET", "/readyz", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /readyz after restoring the data dir = %d %s, want 200", resp.StatusCode, b)
	}
}

// The readiness check gets a deadline of at most 2 s, so a hung
// dependency answers 503 in time for the orchestrator.
func TestReadyzDeadline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	deadline := make(chan time.Duration, 1)
	url := opsServer(t, e, nil, func(ctx context.Context) error {
		d, ok := ctx.Deadline()
		if !ok {
			deadline <- -1
		} else {
			deadline <- time.Until(d)
		}
		return imgd.Errorf(imgd.CodeUnavailable, "database: connection refused")
	})
	resp, b := get(t, url, "/readyz", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || errorCode(t, b) != "unavailable" ||
		!strings.Contains(string(b), "database: connection refused") {
		t.Errorf("GET /readyz with a failing check = %d %s, want 503 unavailable with the reason", resp.StatusCode, b)
	}
	if d := <-deadline; d <= 0 || d > 2*time.Second {
		t.Errorf("readiness check deadline in %s, want within (0, 2s]", d)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	m := metrics.New()
	tc, ok := e.Svc.Store.(taskCounter)
	if !ok {
		t.Fatalf("%T has no TaskCounts method", e.Svc.Store)
	}
	m.SetTaskCounter(tc.TaskCounts)
	url := opsServer(t, e, m, nil)

	for range 3 {
		if resp, _ := get(t, url, "/healthz", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /healthz: %d", resp.StatusCode)
		}
	}
	if resp, _ := get(t, url, "/no/such/route", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /no/such/route: %d, want 404", resp.StatusCode)
	}
	// A request body is counted as read, a response body as written.
	reqBody := `{"image_id":"0190aaaa-0000-7000-8000-000000000000","pipeline":[{"op":"grayscale"}]}`
	resp, err := http.Post(url+"/api/v1/tasks", "application/json", strings.NewReader(reqBody))
	if err != nil {
		t.Fatal(err)
	}
	respBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	taskRoute := `route="POST /api/v1/tasks"`
	taskStatus := resp.StatusCode
	if taskStatus == http.StatusNotFound && errorCode(t, respBody) == "not_found" && strings.Contains(string(respBody), "no route") {
		taskRoute = `route="unrouted"` // the tasks routes are not registered yet
	}

	resp2, b := get(t, url, "/metrics", nil)
	if resp2.StatusCode != http.StatusOK || !strings.HasPrefix(resp2.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics = %d %s", resp2.StatusCode, resp2.Header.Get("Content-Type"))
	}
	text := string(b)
	for _, want := range []string{
		`imgd_http_request_duration_seconds_count{code="200",route="GET /healthz"} 3`,
		`imgd_http_response_bytes_total{route="GET /healthz"} 48`, // 3 × {"status":"ok"}\n
		`imgd_http_request_bytes_total{route="GET /healthz"} 0`,
		fmt.Sprintf(`imgd_http_request_bytes_total{%s} %d`, taskRoute, len(reqBody)),
		fmt.Sprintf(`imgd_http_response_bytes_total{%s} %d`, taskRoute, len(respBody)),
		fmt.Sprintf(`imgd_http_request_duration_seconds_count{code="%d",%s} 1`, taskStatus, taskRoute),
		`imgd_queue_tasks{status="pending"} 0`,
		`imgd_queue_tasks{status="completed"} 0`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("GET /metrics lacks the line %q", want)
		}
	}
	if !strings.Contains(text, "\ngo_goroutines ") {
		t.Error("GET /metrics lacks the Go collector's go_goroutines")
	}
	if taskRoute == `route="unrouted"` {
		if !strings.Contains(text, `imgd_http_request_duration_seconds_count{code="404",route="unrouted"} 2`) {
			t.Errorf("GET /metrics lacks 2 unrouted 404s")
		}
	} else if !strings.Contains(text, `imgd_http_request_duration_seconds_count{code="404",route="unrouted"} 1`+"\n") {
		t.Errorf("GET /metrics lacks the unrouted 404")
	}
}

// imgd_queue_tasks counts the tasks of the database at each scrape.
func TestMetricsQueueTasks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	m := metrics.New()
	m.SetTaskCounter(e.Svc.Store.(taskCounter).TaskCounts)
	url := opsServer(t, e, m, nil)
	// The store takes the row as given; the engine never reads these bytes.
	im, _, err := e.Svc.Store.CreateImage(t.Context(), imageFor(t, e, []byte("queue metrics test")))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, _, err := e.Svc.Store.CreateTask(t.Context(), imgd.Task{ImageID: im.ID,
			Pipeline: imgd.MustParsePipeline(`[{"op":"grayscale"}]`)}); err != nil {
			t.Fatal(err)
		}
	}
	_, b := get(t, url, "/metrics", nil)
	for _, want := range []string{`imgd_queue_tasks{status="pending"} 2`, `imgd_queue_tasks{status="processing"} 0`} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("GET /metrics lacks %q", want)
		}
	}
}

func TestMetricsDisabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	url := opsServer(t, e, nil, nil)
	resp, b := get(t, url, "/metrics", nil)
	if resp.StatusCode != http.StatusNotFound || errorCode(t, b) != "not_found" {
		t.Errorf("GET /metrics without metrics = %d %s, want 404 not_found", resp.StatusCode, b)
	}
}

func TestOpenAPIRoute(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	want, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	resp, b := e.do("GET", "/api/v1/openapi.json", nil, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(b, want) {
		t.Fatalf("GET /api/v1/openapi.json = %d, %d bytes; want 200 and openapi.json's %d bytes", resp.StatusCode, len(b), len(want))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	resp, b = e.do("GET", "/api/v1/openapi.json", nil, http.Header{"If-None-Match": {etag}})
	if resp.StatusCode != http.StatusNotModified || len(b) != 0 {
		t.Errorf("GET /api/v1/openapi.json with If-None-Match = %d, %d bytes; want 304, empty", resp.StatusCode, len(b))
	}
}

// imageFor returns an image row for data whose blob is in e's blob store.
func imageFor(t *testing.T, e *env, data []byte) imgd.Image {
	t.Helper()
	key, n, err := e.Svc.Blobs.Put(t.Context(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	digest, err := imgd.ParseBlobKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return imgd.Image{Filename: "x.png", MediaType: "image/png", Format: imgd.FormatPNG, Width: 1, Height: 1, Frames: 1,
		Bytes: n, SHA256: digest, BlobKey: key}
}
