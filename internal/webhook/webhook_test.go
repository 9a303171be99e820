package webhook_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/engine"
	"github.com/imgd/imgd/internal/imgtest"
	"github.com/imgd/imgd/internal/service"
	_ "github.com/imgd/imgd/internal/store/sqlite" // registers the "sqlite" database/sql driver
	"github.com/imgd/imgd/internal/store/storetest"
	"github.com/imgd/imgd/internal/webhook"
)

const secret = "test-secret"

// retryDelays is the shortened schedule: 4 attempts.
var retryDelays = []time.Duration{20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond}

func TestMain(m *testing.M) {
	// Set before any worker is built or job inserted; never changed after.
	webhook.ClientTimeout = time.Second
	webhook.RetryDelays = retryDelays
	os.Exit(m.Run())
}

var resize = imgd.MustParsePipeline(`[{"op":"resize","width":64},{"op":"convert","format":"png"}]`)

// env is a real service (SQLite, blobs, River, libvips) on a temporary
// data directory, with one task worker and the webhook worker.
type env struct {
	t   *testing.T
	svc *service.Service
	dir string
	db  *sql.DB // a second connection to the database, to read River's jobs
}

type envOptions struct {
	secret       string
	allowPrivate bool
	noStart      bool   // open but start no worker yet
	databaseURL  string // "": SQLite in the data directory
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.WithoutCancel(t.Context())
	svc, err := service.Open(ctx, service.Options{DataDir: dir, DatabaseURL: o.databaseURL, Workers: 1, Migrate: true,
		Limits: engine.DefaultLimits(), Logger: log, WebhookSecret: o.secret, WebhookAllowPrivate: o.allowPrivate})
	if err != nil {
		t.Fatalf("service.Open: %v", err)
	}
	driver, dsn := "sqlite", "file:"+filepath.Join(dir, service.DBFile)+"?_pragma=busy_timeout(10000)"
	if o.databaseURL != "" {
		driver, dsn = "pgx", o.databaseURL
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, svc: svc, dir: dir, db: db}
	t.Cleanup(func() {
		stop, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := svc.Stop(stop); err != nil {
			t.Errorf("service.Stop: %v", err)
		}
		db.Close()
		if err := svc.Close(); err != nil {
			t.Errorf("service.Close: %v", err)
		}
	})
	if !o.noStart {
		e.start()
	}
	return e
}

func (e *env) start() {
	if err := e.svc.Start(context.WithoutCancel(e.t.Context())); err != nil {
		e.t.Fatalf("service.Start: %v", err)
	}
}

// upload stores a testdata file as a blob and an image row, as the API
// would, with the header the engine reads (fixed values for files it
// refuses, so that their tasks fail in the worker).
func (e *env) upload(rel string) imgd.Image {
	t := e.t
	t.Helper()
	data := imgtest.Read(t, rel)
	key, size, err := e.svc.Blobs.Put(t.Context(), bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Put(%s): %v", rel, err)
	}
	sum := sha256.Sum256(data)
	im := imgd.Image{Filename: filepath.Base(rel), MediaType: "image/jpeg", Format: imgd.FormatJPEG,
		Width: 640, Height: 427, Frames: 1, Bytes: size, SHA256: hex.EncodeToString(sum[:]), BlobKey: key}
	if info, err := e.svc.Engine.Probe(data); err == nil {
		im.MediaType, im.Format, im.Width, im.Height, im.Frames = info.MediaType, info.Format, info.Width, info.Height, info.Frames
	}
	im, _, err = e.svc.Store.CreateImage(t.Context(), im)
	if err != nil {
		t.Fatalf("CreateImage(%s): %v", rel, err)
	}
	return im
}

// task creates a task on a small photo whose webhook is url.
func (e *env) task(url string) imgd.Task {
	return e.taskOn(e.upload("photos/jpeg-baseline-small.jpg"), url)
}

func (e *env) taskOn(im imgd.Image, url string) imgd.Task {
	e.t.Helper()
	task, _, err := e.svc.Store.CreateTask(e.t.Context(), imgd.Task{ImageID: im.ID, Pipeline: resize, WebhookURL: url})
	if err != nil {
		e.t.Fatalf("CreateTask: %v", err)
	}
	return task
}

