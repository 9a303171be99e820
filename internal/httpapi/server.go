// Package httpapi is imgd's HTTP interface: the JSON API v1 under /api/v1,
// the compatibility routes of the original resize service, Server-Sent
// Events, and the operational endpoints (/healthz, /readyz, /metrics).
//
// Every error answer is {"error": {"code": "…", "message": "…"}} with the
// status of its code (statusOf); unknown routes and wrong methods answer
// the same way.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/engine"
	"github.com/imgd/imgd/internal/events"
	"github.com/imgd/imgd/internal/metrics"
	"github.com/imgd/imgd/internal/web"
	"github.com/imgd/imgd/internal/webhook"
)

// Options configure a Server.
type Options struct {
	Store  imgd.Store     // required
	Blobs  imgd.BlobStore // required
	Engine *engine.Engine // required: probes uploads and holds the limits
	Hub    *events.Hub    // nil: no events
	// Ready reports whether the server's dependencies serve requests, for
	// /readyz; nil means always ready.
	Ready   func(context.Context) error
	Metrics *metrics.Metrics // nil: no metrics
	Logger  *slog.Logger     // nil discards
	// OnTaskUpdate, when set, is called after each task status change the
	// API makes (creation, cancel), after the event is published.
	OnTaskUpdate func(imgd.Task)
	// WebhookDeliveries lists a task's webhook delivery attempts; nil
	// lists none.
	WebhookDeliveries func(ctx context.Context, taskID string) ([]webhook.Delivery, error)
	// PresignTTL, when > 0 and Blobs can presign (S3), makes downloads of
	// results and originals answer 302 to a presigned URL valid that long
	// (IMGD_BLOB_PRESIGN); see redirectToBlob.
	PresignTTL time.Duration
}

// Server serves the API. Create it with New.
type Server struct {
	store      imgd.Store
	blobs      imgd.BlobStore
	engine     *engine.Engine
	hub        *events.Hub
	ready      func(context.Context) error
	metrics    *metrics.Metrics
	log        *slog.Logger
	update     func(imgd.Task)
	deliveries func(context.Context, string) ([]webhook.Delivery, error)
	presignTTL time.Duration
	mux        *http.ServeMux
	routes     []string // registered patterns, in order (Routes)
}

// New returns a Server, or an error naming a missing option.
func New(o Options) (*Server, error) {
	var errs []error
	if o.Store == nil {
		errs = append(errs, errors.New("httpapi: Store is required"))
	}
	if o.Blobs == nil {
		errs = append(errs, errors.New("httpapi: Blobs is required"))
	}
	if o.Engine == nil {
		errs = append(errs, errors.New("httpapi: Engine is required"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Ready == nil {
		o.Ready = func(context.Context) error { return nil }
	}
	s := &Server{store: o.Store, blobs: o.Blobs, engine: o.Engine, hub: o.Hub, ready: o.Ready,
		metrics: o.Metrics, log: o.Logger, update: o.OnTaskUpdate, deliveries: o.WebhookDeliveries,
		presignTTL: o.PresignTTL, mux: http.NewServeMux()}
	s.imageRoutes()
	s.taskRoutes()
	s.compatRoutes()
	s.eventRoutes()
	s.opsRoutes()
	s.webRoutes()
	return s, nil
}

// webRoutes serves the embedded web page beside the API, on the same
// origin (its CSP allows connections to 'self' only). They stay out of
// Routes: the OpenAPI document describes the API, not the page.
func (s *Server) webRoutes() {
	page := web.Handler()
	s.mux.Handle("GET /{$}", page)
	s.mux.Handle("GET /static/", page)
}

// Handle registers h for a Go 1.22 mux pattern, e.g. "GET /api/v1/images".
// Patterns name the route in logs and metrics.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
	s.routes = append(s.routes, pattern)
}

// HandleFunc is Handle for a function.
func (s *Server) HandleFunc(pattern string, h http.HandlerFunc) { s.Handle(pattern, h) }

// Routes lists the registered patterns in registration order; a test
// checks each one is in the OpenAPI document.
func (s *Server) Routes() []string { return slices.Clone(s.routes) }

// ServeHTTP implements http.Handler: request id, recovery, logging and
// metrics around the routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := r.Header.Get("X-Request-ID")
	if !validRequestID(id) {
		id = imgd.NewID()
	}
	w.Header().Set("X-Request-ID", id)
	log := s.log.With("request_id", id)
	r = r.WithContext(withLogger(r.Context(), log))
	rw := &responseWriter{ResponseWriter: w}
	body := &countingBody{ReadCloser: r.Body}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = body
	}

	h, pattern := s.mux.Handler(r)
	if pattern == "" {
		muxAnswer := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.unrouted(w, r, muxAnswer) })
		pattern = "unrouted"
	} else {
		// Through the mux again: only its ServeHTTP sets r.Pattern and the
		// path values ({id}) that handlers read with r.PathValue.
		h = s.mux
	}
	func() {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("panic in handler", "route", pattern, "panic", v)
				if !rw.wroteHeader {
					writeError(rw, imgd.Errorf(imgd.CodeInternal, "internal error"))
				}
			}
		}()
		h.ServeHTTP(rw, r)
	}()
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	d := time.Since(start)
	s.metrics.ObserveHTTP(pattern, rw.status, d)
	s.metrics.AddHTTPBytes(pattern, body.n.Load(), rw.bytes)
	level := slog.LevelInfo
	if rw.status >= 500 {
		level = slog.LevelError
	}
	log.Log(r.Context(), level, "http request", "method", r.Method, "route", pattern, "path", r.URL.Path,
		"status", rw.status, "bytes", rw.bytes, "duration_ms", float64(d.Microseconds())/1000)
}

