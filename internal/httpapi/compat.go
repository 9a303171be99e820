package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/events"
)

// The compatibility routes keep clients of the original Flask + Celery
// resize service working unchanged (docs/compat.md): its paths, its status
// codes and its {"message", "result": "error"} error bodies, which differ
// from the rest of the API on purpose.

// Bounds of the original service's size check, kept as observed: a width
// of 9999 was refused but a height of 9999 accepted.
const (
	compatMaxWidth  = 9998
	compatMaxHeight = 9999
)

// compatPriority is the priority of compat tasks: its clients poll for a
// thumbnail someone is waiting for.
const compatPriority = imgd.MinPriority

// compatFormSlack is what a compat upload may hold beyond the image: the
// width and height fields and the multipart framing.
const compatFormSlack = 64 << 10

// maxCompatField bounds a width or height form value; longer is invalid.
const maxCompatField = 32

// Messages of the original service, matched exactly by its clients.
const (
	msgNoFile         = "No file given"
	msgInvalidSize    = "Invalid size"
	msgInvalidExt     = "Invalid extension"
	msgInvalidImage   = "Invalid image"  // imgd only: not an image, or over a limit
	msgTooLarge       = "File too large" // imgd only: over the upload limit
	msgInvalidForm    = "Invalid form"   // imgd only: the body broke after the file part
	msgServerError    = "Server error"
	msgTaskNotFound   = "Task not found"
	msgResultNotFound = "Result not found"
	msgUploadComplete = "Upload complete"
)

func (s *Server) compatRoutes() {
	s.HandleFunc("POST /api/v1/images/resize", s.compatResize)
	s.HandleFunc("GET /api/v1/status/{task_id}", s.compatStatus)
	// "GET /api/v1/images/result/{task_id}" would conflict with
	// "GET /api/v1/images/{id}/content" in the mux (both match
	// /api/v1/images/result/content and neither is more specific), so the
	// result route is the general two-segment pattern, which every
	// /api/v1/images/{id}/… route of the v1 API overrides, and the handler
	// answers only when the first segment is "result". A task id is never
	// "content", so nothing is lost.
	s.HandleFunc("GET /api/v1/images/{result}/{task_id}", s.compatResult)
}

// compatError is the original service's error body; the keys are in the
// order Flask's jsonify sorts them.
type compatError struct {
	Message string `json:"message"`
	Result  string `json:"result"`
}

func writeCompatError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, compatError{Message: message, Result: "error"})
}

type compatAccepted struct {
	Message string `json:"message"`
	Status  string `json:"status"`
	TaskID  string `json:"task_id"`
}

// compatUpload is what compatResize gathered from the form.
type compatUpload struct {
	width, height       string // raw values; the query wins over the form, the first field over later ones
	widthSet, heightSet bool   // found in the query or the form so far
	haveFile            bool   // a "file" part with a file name was seen
	badExt              bool   // its name has an extension the original refused
	image               *imgd.Image
	ingestErr           error // why ingest refused the file
}

// compatResize is POST /api/v1/images/resize: multipart "file", "width"
// and "height" (form fields or query string) → 202 with a task id.
//
// The form is streamed: the file is stored as soon as its part arrives,
// without waiting for fields that may follow it. The checks are then
// answered in the original's order (no file, size, extension, then imgd's
// own image check), and an image stored for a request that is refused
// afterwards is deleted again, so a refused upload leaves nothing behind.
// Only a body over the upload limit is answered at once (413), whatever
// else is wrong with it: the rest of it is never read.
func (s *Server) compatResize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, s.engine.Limits().MaxInputBytes+compatFormSlack)
	up := compatUpload{}
	q := r.URL.Query()
	_, up.widthSet = q["width"]
	_, up.heightSet = q["height"]
	up.width, up.height = q.Get("width"), q.Get("height")

	err := s.readCompatForm(ctx, r, &up)
	status, msg := 0, ""
	switch {
	case isTooLarge(err) || imgd.CodeOf(up.ingestErr) == imgd.CodeTooLarge:
		status, msg = http.StatusRequestEntityTooLarge, msgTooLarge
	case err != nil && !up.haveFile:
		// Not multipart, or broken before a file: the original saw no file.
		status, msg = http.StatusUnprocessableEntity, msgNoFile
	case err != nil:
		logger(ctx).Info("compat resize: broken form", "error", err)
		status, msg = http.StatusBadRequest, msgInvalidForm
	case !up.haveFile:
		status, msg = http.StatusUnprocessableEntity, msgNoFile
	}
	var width, height int
	if status == 0 {
		var ok bool
		if width, height, ok = compatSize(up.width, up.height); !ok {
			status, msg = http.StatusUnprocessableEntity, msgInvalidSize
		}
	}
	if status == 0 {
		switch {
		case up.badExt:
			status, msg = http.StatusUnprocessableEntity, msgInvalidExt
		case up.ingestErr != nil:
			status, msg = compatIngestError(ctx, up.ingestErr)
		case up.image.Format != imgd.FormatJPEG && up.image.Format != imgd.FormatPNG:
			// The original wrote JPEG and PNG only; another format under
			// a .jpg or .png name is refused rather than converted.
			status, msg = http.StatusUnprocessableEntity, msgInvalidImage
		}
	}
	if status != 0 {
		if up.image != nil {
			s.discardImage(ctx, *up.image)
		}
		writeCompatError(w, status, msg)
		return
	}

	task, _, err := s.store.CreateTask(ctx, imgd.Task{ImageID: up.image.ID,
		Pipeline: compatPipeline(width, height, up.image.Format), Priority: compatPriority})
	if err != nil {
		logger(ctx).Error("compat resize: create task", "image_id", up.image.ID, "error", err)
		s.discardImage(ctx, *up.image)
		writeCompatError(w, http.StatusInternalServerError, msgServerError)
		return
	}
	s.publishTask(task)
	writeJSON(w, http.StatusAccepted, compatAccepted{Message: msgUploadComplete, Status: "accepted", TaskID: task.ID})
}

