package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/engine"
	"github.com/imgd/imgd/internal/imgtest"
)

// apiImage is the JSON of an image answer.
type apiImage struct {
	imgd.Image
	ContentURL string    `json:"content_url"`
	Tasks      []apiTask `json:"tasks"`
}

// apiTask is the JSON of a task answer.
type apiTask struct {
	imgd.Task
	ResultURL string `json:"result_url"`
}

// apiPage is the JSON of a list answer.
type apiPage[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// upload posts data as the "file" part of a multipart form and returns the
// answer.
func (e *env) upload(filename string, data []byte, header http.Header) (*http.Response, []byte) {
	e.t.Helper()
	body, ct := multipartBody(e.t, filename, data, nil)
	h := http.Header{"Content-Type": {ct}}
	for k, v := range header {
		h[k] = v
	}
	return e.do("POST", "/api/v1/images", body, h)
}

// mustUpload uploads data and fails unless the image is created.
func (e *env) mustUpload(filename string, data []byte) apiImage {
	e.t.Helper()
	resp, b := e.upload(filename, data, nil)
	if resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("upload %s: %d %s, want 201", filename, resp.StatusCode, b)
	}
	return decode[apiImage](e.t, b)
}

// wantError fails unless the answer is an error with status and code.
func wantError(t *testing.T, call string, resp *http.Response, b []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("%s = %d %s, want %d %s", call, resp.StatusCode, b, status, code)
		return
	}
	if got := errorCode(t, b); got != code {
		t.Errorf("%s: code %q, want %q (%s)", call, got, code, b)
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// blobSet is e.blobFiles as a set of content digests; a temporary file
// appears under its own path, which no digest equals.
func (e *env) blobSet() map[string]bool {
	e.t.Helper()
	set := map[string]bool{}
	for _, f := range e.blobFiles() {
		if d, ok := strings.CutPrefix(f, "sha256/"); ok && len(d) == 2+1+64 {
			set[d[3:]] = true
			continue
		}
		set[f] = true
	}
	return set
}

func TestUploadImage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	data := imgtest.Read(t, "photos/jpeg-baseline-small.jpg")

	resp, b := e.upload("storm.jpg", data, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /api/v1/images = %d %s, want 201", resp.StatusCode, b)
	}
	im := decode[apiImage](t, b)
	want := imgd.Image{ID: im.ID, Filename: "storm.jpg", MediaType: "image/jpeg", Format: imgd.FormatJPEG,
		Width: 640, Height: 427, Frames: 1, Bytes: int64(len(data)), SHA256: sha256Hex(data), CreatedAt: im.CreatedAt,
		Orientation: im.Orientation}
	if im.Orientation != 0 && im.Orientation != 1 { // the engine reports 1 for "no tag"
		t.Errorf("orientation of a photo without EXIF = %d, want 0 or 1", im.Orientation)
	}
	if im.Image != want {
		t.Errorf("uploaded image = %+v, want %+v", im.Image, want)
	}
	if im.ID == "" || im.CreatedAt.IsZero() {
		t.Errorf("image has no id or created_at: %s", b)
	}
	if got := resp.Header.Get("Location"); got != "/api/v1/images/"+im.ID {
		t.Errorf("Location = %q, want /api/v1/images/%s", got, im.ID)
	}
	if im.ContentURL != "/api/v1/images/"+im.ID+"/content" {
		t.Errorf("content_url = %q", im.ContentURL)
	}
	if resp.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("Idempotent-Replayed on a first upload")
	}

	// The raw body form: the type comes from the bytes, not the header.
	png := imgtest.Read(t, "png/png-gray.png")
	resp, b = e.do("POST", "/api/v1/images?filename=coins.png", bytes.NewReader(png),
		http.Header{"Content-Type": {"image/jpeg"}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST raw image/jpeg body = %d %s, want 201", resp.StatusCode, b)
	}
	raw := decode[apiImage](t, b)
	if raw.Filename != "coins.png" || raw.Format != imgd.FormatPNG || raw.MediaType != "image/png" ||
		raw.Width != 384 || raw.Height != 303 || raw.SHA256 != sha256Hex(png) {
		t.Errorf("raw upload = %+v, want coins.png png 384x303", raw.Image)
	}
	resp, b = e.do("POST", "/api/v1/images", bytes.NewReader(png), http.Header{"Content-Type": {"application/octet-stream"}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST raw application/octet-stream body = %d %s, want 201", resp.StatusCode, b)
	}

	// The original comes back byte for byte.
	resp, b = e.do("GET", im.ContentURL, nil, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(b, data) {
		t.Errorf("GET content = %d, %d bytes; want 200 and the %d uploaded bytes", resp.StatusCode, len(b), len(data))
	}
}

func TestUploadImageRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	data := imgtest.Read(t, "photos/jpeg-baseline-small.jpg")

	resp, b := e.upload("empty.jpg", []byte{}, nil)
	wantError(t, "upload empty file", resp, b, http.StatusUnsupportedMediaType, "unsupported_image")

	body, ct := multipartBody(t, "", nil, map[string]string{"width": "300"})
	resp, b = e.do("POST", "/api/v1/images", body, http.Header{"Content-Type": {ct}})
	wantError(t, "upload without a file part", resp, b, http.StatusBadRequest, "invalid_argument")
	if !strings.Contains(string(b), "file") {
		t.Errorf("error for a missing file part does not name the field: %s", b)
	}

	// Another field name is not the file.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("image", "x.jpg")
	fw.Write(data)
	mw.Close()
	resp, b = e.do("POST", "/api/v1/images", &buf, http.Header{"Content-Type": {mw.FormDataContentType()}})
	wantError(t, "upload in a part named image", resp, b, http.StatusBadRequest, "invalid_argument")

	for _, ct := range []string{"", "text/plain", "application/json", "multipart/form-data"} {
		resp, b = e.do("POST", "/api/v1/images", bytes.NewReader(data), http.Header{"Content-Type": {ct}})
		wantError(t, "upload with Content-Type "+strconv.Quote(ct), resp, b, http.StatusBadRequest, "invalid_argument")
	}

	resp, b = e.upload("notes.jpg", []byte("just text, not an image"), nil)
	wantError(t, "upload text", resp, b, http.StatusUnsupportedMediaType, "unsupported_image")

	resp, b = e.upload("x.jpg", data, http.Header{"Idempotency-Key": {strings.Repeat("k", imgd.MaxIdempotencyKeyLen+1)}})
	wantError(t, "upload with an over-long Idempotency-Key", resp, b, http.StatusBadRequest, "invalid_argument")

	if files := e.blobFiles(); len(files) != 0 {
		t.Errorf("refused uploads left blob files: %v", files)
	}
	resp, b = e.do("GET", "/api/v1/images", nil, nil)
	if p := decode[apiPage[apiImage]](t, b); resp.StatusCode != http.StatusOK || len(p.Items) != 0 {
		t.Errorf("images after refused uploads = %d %s, want 200 and none", resp.StatusCode, b)
	}
}

// endless is an upload body that never ends by itself; it counts what the
// client sent. The transport may still be reading it after Do returns.
type endless struct{ n atomic.Int64 }

func (r *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i)
	}
	r.n.Add(int64(len(p)))
	return len(p), nil
}