// unrouted answers a request no pattern matched: 404, or 405 with Allow
// when the path exists for other methods, as JSON errors.
func (s *Server) unrouted(w http.ResponseWriter, r *http.Request, mux http.Handler) {
	probe := &statusRecorder{header: http.Header{}}
	mux.ServeHTTP(probe, r)
	if probe.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", probe.header.Get("Allow"))
		writeErrorStatus(w, http.StatusMethodNotAllowed, "method_not_allowed",
			fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, probe.header.Get("Allow")))
		return
	}
	writeErrorStatus(w, http.StatusNotFound, string(imgd.CodeNotFound), "no route for "+r.Method+" "+r.URL.Path)
}

// statusRecorder captures the status and headers of the mux's own 404/405
// answer, discarding its plain-text body.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header         { return s.header }
func (s *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusRecorder) WriteHeader(code int)        { s.status = code }

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := range len(id) {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// countingBody counts the request body bytes a handler reads, for
// imgd_http_request_bytes_total: what was read, not Content-Length, since
// a refused upload stops reading early. Atomic because a handler may
// hand the body to another goroutine (a multipart pipe) that outlives it.
type countingBody struct {
	io.ReadCloser
	n atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// responseWriter records the status and body size, and passes Flush
// through for Server-Sent Events.
type responseWriter struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.status, w.wroteHeader = code, true
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *responseWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type loggerKey struct{}

func withLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// logger returns the request's logger, which carries its request_id.
func logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.New(slog.DiscardHandler)
}

// statusOf is the HTTP status of an error code (ARCHITECTURE.md §4).
func statusOf(c imgd.Code) int {
	switch c {
	case imgd.CodeInvalidArgument:
		return http.StatusBadRequest
	case imgd.CodeNotFound:
		return http.StatusNotFound
	case imgd.CodeNotReady, imgd.CodeConflict:
		return http.StatusConflict
	case imgd.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case imgd.CodeUnsupported:
		return http.StatusUnsupportedMediaType
	case imgd.CodeOverLimit:
		return http.StatusUnprocessableEntity
	case imgd.CodeRateLimited:
		return http.StatusTooManyRequests
	case imgd.CodeUnavailable, imgd.CodeCanceled:
		return http.StatusServiceUnavailable
	case imgd.CodeExpired:
		return http.StatusGone
	}
	return http.StatusInternalServerError
}

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeError answers with err's code, status and client-safe message. A
// task status transition that is not allowed is a conflict.
func writeError(w http.ResponseWriter, err error) {
	code := imgd.CodeOf(err)
	if errors.Is(err, imgd.ErrTaskTransition) {
		code = imgd.CodeConflict
	}
	if code == imgd.CodeRateLimited || code == imgd.CodeUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeErrorStatus(w, statusOf(code), string(code), imgd.MessageOf(err))
}

func writeErrorStatus(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: message}})
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// maxJSONBody bounds JSON request bodies.
const maxJSONBody = 1 << 20

// decodeJSON reads a JSON request body into v, rejecting unknown fields,
// trailing data and bodies over maxJSONBody with invalid_argument (or
// too_large).
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, maxJSONBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return imgd.Errorf(imgd.CodeTooLarge, "request body is larger than %d bytes", maxJSONBody)
		}
		if errors.Is(err, io.EOF) {
			return imgd.Errorf(imgd.CodeInvalidArgument, "request body is empty; expected a JSON object")
		}
		return imgd.WrapError(imgd.CodeInvalidArgument, err, "request body is not valid JSON: "+err.Error())
	}
	if dec.More() {
		return imgd.Errorf(imgd.CodeInvalidArgument, "request body holds more than one JSON value")
	}
	return nil
}

// publishTask publishes a task.updated event for t and calls OnTaskUpdate.
func (s *Server) publishTask(t imgd.Task) {
	s.hub.Publish(events.TaskUpdated(t))
	if s.update != nil {
		s.update(t)
	}
}
