package worker_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/blob/fileblob"
	"github.com/imgd/imgd/internal/engine"
	"github.com/imgd/imgd/internal/events"
	"github.com/imgd/imgd/internal/imgtest"
	"github.com/imgd/imgd/internal/queue"
	"github.com/imgd/imgd/internal/store/sqlite"
	"github.com/imgd/imgd/internal/worker"
)

var testEngine *engine.Engine

func TestMain(m *testing.M) {
	var err error
	if testEngine, err = engine.New(engine.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, "worker tests: cannot start libvips:", err)
		os.Exit(1)
	}
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		// River clients and databases are stopped in t.Cleanup: nothing may
		// outlive the tests. Give exiting goroutines a moment.
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			fmt.Fprintf(os.Stderr, "goroutine leak: %d before, %d after\n%s\n", before, n, buf[:runtime.Stack(buf, true)])
			code = 1
		}
	}
	os.Exit(code)
}

const (
	photo     = "photos/jpeg-baseline-small.jpg" // 640x427
	truncated = "bad/truncated-baseline-50pct.jpg"
)

var resize300 = imgd.MustParsePipeline(`[{"op":"resize","width":300},{"op":"convert","format":"webp"}]`)

// env is one test's real components: SQLite and files in t.TempDir(), the
// package's engine, a hub, and a worker over blobs (possibly a fault double
// around the real blob store).
type env struct {
	store  *sqlite.Store
	files  *fileblob.Store // the real blob store
	blobs  imgd.BlobStore  // what the worker uses
	hub    *events.Hub
	worker *worker.Worker
	log    *slog.Logger
}

func newEnv(t *testing.T, wrap func(imgd.BlobStore) imgd.BlobStore) *env {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := sqlite.Open(t.Context(), sqlite.Options{Path: filepath.Join(dir, "imgd.db")})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	files, err := fileblob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatalf("fileblob.Open: %v", err)
	}
	e := &env{store: s, files: files, blobs: files, hub: events.New(events.Options{}), log: log}
	if wrap != nil {
		e.blobs = wrap(files)
	}
	e.worker, err = worker.New(worker.Options{Store: s, Blobs: e.blobs, Engine: testEngine, Hub: e.hub, Logger: log, Timeout: time.Minute})
	if err != nil {
		t.Fatalf("worker.New: %v", err)
	}
	return e
}

// fastRetry retries at once, so tests do not wait for River's backoff.
type fastRetry struct{}

func (fastRetry) NextRetry(*rivertype.JobRow) time.Time { return time.Now() }

// startRiver starts a River client on the store's database working e's
// worker; it is stopped in t.Cleanup.
func (e *env) startRiver(t *testing.T) *river.Client[*sql.Tx] {
	t.Helper()
	workers := river.NewWorkers()
	river.AddWorker(workers, e.worker)
	client, err := river.NewClient(e.store.Driver(), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
		Workers:           workers,
		FetchCooldown:     10 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		RetryPolicy:       fastRetry{},
		TestOnly:          true,
		Logger:            slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatalf("river.NewClient: %v", err)
	}
	if err := client.Start(t.Context()); err != nil {
		t.Fatalf("start River: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := client.Stop(ctx); err != nil {
			t.Errorf("stop River: %v", err)
		}
	})
	return client
}

// upload stores the testdata file rel as a blob and an image row, with
// its header as the engine reads it (fixed values for files it refuses).
func (e *env) upload(t *testing.T, rel string) imgd.Image {
	t.Helper()
	data := imgtest.Read(t, rel)
	key, size, err := e.files.Put(t.Context(), bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Put(%s): %v", rel, err)
	}
	sum := sha256.Sum256(data)
	im := imgd.Image{Filename: filepath.Base(rel), MediaType: "image/jpeg", Format: imgd.FormatJPEG,
		Width: 640, Height: 427, Frames: 1, Bytes: size, SHA256: hex.EncodeToString(sum[:]), BlobKey: key}
	if info, err := testEngine.Probe(data); err == nil {
		im.MediaType, im.Format, im.Width, im.Height, im.Frames = info.MediaType, info.Format, info.Width, info.Height, info.Frames
	}
	im, _, err = e.store.CreateImage(t.Context(), im)
	if err != nil {
		t.Fatalf("CreateImage(%s): %v", rel, err)
	}
	return im
}

