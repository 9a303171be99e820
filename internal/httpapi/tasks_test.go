package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	_ "image/png"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/events"
	"github.com/imgd/imgd/internal/imgtest"
)

// submit posts a task and returns the answer.
func (e *env) submit(body string, header http.Header) (*http.Response, []byte) {
	e.t.Helper()
	h := http.Header{"Content-Type": {"application/json"}}
	for k, v := range header {
		h[k] = v
	}
	return e.do("POST", "/api/v1/tasks", strings.NewReader(body), h)
}

// mustSubmit creates a task of pipeline (JSON) on image id.
func (e *env) mustSubmit(imageID, pipeline string) apiTask {
	e.t.Helper()
	resp, b := e.submit(`{"image_id":"`+imageID+`","pipeline":`+pipeline+`}`, nil)
	if resp.StatusCode != http.StatusAccepted {
		e.t.Fatalf("POST task %s on %s = %d %s, want 202", pipeline, imageID, resp.StatusCode, b)
	}
	return decode[apiTask](e.t, b)
}

// result downloads a task's result, failing unless it is 200.
func (e *env) result(id string) (*http.Response, []byte) {
	e.t.Helper()
	resp, b := e.do("GET", "/api/v1/tasks/"+id+"/result", nil, nil)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET result of %s = %d %s, want 200", id, resp.StatusCode, b)
	}
	return resp, b
}

func TestCreateTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	im := e.mustUpload("a.png", imgtest.Read(t, "png/png-gray.png"))

	resp, b := e.submit(`{"image_id":"`+im.ID+`","pipeline":[{"op":"resize","width":30}],"webhook_url":"https://example.com/hook?x=1"}`, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST task = %d %s, want 202", resp.StatusCode, b)
	}
	task := decode[apiTask](t, b)
	if got := resp.Header.Get("Location"); got != "/api/v1/tasks/"+task.ID {
		t.Errorf("Location = %q, want /api/v1/tasks/%s", got, task.ID)
	}
	wantPipe := imgd.MustParsePipeline(`[{"op":"resize","width":30}]`)
	if task.ImageID != im.ID || task.Status != imgd.TaskPending || task.Priority != imgd.DefaultPriority ||
		task.Attempt != 0 || task.WebhookURL != "https://example.com/hook?x=1" ||
		string(task.Pipeline.Canonical()) != string(wantPipe.Canonical()) || task.PipelineHash != wantPipe.Hash() ||
		task.Result != nil || task.ResultURL != "" {
		t.Errorf("created task = %s", b)
	}
	resp, b = e.do("GET", "/api/v1/tasks/"+task.ID, nil, nil)
	if got := decode[apiTask](t, b); resp.StatusCode != http.StatusOK || got.ID != task.ID || got.Status != imgd.TaskPending {
		t.Errorf("GET task = %d %s", resp.StatusCode, b)
	}

	for _, tt := range []struct {
		prio string
		want int
	}{{`"interactive"`, 1}, {`"normal"`, 2}, {`"batch"`, 4}, {`"Batch"`, 4}, {"1", 1}, {"3", 3}, {"4", 4}, {"null", 2}} {
		resp, b := e.submit(`{"image_id":"`+im.ID+`","pipeline":[{"op":"flip"}],"priority":`+tt.prio+`}`, nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("priority %s: %d %s, want 202", tt.prio, resp.StatusCode, b)
			continue
		}
		if got := decode[apiTask](t, b).Priority; got != tt.want {
			t.Errorf("priority %s: task priority %d, want %d", tt.prio, got, tt.want)
		}
	}

	bad := []struct {
		name, body, status, code, mention string
	}{
		{"empty body", ``, "400", "invalid_argument", "empty"},
		{"not JSON", `image please`, "400", "invalid_argument", "JSON"},
		{"unknown field", `{"image_id":"` + im.ID + `","pipeline":[{"op":"flip"}],"colour":"red"}`, "400", "invalid_argument", "colour"},
		{"no image_id", `{"pipeline":[{"op":"flip"}]}`, "400", "invalid_argument", "image_id"},
		{"no pipeline", `{"image_id":"` + im.ID + `"}`, "400", "invalid_argument", "pipeline"},
		{"empty pipeline", `{"image_id":"` + im.ID + `","pipeline":[]}`, "400", "invalid_argument", "pipeline"},
		{"pipeline as text", `{"image_id":"` + im.ID + `","pipeline":"resize:w=300"}`, "400", "invalid_argument", "pipeline"},
		{"unknown op", `{"image_id":"` + im.ID + `","pipeline":[{"op":"sharpen"}]}`, "400", "invalid_argument", "steps[0].op"},
		{"bad parameter", `{"image_id":"` + im.ID + `","pipeline":[{"op":"resize","width":30},{"op":"convert","format":"jpeg","quality":101}]}`, "400", "invalid_argument", "steps[1].quality"},
		{"convert not last", `{"image_id":"` + im.ID + `","pipeline":[{"op":"convert","format":"png"},{"op":"flip"}]}`, "400", "invalid_argument", "convert"},
		{"unknown priority name", `{"image_id":"` + im.ID + `","pipeline":[{"op":"flip"}],"priority":"urgent"}`, "400", "invalid_argument", "priority"},
		{"priority 0", `{"image_id":"` + im.ID + `","pipeline":[{"op":"flip"}],"priority":0}`, "400", "invalid_argument", "priority"},
		{"priority 5", `{"image_id":"` + im.ID + `","pipeline":[{"op":"flip"}],"priority":5}`, "400", "invalid_argument", "priority"},
		{"priority 1.5", `{"image_id":"` + im.ID + `","pipeline":[{"op":"flip"}],"priority":1.5}`, "400", "invalid_argument", "priority"},
		{"webhook ftp", `{"image_id":"` + im.ID + `","pipeline":[{"op":"flip"}],"webhook_url":"ftp://example.com/x"}`, "400", "invalid_argument", "webhook_url"},
		{"webhook relative", `{"image_id":"` + im.ID + `","pipeline":[{"op":"flip"}],"webhook_url":"/hook"}`, "400", "invalid_argument", "webhook_url"},
		{"webhook no host", `{"image_id":"` + im.ID + `","pipeline":[{"op":"flip"}],"webhook_url":"https:///x"}`, "400", "invalid_argument", "webhook_url"},
		{"webhook javascript", `{"image_id":"` + im.ID + `","pipeline":[{"op":"flip"}],"webhook_url":"javascript:alert(1)"}`, "400", "invalid_argument", "webhook_url"},
		{"webhook too long", `{"image_id":"` + im.ID + `","pipeline":[{"op":"flip"}],"webhook_url":"https://example.com/` + strings.Repeat("a", imgd.MaxWebhookURLLen) + `"}`, "400", "invalid_argument", "webhook_url"},
		{"unknown image", `{"image_id":"` + imgd.NewID() + `","pipeline":[{"op":"flip"}]}`, "404", "not_found", "image"},
		{"malformed image id", `{"image_id":"../etc","pipeline":[{"op":"flip"}]}`, "404", "not_found", "image"},
	}
	for _, tt := range bad {
		resp, b := e.submit(tt.body, nil)
		status := map[string]int{"400": 400, "404": 404}[tt.status]
		wantError(t, "POST task, "+tt.name, resp, b, status, tt.code)
		if !strings.Contains(string(b), tt.mention) {
			t.Errorf("POST task, %s: message does not mention %q: %s", tt.name, tt.mention, b)
		}
	}
	resp, b = e.submit(`{"image_id":"`+im.ID+`","pipeline":[{"op":"flip"}]}`,
		http.Header{"Idempotency-Key": {strings.Repeat("k", imgd.MaxIdempotencyKeyLen+1)}})
	wantError(t, "POST task with an over-long Idempotency-Key", resp, b, 400, "invalid_argument")
}

func TestCreateTaskIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	im := e.mustUpload("a.png", imgtest.Read(t, "png/png-gray.png"))
	body := `{"image_id":"` + im.ID + `","pipeline":[{"op":"resize","width":30}]}`
	key := http.Header{"Idempotency-Key": {"task-1"}}

	resp, b := e.submit(body, key)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("first POST = %d %s, want 202", resp.StatusCode, b)
	}
	first := decode[apiTask](t, b)
	// The same pipeline spelled differently is the same request.
	resp, b = e.submit(`{"pipeline":[{"width":30,"op":"resize","fit":"inside"}],"image_id":"`+im.ID+`"}`, key)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("repeated POST = %d %s, want 200", resp.StatusCode, b)
	}
	if got := decode[apiTask](t, b); got.ID != first.ID {
		t.Errorf("repeated POST id = %s, want %s", got.ID, first.ID)
	}
	if resp.Header.Get("Idempotent-Replayed") != "true" || resp.Header.Get("Location") != "/api/v1/tasks/"+first.ID {
		t.Errorf("repeated POST headers: Idempotent-Replayed %q, Location %q", resp.Header.Get("Idempotent-Replayed"), resp.Header.Get("Location"))
	}
	resp, b = e.submit(`{"image_id":"`+im.ID+`","pipeline":[{"op":"resize","width":31}]}`, key)
	wantError(t, "same key, other pipeline", resp, b, http.StatusBadRequest, "invalid_argument")

	_, b = e.do("GET", "/api/v1/tasks", nil, nil)
	if p := decode[apiPage[apiTask]](t, b); len(p.Items) != 1 {
		t.Errorf("tasks after idempotent POSTs: %d, want 1", len(p.Items))
	}
}

func TestTaskNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	for _, id := range []string{imgd.NewID(), "nope", "%2e%2e", strings.Repeat("z", 300)} {
		for _, c := range []struct{ method, path string }{
			{"GET", "/api/v1/tasks/" + id}, {"GET", "/api/v1/tasks/" + id + "/result"}, {"DELETE", "/api/v1/tasks/" + id},
		} {
			resp, b := e.do(c.method, c.path, nil, nil)
			wantError(t, c.method+" "+c.path, resp, b, http.StatusNotFound, "not_found")
		}
	}
}

