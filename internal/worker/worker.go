// Package worker runs tasks: the River worker of queue.TaskArgs loads a
// task, reads its image from the blob store, runs its pipeline in the
// engine, stores the output blob and completes the task. It holds imgd's
// only retry decision (STYLE §3).
//
// Work is idempotent, because River may run a job twice (a rescued job, a
// crash after the work but before River recorded it):
//   - a task already completed, failed or canceled is left as it is;
//   - identical work is done once: when a completed task has the same image
//     content (SHA-256) and pipeline hash, its result is reused and the task
//     completes at once, without starting (no processing status, attempt 0);
//   - the output blob's key is its content hash, so a rerun writes the same
//     key, and the store keeps the first result of a task completed twice;
//   - a responsive set (docs/responsive.md) stores each variant's blob, then
//     its manifest (which names the task, so a reused set gets a manifest
//     of its own), then completes; whatever stops it on the way, the blobs
//     it wrote that nothing references are deleted.
//
// Errors:
//   - a permanent code (imgd.Code.Permanent: unsupported image, over limit,
//     …) fails the task at once and cancels the job (river.JobCancel);
//   - a job cut short by the worker's shutdown snoozes (river.JobSnooze(0):
//     it runs again at once elsewhere, no attempt spent) and the task goes
//     back to pending;
//   - any other error, including the per-task time limit (code canceled) and
//     a recovered panic (code internal), puts the task back to pending with
//     its last error and returns the error, so River retries with backoff;
//     the last attempt (job.Attempt >= job.MaxAttempts) fails the task.
//
// Each status change is published as a task.updated event.
package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/engine"
	"github.com/imgd/imgd/internal/events"
	"github.com/imgd/imgd/internal/queue"
)

// DefaultTimeout is the per-task time limit when Options.Timeout is zero.
// The River client's RescueStuckJobsAfter must be set just above it.
const DefaultTimeout = 5 * time.Minute

// cleanupTimeout bounds the bookkeeping done after ctx ended (recording a
// failure, deleting an orphaned blob).
const cleanupTimeout = 10 * time.Second

// Options configure a Worker.
type Options struct {
	Store  imgd.Store     // required
	Blobs  imgd.BlobStore // required
	Engine *engine.Engine // required
	Hub    *events.Hub    // nil: no events
	Logger *slog.Logger   // nil: discard
	// OnUpdate, when set, is called after each status change the worker
	// makes, after the event is published (metrics, webhooks). It must not
	// block for long.
	OnUpdate func(imgd.Task)
	// Timeout is the time limit of one attempt; 0 means DefaultTimeout.
	Timeout time.Duration
}

// Worker works queue.TaskArgs jobs. Register it with
// river.AddWorker(workers, w).
type Worker struct {
	river.WorkerDefaults[queue.TaskArgs]
	store   imgd.Store
	blobs   imgd.BlobStore
	engine  *engine.Engine
	hub     *events.Hub
	update  func(imgd.Task)
	log     *slog.Logger
	timeout time.Duration
}

var _ river.Worker[queue.TaskArgs] = (*Worker)(nil)

// New returns a Worker, or an error naming a missing option.
func New(o Options) (*Worker, error) {
	var errs []error
	if o.Store == nil {
		errs = append(errs, errors.New("worker: Store is required"))
	}
	if o.Blobs == nil {
		errs = append(errs, errors.New("worker: Blobs is required"))
	}
	if o.Engine == nil {
		errs = append(errs, errors.New("worker: Engine is required"))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("worker: Timeout must be >= 0, got %s", o.Timeout))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Worker{store: o.Store, blobs: o.Blobs, engine: o.Engine, hub: o.Hub, update: o.OnUpdate, log: o.Logger, timeout: o.Timeout}, nil
}

// Timeout implements river.Worker: the per-task time limit.
func (w *Worker) Timeout(*river.Job[queue.TaskArgs]) time.Duration { return w.timeout }

// Work implements river.Worker.
func (w *Worker) Work(ctx context.Context, job *river.Job[queue.TaskArgs]) error {
	r := &run{w: w, job: job, log: w.log.With("task_id", job.Args.TaskID, "job_id", job.ID, "attempt", job.Attempt)}
	err := r.safely(ctx)
	return r.decide(ctx, err)
}

// run is the state of one attempt.
type run struct {
	w       *Worker
	job     *river.Job[queue.TaskArgs]
	log     *slog.Logger
	task    imgd.Task
	started bool // StartTask succeeded: the task is processing
}

// safely runs the attempt, turning a panic into a CodeInternal error.
func (r *run) safely(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("task panicked", "panic", p, "stack", string(debug.Stack()))
			err = &imgd.Error{Code: imgd.CodeInternal, Message: "internal error", Err: fmt.Errorf("panic: %v", p)}
		}
	}()
	return r.work(ctx)
}

