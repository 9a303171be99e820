package httpapi_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/blob/s3test"
	"github.com/imgd/imgd/internal/imgtest"
)

// noRedirects answers a redirect as it is, so that the scenario sees and
// validates the 302 of a presigned download.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// resultExpirer is sqlstore.Store's expiry, which the periodic upkeep runs.
type resultExpirer interface {
	ExpireResults(ctx context.Context, cutoff time.Time, limit int) (int, []string, error)
}

// presignScenario runs, against an imgd on real S3 (versitygw) with
// presigned downloads, the answers no embedded server gives: 302 from the
// original, result and variant routes (whose Location serves the same
// bytes), then 410 expired from the result and variant routes once the
// results expired.
func presignScenario(t *testing.T, a *apiCheck) {
	e := newEnv(t, envOptions{blobURL: s3test.Start(t), presign: time.Minute})
	photo := imgtest.Read(t, "photos/jpeg-baseline-small.jpg")
	im := e.mustUpload("small.jpg", photo)

	redirected := func(path string) []byte {
		t.Helper()
		resp, _ := a.do(t, e.URL, call{method: "GET", path: path, want: http.StatusFound})
		loc := resp.Header.Get("Location")
		got, body := fetch(t, "GET", loc, nil, nil)
		if got.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: its Location %s = %d %s, want 200", path, loc, got.StatusCode, body)
		}
		// The web page's own request is served by the api: its CSP allows
		// this origin only.
		own, want := e.do("GET", path, nil, http.Header{"Sec-Fetch-Site": {"same-origin"}})
		if own.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
			t.Errorf("GET %s: presigned download %d bytes; the api's (same-origin) %d %d bytes, want 200 and the same bytes",
				path, len(body), own.StatusCode, len(want))
		}
		if g, w := got.Header.Get("Content-Disposition"), own.Header.Get("Content-Disposition"); g != w {
			t.Errorf("GET %s: presigned Content-Disposition %q, want the api's %q", path, g, w)
		}
		return body
	}
	if b := redirected("/api/v1/images/" + im.ID + "/content"); !bytes.Equal(b, photo) {
		t.Errorf("presigned original: %d bytes, want the %d uploaded", len(b), len(photo))
	}
	task := e.mustSubmit(im.ID, `[{"op":"resize","width":50},{"op":"convert","format":"webp"}]`)
	set := e.mustSubmit(im.ID, `[{"op":"responsive","widths":[40],"formats":["png"]}]`)
	for _, id := range []string{task.ID, set.ID} {
		if done := e.waitTask(id, 30*time.Second); !done.Status.HasResult() {
			t.Fatalf("task %s ended %s %s, want a result", id, done.Status, done.ErrorMessage)
		}
	}
	if b := redirected("/api/v1/tasks/" + task.ID + "/result"); len(b) < 12 || string(b[8:12]) != "WEBP" {
		t.Errorf("presigned result: % x…, want a WebP", b[:min(len(b), 12)])
	}
	if b := redirected("/api/v1/tasks/" + set.ID + "/variants/0"); !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Errorf("presigned variant: % x…, want a PNG", b[:min(len(b), 8)])
	}
	// The original service's clients get the bytes, as they always did.
	resp, b := a.do(t, e.URL, call{method: "GET", path: "/api/v1/images/result/" + task.ID, want: http.StatusOK})
	if len(b) < 12 || string(b[8:12]) != "WEBP" || resp.Header.Get("Location") != "" {
		t.Errorf("compat result with presigning on: % x…, Location %q; want the WebP itself", b[:min(len(b), 12)], resp.Header.Get("Location"))
	}

	exp, ok := e.Svc.Store.(resultExpirer)
	if !ok {
		t.Fatalf("store %T cannot expire results", e.Svc.Store)
	}
	if n, _, err := exp.ExpireResults(t.Context(), time.Now().Add(time.Hour), 100); err != nil || n != 2 {
		t.Fatalf("ExpireResults(all) = %d, %v; want the 2 results expired", n, err)
	}
	for _, path := range []string{"/api/v1/tasks/" + task.ID + "/result", "/api/v1/tasks/" + set.ID + "/variants/0"} {
		_, b := a.do(t, e.URL, call{method: "GET", path: path, want: http.StatusGone})
		wantCode(t, b, string(imgd.CodeExpired))
	}
	_, b = a.do(t, e.URL, call{method: "GET", path: "/api/v1/tasks/" + task.ID, want: http.StatusOK})
	if view := decode[apiTask](t, b); view.ErrorCode != imgd.CodeExpired || view.ResultURL != "" || view.Result != nil {
		t.Errorf("expired task: %s", b)
	}
	if !strings.Contains(string(b), `"status":"completed"`) {
		t.Errorf("expired task: %s, want it still completed", b)
	}
}
