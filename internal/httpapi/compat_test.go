package httpapi_test

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	_ "image/jpeg"
	_ "image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/engine"
	"github.com/imgd/imgd/internal/imgtest"
)

// compatClient does what users of the original Flask service did with
// Python's requests: post a file with width and height, poll the status,
// download the result.
type compatClient struct {
	e *env
}

// part is one multipart part, in the order given: a field (filename "" and
// isFile false) or a file.
type part struct {
	name, filename string
	isFile         bool
	data           []byte
}

func field(name, value string) part { return part{name: name, data: []byte(value)} }

func file(filename string, data []byte) part {
	return part{name: "file", filename: filename, isFile: true, data: data}
}

// form encodes parts, in order, as multipart/form-data.
func form(t *testing.T, parts ...part) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		var w io.Writer
		var err error
		if p.isFile {
			w, err = mw.CreateFormFile(p.name, p.filename)
		} else {
			w, err = mw.CreateFormField(p.name)
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(p.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}

// post sends POST /api/v1/images/resize with parts and query.
func (c compatClient) post(query string, parts ...part) (*http.Response, []byte) {
	c.e.t.Helper()
	body, ct := form(c.e.t, parts...)
	path := "/api/v1/images/resize"
	if query != "" {
		path += "?" + query
	}
	return c.e.do("POST", path, body, http.Header{"Content-Type": {ct}})
}

// resize uploads a file as the original's README showed and returns the
// task id, failing unless the answer is the original's exact 202.
func (c compatClient) resize(filename string, data []byte, width, height int) string {
	c.e.t.Helper()
	resp, b := c.post("", file(filename, data), field("width", fmt.Sprint(width)), field("height", fmt.Sprint(height)))
	got := compatJSON(c.e.t, resp, b, http.StatusAccepted)
	id, _ := got["task_id"].(string)
	want := map[string]any{"message": "Upload complete", "status": "accepted", "task_id": id}
	if id == "" || !cmp.Equal(got, want) {
		c.e.t.Fatalf("POST resize %s %dx%d = %s, want %v with a task id", filename, width, height, b, want)
	}
	return id
}

// status returns the decoded status body, failing unless it is 200.
func (c compatClient) status(id string) map[string]any {
	c.e.t.Helper()
	resp, b := c.e.do("GET", "/api/v1/status/"+id, nil, nil)
	return compatJSON(c.e.t, resp, b, http.StatusOK)
}

// wait polls the status until it is no longer SENT.
func (c compatClient) wait(id string) map[string]any {
	c.e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := c.status(id)
		if st["status"] != "SENT" {
			return st
		}
		if time.Now().After(deadline) {
			c.e.t.Fatalf("task %s still SENT after 30s", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// result downloads the result, failing unless it is 200 with the
// original's headers.
func (c compatClient) result(id string, f imgd.Format) []byte {
	c.e.t.Helper()
	resp, b := c.e.do("GET", "/api/v1/images/result/"+id, nil, nil)
	if resp.StatusCode != http.StatusOK {
		c.e.t.Fatalf("GET result %s = %d %s, want 200", id, resp.StatusCode, b)
	}
	if got, want := resp.Header.Get("Content-Type"), f.MediaType(); got != want {
		c.e.t.Errorf("GET result %s: Content-Type = %q, want %q", id, got, want)
	}
	if got, want := resp.Header.Get("Content-Disposition"), "inline; filename="+id+"."+f.Ext(); got != want {
		c.e.t.Errorf("GET result %s: Content-Disposition = %q, want %q", id, got, want)
	}
	return b
}

// compatJSON checks the status and JSON content type of an answer and
// returns its decoded body.
func compatJSON(t *testing.T, resp *http.Response, b []byte, status int) map[string]any {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s %s = %d %s, want %d", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, b, status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type = %q, want application/json", resp.Request.Method, resp.Request.URL.Path, ct)
	}
	return decode[map[string]any](t, b)
}

func compatErr(message string) map[string]any {
	return map[string]any{"message": message, "result": "error"}
}

// checkNothingStored fails when any image or blob exists.
func checkNothingStored(e *env) {
	e.t.Helper()
	page, err := e.Svc.Store.ListImages(e.t.Context(), imgd.ImageFilter{})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(page.Items) != 0 {
		e.t.Errorf("refused uploads left %d images behind: %+v", len(page.Items), page.Items)
	}
	if files := e.blobFiles(); len(files) != 0 {
		e.t.Errorf("refused uploads left blobs behind: %v", files)
	}
}

func TestCompatResizeRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	c := compatClient{e}
	jpeg := imgtest.Read(t, "photos/jpeg-baseline-small.jpg")
	gif := imgtest.Read(t, "formats/gif-static.gif")
	size := func(w, h string) []part { return []part{field("width", w), field("height", h)} }
	with := func(ps []part, more ...part) []part { return append(append([]part{}, ps...), more...) }

	tests := []struct {
		name   string
		query  string
		parts  []part
		status int
		msg    string
	}{
		{"no file part", "", size("10", "10"), 422, "No file given"},
		{"empty file name", "", with(size("10", "10"), file("", jpeg)), 422, "No file given"},
		{"file under another name", "", with(size("10", "10"), part{name: "image", filename: "a.jpg", isFile: true, data: jpeg}), 422, "No file given"},
		{"no file and bad size", "", size("abc", "0"), 422, "No file given"},
		{"width missing", "", []part{field("height", "10"), file("a.jpg", jpeg)}, 422, "Invalid size"},
		{"height missing", "", []part{field("width", "10"), file("a.jpg", jpeg)}, 422, "Invalid size"},
		{"nothing but the file", "", []part{file("a.jpg", jpeg)}, 422, "Invalid size"},
		{"width abc", "", with(size("abc", "10"), file("a.jpg", jpeg)), 422, "Invalid size"},
		{"width 1.5", "", with(size("1.5", "10"), file("a.jpg", jpeg)), 422, "Invalid size"},
		{"width empty", "", with(size("", "10"), file("a.jpg", jpeg)), 422, "Invalid size"},
		{"width 0", "", with(size("0", "10"), file("a.jpg", jpeg)), 422, "Invalid size"},
		{"height -1", "", with(size("10", "-1"), file("a.jpg", jpeg)), 422, "Invalid size"},
		{"width 9999", "", with(size("9999", "10"), file("a.jpg", jpeg)), 422, "Invalid size"},
		{"height 10000", "", with(size("10", "10000"), file("a.jpg", jpeg)), 422, "Invalid size"},
		{"width huge", "", with(size("99999999999999999999999", "10"), file("a.jpg", jpeg)), 422, "Invalid size"},
		{"size after the file", "", []part{file("a.jpg", jpeg), field("width", "10"), field("height", "abc")}, 422, "Invalid size"},
		{"size in the query", "width=0&height=10", []part{file("a.jpg", jpeg)}, 422, "Invalid size"},
		{"query wins over the form", "width=0", with(size("10", "10"), file("a.jpg", jpeg)), 422, "Invalid size"},
		{"bad size before bad extension", "", with(size("0", "10"), file("a.gif", gif)), 422, "Invalid size"},
		{"gif extension", "", with(size("10", "10"), file("a.gif", gif)), 422, "Invalid extension"},
		{"no extension", "", with(size("10", "10"), file("jpg", jpeg)), 422, "Invalid extension"},
		{"bad extension before bad content", "", with(size("10", "10"), file("a.txt", []byte("hello"))), 422, "Invalid extension"},
		{"bad extension, size after", "", []part{file("a.webp", jpeg), field("width", "10"), field("height", "10")}, 422, "Invalid extension"},
		{"text named jpg", "", with(size("10", "10"), file("a.jpg", []byte("hello, not an image"))), 422, "Invalid image"},
		{"empty file", "", with(size("10", "10"), file("a.jpg", nil)), 422, "Invalid image"},
		{"gif named png", "", with(size("10", "10"), file("a.png", gif)), 422, "Invalid image"},
		{"gif named png, size after", "", []part{file("a.png", gif), field("width", "10"), field("height", "10")}, 422, "Invalid image"},
		{"pixel bomb", "", with(size("10", "10"), file("a.png", imgtest.Read(t, "bad/png-bomb.png"))), 422, "Invalid image"},
	}
	for _, tt := range tests {
		resp, b := c.post(tt.query, tt.parts...)
		got := compatJSON(t, resp, b, tt.status)
		if diff := cmp.Diff(compatErr(tt.msg), got); diff != "" {
			t.Errorf("%s: POST resize body (-want +got):\n%s", tt.name, diff)
		}
	}

	// Not multipart at all: Flask saw no file.
	resp, b := e.do("POST", "/api/v1/images/resize?width=10&height=10", strings.NewReader(`{"file":"x"}`),
		http.Header{"Content-Type": {"application/json"}})
	if diff := cmp.Diff(compatErr("No file given"), compatJSON(t, resp, b, 422)); diff != "" {
		t.Errorf("POST resize with a JSON body (-want +got):\n%s", diff)
	}
	// A form cut short after the file part.
	body, ct := form(t, field("width", "10"), field("height", "10"), file("a.jpg", jpeg))
	full, _ := io.ReadAll(body)
	cut := full[:bytes.LastIndex(full, []byte("\r\n--"))]
	resp, b = e.do("POST", "/api/v1/images/resize", bytes.NewReader(cut), http.Header{"Content-Type": {ct}})
	if diff := cmp.Diff(compatErr("Invalid form"), compatJSON(t, resp, b, http.StatusBadRequest)); diff != "" {
		t.Errorf("POST resize with a truncated form (-want +got):\n%s", diff)
	}
	checkNothingStored(e)
}

func TestCompatResizeTooLarge(t *testing.T) {
	t.Parallel()
	limits := engine.DefaultLimits()
	limits.MaxInputBytes = 10_000
	e := newEnv(t, envOptions{workers: -1, limits: limits})
	c := compatClient{e}
	big := imgtest.Read(t, "photos/jpeg-baseline-small.jpg") // 16718 bytes
	for _, parts := range [][]part{
		{field("width", "10"), field("height", "10"), file("a.jpg", big)},
		{file("a.jpg", big), field("width", "10"), field("height", "10")},
		{field("width", "0"), field("height", "10"), file("a.jpg", append(big, make([]byte, 100_000)...))},
	} {
		resp, b := c.post("", parts...)
		if diff := cmp.Diff(compatErr("File too large"), compatJSON(t, resp, b, http.StatusRequestEntityTooLarge)); diff != "" {
			t.Errorf("POST resize of %d bytes (-want +got):\n%s", len(parts[len(parts)-1].data), diff)
		}
	}
	checkNothingStored(e)
}

// TestCompatResizeAccepted covers the accepted variants of the form; the
// tasks stay pending (no workers), which is SENT.
func TestCompatResizeAccepted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	c := compatClient{e}
	jpeg := imgtest.Read(t, "photos/jpeg-baseline-small.jpg")
	png := imgtest.Read(t, "png/png-gray.png")
	tests := []struct {
		name   string
		query  string
		parts  []part
		w, h   int
		format imgd.Format
	}{
		{"fields first", "", []part{field("width", "10"), field("height", "20"), file("a.jpg", jpeg)}, 10, 20, imgd.FormatJPEG},
		{"fields last", "", []part{file("a.jpg", jpeg), field("width", "10"), field("height", "20")}, 10, 20, imgd.FormatJPEG},
		{"query", "width=30&height=40", []part{file("a.jpg", jpeg)}, 30, 40, imgd.FormatJPEG},
		{"query wins over the form", "width=30", []part{field("width", "0"), field("height", "40"), file("a.jpg", jpeg)}, 30, 40, imgd.FormatJPEG},
		{"first field wins", "", []part{field("width", "7"), field("width", "abc"), field("height", "8"), file("a.jpg", jpeg)}, 7, 8, imgd.FormatJPEG},
		{"upper case JPG", "", []part{field("width", "10"), field("height", "20"), file("PHOTO.JPG", jpeg)}, 10, 20, imgd.FormatJPEG},
		{"jpeg extension", "", []part{field("width", "10"), field("height", "20"), file("a.jpeg", jpeg)}, 10, 20, imgd.FormatJPEG},
		{"spaces and sign", "", []part{field("width", " +10 "), field("height", "20"), file("a.jpg", jpeg)}, 10, 20, imgd.FormatJPEG},
		{"png", "", []part{field("width", "10"), field("height", "20"), file("a.png", png)}, 10, 20, imgd.FormatPNG},
		{"jpeg named png keeps jpeg", "", []part{field("width", "10"), field("height", "20"), file("a.png", jpeg)}, 10, 20, imgd.FormatJPEG},
		{"largest size", "", []part{field("width", "9998"), field("height", "9999"), file("a.jpg", jpeg)}, 9998, 9999, imgd.FormatJPEG},
		{"extra fields and files", "", []part{field("x", "y"), field("width", "1"), field("height", "1"), file("a.jpg", jpeg), {name: "other", filename: "b.gif", isFile: true, data: []byte("gif")}}, 1, 1, imgd.FormatJPEG},
	}
	for _, tt := range tests {
		resp, b := c.post(tt.query, tt.parts...)
		got := compatJSON(t, resp, b, http.StatusAccepted)
		id, _ := got["task_id"].(string)
		if diff := cmp.Diff(map[string]any{"message": "Upload complete", "status": "accepted", "task_id": id}, got); diff != "" || id == "" {
			t.Errorf("%s: POST resize body (-want +got):\n%s", tt.name, diff)
			continue
		}
		task, err := e.Svc.Store.GetTask(t.Context(), id)
		if err != nil {
			t.Fatalf("%s: GetTask(%s): %v", tt.name, id, err)
		}
		out := `{"op":"convert","format":"png"}`
		if tt.format == imgd.FormatJPEG {
			out = `{"op":"convert","format":"jpeg","quality":75}`
		}
		want := imgd.MustParsePipeline(fmt.Sprintf(`[{"op":"resize","width":%d,"height":%d,"fit":"fill","enlarge":true},%s]`, tt.w, tt.h, out))
		if got, want := string(task.Pipeline.Canonical()), string(want.Canonical()); got != want {
			t.Errorf("%s: task pipeline = %s, want %s", tt.name, got, want)
		}
		if task.Priority != imgd.MinPriority {
			t.Errorf("%s: task priority = %d, want %d", tt.name, task.Priority, imgd.MinPriority)
		}
		if diff := cmp.Diff(map[string]any{"status": "SENT"}, c.status(id)); diff != "" {
			t.Errorf("%s: status of a pending task (-want +got):\n%s", tt.name, diff)
		}
		resp, b = e.do("GET", "/api/v1/images/result/"+id, nil, nil)
		if diff := cmp.Diff(compatErr("Result not found"), compatJSON(t, resp, b, http.StatusNotFound)); diff != "" {
			t.Errorf("%s: result of a pending task (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestCompatStatusAndResult(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	c := compatClient{e}
	ctx := t.Context()

	for _, path := range []string{"/api/v1/status/" + imgd.NewID(), "/api/v1/status/nope"} {
		resp, b := e.do("GET", path, nil, nil)
		if diff := cmp.Diff(compatErr("Task not found"), compatJSON(t, resp, b, http.StatusNotFound)); diff != "" {
			t.Errorf("GET %s (-want +got):\n%s", path, diff)
		}
	}
	for _, path := range []string{"/api/v1/images/result/" + imgd.NewID(), "/api/v1/images/result/nope"} {
		resp, b := e.do("GET", path, nil, nil)
		if diff := cmp.Diff(compatErr("Result not found"), compatJSON(t, resp, b, http.StatusNotFound)); diff != "" {
			t.Errorf("GET %s (-want +got):\n%s", path, diff)
		}
	}
	// The result route's pattern is general; other paths are still no route.
	resp, b := e.do("GET", "/api/v1/images/nope/nope", nil, nil)
	if resp.StatusCode != http.StatusNotFound || errorCode(t, b) != "not_found" {
		t.Errorf("GET /api/v1/images/nope/nope = %d %s, want 404 not_found", resp.StatusCode, b)
	}

	jpeg := imgtest.Read(t, "photos/jpeg-baseline-small.jpg")
	processing := c.resize("a.jpg", jpeg, 10, 10)
	if _, err := e.Svc.Store.StartTask(ctx, processing, 1); err != nil {
		t.Fatal(err)
	}
	failed := c.resize("a.jpg", jpeg, 11, 11)
	if _, err := e.Svc.Store.StartTask(ctx, failed, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Svc.Store.FailTask(ctx, failed, imgd.Errorf(imgd.CodeUnsupported, "the image cannot be decoded")); err != nil {
		t.Fatal(err)
	}
	canceled := c.resize("a.jpg", jpeg, 12, 12)
	if _, err := e.Svc.Store.CancelTask(ctx, canceled); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		id   string
		want map[string]any
	}{
		{processing, map[string]any{"status": "SENT"}},
		{failed, map[string]any{"status": "FAILURE",
			"error": map[string]any{"code": "unsupported_image", "message": "the image cannot be decoded"}}},
		{canceled, map[string]any{"status": "FAILURE",
			"error": map[string]any{"code": "canceled", "message": "the task was canceled"}}},
	} {
		if diff := cmp.Diff(tt.want, c.status(tt.id)); diff != "" {
			t.Errorf("status of task %s (-want +got):\n%s", tt.id, diff)
		}
		resp, b := e.do("GET", "/api/v1/images/result/"+tt.id, nil, nil)
		if diff := cmp.Diff(compatErr("Result not found"), compatJSON(t, resp, b, http.StatusNotFound)); diff != "" {
			t.Errorf("result of task %s (-want +got):\n%s", tt.id, diff)
		}
	}
}

// decodeImage decodes an encoded JPEG or PNG result into NRGBA pixels.
func decodeImage(t *testing.T, b []byte) (*image.NRGBA, string) {
	t.Helper()
	im, format, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("result does not decode: %v", err)
	}
	out := image.NewNRGBA(im.Bounds())
	draw.Draw(out, out.Bounds(), im, im.Bounds().Min, draw.Src)
	return out, format
}

func TestCompatResizeEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := compatClient{e}
	tests := []struct {
		file   string
		w, h   int
		format string
	}{
		{"photos/jpeg-baseline-small.jpg", 100, 50, "jpeg"},   // aspect ratio ignored
		{"photos/jpeg-baseline-small.jpg", 1000, 900, "jpeg"}, // enlarged
		{"photos/jpeg-large-camera-exif.jpg", 120, 80, "jpeg"},
		{"png/png-rgba-icon.png", 64, 32, "png"},
		{"png/png-palette-photo.png", 33, 77, "png"},
	}
	for _, tt := range tests {
		name := tt.file[strings.LastIndexByte(tt.file, '/')+1:]
		id := c.resize(name, imgtest.Read(t, tt.file), tt.w, tt.h)
		if diff := cmp.Diff(map[string]any{"status": "SUCCESS"}, c.wait(id)); diff != "" {
			t.Errorf("%s %dx%d: final status (-want +got):\n%s", tt.file, tt.w, tt.h, diff)
			continue
		}
		b := c.result(id, imgd.Format(tt.format))
		cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
		if err != nil || format != tt.format || cfg.Width != tt.w || cfg.Height != tt.h {
			t.Errorf("%s: result is %s %dx%d (%v), want %s %dx%d", tt.file, format, cfg.Width, cfg.Height, err, tt.format, tt.w, tt.h)
		}
		// Unlike the original, the result can be downloaded again.
		if again := c.result(id, imgd.Format(tt.format)); !bytes.Equal(again, b) {
			t.Errorf("%s: second download differs from the first (%d vs %d bytes)", tt.file, len(again), len(b))
		}
		resp, body := e.do("GET", "/api/v1/images/result/"+id, nil, http.Header{"If-None-Match": {resp304ETag(e, id)}})
		if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
			t.Errorf("%s: GET result with its ETag = %d (%d bytes), want 304 and no body", tt.file, resp.StatusCode, len(body))
		}
		resp, body = e.do("HEAD", "/api/v1/images/result/"+id, nil, nil)
		if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.ContentLength != int64(len(b)) {
			t.Errorf("%s: HEAD result = %d, %d bytes, Content-Length %d; want 200, none, %d", tt.file, resp.StatusCode, len(body), resp.ContentLength, len(b))
		}
	}
}