func TestUploadTooLarge(t *testing.T) {
	t.Parallel()
	limits := engine.DefaultLimits()
	limits.MaxInputBytes = 100 << 10
	e := newEnv(t, envOptions{workers: -1, limits: limits})

	// Just over the limit, as one complete request.
	big := bytes.Repeat([]byte{0xff}, int(limits.MaxInputBytes)+1)
	resp, b := e.upload("big.jpg", big, nil)
	wantError(t, "upload of limit+1 bytes", resp, b, http.StatusRequestEntityTooLarge, "too_large")

	// At the limit exactly, the bytes are read and judged as an image.
	resp, b = e.upload("limit.jpg", big[:limits.MaxInputBytes], nil)
	wantError(t, "upload of exactly the limit", resp, b, http.StatusUnsupportedMediaType, "unsupported_image")

	// A body without end is refused while it is being sent: the server
	// stops reading and answers instead of waiting for the end.
	// The form's other fields count too: an endless one before the file
	// is cut off by the form allowance.
	for _, form := range []string{"multipart", "multipart field", "raw"} {
		src := &endless{}
		var body io.Reader = src
		ct := "application/octet-stream"
		if form != "raw" {
			const boundary = "b0undary"
			head := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.jpg\"\r\n" +
				"Content-Type: image/jpeg\r\n\r\n"
			if form == "multipart field" {
				head = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\n"
			}
			body = io.MultiReader(strings.NewReader(head), src)
			ct = "multipart/form-data; boundary=" + boundary
		}
		// A server that reads on forever fails the test instead of hanging it.
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "POST", e.URL+"/api/v1/images", body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", ct)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s endless upload: %v (want a 413 answer)", form, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantError(t, form+" endless upload", resp, b, http.StatusRequestEntityTooLarge, "too_large")
		// The client may have buffered some more, but nowhere near the
		// whole 1 MiB of form allowance beyond the limit.
		if n := src.n.Load(); n > 8<<20 {
			t.Errorf("%s endless upload: client sent %d bytes before the answer; the server read on past the limit", form, n)
		}
	}
	if files := e.blobFiles(); len(files) != 0 {
		t.Errorf("too large uploads left blob or temporary files: %v", files)
	}
}

func TestUploadIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	data := imgtest.Read(t, "photos/jpeg-baseline-small.jpg")
	other := imgtest.Read(t, "png/png-gray.png")
	key := http.Header{"Idempotency-Key": {"upload-1"}}

	resp, b := e.upload("a.jpg", data, key)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("first upload = %d %s, want 201", resp.StatusCode, b)
	}
	first := decode[apiImage](t, b)

	resp, b = e.upload("a.jpg", data, key)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("repeated upload = %d %s, want 200", resp.StatusCode, b)
	}
	again := decode[apiImage](t, b)
	if again.ID != first.ID {
		t.Errorf("repeated upload id = %s, want the first %s", again.ID, first.ID)
	}
	if got := resp.Header.Get("Idempotent-Replayed"); got != "true" {
		t.Errorf("Idempotent-Replayed = %q, want true", got)
	}
	if got := resp.Header.Get("Location"); got != "/api/v1/images/"+first.ID {
		t.Errorf("replayed Location = %q, want the first image's", got)
	}

	resp, b = e.upload("b.png", other, key)
	wantError(t, "same key, other content", resp, b, http.StatusBadRequest, "invalid_argument")

	// Without a key, the same bytes make a second image.
	resp, b = e.upload("a.jpg", data, nil)
	if resp.StatusCode != http.StatusCreated || decode[apiImage](t, b).ID == first.ID {
		t.Errorf("upload without key = %d %s, want 201 and a new id", resp.StatusCode, b)
	}
	// The refused content left nothing; the same content is stored once.
	if got, want := e.blobSet(), map[string]bool{sha256Hex(data): true}; !mapsEqual(got, want) {
		t.Errorf("blob files = %v, want only the original %v", got, want)
	}
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func TestImageContentHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	data := imgtest.Read(t, "png/png-gray.png")

	tests := []struct {
		name, query, wantName string
	}{
		{"plain", "coins.png", "coins.png"},
		{"path and quotes stripped", `../../etc/"pass"wd.png`, "passwd.png"},
		{"windows path", `C:\Users\me\shot.png`, "shot.png"},
		{"control characters", "a\r\nSet-Cookie: x=1.png", "aSet-Cookie: x=1.png"},
		{"non-ASCII", "café ☕.png", "café ☕.png"},
		{"nothing left", "..", ""},
	}
	for _, tt := range tests {
		resp, b := e.do("POST", "/api/v1/images?filename="+url.QueryEscape(tt.query), bytes.NewReader(data),
			http.Header{"Content-Type": {"image/png"}})
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("%s: upload = %d %s", tt.name, resp.StatusCode, b)
		}
		im := decode[apiImage](t, b)
		want := tt.wantName
		if want == "" {
			want = im.ID + ".png"
		}
		resp, b = e.do("GET", im.ContentURL, nil, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(b, data) {
			t.Fatalf("%s: GET content = %d (%d bytes), want 200 and the original", tt.name, resp.StatusCode, len(b))
		}
		disp, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition"))
		if err != nil || disp != "inline" || params["filename"] != want {
			t.Errorf("%s: Content-Disposition %q = %q %q (%v), want inline with filename %q", tt.name,
				resp.Header.Get("Content-Disposition"), disp, params["filename"], err, want)
		}
	}

	im := e.mustUpload("coins.png", data)
	etag := `"` + sha256Hex(data) + `"`
	resp, b := e.do("GET", im.ContentURL, nil, nil)
	for k, want := range map[string]string{
		"ETag":                   etag,
		"Content-Type":           "image/png",
		"Content-Length":         strconv.Itoa(len(data)),
		"Cache-Control":          "private, max-age=31536000, immutable",
		"X-Content-Type-Options": "nosniff",
		"Accept-Ranges":          "bytes",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("GET content: %s = %q, want %q", k, got, want)
		}
	}
	if !bytes.Equal(b, data) {
		t.Errorf("GET content: body differs from the upload")
	}
	checkConditionalAndRange(t, e, im.ContentURL, etag, data)
}