func TestTaskResult(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	im := e.mustUpload("a.jpg", imgtest.Read(t, "photos/jpeg-baseline-small.jpg"))

	// A slow task is still pending or processing when first asked.
	slow := e.mustSubmit(im.ID, slowPipeline(1600, 6, imgd.DitherFloydSteinberg))
	resp, b := e.do("GET", "/api/v1/tasks/"+slow.ID+"/result", nil, nil)
	wantError(t, "GET result of a new task", resp, b, http.StatusConflict, "not_ready")
	if got := resp.Header.Get("Retry-After"); got != "1" {
		t.Errorf("not_ready Retry-After = %q, want 1", got)
	}
	done := e.waitTask(slow.ID, 60*time.Second)
	if done.Status != imgd.TaskCompleted {
		t.Fatalf("slow task = %s %s", done.Status, done.ErrorMessage)
	}
	_, b = e.result(slow.ID)
	if cfg, format, err := image.DecodeConfig(bytes.NewReader(b)); err != nil || format != "png" ||
		cfg.Width != done.Result.Width || cfg.Height != done.Result.Height {
		t.Errorf("slow result decodes as %s %dx%d (%v), want png %dx%d", format, cfg.Width, cfg.Height, err,
			done.Result.Width, done.Result.Height)
	}

	task := e.waitTask(e.mustSubmit(im.ID, `[{"op":"resize","width":100},{"op":"convert","format":"png"}]`).ID, 20*time.Second)
	if task.Status != imgd.TaskCompleted || task.Result == nil {
		t.Fatalf("task = %s %s, want completed", task.Status, task.ErrorMessage)
	}
	_, b = e.do("GET", "/api/v1/tasks/"+task.ID, nil, nil)
	view := decode[apiTask](t, b)
	if view.ResultURL != "/api/v1/tasks/"+task.ID+"/result" {
		t.Errorf("completed task result_url = %q", view.ResultURL)
	}
	if task.Result.Width != 100 || task.Result.Height != 67 || task.Result.Format != imgd.FormatPNG ||
		task.Result.MediaType != "image/png" || task.FinishedAt == nil || task.Attempt != 1 {
		t.Errorf("completed task = %s", b)
	}
	resp, data := e.result(task.ID)
	if int64(len(data)) != task.Result.Bytes {
		t.Errorf("result is %d bytes, task says %d", len(data), task.Result.Bytes)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil || format != "png" || cfg.Width != 100 || cfg.Height != 67 {
		t.Errorf("result decodes as %s %dx%d (%v), want png 100x67", format, cfg.Width, cfg.Height, err)
	}
	etag := `"` + sha256Hex(data) + `"`
	for k, want := range map[string]string{
		"ETag": etag, "Content-Type": "image/png", "Cache-Control": "private, max-age=31536000, immutable",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("GET result: %s = %q, want %q", k, got, want)
		}
	}
	disp, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition"))
	if err != nil || disp != "inline" || params["filename"] != task.ID+".png" {
		t.Errorf("result Content-Disposition = %q, want inline; filename=%s.png", resp.Header.Get("Content-Disposition"), task.ID)
	}
	checkConditionalAndRange(t, e, "/api/v1/tasks/"+task.ID+"/result", etag, data)

	// jpeg results are named .jpg
	jt := e.waitTask(e.mustSubmit(im.ID, `[{"op":"resize","width":20},{"op":"convert","format":"jpeg"}]`).ID, 20*time.Second)
	resp, _ = e.result(jt.ID)
	_, params, _ = mime.ParseMediaType(resp.Header.Get("Content-Disposition"))
	if params["filename"] != jt.ID+".jpg" || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Errorf("jpeg result: Content-Disposition %q, Content-Type %q", resp.Header.Get("Content-Disposition"), resp.Header.Get("Content-Type"))
	}

	// A failed task has no result, and says why.
	failed := e.waitTask(e.mustSubmit(im.ID, `[{"op":"crop","x":5000,"y":0,"width":10,"height":10}]`).ID, 20*time.Second)
	if failed.Status != imgd.TaskFailed || failed.ErrorCode == "" {
		t.Fatalf("crop outside the image = %s %q, want failed with a code", failed.Status, failed.ErrorCode)
	}
	resp, b = e.do("GET", "/api/v1/tasks/"+failed.ID+"/result", nil, nil)
	wantError(t, "GET result of a failed task", resp, b, http.StatusConflict, "conflict")
	if !strings.Contains(string(b), "failed") || !strings.Contains(string(b), string(failed.ErrorCode)) {
		t.Errorf("failed task's result error does not name the status and code %s: %s", failed.ErrorCode, b)
	}
	resp, b = e.do("DELETE", "/api/v1/tasks/"+failed.ID, nil, nil)
	wantError(t, "DELETE a failed task", resp, b, http.StatusConflict, "conflict")
	resp, b = e.do("DELETE", "/api/v1/tasks/"+task.ID, nil, nil)
	wantError(t, "DELETE a completed task", resp, b, http.StatusConflict, "conflict")
	if got := e.waitTask(task.ID, time.Second); got.Status != imgd.TaskCompleted {
		t.Errorf("completed task after a refused cancel = %s", got.Status)
	}
}

func TestTaskResultReused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	data := imgtest.Read(t, "photos/jpeg-progressive-small.jpg")
	a, b := e.mustUpload("a.jpg", data), e.mustUpload("b.jpg", data)
	const pipe = `[{"op":"resize","width":64},{"op":"grayscale"},{"op":"convert","format":"webp","quality":70}]`

	first := e.waitTask(e.mustSubmit(a.ID, pipe).ID, 20*time.Second)
	if first.Status != imgd.TaskCompleted || first.Attempt != 1 {
		t.Fatalf("first task = %s attempt %d, want completed on attempt 1", first.Status, first.Attempt)
	}
	// The same content and pipeline, spelled differently, on another image.
	second := e.waitTask(e.mustSubmit(b.ID, `[{"width":64,"op":"resize","fit":"inside"},{"op":"grayscale"},{"op":"convert","quality":70,"format":"WEBP"}]`).ID, 20*time.Second)
	if second.Status != imgd.TaskCompleted || second.Attempt != 0 || second.StartedAt != nil {
		t.Errorf("second task = %s attempt %d started %v, want completed at once (attempt 0, never started)",
			second.Status, second.Attempt, second.StartedAt)
	}
	if r1, r2 := first.Result, second.Result; r2 == nil || r1.Format != r2.Format || r1.Width != r2.Width ||
		r1.Height != r2.Height || r1.Bytes != r2.Bytes || r1.MediaType != r2.MediaType {
		t.Errorf("second result %+v, want the first %+v", second.Result, first.Result)
	}
	r1, b1 := e.result(first.ID)
	r2, b2 := e.result(second.ID)
	if !bytes.Equal(b1, b2) || r1.Header.Get("ETag") != r2.Header.Get("ETag") {
		t.Errorf("results differ: %d bytes %s vs %d bytes %s", len(b1), r1.Header.Get("ETag"), len(b2), r2.Header.Get("ETag"))
	}
	want := map[string]bool{sha256Hex(data): true, sha256Hex(b1): true}
	if got := e.blobSet(); !mapsEqual(got, want) {
		t.Errorf("blobs = %v, want the original and one result %v", got, want)
	}
}

