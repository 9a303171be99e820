package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/imgd/imgd"
)

var responsive = imgd.MustParsePipeline(`[{"op":"responsive","widths":[320,640],"formats":["webp","jpeg"]}]`)

// NewVariant returns a variant that succeeded, whose bytes would be content.
func NewVariant(index int, content string) imgd.Variant {
	sum := sha256.Sum256([]byte(content))
	return imgd.Variant{Index: index, Width: 320 * (index%2 + 1), Height: 240 * (index%2 + 1), Format: imgd.FormatWebP,
		MediaType: "image/webp", Bytes: int64(len(content)), BlobKey: imgd.BlobKey(sum[:]),
		Outputs: json.RawMessage(`{"compress":{"quality_used":71}}`)}
}

// NewManifestResult returns a responsive task's result: a manifest blob
// whose bytes would be content, with variants.
func NewManifestResult(content string, variants ...imgd.Variant) imgd.Result {
	r := NewResult(content)
	r.Format, r.MediaType, r.Outputs = imgd.FormatJSON, "application/json", nil
	r.Variants = variants
	return r
}

func failedVariant(index int) imgd.Variant {
	return imgd.Variant{Index: index, Width: 640, Format: imgd.FormatAVIF, ErrorCode: imgd.CodeOverLimit,
		ErrorMessage: "avif cannot store this"}
}

func completeWith(t *testing.T, s imgd.Store, im imgd.Image, p imgd.Pipeline, r imgd.Result) imgd.Task {
	t.Helper()
	task := mustCreateTask(t, s, imgd.Task{ImageID: im.ID, Pipeline: p, Owner: im.Owner})
	if _, err := s.StartTask(t.Context(), task.ID, 1); err != nil {
		t.Fatal(err)
	}
	done, err := s.CompleteTask(t.Context(), task.ID, r)
	if err != nil {
		t.Fatalf("CompleteTask(%s): %v", task.ID, err)
	}
	return done
}