// checkConditionalAndRange checks If-None-Match and Range on a download.
func checkConditionalAndRange(t *testing.T, e *env, url, etag string, data []byte) {
	t.Helper()
	resp, b := e.do("GET", url, nil, http.Header{"If-None-Match": {etag}})
	if resp.StatusCode != http.StatusNotModified || len(b) != 0 {
		t.Errorf("GET %s If-None-Match: %s = %d (%d bytes), want 304 and no body", url, etag, resp.StatusCode, len(b))
	}
	resp, _ = e.do("GET", url, nil, http.Header{"If-None-Match": {`"other"`}})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s If-None-Match another tag = %d, want 200", url, resp.StatusCode)
	}
	resp, b = e.do("GET", url, nil, http.Header{"Range": {"bytes=10-19"}})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, data[10:20]) {
		t.Errorf("GET %s Range: bytes=10-19 = %d %q, want 206 and bytes 10..19", url, resp.StatusCode, b)
	}
	if got, want := resp.Header.Get("Content-Range"), fmt.Sprintf("bytes 10-19/%d", len(data)); got != want {
		t.Errorf("GET %s Range: Content-Range = %q, want %q", url, got, want)
	}
	resp, b = e.do("GET", url, nil, http.Header{"Range": {fmt.Sprintf("bytes=-%d", 5)}})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, data[len(data)-5:]) {
		t.Errorf("GET %s Range: bytes=-5 = %d, want 206 and the last 5 bytes", url, resp.StatusCode)
	}
	resp, b = e.do("GET", url, nil, http.Header{"Range": {fmt.Sprintf("bytes=%d-", len(data)+10)}})
	var body struct{ Error struct{ Code string } }
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || resp.Header.Get("Content-Type") != "application/json" ||
		json.Unmarshal(b, &body) != nil || body.Error.Code != "invalid_argument" ||
		resp.Header.Get("Content-Range") != fmt.Sprintf("bytes */%d", len(data)) {
		t.Errorf("GET %s Range past the end = %d %s %q (Content-Range %q), want 416 with a JSON invalid_argument error",
			url, resp.StatusCode, resp.Header.Get("Content-Type"), b, resp.Header.Get("Content-Range"))
	}
	resp, b = e.do("HEAD", url, nil, nil)
	if resp.StatusCode != http.StatusOK || len(b) != 0 || resp.Header.Get("ETag") != etag {
		t.Errorf("HEAD %s = %d, %d bytes, ETag %q; want 200, no body, %s", url, resp.StatusCode, len(b), resp.Header.Get("ETag"), etag)
	}
}

func TestImageNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	im := e.mustUpload("a.png", imgtest.Read(t, "png/png-gray.png"))
	unknown := imgd.NewID()
	for _, id := range []string{unknown, "not-an-id", "%2e%2e", "' OR 1=1 --", strings.Repeat("9", 300), im.ID + "x"} {
		p := "/api/v1/images/" + url.PathEscape(id)
		for _, c := range []struct{ method, path string }{
			{"GET", p}, {"GET", p + "/content"}, {"DELETE", p}, {"HEAD", p + "/content"},
		} {
			resp, b := e.do(c.method, c.path, nil, nil)
			if c.method == "HEAD" {
				if resp.StatusCode != http.StatusNotFound {
					t.Errorf("HEAD %s = %d, want 404", c.path, resp.StatusCode)
				}
				continue
			}
			wantError(t, c.method+" "+c.path, resp, b, http.StatusNotFound, "not_found")
		}
	}
	resp, _ := e.do("GET", "/api/v1/images/"+im.ID, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET the known image = %d, want 200", resp.StatusCode)
	}
}