// slowPipeline returns a pipeline that takes a while on a 640 px photo:
// an enlargement to width px, then n full-size dither steps, which are pure
// Go (the engine checks for cancellation between steps). On 2 cores,
// slowPipeline(2400, 12, JJN) takes about 4 s and (1600, 6, Floyd–Steinberg)
// about 1 s.
func slowPipeline(width, n int, method string) string {
	steps := []string{fmt.Sprintf(`{"op":"resize","width":%d,"enlarge":true}`, width)}
	for range n {
		steps = append(steps, `{"op":"dither","method":"`+method+`","levels":4,"linear":true}`)
	}
	steps = append(steps, `{"op":"convert","format":"png"}`)
	return "[" + strings.Join(steps, ",") + "]"
}

func TestCancelPendingTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	im := e.mustUpload("a.png", imgtest.Read(t, "png/png-gray.png"))
	task := e.mustSubmit(im.ID, `[{"op":"flip"}]`)

	resp, b := e.do("DELETE", "/api/v1/tasks/"+task.ID, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE pending task = %d %s, want 200", resp.StatusCode, b)
	}
	got := decode[apiTask](t, b)
	if got.ID != task.ID || got.Status != imgd.TaskCanceled || got.ErrorCode != imgd.CodeCanceled ||
		got.FinishedAt == nil || got.Result != nil || got.ResultURL != "" {
		t.Errorf("canceled task = %s", b)
	}
	resp, b = e.do("DELETE", "/api/v1/tasks/"+task.ID, nil, nil)
	if resp.StatusCode != http.StatusOK || decode[apiTask](t, b).Status != imgd.TaskCanceled {
		t.Errorf("DELETE canceled task again = %d %s, want 200 and the canceled task", resp.StatusCode, b)
	}
	resp, b = e.do("GET", "/api/v1/tasks/"+task.ID+"/result", nil, nil)
	wantError(t, "GET result of a canceled task", resp, b, http.StatusConflict, "conflict")
	if !strings.Contains(string(b), "canceled") {
		t.Errorf("canceled task's result error does not name the status: %s", b)
	}
	if resp.Header.Get("Retry-After") != "" {
		t.Errorf("a canceled task's result has Retry-After: it will never be ready")
	}
}

func TestCancelRunningTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: 1})
	im := e.mustUpload("a.jpg", imgtest.Read(t, "photos/jpeg-baseline-small.jpg"))
	// Slower than River's 2 s poll for cancellations, so that the cancel
	// reaches the running job's context.
	task := e.mustSubmit(im.ID, slowPipeline(2400, 12, imgd.DitherJJN))

	deadline := time.Now().Add(20 * time.Second)
	for {
		_, b := e.do("GET", "/api/v1/tasks/"+task.ID, nil, nil)
		got := decode[apiTask](t, b)
		if got.Status == imgd.TaskProcessing {
			break
		}
		if got.Status != imgd.TaskPending || time.Now().After(deadline) {
			t.Fatalf("task = %s, want it processing", got.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
	resp, b := e.do("DELETE", "/api/v1/tasks/"+task.ID, nil, nil)
	if resp.StatusCode != http.StatusOK || decode[apiTask](t, b).Status != imgd.TaskCanceled {
		t.Fatalf("DELETE running task = %d %s, want 200 canceled", resp.StatusCode, b)
	}
	// With one worker, the next task runs only once the canceled one has
	// returned: then whatever it wrote must be gone.
	next := e.waitTask(e.mustSubmit(im.ID, `[{"op":"resize","width":16},{"op":"convert","format":"png"}]`).ID, 60*time.Second)
	if next.Status != imgd.TaskCompleted {
		t.Fatalf("task after the canceled one = %s %s", next.Status, next.ErrorMessage)
	}
	got := e.waitTask(task.ID, time.Second)
	if got.Status != imgd.TaskCanceled || got.Result != nil {
		t.Errorf("canceled running task ended %s with result %+v, want canceled without result", got.Status, got.Result)
	}
	_, res := e.result(next.ID)
	want := map[string]bool{im.SHA256: true, sha256Hex(res): true}
	if got := e.blobSet(); !mapsEqual(got, want) {
		t.Errorf("blobs = %v, want only the original and the next task's result %v: the canceled task left a blob", got, want)
	}
}

// post sends a JSON POST from any goroutine.
func post(ctx context.Context, c *http.Client, url, body string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func TestConcurrentTasks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	im := e.mustUpload("a.gif", imgtest.Read(t, "formats/gif-static.gif"))
	const n = 200
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	defer client.CloseIdleConnections()

	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Distinct pipelines: each task does its own work.
			body := fmt.Sprintf(`{"image_id":%q,"pipeline":[{"op":"resize","width":%d},{"op":"convert","format":"png"}]}`, im.ID, 10+i%100)
			if i >= 100 {
				body = fmt.Sprintf(`{"image_id":%q,"pipeline":[{"op":"resize","width":%d},{"op":"flip"},{"op":"convert","format":"png"}],"priority":"batch"}`, im.ID, 10+i%100)
			}
			status, b, err := post(t.Context(), client, e.URL+"/api/v1/tasks", body)
			switch {
			case err != nil:
				errs[i] = err
			case status != http.StatusAccepted:
				errs[i] = fmt.Errorf("status %d: %s", status, b)
			default:
				var task apiTask
				if err := json.Unmarshal(b, &task); err != nil {
					errs[i] = err
				}
				ids[i] = task.ID
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("POST task %d: %v", i, err)
		}
	}
	tasks := e.waitAll(ids, 60*time.Second)
	for i, id := range ids {
		task := tasks[id]
		width := 10 + i%100
		if task.Status != imgd.TaskCompleted || task.Result == nil || task.Result.Width != width {
			t.Errorf("task %d (%s): %s %+v %s, want completed %d px wide", i, id, task.Status, task.Result, task.ErrorMessage, width)
		}
	}
	if uniq := slices.Compact(slices.Sorted(slices.Values(ids))); len(uniq) != n {
		t.Errorf("%d distinct task ids for %d POSTs", len(uniq), n)
	}
}

// waitAll polls the task list until every task of ids is final, and
// returns them.
func (e *env) waitAll(ids []string, timeout time.Duration) map[string]apiTask {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		all := map[string]apiTask{}
		next := "/api/v1/tasks?limit=500"
		for next != "" {
			resp, b := e.do("GET", next, nil, nil)
			if resp.StatusCode != http.StatusOK {
				e.t.Fatalf("GET %s = %d %s", next, resp.StatusCode, b)
			}
			p := decode[apiPage[apiTask]](e.t, b)
			for _, task := range p.Items {
				all[task.ID] = task
			}
			next = ""
			if p.NextCursor != "" {
				next = "/api/v1/tasks?limit=500&cursor=" + p.NextCursor
			}
		}
		pending := 0
		for _, id := range ids {
			if task, ok := all[id]; !ok {
				e.t.Fatalf("task %s is not listed", id)
			} else if !task.Status.Final() {
				pending++
			}
		}
		if pending == 0 {
			return all
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d of %d tasks still unfinished after %s", pending, len(ids), timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestListTasks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	a := e.mustUpload("a.png", imgtest.Read(t, "png/png-gray.png"))
	b := e.mustUpload("b.gif", imgtest.Read(t, "formats/gif-static.gif"))
	var ofA, ofB []string
	for i := range 5 {
		ofA = append(ofA, e.mustSubmit(a.ID, fmt.Sprintf(`[{"op":"resize","width":%d}]`, 10+i)).ID)
		ofB = append(ofB, e.mustSubmit(b.ID, fmt.Sprintf(`[{"op":"resize","width":%d}]`, 10+i)).ID)
	}
	canceled := ofA[1]
	if resp, body := e.do("DELETE", "/api/v1/tasks/"+canceled, nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("cancel = %d %s", resp.StatusCode, body)
	}
	all := make([]string, 0, 10)
	for i := range 5 {
		all = append(all, ofA[i], ofB[i])
	}
	slices.Reverse(all)
	slices.Reverse(ofA)
	slices.Reverse(ofB)

	list := func(query string) []string {
		t.Helper()
		var ids []string
		next := "/api/v1/tasks?" + query
		for pages := 0; next != ""; pages++ {
			if pages > 12 {
				t.Fatalf("GET %s: too many pages", query)
			}
			resp, body := e.do("GET", next, nil, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s = %d %s", next, resp.StatusCode, body)
			}
			p := decode[apiPage[apiTask]](t, body)
			for _, task := range p.Items {
				ids = append(ids, task.ID)
			}
			link := resp.Header.Get("Link")
			if (p.NextCursor == "") != (link == "") {
				t.Fatalf("GET %s: next_cursor %q but Link %q", next, p.NextCursor, link)
			}
			next = ""
			if link != "" {
				if !strings.HasSuffix(link, `>; rel="next"`) || !strings.Contains(link, "cursor="+p.NextCursor) {
					t.Fatalf("GET %s: Link %q", query, link)
				}
				next = strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
			}
		}
		return ids
	}
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"", all},
		{"limit=3", all},
		{"limit=1", all},
		{"limit=2&image_id=" + a.ID, ofA},
		{"image_id=" + b.ID, ofB},
		{"status=canceled", []string{canceled}},
		{"limit=2&status=pending&image_id=" + a.ID, slices.DeleteFunc(slices.Clone(ofA), func(id string) bool { return id == canceled })},
		{"status=completed", nil},
		{"image_id=" + imgd.NewID(), nil},
	} {
		if got := list(tt.query); !slices.Equal(got, tt.want) {
			t.Errorf("GET /api/v1/tasks?%s = %v, want %v", tt.query, got, tt.want)
		}
	}
	for _, q := range []string{"status=done", "limit=0", "limit=x", "cursor=zzz"} {
		resp, body := e.do("GET", "/api/v1/tasks?"+q, nil, nil)
		wantError(t, "GET /api/v1/tasks?"+q, resp, body, http.StatusBadRequest, "invalid_argument")
	}
}