// waitFor polls cond until it holds, failing after 20 s with what.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func (e *env) waitFinal(id string) imgd.Task {
	e.t.Helper()
	var task imgd.Task
	waitFor(e.t, "task "+id+" final", func() bool {
		var err error
		if task, err = e.svc.Store.GetTask(e.t.Context(), id); err != nil {
			e.t.Fatalf("GetTask(%s): %v", id, err)
		}
		return task.Status.Final()
	})
	return task
}

func (e *env) deliveries(taskID string) []webhook.Delivery {
	e.t.Helper()
	ds, err := e.svc.WebhookDeliveries(e.t.Context(), taskID)
	if err != nil {
		e.t.Fatalf("WebhookDeliveries(%s): %v", taskID, err)
	}
	return ds
}

// waitDeliveries waits until the task has n delivery records.
func (e *env) waitDeliveries(taskID string, n int) []webhook.Delivery {
	e.t.Helper()
	var ds []webhook.Delivery
	waitFor(e.t, "delivery records", func() bool { ds = e.deliveries(taskID); return len(ds) >= n })
	if len(ds) != n {
		e.t.Fatalf("task %s has %d delivery records, want %d: %+v", taskID, len(ds), n, ds)
	}
	return ds
}

// jobStates returns the states of the task's webhook jobs.
func (e *env) jobStates(taskID string) []string {
	e.t.Helper()
	// ->> reads a JSON member on both SQLite and PostgreSQL.
	rows, err := e.db.QueryContext(e.t.Context(), `SELECT state FROM river_job WHERE kind = $1 AND args ->> 'task_id' = $2 ORDER BY id`,
		webhook.Kind, taskID)
	if err != nil {
		e.t.Fatalf("read webhook jobs: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// waitJobState waits until the task has exactly one webhook job, in state.
func (e *env) waitJobState(taskID, state string) {
	e.t.Helper()
	var got []string
	waitFor(e.t, "webhook job "+state, func() bool {
		got = e.jobStates(taskID)
		return len(got) == 1 && got[0] == state
	})
}

// receiver is a webhook receiver on 127.0.0.1 that answers with respond
// (200 when nil) and records each request and connection.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []request
	conns   atomic.Int32
	respond func(n int, w http.ResponseWriter, r *http.Request) // n: 1 for the first request
}

type request struct {
	method, path string
	header       http.Header
	body         []byte
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	rc := &receiver{respond: respond}
	rc.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, request{r.Method, r.URL.Path, r.Header.Clone(), body})
		n := len(rc.reqs)
		rc.mu.Unlock()
		if rc.respond != nil {
			rc.respond(n, w, r)
		}
	}))
	rc.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			rc.conns.Add(1)
		}
	}
	rc.Start()
	t.Cleanup(func() {
		rc.CloseClientConnections()
		rc.Close()
	})
	return rc
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.reqs...)
}

// event is the body as a receiver decodes it.
type event struct {
	ID   string    `json:"id"`
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	Task struct {
		ID         string          `json:"id"`
		Status     imgd.TaskStatus `json:"status"`
		ErrorCode  string          `json:"error_code"`
		WebhookURL string          `json:"webhook_url"`
		ResultURL  string          `json:"result_url"`
		Result     *struct {
			Format string `json:"format"`
			Width  int    `json:"width"`
		} `json:"result"`
		FinishedAt *time.Time `json:"finished_at"`
	} `json:"task"`
}