func (r *run) work(ctx context.Context) error {
	w, id := r.w, r.job.Args.TaskID
	t, err := w.store.GetTask(ctx, id)
	if imgd.CodeOf(err) == imgd.CodeNotFound {
		r.log.Info("task deleted, nothing to do") // with its image, which cancels the job too
		return nil
	}
	if err != nil {
		return fmt.Errorf("get task: %w", err)
	}
	r.task = t
	if t.Status.Final() {
		r.log.Info("task already final, nothing to do", "status", t.Status)
		return nil
	}

	if res, err := w.store.FindResult(ctx, t.ImageSHA256, t.PipelineHash); err == nil {
		// A set's manifest names its task: this task gets its own, over
		// the same variant blobs.
		var written []string
		if len(res.Variants) > 0 {
			if res, err = w.putManifest(ctx, id, res); err != nil {
				return err
			}
			written = []string{res.BlobKey}
		}
		done, err := w.store.CompleteTask(ctx, id, res)
		if err != nil {
			w.deleteIfUnreferenced(ctx, written...)
			if errors.Is(err, imgd.ErrTaskTransition) || imgd.CodeOf(err) == imgd.CodeNotFound {
				return nil // canceled or deleted meanwhile
			}
			return fmt.Errorf("complete task with reused result: %w", err)
		}
		if done.Result != nil && done.Result.BlobKey != res.BlobKey {
			w.deleteIfUnreferenced(ctx, written...) // completed twice: the first result stays
		}
		r.task = done
		w.publish(done)
		r.log.Info("task completed", "reused", true, "blob_key", res.BlobKey, "bytes_out", res.Bytes)
		return nil
	} else if imgd.CodeOf(err) != imgd.CodeNotFound {
		return fmt.Errorf("find result: %w", err)
	}

	// The start is recorded (a write transaction, then the processing
	// event) while the image is read and the pipeline runs: at one task at
	// a time that takes the transaction off the task's path, and only
	// storing the result waits for both. The start has a context of its
	// own, so that a shutdown ending ctx meanwhile finds it recorded or
	// not, never cut off. Every way out of here, a panic included, waits
	// for it first, so that decide knows whether the task started and the
	// task's events stay in order.
	// A start that fails (the task was cancelled or finished meanwhile)
	// stops the pipeline too: its output would be thrown away.
	pctx, stopPipeline := context.WithCancel(ctx)
	defer stopPipeline()
	startc := make(chan startResult, 1)
	go func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		res := w.start(sctx, id, r.job.Attempt)
		if res.err != nil {
			stopPipeline()
		}
		startc <- res
	}()
	var st startResult
	join := sync.OnceFunc(func() {
		if st = <-startc; st.err == nil {
			r.task, r.started = st.task, true
		}
	})
	defer join()
	start := time.Now()
	src, out, runErr := w.runPipeline(pctx, t)
	join()
	if st.err != nil {
		if errors.Is(st.err, imgd.ErrTaskTransition) {
			r.log.Info("task became final before it started", "error", st.err)
			return nil
		}
		return fmt.Errorf("start task: %w", st.err)
	}
	if runErr != nil {
		return runErr
	}
	result, written, err := w.putResult(ctx, id, out)
	if err != nil {
		w.deleteIfUnreferenced(ctx, written...)
		return err
	}
	key, size := result.BlobKey, result.Bytes
	// The result is stored: record it even if ctx ends now. A cancel that
	// arrives between Put and here (River cancels ctx up to 2 s after
	// CancelTask, when it polls) must be seen by CompleteTask as a
	// transition error, which drops the blob; with ctx the call would fail
	// with "canceled" and leave the blob behind, referenced by nothing.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	done, err := w.store.CompleteTask(cctx, id, result)
	if err != nil {
		if errors.Is(err, imgd.ErrTaskTransition) || imgd.CodeOf(err) == imgd.CodeNotFound {
			// Canceled or deleted while we worked: the blob may be an orphan.
			r.log.Info("task canceled while it ran, result dropped", "error", err)
			w.deleteIfUnreferenced(ctx, written...)
			return nil
		}
		// Not recorded: the next attempt writes the same keys again.
		w.deleteIfUnreferenced(ctx, written...)
		return fmt.Errorf("complete task: %w", err)
	}
	r.task = done
	if done.Result != nil && done.Result.BlobKey != key {
		w.deleteIfUnreferenced(ctx, written...) // completed twice: the first result stays
	}
	w.publish(done)
	r.log.Info("task completed", "reused", false, "duration", time.Since(start), "status", done.Status,
		"blob_key", key, "bytes_in", len(src), "bytes_out", size, "width", out.Width, "height", out.Height,
		"variants", len(out.Variants))
	return nil
}

