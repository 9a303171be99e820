package httpapi

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/events"
)

// formOverhead is what a multipart upload may carry beyond the file itself:
// boundaries, part headers and small fields.
const formOverhead = 1 << 20

// imageTasksLimit bounds the tasks listed with one image.
const imageTasksLimit = 100

func (s *Server) imageRoutes() {
	s.HandleFunc("POST /api/v1/images", s.apiHandler(s.createImage))
	s.HandleFunc("GET /api/v1/images", s.apiHandler(s.listImages))
	s.HandleFunc("GET /api/v1/images/{id}", s.apiHandler(s.getImage))
	s.HandleFunc("GET /api/v1/images/{id}/content", s.apiHandler(s.getImageContent))
	s.HandleFunc("DELETE /api/v1/images/{id}", s.apiHandler(s.deleteImage))
}

// apiHandler adapts a handler that returns an error: the error, if any, is
// answered by writeError, so no handler writes an error body itself. An
// error after the handler started its answer can only be logged.
func (s *Server) apiHandler(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		if rw, ok := w.(*responseWriter); ok && rw.wroteHeader {
			logger(r.Context()).Warn("error after the answer started", "error", err)
			return
		}
		switch code := imgd.CodeOf(err); {
		case code == imgd.CodeInternal:
			logger(r.Context()).Error("request failed", "error", err)
		case statusOf(code) >= 500:
			logger(r.Context()).Warn("request failed", "error_code", code, "error", err)
		}
		writeError(w, err)
	}
}

// imageView is an image as the API shows it.
type imageView struct {
	imgd.Image
	ContentURL string `json:"content_url"`
}

func newImageView(im imgd.Image) imageView {
	return imageView{Image: im, ContentURL: "/api/v1/images/" + im.ID + "/content"}
}

// imageDetail is GET /api/v1/images/{id}: the image and its tasks.
type imageDetail struct {
	imageView
	Tasks []taskView `json:"tasks"`
}

// createImage stores an upload: a multipart form whose "file" part holds
// the image, or the image itself as the body (Content-Type image/* or
// application/octet-stream, name in ?filename=).
func (s *Server) createImage(w http.ResponseWriter, r *http.Request) error {
	idem, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	// Bounds the whole form, whose other parts ingest does not see: past
	// it, reading fails with *http.MaxBytesError (too_large) while the
	// client is still sending.
	r.Body = http.MaxBytesReader(w, r.Body, s.engine.Limits().MaxInputBytes+formOverhead)

	ct := r.Header.Get("Content-Type")
	mediaType, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		return &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "Content-Type",
			Message: "must be multipart/form-data with a \"file\" part, image/* or application/octet-stream"}
	}
	var (
		im      imgd.Image
		created bool
	)
	switch {
	case mediaType == "multipart/form-data":
		im, created, err = s.ingestMultipart(r, idem)
	case strings.HasPrefix(mediaType, "image/") || mediaType == "application/octet-stream":
		im, created, err = s.ingest(r.Context(), r.Body, r.URL.Query().Get("filename"), idem)
	default:
		return &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "Content-Type",
			Message: "is " + mediaType + "; must be multipart/form-data with a \"file\" part, image/* or application/octet-stream"}
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/images/"+im.ID)
	status := http.StatusCreated
	if !created {
		w.Header().Set("Idempotent-Replayed", "true")
		status = http.StatusOK
	}
	writeJSON(w, status, newImageView(im))
	return nil
}

// ingestMultipart streams the parts of a form until the "file" part, which
// it hands to ingest; other parts are skipped.
func (s *Server) ingestMultipart(r *http.Request, idem string) (imgd.Image, bool, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return imgd.Image{}, false, imgd.WrapError(imgd.CodeInvalidArgument, err, "the body is not a multipart form: "+err.Error())
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return imgd.Image{}, false, &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "file",
				Message: "is required: send the image in a multipart part named \"file\""}
		}
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return imgd.Image{}, false, imgd.Errorf(imgd.CodeTooLarge, "the upload is larger than %d bytes",
					s.engine.Limits().MaxInputBytes)
			}
			return imgd.Image{}, false, imgd.WrapError(imgd.CodeInvalidArgument, err, "reading the multipart form failed: "+err.Error())
		}
		if part.FormName() != "file" {
			continue // NextPart skips the rest of it
		}
		// Not closed: closing reads the part to its end, which a refused
		// upload must not wait for.
		return s.ingest(r.Context(), part, part.FileName(), idem)
	}
}

// idempotencyKey returns the request's Idempotency-Key header, checked.
func idempotencyKey(r *http.Request) (string, error) {
	k := r.Header.Get("Idempotency-Key")
	if len(k) > imgd.MaxIdempotencyKeyLen {
		return "", &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "Idempotency-Key",
			Message: "is longer than " + strconv.Itoa(imgd.MaxIdempotencyKeyLen) + " bytes"}
	}
	return k, nil
}

