package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/webhook"
)

func (s *Server) taskRoutes() {
	s.HandleFunc("POST /api/v1/tasks", s.apiHandler(s.createTask))
	s.HandleFunc("GET /api/v1/tasks", s.apiHandler(s.listTasks))
	s.HandleFunc("GET /api/v1/tasks/{id}", s.apiHandler(s.getTask))
	s.HandleFunc("GET /api/v1/tasks/{id}/result", s.apiHandler(s.getTaskResult))
	s.HandleFunc("GET /api/v1/tasks/{id}/variants/{index}", s.apiHandler(s.getTaskVariant))
	s.HandleFunc("DELETE /api/v1/tasks/{id}", s.apiHandler(s.cancelTask))
	s.HandleFunc("GET /api/v1/tasks/{id}/webhooks", s.apiHandler(s.listWebhookDeliveries))
}

// listWebhookDeliveries lists the attempts to deliver the task's webhook,
// oldest first: {"items": [...]}, empty when it has none (or no webhook).
func (s *Server) listWebhookDeliveries(w http.ResponseWriter, r *http.Request) error {
	t, err := s.store.GetTask(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	items := []webhook.Delivery{}
	if s.deliveries != nil {
		d, err := s.deliveries(r.Context(), t.ID)
		if err != nil {
			return err
		}
		items = append(items, d...)
	}
	writeJSON(w, http.StatusOK, struct {
		Items []webhook.Delivery `json:"items"`
	}{items})
	return nil
}

// taskView is a task as the API shows it.
type taskView struct {
	imgd.Task
	ResultURL string `json:"result_url,omitempty"`
}

func newTaskView(t imgd.Task) taskView {
	v := taskView{Task: t}
	if t.Status.HasResult() && t.Result != nil { // none once expired
		v.ResultURL = "/api/v1/tasks/" + t.ID + "/result"
	}
	return v
}

// createTaskRequest is the body of POST /api/v1/tasks. Pipeline and
// Priority stay raw: each accepts more than one JSON type.
type createTaskRequest struct {
	ImageID    string          `json:"image_id"`
	Pipeline   json.RawMessage `json:"pipeline"`
	Priority   json.RawMessage `json:"priority"`
	WebhookURL string          `json:"webhook_url"`
}

// priorityNames are the names a client may give instead of a number.
var priorityNames = map[string]int{"interactive": 1, "normal": imgd.DefaultPriority, "batch": imgd.MaxPriority}

func (s *Server) createTask(w http.ResponseWriter, r *http.Request) error {
	idem, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	var req createTaskRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.ImageID == "" {
		return &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "image_id", Message: "is required"}
	}
	if len(req.Pipeline) == 0 || string(req.Pipeline) == "null" {
		return &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "pipeline",
			Message: "is required: a JSON array of steps such as [{\"op\":\"resize\",\"width\":300}]"}
	}
	p, err := imgd.ParsePipeline(req.Pipeline)
	if err != nil {
		return err
	}
	prio, err := parsePriority(req.Priority)
	if err != nil {
		return err
	}
	if err := checkWebhookURL(req.WebhookURL); err != nil {
		return err
	}
	t, created, err := s.store.CreateTask(r.Context(), imgd.Task{ImageID: req.ImageID, Pipeline: p,
		Priority: prio, WebhookURL: req.WebhookURL, IdempotencyKey: idem})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/tasks/"+t.ID)
	status := http.StatusAccepted
	if created {
		s.publishTask(t)
	} else {
		w.Header().Set("Idempotent-Replayed", "true")
		status = http.StatusOK
	}
	writeJSON(w, status, newTaskView(t))
	return nil
}

// parsePriority reads a priority given as a name or as River's number
// (1 first); absent is 0, the store's default.
func parsePriority(raw json.RawMessage) (int, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	bad := &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "priority",
		Message: fmt.Sprintf("must be \"interactive\", \"normal\", \"batch\" or an integer %d..%d, got %s",
			imgd.MinPriority, imgd.MaxPriority, raw)}
	if raw[0] == '"' {
		var name string
		if err := json.Unmarshal(raw, &name); err != nil {
			return 0, bad
		}
		n, ok := priorityNames[strings.ToLower(name)]
		if !ok {
			return 0, bad
		}
		return n, nil
	}
	var n int
	if err := json.Unmarshal(raw, &n); err != nil || n < imgd.MinPriority || n > imgd.MaxPriority {
		return 0, bad
	}
	return n, nil
}

// checkWebhookURL accepts "" or an absolute http(s) URL. Whether its host
// may be called (SSRF) is decided when the webhook is delivered, as DNS
// answers change.
func checkWebhookURL(s string) error {
	if s == "" {
		return nil
	}
	bad := func(msg string) error {
		return &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "webhook_url", Message: msg}
	}
	if len(s) > imgd.MaxWebhookURLLen {
		return bad(fmt.Sprintf("is longer than %d bytes", imgd.MaxWebhookURLLen))
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("is not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return bad("must be an absolute http:// or https:// URL")
	}
	if u.Host == "" || u.Hostname() == "" {
		return bad("must name a host")
	}
	if u.User != nil {
		return bad("must not hold credentials")
	}
	if u.Fragment != "" {
		return bad("must not have a fragment")
	}
	return nil
}

