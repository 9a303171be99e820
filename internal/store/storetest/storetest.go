// Package storetest is the conformance suite of imgd.Store: every backend
// runs Run, which fixes the behaviour the rest of imgd relies on (river's
// riverdrivertest is the model).
package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/queue"
)

// Row is one result row, as *sql.Row and pgx.Row provide.
type Row interface {
	Scan(dest ...any) error
}

// Harness is one fresh, migrated backend for one test.
type Harness struct {
	Store imgd.Store
	// Dialect is "sqlite" or "postgres"; it picks the few statements of the
	// suite that are not portable (a trigger, reading River's JSON args).
	Dialect string
	// Exec runs a statement on the store's database, outside the store.
	Exec func(ctx context.Context, query string, args ...any) error
	// QueryRow runs a query on the store's database, outside the store.
	QueryRow func(ctx context.Context, query string, args ...any) Row
}

// Options are what a test asks of the backend it opens.
type Options struct {
	// NowFunc is the store's clock; nil means time.Now.
	NowFunc func() time.Time
}

// Open returns a fresh backend owned by t (closed and removed in t.Cleanup).
type Open func(t *testing.T, opts Options) Harness

// Run runs the conformance suite; every subtest opens its own backend and
// runs in parallel.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Open)
	}{
		{"ImageRoundTrip", testImageRoundTrip},
		{"ImageValidation", testImageValidation},
		{"ImageIdempotency", testImageIdempotency},
		{"ImageIdempotencyConcurrent", testImageIdempotencyConcurrent},
		{"NotFound", testNotFound},
		{"ListImagesPagination", testListImagesPagination},
		{"ListImagesStableUnderInserts", testListImagesStableUnderInserts},
		{"ListImagesSameCreatedAt", testListImagesSameCreatedAt},
		{"ListInvalidArguments", testListInvalidArguments},
		{"DeleteImageReferenceRule", testDeleteImageReferenceRule},
		{"DeleteImageCancelsJobs", testDeleteImageCancelsJobs},
		{"TaskRoundTrip", testTaskRoundTrip},
		{"TaskValidation", testTaskValidation},
		{"TaskAndJobAtomic", testTaskAndJobAtomic},
		{"TaskUnknownImage", testTaskUnknownImage},
		{"TaskIdempotency", testTaskIdempotency},
		{"TaskTransitions", testTaskTransitions},
		{"TaskLifecycle", testTaskLifecycle},
		{"CompleteIdempotent", testCompleteIdempotent},
		{"CancelTaskCancelsJob", testCancelTaskCancelsJob},
		{"ListTasksFilters", testListTasksFilters},
		{"FindResult", testFindResult},
		{"UnreferencedBlobs", testUnreferencedBlobs},
		{"ExpireResults", testExpireResults},
		{"ExpireResultsVariants", testExpireResultsVariants},
		{"VariantsRoundTrip", testVariantsRoundTrip},
		{"VariantsReferenceRule", testVariantsReferenceRule},
		{"ConcurrentTaskCreation", testConcurrentTaskCreation},
		{"Ping", testPing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open)
		})
	}
}

// ---- fixtures ----

// NewImage returns a valid image whose bytes would be content, owned by owner.
func NewImage(owner, content string) imgd.Image {
	sum := sha256.Sum256([]byte(content))
	return imgd.Image{
		Filename:    "photo.png",
		MediaType:   "image/png",
		Format:      imgd.FormatPNG,
		Width:       640,
		Height:      480,
		Frames:      1,
		Bytes:       int64(len(content)),
		SHA256:      fmt.Sprintf("%x", sum),
		Orientation: 1,
		Owner:       owner,
		BlobKey:     imgd.BlobKey(sum[:]),
	}
}

// NewResult returns a valid result whose bytes would be content.
func NewResult(content string) imgd.Result {
	sum := sha256.Sum256([]byte(content))
	return imgd.Result{
		BlobKey:   imgd.BlobKey(sum[:]),
		Format:    imgd.FormatWebP,
		MediaType: "image/webp",
		Width:     300,
		Height:    225,
		Bytes:     int64(len(content)),
		Outputs:   json.RawMessage(`{"detect_orientation":{"angle":90}}`),
	}
}

var (
	resize300 = imgd.MustParsePipeline(`[{"op":"resize","width":300},{"op":"convert","format":"webp"}]`)
	grayscale = imgd.MustParsePipeline(`[{"op":"grayscale"}]`)
)

func mustCreateImage(t *testing.T, s imgd.Store, im imgd.Image) imgd.Image {
	t.Helper()
	got, created, err := s.CreateImage(t.Context(), im)
	if err != nil || !created {
		t.Fatalf("CreateImage(%q) = created %v, %v; want a new image", im.Filename, created, err)
	}
	return got
}

func mustCreateTask(t *testing.T, s imgd.Store, task imgd.Task) imgd.Task {
	t.Helper()
	got, created, err := s.CreateTask(t.Context(), task)
	if err != nil || !created {
		t.Fatalf("CreateTask(image %s) = created %v, %v; want a new task", task.ImageID, created, err)
	}
	return got
}

func wantCode(t *testing.T, call string, err error, want imgd.Code) {
	t.Helper()
	if got := imgd.CodeOf(err); got != want {
		t.Errorf("%s error = %v (code %q), want code %q", call, err, got, want)
	}
}