func (e *env) createTask(t *testing.T, im imgd.Image, p imgd.Pipeline) imgd.Task {
	t.Helper()
	task, _, err := e.store.CreateTask(t.Context(), imgd.Task{ImageID: im.ID, Pipeline: p})
	if err != nil {
		t.Fatalf("CreateTask(image %s): %v", im.ID, err)
	}
	return task
}

func (e *env) getTask(t *testing.T, id string) imgd.Task {
	t.Helper()
	task, err := e.store.GetTask(t.Context(), id)
	if err != nil {
		t.Fatalf("GetTask(%s): %v", id, err)
	}
	return task
}

// waitFinal polls the task until it is final, failing after a deadline.
func (e *env) waitFinal(t *testing.T, id string) imgd.Task {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		task := e.getTask(t, id)
		if task.Status.Final() {
			return task
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s still %s (attempt %d, %s) after 30 s", id, task.Status, task.Attempt, task.ErrorCode)
		}
		<-tick.C
	}
}

// statuses reads the hub until the task has reached a final status in its
// events and returns the statuses in order; it fails after a deadline.
func statuses(t *testing.T, ch <-chan events.Event, taskID string) []imgd.TaskStatus {
	t.Helper()
	var got []imgd.TaskStatus
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("event channel closed after %v", got)
			}
			if ev.Type != events.TypeTaskUpdated || ev.TaskID != taskID {
				continue
			}
			st := imgd.TaskStatus(ev.Status)
			got = append(got, st)
			if st.Final() {
				return got
			}
		case <-timeout:
			t.Fatalf("task %s: events %v, no final status within 30 s", taskID, got)
		}
	}
}

func fetch(t *testing.T, b imgd.BlobStore, key string) []byte {
	t.Helper()
	rc, _, err := b.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return data
}

func TestCompletesThenReusesIdenticalWork(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	evs, _ := e.hub.Subscribe(t.Context(), events.Live)
	e.startRiver(t)

	first := e.createTask(t, e.upload(t, photo), resize300)
	if got, want := fmt.Sprint(statuses(t, evs, first.ID)), "[processing completed]"; got != want {
		t.Errorf("events of task 1 = %s, want %s", got, want)
	}
	done := e.waitFinal(t, first.ID)
	if done.Status != imgd.TaskCompleted || done.Attempt != 1 || done.Result == nil {
		t.Fatalf("task 1 = %s attempt %d result %v, want completed attempt 1 with a result", done.Status, done.Attempt, done.Result)
	}
	r := done.Result
	data := fetch(t, e.files, r.BlobKey)
	info, err := testEngine.Probe(data)
	if err != nil {
		t.Fatalf("Probe(result): %v", err)
	}
	if info.Format != imgd.FormatWebP || info.Width != 300 || info.Height != 200 {
		t.Errorf("result decodes as %s %dx%d, want webp 300x200", info.Format, info.Width, info.Height)
	}
	if r.Format != imgd.FormatWebP || r.MediaType != "image/webp" || r.Width != 300 || r.Height != 200 || r.Bytes != int64(len(data)) {
		t.Errorf("Result = %+v, want webp image/webp 300x200 %d bytes", *r, len(data))
	}

	// The same bytes uploaded again (another image row), the same pipeline:
	// the stored result is reused; the task never starts, so the engine
	// never runs for it.
	second := e.createTask(t, e.upload(t, photo), resize300)
	if got, want := fmt.Sprint(statuses(t, evs, second.ID)), "[completed]"; got != want {
		t.Errorf("events of task 2 = %s, want %s (no processing: reused)", got, want)
	}
	reused := e.waitFinal(t, second.ID)
	if reused.Status != imgd.TaskCompleted || reused.Result == nil || reused.Result.BlobKey != r.BlobKey {
		t.Fatalf("task 2 = %s result %v, want completed with blob %s", reused.Status, reused.Result, r.BlobKey)
	}
	if reused.Attempt != 0 || reused.StartedAt != nil {
		t.Errorf("task 2 attempt %d started %v, want attempt 0 and never started (reuse, no engine run)", reused.Attempt, reused.StartedAt)
	}
}

func TestBadImageFailsAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	client := e.startRiver(t)
	task := e.createTask(t, e.upload(t, truncated), resize300)
	got := e.waitFinal(t, task.ID)
	if got.Status != imgd.TaskFailed || got.ErrorCode != imgd.CodeUnsupported || got.Attempt != 1 || got.ErrorMessage == "" {
		t.Errorf("task = %s code %q attempt %d message %q; want failed unsupported_image attempt 1 with a message",
			got.Status, got.ErrorCode, got.Attempt, got.ErrorMessage)
	}
	// The job is cancelled, not left to retry.
	deadline := time.Now().Add(10 * time.Second)
	for {
		job, err := client.JobGet(t.Context(), task.JobID)
		if err != nil {
			t.Fatalf("JobGet(%d): %v", task.JobID, err)
		}
		if job.State == rivertype.JobStateCancelled {
			if job.Attempt != 1 {
				t.Errorf("job attempt = %d, want 1", job.Attempt)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job state %s after 10 s, want cancelled", job.State)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// faultBlobs is a real blob store with faults injected on demand.
type faultBlobs struct {
	imgd.BlobStore
	mu    sync.Mutex
	gets  int
	onGet func(ctx context.Context, n int) error // before delegating; n counts from 1
	onPut func(key string)                       // after a successful Put
}

func (f *faultBlobs) Get(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	f.mu.Lock()
	f.gets++
	n := f.gets
	f.mu.Unlock()
	if f.onGet != nil {
		if err := f.onGet(ctx, n); err != nil {
			return nil, 0, err
		}
	}
	return f.BlobStore.Get(ctx, key)
}

func (f *faultBlobs) Put(ctx context.Context, r io.Reader) (string, int64, error) {
	key, size, err := f.BlobStore.Put(ctx, r)
	if err == nil && f.onPut != nil {
		f.onPut(key)
	}
	return key, size, err
}

var errDown = &imgd.Error{Code: imgd.CodeUnavailable, Message: "blob store unreachable"}

func TestTransientFailureIsRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(b imgd.BlobStore) imgd.BlobStore {
		return &faultBlobs{BlobStore: b, onGet: func(_ context.Context, n int) error {
			if n == 1 {
				return errDown
			}
			return nil
		}}
	})
	evs, _ := e.hub.Subscribe(t.Context(), events.Live)
	e.startRiver(t)
	task := e.createTask(t, e.upload(t, photo), resize300)
	if got, want := fmt.Sprint(statuses(t, evs, task.ID)), "[processing pending processing completed]"; got != want {
		t.Errorf("events = %s, want %s", got, want)
	}
	got := e.waitFinal(t, task.ID)
	if got.Status != imgd.TaskCompleted || got.Attempt != 2 || got.ErrorCode != "" || got.Result == nil {
		t.Errorf("task = %s attempt %d code %q result %v; want completed attempt 2, no error, a result",
			got.Status, got.Attempt, got.ErrorCode, got.Result)
	}
}

func TestCanceledBeforeRunIsNeverProcessed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	evs, _ := e.hub.Subscribe(t.Context(), events.Live)
	im := e.upload(t, photo)
	canceled := e.createTask(t, im, resize300)
	if _, err := e.store.CancelTask(t.Context(), canceled.ID); err != nil {
		t.Fatalf("CancelTask: %v", err)
	}
	later := e.createTask(t, im, imgd.MustParsePipeline(`[{"op":"grayscale"}]`))
	e.startRiver(t)
	statuses(t, evs, later.ID) // the queue has moved past the canceled task
	if got := e.getTask(t, canceled.ID); got.Status != imgd.TaskCanceled || got.Attempt != 0 || got.StartedAt != nil {
		t.Errorf("canceled task = %s attempt %d started %v, want canceled, never started", got.Status, got.Attempt, got.StartedAt)
	}
	for len(evs) > 0 {
		if ev := <-evs; ev.TaskID == canceled.ID {
			t.Errorf("event %s %s for the canceled task", ev.Type, ev.Status)
		}
	}
}

