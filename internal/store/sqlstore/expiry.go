package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/imgd/imgd"
)

// ExpiredMessage is the error message of a task whose result expired.
const ExpiredMessage = "the result expired and was deleted; create the task again to recompute it"

// ExpireResults drops the results of at most limit tasks that finished
// before cutoff, oldest first, and returns how many it dropped and the
// blob keys that nothing references any more (the caller deletes them from
// the blob store, as after DeleteImage).
//
// An expired task keeps its row and its final status, so that clients
// polling it learn what happened instead of meeting a 404: its result
// columns and variants are emptied (GetTask returns no Result) and its
// error is CodeExpired with ExpiredMessage. Originals are never touched, and a blob
// that another image or task still references stays: the reference rule
// (referenced) decides, after the references are locked in the order
// DeleteImage uses.
func (s *Store) ExpireResults(ctx context.Context, cutoff time.Time, limit int) (int, []string, error) {
	if limit <= 0 {
		return 0, nil, &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "limit", Message: fmt.Sprintf("must be > 0, got %d", limit)}
	}
	cutoff = cutoff.UTC()
	var (
		expired      int
		unreferenced []string
	)
	err := s.db.InTx(ctx, func(tx Tx) error {
		expired, unreferenced = 0, nil
		due, err := queryAll(ctx, tx, scanIDKey, `SELECT id, result_blob_key FROM tasks
			WHERE result_blob_key <> '' AND finished_at < $1
			ORDER BY finished_at, id LIMIT $2`, cutoff, limit)
		if err != nil {
			return err
		}
		keys := make([]string, 0, len(due))
		for _, d := range due {
			vks, err := queryAll(ctx, tx, scanString,
				`SELECT blob_key FROM task_variants WHERE task_id = $1 AND blob_key <> ''`, d.id)
			if err != nil {
				return fmt.Errorf("variant blobs of task %s: %w", d.id, err)
			}
			keys = append(append(keys, d.key), vks...)
		}
		keys = sortedUnique(keys)
		if err := s.lockReferences(ctx, tx, keys); err != nil {
			return err
		}
		for _, d := range due {
			// The guard repeats the selection: a row changed since it was
			// read (another sweep, its image deleted) is skipped.
			n, err := tx.Exec(ctx, `UPDATE tasks SET result_blob_key = '', result_format = '',
					result_media_type = '', result_width = 0, result_height = 0, result_bytes = 0,
					result_outputs = '', error_code = $3, error_message = $4
				WHERE id = $1 AND result_blob_key = $2`,
				d.id, d.key, string(imgd.CodeExpired), ExpiredMessage)
			if err != nil {
				return fmt.Errorf("expire result of task %s: %w", d.id, err)
			}
			if n == 0 {
				continue
			}
			// A responsive task's variants are part of its result.
			if _, err := deleteVariants(ctx, tx, d.id); err != nil {
				return err
			}
			expired++
		}
		unreferenced, err = unreferencedKeys(ctx, tx, keys)
		return err
	})
	if err != nil {
		return 0, nil, fmt.Errorf("expire results: %w", err)
	}
	return expired, unreferenced, nil
}

type idKey struct{ id, key string }

func scanIDKey(r Rows) (idKey, error) {
	var v idKey
	err := r.Scan(&v.id, &v.key)
	return v, err
}