// startResult is what start returns through a channel.
type startResult struct {
	task imgd.Task
	err  error
}

// start records the start of attempt on task id and publishes it. It runs
// beside the pipeline, outside run.safely, so it recovers its own panic.
func (w *Worker) start(ctx context.Context, id string, attempt int) (res startResult) {
	defer func() {
		if p := recover(); p != nil {
			w.log.Error("task start panicked", "task_id", id, "panic", p, "stack", string(debug.Stack()))
			res.err = &imgd.Error{Code: imgd.CodeInternal, Message: "internal error", Err: fmt.Errorf("panic: %v", p)}
		}
	}()
	t, err := w.store.StartTask(ctx, id, attempt)
	if err != nil {
		return startResult{err: err}
	}
	w.publish(t)
	return startResult{task: t}
}

// runPipeline reads the image of task t and runs its pipeline; it returns
// the input too, for the log.
func (w *Worker) runPipeline(ctx context.Context, t imgd.Task) ([]byte, *engine.Result, error) {
	im, err := w.store.GetImage(ctx, t.ImageID)
	if err != nil {
		return nil, nil, fmt.Errorf("get image %s: %w", t.ImageID, err)
	}
	src, err := w.read(ctx, im.BlobKey)
	if err != nil {
		return nil, nil, err
	}
	out, err := w.engine.Run(ctx, src, t.Pipeline)
	if err != nil {
		return src, nil, err
	}
	return src, out, nil
}

// putResult stores the blobs of an engine result: its data, or for a
// responsive set each variant's and then the manifest. It returns the
// result to complete the task with and every key it wrote, also on
// failure, so that the caller can delete those nothing references.
func (w *Worker) putResult(ctx context.Context, taskID string, out *engine.Result) (imgd.Result, []string, error) {
	result := imgd.Result{Format: out.Format, MediaType: out.Format.MediaType(), Width: out.Width, Height: out.Height}
	if len(out.Outputs) > 0 {
		var err error
		if result.Outputs, err = json.Marshal(out.Outputs); err != nil {
			return imgd.Result{}, nil, fmt.Errorf("encode outputs: %w", err)
		}
	}
	if len(out.Variants) == 0 {
		key, size, err := w.blobs.Put(ctx, bytes.NewReader(out.Data))
		if err != nil {
			return imgd.Result{}, nil, fmt.Errorf("store result: %w", err)
		}
		result.BlobKey, result.Bytes = key, size
		return result, []string{key}, nil
	}
	var written []string
	for i, v := range out.Variants {
		rv := imgd.Variant{Index: i, Width: v.Width, Height: v.Height, Format: v.Format}
		if v.Err != nil {
			rv.ErrorCode, rv.ErrorMessage = v.Err.Code, imgd.MessageOf(v.Err)
			result.Variants = append(result.Variants, rv)
			continue
		}
		key, size, err := w.blobs.Put(ctx, bytes.NewReader(v.Data))
		if err != nil {
			return imgd.Result{}, written, fmt.Errorf("store variant %d: %w", i, err)
		}
		written = append(written, key)
		rv.BlobKey, rv.Bytes, rv.MediaType = key, size, v.Format.MediaType()
		if len(v.Outputs) > 0 {
			if rv.Outputs, err = json.Marshal(v.Outputs); err != nil {
				return imgd.Result{}, written, fmt.Errorf("encode outputs of variant %d: %w", i, err)
			}
		}
		result.Variants = append(result.Variants, rv)
	}
	result, err := w.putManifest(ctx, taskID, result)
	if err != nil {
		return imgd.Result{}, written, err
	}
	return result, append(written, result.BlobKey), nil
}

// putManifest stores the manifest of a set's variants for task taskID
// (its URLs name the task) and returns r with it as its blob.
func (w *Worker) putManifest(ctx context.Context, taskID string, r imgd.Result) (imgd.Result, error) {
	m := imgd.NewManifest(r.Variants, r.Outputs, func(i int) string { return imgd.VariantURL(taskID, i) })
	data, err := json.Marshal(m)
	if err != nil {
		return imgd.Result{}, fmt.Errorf("encode manifest: %w", err)
	}
	key, size, err := w.blobs.Put(ctx, bytes.NewReader(data))
	if err != nil {
		return imgd.Result{}, fmt.Errorf("store manifest: %w", err)
	}
	r.BlobKey, r.Bytes, r.Format, r.MediaType = key, size, imgd.FormatJSON, imgd.FormatJSON.MediaType()
	r.Srcset = nil
	return r, nil
}