func TestDeliverSigned(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	e := newEnv(t, envOptions{secret: secret, allowPrivate: true})
	url := rc.URL + "/hooks/imgd?token=abc"
	task := e.task(url)
	final := e.waitFinal(task.ID)
	if final.Status != imgd.TaskCompleted {
		t.Fatalf("task %s is %s (%s), want completed", task.ID, final.Status, final.ErrorMessage)
	}
	ds := e.waitDeliveries(task.ID, 1)
	e.waitJobState(task.ID, "completed")

	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodPost || r.path != "/hooks/imgd" {
		t.Errorf("request %s %s, want POST /hooks/imgd", r.method, r.path)
	}
	for k, want := range map[string]string{"Content-Type": "application/json", "User-Agent": "imgd-webhook/1"} {
		if got := r.header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	sig := r.header.Get(webhook.SignatureHeader)
	if err := webhook.Verify(secret, sig, r.body, time.Minute); err != nil {
		t.Errorf("Verify(%q) = %v, want nil", sig, err)
	}
	if err := webhook.Verify("wrong", sig, r.body, time.Minute); !errors.Is(err, webhook.ErrSignatureMismatch) {
		t.Errorf("Verify(wrong secret) = %v, want ErrSignatureMismatch", err)
	}
	tampered := bytes.Replace(r.body, []byte(`"completed"`), []byte(`"failed"`), 1)
	if err := webhook.Verify(secret, sig, tampered, time.Minute); !errors.Is(err, webhook.ErrSignatureMismatch) {
		t.Errorf("Verify(tampered body) = %v, want ErrSignatureMismatch", err)
	}

	var ev event
	if err := json.Unmarshal(r.body, &ev); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	if ev.ID == "" || ev.ID != r.header.Get(webhook.EventIDHeader) {
		t.Errorf("event id %q, Imgd-Event-Id %q: want equal and non-empty", ev.ID, r.header.Get(webhook.EventIDHeader))
	}
	if ev.Type != "task.updated" {
		t.Errorf("event type %q, want task.updated", ev.Type)
	}
	if final.FinishedAt == nil || !ev.Time.Equal(*final.FinishedAt) {
		t.Errorf("event time %v, want the task's finished_at %v", ev.Time, final.FinishedAt)
	}
	if ev.Task.ID != task.ID || ev.Task.Status != imgd.TaskCompleted || ev.Task.WebhookURL != url {
		t.Errorf("event task = %+v, want id %s, completed, webhook %s", ev.Task, task.ID, url)
	}
	if want := "/api/v1/tasks/" + task.ID + "/result"; ev.Task.ResultURL != want {
		t.Errorf("result_url %q, want %q", ev.Task.ResultURL, want)
	}
	if ev.Task.Result == nil || ev.Task.Result.Format != "png" || ev.Task.Result.Width != 64 {
		t.Errorf("event task result = %+v, want png 64 wide", ev.Task.Result)
	}
	// The body is the task as encoded, fields and all.
	want, err := json.Marshal(webhook.Event{ID: ev.ID, Type: "task.updated", Time: *final.FinishedAt, Task: webhook.NewTaskJSON(final)})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.body, want) {
		t.Errorf("body\n%s\nwant\n%s", r.body, want)
	}

	d := ds[0]
	if d.TaskID != task.ID || d.URL != url || d.EventID != ev.ID || d.Attempt != 1 || d.StatusCode != 200 || d.Error != "" || d.ID == "" {
		t.Errorf("delivery record %+v, want task %s, url %s, event %s, attempt 1, 200, no error", d, task.ID, url, ev.ID)
	}
	if d.CreatedAt.IsZero() || d.DurationMS < 0 {
		t.Errorf("delivery record %+v: created_at and duration_ms not set", d)
	}
}