func TestEventsPublished(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, _ := e.Svc.Hub.Subscribe(ctx, events.Live)

	im := e.mustUpload("a.png", imgtest.Read(t, "png/png-gray.png"))
	task := e.mustSubmit(im.ID, `[{"op":"flip"}]`)
	for range 2 { // the second cancel changes nothing and publishes nothing
		if resp, b := e.do("DELETE", "/api/v1/tasks/"+task.ID, nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("DELETE task = %d %s", resp.StatusCode, b)
		}
	}
	if resp, b := e.do("DELETE", "/api/v1/images/"+im.ID, nil, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE image = %d %s", resp.StatusCode, b)
	}
	want := []string{
		events.TypeImageUploaded + " image=" + im.ID + " task= status=",
		events.TypeTaskUpdated + " image=" + im.ID + " task=" + task.ID + " status=pending",
		events.TypeTaskUpdated + " image=" + im.ID + " task=" + task.ID + " status=canceled",
		events.TypeImageDeleted + " image=" + im.ID + " task= status=",
	}
	var got []string
	timeout := time.After(5 * time.Second)
	for len(got) < len(want) {
		select {
		case ev := <-ch:
			got = append(got, fmt.Sprintf("%s image=%s task=%s status=%s", ev.Type, ev.ImageID, ev.TaskID, ev.Status))
		case <-timeout:
			t.Fatalf("events = %q, want %q", got, want)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
	select {
	case ev := <-ch:
		t.Errorf("unexpected event %s %s %s", ev.Type, ev.TaskID, ev.Status)
	case <-time.After(100 * time.Millisecond):
	}
}