// A River client stopped while a task runs (the app's hard stop) leaves the
// job available again with no attempt spent, and the task pending.
func TestStopAndCancelSnoozes(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	e := newEnv(t, func(b imgd.BlobStore) imgd.BlobStore {
		return &faultBlobs{BlobStore: b, onGet: func(ctx context.Context, _ int) error {
			close(started)
			<-ctx.Done()
			return &imgd.Error{Code: imgd.CodeCanceled, Message: "canceled", Err: ctx.Err()}
		}}
	})
	task := e.createTask(t, e.upload(t, photo), resize300)
	client := e.startRiver(t)
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the task did not start within 30 s")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := client.StopAndCancel(ctx); err != nil {
		t.Fatalf("StopAndCancel: %v", err)
	}
	job, err := client.JobGet(t.Context(), task.JobID)
	if err != nil {
		t.Fatalf("JobGet(%d): %v", task.JobID, err)
	}
	if job.State != rivertype.JobStateAvailable || job.Attempt != 0 {
		t.Errorf("job after StopAndCancel = %s attempt %d, want available attempt 0 (snoozed)", job.State, job.Attempt)
	}
	if got := e.getTask(t, task.ID); got.Status != imgd.TaskPending || got.Attempt != 1 || got.ErrorCode != imgd.CodeUnavailable {
		t.Errorf("task after StopAndCancel = %s attempt %d code %q, want pending attempt 1 unavailable", got.Status, got.Attempt, got.ErrorCode)
	}
}

// slowStart is a store whose StartTask takes 200 ms longer.
type slowStart struct{ imgd.Store }

func (s slowStart) StartTask(ctx context.Context, id string, attempt int) (imgd.Task, error) {
	time.Sleep(200 * time.Millisecond)
	return s.Store.StartTask(ctx, id, attempt)
}

// job is the River job of task as River hands it to Work, at attempt.
func job(task imgd.Task, attempt int) *river.Job[queue.TaskArgs] {
	return &river.Job[queue.TaskArgs]{
		JobRow: &rivertype.JobRow{ID: task.JobID, Kind: queue.TaskKind, Attempt: attempt, MaxAttempts: queue.MaxAttempts},
		Args:   queue.TaskArgs{TaskID: task.ID},
	}
}

