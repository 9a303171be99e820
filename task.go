package imgd

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// TaskStatus is the state of a task:
//
//	pending → processing → completed | completed_with_errors | failed | canceled
//
// A failed attempt that will be retried goes back to pending, keeping its
// attempt count and last error. completed_with_errors is a responsive task
// (several outputs, see Variant) whose result holds some failed variants
// beside the ones that succeeded. Every status after processing is final.
type TaskStatus string

const (
	TaskPending    TaskStatus = "pending"
	TaskProcessing TaskStatus = "processing"
	TaskCompleted  TaskStatus = "completed"
	// TaskCompletedWithErrors: the task has a result, but some of its
	// variants failed (Result.Variants holds their errors).
	TaskCompletedWithErrors TaskStatus = "completed_with_errors"
	TaskFailed              TaskStatus = "failed"
	TaskCanceled            TaskStatus = "canceled"
)

// TaskStatuses lists every status in lifecycle order.
var TaskStatuses = []TaskStatus{TaskPending, TaskProcessing, TaskCompleted, TaskCompletedWithErrors, TaskFailed, TaskCanceled}

// ParseTaskStatus returns the status named s, or an invalid_argument *Error.
func ParseTaskStatus(s string) (TaskStatus, error) {
	st := TaskStatus(s)
	if !st.Valid() {
		return "", fieldErr("status", "unknown task status %q (known: pending, processing, completed, completed_with_errors, failed, canceled)", s)
	}
	return st, nil
}

// Valid reports whether s is one of TaskStatuses.
func (s TaskStatus) Valid() bool {
	switch s {
	case TaskPending, TaskProcessing, TaskCompleted, TaskCompletedWithErrors, TaskFailed, TaskCanceled:
		return true
	}
	return false
}

// Final reports whether s is completed, completed_with_errors, failed or
// canceled: no transition leaves a final status.
func (s TaskStatus) Final() bool {
	return s.HasResult() || s == TaskFailed || s == TaskCanceled
}

// HasResult reports whether a task in status s has a result to download:
// completed, or completed_with_errors.
func (s TaskStatus) HasResult() bool {
	return s == TaskCompleted || s == TaskCompletedWithErrors
}

// CanBecome reports whether a task in status s may move to status to. Every
// unfinished status may move to any status (processing → processing is a
// rescued job running again, → pending a retry); a final status may not
// move. Repeating a final status (completed → completed) is not a
// transition: stores treat it as an idempotent no-op, see Store; so is
// completing a task that has a result again, whichever of the two
// completed statuses either attempt reached.
func (s TaskStatus) CanBecome(to TaskStatus) bool {
	return s.Valid() && to.Valid() && !s.Final()
}

// ErrTaskTransition is the cause of the error returned for a status change
// that CanBecome forbids, such as canceling a completed task. Test with
// errors.Is; the error's code is CodeInvalidArgument.
var ErrTaskTransition = errors.New("task status transition not allowed")

// TransitionError returns the *Error for moving a task from one status to
// another that CanBecome forbids.
func TransitionError(id string, from, to TaskStatus) *Error {
	return &Error{
		Code:    CodeInvalidArgument,
		Field:   "status",
		Message: fmt.Sprintf("task %s is %s and cannot become %s", id, from, to),
		Err:     ErrTaskTransition,
	}
}

// Task priorities, as in River: 1 is worked first. Zero in a new task means
// DefaultPriority.
const (
	MinPriority     = 1
	DefaultPriority = 2
	MaxPriority     = 4
)

// Task is one pipeline applied to one image.
type Task struct {
	ID           string     `json:"id"`
	ImageID      string     `json:"image_id"`
	Pipeline     Pipeline   `json:"pipeline"`      // stored in canonical form
	PipelineHash string     `json:"pipeline_hash"` // Pipeline.Hash()
	Status       TaskStatus `json:"status"`
	Priority     int        `json:"priority"` // MinPriority..MaxPriority
	Attempt      int        `json:"attempt"`  // attempts started so far
	ErrorCode    Code       `json:"error_code,omitempty"`
	ErrorMessage string     `json:"error_message,omitempty"` // client-safe
	WebhookURL   string     `json:"webhook_url,omitempty"`
	Owner        string     `json:"owner,omitempty"`
	Result       *Result    `json:"result,omitempty"` // set once completed
	CreatedAt    time.Time  `json:"created_at"`
	StartedAt    *time.Time `json:"started_at,omitempty"`  // start of the latest attempt
	FinishedAt   *time.Time `json:"finished_at,omitempty"` // when it became final
	// IdempotencyKey makes a retried request return the first task instead of
	// a second one; unique per Owner, empty for none.
	IdempotencyKey string `json:"-"`
	// ImageSHA256 is the SHA256 of the task's image, copied by the store so
	// that results can be found by content (Store.FindResult).
	ImageSHA256 string `json:"-"`
	// JobID is the River job that runs the task, inserted with it.
	JobID int64 `json:"-"`
}