// Variants are stored with the result, read back by every read, and make
// the status completed_with_errors when one failed.
func testVariantsRoundTrip(t *testing.T, open Open) {
	h := open(t, Options{})
	s, ctx := h.Store, t.Context()
	im := mustCreateImage(t, s, NewImage("alice", "responsive source"))

	partial := NewManifestResult("manifest 1", NewVariant(0, "v0"), failedVariant(1), NewVariant(2, "v2"))
	done := completeWith(t, s, im, responsive, partial)
	if done.Status != imgd.TaskCompletedWithErrors {
		t.Errorf("CompleteTask with a failed variant: status %s, want completed_with_errors", done.Status)
	}
	want := partial
	want.Srcset = map[imgd.Format]string{imgd.FormatWebP: imgd.VariantURL(done.ID, 0) + " 320w, " +
		imgd.VariantURL(done.ID, 2) + " 320w"}
	if diff := cmp.Diff(&want, done.Result); diff != "" {
		t.Errorf("CompleteTask result (-want +got):\n%s", diff)
	}
	got, err := s.GetTask(ctx, done.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(done, got); diff != "" {
		t.Errorf("GetTask differs from CompleteTask's answer (-complete +get):\n%s", diff)
	}
	page, err := s.ListTasks(ctx, imgd.TaskFilter{Owner: "alice", Status: imgd.TaskCompletedWithErrors})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("ListTasks(completed_with_errors) = %d items, %v; want 1", len(page.Items), err)
	}
	if diff := cmp.Diff(done, page.Items[0]); diff != "" {
		t.Errorf("ListTasks item differs (-complete +list):\n%s", diff)
	}

	// Completing again, even with every variant good, changes nothing.
	again, err := s.CompleteTask(ctx, done.ID, NewManifestResult("manifest 2", NewVariant(0, "v0"), NewVariant(1, "v1")))
	if err != nil {
		t.Fatalf("CompleteTask(completed_with_errors task): %v, want nil", err)
	}
	if diff := cmp.Diff(done, again); diff != "" {
		t.Errorf("CompleteTask(completed_with_errors task) changed it (-first +second):\n%s", diff)
	}

	// Only a result without failed variants is reused.
	_, err = s.FindResult(ctx, im.SHA256, responsive.Hash())
	wantCode(t, "FindResult(only a result with failed variants)", err, imgd.CodeNotFound)
	full := NewManifestResult("manifest 3", NewVariant(0, "v0"), NewVariant(1, "v1"))
	ok := completeWith(t, s, im, responsive, full)
	if ok.Status != imgd.TaskCompleted {
		t.Errorf("CompleteTask with every variant good: status %s, want completed", ok.Status)
	}
	found, err := s.FindResult(ctx, im.SHA256, responsive.Hash())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(full.Variants, found.Variants); diff != "" {
		t.Errorf("FindResult variants (-want +got):\n%s", diff)
	}
	// Reuse: another task completes with the found result.
	reused := completeWith(t, s, im, responsive, found)
	if diff := cmp.Diff(full.Variants, reused.Result.Variants); diff != "" {
		t.Errorf("reused result variants (-want +got):\n%s", diff)
	}
	if got, want := reused.Result.Srcset[imgd.FormatWebP], imgd.VariantURL(reused.ID, 0)+" 320w, "+
		imgd.VariantURL(reused.ID, 1)+" 640w"; got != want {
		t.Errorf("reused result srcset = %q, want %q (the new task's URLs)", got, want)
	}

	// Invalid variants are refused before anything is stored.
	other := mustCreateTask(t, s, imgd.Task{ImageID: im.ID, Pipeline: responsive, Owner: "alice"})
	for name, r := range map[string]imgd.Result{
		"variants of an image result": func() imgd.Result { r := NewResult("x"); r.Variants = full.Variants; return r }(),
		"manifest without variants":   NewManifestResult("y"),
		"index out of order":          NewManifestResult("z", NewVariant(1, "v1")),
		"failed variant with a blob": NewManifestResult("w", func() imgd.Variant {
			v := failedVariant(0)
			v.BlobKey = NewVariant(0, "v0").BlobKey
			return v
		}()),
	} {
		_, err := s.CompleteTask(ctx, other.ID, r)
		wantCode(t, "CompleteTask("+name+")", err, imgd.CodeInvalidArgument)
	}
	if got, _ := s.GetTask(ctx, other.ID); got.Status != imgd.TaskPending {
		t.Errorf("task after refused completions is %s, want pending", got.Status)
	}
}

// The blob reference rule counts variant blobs: deleting an image reports
// its variants' blobs only when no image, result or other variant uses
// them.
func testVariantsReferenceRule(t *testing.T, open Open) {
	h := open(t, Options{})
	s, ctx := h.Store, t.Context()
	a := mustCreateImage(t, s, NewImage("alice", "a"))
	b := mustCreateImage(t, s, NewImage("alice", "b"))
	c := mustCreateImage(t, s, NewImage("alice", "a's variant 1 and c's original"))
	d := mustCreateImage(t, s, NewImage("alice", "d"))

	v0, v1, v2 := NewVariant(0, "a's variant 0"), NewVariant(1, "a's variant 1 and c's original"), NewVariant(2, "a's and b's")
	if v1.BlobKey != c.BlobKey {
		t.Fatal("fixture: variant 1 and c's original differ")
	}
	manifestA := NewManifestResult("a's manifest", v0, v1, v2, failedVariant(3))
	completeWith(t, s, a, responsive, manifestA)
	// b's plain result is a's variant 2; d's set shares a's variant 0.
	completeWith(t, s, b, grayscale, imgd.Result{BlobKey: v2.BlobKey, Format: imgd.FormatWebP, Width: 1, Height: 1})
	manifestD := NewManifestResult("d's manifest", v0)
	completeWith(t, s, d, responsive, manifestD)

	keys := []string{v0.BlobKey, v1.BlobKey, v2.BlobKey, manifestA.BlobKey}
	unref, err := s.UnreferencedBlobs(ctx, keys)
	if err != nil || len(unref) != 0 {
		t.Errorf("UnreferencedBlobs(a's blobs) = %v, %v; want none: all in use", unref, err)
	}
	steps := []struct {
		delete string
		want   []string
	}{
		{a.ID, []string{a.BlobKey, manifestA.BlobKey}},             // v0: d's set, v1: c's original, v2: b's result
		{d.ID, []string{d.BlobKey, manifestD.BlobKey, v0.BlobKey}}, // v0's last user
		{c.ID, []string{c.BlobKey}},                                // v1 is c's original
		{b.ID, []string{b.BlobKey, v2.BlobKey}},
	}
	for i, st := range steps {
		got, err := s.DeleteImage(ctx, st.delete)
		if err != nil {
			t.Fatalf("step %d: DeleteImage(%s): %v", i, st.delete, err)
		}
		slices.Sort(got)
		slices.Sort(st.want)
		if diff := cmp.Diff(st.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("step %d: DeleteImage unreferenced keys (-want +got):\n%s", i, diff)
		}
	}
	if n := count(t, h, `SELECT count(*) FROM task_variants`); n != 0 {
		t.Errorf("%d variant rows left after every image was deleted, want 0", n)
	}
}