// The decisions of Work, called directly as River would, on real stores.
func TestWorkDecisions(t *testing.T) {
	t.Parallel()

	t.Run("shutdown snoozes", func(t *testing.T) {
		t.Parallel()
		started := make(chan struct{})
		e := newEnv(t, func(b imgd.BlobStore) imgd.BlobStore {
			return &faultBlobs{BlobStore: b, onGet: func(ctx context.Context, _ int) error {
				close(started)
				<-ctx.Done() // a slow read, interrupted by the shutdown
				return &imgd.Error{Code: imgd.CodeCanceled, Message: "canceled", Err: ctx.Err()}
			}}
		})
		task := e.createTask(t, e.upload(t, photo), resize300)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() {
			select {
			case <-started:
			case <-ctx.Done():
			}
			cancel()
		}()
		err := e.worker.Work(ctx, job(task, 1))
		if _, ok := errors.AsType[*river.JobSnoozeError](err); !ok {
			t.Errorf("Work interrupted by shutdown = %v, want river.JobSnooze", err)
		}
		if got := e.getTask(t, task.ID); got.Status != imgd.TaskPending || got.Attempt != 1 {
			t.Errorf("task = %s attempt %d, want pending attempt 1", got.Status, got.Attempt)
		}
	})

	t.Run("time limit retries", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(b imgd.BlobStore) imgd.BlobStore {
			return &faultBlobs{BlobStore: b, onGet: func(ctx context.Context, _ int) error {
				<-ctx.Done()
				return &imgd.Error{Code: imgd.CodeCanceled, Message: "canceled", Err: ctx.Err()}
			}}
		})
		task := e.createTask(t, e.upload(t, photo), resize300)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		err := e.worker.Work(ctx, job(task, 1))
		if err == nil || imgd.CodeOf(err) != imgd.CodeCanceled {
			t.Errorf("Work over its time limit = %v, want a canceled error for River to retry", err)
		}
		if got := e.getTask(t, task.ID); got.Status != imgd.TaskPending || got.ErrorCode != imgd.CodeCanceled {
			t.Errorf("task = %s code %q, want pending canceled", got.Status, got.ErrorCode)
		}
	})

	t.Run("last attempt fails", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(b imgd.BlobStore) imgd.BlobStore {
			return &faultBlobs{BlobStore: b, onGet: func(context.Context, int) error { return errDown }}
		})
		task := e.createTask(t, e.upload(t, photo), resize300)
		err := e.worker.Work(t.Context(), job(task, queue.MaxAttempts))
		if _, ok := errors.AsType[*river.JobCancelError](err); ok || imgd.CodeOf(err) != imgd.CodeUnavailable {
			t.Errorf("Work on the last attempt = %v, want the unavailable error itself", err)
		}
		if got := e.getTask(t, task.ID); got.Status != imgd.TaskFailed || got.ErrorCode != imgd.CodeUnavailable {
			t.Errorf("task = %s code %q, want failed unavailable", got.Status, got.ErrorCode)
		}
	})

	t.Run("panic is internal and retried", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(b imgd.BlobStore) imgd.BlobStore {
			return &faultBlobs{BlobStore: b, onGet: func(context.Context, int) error { panic("boom") }}
		})
		// The start is recorded late: the panic comes before it, and Work
		// must still wait for it, so that the retry is recorded after it.
		w, err := worker.New(worker.Options{Store: slowStart{e.store}, Blobs: e.blobs, Engine: testEngine, Hub: e.hub,
			Logger: e.log, Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		task := e.createTask(t, e.upload(t, photo), resize300)
		evs, _ := e.hub.Subscribe(t.Context(), events.Live)
		err = w.Work(t.Context(), job(task, 1))
		if imgd.CodeOf(err) != imgd.CodeInternal {
			t.Errorf("Work that panicked = %v, want code internal", err)
		}
		if got := e.getTask(t, task.ID); got.Status != imgd.TaskPending || got.Attempt != 1 ||
			got.ErrorCode != imgd.CodeInternal || got.ErrorMessage != "internal error" {
			t.Errorf("task = %s attempt %d code %q message %q, want pending attempt 1 internal \"internal error\"",
				got.Status, got.Attempt, got.ErrorCode, got.ErrorMessage)
		}
		var got []string
		for len(evs) > 0 {
			got = append(got, (<-evs).Status)
		}
		if fmt.Sprint(got) != "[processing pending]" {
			t.Errorf("events = %v, want [processing pending]", got)
		}
	})

	t.Run("canceled while running drops the result blob", func(t *testing.T) {
		t.Parallel()
		var (
			e      *env
			put    string
			taskID string
		)
		e = newEnv(t, func(b imgd.BlobStore) imgd.BlobStore {
			return &faultBlobs{BlobStore: b, onPut: func(key string) {
				put = key
				if _, err := e.store.CancelTask(context.Background(), taskID); err != nil {
					t.Errorf("CancelTask: %v", err)
				}
			}}
		})
		task := e.createTask(t, e.upload(t, photo), resize300)
		taskID = task.ID
		if err := e.worker.Work(t.Context(), job(task, 1)); err != nil {
			t.Errorf("Work on a task canceled meanwhile = %v, want nil", err)
		}
		if got := e.getTask(t, task.ID); got.Status != imgd.TaskCanceled || got.Result != nil {
			t.Errorf("task = %s result %v, want canceled without result", got.Status, got.Result)
		}
		if put == "" {
			t.Fatal("the worker stored no result")
		}
		if _, err := e.files.Stat(t.Context(), put); imgd.CodeOf(err) != imgd.CodeNotFound {
			t.Errorf("Stat(orphaned result %s) = %v, want not_found (deleted)", put, err)
		}
	})

	t.Run("final task is left alone", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, nil)
		task := e.createTask(t, e.upload(t, photo), resize300)
		if err := e.worker.Work(t.Context(), job(task, 1)); err != nil {
			t.Fatalf("Work: %v", err)
		}
		done := e.getTask(t, task.ID)
		if err := e.worker.Work(t.Context(), job(task, 2)); err != nil {
			t.Errorf("Work again on a completed task = %v, want nil", err)
		}
		again := e.getTask(t, task.ID)
		if again.Status != imgd.TaskCompleted || again.Attempt != done.Attempt || again.Result.BlobKey != done.Result.BlobKey {
			t.Errorf("task after a second run = %s attempt %d, want unchanged completed attempt %d", again.Status, again.Attempt, done.Attempt)
		}
	})
}
