package sqlstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imgd/imgd"
)

// Options configure a Store.
type Options struct {
	// NowFunc returns the current time; nil means time.Now. Stored times are
	// UTC with microsecond precision (PostgreSQL's).
	NowFunc func() time.Time
}

// Store is imgd.Store over a Backend.
type Store struct {
	db      Backend
	nowFunc func() time.Time
}

var _ imgd.Store = (*Store)(nil)

// New returns a Store that keeps its data in db, whose schema is migrated.
func New(db Backend, opts Options) *Store {
	s := &Store{db: db, nowFunc: opts.NowFunc}
	if s.nowFunc == nil {
		s.nowFunc = time.Now
	}
	return s
}

func (s *Store) now() time.Time { return s.nowFunc().UTC().Truncate(time.Microsecond) }

// Ping implements imgd.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.Ping(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

func notFound(what, id string) error {
	return imgd.Errorf(imgd.CodeNotFound, "%s %s not found", what, id)
}

// ---- images ----

const imageColumns = `id, owner, filename, media_type, format, width, height, frames, bytes, sha256,
	orientation, blob_key, idempotency_key, created_at`

func scanImage(r Rows) (imgd.Image, error) {
	var im imgd.Image
	var format string
	err := r.Scan(&im.ID, &im.Owner, &im.Filename, &im.MediaType, &format, &im.Width, &im.Height,
		&im.Frames, &im.Bytes, &im.SHA256, &im.Orientation, &im.BlobKey, &im.IdempotencyKey, &im.CreatedAt)
	im.Format = imgd.Format(format)
	im.CreatedAt = im.CreatedAt.UTC()
	return im, err
}

