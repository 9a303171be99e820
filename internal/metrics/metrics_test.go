package metrics_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/metrics"
)

// scrape serves one scrape of m in the Prometheus text format and returns
// its samples, "name{labels}" → value as written.
func scrape(t *testing.T, m *metrics.Metrics) map[string]string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: status %d, body %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("scrape: Content-Type %q, want text/plain", ct)
	}
	samples := map[string]string{}
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("scrape: malformed line %q", line)
		}
		samples[line[:i]] = line[i+1:]
	}
	return samples
}

// wantSamples checks that every sample in want has exactly its value.
func wantSamples(t *testing.T, got map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("sample %s missing (want %s)", k, v)
		case g != v:
			t.Errorf("sample %s = %s, want %s", k, g, v)
		}
	}
}

// withPrefix returns the sample names starting with prefix.
func withPrefix(samples map[string]string, prefix string) []string {
	var out []string
	for k := range samples {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out
}

func TestNilMetricsRecordNothing(t *testing.T) {
	t.Parallel()
	var m *metrics.Metrics
	m.ObserveHTTP("GET /x", 200, time.Second)
	m.AddHTTPBytes("GET /x", 1, 2)
	m.TaskUpdated(imgd.Task{Status: imgd.TaskCompleted})
	m.SetTaskCounter(func(context.Context) (map[imgd.TaskStatus]int64, error) { return nil, nil })
	m.SetLogger(nil)
	if m.Registry() != nil {
		t.Error("nil Metrics: Registry() != nil")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("nil Metrics: Handler status %d, want 404", rec.Code)
	}
}

func TestHTTPMetrics(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.ObserveHTTP("GET /api/v1/tasks/{id}", 200, 3*time.Millisecond)
	m.ObserveHTTP("GET /api/v1/tasks/{id}", 200, 2*time.Second)
	m.ObserveHTTP("GET /api/v1/tasks/{id}", 404, 500*time.Microsecond)
	m.ObserveHTTP("unrouted", 404, time.Millisecond)
	m.AddHTTPBytes("POST /api/v1/images", 1000, 250)
	m.AddHTTPBytes("POST /api/v1/images", 24, 0)
	m.AddHTTPBytes("GET /healthz", 0, 16)

	got := scrape(t, m)
	const ok = `imgd_http_request_duration_seconds_bucket{code="200",route="GET /api/v1/tasks/{id}",le=`
	const nf = `imgd_http_request_duration_seconds_bucket{code="404",route="GET /api/v1/tasks/{id}",le=`
	wantSamples(t, got, map[string]string{
		ok + `"0.001"}`:  "0",
		ok + `"0.0025"}`: "0",
		ok + `"0.005"}`:  "1",
		ok + `"1"}`:      "1",
		ok + `"2.5"}`:    "2",
		ok + `"300"}`:    "2",
		ok + `"+Inf"}`:   "2",
		`imgd_http_request_duration_seconds_count{code="200",route="GET /api/v1/tasks/{id}"}`: "2",
		`imgd_http_request_duration_seconds_sum{code="200",route="GET /api/v1/tasks/{id}"}`:   "2.003",
		nf + `"0.001"}`: "1",
		`imgd_http_request_duration_seconds_count{code="404",route="GET /api/v1/tasks/{id}"}`: "1",
		`imgd_http_request_duration_seconds_count{code="404",route="unrouted"}`:               "1",
		`imgd_http_request_bytes_total{route="POST /api/v1/images"}`:                          "1024",
		`imgd_http_response_bytes_total{route="POST /api/v1/images"}`:                         "250",
		`imgd_http_request_bytes_total{route="GET /healthz"}`:                                 "0",
		`imgd_http_response_bytes_total{route="GET /healthz"}`:                                "16",
	})
	// 17 buckets from 1 ms to 5 min, plus +Inf.
	if n := len(withPrefix(got, ok)); n != len(metrics.Buckets)+1 {
		t.Errorf("%d buckets for one series, want %d", n, len(metrics.Buckets)+1)
	}
	if metrics.Buckets[0] != 0.001 || metrics.Buckets[len(metrics.Buckets)-1] != 300 {
		t.Errorf("Buckets = %v, want 0.001 … 300", metrics.Buckets)
	}
	// The Go runtime and process collectors are on the same registry.
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := got[name]; !ok {
			t.Errorf("sample %s missing: Go or process collector not registered", name)
		}
	}
}

