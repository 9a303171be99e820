package worker_test

import (
	"context"
	"io"
	"slices"
	"sync"
	"testing"

	"github.com/imgd/imgd"
)

var responsiveSet = imgd.MustParsePipeline(`[{"op":"responsive","widths":[100,200],"formats":["webp","jpeg"]}]`)

// putFaults is a real blob store whose Put number failAt (from 1) fails,
// and which calls onPut after each Put that succeeded.
type putFaults struct {
	imgd.BlobStore
	mu     sync.Mutex
	puts   int
	failAt int
	onPut  func(n int, key string)
}

func (f *putFaults) Put(ctx context.Context, r io.Reader) (string, int64, error) {
	f.mu.Lock()
	f.puts++
	n := f.puts
	f.mu.Unlock()
	if n == f.failAt {
		return "", 0, errDown
	}
	key, size, err := f.BlobStore.Put(ctx, r)
	if err == nil && f.onPut != nil {
		f.onPut(n, key)
	}
	return key, size, err
}

// blobKeys lists the keys in the real blob store, sorted.
func (e *env) blobKeys(t *testing.T, keys ...string) []string {
	t.Helper()
	var have []string
	for _, k := range keys {
		if _, err := e.files.Stat(t.Context(), k); err == nil {
			have = append(have, k)
		} else if imgd.CodeOf(err) != imgd.CodeNotFound {
			t.Fatalf("Stat(%s): %v", k, err)
		}
	}
	slices.Sort(have)
	return have
}

// A responsive task stores each variant, then the manifest, then completes;
// whatever stops it on the way, the blobs it wrote that nothing references
// are deleted.
func TestResponsiveBlobs(t *testing.T) {
	t.Parallel()

	t.Run("completes with every variant and a manifest", func(t *testing.T) {
		t.Parallel()
		var written []string
		e := newEnv(t, func(b imgd.BlobStore) imgd.BlobStore {
			return &putFaults{BlobStore: b, onPut: func(_ int, key string) { written = append(written, key) }}
		})
		task := e.createTask(t, e.upload(t, photo), responsiveSet)
		if err := e.worker.Work(t.Context(), job(task, 1)); err != nil {
			t.Fatalf("Work: %v", err)
		}
		got := e.getTask(t, task.ID)
		if got.Status != imgd.TaskCompleted || got.Result == nil || len(got.Result.Variants) != 4 {
			t.Fatalf("task = %s, result %+v; want completed with 4 variants", got.Status, got.Result)
		}
		if len(written) != 5 || written[4] != got.Result.BlobKey {
			t.Errorf("blobs written %v, want the 4 variants then the manifest %s", written, got.Result.BlobKey)
		}
		for i, v := range got.Result.Variants {
			if v.BlobKey != written[i] || v.Bytes != int64(len(fetch(t, e.files, v.BlobKey))) {
				t.Errorf("variant %d: key %s, %d bytes; want the %d-th blob written, its size", i, v.BlobKey, v.Bytes, i)
			}
		}
	})

	t.Run("a failed Put leaves no orphan", func(t *testing.T) {
		t.Parallel()
		var written []string
		e := newEnv(t, func(b imgd.BlobStore) imgd.BlobStore {
			return &putFaults{BlobStore: b, failAt: 3, onPut: func(_ int, key string) { written = append(written, key) }}
		})
		task := e.createTask(t, e.upload(t, photo), responsiveSet)
		if err := e.worker.Work(t.Context(), job(task, 1)); imgd.CodeOf(err) != imgd.CodeUnavailable {
			t.Fatalf("Work with the third Put failing = %v, want unavailable (retried)", err)
		}
		if len(written) != 2 {
			t.Fatalf("%d blobs written before the failure, want 2", len(written))
		}
		if left := e.blobKeys(t, written...); len(left) != 0 {
			t.Errorf("variant blobs left after the failed attempt: %v", left)
		}
		if got := e.getTask(t, task.ID); got.Status != imgd.TaskPending || got.Result != nil {
			t.Errorf("task = %s, result %v; want pending (to retry), no result", got.Status, got.Result)
		}
	})

	t.Run("canceled while running drops every blob", func(t *testing.T) {
		t.Parallel()
		var (
			e       *env
			written []string
			taskID  string
		)
		e = newEnv(t, func(b imgd.BlobStore) imgd.BlobStore {
			return &putFaults{BlobStore: b, onPut: func(n int, key string) {
				written = append(written, key)
				if n == 2 {
					if _, err := e.store.CancelTask(context.Background(), taskID); err != nil {
						t.Errorf("CancelTask: %v", err)
					}
				}
			}}
		})
		task := e.createTask(t, e.upload(t, photo), responsiveSet)
		taskID = task.ID
		if err := e.worker.Work(t.Context(), job(task, 1)); err != nil {
			t.Errorf("Work on a task canceled meanwhile = %v, want nil", err)
		}
		if got := e.getTask(t, task.ID); got.Status != imgd.TaskCanceled || got.Result != nil {
			t.Errorf("task = %s result %v, want canceled without result", got.Status, got.Result)
		}
		if len(written) != 5 {
			t.Fatalf("%d blobs written, want 5 (4 variants, the manifest)", len(written))
		}
		if left := e.blobKeys(t, written...); len(left) != 0 {
			t.Errorf("blobs left after the cancel: %v", left)
		}
	})

	t.Run("a variant another task uses stays", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, nil)
		im := e.upload(t, photo)
		first := e.createTask(t, im, responsiveSet)
		if err := e.worker.Work(t.Context(), job(first, 1)); err != nil {
			t.Fatal(err)
		}
		// A second upload of the same bytes reuses the set, and is deleted.
		twin := e.upload(t, photo)
		second := e.createTask(t, twin, responsiveSet)
		if err := e.worker.Work(t.Context(), job(second, 1)); err != nil {
			t.Fatal(err)
		}
		done := e.getTask(t, second.ID)
		if done.Attempt != 0 || done.Result.BlobKey == e.getTask(t, first.ID).Result.BlobKey {
			t.Errorf("identical set: attempt %d, manifest %s; want reuse (attempt 0) with a manifest of its own", done.Attempt, done.Result.BlobKey)
		}
		unref, err := e.store.DeleteImage(t.Context(), twin.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(unref) != 1 || unref[0] != done.Result.BlobKey {
			t.Errorf("DeleteImage(twin) unreferenced = %v, want only its manifest %s (the variants are the first task's)", unref, done.Result.BlobKey)
		}
	})
}
