package httpapi_test

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/engine"
	"github.com/imgd/imgd/internal/imgtest"
)

// TestResponsiveSet runs a responsive task end to end on a real photo:
// every variant is downloadable, has the size and format its manifest
// says, the srcset strings name them, an identical task reuses the
// variants under its own manifest, and deleting the image leaves no blob.
func TestResponsiveSet(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	eng, err := engine.New(engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const rel = "photos/jpeg-large-camera-exif.jpg" // 4000x3000
	im := e.mustUpload("camera.jpg", imgtest.Read(t, rel))
	const pipeline = `[{"op":"responsive","widths":[1280,320,640],"formats":["webp","jpeg"]}]`
	first := e.mustSubmit(im.ID, pipeline)
	task := e.waitTask(first.ID, 120*time.Second)
	if task.Status != imgd.TaskCompleted || task.Result == nil {
		t.Fatalf("responsive task ended %s (%s %s), want completed with a result", task.Status, task.ErrorCode, task.ErrorMessage)
	}
	res := task.Result
	if res.Format != imgd.FormatJSON || res.MediaType != "application/json" || res.Width != 1280 || res.Height != 960 {
		t.Errorf("result %s %s %dx%d, want the json manifest of a set 1280x960 at most", res.Format, res.MediaType, res.Width, res.Height)
	}
	if len(res.Variants) != 6 {
		t.Fatalf("%d variants, want 6: %+v", len(res.Variants), res.Variants)
	}

	manifest := checkManifest(t, e, eng, task)
	wantSrcset := map[imgd.Format]string{}
	for _, f := range []imgd.Format{imgd.FormatWebP, imgd.FormatJPEG} {
		var parts []string
		for i, w := range []int{320, 640, 1280} {
			index := i
			if f == imgd.FormatJPEG {
				index += 3
			}
			parts = append(parts, fmt.Sprintf("/api/v1/tasks/%s/variants/%d %dw", task.ID, index, w))
		}
		wantSrcset[f] = strings.Join(parts, ", ")
	}
	if diff := cmp.Diff(wantSrcset, manifest.Srcset); diff != "" {
		t.Errorf("manifest srcset (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantSrcset, res.Srcset); diff != "" {
		t.Errorf("task result.srcset (-want +got):\n%s", diff)
	}

	// The same work again reuses the variants, with a manifest of its own.
	second := e.waitTask(e.mustSubmit(im.ID, pipeline).ID, 30*time.Second)
	if second.Status != imgd.TaskCompleted || second.Attempt != 0 {
		t.Errorf("identical responsive task: %s, attempt %d; want completed at once by reuse (attempt 0)", second.Status, second.Attempt)
	}
	m2 := checkManifest(t, e, eng, second)
	if !strings.HasPrefix(m2.Srcset[imgd.FormatWebP], "/api/v1/tasks/"+second.ID+"/variants/0 320w") {
		t.Errorf("reused set's srcset %q names another task", m2.Srcset[imgd.FormatWebP])
	}

	// 1 original + 6 variants + 2 manifests, and nothing left once the
	// image is deleted.
	if files := e.blobFiles(); len(files) != 9 {
		t.Errorf("blob store holds %d files, want 9: %v", len(files), files)
	}
	if resp, b := e.do("DELETE", "/api/v1/images/"+im.ID, nil, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE image = %d %s", resp.StatusCode, b)
	}
	if files := e.blobFiles(); len(files) != 0 {
		t.Errorf("blobs left after the image was deleted: %v", files)
	}
	if resp, _ := e.do("GET", imgd.VariantURL(task.ID, 0), nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("variant of a deleted task: %d, want 404", resp.StatusCode)
	}
}

// checkManifest downloads task's manifest and every variant it lists, and
// checks each against the manifest and the task's result.variants.
func checkManifest(t *testing.T, e *env, eng *engine.Engine, task imgd.Task) imgd.Manifest {
	t.Helper()
	resp, b := e.do("GET", "/api/v1/tasks/"+task.ID+"/result", nil, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET result of %s = %d %s: %.200s", task.ID, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	m := decode[imgd.Manifest](t, b)
	if len(m.Variants) != len(task.Result.Variants) || len(m.Errors) != 0 {
		t.Fatalf("manifest lists %d variants and %d errors, the task %d variants", len(m.Variants), len(m.Errors), len(task.Result.Variants))
	}
	for i, mv := range m.Variants {
		tv := task.Result.Variants[i]
		if mv.Index != i || mv.URL != imgd.VariantURL(task.ID, i) || mv.Width != tv.Width || mv.Height != tv.Height ||
			mv.Format != tv.Format || mv.Bytes != tv.Bytes || mv.MediaType != tv.Format.MediaType() {
			t.Errorf("manifest variant %d = %+v, task variant %+v", i, mv, tv)
		}
		resp, data := e.do("GET", mv.URL, nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d %s", mv.URL, resp.StatusCode, data)
			continue
		}
		if ct, etag := resp.Header.Get("Content-Type"), resp.Header.Get("ETag"); ct != mv.MediaType ||
			etag != fmt.Sprintf(`"%x"`, sha256.Sum256(data)) || int64(len(data)) != mv.Bytes {
			t.Errorf("GET %s: %s, ETag %s, %d bytes; manifest says %s, %d bytes", mv.URL, ct, etag, len(data), mv.MediaType, mv.Bytes)
		}
		info, err := eng.Probe(data)
		if err != nil || info.Format != mv.Format || info.Width != mv.Width || info.Height != mv.Height {
			t.Errorf("variant %d decodes as %+v, %v; manifest says %s %dx%d", i, info, err, mv.Format, mv.Width, mv.Height)
		}
		if want := mv.Width * 3 / 4; mv.Height != want {
			t.Errorf("variant %d is %dx%d, want the photo's 4:3 (%dx%d)", i, mv.Width, mv.Height, mv.Width, want)
		}
	}
	return m
}

// A set whose variant fails ends completed_with_errors: listed under that
// status, its manifest and task say which variant failed and why, the
// variant route refuses it, and the compatibility status reads SUCCESS.
func TestResponsivePartialFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	im := e.mustUpload("small.jpg", imgtest.Read(t, "photos/jpeg-baseline-small.jpg"))
	// 17000 px is over the default output limit (16384 a side).
	task := e.waitTask(e.mustSubmit(im.ID, `[{"op":"responsive","widths":[17000,120],"formats":["png"],"enlarge":true}]`).ID, 60*time.Second)
	if task.Status != imgd.TaskCompletedWithErrors || task.Result == nil || len(task.Result.Variants) != 2 {
		t.Fatalf("task %s (%s), result %+v; want completed_with_errors with 2 variants", task.Status, task.ErrorMessage, task.Result)
	}
	good, bad := task.Result.Variants[0], task.Result.Variants[1]
	if good.Failed() || good.Width != 120 || bad.ErrorCode != imgd.CodeOverLimit || bad.Width != 17000 || bad.Bytes != 0 {
		t.Errorf("variants = %+v, %+v; want 120 px made, 17000 px over_limit", good, bad)
	}
	if task.ErrorCode != "" {
		t.Errorf("task error_code %q, want none: the task has a result", task.ErrorCode)
	}
	_, b := e.do("GET", "/api/v1/tasks/"+task.ID+"/result", nil, nil)
	m := decode[imgd.Manifest](t, b)
	if len(m.Variants) != 1 || len(m.Errors) != 1 || m.Errors[0].Index != 1 || m.Errors[0].Code != imgd.CodeOverLimit || m.Errors[0].Message == "" {
		t.Errorf("manifest = %s, want one variant and variant 1's over_limit error", b)
	}
	resp, b := e.do("GET", imgd.VariantURL(task.ID, 1), nil, nil)
	wantError(t, "GET failed variant", resp, b, http.StatusConflict, "conflict")

	resp, b = e.do("GET", "/api/v1/tasks?status=completed_with_errors", nil, nil)
	if page := decode[apiPage[apiTask]](t, b); resp.StatusCode != http.StatusOK || len(page.Items) != 1 || page.Items[0].ID != task.ID {
		t.Errorf("GET tasks?status=completed_with_errors = %d %.300s, want the one task", resp.StatusCode, b)
	}
	if _, b = e.do("GET", "/api/v1/status/"+task.ID, nil, nil); !strings.Contains(string(b), `"SUCCESS"`) {
		t.Errorf("compat status of a task completed with errors = %s, want SUCCESS", b)
	}
}