func TestTaskMetrics(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := created.Add(d); return &v }
	resize := imgd.MustParsePipeline(`[{"op":"resize","width":10},{"op":"convert","format":"png"}]`)
	long := imgd.MustParsePipeline(`[{"op":"grayscale"},{"op":"flip"},{"op":"rotate","angle":90},{"op":"grayscale"},{"op":"flip"}]`)

	// First attempt starts after 1.5 s in the queue; a retry's start is
	// not queue wait.
	m.TaskUpdated(imgd.Task{Pipeline: resize, Status: imgd.TaskProcessing, Attempt: 1, CreatedAt: created, StartedAt: at(1500 * time.Millisecond)})
	m.TaskUpdated(imgd.Task{Pipeline: resize, Status: imgd.TaskProcessing, Attempt: 2, CreatedAt: created, StartedAt: at(30 * time.Second)})
	// Pending and processing changes count no task.
	m.TaskUpdated(imgd.Task{Pipeline: resize, Status: imgd.TaskPending, Attempt: 1, CreatedAt: created})
	// Completed after 2 s of work.
	m.TaskUpdated(imgd.Task{Pipeline: resize, Status: imgd.TaskCompleted, Attempt: 1, CreatedAt: created,
		StartedAt: at(time.Second), FinishedAt: at(3 * time.Second)})
	// Reused: completed without an attempt, timed from creation.
	m.TaskUpdated(imgd.Task{Pipeline: resize, Status: imgd.TaskCompleted, Attempt: 0, CreatedAt: created,
		FinishedAt: at(20 * time.Millisecond)})
	// Failed twice with a code, once without (counted as internal).
	for _, code := range []imgd.Code{imgd.CodeUnsupported, imgd.CodeUnsupported, ""} {
		m.TaskUpdated(imgd.Task{Pipeline: long, Status: imgd.TaskFailed, Attempt: 3, ErrorCode: code, CreatedAt: created,
			StartedAt: at(time.Minute), FinishedAt: at(time.Minute + 250*time.Millisecond)})
	}
	// Canceled while pending.
	m.TaskUpdated(imgd.Task{Pipeline: resize, Status: imgd.TaskCanceled, CreatedAt: created, FinishedAt: at(10 * time.Second)})

	got := scrape(t, m)
	wantSamples(t, got, map[string]string{
		`imgd_task_queue_wait_seconds_count`:                                                        "1",
		`imgd_task_queue_wait_seconds_sum`:                                                          "1.5",
		`imgd_task_queue_wait_seconds_bucket{le="1"}`:                                               "0",
		`imgd_task_queue_wait_seconds_bucket{le="2.5"}`:                                             "1",
		`imgd_task_duration_seconds_count{op="resize+convert",outcome="completed"}`:                 "1",
		`imgd_task_duration_seconds_sum{op="resize+convert",outcome="completed"}`:                   "2",
		`imgd_task_duration_seconds_count{op="resize+convert",outcome="reused"}`:                    "1",
		`imgd_task_duration_seconds_sum{op="resize+convert",outcome="reused"}`:                      "0.02",
		`imgd_task_duration_seconds_bucket{op="resize+convert",outcome="reused",le="0.025"}`:        "1",
		`imgd_task_duration_seconds_bucket{op="resize+convert",outcome="reused",le="0.01"}`:         "0",
		`imgd_task_duration_seconds_count{op="grayscale+flip+rotate+grayscale+…",outcome="failed"}`: "3",
		`imgd_task_duration_seconds_sum{op="grayscale+flip+rotate+grayscale+…",outcome="failed"}`:   "0.75",
		`imgd_task_duration_seconds_count{op="resize+convert",outcome="canceled"}`:                  "1",
		`imgd_task_duration_seconds_sum{op="resize+convert",outcome="canceled"}`:                    "10",
		`imgd_tasks_total{outcome="completed"}`:                                                     "1",
		`imgd_tasks_total{outcome="reused"}`:                                                        "1",
		`imgd_tasks_total{outcome="failed"}`:                                                        "3",
		`imgd_tasks_total{outcome="canceled"}`:                                                      "1",
		`imgd_engine_errors_total{code="unsupported_image"}`:                                        "2",
		`imgd_engine_errors_total{code="internal"}`:                                                 "1",
	})
	if n := len(withPrefix(got, "imgd_tasks_total")); n != 4 {
		t.Errorf("%d imgd_tasks_total series, want 4 (completed, reused, failed, canceled)", n)
	}
	if n := len(withPrefix(got, "imgd_engine_errors_total")); n != 2 {
		t.Errorf("%d imgd_engine_errors_total series, want 2", n)
	}
}

