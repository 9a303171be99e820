package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/imgd/imgd"
)

// resultExpirer is the expiry method of sqlstore.Store, which the
// maintenance job of internal/service uses.
type resultExpirer interface {
	ExpireResults(ctx context.Context, cutoff time.Time, limit int) (int, []string, error)
}

// testExpireResults: results finished before the cutoff lose their result
// (the task stays, completed, with error code expired), oldest first and
// at most limit at a time; only blobs nothing else references are
// reported; originals, younger results, and tasks without a result are
// untouched; FindResult no longer offers an expired result.
func testExpireResults(t *testing.T, open Open) {
	clk := newClock()
	h := open(t, Options{NowFunc: clk.Now})
	s, ctx := h.Store, t.Context()
	e, ok := s.(resultExpirer)
	if !ok {
		t.Fatalf("store %T has no ExpireResults", s)
	}
	complete := func(im imgd.Image, p imgd.Pipeline, r imgd.Result) imgd.Task {
		t.Helper()
		task := mustCreateTask(t, s, imgd.Task{ImageID: im.ID, Pipeline: p, Owner: im.Owner})
		if _, err := s.StartTask(ctx, task.ID, 1); err != nil {
			t.Fatal(err)
		}
		done, err := s.CompleteTask(ctx, task.ID, r)
		if err != nil {
			t.Fatal(err)
		}
		return done
	}

	a := mustCreateImage(t, s, NewImage("alice", "a"))
	b := mustCreateImage(t, s, NewImage("alice", "b-original-and-old-result"))
	c := mustCreateImage(t, s, NewImage("bob", "c"))
	// Old results, made at t0: one alone, one shared with a young result,
	// one whose bytes are also b's original.
	alone := complete(a, resize300, NewResult("old-alone"))
	sharedOld := complete(a, grayscale, NewResult("shared"))
	original := complete(c, resize300, NewResult("b-original-and-old-result"))
	failed := mustCreateTask(t, s, imgd.Task{ImageID: c.ID, Pipeline: grayscale, Owner: "bob"})
	if _, err := s.FailTask(ctx, failed.ID, imgd.Errorf(imgd.CodeUnsupported, "broken")); err != nil {
		t.Fatal(err)
	}
	pending := mustCreateTask(t, s, imgd.Task{ImageID: b.ID, Pipeline: grayscale, Owner: "alice"})
	clk.Advance(time.Hour)
	young := complete(b, resize300, NewResult("shared"))
	clk.Advance(time.Minute)
	cutoff := clk.Now().Add(-30 * time.Minute) // between the old results and the young one

	// A limit of 2 expires the two oldest; alone's blob goes, shared's stays.
	n, unref, err := e.ExpireResults(ctx, cutoff, 2)
	if err != nil {
		t.Fatalf("ExpireResults(limit 2): %v", err)
	}
	if n != 2 || !slices.Equal(unref, []string{alone.Result.BlobKey}) {
		t.Errorf("ExpireResults(limit 2) = %d, %v; want 2, [%s] (the shared blob is still young's result)", n, unref, alone.Result.BlobKey)
	}
	n, unref, err = e.ExpireResults(ctx, cutoff, 100)
	if err != nil {
		t.Fatalf("ExpireResults: %v", err)
	}
	if n != 1 || len(unref) != 0 {
		t.Errorf("ExpireResults(rest) = %d, %v; want 1 expired, no blob (its bytes are b's original)", n, unref)
	}
	n, unref, err = e.ExpireResults(ctx, cutoff, 100)
	if err != nil || n != 0 || len(unref) != 0 {
		t.Errorf("ExpireResults(again) = %d, %v, %v; want nothing left to expire", n, unref, err)
	}

	for _, task := range []imgd.Task{alone, sharedOld, original} {
		got, err := s.GetTask(ctx, task.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != imgd.TaskCompleted || got.Result != nil || got.ErrorCode != imgd.CodeExpired || got.ErrorMessage == "" {
			t.Errorf("GetTask(expired %s) = status %s, result %v, error %q %q; want completed, no result, error code expired with a message",
				task.ID, got.Status, got.Result, got.ErrorCode, got.ErrorMessage)
		}
		if got.FinishedAt == nil || !got.FinishedAt.Equal(*task.FinishedAt) {
			t.Errorf("GetTask(expired %s).FinishedAt = %v, want %v kept", task.ID, got.FinishedAt, task.FinishedAt)
		}
	}
	for id, want := range map[string]imgd.TaskStatus{young.ID: imgd.TaskCompleted, failed.ID: imgd.TaskFailed, pending.ID: imgd.TaskPending} {
		got, err := s.GetTask(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != want || got.ErrorCode == imgd.CodeExpired {
			t.Errorf("GetTask(%s) after expiry = %s %q, want %s, not expired", id, got.Status, got.ErrorCode, want)
		}
	}
	if got, err := s.GetTask(ctx, young.ID); err != nil || got.Result == nil || got.Result.BlobKey != young.Result.BlobKey {
		t.Errorf("GetTask(young) = %+v, %v; want its result kept", got.Result, err)
	}
	// The young result is still found for reuse; the expired alone's is not.
	if _, err := s.FindResult(ctx, a.SHA256, resize300.Hash()); imgd.CodeOf(err) != imgd.CodeNotFound {
		t.Errorf("FindResult(expired) error = %v, want not_found", err)
	}
	if r, err := s.FindResult(ctx, b.SHA256, resize300.Hash()); err != nil || r.BlobKey != young.Result.BlobKey {
		t.Errorf("FindResult(young) = %v, %v; want its result", r.BlobKey, err)
	}
	for _, im := range []imgd.Image{a, b, c} {
		if _, err := s.GetImage(ctx, im.ID); err != nil {
			t.Errorf("GetImage(%s) after expiry: %v, want the original kept", im.ID, err)
		}
	}

	// Once young expires too, the shared blob is unreferenced; b's original
	// still is referenced.
	clk.Advance(time.Hour)
	_, unref, err = e.ExpireResults(ctx, clk.Now(), 100)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{young.Result.BlobKey}, unref, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("ExpireResults(young) unreferenced (-want +got):\n%s", diff)
	}
	// Deleting an image whose tasks expired reports only what is left.
	got, err := s.DeleteImage(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{a.BlobKey}, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("DeleteImage(a, results expired) unreferenced (-want +got):\n%s", diff)
	}

	_, _, err = e.ExpireResults(ctx, clk.Now(), 0)
	wantCode(t, "ExpireResults(limit 0)", err, imgd.CodeInvalidArgument)
}

// testExpireResultsVariants: a responsive task's variants expire with its
// manifest; their blobs are reported unless something else uses them, and
// the task keeps its status (completed_with_errors here).
func testExpireResultsVariants(t *testing.T, open Open) {
	clk := newClock()
	h := open(t, Options{NowFunc: clk.Now})
	s, ctx := h.Store, t.Context()
	e, ok := s.(resultExpirer)
	if !ok {
		t.Fatalf("store %T has no ExpireResults", s)
	}
	im := mustCreateImage(t, s, NewImage("alice", "photo"))
	other := mustCreateImage(t, s, NewImage("alice", "variant-1-and-an-original"))
	task := completeWith(t, s, im, resize300, NewManifestResult("manifest",
		NewVariant(0, "variant-0"), NewVariant(1, "variant-1-and-an-original"), failedVariant(2)))
	clk.Advance(time.Hour)

	n, unref, err := e.ExpireResults(ctx, clk.Now(), 10)
	if err != nil {
		t.Fatalf("ExpireResults: %v", err)
	}
	want := []string{NewResult("manifest").BlobKey, NewVariant(0, "variant-0").BlobKey}
	slices.Sort(want)
	slices.Sort(unref)
	if n != 1 || !slices.Equal(unref, want) {
		t.Errorf("ExpireResults = %d, %v; want 1, %v (variant 1's bytes are %s's original)", n, unref, want, other.ID)
	}
	got, err := s.GetTask(ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != task.Status || got.Result != nil || got.ErrorCode != imgd.CodeExpired {
		t.Errorf("GetTask(expired responsive) = %s, result %+v, %q; want %s, no result, expired", got.Status, got.Result, got.ErrorCode, task.Status)
	}
	if c := count(t, h, `SELECT count(*) FROM task_variants WHERE task_id = $1`, task.ID); c != 0 {
		t.Errorf("%d variant rows left after expiry, want 0", c)
	}
}