func count(t *testing.T, h Harness, query string, args ...any) int {
	t.Helper()
	var n int64
	if err := h.QueryRow(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return int(n)
}

// job is what the suite reads of a River job.
type job struct {
	Kind        string
	Queue       string
	State       string
	Priority    int
	MaxAttempts int
	Args        map[string]any
}

func getJob(t *testing.T, h Harness, id int64) (job, bool) {
	t.Helper()
	argsText := "CAST(args AS TEXT)"
	if h.Dialect == "sqlite" {
		argsText = "json(args)" // River stores JSONB there
	}
	if count(t, h, `SELECT count(*) FROM river_job WHERE id = $1`, id) == 0 {
		return job{}, false
	}
	var (
		j    job
		args string
	)
	err := h.QueryRow(t.Context(), `SELECT kind, queue, state, priority, max_attempts, `+argsText+` FROM river_job WHERE id = $1`, id).
		Scan(&j.Kind, &j.Queue, &j.State, &j.Priority, &j.MaxAttempts, &args)
	if err != nil {
		t.Fatalf("read river job %d: %v", id, err)
	}
	if err := json.Unmarshal([]byte(args), &j.Args); err != nil {
		t.Fatalf("river job %d args %q: %v", id, args, err)
	}
	return j, true
}

// clock is a settable NowFunc.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// ---- images ----

func testImageRoundTrip(t *testing.T, open Open) {
	clk := newClock()
	h := open(t, Options{NowFunc: clk.Now})
	in := NewImage("alice", "round trip")
	in.IdempotencyKey = "upload-1"
	got := mustCreateImage(t, h.Store, in)

	if len(got.ID) != 36 || got.ID[14] != '7' {
		t.Errorf("CreateImage ID = %q, want a UUIDv7", got.ID)
	}
	want := in
	want.ID = got.ID
	want.CreatedAt = clk.Now()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CreateImage returned (-want +got):\n%s", diff)
	}
	stored, err := h.Store.GetImage(t.Context(), got.ID)
	if err != nil {
		t.Fatalf("GetImage(%s): %v", got.ID, err)
	}
	if diff := cmp.Diff(want, stored); diff != "" {
		t.Errorf("GetImage(%s) (-want +got):\n%s", got.ID, diff)
	}

	// A caller-chosen ID is kept, and a second image with it is rejected.
	in2 := NewImage("alice", "own id")
	in2.ID = imgd.NewID()
	if got := mustCreateImage(t, h.Store, in2); got.ID != in2.ID {
		t.Errorf("CreateImage with ID %s returned ID %s", in2.ID, got.ID)
	}
	_, _, err = h.Store.CreateImage(t.Context(), in2)
	wantCode(t, "CreateImage(existing ID)", err, imgd.CodeInvalidArgument)
}