func TestListImagesPagination(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	data := imgtest.Read(t, "formats/gif-static.gif")
	var ids []string
	for i := range 7 {
		ids = append(ids, e.mustUpload(fmt.Sprintf("%d.gif", i), data).ID)
	}
	slices.Reverse(ids) // newest first

	var got []string
	next := "/api/v1/images?limit=3"
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatalf("more pages than expected; got %v so far", got)
		}
		resp, b := e.do("GET", next, nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d %s", next, resp.StatusCode, b)
		}
		p := decode[apiPage[apiImage]](t, b)
		for _, im := range p.Items {
			got = append(got, im.ID)
			if im.ContentURL != "/api/v1/images/"+im.ID+"/content" {
				t.Errorf("listed image %s: content_url %q", im.ID, im.ContentURL)
			}
		}
		link := resp.Header.Get("Link")
		if p.NextCursor == "" {
			if link != "" {
				t.Errorf("last page has Link %q", link)
			}
			if len(p.Items) != 1 {
				t.Errorf("last page has %d items, want 1", len(p.Items))
			}
			break
		}
		if len(p.Items) != 3 {
			t.Errorf("GET %s: %d items, want 3", next, len(p.Items))
		}
		want := `</api/v1/images?cursor=` + url.QueryEscape(p.NextCursor) + `&limit=3>; rel="next"`
		if link != want {
			t.Errorf("GET %s: Link = %q, want %q", next, link, want)
		}
		next = strings.TrimSuffix(strings.TrimPrefix(strings.Split(link, ";")[0], "<"), ">")
	}
	if !slices.Equal(got, ids) {
		t.Errorf("paged ids = %v, want every image once, newest first: %v", got, ids)
	}

	resp, b := e.do("GET", "/api/v1/images", nil, nil)
	if p := decode[apiPage[apiImage]](t, b); resp.StatusCode != http.StatusOK || len(p.Items) != 7 ||
		p.NextCursor != "" || resp.Header.Get("Link") != "" {
		t.Errorf("GET /api/v1/images = %d, %d items, next %q; want all 7 on one page", resp.StatusCode, len(p.Items), p.NextCursor)
	}
	for _, q := range []string{"limit=0", "limit=-1", "limit=abc", "limit=501", "limit=1.5", "cursor=nonsense", "cursor=" + strings.Repeat("A", 40)} {
		resp, b := e.do("GET", "/api/v1/images?"+q, nil, nil)
		wantError(t, "GET /api/v1/images?"+q, resp, b, http.StatusBadRequest, "invalid_argument")
	}
}

func TestGetImageListsTasks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	im := e.mustUpload("a.gif", imgtest.Read(t, "formats/gif-static.gif"))
	resp, b := e.do("GET", "/api/v1/images/"+im.ID, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET image = %d %s", resp.StatusCode, b)
	}
	var raw map[string]json.RawMessage
	json.Unmarshal(b, &raw)
	if string(raw["tasks"]) != "[]" {
		t.Errorf("image without tasks: tasks = %s, want []", raw["tasks"])
	}
	var ids []string
	for w := range 3 {
		ids = append(ids, e.mustSubmit(im.ID, fmt.Sprintf(`[{"op":"resize","width":%d}]`, 10+w)).ID)
	}
	slices.Reverse(ids)
	_, b = e.do("GET", "/api/v1/images/"+im.ID, nil, nil)
	got := decode[apiImage](t, b)
	var gotIDs []string
	for _, task := range got.Tasks {
		gotIDs = append(gotIDs, task.ID)
		if task.ImageID != im.ID || task.Status != imgd.TaskPending {
			t.Errorf("listed task %+v, want pending task of %s", task.Task, im.ID)
		}
	}
	if !slices.Equal(gotIDs, ids) {
		t.Errorf("image tasks = %v, want newest first %v", gotIDs, ids)
	}
	if got.Image != im.Image {
		t.Errorf("GET image = %+v, want the uploaded %+v", got.Image, im.Image)
	}
}

