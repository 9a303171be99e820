package httpapi_test

import (
	"net/http"
	"testing"
)

func TestUnroutedAnswersJSON(t *testing.T) {
	e := newEnv(t, envOptions{workers: -1})
	resp, b := e.do("GET", "/api/v1/nope", nil, nil)
	if resp.StatusCode != http.StatusNotFound || errorCode(t, b) != "not_found" {
		t.Errorf("GET unknown route = %d %s, want 404 not_found", resp.StatusCode, b)
	}
	if resp.Header.Get("X-Request-ID") == "" {
		t.Error("no X-Request-ID on the answer")
	}
	resp, _ = e.do("GET", "/", nil, http.Header{"X-Request-Id": {"abc-123"}})
	if got := resp.Header.Get("X-Request-ID"); got != "abc-123" {
		t.Errorf("X-Request-ID = %q, want the client's abc-123", got)
	}
}