func testImageValidation(t *testing.T, open Open) {
	h := open(t, Options{})
	tests := []struct {
		name   string
		modify func(*imgd.Image)
	}{
		{"no media type", func(im *imgd.Image) { im.MediaType = "" }},
		{"no format", func(im *imgd.Image) { im.Format = "" }},
		{"zero width", func(im *imgd.Image) { im.Width = 0 }},
		{"zero frames", func(im *imgd.Image) { im.Frames = 0 }},
		{"negative bytes", func(im *imgd.Image) { im.Bytes = -1 }},
		{"short sha256", func(im *imgd.Image) { im.SHA256 = "abc" }},
		{"uppercase sha256", func(im *imgd.Image) { im.SHA256 = strings.ToUpper(im.SHA256) }},
		{"orientation 9", func(im *imgd.Image) { im.Orientation = 9 }},
		{"no blob key", func(im *imgd.Image) { im.BlobKey = "" }},
		{"path in blob key", func(im *imgd.Image) { im.BlobKey = "sha256/../../etc/passwd" }},
		{"long filename", func(im *imgd.Image) { im.Filename = strings.Repeat("x", imgd.MaxFilenameLen+1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			im := NewImage("", "validation")
			tt.modify(&im)
			_, _, err := h.Store.CreateImage(t.Context(), im)
			wantCode(t, "CreateImage("+tt.name+")", err, imgd.CodeInvalidArgument)
		})
	}
}

func testImageIdempotency(t *testing.T, open Open) {
	h := open(t, Options{})
	ctx := t.Context()
	in := NewImage("alice", "same bytes")
	in.IdempotencyKey = "k1"
	first := mustCreateImage(t, h.Store, in)

	again, created, err := h.Store.CreateImage(ctx, in)
	if err != nil || created || again.ID != first.ID {
		t.Errorf("CreateImage(same key again) = %s, created %v, %v; want %s, false, nil", again.ID, created, err, first.ID)
	}
	other := in
	other.Owner = "bob"
	if got := mustCreateImage(t, h.Store, other); got.ID == first.ID {
		t.Errorf("CreateImage(same key, other owner) returned alice's image %s", got.ID)
	}
	noKey := in
	noKey.IdempotencyKey = ""
	if got := mustCreateImage(t, h.Store, noKey); got.ID == first.ID {
		t.Errorf("CreateImage(no key) returned the keyed image %s", got.ID)
	}
	changed := NewImage("alice", "other bytes")
	changed.IdempotencyKey = "k1"
	_, _, err = h.Store.CreateImage(ctx, changed)
	wantCode(t, "CreateImage(same key, other content)", err, imgd.CodeInvalidArgument)

	page, err := h.Store.ListImages(ctx, imgd.ImageFilter{Owner: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 2 {
		t.Errorf("ListImages(alice) has %d images, want 2 (keyed once, unkeyed once)", len(page.Items))
	}
}

func testImageIdempotencyConcurrent(t *testing.T, open Open) {
	h := open(t, Options{})
	in := NewImage("alice", "raced upload")
	in.IdempotencyKey = "retry-storm"
	const n = 10
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		ids     = map[string]int{}
		created int
	)
	for range n {
		wg.Go(func() {
			im, c, err := h.Store.CreateImage(t.Context(), in)
			if err != nil {
				t.Errorf("CreateImage(concurrent, same key): %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			ids[im.ID]++
			if c {
				created++
			}
		})
	}
	wg.Wait()
	if len(ids) != 1 || created != 1 {
		t.Errorf("%d concurrent CreateImage with one key made ids %v, %d created; want one id, 1 created", n, ids, created)
	}
}

func testNotFound(t *testing.T, open Open) {
	h := open(t, Options{})
	s := h.Store
	im := mustCreateImage(t, s, NewImage("", "exists"))
	missing := imgd.NewID()
	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"GetImage", func(ctx context.Context) error { _, err := s.GetImage(ctx, missing); return err }},
		{"DeleteImage", func(ctx context.Context) error { _, err := s.DeleteImage(ctx, missing); return err }},
		{"GetTask", func(ctx context.Context) error { _, err := s.GetTask(ctx, missing); return err }},
		{"StartTask", func(ctx context.Context) error { _, err := s.StartTask(ctx, missing, 1); return err }},
		{"RetryTask", func(ctx context.Context) error {
			_, err := s.RetryTask(ctx, missing, errors.New("x"))
			return err
		}},
		{"CompleteTask", func(ctx context.Context) error {
			_, err := s.CompleteTask(ctx, missing, NewResult("r"))
			return err
		}},
		{"FailTask", func(ctx context.Context) error { _, err := s.FailTask(ctx, missing, errors.New("x")); return err }},
		{"CancelTask", func(ctx context.Context) error { _, err := s.CancelTask(ctx, missing); return err }},
		{"FindResult", func(ctx context.Context) error { _, err := s.FindResult(ctx, im.SHA256, resize300.Hash()); return err }},
		{"GetImage(not an id)", func(ctx context.Context) error { _, err := s.GetImage(ctx, "'; DROP TABLE images; --"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantCode(t, tt.name, tt.call(t.Context()), imgd.CodeNotFound)
		})
	}
}

// collectImages pages through ListImages and returns the IDs in order.
func collectImages(t *testing.T, s imgd.Store, owner string, limit int) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for range 1000 {
		page, err := s.ListImages(t.Context(), imgd.ImageFilter{Owner: owner, Cursor: cursor, Limit: limit})
		if err != nil {
			t.Fatalf("ListImages(%q, cursor %q): %v", owner, cursor, err)
		}
		if len(page.Items) > limit {
			t.Fatalf("ListImages(limit %d) returned %d items", limit, len(page.Items))
		}
		for _, im := range page.Items {
			ids = append(ids, im.ID)
		}
		if page.Next == "" {
			return ids
		}
		cursor = page.Next
	}
	t.Fatal("ListImages never returned an empty Next")
	return nil
}

func testListImagesPagination(t *testing.T, open Open) {
	clk := newClock()
	h := open(t, Options{NowFunc: clk.Now})
	var want []string
	for i := range 23 {
		clk.Advance(time.Second)
		want = append(want, mustCreateImage(t, h.Store, NewImage("alice", fmt.Sprint("img", i))).ID)
		mustCreateImage(t, h.Store, NewImage("bob", fmt.Sprint("bob", i)))
	}
	slices.Reverse(want) // newest first
	for _, limit := range []int{1, 5, 23, 50} {
		if diff := cmp.Diff(want, collectImages(t, h.Store, "alice", limit)); diff != "" {
			t.Errorf("ListImages(alice, limit %d) pages (-want +got):\n%s", limit, diff)
		}
	}
	page, err := h.Store.ListImages(t.Context(), imgd.ImageFilter{Owner: "carol"})
	if err != nil || len(page.Items) != 0 || page.Next != "" {
		t.Errorf("ListImages(carol) = %d items, next %q, %v; want empty", len(page.Items), page.Next, err)
	}
}

func testListImagesStableUnderInserts(t *testing.T, open Open) {
	clk := newClock()
	h := open(t, Options{NowFunc: clk.Now})
	ctx := t.Context()
	var want []string
	for i := range 10 {
		clk.Advance(time.Millisecond)
		want = append(want, mustCreateImage(t, h.Store, NewImage("alice", fmt.Sprint("old", i))).ID)
	}
	slices.Reverse(want)

	var got []string
	page, err := h.Store.ListImages(ctx, imgd.ImageFilter{Owner: "alice", Limit: 4})
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range page.Items {
		got = append(got, im.ID)
	}
	// New images arrive between pages, one at the same instant as the oldest
	// image on the first page; one image is deleted.
	for i := range 5 {
		clk.Advance(time.Millisecond)
		mustCreateImage(t, h.Store, NewImage("alice", fmt.Sprint("new", i)))
	}
	deleted := want[7]
	if _, err := h.Store.DeleteImage(ctx, deleted); err != nil {
		t.Fatal(err)
	}
	for page.Next != "" {
		page, err = h.Store.ListImages(ctx, imgd.ImageFilter{Owner: "alice", Limit: 4, Cursor: page.Next})
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range page.Items {
			got = append(got, im.ID)
		}
	}
	want = slices.DeleteFunc(want, func(id string) bool { return id == deleted })
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pages with inserts between them (-want +got):\n%s", diff)
	}
}

func testListImagesSameCreatedAt(t *testing.T, open Open) {
	clk := newClock() // never advances: every image has the same created_at
	h := open(t, Options{NowFunc: clk.Now})
	var want []string
	for i := range 9 {
		want = append(want, mustCreateImage(t, h.Store, NewImage("", fmt.Sprint(i))).ID)
	}
	slices.Sort(want)
	slices.Reverse(want) // ties break by ID, descending
	if diff := cmp.Diff(want, collectImages(t, h.Store, "", 2)); diff != "" {
		t.Errorf("ListImages with equal created_at (-want +got):\n%s", diff)
	}
}

func testListInvalidArguments(t *testing.T, open Open) {
	h := open(t, Options{})
	ctx := t.Context()
	tests := []struct {
		name string
		call func() error
	}{
		{"images limit -1", func() error { _, err := h.Store.ListImages(ctx, imgd.ImageFilter{Limit: -1}); return err }},
		{"images limit over max", func() error {
			_, err := h.Store.ListImages(ctx, imgd.ImageFilter{Limit: imgd.MaxPageLimit + 1})
			return err
		}},
		{"images garbage cursor", func() error { _, err := h.Store.ListImages(ctx, imgd.ImageFilter{Cursor: "%%%"}); return err }},
		{"images base64 non-cursor", func() error { _, err := h.Store.ListImages(ctx, imgd.ImageFilter{Cursor: "aGVsbG8"}); return err }},
		{"tasks bad status", func() error { _, err := h.Store.ListTasks(ctx, imgd.TaskFilter{Status: "done"}); return err }},
		{"tasks garbage cursor", func() error { _, err := h.Store.ListTasks(ctx, imgd.TaskFilter{Cursor: "x"}); return err }},
	}
	for _, tt := range tests {
		wantCode(t, tt.name, tt.call(), imgd.CodeInvalidArgument)
	}
}

func testDeleteImageReferenceRule(t *testing.T, open Open) {
	h := open(t, Options{})
	s, ctx := h.Store, t.Context()
	// a and b are two uploads of the same bytes: one blob.
	a := mustCreateImage(t, s, NewImage("alice", "shared bytes"))
	b := mustCreateImage(t, s, NewImage("bob", "shared bytes"))
	if a.BlobKey != b.BlobKey {
		t.Fatalf("same content, different blob keys %s, %s", a.BlobKey, b.BlobKey)
	}
	// c's result is stored under the same key as d's original; e and a share
	// a result blob.
	c := mustCreateImage(t, s, NewImage("alice", "c"))
	d := mustCreateImage(t, s, NewImage("alice", "d-and-c's-result"))
	e := mustCreateImage(t, s, NewImage("alice", "e"))
	complete := func(im imgd.Image, p imgd.Pipeline, r imgd.Result) {
		t.Helper()
		task := mustCreateTask(t, s, imgd.Task{ImageID: im.ID, Pipeline: p, Owner: im.Owner})
		if _, err := s.StartTask(ctx, task.ID, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CompleteTask(ctx, task.ID, r); err != nil {
			t.Fatal(err)
		}
	}
	complete(c, resize300, NewResult("d-and-c's-result"))
	complete(a, resize300, NewResult("a-and-e-result"))
	complete(e, grayscale, NewResult("a-and-e-result"))
	complete(c, grayscale, NewResult("c-only-result"))
	mustCreateTask(t, s, imgd.Task{ImageID: c.ID, Pipeline: grayscale, Owner: "alice"}) // pending, no result

	steps := []struct {
		delete string
		want   []string
	}{
		{a.ID, nil}, // b still holds the original; e holds the result
		{b.ID, []string{a.BlobKey}},
		{c.ID, []string{NewResult("c-only-result").BlobKey, c.BlobKey}}, // d's original keeps "d-and-c's-result"
		{d.ID, []string{d.BlobKey}},
		{e.ID, []string{NewResult("a-and-e-result").BlobKey, e.BlobKey}},
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
		if _, err := s.GetImage(ctx, st.delete); imgd.CodeOf(err) != imgd.CodeNotFound {
			t.Errorf("step %d: GetImage after delete: %v, want not_found", i, err)
		}
	}
	if n := count(t, h, `SELECT count(*) FROM tasks`); n != 0 {
		t.Errorf("%d tasks left after deleting every image", n)
	}
	_, err := s.DeleteImage(ctx, a.ID)
	wantCode(t, "DeleteImage(already deleted)", err, imgd.CodeNotFound)
}

func testDeleteImageCancelsJobs(t *testing.T, open Open) {
	h := open(t, Options{})
	s, ctx := h.Store, t.Context()
	im := mustCreateImage(t, s, NewImage("", "to delete"))
	pending := mustCreateTask(t, s, imgd.Task{ImageID: im.ID, Pipeline: resize300})
	running := mustCreateTask(t, s, imgd.Task{ImageID: im.ID, Pipeline: grayscale})
	if _, err := s.StartTask(ctx, running.ID, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteImage(ctx, im.ID); err != nil {
		t.Fatal(err)
	}
	for _, task := range []imgd.Task{pending, running} {
		if _, err := s.GetTask(ctx, task.ID); imgd.CodeOf(err) != imgd.CodeNotFound {
			t.Errorf("GetTask(%s) after its image was deleted: %v, want not_found", task.ID, err)
		}
		if j, ok := getJob(t, h, task.JobID); !ok || j.State != "cancelled" {
			t.Errorf("job %d of deleted image's task: %+v (exists %v), want state cancelled", task.JobID, j, ok)
		}
	}
}

// ---- tasks ----

func testTaskRoundTrip(t *testing.T, open Open) {
	clk := newClock()
	h := open(t, Options{NowFunc: clk.Now})
	s, ctx := h.Store, t.Context()
	im := mustCreateImage(t, s, NewImage("alice", "task image"))
	in := imgd.Task{ImageID: im.ID, Pipeline: resize300, Priority: 3, WebhookURL: "https://example.com/hook",
		Owner: "alice", IdempotencyKey: "t1"}
	got := mustCreateTask(t, s, in)

	want := in
	want.ID = got.ID
	want.PipelineHash = resize300.Hash()
	want.ImageSHA256 = im.SHA256
	want.Status = imgd.TaskPending
	want.CreatedAt = clk.Now()
	want.JobID = got.JobID
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CreateTask returned (-want +got):\n%s", diff)
	}
	stored, err := s.GetTask(ctx, got.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, stored); diff != "" {
		t.Errorf("GetTask (-want +got):\n%s", diff)
	}
	if string(stored.Pipeline.Canonical()) != string(resize300.Canonical()) {
		t.Errorf("stored pipeline %s, want %s", stored.Pipeline.Canonical(), resize300.Canonical())
	}

	j, ok := getJob(t, h, got.JobID)
	wantJob := job{Kind: queue.TaskKind, Queue: "default", State: "available", Priority: 3,
		MaxAttempts: queue.MaxAttempts, Args: map[string]any{"task_id": got.ID}}
	if !ok {
		t.Fatalf("no River job %d for task %s", got.JobID, got.ID)
	}
	if diff := cmp.Diff(wantJob, j); diff != "" {
		t.Errorf("River job of the task (-want +got):\n%s", diff)
	}

	def := mustCreateTask(t, s, imgd.Task{ImageID: im.ID, Pipeline: grayscale})
	if def.Priority != imgd.DefaultPriority {
		t.Errorf("CreateTask(priority 0).Priority = %d, want %d", def.Priority, imgd.DefaultPriority)
	}
	if j, _ := getJob(t, h, def.JobID); j.Priority != imgd.DefaultPriority {
		t.Errorf("job priority = %d, want %d", j.Priority, imgd.DefaultPriority)
	}
}

func testTaskValidation(t *testing.T, open Open) {
	h := open(t, Options{})
	im := mustCreateImage(t, h.Store, NewImage("", "validation"))
	tests := []struct {
		name string
		task imgd.Task
	}{
		{"no image", imgd.Task{Pipeline: resize300}},
		{"no pipeline", imgd.Task{ImageID: im.ID}},
		{"priority 5", imgd.Task{ImageID: im.ID, Pipeline: resize300, Priority: 5}},
		{"priority -1", imgd.Task{ImageID: im.ID, Pipeline: resize300, Priority: -1}},
		{"long webhook", imgd.Task{ImageID: im.ID, Pipeline: resize300, WebhookURL: strings.Repeat("x", imgd.MaxWebhookURLLen+1)}},
	}
	for _, tt := range tests {
		_, _, err := h.Store.CreateTask(t.Context(), tt.task)
		wantCode(t, "CreateTask("+tt.name+")", err, imgd.CodeInvalidArgument)
	}
	if n := count(t, h, `SELECT count(*) FROM river_job`); n != 0 {
		t.Errorf("%d River jobs after only invalid tasks, want 0", n)
	}
}

// failAfterJobTrigger makes inserting a task fail when, and only when, its
// River job is already in the table, inside the same transaction: it proves
// the job is inserted first and that a failure after it rolls both back.
var failAfterJobTrigger = map[string][]string{
	"sqlite": {`CREATE TRIGGER fail_after_job BEFORE INSERT ON tasks
		WHEN NEW.webhook_url = 'https://fail.invalid/'
			AND EXISTS (SELECT 1 FROM river_job WHERE json_extract(args, '$.task_id') = NEW.id)
		BEGIN SELECT RAISE(ABORT, 'injected failure after the job insert'); END`},
	"postgres": {`CREATE FUNCTION fail_after_job() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.webhook_url = 'https://fail.invalid/'
				AND EXISTS (SELECT 1 FROM river_job WHERE args->>'task_id' = NEW.id) THEN
				RAISE EXCEPTION 'injected failure after the job insert';
			END IF;
			RETURN NEW;
		END $$`,
		`CREATE TRIGGER fail_after_job BEFORE INSERT ON tasks
			FOR EACH ROW EXECUTE FUNCTION fail_after_job()`},
}

func testTaskAndJobAtomic(t *testing.T, open Open) {
	h := open(t, Options{})
	s, ctx := h.Store, t.Context()
	stmts, ok := failAfterJobTrigger[h.Dialect]
	if !ok {
		t.Fatalf("no fault-injection trigger for dialect %q", h.Dialect)
	}
	for _, q := range stmts {
		if err := h.Exec(ctx, q); err != nil {
			t.Fatalf("create trigger: %v", err)
		}
	}
	im := mustCreateImage(t, s, NewImage("", "atomic"))
	ok1 := mustCreateTask(t, s, imgd.Task{ImageID: im.ID, Pipeline: resize300})

	id := imgd.NewID()
	_, _, err := s.CreateTask(ctx, imgd.Task{ID: id, ImageID: im.ID, Pipeline: grayscale, WebhookURL: "https://fail.invalid/"})
	if err == nil {
		t.Fatal("CreateTask with the failing trigger succeeded: the job was not inserted before the task, in one transaction")
	}
	if n := count(t, h, `SELECT count(*) FROM tasks WHERE id = $1`, id); n != 0 {
		t.Errorf("%d task rows after the failed transaction, want 0", n)
	}
	if n := count(t, h, `SELECT count(*) FROM river_job`); n != 1 {
		t.Errorf("%d River jobs after the failed transaction, want 1 (the earlier task's)", n)
	}
	if _, ok := getJob(t, h, ok1.JobID); !ok {
		t.Errorf("the earlier task's job %d is gone", ok1.JobID)
	}
	// The store is still usable and the same ID can be created afterwards.
	if err := h.Exec(ctx, `DROP TRIGGER fail_after_job`+map[string]string{"postgres": " ON tasks"}[h.Dialect]); err != nil {
		t.Fatal(err)
	}
	mustCreateTask(t, s, imgd.Task{ID: id, ImageID: im.ID, Pipeline: grayscale, WebhookURL: "https://fail.invalid/"})
	if n := count(t, h, `SELECT count(*) FROM river_job`); n != 2 {
		t.Errorf("%d River jobs, want 2", n)
	}
}

func testTaskUnknownImage(t *testing.T, open Open) {
	h := open(t, Options{})
	_, _, err := h.Store.CreateTask(t.Context(), imgd.Task{ImageID: imgd.NewID(), Pipeline: resize300})
	wantCode(t, "CreateTask(unknown image)", err, imgd.CodeNotFound)
	if n := count(t, h, `SELECT count(*) FROM river_job`); n != 0 {
		t.Errorf("%d River jobs after CreateTask(unknown image), want 0", n)
	}
}

func testTaskIdempotency(t *testing.T, open Open) {
	h := open(t, Options{})
	s, ctx := h.Store, t.Context()
	im := mustCreateImage(t, s, NewImage("alice", "idem"))
	im2 := mustCreateImage(t, s, NewImage("alice", "idem2"))
	in := imgd.Task{ImageID: im.ID, Pipeline: resize300, Owner: "alice", IdempotencyKey: "req-1"}
	first := mustCreateTask(t, s, in)

	again, created, err := s.CreateTask(ctx, in)
	if err != nil || created || again.ID != first.ID || again.JobID != first.JobID {
		t.Errorf("CreateTask(same key) = %s job %d, created %v, %v; want %s job %d, false, nil",
			again.ID, again.JobID, created, err, first.ID, first.JobID)
	}
	const n = 8 // concurrent retries of the same request
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			got, created, err := s.CreateTask(t.Context(), in)
			if err != nil || created || got.ID != first.ID {
				t.Errorf("concurrent CreateTask(same key) = %s, created %v, %v; want %s, false, nil", got.ID, created, err, first.ID)
			}
		})
	}
	wg.Wait()
	if c := count(t, h, `SELECT count(*) FROM river_job`); c != 1 {
		t.Errorf("%d River jobs for one idempotent task, want 1", c)
	}

	tests := []struct {
		name string
		task imgd.Task
	}{
		{"other image", imgd.Task{ImageID: im2.ID, Pipeline: resize300, Owner: "alice", IdempotencyKey: "req-1"}},
		{"other pipeline", imgd.Task{ImageID: im.ID, Pipeline: grayscale, Owner: "alice", IdempotencyKey: "req-1"}},
	}
	for _, tt := range tests {
		_, _, err := s.CreateTask(ctx, tt.task)
		wantCode(t, "CreateTask(same key, "+tt.name+")", err, imgd.CodeInvalidArgument)
	}
	// Another owner's key space is separate.
	mustCreateTask(t, s, imgd.Task{ImageID: im.ID, Pipeline: resize300, Owner: "bob", IdempotencyKey: "req-1"})
	// A concurrent race for a fresh key creates exactly one task.
	var (
		mu      sync.Mutex
		ids     = map[string]bool{}
		creates int
	)
	for range n {
		wg.Go(func() {
			got, created, err := s.CreateTask(t.Context(), imgd.Task{ImageID: im.ID, Pipeline: grayscale, Owner: "alice", IdempotencyKey: "race"})
			if err != nil {
				t.Errorf("racing CreateTask: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			ids[got.ID] = true
			if created {
				creates++
			}
		})
	}
	wg.Wait()
	if len(ids) != 1 || creates != 1 {
		t.Errorf("racing CreateTask with one key: ids %v, %d created; want 1 and 1", ids, creates)
	}
	if c := count(t, h, `SELECT count(*) FROM river_job`); c != 3 {
		t.Errorf("%d River jobs, want 3 (alice req-1, bob req-1, alice race)", c)
	}
}

// The status-change calls of imgd.Store, by target status.
func change(ctx context.Context, s imgd.Store, id string, to imgd.TaskStatus) (imgd.Task, error) {
	switch to {
	case imgd.TaskProcessing:
		return s.StartTask(ctx, id, 1)
	case imgd.TaskPending:
		return s.RetryTask(ctx, id, imgd.Errorf(imgd.CodeUnavailable, "blob store down"))
	case imgd.TaskCompleted:
		return s.CompleteTask(ctx, id, NewResult("transition result"))
	case imgd.TaskCompletedWithErrors:
		return s.CompleteTask(ctx, id, NewManifestResult("transition manifest", NewVariant(0, "v0"), failedVariant(1)))
	case imgd.TaskFailed:
		return s.FailTask(ctx, id, imgd.Errorf(imgd.CodeUnsupported, "cannot decode"))
	case imgd.TaskCanceled:
		return s.CancelTask(ctx, id)
	}
	panic("unknown status " + to)
}

// reach brings a new task to status from.
func reach(t *testing.T, s imgd.Store, id string, from imgd.TaskStatus) {
	t.Helper()
	var path []imgd.TaskStatus
	switch from {
	case imgd.TaskPending:
	case imgd.TaskProcessing:
		path = []imgd.TaskStatus{imgd.TaskProcessing}
	default:
		path = []imgd.TaskStatus{imgd.TaskProcessing, from}
	}
	for _, st := range path {
		if _, err := change(t.Context(), s, id, st); err != nil {
			t.Fatalf("bring task to %s: %v", st, err)
		}
	}
}

func testTaskTransitions(t *testing.T, open Open) {
	h := open(t, Options{})
	im := mustCreateImage(t, h.Store, NewImage("", "transitions"))
	for _, from := range imgd.TaskStatuses {
		for _, to := range imgd.TaskStatuses {
			t.Run(string(from)+"→"+string(to), func(t *testing.T) {
				t.Parallel()
				s, ctx := h.Store, t.Context()
				task := mustCreateTask(t, s, imgd.Task{ImageID: im.ID, Pipeline: resize300})
				reach(t, s, task.ID, from)
				before, err := s.GetTask(ctx, task.ID)
				if err != nil {
					t.Fatal(err)
				}
				got, changeErr := change(ctx, s, task.ID, to)
				err = changeErr
				switch {
				case from.CanBecome(to):
					if err != nil || got.Status != to {
						t.Errorf("%s → %s = %s, %v; want %s, nil", from, to, got.Status, err, to)
					}
				case from == to || from.HasResult() && to.HasResult(): // a final status repeated: no-op
					if err != nil {
						t.Errorf("%s → %s (repeat) error = %v, want nil", from, to, err)
					}
					if diff := cmp.Diff(before, got); diff != "" {
						t.Errorf("%s → %s (repeat) changed the task (-before +after):\n%s", from, to, diff)
					}
				default:
					if !errors.Is(err, imgd.ErrTaskTransition) {
						t.Errorf("%s → %s error = %v, want ErrTaskTransition", from, to, err)
					}
					wantCode(t, string(from)+" → "+string(to), err, imgd.CodeInvalidArgument)
				}
				after, err := s.GetTask(ctx, task.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !from.CanBecome(to) {
					if diff := cmp.Diff(before, after); diff != "" {
						t.Errorf("%s → %s refused but stored task changed (-before +after):\n%s", from, to, diff)
					}
				}
			})
		}
	}
}

func testTaskLifecycle(t *testing.T, open Open) {
	clk := newClock()
	h := open(t, Options{NowFunc: clk.Now})
	s, ctx := h.Store, t.Context()
	im := mustCreateImage(t, s, NewImage("", "lifecycle"))
	task := mustCreateTask(t, s, imgd.Task{ImageID: im.ID, Pipeline: resize300})

	_, err := s.StartTask(ctx, task.ID, 0)
	wantCode(t, "StartTask(attempt 0)", err, imgd.CodeInvalidArgument)

	clk.Advance(time.Second)
	started, err := s.StartTask(ctx, task.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if started.Status != imgd.TaskProcessing || started.Attempt != 1 || started.StartedAt == nil || !started.StartedAt.Equal(clk.Now()) {
		t.Errorf("StartTask = status %s attempt %d started %v; want processing, 1, %v", started.Status, started.Attempt, started.StartedAt, clk.Now())
	}

	cause := fmt.Errorf("read blob: %w", imgd.Errorf(imgd.CodeUnavailable, "blob store unreachable"))
	retried, err := s.RetryTask(ctx, task.ID, cause)
	if err != nil {
		t.Fatal(err)
	}
	if retried.Status != imgd.TaskPending || retried.Attempt != 1 || retried.ErrorCode != imgd.CodeUnavailable ||
		retried.ErrorMessage != "blob store unreachable" || retried.FinishedAt != nil {
		t.Errorf("RetryTask = %+v; want pending, attempt 1, unavailable error kept, not finished", retried)
	}
	_, err = s.RetryTask(ctx, task.ID, nil)
	wantCode(t, "RetryTask(nil cause)", err, imgd.CodeInvalidArgument)

	// A rescued job runs again while the task is still processing.
	clk.Advance(time.Second)
	if _, err := s.StartTask(ctx, task.ID, 2); err != nil {
		t.Fatal(err)
	}
	again, err := s.StartTask(ctx, task.ID, 3)
	if err != nil || again.Attempt != 3 || again.ErrorCode != imgd.CodeUnavailable {
		t.Errorf("StartTask(processing, attempt 3) = attempt %d, error %q, %v; want 3, last error kept, nil", again.Attempt, again.ErrorCode, err)
	}

	clk.Advance(time.Second)
	failed, err := s.FailTask(ctx, task.ID, errors.New("segfault in a library"))
	if err != nil {
		t.Fatal(err)
	}
	if failed.Status != imgd.TaskFailed || failed.ErrorCode != imgd.CodeInternal || failed.ErrorMessage != "internal error" ||
		failed.FinishedAt == nil || !failed.FinishedAt.Equal(clk.Now()) || failed.Result != nil {
		t.Errorf("FailTask(plain error) = %+v; want failed, internal, \"internal error\" (cause hidden), finished now", failed)
	}
}

func testCompleteIdempotent(t *testing.T, open Open) {
	clk := newClock()
	h := open(t, Options{NowFunc: clk.Now})
	s, ctx := h.Store, t.Context()
	im := mustCreateImage(t, s, NewImage("", "complete twice"))
	task := mustCreateTask(t, s, imgd.Task{ImageID: im.ID, Pipeline: resize300})
	if _, err := s.StartTask(ctx, task.ID, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RetryTask(ctx, task.ID, imgd.Errorf(imgd.CodeUnavailable, "x")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartTask(ctx, task.ID, 2); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	first := NewResult("first run")
	first.MediaType = "" // filled from the format
	done, err := s.CompleteTask(ctx, task.ID, first)
	if err != nil {
		t.Fatal(err)
	}
	wantResult := first
	wantResult.MediaType = "image/webp"
	if diff := cmp.Diff(&wantResult, done.Result); diff != "" {
		t.Errorf("CompleteTask result (-want +got):\n%s", diff)
	}
	if done.ErrorCode != "" || done.ErrorMessage != "" || done.FinishedAt == nil || !done.FinishedAt.Equal(clk.Now()) {
		t.Errorf("CompleteTask = error %q %q, finished %v; want the last error cleared, finished now", done.ErrorCode, done.ErrorMessage, done.FinishedAt)
	}

	// The same job, rescued, completes again with another blob: nothing changes.
	clk.Advance(time.Second)
	again, err := s.CompleteTask(ctx, task.ID, NewResult("second run"))
	if err != nil {
		t.Fatalf("CompleteTask(completed task): %v, want nil", err)
	}
	if diff := cmp.Diff(done, again); diff != "" {
		t.Errorf("CompleteTask(completed task) changed it (-first +second):\n%s", diff)
	}
	unref, err := s.UnreferencedBlobs(ctx, []string{first.BlobKey, NewResult("second run").BlobKey})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{NewResult("second run").BlobKey}, unref); diff != "" {
		t.Errorf("UnreferencedBlobs after a duplicate completion (-want +got):\n%s", diff)
	}

	bad := NewResult("bad")
	bad.Outputs = json.RawMessage(`{not json`)
	other := mustCreateTask(t, s, imgd.Task{ImageID: im.ID, Pipeline: grayscale})
	_, err = s.CompleteTask(ctx, other.ID, bad)
	wantCode(t, "CompleteTask(invalid outputs)", err, imgd.CodeInvalidArgument)
}

func testCancelTaskCancelsJob(t *testing.T, open Open) {
	h := open(t, Options{})
	s, ctx := h.Store, t.Context()
	im := mustCreateImage(t, s, NewImage("", "cancel"))
	task := mustCreateTask(t, s, imgd.Task{ImageID: im.ID, Pipeline: resize300})
	got, err := s.CancelTask(ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != imgd.TaskCanceled || got.ErrorCode != imgd.CodeCanceled || got.FinishedAt == nil {
		t.Errorf("CancelTask = %s, code %q, finished %v; want canceled, canceled, set", got.Status, got.ErrorCode, got.FinishedAt)
	}
	if j, _ := getJob(t, h, task.JobID); j.State != "cancelled" {
		t.Errorf("job of canceled task is %q, want cancelled", j.State)
	}
	// The job may already be gone (River cleans finished jobs): canceling
	// another task whose job was deleted still works.
	other := mustCreateTask(t, s, imgd.Task{ImageID: im.ID, Pipeline: grayscale})
	if err := h.Exec(ctx, `DELETE FROM river_job WHERE id = $1`, other.JobID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CancelTask(ctx, other.ID); err != nil {
		t.Errorf("CancelTask(task whose job River deleted): %v", err)
	}
}

func testListTasksFilters(t *testing.T, open Open) {
	clk := newClock()
	h := open(t, Options{NowFunc: clk.Now})
	s, ctx := h.Store, t.Context()
	a := mustCreateImage(t, s, NewImage("alice", "a"))
	b := mustCreateImage(t, s, NewImage("alice", "b"))
	x := mustCreateImage(t, s, NewImage("bob", "x"))
	var all []imgd.Task
	for i := range 12 {
		clk.Advance(time.Second)
		im := a
		if i%3 == 0 {
			im = b
		}
		task := mustCreateTask(t, s, imgd.Task{ImageID: im.ID, Pipeline: resize300, Owner: "alice"})
		if i%4 == 0 {
			var err error
			if task, err = s.CancelTask(ctx, task.ID); err != nil {
				t.Fatal(err)
			}
		}
		all = append(all, task)
	}
	mustCreateTask(t, s, imgd.Task{ImageID: x.ID, Pipeline: resize300, Owner: "bob"})
	slices.Reverse(all)

	ids := func(tasks []imgd.Task, keep func(imgd.Task) bool) []string {
		var out []string
		for _, task := range tasks {
			if keep(task) {
				out = append(out, task.ID)
			}
		}
		return out
	}
	tests := []struct {
		name   string
		filter imgd.TaskFilter
		keep   func(imgd.Task) bool
	}{
		{"owner", imgd.TaskFilter{Owner: "alice"}, func(imgd.Task) bool { return true }},
		{"image", imgd.TaskFilter{Owner: "alice", ImageID: b.ID}, func(t imgd.Task) bool { return t.ImageID == b.ID }},
		{"status", imgd.TaskFilter{Owner: "alice", Status: imgd.TaskCanceled}, func(t imgd.Task) bool { return t.Status == imgd.TaskCanceled }},
		{"image and status", imgd.TaskFilter{Owner: "alice", ImageID: a.ID, Status: imgd.TaskPending},
			func(t imgd.Task) bool { return t.ImageID == a.ID && t.Status == imgd.TaskPending }},
		{"other owner's image", imgd.TaskFilter{Owner: "alice", ImageID: x.ID}, func(imgd.Task) bool { return false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			f := tt.filter
			f.Limit = 2
			for {
				page, err := s.ListTasks(t.Context(), f)
				if err != nil {
					t.Fatalf("ListTasks(%+v): %v", f, err)
				}
				for _, task := range page.Items {
					got = append(got, task.ID)
				}
				if page.Next == "" {
					break
				}
				f.Cursor = page.Next
			}
			if diff := cmp.Diff(ids(all, tt.keep), got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ListTasks(%s) (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

func testFindResult(t *testing.T, open Open) {
	h := open(t, Options{})
	s, ctx := h.Store, t.Context()
	a := mustCreateImage(t, s, NewImage("alice", "popular image"))
	b := mustCreateImage(t, s, NewImage("bob", "popular image")) // same bytes, other owner
	task := mustCreateTask(t, s, imgd.Task{ImageID: a.ID, Pipeline: resize300, Owner: "alice"})

	_, err := s.FindResult(ctx, a.SHA256, resize300.Hash())
	wantCode(t, "FindResult(before any result)", err, imgd.CodeNotFound)
	if _, err := s.StartTask(ctx, task.ID, 1); err != nil {
		t.Fatal(err)
	}
	_, err = s.FindResult(ctx, a.SHA256, resize300.Hash())
	wantCode(t, "FindResult(task processing)", err, imgd.CodeNotFound)
	want := NewResult("the resized bytes")
	if _, err := s.CompleteTask(ctx, task.ID, want); err != nil {
		t.Fatal(err)
	}

	// The same pipeline written differently hashes the same.
	same := imgd.MustParsePipeline(`[{"width":300,"op":"resize","fit":"inside"},{"format":"webp","op":"convert"}]`)
	tests := []struct {
		name     string
		sha, key string
		found    bool
	}{
		{"same image and pipeline", a.SHA256, resize300.Hash(), true},
		{"other upload of the same bytes", b.SHA256, resize300.Hash(), true},
		{"equivalent pipeline", a.SHA256, same.Hash(), true},
		{"other pipeline", a.SHA256, grayscale.Hash(), false},
		{"other image", NewImage("", "other").SHA256, resize300.Hash(), false},
	}
	for _, tt := range tests {
		got, err := s.FindResult(ctx, tt.sha, tt.key)
		if !tt.found {
			wantCode(t, "FindResult("+tt.name+")", err, imgd.CodeNotFound)
			continue
		}
		if err != nil {
			t.Errorf("FindResult(%s): %v", tt.name, err)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("FindResult(%s) (-want +got):\n%s", tt.name, diff)
		}
	}
	// Failed and canceled tasks have no result to reuse.
	failed := mustCreateTask(t, s, imgd.Task{ImageID: a.ID, Pipeline: grayscale})
	if _, err := s.FailTask(ctx, failed.ID, imgd.Errorf(imgd.CodeOverLimit, "too big")); err != nil {
		t.Fatal(err)
	}
	_, err = s.FindResult(ctx, a.SHA256, grayscale.Hash())
	wantCode(t, "FindResult(only a failed task)", err, imgd.CodeNotFound)

	// Deleting a keeps b's reuse working only through b's own tasks: the
	// result went with a's task.
	if _, err := s.DeleteImage(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.FindResult(ctx, b.SHA256, resize300.Hash())
	wantCode(t, "FindResult(after the producing image was deleted)", err, imgd.CodeNotFound)
}

func testUnreferencedBlobs(t *testing.T, open Open) {
	h := open(t, Options{})
	s, ctx := h.Store, t.Context()
	im := mustCreateImage(t, s, NewImage("", "original"))
	task := mustCreateTask(t, s, imgd.Task{ImageID: im.ID, Pipeline: resize300})
	if _, err := s.CompleteTask(ctx, task.ID, NewResult("result")); err != nil {
		t.Fatal(err)
	}
	orphan := NewResult("orphan").BlobKey
	got, err := s.UnreferencedBlobs(ctx, []string{im.BlobKey, orphan, NewResult("result").BlobKey, orphan})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{orphan}, got); diff != "" {
		t.Errorf("UnreferencedBlobs (-want +got):\n%s", diff)
	}
	got, err = s.UnreferencedBlobs(ctx, nil)
	if err != nil || len(got) != 0 {
		t.Errorf("UnreferencedBlobs(nil) = %v, %v; want empty", got, err)
	}
}

func testConcurrentTaskCreation(t *testing.T, open Open) {
	h := open(t, Options{})
	s := h.Store
	im := mustCreateImage(t, s, NewImage("", "busy"))
	const n = 50
	var wg sync.WaitGroup
	ids := make([]string, n)
	for i := range n {
		wg.Go(func() {
			// Readers and writers at once: each creates a task and reads a page.
			task, created, err := s.CreateTask(t.Context(), imgd.Task{ImageID: im.ID, Pipeline: resize300,
				IdempotencyKey: fmt.Sprint("req-", i)})
			if err != nil || !created {
				t.Errorf("CreateTask #%d: created %v, %v", i, created, err)
				return
			}
			ids[i] = task.ID
			if _, err := s.ListTasks(t.Context(), imgd.TaskFilter{ImageID: im.ID, Limit: 10}); err != nil {
				t.Errorf("ListTasks #%d: %v", i, err)
			}
			if _, err := s.StartTask(t.Context(), task.ID, 1); err != nil {
				t.Errorf("StartTask #%d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if c := count(t, h, `SELECT count(*) FROM tasks`); c != n {
		t.Errorf("%d tasks after %d concurrent CreateTask, want %d", c, n, n)
	}
	if c := count(t, h, `SELECT count(*) FROM river_job`); c != n {
		t.Errorf("%d River jobs after %d concurrent CreateTask, want %d", c, n, n)
	}
	if c := count(t, h, `SELECT count(*) FROM tasks t WHERE NOT EXISTS (SELECT 1 FROM river_job j WHERE j.id = t.job_id)`); c != 0 {
		t.Errorf("%d tasks without their job", c)
	}
}

func testPing(t *testing.T, open Open) {
	h := open(t, Options{})
	if err := h.Store.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	wantCode(t, "Ping(canceled ctx)", h.Store.Ping(ctx), imgd.CodeCanceled)
}