func TestOpLabel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ pipeline, want string }{
		{`[{"op":"grayscale"}]`, "grayscale"},
		{`[{"op":"resize","width":1},{"op":"crop","width":1,"height":1},{"op":"flip"},{"op":"convert","format":"png"}]`,
			"resize+crop+flip+convert"},
		{`[{"op":"flip"},{"op":"flip"},{"op":"flip"},{"op":"flip"},{"op":"flip"},{"op":"flip"}]`, "flip+flip+flip+flip+…"},
	} {
		if got := metrics.OpLabel(imgd.MustParsePipeline(tc.pipeline)); got != tc.want {
			t.Errorf("OpLabel(%s) = %q, want %q", tc.pipeline, got, tc.want)
		}
	}
	if got := metrics.OpLabel(nil); got != "none" {
		t.Errorf("OpLabel(nil) = %q, want none", got)
	}
}

func TestQueueTasks(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	if n := len(withPrefix(scrape(t, m), "imgd_queue_tasks")); n != 0 {
		t.Errorf("without a task counter: %d imgd_queue_tasks samples, want 0", n)
	}

	var deadline time.Duration
	m.SetTaskCounter(func(ctx context.Context) (map[imgd.TaskStatus]int64, error) {
		d, ok := ctx.Deadline()
		if !ok {
			t.Error("task counter called without a deadline")
		}
		deadline = time.Until(d)
		return map[imgd.TaskStatus]int64{imgd.TaskPending: 3, imgd.TaskCompleted: 12, "bogus": 7}, nil
	})
	got := scrape(t, m)
	wantSamples(t, got, map[string]string{
		`imgd_queue_tasks{status="pending"}`:               "3",
		`imgd_queue_tasks{status="processing"}`:            "0",
		`imgd_queue_tasks{status="completed"}`:             "12",
		`imgd_queue_tasks{status="completed_with_errors"}`: "0",
		`imgd_queue_tasks{status="failed"}`:                "0",
		`imgd_queue_tasks{status="canceled"}`:              "0",
	})
	if n := len(withPrefix(got, "imgd_queue_tasks")); n != 6 {
		t.Errorf("%d imgd_queue_tasks samples, want 6 (one per status, no unknown ones)", n)
	}
	if deadline <= 0 || deadline > metrics.QueueTimeout {
		t.Errorf("task counter deadline in %s, want within (0, %s]", deadline, metrics.QueueTimeout)
	}

	// A failing count leaves the metric out, keeps the rest of the scrape
	// and is logged.
	var logs bytes.Buffer
	m.SetLogger(slog.New(slog.NewTextHandler(&logs, nil)))
	m.SetTaskCounter(func(context.Context) (map[imgd.TaskStatus]int64, error) {
		return nil, errors.New("database is down")
	})
	m.ObserveHTTP("GET /healthz", 200, time.Millisecond)
	got = scrape(t, m)
	if n := len(withPrefix(got, "imgd_queue_tasks")); n != 0 {
		t.Errorf("failing task counter: %d imgd_queue_tasks samples, want 0", n)
	}
	if _, ok := got[`imgd_http_request_duration_seconds_count{code="200",route="GET /healthz"}`]; !ok {
		t.Error("failing task counter: other metrics missing from the scrape")
	}
	if !strings.Contains(logs.String(), "database is down") {
		t.Errorf("failing task counter not logged; log: %q", logs.String())
	}

	m.SetTaskCounter(nil)
	if n := len(withPrefix(scrape(t, m), "imgd_queue_tasks")); n != 0 {
		t.Errorf("after SetTaskCounter(nil): %d imgd_queue_tasks samples, want 0", n)
	}
}

// Two Metrics in one process do not share series (no global registry).
func TestMetricsAreIndependent(t *testing.T) {
	t.Parallel()
	a, b := metrics.New(), metrics.New()
	a.ObserveHTTP("GET /only-a", 200, time.Millisecond)
	if n := len(withPrefix(scrape(t, b), `imgd_http_request_duration_seconds_count{code="200",route="GET /only-a"}`)); n != 0 {
		t.Error("a series observed on one Metrics shows up on another")
	}
}