func TestDeleteImage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	photo := imgtest.Read(t, "photos/jpeg-baseline-small.jpg")
	gray := imgtest.Read(t, "png/png-gray.png")
	const pipe = `[{"op":"resize","width":50},{"op":"convert","format":"png"}]`

	// a and b share their content, hence their original and result blobs;
	// c shares nothing.
	a, b, c := e.mustUpload("a.jpg", photo), e.mustUpload("b.jpg", photo), e.mustUpload("c.png", gray)
	ta := e.waitTask(e.mustSubmit(a.ID, pipe).ID, 20*time.Second)
	tb := e.waitTask(e.mustSubmit(b.ID, pipe).ID, 20*time.Second)
	tc := e.waitTask(e.mustSubmit(c.ID, pipe).ID, 20*time.Second)
	for _, task := range []imgd.Task{ta, tb, tc} {
		if task.Status != imgd.TaskCompleted {
			t.Fatalf("task %s = %s %s, want completed", task.ID, task.Status, task.ErrorMessage)
		}
	}
	_, resA := e.do("GET", "/api/v1/tasks/"+ta.ID+"/result", nil, nil)
	_, resC := e.do("GET", "/api/v1/tasks/"+tc.ID+"/result", nil, nil)
	all := map[string]bool{sha256Hex(photo): true, sha256Hex(gray): true, sha256Hex(resA): true, sha256Hex(resC): true}
	if got := e.blobSet(); !mapsEqual(got, all) {
		t.Fatalf("blobs = %v, want %v", got, all)
	}
	if tb.Attempt != 0 { // b's task reused a's result without running
		t.Errorf("task of b: attempt %d, want 0 (result reused)", tb.Attempt)
	}

	resp, body := e.do("DELETE", "/api/v1/images/"+a.ID, nil, nil)
	if resp.StatusCode != http.StatusNoContent || len(body) != 0 {
		t.Fatalf("DELETE image a = %d %s, want 204 and no body", resp.StatusCode, body)
	}
	if got := e.blobSet(); !mapsEqual(got, all) {
		t.Errorf("after deleting a, whose blobs b shares: blobs = %v, want all kept %v", got, all)
	}
	for _, p := range []string{"/api/v1/images/" + a.ID, "/api/v1/images/" + a.ID + "/content", "/api/v1/tasks/" + ta.ID,
		"/api/v1/tasks/" + ta.ID + "/result"} {
		resp, body := e.do("GET", p, nil, nil)
		wantError(t, "GET "+p+" after DELETE", resp, body, http.StatusNotFound, "not_found")
	}
	resp, body = e.do("DELETE", "/api/v1/images/"+a.ID, nil, nil)
	wantError(t, "DELETE image a again", resp, body, http.StatusNotFound, "not_found")
	resp, body = e.do("GET", "/api/v1/tasks/"+tb.ID+"/result", nil, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, resA) {
		t.Errorf("b's result after deleting a = %d, want 200 and the shared result", resp.StatusCode)
	}

	resp, _ = e.do("DELETE", "/api/v1/images/"+c.ID, nil, nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE image c = %d, want 204", resp.StatusCode)
	}
	want := map[string]bool{sha256Hex(photo): true, sha256Hex(resA): true}
	if got := e.blobSet(); !mapsEqual(got, want) {
		t.Errorf("after deleting c: blobs = %v, want its original and result gone: %v", got, want)
	}
	resp, _ = e.do("DELETE", "/api/v1/images/"+b.ID, nil, nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE image b = %d, want 204", resp.StatusCode)
	}
	if files := e.blobFiles(); len(files) != 0 {
		t.Errorf("after deleting every image: blob files %v, want none", files)
	}
	resp, body = e.do("GET", "/api/v1/tasks", nil, nil)
	if p := decode[apiPage[apiTask]](t, body); resp.StatusCode != http.StatusOK || len(p.Items) != 0 {
		t.Errorf("tasks after deleting every image = %s, want none", body)
	}
}