// readCompatForm reads the multipart form into up, storing the first
// "file" part through ingest unless the request is already known to be
// refused. The returned error is a broken or oversized body.
func (s *Server) readCompatForm(ctx context.Context, r *http.Request, up *compatUpload) error {
	mr, err := r.MultipartReader()
	if err != nil {
		return err
	}
	seenFile := false
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch name := part.FormName(); {
		case name == "width" && part.FileName() == "" && !up.widthSet:
			up.width, err = readCompatField(part)
			up.widthSet = true
		case name == "height" && part.FileName() == "" && !up.heightSet:
			up.height, err = readCompatField(part)
			up.heightSet = true
		case name == "file" && !seenFile:
			// Like Flask's request.files["file"], only the first part
			// counts; an empty file name means no file was chosen.
			seenFile = true
			err = s.readCompatFile(ctx, part, up)
		}
		part.Close()
		if err != nil {
			return err
		}
	}
}

func (s *Server) readCompatFile(ctx context.Context, part *multipart.Part, up *compatUpload) error {
	filename := part.FileName()
	if filename == "" {
		return nil
	}
	up.haveFile = true
	up.badExt = !compatExtension(filename)
	if _, _, sizeOK := compatSize(up.width, up.height); up.badExt || (up.widthSet && up.heightSet && !sizeOK) {
		return nil // refused whatever the content: not worth storing
	}
	im, _, err := s.ingest(ctx, part, filename, "")
	if err != nil {
		// A body cut short (or over the limit) ends inside the file part.
		if isTooLarge(err) || errors.Is(err, io.ErrUnexpectedEOF) {
			return err
		}
		up.ingestErr = err
		return nil
	}
	up.image = &im
	return nil
}

