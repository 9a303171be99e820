package sqlstore

import (
	"context"
	"fmt"
	"slices"

	"github.com/imgd/imgd"
)

// Variants of responsive tasks (table task_variants, migration 00003): a
// task whose result is a manifest (imgd.FormatJSON) has one row per
// variant, written with the result in CompleteTask's transaction and
// deleted with the task. Their blobs count in the blob reference rule
// (referenced).

const variantColumns = `variant_index, blob_key, format, media_type, width, height, bytes, outputs,
	error_code, error_message`

func scanVariant(r Rows) (imgd.Variant, error) {
	var (
		v               imgd.Variant
		format, outputs string
		code            string
	)
	err := r.Scan(&v.Index, &v.BlobKey, &format, &v.MediaType, &v.Width, &v.Height, &v.Bytes, &outputs,
		&code, &v.ErrorMessage)
	v.Format, v.ErrorCode = imgd.Format(format), imgd.Code(code)
	if outputs != "" {
		v.Outputs = []byte(outputs)
	}
	return v, err
}

// insertVariants stores the variants of task id's result.
func insertVariants(ctx context.Context, tx Tx, id string, vs []imgd.Variant) error {
	for _, v := range vs {
		mt := v.MediaType
		if mt == "" && !v.Failed() {
			mt = v.Format.MediaType()
		}
		_, err := tx.Exec(ctx, `INSERT INTO task_variants (task_id, `+variantColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			id, v.Index, v.BlobKey, string(v.Format), mt, v.Width, v.Height, v.Bytes, string(v.Outputs),
			string(v.ErrorCode), v.ErrorMessage)
		if err != nil {
			return fmt.Errorf("insert variant %d of task %s: %w", v.Index, id, err)
		}
	}
	return nil
}

// attachVariants loads the variants of the tasks whose result is a
// manifest, and their srcset strings. Other tasks cost no query.
func attachVariants(ctx context.Context, q Querier, tasks []imgd.Task) error {
	for i := range tasks {
		res := tasks[i].Result
		if res == nil || res.Format != imgd.FormatJSON {
			continue
		}
		vs, err := queryAll(ctx, q, scanVariant, `SELECT `+variantColumns+` FROM task_variants
			WHERE task_id = $1 ORDER BY variant_index`, tasks[i].ID)
		if err != nil {
			return fmt.Errorf("variants of task %s: %w", tasks[i].ID, err)
		}
		res.Variants = vs
		id := tasks[i].ID
		res.Srcset = imgd.Srcset(vs, func(index int) string { return imgd.VariantURL(id, index) })
	}
	return nil
}

// queryTask reads one task with queryOne, and its variants.
func queryTask(ctx context.Context, q Querier, query string, args ...any) (imgd.Task, bool, error) {
	t, ok, err := queryOne(ctx, q, scanTask, query, args...)
	if err != nil || !ok {
		return t, ok, err
	}
	one := []imgd.Task{t}
	if err := attachVariants(ctx, q, one); err != nil {
		return imgd.Task{}, false, err
	}
	return one[0], true, nil
}

// variantKeysOfImage returns the blob keys of the variants of image id's
// tasks.
func variantKeysOfImage(ctx context.Context, q Querier, id string) ([]string, error) {
	keys, err := queryAll(ctx, q, scanString, `SELECT v.blob_key FROM task_variants v
		JOIN tasks t ON t.id = v.task_id WHERE t.image_id = $1 AND v.blob_key <> ''`, id)
	if err != nil {
		return nil, fmt.Errorf("variant blobs of image %s: %w", id, err)
	}
	return keys, nil
}

// deleteVariants deletes the variant rows of task id and returns their
// blob keys, for a caller that drops a task's result without deleting the
// task (result expiry); it then checks those keys with referenced, like
// the result's own.
func deleteVariants(ctx context.Context, tx Tx, id string) ([]string, error) {
	keys, err := queryAll(ctx, tx, scanString,
		`DELETE FROM task_variants WHERE task_id = $1 RETURNING blob_key`, id)
	if err != nil {
		return nil, fmt.Errorf("delete variants of task %s: %w", id, err)
	}
	return slices.DeleteFunc(keys, func(k string) bool { return k == "" }), nil
}