func (s *Server) listImages(w http.ResponseWriter, r *http.Request) error {
	limit, cursor, err := pageParams(r)
	if err != nil {
		return err
	}
	page, err := s.store.ListImages(r.Context(), imgd.ImageFilter{Cursor: cursor, Limit: limit})
	if err != nil {
		return err
	}
	items := make([]imageView, len(page.Items))
	for i, im := range page.Items {
		items[i] = newImageView(im)
	}
	writePage(w, r, items, page.Next)
	return nil
}

func (s *Server) getImage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	im, err := s.store.GetImage(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	tasks, err := s.store.ListTasks(ctx, imgd.TaskFilter{Owner: im.Owner, ImageID: im.ID, Limit: imageTasksLimit})
	if err != nil {
		return err
	}
	d := imageDetail{imageView: newImageView(im), Tasks: make([]taskView, len(tasks.Items))}
	for i, t := range tasks.Items {
		d.Tasks[i] = newTaskView(t)
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// getImageContent serves the original bytes. The content of an id never
// changes, so it may be cached for good; Range and conditional requests are
// http.ServeContent's.
func (s *Server) getImageContent(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	im, err := s.store.GetImage(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	name := safeFilename(im.Filename)
	if name == "" {
		name = im.ID + "." + im.Format.Ext()
	}
	return s.serveBlob(w, r, im.BlobKey, im.MediaType, name, im.CreatedAt)
}

// serveBlob answers with the blob key as an immutable download named
// filename, last modified at modTime. Its ETag is the content's SHA-256,
// which its key holds.
func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request, key, mediaType, filename string, modTime time.Time) error {
	digest, err := imgd.ParseBlobKey(key)
	if err != nil {
		return err
	}
	disp := mime.FormatMediaType("inline", map[string]string{"filename": filename})
	if disp == "" {
		disp = "inline"
	}
	if done, err := s.redirectToBlob(w, r, key, mediaType, disp); done || err != nil {
		return err
	}
	f, err := s.blobs.Open(r.Context(), key)
	if err != nil {
		return err
	}
	defer f.Close()
	h := w.Header()
	h.Set("ETag", `"`+digest+`"`)
	h.Set("Content-Type", mediaType)
	h.Set("Content-Disposition", disp)
	h.Set("Cache-Control", blobCacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	// An uploaded SVG is served as an image, but opened directly it is a
	// document of this origin: no scripts, no fetches, no same-origin rights.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
	http.ServeContent(&rangeErrorJSON{ResponseWriter: w}, r, "", modTime, f)
	return nil
}

// rangeErrorJSON turns http.ServeContent's plain-text 416 answer into the
// API's JSON error (its Content-Range header stays); every other answer
// passes through, with the underlying ReadFrom (sendfile for files).
type rangeErrorJSON struct {
	http.ResponseWriter
	replaced bool
}

func (w *rangeErrorJSON) WriteHeader(status int) {
	if status != http.StatusRequestedRangeNotSatisfiable {
		w.ResponseWriter.WriteHeader(status)
		return
	}
	w.replaced = true
	writeErrorStatus(w.ResponseWriter, status, string(imgd.CodeInvalidArgument),
		"the requested range does not overlap the content")
}

func (w *rangeErrorJSON) Write(b []byte) (int, error) {
	if w.replaced {
		return len(b), nil // ServeContent's plain-text message
	}
	return w.ResponseWriter.Write(b)
}

func (w *rangeErrorJSON) ReadFrom(r io.Reader) (int64, error) {
	if w.replaced {
		return io.Copy(io.Discard, r)
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{w.ResponseWriter}, r)
}

// writerOnly hides every method but Write, so that io.Copy does not call
// ReadFrom again.
type writerOnly struct{ io.Writer }

// safeFilename reduces a client-given file name to something safe to put in
// a Content-Disposition header: its last path element, without control or
// format characters and quotes, at most 255 bytes; "" when nothing is left.
func safeFilename(name string) string {
	name = path.Base(strings.ReplaceAll(name, `\`, "/"))
	var b strings.Builder
	for _, c := range name {
		switch {
		case c == utf8.RuneError, unicode.IsControl(c), unicode.Is(unicode.Cf, c), c == '"':
			continue
		}
		if b.Len()+utf8.RuneLen(c) > 255 {
			break
		}
		b.WriteRune(c)
	}
	out := strings.TrimSpace(b.String())
	if out == "." || out == ".." || out == "/" {
		return ""
	}
	return out
}

func (s *Server) deleteImage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	im, err := s.store.GetImage(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	unreferenced, err := s.store.DeleteImage(ctx, im.ID)
	if err != nil {
		return err
	}
	s.deleteUnreferenced(ctx, unreferenced...)
	s.hub.Publish(events.ImageEvent(events.TypeImageDeleted, im))
	w.WriteHeader(http.StatusNoContent)
	return nil
}
