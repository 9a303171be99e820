package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/engine"
	"github.com/imgd/imgd/internal/httpapi"
	"github.com/imgd/imgd/internal/imgtest"
)

// routeExtension names the mux pattern of an operation whose document path
// differs from it (the compat result route, see compatRoutes).
const routeExtension = "x-imgd-route"

func init() {
	// kin-openapi decodes text/plain only; the OpenMetrics exposition is
	// text too.
	openapi3filter.RegisterBodyDecoder("application/openmetrics-text", openapi3filter.PlainBodyDecoder)
}

// loadOpenAPI loads and validates openapi.json (TestOpenAPIRoute checks
// that the server serves exactly this file).
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	return doc
}

// apiCheck sends requests to real servers and validates every request and
// response against the document, recording which documented statuses of
// which operations were seen.
type apiCheck struct {
	t       *testing.T
	doc     *openapi3.T
	router  routers.Router
	covered map[string]bool // "operationId status"
}

func newAPICheck(t *testing.T) *apiCheck {
	t.Helper()
	doc := loadOpenAPI(t)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("gorillamux.NewRouter: %v", err)
	}
	return &apiCheck{t: t, doc: doc, router: router, covered: map[string]bool{}}
}

// call is one request of the scenario.
type call struct {
	method, path string
	body         []byte
	header       http.Header
	want         int // expected status
	// badRequest marks a request that breaks the document on purpose: it
	// must fail request validation (and the server must refuse it).
	badRequest bool
}

func validationOptions() *openapi3filter.Options {
	return &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true,
		AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
}

// do sends c to base and returns the answer, failing the test when the
// status is not c.want or the request or answer breaks the document.
func (a *apiCheck) do(t *testing.T, base string, c call) (*http.Response, []byte) {
	t.Helper()
	ctx := t.Context()
	req := a.request(t, ctx, base, c)
	route, params, err := a.router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s: not in the document: %v", c.method, c.path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: validationOptions()}
	err = openapi3filter.ValidateRequest(ctx, in)
	switch {
	case c.badRequest && err == nil:
		t.Errorf("%s %s: request meant to break the document passes its validation", c.method, c.path)
	case !c.badRequest && err != nil:
		t.Errorf("%s %s: request does not match the document: %v", c.method, c.path, err)
	}

	resp, err := noRedirects.Do(a.request(t, ctx, base, c))
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", c.method, c.path, err)
	}
	if resp.StatusCode != c.want {
		t.Fatalf("%s %s = %d, want %d; body: %.500s", c.method, c.path, resp.StatusCode, c.want, body)
	}
	a.validateResponse(t, in, c, resp, body)
	return resp, body
}

func (a *apiCheck) request(t *testing.T, ctx context.Context, base string, c call) *http.Request {
	t.Helper()
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, base+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range c.header {
		for _, v := range vs {
			req.Header.Add(k, v) // canonical keys, as the validator looks them up
		}
	}
	return req
}

func (a *apiCheck) validateResponse(t *testing.T, in *openapi3filter.RequestValidationInput, c call, resp *http.Response, body []byte) {
	t.Helper()
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode,
		Header: resp.Header, Options: validationOptions()}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(t.Context(), out); err != nil {
		t.Errorf("%s %s → %d: answer does not match the document: %v\nbody: %.1000s", c.method, c.path, resp.StatusCode, err, body)
	}
	a.covered[in.Route.Operation.OperationID+" "+strconv.Itoa(resp.StatusCode)] = true
}

// stream opens an endless response (Server-Sent Events) and validates its
// request, status and headers; the caller reads the body and calls stop.
func (a *apiCheck) stream(t *testing.T, base string, c call) (resp *http.Response, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req := a.request(t, ctx, base, c)
	route, params, err := a.router.FindRoute(req)
	if err != nil {
		cancel()
		t.Fatalf("%s %s: not in the document: %v", c.method, c.path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: validationOptions()}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
		t.Errorf("%s %s: request does not match the document: %v", c.method, c.path, err)
	}
	resp, err = http.DefaultClient.Do(a.request(t, ctx, base, c))
	if err != nil {
		cancel()
		t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	stop = func() {
		cancel()
		resp.Body.Close()
	}
	if resp.StatusCode != c.want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
		stop()
		t.Fatalf("%s %s = %d, want %d; body: %s", c.method, c.path, resp.StatusCode, c.want, b)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode,
		Header: resp.Header, Options: validationOptions()}
	out.Options.ExcludeResponseBody = true
	out.SetBodyBytes(nil)
	if err := openapi3filter.ValidateResponse(t.Context(), out); err != nil {
		t.Errorf("%s %s → %d: answer does not match the document: %v", c.method, c.path, resp.StatusCode, err)
	}
	a.covered[route.Operation.OperationID+" "+strconv.Itoa(resp.StatusCode)] = true
	return resp, stop
}

// validateError checks an answer no operation documents (unknown route,
// wrong method) against the Error schema.
func (a *apiCheck) validateError(t *testing.T, method, path string, body []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s %s: body is not JSON: %v: %s", method, path, err, body)
	}
	if err := a.doc.Components.Schemas["Error"].Value.VisitJSON(v, openapi3.VisitAsResponse()); err != nil {
		t.Errorf("%s %s: body does not match the Error schema: %v\n%s", method, path, err, body)
	}
}