// Validate checks the fields of a new task that the caller fills; the store
// fills ID, ImageSHA256, PipelineHash, Status, Attempt, CreatedAt and JobID.
// Errors are *Error with code invalid_argument.
func (t *Task) Validate() error {
	switch {
	case t.ImageID == "":
		return fieldErr("image_id", "is required")
	case len(t.Pipeline) == 0:
		return fieldErr("pipeline", "needs at least one step")
	case t.Priority != 0 && (t.Priority < MinPriority || t.Priority > MaxPriority):
		return fieldErr("priority", "must be %d..%d, got %d", MinPriority, MaxPriority, t.Priority)
	case len(t.WebhookURL) > MaxWebhookURLLen:
		return fieldErr("webhook_url", "is longer than %d bytes", MaxWebhookURLLen)
	case len(t.Owner) > MaxOwnerLen:
		return fieldErr("owner", "is longer than %d bytes", MaxOwnerLen)
	case len(t.IdempotencyKey) > MaxIdempotencyKeyLen:
		return fieldErr("idempotency_key", "is longer than %d bytes", MaxIdempotencyKeyLen)
	}
	return nil
}

// Result is the output of a completed task.
type Result struct {
	BlobKey   string `json:"-"` // key in the BlobStore, "sha256/<hex>"
	Format    Format `json:"format"`
	MediaType string `json:"media_type"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
	Bytes     int64  `json:"bytes"`
	// Outputs holds what steps computed, keyed by operation name, e.g.
	// {"detect_orientation":{"angle":90,"confidence":0.93}}; empty for none.
	Outputs json.RawMessage `json:"outputs,omitempty"`
	// Variants are the outputs of a responsive task, in index order; the
	// result's own blob is then their manifest (FormatJSON, see
	// NewManifest). Empty for every other task.
	Variants []Variant `json:"variants,omitempty"`
	// Srcset is the manifest's srcset strings by format, for the API's
	// task view; not stored (the manifest blob holds it).
	Srcset map[Format]string `json:"srcset,omitempty"`
}

// Status is the final status of a task completed with r:
// TaskCompletedWithErrors when a variant failed, TaskCompleted otherwise.
func (r *Result) Status() TaskStatus {
	for _, v := range r.Variants {
		if v.Failed() {
			return TaskCompletedWithErrors
		}
	}
	return TaskCompleted
}

// Validate checks a result before it is stored. Errors are *Error with code
// invalid_argument.
func (r *Result) Validate() error {
	if _, err := ParseBlobKey(r.BlobKey); err != nil {
		return fieldErr("result.blob_key", "%s", MessageOf(err))
	}
	switch {
	case r.Format == "":
		return fieldErr("result.format", "is required")
	case r.Width <= 0 || r.Height <= 0:
		return fieldErr("result.width", "width and height must be > 0, got %dx%d", r.Width, r.Height)
	case r.Bytes < 0:
		return fieldErr("result.bytes", "must be >= 0, got %d", r.Bytes)
	case len(r.Outputs) > 0 && !json.Valid(r.Outputs):
		return fieldErr("result.outputs", "must be valid JSON")
	case len(r.Variants) > 0 && r.Format != FormatJSON:
		return fieldErr("result.format", "must be %s (the manifest) for a result with variants, got %s", FormatJSON, r.Format)
	case r.Format == FormatJSON && len(r.Variants) == 0:
		return fieldErr("result.variants", "a %s result is a manifest and needs variants", FormatJSON)
	}
	for i, v := range r.Variants {
		if err := v.validate(i); err != nil {
			return err
		}
	}
	return nil
}