// resp304ETag returns the ETag of a task's result, failing when there is none.
func resp304ETag(e *env, id string) string {
	e.t.Helper()
	resp, _ := e.do("GET", "/api/v1/images/result/"+id, nil, nil)
	etag := resp.Header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) {
		e.t.Fatalf("GET result %s: ETag = %q, want a strong validator", id, etag)
	}
	return etag
}

// TestCompatResizeOrientation checks that EXIF-rotated inputs come out
// upright, then exactly width×height: every orientation's result looks
// like orientation 1's.
func TestCompatResizeOrientation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := compatClient{e}
	const w, h = 200, 100 // not the upright 3:2, to catch a swapped resize
	ids := make(map[int]string)
	for o := 1; o <= 8; o++ {
		name := fmt.Sprintf("orientation-%d.jpg", o)
		ids[o] = c.resize(name, imgtest.Read(t, "orientation/"+name), w, h)
	}
	pixels := make(map[int][]byte)
	for o := 1; o <= 8; o++ {
		if st := c.wait(ids[o]); st["status"] != "SUCCESS" {
			t.Fatalf("orientation %d: status %v, want SUCCESS", o, st)
		}
		im, format := decodeImage(t, c.result(ids[o], imgd.FormatJPEG))
		if format != "jpeg" || im.Bounds().Dx() != w || im.Bounds().Dy() != h {
			t.Fatalf("orientation %d: result is %s %v, want jpeg %dx%d", o, format, im.Bounds().Size(), w, h)
		}
		pixels[o] = im.Pix
	}
	for o := 2; o <= 8; o++ {
		if d := imgtest.MeanAbsDiff(pixels[o], pixels[1]); d > 4 {
			t.Errorf("orientation %d: mean difference to orientation 1 is %.2f, want <= 4 (not upright?)", o, d)
		}
	}
	// The threshold can fail: a mirrored image differs far more.
	if d := imgtest.MeanAbsDiff(mirror(pixels[1], w, h), pixels[1]); d < 20 {
		t.Errorf("mirrored orientation 1 differs by only %.2f from itself: the check above proves nothing", d)
	}
}