func TestRetryUntilSuccess(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= 2 {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
		}
	})
	e := newEnv(t, envOptions{secret: secret, allowPrivate: true})
	task := e.task(rc.URL)
	e.waitFinal(task.ID)
	ds := e.waitDeliveries(task.ID, 3)
	e.waitJobState(task.ID, "completed")

	reqs := rc.requests()
	if len(reqs) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(reqs))
	}
	for i, d := range ds {
		wantCode, wantErr := http.StatusServiceUnavailable, "503 Service Unavailable"
		if i == 2 {
			wantCode, wantErr = http.StatusOK, ""
		}
		if d.Attempt != i+1 || d.StatusCode != wantCode || !strings.Contains(d.Error, wantErr) || (wantErr == "") != (d.Error == "") {
			t.Errorf("delivery %d = %+v, want attempt %d, status %d, error with %q", i, d, i+1, wantCode, wantErr)
		}
		if d.EventID != ds[0].EventID {
			t.Errorf("delivery %d event %s, want the same event as the first, %s", i, d.EventID, ds[0].EventID)
		}
	}
	ok := 0
	for _, d := range ds {
		if d.OK() {
			ok++
		}
	}
	if ok != 1 {
		t.Errorf("%d successful deliveries, want 1", ok)
	}
	// Every attempt sends the same event; only the signature's time changes.
	for i, r := range reqs {
		if !bytes.Equal(r.body, reqs[0].body) {
			t.Errorf("attempt %d body differs from the first:\n%s\n%s", i+1, r.body, reqs[0].body)
		}
		if got := r.header.Get(webhook.EventIDHeader); got != ds[0].EventID {
			t.Errorf("attempt %d Imgd-Event-Id %q, want %q", i+1, got, ds[0].EventID)
		}
		if err := webhook.Verify(secret, r.header.Get(webhook.SignatureHeader), r.body, time.Minute); err != nil {
			t.Errorf("attempt %d: Verify = %v", i+1, err)
		}
	}
}

// TestFinalTwiceSendsOnce reports a task's final status again, as a rescued
// job running a second time or a racing API call would: one job, one
// delivery.
func TestFinalTwiceSendsOnce(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	e := newEnv(t, envOptions{secret: secret, allowPrivate: true})
	task := e.task(rc.URL)
	final := e.waitFinal(task.ID)
	e.waitDeliveries(task.ID, 1)
	e.waitJobState(task.ID, "completed")

	// The store keeps the first completion; a worker would report it again.
	again, err := e.svc.Store.CompleteTask(t.Context(), task.ID, *final.Result)
	if err != nil {
		t.Fatalf("CompleteTask again: %v", err)
	}
	e.svc.TaskUpdated(again)
	e.svc.TaskUpdated(final)
	if got := e.jobStates(task.ID); len(got) != 1 || got[0] != "completed" {
		t.Errorf("webhook jobs of task after reporting it final 3 times: %q, want one completed", got)
	}
	if n := len(rc.requests()); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
	if ds := e.deliveries(task.ID); len(ds) != 1 {
		t.Errorf("%d delivery records, want 1", len(ds))
	}
}

// TestFailedAndCanceled covers the other final statuses: a task whose image
// cannot be decoded fails in the worker; a task canceled before any worker
// runs is reported by the caller (the API does so for DELETE).
func TestFailedAndCanceled(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	e := newEnv(t, envOptions{secret: secret, allowPrivate: true, noStart: true})
	canceled := e.task(rc.URL + "/canceled")
	c, err := e.svc.Store.CancelTask(t.Context(), canceled.ID)
	if err != nil {
		t.Fatalf("CancelTask: %v", err)
	}
	e.svc.TaskUpdated(c)
	failed := e.taskOn(e.upload("bad/truncated-baseline-50pct.jpg"), rc.URL+"/failed")
	noHook := e.task("")
	e.start()

	if got := e.waitFinal(failed.ID); got.Status != imgd.TaskFailed {
		t.Fatalf("task on a truncated image is %s, want failed", got.Status)
	}
	e.waitFinal(noHook.ID)
	e.waitDeliveries(canceled.ID, 1)
	e.waitDeliveries(failed.ID, 1)
	byPath := map[string]event{}
	for _, r := range rc.requests() {
		var ev event
		if err := json.Unmarshal(r.body, &ev); err != nil {
			t.Fatal(err)
		}
		byPath[r.path] = ev
	}
	if len(byPath) != 2 {
		t.Fatalf("receiver got %d distinct requests, want 2 (canceled, failed)", len(byPath))
	}
	if ev := byPath["/canceled"]; ev.Task.ID != canceled.ID || ev.Task.Status != imgd.TaskCanceled || ev.Task.ErrorCode != "canceled" || ev.Task.ResultURL != "" {
		t.Errorf("canceled event task = %+v", ev.Task)
	}
	if ev := byPath["/failed"]; ev.Task.ID != failed.ID || ev.Task.Status != imgd.TaskFailed || ev.Task.ErrorCode == "" || ev.Task.Result != nil {
		t.Errorf("failed event task = %+v", ev.Task)
	}
	if got := e.jobStates(noHook.ID); len(got) != 0 {
		t.Errorf("task without webhook has webhook jobs %q", got)
	}
}