// Migrations moves a backend's schema: down to a version, and up to the
// newest.
type Migrations struct {
	Down func(ctx context.Context, version int64) error
	Up   func(ctx context.Context) error
}

// RunVariantsMigration checks migration 00003, which rebuilds the tasks and
// webhook_deliveries tables to let the status check accept
// completed_with_errors: going down to version 2 and up again keeps every
// task and webhook delivery (a rebuild done wrong would empty them through
// ON DELETE CASCADE), and maps completed_with_errors to completed on the
// way down.
func RunVariantsMigration(t *testing.T, h Harness, m Migrations) {
	s, ctx := h.Store, t.Context()
	im := mustCreateImage(t, s, NewImage("", "migrated"))
	partial := completeWith(t, s, im, responsive, NewManifestResult("m", NewVariant(0, "v0"), failedVariant(1)))
	pending := mustCreateTask(t, s, imgd.Task{ImageID: im.ID, Pipeline: grayscale})
	if err := h.Exec(ctx, `INSERT INTO webhook_deliveries (id, task_id, url, event_id, attempt, status_code, error, duration_ms, created_at)
		VALUES ('d1', $1, 'https://example.com/hook', 'e1', 1, 204, '', 12, $2)`, partial.ID, partial.CreatedAt); err != nil {
		t.Fatalf("insert webhook delivery: %v", err)
	}
	counts := func(when string, tasks, deliveries int) {
		t.Helper()
		if n := count(t, h, `SELECT count(*) FROM tasks`); n != tasks {
			t.Errorf("%s: %d tasks, want %d", when, n, tasks)
		}
		if n := count(t, h, `SELECT count(*) FROM webhook_deliveries WHERE task_id = $1`, partial.ID); n != deliveries {
			t.Errorf("%s: %d webhook deliveries, want %d", when, n, deliveries)
		}
	}
	if err := m.Down(ctx, 2); err != nil {
		t.Fatalf("migrate down to 2: %v", err)
	}
	counts("at version 2", 2, 1)
	if n := count(t, h, `SELECT count(*) FROM tasks WHERE id = $1 AND status = 'completed'`, partial.ID); n != 1 {
		t.Errorf("at version 2 the task completed with errors is not completed")
	}
	if err := m.Up(ctx); err != nil {
		t.Fatalf("migrate up again: %v", err)
	}
	counts("up again", 2, 1)
	got, err := s.GetTask(ctx, pending.ID)
	if err != nil || got.Status != imgd.TaskPending {
		t.Errorf("pending task after down and up: %s, %v", got.Status, err)
	}
	// Deleting a task still cascades to its deliveries, and the new status
	// is accepted again.
	again := completeWith(t, s, im, responsive, NewManifestResult("m2", failedVariant(0), NewVariant(1, "v1")))
	if again.Status != imgd.TaskCompletedWithErrors {
		t.Errorf("completing after down and up: %s, want completed_with_errors", again.Status)
	}
	if _, err := s.DeleteImage(ctx, im.ID); err != nil {
		t.Fatal(err)
	}
	counts("image deleted", 0, 0)
}