// notCovered lists the documented "operationId status" pairs no request
// produced, minus those no test can cause: 500 and 503 (a broken
// dependency), except /readyz's 503.
func (a *apiCheck) notCovered(skipOps ...string) []string {
	var missing []string
	for path, item := range a.doc.Paths.Map() {
		for method, op := range item.Operations() {
			if slices.Contains(skipOps, op.OperationID) {
				continue
			}
			for status := range op.Responses.Map() {
				if status == "500" || (status == "503" && op.OperationID != "readyz") {
					continue
				}
				if !a.covered[op.OperationID+" "+status] {
					missing = append(missing, fmt.Sprintf("%s %s (%s) %s", method, path, op.OperationID, status))
				}
			}
		}
	}
	sort.Strings(missing)
	return missing
}

// multipartForm builds a multipart body: fields in order, then the file
// part when filename is not "".
func multipartForm(t *testing.T, fields [][2]string, filename string, data []byte) ([]byte, http.Header) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, f := range fields {
		if err := w.WriteField(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	if filename != "" {
		fw, err := w.CreateFormFile("file", filename)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), http.Header{"Content-Type": {w.FormDataContentType()}}
}

func jsonHeader(extra ...string) http.Header {
	h := http.Header{"Content-Type": {"application/json"}}
	for i := 0; i+1 < len(extra); i += 2 {
		h.Set(extra[i], extra[i+1])
	}
	return h
}

// notImplemented reports whether an answer is the server's own 404 for a
// path no route matches.
func notImplemented(resp *http.Response, body []byte) bool {
	return resp.StatusCode == http.StatusNotFound && bytes.Contains(body, []byte(`"no route for `))
}

// TestOpenAPIScenario drives real servers through every route and checks
// every request and answer against openapi.json.
func TestOpenAPIScenario(t *testing.T) {
	t.Parallel()
	a := newAPICheck(t)
	e := newEnv(t, envOptions{})
	// idle has no workers, so its tasks stay pending, and a small upload
	// limit, for 413s.
	idleLimits := engine.DefaultLimits()
	idleLimits.MaxInputBytes = 40_000
	idle := newEnv(t, envOptions{workers: -1, limits: idleLimits})
	small := imgtest.Read(t, "photos/jpeg-baseline-small.jpg") // 16.7 kB, 640×427
	large := imgtest.Read(t, "photos/jpeg-icc.jpg")            // 112 kB: over idle's limits
	png := imgtest.Read(t, "png/png-palette-trns.png")
	var skipped []string

	t.Run("ops", func(t *testing.T) {
		a.do(t, e.URL, call{method: "GET", path: "/healthz", want: 200})
		a.do(t, e.URL, call{method: "GET", path: "/readyz", want: 200})
		restore := makeUnwritable(t, e)
		a.do(t, e.URL, call{method: "GET", path: "/readyz", want: 503})
		restore()
		a.do(t, e.URL, call{method: "GET", path: "/metrics", want: 200})
		resp, _ := a.do(t, e.URL, call{method: "GET", path: "/metrics", want: 200,
			header: http.Header{"Accept": {"application/openmetrics-text; version=1.0.0"}}})
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
			t.Errorf("GET /metrics asking for OpenMetrics: Content-Type %q", ct)
		}
		a.do(t, opsServer(t, idle, nil, nil), call{method: "GET", path: "/metrics", want: 404})
		resp, _ = a.do(t, e.URL, call{method: "GET", path: "/api/v1/openapi.json", want: 200})
		a.do(t, e.URL, call{method: "GET", path: "/api/v1/openapi.json", want: 304,
			header: http.Header{"If-None-Match": {resp.Header.Get("ETag")}}})

		resp, b := a.do(t, e.URL, call{method: "GET", path: "/healthz", want: 200,
			header: http.Header{"X-Request-ID": {"bad id with spaces"}}})
		if id := resp.Header.Get("X-Request-ID"); id == "" || strings.Contains(id, " ") {
			t.Errorf("invalid X-Request-ID kept or dropped: %q (%s)", id, b)
		}
	})

	var imageID, pngID string
	t.Run("images", func(t *testing.T) {
		body, h := multipartForm(t, [][2]string{{"comment", "first"}}, "small.jpg", small)
		resp, b := a.do(t, e.URL, call{method: "POST", path: "/api/v1/images", body: body, header: h, want: 201})
		if notImplemented(resp, b) {
			t.Fatal("route not implemented: the server answered 404 no route")
		}
		im := decode[map[string]any](t, b)
		imageID, _ = im["id"].(string)
		if loc := resp.Header.Get("Location"); loc != "/api/v1/images/"+imageID {
			t.Errorf("Location = %q, want /api/v1/images/%s", loc, imageID)
		}
		// Idempotency: the repeat answers 200 with the first image.
		h.Set("Idempotency-Key", "upload-1")
		_, b1 := a.do(t, e.URL, call{method: "POST", path: "/api/v1/images", body: body, header: h, want: 201})
		resp, b2 := a.do(t, e.URL, call{method: "POST", path: "/api/v1/images", body: body, header: h, want: 200})
		if resp.Header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(b1, b2) {
			t.Errorf("replayed upload: Idempotent-Replayed %q, body %s, want true and %s", resp.Header.Get("Idempotent-Replayed"), b2, b1)
		}
		// A raw body, named by the query.
		_, b = a.do(t, e.URL, call{method: "POST", path: "/api/v1/images?filename=icon.png", body: png,
			header: http.Header{"Content-Type": {"image/png"}}, want: 201})
		pngID, _ = decode[map[string]any](t, b)["id"].(string)

		// Refusals.
		noFile, h2 := multipartForm(t, [][2]string{{"name", "x"}}, "", nil)
		_, b = a.do(t, e.URL, call{method: "POST", path: "/api/v1/images", body: noFile, header: h2, want: 400, badRequest: true})
		wantCode(t, b, "invalid_argument")
		_, b = a.do(t, e.URL, call{method: "POST", path: "/api/v1/images", body: []byte("hello"),
			header: http.Header{"Content-Type": {"text/plain"}}, want: 400, badRequest: true})
		wantCode(t, b, "invalid_argument")
		body, h = multipartForm(t, nil, "large.jpg", large)
		_, b = a.do(t, idle.URL, call{method: "POST", path: "/api/v1/images", body: body, header: h, want: 413})
		wantCode(t, b, "too_large")
		body, h = multipartForm(t, nil, "html.png", imgtest.Read(t, "bad/html-named.png"))
		_, b = a.do(t, e.URL, call{method: "POST", path: "/api/v1/images", body: body, header: h, want: 415})
		wantCode(t, b, "unsupported_image")
		body, h = multipartForm(t, nil, "huge.jpg", imgtest.Read(t, "bad/jpeg-huge-dims.jpg"))
		_, b = a.do(t, e.URL, call{method: "POST", path: "/api/v1/images", body: body, header: h, want: 422})
		wantCode(t, b, "over_limit")

		// Lists: a first page of one with a link to the next.
		resp, b = a.do(t, e.URL, call{method: "GET", path: "/api/v1/images?limit=1", want: 200})
		page := decode[struct {
			Items []map[string]any `json:"items"`
			Next  string           `json:"next_cursor"`
		}](t, b)
		if len(page.Items) != 1 || page.Next == "" || resp.Header.Get("Link") == "" {
			t.Fatalf("GET /api/v1/images?limit=1: %d items, next_cursor %q, Link %q; want 1 item and a next page",
				len(page.Items), page.Next, resp.Header.Get("Link"))
		}
		a.do(t, e.URL, call{method: "GET", path: "/api/v1/images?limit=1&cursor=" + page.Next, want: 200})
		a.do(t, e.URL, call{method: "GET", path: "/api/v1/images", want: 200})
		_, b = a.do(t, e.URL, call{method: "GET", path: "/api/v1/images?cursor=not-a-cursor", want: 400})
		wantCode(t, b, "invalid_argument")
		a.do(t, e.URL, call{method: "GET", path: "/api/v1/images?limit=0", want: 400, badRequest: true})
		a.do(t, e.URL, call{method: "GET", path: "/api/v1/images?limit=501", want: 400, badRequest: true})

		a.do(t, e.URL, call{method: "GET", path: "/api/v1/images/" + imageID, want: 200})
		_, b = a.do(t, e.URL, call{method: "GET", path: "/api/v1/images/no-such-image", want: 404})
		wantCode(t, b, "not_found")

		// Content: whole, a range, conditional, unsatisfiable.
		resp, b = a.do(t, e.URL, call{method: "GET", path: "/api/v1/images/" + imageID + "/content", want: 200})
		if !bytes.Equal(b, small) || resp.Header.Get("Content-Type") != "image/jpeg" {
			t.Errorf("content: %d bytes of %s, want the %d uploaded bytes, image/jpeg", len(b), resp.Header.Get("Content-Type"), len(small))
		}
		etag := resp.Header.Get("ETag")
		_, b = a.do(t, e.URL, call{method: "GET", path: "/api/v1/images/" + imageID + "/content",
			header: http.Header{"Range": {"bytes=0-9"}}, want: 206})
		if !bytes.Equal(b, small[:10]) {
			t.Errorf("content bytes=0-9: got % x, want % x", b, small[:10])
		}
		a.do(t, e.URL, call{method: "GET", path: "/api/v1/images/" + imageID + "/content",
			header: http.Header{"If-None-Match": {etag}}, want: 304})
		a.do(t, e.URL, call{method: "GET", path: "/api/v1/images/" + imageID + "/content",
			header: http.Header{"Range": {"bytes=99999999-"}}, want: 416})
		a.do(t, e.URL, call{method: "GET", path: "/api/v1/images/no-such-image/content", want: 404})
	})
	if imageID == "" {
		t.Fatal("no image uploaded: the remaining routes need one")
	}

	var taskID string
	t.Run("tasks", func(t *testing.T) {
		create := func(base, image, pipeline string, want int, extra ...string) (*http.Response, map[string]any) {
			t.Helper()
			body := fmt.Sprintf(`{"image_id":%q,"pipeline":%s}`, image, pipeline)
			resp, b := a.do(t, base, call{method: "POST", path: "/api/v1/tasks", body: []byte(body), header: jsonHeader(extra...), want: want})
			if notImplemented(resp, b) {
				t.Fatal("route not implemented: the server answered 404 no route")
			}
			return resp, decode[map[string]any](t, b)
		}
		resp, task := create(e.URL, imageID, `[{"op":"resize","width":50},{"op":"convert","format":"webp","quality":70}]`, 202,
			"Idempotency-Key", "task-1")
		taskID, _ = task["id"].(string)
		if loc := resp.Header.Get("Location"); loc != "/api/v1/tasks/"+taskID {
			t.Errorf("Location = %q, want /api/v1/tasks/%s", loc, taskID)
		}
		resp, again := create(e.URL, imageID, `[{"op":"resize","width":50},{"op":"convert","format":"webp","quality":70}]`, 200,
			"Idempotency-Key", "task-1")
		if resp.Header.Get("Idempotent-Replayed") != "true" || again["id"] != taskID {
			t.Errorf("replayed task: Idempotent-Replayed %q, id %v, want true and %s", resp.Header.Get("Idempotent-Replayed"), again["id"], taskID)
		}
		// Every operation and parameter, to check the canonical pipeline
		// the server answers against the step schemas.
		_, all := create(e.URL, pngID, `[{"op":"auto_orient"},{"op":"rotate","angle":-90,"background":"#ff000080"},
			{"op":"flip","direction":"vertical"},{"op":"crop","x":1,"y":2,"width":20,"height":20},
			{"op":"resize","width":10,"height":10,"fit":"cover","gravity":"smart","enlarge":true},{"op":"grayscale"},
			{"op":"dither","method":"fs","palette":["#000000","#ffffff"],"serpentine":true,"linear":true},
			{"op":"convert","format":"png","lossless":true,"progressive":true,"strip":false}]`, 202)
		_, levels := create(e.URL, pngID, `[{"op":"dither","method":"bayer4","levels":4},{"op":"convert","format":"jpg"}]`, 202)
		_, named := create(e.URL, pngID, `[{"op":"dither","palette":"gameboy"},{"op":"resize","height":8,"fit":"contain","background":"#ff0000"}]`, 202)
		// A crop outside the image fails when it runs.
		_, bad := create(e.URL, imageID, `[{"op":"crop","x":5000,"y":5000,"width":10,"height":10}]`, 202)

		// A webhook to a receiver on loopback, checked against the
		// document's callback.
		hooks := make(chan webhookCall, 4)
		receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			hooks <- webhookCall{header: r.Header.Clone(), body: b}
			w.WriteHeader(http.StatusNoContent)
		}))
		defer receiver.Close()
		hookBody := fmt.Sprintf(`{"image_id":%q,"pipeline":[{"op":"grayscale"}],"priority":"interactive","webhook_url":%q}`,
			imageID, receiver.URL+"/hook")
		_, b := a.do(t, e.URL, call{method: "POST", path: "/api/v1/tasks", body: []byte(hookBody), header: jsonHeader(), want: 202})
		hooked := decode[map[string]any](t, b)

		// Refusals.
		for _, tc := range []struct {
			name, body string
			want       int
			code       string
			badRequest bool
		}{
			{"wrong parameter type", `{"image_id":"` + imageID + `","pipeline":[{"op":"resize","width":"wide"}]}`, 400, "invalid_argument", true},
			{"unknown op", `{"image_id":"` + imageID + `","pipeline":[{"op":"sharpen"}]}`, 400, "invalid_argument", true},
			{"convert not last", `{"image_id":"` + imageID + `","pipeline":[{"op":"convert","format":"png"},{"op":"grayscale"}]}`, 400, "invalid_argument", false},
			{"priority out of range", `{"image_id":"` + imageID + `","pipeline":[{"op":"grayscale"}],"priority":9}`, 400, "invalid_argument", true},
			{"no pipeline", `{"image_id":"` + imageID + `"}`, 400, "invalid_argument", true},
			{"not JSON", `{"image_id":`, 400, "invalid_argument", true},
			{"unknown image", `{"image_id":"0190aaaa-0000-7000-8000-000000000000","pipeline":[{"op":"grayscale"}]}`, 404, "not_found", false},
			{"body over 1 MiB", `{"image_id":"` + imageID + `","pipeline":[{"op":"grayscale"}]` + strings.Repeat(" ", 1<<20) + `}`, 413, "too_large", false},
		} {
			_, b := a.do(t, e.URL, call{method: "POST", path: "/api/v1/tasks", body: []byte(tc.body), header: jsonHeader(),
				want: tc.want, badRequest: tc.badRequest})
			if got := errorCode(t, b); got != tc.code {
				t.Errorf("%s: code %q, want %q", tc.name, got, tc.code)
			}
		}

		a.do(t, e.URL, call{method: "GET", path: "/api/v1/tasks/no-such-task", want: 404})
		for _, id := range []any{taskID, all["id"], levels["id"], named["id"], bad["id"], hooked["id"]} {
			final := a.waitFinal(t, e.URL, id.(string))
			if id == taskID && final["status"] != "completed" {
				t.Fatalf("task %s ended %v: %v", id, final["status"], final)
			}
			if id == bad["id"] && final["status"] != "failed" {
				t.Logf("crop outside the image ended %v, not failed: no failed task to check", final["status"])
			}
		}

		a.checkWebhook(t, e.URL, hooked["id"].(string), hooks)
		_, b = a.do(t, e.URL, call{method: "GET", path: "/api/v1/tasks/" + taskID + "/webhooks", want: 200})
		if n := len(decode[struct{ Items []any }](t, b).Items); n != 0 {
			t.Errorf("deliveries of a task without webhook_url: %d, want 0", n)
		}
		a.do(t, e.URL, call{method: "GET", path: "/api/v1/tasks/no-such-task/webhooks", want: 404})

		// Result: whole, a range, conditional, unsatisfiable.
		resp, b = a.do(t, e.URL, call{method: "GET", path: "/api/v1/tasks/" + taskID + "/result", want: 200})
		if resp.Header.Get("Content-Type") != "image/webp" || len(b) < 12 || string(b[8:12]) != "WEBP" {
			t.Errorf("result: %s, % x…; want a WebP", resp.Header.Get("Content-Type"), b[:min(len(b), 12)])
		}
		a.do(t, e.URL, call{method: "GET", path: "/api/v1/tasks/" + taskID + "/result", header: http.Header{"Range": {"bytes=0-3"}}, want: 206})
		a.do(t, e.URL, call{method: "GET", path: "/api/v1/tasks/" + taskID + "/result",
			header: http.Header{"If-None-Match": {resp.Header.Get("ETag")}}, want: 304})
		a.do(t, e.URL, call{method: "GET", path: "/api/v1/tasks/" + taskID + "/result", header: http.Header{"Range": {"bytes=99999999-"}}, want: 416})
		a.do(t, e.URL, call{method: "GET", path: "/api/v1/tasks/no-such-task/result", want: 404})
		// A responsive set whose second variant cannot be made (over the
		// output limit): completed_with_errors, a manifest, each variant
		// served like a result.
		_, set := create(e.URL, imageID, `[{"op":"responsive","widths":[100,17000],"formats":["webp"],"enlarge":true}]`, 202)
		setID := set["id"].(string)
		if final := a.waitFinal(t, e.URL, setID); final["status"] != "completed_with_errors" {
			t.Errorf("responsive task with an impossible variant ended %v, want completed_with_errors: %v", final["status"], final)
		}
		resp, b = a.do(t, e.URL, call{method: "GET", path: "/api/v1/tasks/" + setID + "/result", want: 200})
		if m := decode[imgd.Manifest](t, b); resp.Header.Get("Content-Type") != "application/json" || len(m.Variants) != 1 ||
			m.Srcset[imgd.FormatWebP] != "/api/v1/tasks/"+setID+"/variants/0 100w" || len(m.Errors) != 1 || m.Errors[0].Code != imgd.CodeOverLimit {
			t.Errorf("manifest (%s): %s", resp.Header.Get("Content-Type"), b)
		}
		variant := "/api/v1/tasks/" + setID + "/variants/"
		resp, b = a.do(t, e.URL, call{method: "GET", path: variant + "0", want: 200})
		if resp.Header.Get("Content-Type") != "image/webp" || len(b) < 12 || string(b[8:12]) != "WEBP" {
			t.Errorf("variant 0: %s, % x…; want a WebP", resp.Header.Get("Content-Type"), b[:min(len(b), 12)])
		}
		a.do(t, e.URL, call{method: "GET", path: variant + "0", header: http.Header{"Range": {"bytes=0-3"}}, want: 206})
		a.do(t, e.URL, call{method: "GET", path: variant + "0", header: http.Header{"If-None-Match": {resp.Header.Get("ETag")}}, want: 304})
		a.do(t, e.URL, call{method: "GET", path: variant + "0", header: http.Header{"Range": {"bytes=99999999-"}}, want: 416})
		_, b = a.do(t, e.URL, call{method: "GET", path: variant + "1", want: 409})
		wantCode(t, b, "conflict")
		a.do(t, e.URL, call{method: "GET", path: variant + "2", want: 404})
		a.do(t, e.URL, call{method: "GET", path: variant + "first", want: 400, badRequest: true})
		a.do(t, e.URL, call{method: "GET", path: "/api/v1/tasks/no-such-task/variants/0", want: 404})

		// A completed task cannot be canceled.
		_, b = a.do(t, e.URL, call{method: "DELETE", path: "/api/v1/tasks/" + taskID, want: 409})
		wantCode(t, b, "conflict")
		a.do(t, e.URL, call{method: "DELETE", path: "/api/v1/tasks/no-such-task", want: 404})

		// Lists and filters.
		resp, b = a.do(t, e.URL, call{method: "GET", path: "/api/v1/tasks?limit=1", want: 200})
		if resp.Header.Get("Link") == "" {
			t.Errorf("GET /api/v1/tasks?limit=1 with 5 tasks: no Link; body %.300s", b)
		}
		a.do(t, e.URL, call{method: "GET", path: "/api/v1/tasks?status=completed&image_id=" + imageID, want: 200})
		a.do(t, e.URL, call{method: "GET", path: "/api/v1/tasks", want: 200})
		a.do(t, e.URL, call{method: "GET", path: "/api/v1/tasks?status=bogus", want: 400, badRequest: true})
		a.do(t, e.URL, call{method: "GET", path: "/api/v1/tasks?cursor=bogus", want: 400})
		a.do(t, e.URL, call{method: "GET", path: "/api/v1/images/" + imageID, want: 200}) // now with tasks

		// On the idle server tasks stay pending: not ready, then canceled.
		body, h := multipartForm(t, nil, "small.jpg", small)
		_, b = a.do(t, idle.URL, call{method: "POST", path: "/api/v1/images", body: body, header: h, want: 201})
		idleImage := decode[map[string]any](t, b)["id"].(string)
		_, pending := create(idle.URL, idleImage, `[{"op":"grayscale"}]`, 202)
		pid := pending["id"].(string)
		resp, b = a.do(t, idle.URL, call{method: "GET", path: "/api/v1/tasks/" + pid + "/result", want: 409})
		wantCode(t, b, "not_ready")
		if resp.Header.Get("Retry-After") == "" {
			t.Error("409 not_ready without Retry-After")
		}
		a.do(t, idle.URL, call{method: "DELETE", path: "/api/v1/tasks/" + pid, want: 200})
		_, b = a.do(t, idle.URL, call{method: "DELETE", path: "/api/v1/tasks/" + pid, want: 200})
		if s := decode[map[string]any](t, b)["status"]; s != "canceled" {
			t.Errorf("canceled twice: status %v", s)
		}
		_, b = a.do(t, idle.URL, call{method: "GET", path: "/api/v1/tasks/" + pid + "/result", want: 409})
		wantCode(t, b, "conflict")
	})

	t.Run("compat", func(t *testing.T) {
		form := func(fields [][2]string, name string, data []byte) ([]byte, http.Header) {
			return multipartForm(t, fields, name, data)
		}
		body, h := form([][2]string{{"width", "40"}, {"height", "30"}}, "small.jpg", small)
		resp, b := a.do(t, e.URL, call{method: "POST", path: "/api/v1/images/resize", body: body, header: h, want: 202})
		if notImplemented(resp, b) {
			t.Fatal("route not implemented: the server answered 404 no route")
		}
		id := decode[map[string]any](t, b)["task_id"].(string)
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, b := a.do(t, e.URL, call{method: "GET", path: "/api/v1/status/" + id, want: 200})
			if s := decode[map[string]any](t, b)["status"]; s != "SENT" {
				if s != "SUCCESS" {
					t.Fatalf("compat task %s: %s", id, b)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("compat task %s not done after 30 s", id)
			}
			time.Sleep(20 * time.Millisecond)
		}
		resp, b = a.do(t, e.URL, call{method: "GET", path: "/api/v1/images/result/" + id, want: 200})
		if resp.Header.Get("Content-Type") != "image/jpeg" || len(b) < 3 || b[0] != 0xff || b[1] != 0xd8 {
			t.Errorf("compat result: %s, %d bytes; want a JPEG", resp.Header.Get("Content-Type"), len(b))
		}
		a.do(t, e.URL, call{method: "GET", path: "/api/v1/images/result/" + id, header: http.Header{"Range": {"bytes=0-1"}}, want: 206})
		a.do(t, e.URL, call{method: "GET", path: "/api/v1/images/result/" + id,
			header: http.Header{"If-None-Match": {resp.Header.Get("ETag")}}, want: 304})
		a.do(t, e.URL, call{method: "GET", path: "/api/v1/images/result/" + id, header: http.Header{"Range": {"bytes=99999999-"}}, want: 416})

		// Width and height in the query string.
		body, h = form(nil, "small.jpg", small)
		_, b = a.do(t, idle.URL, call{method: "POST", path: "/api/v1/images/resize?width=20&height=20", body: body, header: h, want: 202})
		pending := decode[map[string]any](t, b)["task_id"].(string)
		_, b = a.do(t, idle.URL, call{method: "GET", path: "/api/v1/status/" + pending, want: 200})
		if s := decode[map[string]any](t, b)["status"]; s != "SENT" {
			t.Errorf("pending compat task: status %v, want SENT", s)
		}
		_, b = a.do(t, idle.URL, call{method: "GET", path: "/api/v1/images/result/" + pending, want: 404})
		wantCompat(t, b, "Result not found")
		a.do(t, idle.URL, call{method: "DELETE", path: "/api/v1/tasks/" + pending, want: 200})
		_, b = a.do(t, idle.URL, call{method: "GET", path: "/api/v1/status/" + pending, want: 200})
		if s := decode[map[string]any](t, b)["status"]; s != "FAILURE" {
			t.Errorf("canceled compat task: status %v, want FAILURE", s)
		}
		_, b = a.do(t, e.URL, call{method: "GET", path: "/api/v1/status/no-such-task", want: 404})
		wantCompat(t, b, "Task not found")
		_, b = a.do(t, e.URL, call{method: "GET", path: "/api/v1/images/result/no-such-task", want: 404})
		wantCompat(t, b, "Result not found")

		for _, tc := range []struct {
			name       string
			base       string
			body       []byte
			header     http.Header
			want       int
			message    string
			badRequest bool
		}{
			{name: "no file", base: e.URL, want: 422, message: "No file given", badRequest: true},
			{name: "invalid size", base: e.URL, want: 422, message: "Invalid size"},
			{name: "invalid extension", base: e.URL, want: 422, message: "Invalid extension"},
			{name: "not an image", base: e.URL, want: 422, message: "Invalid image"},
			{name: "too large", base: idle.URL, want: 413, message: "File too large"},
			{name: "broken form", base: e.URL, want: 400, message: "Invalid form", badRequest: true},
		} {
			switch tc.name {
			case "no file":
				tc.body, tc.header = form([][2]string{{"width", "10"}, {"height", "10"}}, "", nil)
			case "invalid size":
				tc.body, tc.header = form([][2]string{{"width", "abc"}, {"height", "10"}}, "small.jpg", small)
			case "invalid extension":
				tc.body, tc.header = form([][2]string{{"width", "10"}, {"height", "10"}}, "small.gif", small)
			case "not an image":
				tc.body, tc.header = form([][2]string{{"width", "10"}, {"height", "10"}}, "notes.jpg", []byte("just text, not a JPEG"))
			case "too large":
				tc.body, tc.header = form([][2]string{{"width", "10"}, {"height", "10"}}, "large.jpg", large)
			case "broken form":
				// A part with a malformed header after the file.
				whole, h := form([][2]string{{"width", "10"}, {"height", "10"}}, "small.jpg", small)
				_, params, _ := mime.ParseMediaType(h.Get("Content-Type"))
				end := "--" + params["boundary"] + "--"
				i := bytes.LastIndex(whole, []byte(end))
				tc.body = append(whole[:i:i], "--"+params["boundary"]+"\r\nnot a header line\r\n\r\nx\r\n"+end+"\r\n"...)
				tc.header = h
			}
			_, b := a.do(t, tc.base, call{method: "POST", path: "/api/v1/images/resize", body: tc.body, header: tc.header,
				want: tc.want, badRequest: tc.badRequest})
			wantCompat(t, b, tc.message)
		}
	})

	t.Run("events", func(t *testing.T) {
		if !slices.Contains(routes(t, idle), "GET /api/v1/events") {
			skipped = append(skipped, "GET /api/v1/events")
			t.Fatal("route not implemented: the server answered 404 no route")
		}
		resp, stop := a.stream(t, e.URL, call{method: "GET", path: "/api/v1/events?types=image.uploaded,task.updated", want: 200})
		defer stop()
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Errorf("events Content-Type = %q", ct)
		}
		// An upload while the stream is open arrives as an event whose
		// data is an Event.
		events := make(chan string, 16)
		go func() {
			defer close(events)
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
					events <- data
				}
			}
		}()
		body, h := multipartForm(t, nil, "again.png", png)
		a.do(t, e.URL, call{method: "POST", path: "/api/v1/images", body: body, header: h, want: 201})
		select {
		case data, ok := <-events:
			if !ok {
				t.Fatal("event stream ended before the upload's event")
			}
			var v any
			if err := json.Unmarshal([]byte(data), &v); err != nil {
				t.Fatalf("event data is not JSON: %v: %s", err, data)
			}
			if err := a.doc.Components.Schemas["Event"].Value.VisitJSON(v, openapi3.VisitAsResponse()); err != nil {
				t.Errorf("event data does not match the Event schema: %v\n%s", err, data)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no event within 10 s of an upload")
		}
		stop()

		_, stop2 := a.stream(t, e.URL, call{method: "GET", path: "/api/v1/events?last_event_id=0&image_id=" + imageID, want: 200})
		stop2()
		_, b := a.do(t, e.URL, call{method: "GET", path: "/api/v1/events?types=image.renamed", want: 400, badRequest: true})
		wantCode(t, b, "invalid_argument")
		_, b = a.do(t, e.URL, call{method: "GET", path: "/api/v1/events", header: http.Header{"Last-Event-ID": {"yesterday"}},
			want: 400, badRequest: true})
		wantCode(t, b, "invalid_argument")
	})

	t.Run("delete", func(t *testing.T) {
		resp, b := a.do(t, e.URL, call{method: "DELETE", path: "/api/v1/images/" + imageID, want: 204})
		if notImplemented(resp, b) {
			t.Fatal("route not implemented: the server answered 404 no route")
		}
		a.do(t, e.URL, call{method: "GET", path: "/api/v1/images/" + imageID, want: 404})
		a.do(t, e.URL, call{method: "DELETE", path: "/api/v1/images/" + imageID, want: 404})
		a.do(t, e.URL, call{method: "GET", path: "/api/v1/tasks/" + taskID, want: 404})
	})

	t.Run("unrouted", func(t *testing.T) {
		resp, b := e.do("GET", "/api/v1/nothing-here", nil, nil)
		if resp.StatusCode != http.StatusNotFound || errorCode(t, b) != "not_found" {
			t.Errorf("GET /api/v1/nothing-here = %d %s, want 404 not_found", resp.StatusCode, b)
		}
		a.validateError(t, "GET", "/api/v1/nothing-here", b)
		resp, b = e.do("PUT", "/api/v1/tasks", nil, nil)
		if resp.StatusCode != http.StatusMethodNotAllowed || errorCode(t, b) != "method_not_allowed" || resp.Header.Get("Allow") == "" {
			t.Errorf("PUT /api/v1/tasks = %d %s (Allow %q), want 405 method_not_allowed with Allow", resp.StatusCode, b, resp.Header.Get("Allow"))
		}
		a.validateError(t, "PUT", "/api/v1/tasks", b)
	})

	t.Run("presigned downloads and expired results", func(t *testing.T) { presignScenario(t, a) })

	if t.Failed() {
		return
	}
	var skipOps []string
	if slices.Contains(skipped, "GET /api/v1/events") {
		skipOps = append(skipOps, "events")
	}
	if missing := a.notCovered(skipOps...); len(missing) > 0 {
		t.Errorf("documented answers no request of the scenario produced (produce them, or drop them from the document):\n\t%s",
			strings.Join(missing, "\n\t"))
	}
	if len(skipped) > 0 {
		t.Logf("routes not implemented yet, not checked: %v", skipped)
	}
}

