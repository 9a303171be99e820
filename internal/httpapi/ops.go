package httpapi

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"github.com/imgd/imgd"
)

// openAPIDoc is the OpenAPI 3 description of every route of the Server;
// openapi_test.go checks real answers against it.
//
//go:embed openapi.json
var openAPIDoc []byte

// openAPIETag is a strong validator of the embedded document, which changes
// only with the binary.
var openAPIETag = func() string {
	sum := sha256.Sum256(openAPIDoc)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}()

// readyTimeout bounds the dependency checks of /readyz, so that a hung
// database answers 503 in time for the orchestrator's probe.
const readyTimeout = 2 * time.Second

func (s *Server) opsRoutes() {
	s.HandleFunc("GET /healthz", s.healthz)
	s.HandleFunc("GET /readyz", s.readyz)
	s.HandleFunc("GET /metrics", s.serveMetrics)
	s.HandleFunc("GET /api/v1/openapi.json", s.openAPI)
}

type statusBody struct {
	Status string       `json:"status"`
	Error  *errorDetail `json:"error,omitempty"`
}

// healthz answers 200 while the process serves HTTP: liveness checks no
// dependency, so a database outage does not get every instance restarted.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, statusBody{Status: "ok"})
}

// readyz answers 200 when the database, blob store and data directory
// serve requests, 503 otherwise with the reason: the endpoint is for
// operators and orchestrators, and the reason is what they need.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		logger(r.Context()).Warn("not ready", "err", err)
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, statusBody{Status: "unavailable",
			Error: &errorDetail{Code: string(imgd.CodeUnavailable), Message: "not ready: " + err.Error()}})
		return
	}
	writeJSON(w, http.StatusOK, statusBody{Status: "ready"})
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if s.metrics == nil {
		writeErrorStatus(w, http.StatusNotFound, string(imgd.CodeNotFound), "metrics are not enabled")
		return
	}
	s.metrics.Handler().ServeHTTP(w, r)
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("ETag", openAPIETag)
	h.Set("Cache-Control", "no-cache")
	if r.Header.Get("If-None-Match") == openAPIETag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(openAPIDoc)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(openAPIDoc)
	}
}