func (s *Server) listTasks(w http.ResponseWriter, r *http.Request) error {
	limit, cursor, err := pageParams(r)
	if err != nil {
		return err
	}
	f := imgd.TaskFilter{ImageID: r.URL.Query().Get("image_id"), Cursor: cursor, Limit: limit}
	if v := r.URL.Query().Get("status"); v != "" {
		if f.Status, err = imgd.ParseTaskStatus(v); err != nil {
			return err
		}
	}
	page, err := s.store.ListTasks(r.Context(), f)
	if err != nil {
		return err
	}
	items := make([]taskView, len(page.Items))
	for i, t := range page.Items {
		items[i] = newTaskView(t)
	}
	writePage(w, r, items, page.Next)
	return nil
}

func (s *Server) getTask(w http.ResponseWriter, r *http.Request) error {
	t, err := s.store.GetTask(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newTaskView(t))
	return nil
}

// serveResult serves a completed task's output, named <task id>.<ext>; it
// writes nothing when it fails.
func (s *Server) serveResult(w http.ResponseWriter, r *http.Request, t imgd.Task) error {
	res := t.Result
	mt := res.MediaType
	if mt == "" {
		mt = res.Format.MediaType()
	}
	return s.serveBlob(w, r, res.BlobKey, mt, t.ID+"."+res.Format.Ext(), resultTime(t))
}

// resultTime is when a task's result was made, its downloads' Last-Modified.
func resultTime(t imgd.Task) time.Time {
	if t.FinishedAt != nil {
		return *t.FinishedAt
	}
	return t.CreatedAt
}

// getTaskResult serves a completed task's output (or a 302 to it, see
// redirectToBlob): 409 not_ready (with Retry-After) while the task may
// still complete, 409 conflict once it never will, 410 expired once its
// result was deleted (IMGD_RESULT_TTL).
func (s *Server) getTaskResult(w http.ResponseWriter, r *http.Request) error {
	t, err := s.store.GetTask(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	switch {
	case t.Status.HasResult() && t.Result != nil:
		return s.serveResult(w, r, t)
	case t.Result == nil && t.ErrorCode == imgd.CodeExpired:
		return imgd.Errorf(imgd.CodeExpired, "the result of task %s expired and was deleted; create the task again to recompute it", t.ID)
	case !t.Status.Final():
		w.Header().Set("Retry-After", "1")
		return imgd.Errorf(imgd.CodeNotReady, "task %s is %s; its result is not ready yet", t.ID, t.Status)
	default:
		msg := fmt.Sprintf("task %s is %s and has no result", t.ID, t.Status)
		if t.ErrorCode != "" {
			msg += " (error_code " + string(t.ErrorCode) + ")"
		}
		return imgd.Errorf(imgd.CodeConflict, "%s", msg)
	}
}

// cancelTask cancels an unfinished task and its job. A task that is
// running stops at its next step and stores no result (the worker drops
// a result that arrives after the cancel). Canceling a canceled task
// again answers the task unchanged.
func (s *Server) cancelTask(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	before, err := s.store.GetTask(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	t, err := s.store.CancelTask(ctx, before.ID)
	if err != nil {
		return err
	}
	if before.Status != imgd.TaskCanceled {
		s.publishTask(t)
	}
	writeJSON(w, http.StatusOK, newTaskView(t))
	return nil
}

// getTaskVariant serves variant {index} of a responsive task's result
// (docs/responsive.md) like the result route serves a result: same ETag,
// Range and caching. While the task has no result it answers what the
// result route answers; an index the set does not have is 404, a variant
// that failed 409 conflict with its error.
func (s *Server) getTaskVariant(w http.ResponseWriter, r *http.Request) error {
	t, err := s.store.GetTask(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	index, err := strconv.Atoi(r.PathValue("index"))
	if err != nil || index < 0 {
		return &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "index",
			Message: fmt.Sprintf("must be a variant index 0, 1, …, got %q", r.PathValue("index"))}
	}
	if !t.Status.HasResult() || t.Result == nil {
		return s.getTaskResult(w, r)
	}
	if index >= len(t.Result.Variants) {
		return imgd.Errorf(imgd.CodeNotFound, "task %s has %d variants, none with index %d", t.ID, len(t.Result.Variants), index)
	}
	v := t.Result.Variants[index]
	if v.Failed() {
		return imgd.Errorf(imgd.CodeConflict, "variant %d of task %s failed (error_code %s): %s", index, t.ID, v.ErrorCode, v.ErrorMessage)
	}
	mt := v.MediaType
	if mt == "" {
		mt = v.Format.MediaType()
	}
	return s.serveBlob(w, r, v.BlobKey, mt, fmt.Sprintf("%s-%d-%dw.%s", t.ID, index, v.Width, v.Format.Ext()), resultTime(t))
}
