package imgd

import "context"

// Store keeps images, tasks and their results, and enqueues each task's job.
// Implementations: internal/store/sqlite and internal/store/postgres;
// internal/store/storetest holds the behaviour every one must pass.
//
// Errors are *Error: CodeNotFound for an unknown id, CodeInvalidArgument for
// invalid input (Field names it), CodeUnavailable when the database cannot be
// reached or is busy past its timeout, CodeCanceled when ctx ends.
//
// Blob reference rule: a blob key is referenced by every image whose BlobKey
// it is, every task whose Result.BlobKey it is and every task with a
// Result.Variants entry whose BlobKey it is. A blob is deleted only when
// nothing references it; the store reports such keys and the caller deletes
// them from the BlobStore.
//
// Tasks come back with their result's Variants (a responsive task's, in
// index order) and Srcset from every read and status change.
type Store interface {
	// CreateImage stores a new image; the store assigns ID (when empty) and
	// CreatedAt. With an IdempotencyKey, a second call with the same Owner and
	// key returns the first image and created == false; reusing the key for
	// other content (another SHA256) is CodeInvalidArgument.
	CreateImage(ctx context.Context, im Image) (_ Image, created bool, _ error)
	// GetImage returns the image with id, whatever its owner.
	GetImage(ctx context.Context, id string) (Image, error)
	// ListImages returns the images of f.Owner, newest first.
	ListImages(ctx context.Context, f ImageFilter) (Page[Image], error)
	// DeleteImage deletes the image and its tasks with their results, and
	// cancels the River jobs of its unfinished tasks, in one transaction. It
	// returns the blob keys (the original's, the results', their
	// variants') that nothing references any more.
	DeleteImage(ctx context.Context, id string) (unreferenced []string, _ error)

	// CreateTask stores a new pending task and inserts its River job in the
	// same transaction: either both exist afterwards or neither does. The
	// store assigns ID (when empty), PipelineHash, ImageSHA256, Status,
	// Attempt, CreatedAt and JobID, and Priority when zero. An unknown ImageID
	// is CodeNotFound. Idempotency as in CreateImage: a reused key returns the
	// first task (created == false, no second job); reusing it for another
	// image or pipeline is CodeInvalidArgument.
	CreateTask(ctx context.Context, t Task) (_ Task, created bool, _ error)
	// GetTask returns the task with id, whatever its owner.
	GetTask(ctx context.Context, id string) (Task, error)
	// ListTasks returns the tasks of f.Owner matching f, newest first.
	ListTasks(ctx context.Context, f TaskFilter) (Page[Task], error)

	// The status changes below follow TaskStatus.CanBecome; a forbidden one
	// returns an *Error wrapping ErrTaskTransition. Repeating the final status
	// a task already has (completing a completed task, failing a failed one,
	// canceling a canceled one) changes nothing and returns the task as
	// stored, with no error, so a job that runs twice is harmless.

	// StartTask marks the task processing for the given attempt (River's
	// JobRow.Attempt, >= 1) and sets StartedAt.
	StartTask(ctx context.Context, id string, attempt int) (Task, error)
	// RetryTask puts a task whose attempt failed back to pending, recording
	// CodeOf(cause) and MessageOf(cause) as its last error.
	RetryTask(ctx context.Context, id string, cause error) (Task, error)
	// CompleteTask stores the result, with its variants in the same
	// transaction, and marks the task completed (completed_with_errors when
	// a variant failed, see Result.Status), clearing its last error. On a
	// task that has a result (either status) it returns the stored task,
	// whose Result is the first one: the caller's blobs may then be
	// unreferenced (see UnreferencedBlobs).
	CompleteTask(ctx context.Context, id string, r Result) (Task, error)
	// FailTask marks the task failed for good with CodeOf(cause) and
	// MessageOf(cause).
	FailTask(ctx context.Context, id string, cause error) (Task, error)
	// CancelTask marks the task canceled and cancels its River job in the
	// same transaction.
	CancelTask(ctx context.Context, id string) (Task, error)

	// FindResult returns the result of a completed task whose image has the
	// content imageSHA256 and whose pipeline hashes to pipelineHash, so that
	// identical work is done once, with its variants; a result with failed
	// variants (completed_with_errors) is not reused. CodeNotFound when there
	// is none.
	FindResult(ctx context.Context, imageSHA256, pipelineHash string) (Result, error)
	// UnreferencedBlobs returns the keys among keys that no image or result
	// references, e.g. a result blob stored for a task that was canceled
	// meanwhile.
	UnreferencedBlobs(ctx context.Context, keys []string) ([]string, error)

	// Ping reports whether the database can serve requests, for /readyz.
	Ping(ctx context.Context) error
}

// Page sizes of list calls: a Limit of 0 means DefaultPageLimit, larger
// than MaxPageLimit is invalid.
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 500
)

// Page is one page of a list. Next is the opaque cursor of the following
// page, empty on the last one.
type Page[T any] struct {
	Items []T
	Next  string
}

// ImageFilter selects images. Pagination is keyset-based: pages do not skip
// or repeat items when images are added or deleted meanwhile.
type ImageFilter struct {
	Owner  string // matched exactly; "" is the owner when no API keys are set
	Cursor string // Page.Next of the previous page, "" for the first
	Limit  int
}

// TaskFilter selects tasks. Zero fields match everything except Owner,
// which is matched exactly as in ImageFilter.
type TaskFilter struct {
	Owner   string
	ImageID string
	Status  TaskStatus
	Cursor  string
	Limit   int
}