// mirror returns NRGBA pixels flipped left to right.
func mirror(pix []byte, w, h int) []byte {
	out := make([]byte, len(pix))
	for y := range h {
		for x := range w {
			copy(out[(y*w+x)*4:][:4], pix[(y*w+w-1-x)*4:][:4])
		}
	}
	return out
}

// TestCompatResizeBadFiles sends every hostile file of testdata/bad under
// an accepted name: it is refused with Invalid image, or its task fails
// with the engine's code, or (the files the engine must handle) succeeds.
func TestCompatResizeBadFiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := compatClient{e}
	for f, code := range imgtest.BadExpectations(t) {
		name := "x.jpg"
		if strings.HasSuffix(f, ".png") {
			name = "x.png"
		}
		resp, b := c.post("", file(name, imgtest.Read(t, f)), field("width", "50"), field("height", "40"))
		got := compatJSON(t, resp, b, resp.StatusCode)
		if resp.StatusCode == http.StatusUnprocessableEntity {
			if code == "ok" || !cmp.Equal(got, compatErr("Invalid image")) {
				t.Errorf("%s (want %s): POST resize = 422 %s", f, code, b)
			}
			continue
		}
		id, _ := got["task_id"].(string)
		if resp.StatusCode != http.StatusAccepted || id == "" {
			t.Errorf("%s: POST resize = %d %s, want 202 or 422 Invalid image", f, resp.StatusCode, b)
			continue
		}
		st := c.wait(id)
		want := map[string]any{"status": "SUCCESS"}
		if code != "ok" {
			want = map[string]any{"status": "FAILURE", "error": map[string]any{"code": code, "message": st["error"].(map[string]any)["message"]}}
		}
		if diff := cmp.Diff(want, st); diff != "" {
			t.Errorf("%s: final status (-want +got):\n%s", f, diff)
		}
	}
	// The service still works.
	id := c.resize("a.jpg", imgtest.Read(t, "photos/jpeg-baseline-small.jpg"), 5, 5)
	if st := c.wait(id); st["status"] != "SUCCESS" {
		t.Errorf("a good file after the bad ones: %v, want SUCCESS", st)
	}
}

// TestCompatResultPatternBesideContent checks the result route's pattern
// registers beside the v1 image routes and leaves them their paths.
func TestCompatResultPatternBesideContent(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	hit := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }
	}
	// As in compat.go, images.go and tasks.go.
	mux.HandleFunc("GET /api/v1/images/{result}/{task_id}", hit("compat"))
	mux.HandleFunc("GET /api/v1/images/{id}/content", hit("content"))
	mux.HandleFunc("GET /api/v1/images/{id}", hit("image"))
	mux.HandleFunc("POST /api/v1/images/resize", hit("resize"))
	for path, want := range map[string]string{
		"/api/v1/images/result/" + imgd.NewID():       "compat",
		"/api/v1/images/" + imgd.NewID() + "/content": "content",
		"/api/v1/images/result":                       "image",
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if got := rec.Body.String(); got != want {
			t.Errorf("GET %s went to %q, want %q", path, got, want)
		}
	}
}