// TestForbiddenTarget: with private addresses not allowed, a receiver on
// loopback gets no connection at all; the attempt is recorded and not
// retried.
func TestForbiddenTarget(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	e := newEnv(t, envOptions{secret: secret})
	_, port, _ := net.SplitHostPort(rc.Listener.Addr().String())
	const notAllowed = "is not allowed for webhooks"
	tests := []struct{ url, err1, err2 string }{
		{rc.URL + "/hook", notAllowed, "127.0.0.1"},
		{"http://localhost:" + port + "/hook", notAllowed, ""}, // 127.0.0.1 or ::1
		{"http://[::ffff:127.0.0.1]:" + port + "/hook", notAllowed, "127.0.0.1"},
		{"http://[::1]:" + port + "/hook", notAllowed, "::1"},
		// The API accepts only http(s) URLs; the worker checks again.
		{"file:///etc/passwd", "not an absolute http(s) URL", ""},
		{"http:///no-host", "not an absolute http(s) URL", ""},
	}
	im := e.upload("photos/jpeg-baseline-small.jpg")
	var tasks []imgd.Task
	for _, tc := range tests {
		tasks = append(tasks, e.taskOn(im, tc.url))
	}
	for i, task := range tasks {
		e.waitFinal(task.ID)
		ds := e.waitDeliveries(task.ID, 1)
		e.waitJobState(task.ID, "cancelled")
		d := ds[0]
		if d.StatusCode != 0 || d.Attempt != 1 || !strings.Contains(d.Error, tests[i].err1) || !strings.Contains(d.Error, tests[i].err2) {
			t.Errorf("%s: delivery %+v, want status 0, attempt 1, error with %q and %q", tests[i].url, d, tests[i].err1, tests[i].err2)
		}
	}
	if n := rc.conns.Load(); n != 0 {
		t.Errorf("receiver saw %d connections, want 0", n)
	}
	if n := len(rc.requests()); n != 0 {
		t.Errorf("receiver got %d requests, want 0", n)
	}
}

// TestGiveUp: a receiver that always fails gets every attempt of the
// schedule, then no more; redirects are answers, not followed.
func TestGiveUp(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int32
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/gone":
			http.Error(w, "no such hook", http.StatusNotFound)
		case "/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/elsewhere":
			elsewhere.Add(1)
		}
	})
	e := newEnv(t, envOptions{secret: secret, allowPrivate: true})
	im := e.upload("photos/jpeg-baseline-small.jpg")
	gone, moved := e.taskOn(im, rc.URL+"/gone"), e.taskOn(im, rc.URL+"/moved")
	attempts := len(retryDelays) + 1
	for _, tc := range []struct {
		task imgd.Task
		code int
	}{{gone, http.StatusNotFound}, {moved, http.StatusFound}} {
		e.waitFinal(tc.task.ID)
		e.waitJobState(tc.task.ID, "discarded")
		ds := e.waitDeliveries(tc.task.ID, attempts)
		for i, d := range ds {
			if d.Attempt != i+1 || d.StatusCode != tc.code || d.Error == "" {
				t.Errorf("task %s delivery %d = %+v, want attempt %d, status %d, an error", tc.task.WebhookURL, i, d, i+1, tc.code)
			}
		}
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("redirect target got %d requests, want 0", n)
	}
	if n := len(rc.requests()); n != 2*attempts {
		t.Errorf("receiver got %d requests, want %d", n, 2*attempts)
	}
}