// readCompatField reads a short form value; a longer one reads as invalid.
func readCompatField(part *multipart.Part) (string, error) {
	b, err := io.ReadAll(io.LimitReader(part, maxCompatField+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxCompatField {
		return "x", nil
	}
	return string(b), nil
}

func isTooLarge(err error) bool {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return true
	}
	return imgd.CodeOf(err) == imgd.CodeTooLarge
}

// compatSize parses width and height as the original's int() did (sign and
// surrounding spaces allowed) and applies its bounds.
func compatSize(ws, hs string) (width, height int, ok bool) {
	w, err1 := strconv.Atoi(strings.TrimSpace(ws))
	h, err2 := strconv.Atoi(strings.TrimSpace(hs))
	if err1 != nil || err2 != nil || w <= 0 || h <= 0 || w > compatMaxWidth || h > compatMaxHeight {
		return 0, 0, false
	}
	return w, h, true
}

// compatExtension reports whether filename ends in an extension the
// original accepted (jpg, png), plus jpeg; case does not matter.
func compatExtension(filename string) bool {
	i := strings.LastIndexByte(filename, '.')
	if i < 0 {
		return false
	}
	switch strings.ToLower(filename[i+1:]) {
	case "jpg", "jpeg", "png":
		return true
	}
	return false
}

// compatIngestError is the answer to a file ingest refused.
func compatIngestError(ctx context.Context, err error) (int, string) {
	switch imgd.CodeOf(err) {
	case imgd.CodeTooLarge:
		return http.StatusRequestEntityTooLarge, msgTooLarge
	case imgd.CodeUnsupported, imgd.CodeOverLimit, imgd.CodeInvalidArgument:
		return http.StatusUnprocessableEntity, msgInvalidImage
	}
	logger(ctx).Error("compat resize: storing the upload failed", "error", err)
	return http.StatusInternalServerError, msgServerError
}

// compatPipeline resizes to exactly width×height, ignoring the aspect
// ratio and enlarging when asked, as Pillow's resize did, and writes the
// input's format (JPEG at the original's quality 75). The engine applies
// the EXIF orientation on decode, before the resize.
func compatPipeline(width, height int, f imgd.Format) imgd.Pipeline {
	out := `{"op":"convert","format":"png"}`
	if f == imgd.FormatJPEG {
		out = `{"op":"convert","format":"jpeg","quality":75}`
	}
	return imgd.MustParsePipeline(fmt.Sprintf(
		`[{"op":"resize","width":%d,"height":%d,"fit":"fill","enlarge":true},%s]`, width, height, out))
}

// discardImage deletes an image stored for a request that was refused
// afterwards, with its blob when nothing else uses it.
func (s *Server) discardImage(ctx context.Context, im imgd.Image) {
	ctx = context.WithoutCancel(ctx)
	keys, err := s.store.DeleteImage(ctx, im.ID)
	if err != nil {
		logger(ctx).Warn("compat resize: delete refused upload", "image_id", im.ID, "error", err)
		return
	}
	s.hub.Publish(events.ImageEvent(events.TypeImageDeleted, im))
	s.deleteUnreferenced(ctx, keys...)
}

// compatStatus is the status body: Celery's state names, and for a failure
// imgd's reason (the original never showed one).
type compatStatus struct {
	Error  *errorDetail `json:"error,omitempty"`
	Status string       `json:"status"`
}

// compatState maps imgd's task status to the original's Celery state.
func compatState(t imgd.Task) compatStatus {
	switch t.Status {
	case imgd.TaskCompleted, imgd.TaskCompletedWithErrors:
		return compatStatus{Status: "SUCCESS"}
	case imgd.TaskFailed, imgd.TaskCanceled:
		d := errorDetail{Code: string(t.ErrorCode), Message: t.ErrorMessage}
		switch {
		case t.Status == imgd.TaskCanceled:
			d = errorDetail{Code: string(imgd.CodeCanceled), Message: "the task was canceled"}
		case d.Code == "":
			d = errorDetail{Code: string(imgd.CodeInternal), Message: "the task failed"}
		}
		return compatStatus{Status: "FAILURE", Error: &d}
	}
	return compatStatus{Status: "SENT"} // pending or processing
}

// compatStatus is GET /api/v1/status/{task_id}.
func (s *Server) compatStatus(w http.ResponseWriter, r *http.Request) {
	t, ok := s.compatTask(w, r, msgTaskNotFound)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, compatState(t))
}

// compatTask returns the task named by the path, or answers 404 with
// notFound (500 when the store fails).
func (s *Server) compatTask(w http.ResponseWriter, r *http.Request, notFound string) (imgd.Task, bool) {
	t, err := s.store.GetTask(r.Context(), r.PathValue("task_id"))
	switch imgd.CodeOf(err) {
	case "":
		return t, true
	case imgd.CodeNotFound, imgd.CodeInvalidArgument:
		writeCompatError(w, http.StatusNotFound, notFound)
	default:
		logger(r.Context()).Error("compat: get task", "task_id", r.PathValue("task_id"), "error", err)
		writeCompatError(w, http.StatusInternalServerError, msgServerError)
	}
	return imgd.Task{}, false
}

// compatResult is GET /api/v1/images/result/{task_id}: the result's bytes,
// as often as asked (the original deleted them after the first download).
func (s *Server) compatResult(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("result") != "result" {
		writeErrorStatus(w, http.StatusNotFound, string(imgd.CodeNotFound), "no route for "+r.Method+" "+r.URL.Path)
		return
	}
	t, ok := s.compatTask(w, r, msgResultNotFound)
	if !ok {
		return
	}
	if !t.Status.HasResult() || t.Result == nil {
		writeCompatError(w, http.StatusNotFound, msgResultNotFound)
		return
	}
	// The v1 result route's answer; its Content-Disposition is the
	// original's "inline; filename=<task_id>.<ext>" (a token needs no quotes).
	if err := s.serveResult(w, r, t); err != nil {
		if imgd.CodeOf(err) == imgd.CodeNotFound {
			writeCompatError(w, http.StatusNotFound, msgResultNotFound)
			return
		}
		logger(r.Context()).Error("compat: open result", "task_id", t.ID, "error", err)
		writeCompatError(w, http.StatusInternalServerError, msgServerError)
	}
}