// read returns the content of key, reading at most one byte more than the
// engine accepts (so that it reports too_large).
func (w *Worker) read(ctx context.Context, key string) ([]byte, error) {
	rc, size, err := w.blobs.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read image %s: %w", key, err)
	}
	defer rc.Close()
	limit := w.engine.Limits().MaxInputBytes + 1
	// Room for the read that sees EOF too: ReadFrom (io.Copy's path here)
	// grows a buffer with less than bytes.MinRead free before each read.
	buf := bytes.NewBuffer(make([]byte, 0, min(size, limit)+bytes.MinRead))
	if _, err := io.Copy(buf, io.LimitReader(rc, limit)); err != nil {
		if ctx.Err() != nil {
			return nil, &imgd.Error{Code: imgd.CodeCanceled, Message: "the work was canceled or ran out of time", Err: err}
		}
		if imgd.CodeOf(err) == imgd.CodeInternal {
			err = &imgd.Error{Code: imgd.CodeUnavailable, Message: "blob store read failed", Err: err}
		}
		return nil, fmt.Errorf("read image %s: %w", key, err)
	}
	return buf.Bytes(), nil
}

// deleteIfUnreferenced deletes the result blobs among keys that no image,
// task or variant uses, with its own deadline: ctx may be ending. Failures
// only leak blobs, so they are logged.
func (w *Worker) deleteIfUnreferenced(ctx context.Context, keys ...string) {
	if len(keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := imgd.DeleteUnreferenced(ctx, w.store, w.blobs, keys...); err != nil {
		w.log.Warn("delete unreferenced result blobs", "blob_keys", keys, "error", err)
	}
}

// decide is the one retry decision: it records the outcome of a failed
// attempt on the task and tells River what to do with the job.
func (r *run) decide(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	w, id := r.w, r.job.Args.TaskID
	code := imgd.CodeOf(err)
	// Bookkeeping must happen even when ctx has ended.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()

	if ctx.Err() != nil && !code.Permanent() {
		switch {
		case errors.Is(context.Cause(ctx), river.ErrJobCancelledRemotely):
			// CancelTask canceled the job; the task is already canceled.
			r.log.Info("task canceled while it ran")
			return err
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			err = &imgd.Error{Code: imgd.CodeCanceled,
				Message: fmt.Sprintf("the task ran longer than its time limit of %s", w.timeout), Err: err}
			code = imgd.CodeCanceled
		default:
			// The worker is shutting down: run again at once, elsewhere or
			// after restart, without spending an attempt.
			if r.started {
				cause := &imgd.Error{Code: imgd.CodeUnavailable,
					Message: "the worker stopped before the task finished; it will run again", Err: err}
				if t, rerr := w.store.RetryTask(bctx, id, cause); rerr == nil {
					w.publish(t)
				} else {
					r.log.Warn("record interrupted task", "error", rerr)
				}
			}
			r.log.Info("task interrupted by shutdown, snoozed", "error", err)
			return river.JobSnooze(0)
		}
	}

	if code.Permanent() || r.job.Attempt >= r.job.MaxAttempts {
		t, ferr := w.store.FailTask(bctx, id, err)
		switch {
		case ferr == nil:
			w.publish(t)
		case errors.Is(ferr, imgd.ErrTaskTransition) || imgd.CodeOf(ferr) == imgd.CodeNotFound:
			// Canceled or deleted meanwhile: nothing to record, no job to keep.
			r.log.Info("task attempt failed after the task was canceled or deleted", "error_code", code, "error", err)
			return river.JobCancel(err)
		default:
			// The failure is not recorded: let River run the job again.
			r.log.Warn("task attempt failed; recording the failure failed too",
				"error_code", code, "error", err, "record_error", ferr)
			return errors.Join(err, ferr)
		}
		r.log.Error("task failed", "error_code", code, "error", err, "permanent", code.Permanent(),
			"max_attempts", r.job.MaxAttempts)
		if code.Permanent() {
			return river.JobCancel(err)
		}
		return err // the last attempt: River discards the job
	}

	if t, rerr := w.store.RetryTask(bctx, id, err); rerr == nil {
		w.publish(t)
	} else if !errors.Is(rerr, imgd.ErrTaskTransition) && imgd.CodeOf(rerr) != imgd.CodeNotFound {
		r.log.Warn("record failed attempt", "error", rerr)
	}
	r.log.Warn("task attempt failed, will retry", "error_code", code, "error", err,
		"max_attempts", r.job.MaxAttempts)
	return err
}

func (w *Worker) publish(t imgd.Task) {
	if w.hub != nil {
		w.hub.Publish(events.TaskUpdated(t))
	}
	if w.update != nil {
		w.update(t)
	}
}