// CreateImage implements imgd.Store.
func (s *Store) CreateImage(ctx context.Context, im imgd.Image) (imgd.Image, bool, error) {
	if err := im.Validate(); err != nil {
		return imgd.Image{}, false, err
	}
	if im.ID == "" {
		im.ID = imgd.NewID()
	}
	im.CreatedAt = s.now()
	n, err := s.db.Exec(ctx, `INSERT INTO images (`+imageColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		ON CONFLICT (owner, idempotency_key) WHERE idempotency_key <> '' DO NOTHING`,
		im.ID, im.Owner, im.Filename, im.MediaType, string(im.Format), im.Width, im.Height, im.Frames,
		im.Bytes, im.SHA256, im.Orientation, im.BlobKey, im.IdempotencyKey, im.CreatedAt)
	switch {
	case errors.Is(err, ErrUnique):
		return imgd.Image{}, false, &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "id",
			Message: fmt.Sprintf("image %s already exists", im.ID), Err: err}
	case err != nil:
		return imgd.Image{}, false, fmt.Errorf("insert image: %w", err)
	case n == 1:
		return im, true, nil
	}
	// The idempotency key is taken: this is a retry of an earlier upload.
	prev, ok, err := queryOne(ctx, s.db, scanImage,
		`SELECT `+imageColumns+` FROM images WHERE owner = $1 AND idempotency_key = $2`, im.Owner, im.IdempotencyKey)
	switch {
	case err != nil:
		return imgd.Image{}, false, fmt.Errorf("get image by idempotency key: %w", err)
	case !ok: // deleted since the conflict; rare enough to let the client retry
		return imgd.Image{}, false, imgd.Errorf(imgd.CodeUnavailable, "image with this idempotency key is being deleted, retry")
	case prev.SHA256 != im.SHA256:
		return imgd.Image{}, false, &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "idempotency_key",
			Message: "was already used for another image"}
	}
	return prev, false, nil
}

// GetImage implements imgd.Store.
func (s *Store) GetImage(ctx context.Context, id string) (imgd.Image, error) {
	im, ok, err := queryOne(ctx, s.db, scanImage, `SELECT `+imageColumns+` FROM images WHERE id = $1`, id)
	if err != nil {
		return imgd.Image{}, fmt.Errorf("get image %s: %w", id, err)
	}
	if !ok {
		return imgd.Image{}, notFound("image", id)
	}
	return im, nil
}

// ListImages implements imgd.Store.
func (s *Store) ListImages(ctx context.Context, f imgd.ImageFilter) (imgd.Page[imgd.Image], error) {
	var a args
	where := []string{"owner = " + a.add(f.Owner)}
	items, next, err := listPage(ctx, s.db, scanImage, "images", imageColumns, where, &a, f.Cursor, f.Limit,
		func(im imgd.Image) (time.Time, string) { return im.CreatedAt, im.ID })
	if err != nil {
		return imgd.Page[imgd.Image]{}, fmt.Errorf("list images: %w", err)
	}
	return imgd.Page[imgd.Image]{Items: items, Next: next}, nil
}

// DeleteImage implements imgd.Store.
func (s *Store) DeleteImage(ctx context.Context, id string) ([]string, error) {
	var unreferenced []string
	err := s.db.InTx(ctx, func(tx Tx) error {
		unreferenced = nil
		blobKey, ok, err := queryOne(ctx, tx, scanString, `SELECT blob_key FROM images WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if !ok {
			return notFound("image", id)
		}
		// Locking the unfinished tasks first waits for a CompleteTask that
		// holds one: its result and variants are then committed, and read
		// below (a variant row deleted by the cascade would be missed).
		jobs, err := queryAll(ctx, tx, scanInt64,
			`SELECT job_id FROM tasks WHERE image_id = $1 AND status IN ('pending', 'processing') ORDER BY id`+s.db.ForUpdate(), id)
		if err != nil {
			return err
		}
		resultKeys, err := queryAll(ctx, tx, scanString,
			`SELECT result_blob_key FROM tasks WHERE image_id = $1 AND result_blob_key <> ''`, id)
		if err != nil {
			return err
		}
		variantKeys, err := variantKeysOfImage(ctx, tx, id)
		if err != nil {
			return err
		}
		keys := sortedUnique(append(append(resultKeys, variantKeys...), blobKey))
		if err := s.lockReferences(ctx, tx, keys); err != nil {
			return err
		}

		for _, job := range jobs {
			if err := tx.CancelJob(ctx, job); err != nil {
				return fmt.Errorf("cancel job %d: %w", job, err)
			}
		}
		// A result stored after the reads above still counts: RETURNING sees it.
		deleted, err := queryAll(ctx, tx, scanString,
			`DELETE FROM tasks WHERE image_id = $1 RETURNING result_blob_key`, id)
		if err != nil {
			return err
		}
		n, err := tx.Exec(ctx, `DELETE FROM images WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if n == 0 {
			return notFound("image", id)
		}
		unreferenced, err = unreferencedKeys(ctx, tx, sortedUnique(append(keys, deleted...)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("delete image %s: %w", id, err)
	}
	return unreferenced, nil
}

// lockReferences locks every row that references one of keys, in one global
// order (key, table, id), so that two transactions deleting the last two
// references of a blob run one after the other and the second sees the
// first's deletion: without it, each would see the other's reference and the
// blob would never be reported. Backends without row locks (SQLite) already
// run write transactions one at a time.
func (s *Store) lockReferences(ctx context.Context, tx Tx, keys []string) error {
	lock := s.db.ForUpdate()
	if lock == "" {
		return nil
	}
	for _, k := range keys {
		if _, err := queryAll(ctx, tx, scanString, `SELECT id FROM images WHERE blob_key = $1 ORDER BY id`+lock, k); err != nil {
			return fmt.Errorf("lock images of blob %s: %w", k, err)
		}
		if _, err := queryAll(ctx, tx, scanString, `SELECT id FROM tasks WHERE result_blob_key = $1 ORDER BY id`+lock, k); err != nil {
			return fmt.Errorf("lock results of blob %s: %w", k, err)
		}
		if _, err := queryAll(ctx, tx, scanString,
			`SELECT task_id FROM task_variants WHERE blob_key = $1 ORDER BY task_id, variant_index`+lock, k); err != nil {
			return fmt.Errorf("lock variants of blob %s: %w", k, err)
		}
	}
	return nil
}

// referenced is the blob reference rule (imgd.Store): key is used by an
// image, a task's result or a variant of a task's result.
func referenced(ctx context.Context, q Querier, key string) (bool, error) {
	_, ok, err := queryOne(ctx, q, scanInt64, `SELECT 1 FROM images WHERE blob_key = $1
		UNION ALL SELECT 1 FROM tasks WHERE result_blob_key = $1
		UNION ALL SELECT 1 FROM task_variants WHERE blob_key = $1 LIMIT 1`, key)
	if err != nil {
		return false, fmt.Errorf("references of blob %s: %w", key, err)
	}
	return ok, nil
}

// UnreferencedBlobs implements imgd.Store.
func (s *Store) UnreferencedBlobs(ctx context.Context, keys []string) ([]string, error) {
	return unreferencedKeys(ctx, s.db, keys)
}

// unreferencedKeys returns the keys among keys that referenced finds
// unused, each once, in their first order; "" is skipped.
func unreferencedKeys(ctx context.Context, q Querier, keys []string) ([]string, error) {
	var out []string
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if k == "" || seen[k] {
			continue
		}
		seen[k] = true
		used, err := referenced(ctx, q, k)
		if err != nil {
			return nil, err
		}
		if !used {
			out = append(out, k)
		}
	}
	return out, nil
}

// ---- tasks ----

const taskColumns = `id, image_id, image_sha256, owner, pipeline, pipeline_hash, status, priority, attempt,
	error_code, error_message, webhook_url, idempotency_key, job_id, result_blob_key, result_format,
	result_media_type, result_width, result_height, result_bytes, result_outputs, created_at, started_at,
	finished_at`

func scanTask(r Rows) (imgd.Task, error) {
	var (
		t                                 imgd.Task
		pipeline, status, code, resultFmt string
		res                               imgd.Result
		outputs                           string
		startedAt, finishedAt             *time.Time
	)
	err := r.Scan(&t.ID, &t.ImageID, &t.ImageSHA256, &t.Owner, &pipeline, &t.PipelineHash, &status,
		&t.Priority, &t.Attempt, &code, &t.ErrorMessage, &t.WebhookURL, &t.IdempotencyKey, &t.JobID,
		&res.BlobKey, &resultFmt, &res.MediaType, &res.Width, &res.Height, &res.Bytes, &outputs,
		&t.CreatedAt, &startedAt, &finishedAt)
	if err != nil {
		return imgd.Task{}, err
	}
	p, err := imgd.ParsePipeline([]byte(pipeline))
	if err != nil {
		return imgd.Task{}, fmt.Errorf("stored pipeline of task %s: %w", t.ID, err)
	}
	t.Pipeline = p
	t.Status = imgd.TaskStatus(status)
	t.ErrorCode = imgd.Code(code)
	t.CreatedAt = t.CreatedAt.UTC()
	t.StartedAt = utcPtr(startedAt)
	t.FinishedAt = utcPtr(finishedAt)
	if res.BlobKey != "" {
		res.Format = imgd.Format(resultFmt)
		if outputs != "" {
			res.Outputs = []byte(outputs)
		}
		t.Result = &res
	}
	return t, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// errIdempotentRetry rolls back a CreateTask that lost the race for its
// idempotency key, job included.
var errIdempotentRetry = errors.New("idempotency key taken meanwhile")

// CreateTask implements imgd.Store.
func (s *Store) CreateTask(ctx context.Context, t imgd.Task) (imgd.Task, bool, error) {
	if err := t.Validate(); err != nil {
		return imgd.Task{}, false, err
	}
	if t.ID == "" {
		t.ID = imgd.NewID()
	}
	if t.Priority == 0 {
		t.Priority = imgd.DefaultPriority
	}
	t.PipelineHash = t.Pipeline.Hash()
	t.Status = imgd.TaskPending
	t.Attempt = 0
	t.ErrorCode, t.ErrorMessage = "", ""
	t.Result, t.StartedAt, t.FinishedAt = nil, nil, nil
	t.CreatedAt = s.now()

	var prev *imgd.Task
	err := s.db.InTx(ctx, func(tx Tx) error {
		prev = nil
		sha, ok, err := queryOne(ctx, tx, scanString, `SELECT sha256 FROM images WHERE id = $1`, t.ImageID)
		if err != nil {
			return err
		}
		if !ok {
			return notFound("image", t.ImageID)
		}
		t.ImageSHA256 = sha
		if t.IdempotencyKey != "" {
			p, ok, err := s.taskByKey(ctx, tx, t.Owner, t.IdempotencyKey)
			if err != nil {
				return err
			}
			if ok {
				prev = &p
				return nil
			}
		}
		// The job first: if anything after it fails, the rollback takes it too.
		t.JobID, err = tx.InsertTaskJob(ctx, t.ID, t.Priority)
		if err != nil {
			return fmt.Errorf("insert job: %w", err)
		}
		n, err := tx.Exec(ctx, `INSERT INTO tasks (id, image_id, image_sha256, owner, pipeline, pipeline_hash,
				status, priority, attempt, webhook_url, idempotency_key, job_id, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
			ON CONFLICT (owner, idempotency_key) WHERE idempotency_key <> '' DO NOTHING`,
			t.ID, t.ImageID, t.ImageSHA256, t.Owner, string(t.Pipeline.Canonical()), t.PipelineHash,
			string(t.Status), t.Priority, t.Attempt, t.WebhookURL, t.IdempotencyKey, t.JobID, t.CreatedAt)
		switch {
		case errors.Is(err, ErrForeignKey): // the image was deleted meanwhile
			return &imgd.Error{Code: imgd.CodeNotFound, Message: fmt.Sprintf("image %s not found", t.ImageID), Err: err}
		case errors.Is(err, ErrUnique):
			return &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "id",
				Message: fmt.Sprintf("task %s already exists", t.ID), Err: err}
		case err != nil:
			return fmt.Errorf("insert task: %w", err)
		case n == 0:
			return errIdempotentRetry
		}
		return nil
	})
	if errors.Is(err, errIdempotentRetry) {
		p, ok, err2 := s.taskByKey(ctx, s.db, t.Owner, t.IdempotencyKey)
		if err2 != nil {
			return imgd.Task{}, false, fmt.Errorf("create task: %w", err2)
		}
		if !ok {
			return imgd.Task{}, false, imgd.Errorf(imgd.CodeUnavailable, "task with this idempotency key is being deleted, retry")
		}
		prev, err = &p, nil
	}
	if err != nil {
		return imgd.Task{}, false, fmt.Errorf("create task: %w", err)
	}
	if prev != nil {
		if prev.ImageID != t.ImageID || prev.PipelineHash != t.PipelineHash {
			return imgd.Task{}, false, &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "idempotency_key",
				Message: "was already used for another image or pipeline"}
		}
		return *prev, false, nil
	}
	return t, true, nil
}

func (s *Store) taskByKey(ctx context.Context, q Querier, owner, key string) (imgd.Task, bool, error) {
	t, ok, err := queryTask(ctx, q, `SELECT `+taskColumns+` FROM tasks WHERE owner = $1 AND idempotency_key = $2`, owner, key)
	if err != nil {
		return imgd.Task{}, false, fmt.Errorf("get task by idempotency key: %w", err)
	}
	return t, ok, nil
}

// GetTask implements imgd.Store.
func (s *Store) GetTask(ctx context.Context, id string) (imgd.Task, error) {
	t, ok, err := queryTask(ctx, s.db, `SELECT `+taskColumns+` FROM tasks WHERE id = $1`, id)
	if err != nil {
		return imgd.Task{}, fmt.Errorf("get task %s: %w", id, err)
	}
	if !ok {
		return imgd.Task{}, notFound("task", id)
	}
	return t, nil
}

// ListTasks implements imgd.Store.
func (s *Store) ListTasks(ctx context.Context, f imgd.TaskFilter) (imgd.Page[imgd.Task], error) {
	var a args
	where := []string{"owner = " + a.add(f.Owner)}
	if f.ImageID != "" {
		where = append(where, "image_id = "+a.add(f.ImageID))
	}
	if f.Status != "" {
		if !f.Status.Valid() {
			_, err := imgd.ParseTaskStatus(string(f.Status))
			return imgd.Page[imgd.Task]{}, err
		}
		where = append(where, "status = "+a.add(string(f.Status)))
	}
	items, next, err := listPage(ctx, s.db, scanTask, "tasks", taskColumns, where, &a, f.Cursor, f.Limit,
		func(t imgd.Task) (time.Time, string) { return t.CreatedAt, t.ID })
	if err == nil {
		err = attachVariants(ctx, s.db, items)
	}
	if err != nil {
		return imgd.Page[imgd.Task]{}, fmt.Errorf("list tasks: %w", err)
	}
	return imgd.Page[imgd.Task]{Items: items, Next: next}, nil
}

// unfinished is the guard every status change puts in its WHERE clause.
const unfinished = `status IN ('pending', 'processing')`

// StartTask implements imgd.Store.
func (s *Store) StartTask(ctx context.Context, id string, attempt int) (imgd.Task, error) {
	if attempt < 1 {
		return imgd.Task{}, &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "attempt",
			Message: fmt.Sprintf("must be >= 1, got %d", attempt)}
	}
	return s.move(ctx, "start", id, imgd.TaskProcessing, func(now time.Time) (string, []any) {
		return `status = 'processing', attempt = $2, started_at = $3`, []any{attempt, now}
	}, nil)
}

// RetryTask implements imgd.Store.
func (s *Store) RetryTask(ctx context.Context, id string, cause error) (imgd.Task, error) {
	if cause == nil {
		return imgd.Task{}, &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "cause", Message: "is required"}
	}
	return s.move(ctx, "retry", id, imgd.TaskPending, func(time.Time) (string, []any) {
		return `status = 'pending', error_code = $2, error_message = $3`,
			[]any{string(imgd.CodeOf(cause)), imgd.MessageOf(cause)}
	}, nil)
}

// CompleteTask implements imgd.Store.
func (s *Store) CompleteTask(ctx context.Context, id string, r imgd.Result) (imgd.Task, error) {
	if err := r.Validate(); err != nil {
		return imgd.Task{}, err
	}
	if r.MediaType == "" {
		r.MediaType = r.Format.MediaType()
	}
	to := r.Status()
	return s.move(ctx, "complete", id, to, func(now time.Time) (string, []any) {
		return `status = $10, error_code = '', error_message = '', result_blob_key = $2, result_format = $3,
				result_media_type = $4, result_width = $5, result_height = $6, result_bytes = $7,
				result_outputs = $8, finished_at = $9`,
			[]any{r.BlobKey, string(r.Format), r.MediaType, r.Width, r.Height, r.Bytes, string(r.Outputs), now, string(to)}
	}, func(tx Tx) error { return insertVariants(ctx, tx, id, r.Variants) })
}

// FailTask implements imgd.Store.
func (s *Store) FailTask(ctx context.Context, id string, cause error) (imgd.Task, error) {
	if cause == nil {
		return imgd.Task{}, &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "cause", Message: "is required"}
	}
	return s.move(ctx, "fail", id, imgd.TaskFailed, func(now time.Time) (string, []any) {
		return `status = 'failed', error_code = $2, error_message = $3, finished_at = $4`,
			[]any{string(imgd.CodeOf(cause)), imgd.MessageOf(cause), now}
	}, nil)
}

// CancelTask implements imgd.Store.
func (s *Store) CancelTask(ctx context.Context, id string) (imgd.Task, error) {
	var out imgd.Task
	err := s.db.InTx(ctx, func(tx Tx) error {
		var err error
		out, err = s.transitionTx(ctx, tx, id, imgd.TaskCanceled, func(cur imgd.Task, now time.Time) (int64, error) {
			if err := tx.CancelJob(ctx, cur.JobID); err != nil {
				return 0, fmt.Errorf("cancel job %d: %w", cur.JobID, err)
			}
			return tx.Exec(ctx, `UPDATE tasks SET status = 'canceled', error_code = $2, error_message = $3, finished_at = $4
				WHERE id = $1 AND `+unfinished, id, string(imgd.CodeCanceled), "task was canceled", now)
		})
		return err
	})
	if err != nil {
		return imgd.Task{}, fmt.Errorf("cancel task %s: %w", id, err)
	}
	return out, nil
}

// move moves task id to status to: set returns the SET clause of the
// UPDATE, whose arguments are $2 onwards ($1 is the task id), and then,
// when not nil, runs in the same transaction after the row changed.
//
// An unfinished task (the usual case: a worker starting or completing it)
// may become any status (TaskStatus.CanBecome), so one UPDATE guarded by
// unfinished, returning the row, does the whole change. Only when it
// changes nothing (no such task, or a final one) does transitionTx read
// the row to tell which answer is due, in the same transaction. That saves
// the worker two statements per status change, against transition's
// read, update, read.
func (s *Store) move(ctx context.Context, verb, id string, to imgd.TaskStatus,
	set func(now time.Time) (string, []any), then func(tx Tx) error) (imgd.Task, error) {
	var out imgd.Task
	err := s.db.InTx(ctx, func(tx Tx) error {
		clause, args := set(s.now())
		query := `UPDATE tasks SET ` + clause + ` WHERE id = $1 AND ` + unfinished
		args = append([]any{id}, args...)
		t, ok, err := queryOne(ctx, tx, scanTask, query+` RETURNING `+taskColumns, args...)
		if err != nil {
			return err
		}
		if !ok {
			out, err = s.transitionTx(ctx, tx, id, to, func(imgd.Task, time.Time) (int64, error) {
				n, err := tx.Exec(ctx, query, args...)
				if err == nil && n == 1 && then != nil {
					err = then(tx)
				}
				return n, err
			})
			return err
		}
		if then != nil {
			if err := then(tx); err != nil {
				return err
			}
		}
		one := []imgd.Task{t}
		if err := attachVariants(ctx, tx, one); err != nil {
			return err
		}
		out = one[0]
		return nil
	})
	if err != nil {
		return imgd.Task{}, fmt.Errorf("%s task %s: %w", verb, id, err)
	}
	return out, nil
}

// transitionTx moves task id to status to inside tx, holding the task's
// row: a final status repeated returns the task unchanged, a move that
// TaskStatus.CanBecome forbids returns imgd.TransitionError, and otherwise
// update runs and must change the row.
func (s *Store) transitionTx(ctx context.Context, tx Tx, id string, to imgd.TaskStatus,
	update func(cur imgd.Task, now time.Time) (int64, error)) (imgd.Task, error) {
	cur, ok, err := queryTask(ctx, tx, `SELECT `+taskColumns+` FROM tasks WHERE id = $1`+s.db.ForUpdate(), id)
	if err != nil {
		return imgd.Task{}, err
	}
	if !ok {
		return imgd.Task{}, notFound("task", id)
	}
	// A final status repeated, or a completed task completed again
	// (whether either run had failed variants), changes nothing.
	if cur.Status == to && to.Final() || cur.Status.HasResult() && to.HasResult() {
		return cur, nil
	}
	if !cur.Status.CanBecome(to) {
		return imgd.Task{}, imgd.TransitionError(id, cur.Status, to)
	}
	n, err := update(cur, s.now())
	if err != nil {
		return imgd.Task{}, err
	}
	if n != 1 {
		return imgd.Task{}, fmt.Errorf("task changed while locked (%d rows updated)", n)
	}
	out, _, err := queryTask(ctx, tx, `SELECT `+taskColumns+` FROM tasks WHERE id = $1`, id)
	return out, err
}

// FindResult implements imgd.Store.
func (s *Store) FindResult(ctx context.Context, imageSHA256, pipelineHash string) (imgd.Result, error) {
	// A result with failed variants is not reused: the failure may be
	// transient, and the next run may make them.
	t, ok, err := queryTask(ctx, s.db, `SELECT `+taskColumns+` FROM tasks
		WHERE image_sha256 = $1 AND pipeline_hash = $2 AND status = 'completed'
		ORDER BY finished_at DESC, id DESC LIMIT 1`, imageSHA256, pipelineHash)
	if err != nil {
		return imgd.Result{}, fmt.Errorf("find result: %w", err)
	}
	if !ok || t.Result == nil {
		return imgd.Result{}, imgd.Errorf(imgd.CodeNotFound, "no result for this image and pipeline")
	}
	return *t.Result, nil
}

// ---- queries ----

// args numbers query arguments: a.add(v) appends v and returns "$n".
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

func queryOne[T any](ctx context.Context, q Querier, scan func(Rows) (T, error), query string, args ...any) (T, bool, error) {
	var zero T
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return zero, false, err
	}
	defer rows.Close()
	if !rows.Next() {
		return zero, false, rows.Err()
	}
	v, err := scan(rows)
	if err != nil {
		return zero, false, err
	}
	return v, true, nil
}

func queryAll[T any](ctx context.Context, q Querier, scan func(Rows) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func scanString(r Rows) (string, error) {
	var s string
	err := r.Scan(&s)
	return s, err
}

func scanInt64(r Rows) (int64, error) {
	var n int64
	err := r.Scan(&n)
	return n, err
}

func sortedUnique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// listPage returns one page of table, newest first, by keyset pagination on
// (created_at, id): the cursor is the last item's pair, so rows added or
// deleted meanwhile never shift the next page.
func listPage[T any](ctx context.Context, q Querier, scan func(Rows) (T, error), table, columns string,
	where []string, a *args, cursor string, limit int, key func(T) (time.Time, string)) ([]T, string, error) {
	limit, err := pageLimit(limit)
	if err != nil {
		return nil, "", err
	}
	if cursor != "" {
		at, id, err := decodeCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		pa, pi := a.add(at), a.add(id)
		where = append(where, "(created_at < "+pa+" OR (created_at = "+pa+" AND id < "+pi+"))")
	}
	query := `SELECT ` + columns + ` FROM ` + table + ` WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY created_at DESC, id DESC LIMIT ` + a.add(limit+1)
	items, err := queryAll(ctx, q, scan, query, *a...)
	if err != nil {
		return nil, "", err
	}
	if len(items) <= limit {
		if items == nil {
			items = []T{} // an empty page, not a missing one
		}
		return items, "", nil
	}
	items = items[:limit]
	return items, encodeCursor(key(items[limit-1])), nil
}

func pageLimit(n int) (int, error) {
	switch {
	case n == 0:
		return imgd.DefaultPageLimit, nil
	case n < 0 || n > imgd.MaxPageLimit:
		return 0, &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "limit",
			Message: fmt.Sprintf("must be 1..%d, got %d", imgd.MaxPageLimit, n)}
	}
	return n, nil
}

// A cursor is base64url("<created_at in Unix microseconds>.<id>").
func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixMicro(), 10) + "." + id))
}

func decodeCursor(s string) (time.Time, string, error) {
	bad := &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "cursor", Message: "is not a cursor returned by this list"}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, "", bad
	}
	micros, id, ok := strings.Cut(string(raw), ".")
	n, err := strconv.ParseInt(micros, 10, 64)
	if !ok || err != nil || id == "" {
		return time.Time{}, "", bad
	}
	return time.UnixMicro(n).UTC(), id, nil
}