type webhookCall struct {
	header http.Header
	body   []byte
}

// checkWebhook waits for the webhook of task id, validates its body
// against the createTask callback, and checks that the task's delivery
// list records it.
func (a *apiCheck) checkWebhook(t *testing.T, base, id string, hooks <-chan webhookCall) {
	t.Helper()
	var hook webhookCall
	select {
	case hook = <-hooks:
	case <-time.After(20 * time.Second):
		t.Fatalf("no webhook for task %s within 20 s", id)
	}
	cb := (*a.doc.Paths.Value("/api/v1/tasks").Post.Callbacks["taskFinished"].Value.Value("{$request.body#/webhook_url}").Post)
	var v any
	if err := json.Unmarshal(hook.body, &v); err != nil {
		t.Fatalf("webhook body is not JSON: %v: %s", err, hook.body)
	}
	if err := cb.RequestBody.Value.Content.Get("application/json").Schema.Value.VisitJSON(v, openapi3.VisitAsRequest()); err != nil {
		t.Errorf("webhook body does not match the callback's schema: %v\n%s", err, hook.body)
	}
	for _, p := range cb.Parameters {
		got := hook.header.Get(p.Value.Name)
		if got == "" {
			if p.Value.Required {
				t.Errorf("webhook without its %s header", p.Value.Name)
			}
			continue
		}
		if err := p.Value.Schema.Value.VisitJSON(got); err != nil {
			t.Errorf("webhook header %s: %v", p.Value.Name, err)
		}
	}
	event := decode[struct {
		ID   string         `json:"id"`
		Task map[string]any `json:"task"`
	}](t, hook.body)
	if event.ID != hook.header.Get("Imgd-Event-Id") || event.Task["id"] != id {
		t.Errorf("webhook: event id %q (header %q), task %v; want equal ids and task %s",
			event.ID, hook.header.Get("Imgd-Event-Id"), event.Task["id"], id)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, b := a.do(t, base, call{method: "GET", path: "/api/v1/tasks/" + id + "/webhooks", want: 200})
		list := decode[struct {
			Items []struct {
				EventID    string `json:"event_id"`
				StatusCode int    `json:"status_code"`
			} `json:"items"`
		}](t, b)
		if len(list.Items) > 0 {
			if d := list.Items[0]; d.EventID != event.ID || d.StatusCode != http.StatusNoContent {
				t.Errorf("delivery recorded as %+v, want event %s answered 204", d, event.ID)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s: delivery not recorded after 10 s", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFinal polls a task until it is final, validating every answer.
func (a *apiCheck) waitFinal(t *testing.T, base, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, b := a.do(t, base, call{method: "GET", path: "/api/v1/tasks/" + id, want: 200})
		task := decode[map[string]any](t, b)
		if s, _ := task["status"].(string); imgd.TaskStatus(s).Final() {
			return task
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s still %v after 30 s", id, task["status"])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func wantCode(t *testing.T, body []byte, code string) {
	t.Helper()
	if got := errorCode(t, body); got != code {
		t.Errorf("error code %q, want %q (body %s)", got, code, body)
	}
}

func wantCompat(t *testing.T, body []byte, message string) {
	t.Helper()
	var e struct {
		Message string `json:"message"`
		Result  string `json:"result"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Message != message || e.Result != "error" {
		t.Errorf("compat error body %s, want {\"message\":%q,\"result\":\"error\"}", body, message)
	}
}

// routes returns the patterns a Server over e's service registers.
func routes(t *testing.T, e *env) []string {
	t.Helper()
	srv, err := httpapi.New(httpapi.Options{Store: e.Svc.Store, Blobs: e.Svc.Blobs, Engine: e.Svc.Engine, Hub: e.Svc.Hub})
	if err != nil {
		t.Fatal(err)
	}
	return srv.Routes()
}

// TestOpenAPICoversRoutes checks that the document and the mux name the
// same routes: every registered pattern is documented, and every
// documented operation is registered.
func TestOpenAPICoversRoutes(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	e := newEnv(t, envOptions{workers: -1})
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			pattern := method + " " + path
			if r, ok := op.Extensions[routeExtension].(string); ok {
				pattern = r
			}
			if documented[pattern] {
				t.Errorf("two operations document %s", pattern)
			}
			documented[pattern] = true
		}
	}
	registered := map[string]bool{}
	for _, p := range routes(t, e) {
		registered[p] = true
		if !documented[p] {
			t.Errorf("route %s is not in openapi.json", p)
		}
	}
	for p := range documented {
		if !registered[p] {
			t.Errorf("openapi.json documents %s, which no route serves", p)
		}
	}
	if len(registered) < 4 {
		t.Errorf("Routes() = %v: the ops routes at least should be there", routes(t, e))
	}
}

// TestOpenAPIPipelineSchemas checks the step schemas against the domain:
// one per operation, and the canonical form of every operation with every
// parameter set matches them.
func TestOpenAPIPipelineSchemas(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	step := doc.Components.Schemas["Step"].Value
	var mapped []string
	for op := range step.Discriminator.Mapping {
		mapped = append(mapped, op)
	}
	sort.Strings(mapped)
	if ops := imgd.OpNames(); !slices.Equal(mapped, ops) {
		t.Errorf("Step schemas cover %v, operations are %v", mapped, ops)
	}
	if len(step.OneOf) != len(imgd.OpNames()) {
		t.Errorf("Step has %d alternatives, want one per operation (%d)", len(step.OneOf), len(imgd.OpNames()))
	}

	pipeline := doc.Components.Schemas["Pipeline"].Value
	for _, src := range []string{
		`[{"op":"auto_orient"},{"op":"rotate","angle":45.5,"background":"white"},{"op":"flip","direction":"both"},
		  {"op":"crop","x":1,"y":2,"width":3,"height":4},
		  {"op":"resize","width":10,"height":20,"fit":"contain","gravity":"north-east","enlarge":true,"background":"#00ff0080"},
		  {"op":"grayscale"},{"op":"dither","method":"atkinson","palette":["#000","#fff","#f00"],"serpentine":true,"linear":true},
		  {"op":"convert","format":"avif","quality":50,"lossless":true,"progressive":true,"strip":false}]`,
		`[{"op":"resize","height":5},{"op":"dither","levels":3},{"op":"dither","palette":"ega"},{"op":"convert","format":"tif"}]`,
		`[{"op":"resize","width":5},{"op":"dither"},{"op":"convert","format":"jpeg"}]`,
	} {
		p := imgd.MustParsePipeline(src)
		var v any
		if err := json.Unmarshal(p.Canonical(), &v); err != nil {
			t.Fatal(err)
		}
		if err := pipeline.VisitJSON(v, openapi3.VisitAsResponse()); err != nil {
			t.Errorf("canonical pipeline %s does not match the Pipeline schema: %v", p.Canonical(), err)
		}
		// What a client wrote is a valid request too.
		var in any
		if err := json.Unmarshal([]byte(src), &in); err != nil {
			t.Fatal(err)
		}
		if err := pipeline.VisitJSON(in, openapi3.VisitAsRequest()); err != nil {
			t.Errorf("pipeline %s does not match the Pipeline schema: %v", src, err)
		}
	}
	// Wrong parameter types and unknown parameters break the schema.
	for _, src := range []string{
		`[{"op":"resize","width":"300"}]`,
		`[{"op":"resize","width":300,"colour":"red"}]`,
		`[{"op":"convert","format":"bmp"}]`,
		`[{"op":"crop","x":1}]`,
		`[{"op":"dither","levels":2.5}]`,
		`[{"op":"rotate","angle":"90"}]`,
		`[{"op":"flip","direction":true}]`,
		`[{"op":"sharpen"}]`,
		`[]`,
	} {
		var in any
		if err := json.Unmarshal([]byte(src), &in); err != nil {
			t.Fatal(err)
		}
		if err := pipeline.VisitJSON(in, openapi3.VisitAsRequest()); err == nil {
			t.Errorf("pipeline %s matches the Pipeline schema; want a mismatch", src)
		}
	}
}