// TestTimeout: a receiver slower than ClientTimeout is an attempt without a
// status; the next attempt succeeds.
func TestTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			select {
			case <-r.Context().Done(): // the client gave up
			case <-release:
			}
		}
	})
	e := newEnv(t, envOptions{secret: secret, allowPrivate: true})
	task := e.task(rc.URL)
	e.waitFinal(task.ID)
	ds := e.waitDeliveries(task.ID, 2)
	e.waitJobState(task.ID, "completed")
	if d := ds[0]; d.StatusCode != 0 || !strings.Contains(d.Error, "no response within 1s") || d.DurationMS < webhook.ClientTimeout.Milliseconds() {
		t.Errorf("first delivery %+v, want no status, a client timeout, at least %v", d, webhook.ClientTimeout)
	}
	if d := ds[1]; d.StatusCode != http.StatusOK || d.Attempt != 2 {
		t.Errorf("second delivery %+v, want 200 on attempt 2", d)
	}
}

// TestUnsigned: without a secret, deliveries carry no signature.
func TestUnsigned(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	e := newEnv(t, envOptions{allowPrivate: true})
	task := e.task(rc.URL)
	e.waitFinal(task.ID)
	e.waitDeliveries(task.ID, 1)
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	if sig, ok := reqs[0].header[webhook.SignatureHeader]; ok {
		t.Errorf("unsigned delivery has %s: %q", webhook.SignatureHeader, sig)
	}
	if reqs[0].header.Get(webhook.EventIDHeader) == "" {
		t.Errorf("unsigned delivery has no %s", webhook.EventIDHeader)
	}
}

// TestDeliveriesDeletedWithTask: deleting the image deletes its tasks and
// their delivery records.
func TestDeliveriesDeletedWithTask(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	e := newEnv(t, envOptions{secret: secret, allowPrivate: true})
	task := e.task(rc.URL)
	e.waitFinal(task.ID)
	e.waitDeliveries(task.ID, 1)
	if _, err := e.svc.Store.DeleteImage(t.Context(), task.ImageID); err != nil {
		t.Fatalf("DeleteImage: %v", err)
	}
	if ds := e.deliveries(task.ID); len(ds) != 0 {
		t.Errorf("after deleting the image, task has %d delivery records, want 0", len(ds))
	}
	var n int
	if err := e.db.QueryRowContext(t.Context(), `SELECT count(*) FROM webhook_deliveries`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("webhook_deliveries has %d rows, want 0", n)
	}
}

// TestPostgres runs a retried delivery, a repeated final status and the
// cascade on PostgreSQL: the same SQL and River unique jobs as on SQLite.
func TestPostgres(t *testing.T) {
	t.Parallel()
	dbURL := storetest.PostgresURL(t) // registers the schema's drop first: it runs last
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			http.Error(w, "not yet", http.StatusBadGateway)
		}
	})
	e := newEnv(t, envOptions{secret: secret, allowPrivate: true, databaseURL: dbURL})
	task := e.task(rc.URL)
	final := e.waitFinal(task.ID)
	ds := e.waitDeliveries(task.ID, 2)
	e.waitJobState(task.ID, "completed")
	if ds[0].StatusCode != http.StatusBadGateway || ds[0].Attempt != 1 || ds[1].StatusCode != http.StatusOK || ds[1].Attempt != 2 {
		t.Errorf("deliveries %+v, want 502 on attempt 1, 200 on attempt 2", ds)
	}
	e.svc.TaskUpdated(final)
	if got := e.jobStates(task.ID); len(got) != 1 {
		t.Errorf("webhook jobs after a repeated final status: %q, want one", got)
	}
	reqs := rc.requests()
	if len(reqs) != 2 {
		t.Fatalf("receiver got %d requests, want 2", len(reqs))
	}
	if err := webhook.Verify(secret, reqs[1].header.Get(webhook.SignatureHeader), reqs[1].body, time.Minute); err != nil {
		t.Errorf("Verify = %v", err)
	}
	if _, err := e.svc.Store.DeleteImage(t.Context(), task.ImageID); err != nil {
		t.Fatalf("DeleteImage: %v", err)
	}
	if ds := e.deliveries(task.ID); len(ds) != 0 {
		t.Errorf("after deleting the image, %d delivery records, want 0", len(ds))
	}
}
