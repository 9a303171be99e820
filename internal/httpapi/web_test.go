package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/engine"
	"github.com/imgd/imgd/internal/imgtest"
	"github.com/imgd/imgd/internal/web"
)

// The web page, driven in real headless Chromium against a real imgd: the
// API and the page on one origin, as the server mounts them.

// newWebEnv starts a real imgd and a server on 127.0.0.1 that serves the
// page beside its API. It returns the env and the page's URL.
func newWebEnv(t *testing.T, o envOptions) (*env, string) {
	t.Helper()
	e := newEnv(t, o)
	page := web.Handler()
	mux := http.NewServeMux()
	mux.Handle("/api/", e.Server.Config.Handler)
	mux.Handle("GET /{$}", page)
	mux.Handle("GET /static/", page)
	// A page that breaks the CSP, to prove that violations are seen.
	mux.HandleFunc("GET /csp-probe", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", web.CSP)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>probe</title><script>document.title = "inline ran"</script>`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return e, srv.URL
}

// chromiumPath finds the browser: IMGD_CHROMIUM, else chromium or
// chromium-browser on PATH.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("IMGD_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	imgtest.Unavailable(t, "no Chromium for the web page tests (set IMGD_CHROMIUM or run scripts/chromium.sh)")
	return ""
}

// browser starts headless Chromium for the test, talking over a pipe (no
// debugging port), and collects the console of its tab.
type browser struct {
	t   *testing.T
	ctx context.Context

	shots int // screenshots taken, to number them

	mu       sync.Mutex
	messages []chromedp.ConsoleMessage
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.WithoutCancel(t.Context()), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	b := &browser{t: t, ctx: ctx}
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.messages = append(b.messages, m)
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return b
}

// do runs actions with a time limit, failing the test with what.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.shot("failed")
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor waits until a JavaScript expression is truthy.
func (b *browser) waitFor(what, expr string) {
	b.t.Helper()
	b.do("wait for "+what, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second)))
}

// shot saves a screenshot of the page under the test's artifact directory.
func (b *browser) shot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	b.shots++
	p := filepath.Join(b.t.ArtifactDir(), fmt.Sprintf("%02d-%s.png", b.shots, name))
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Errorf("save screenshot: %v", err)
	}
}

// console returns the console messages seen so far, from index from.
func (b *browser) console(from int) []chromedp.ConsoleMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.messages[min(from, len(b.messages)):])
}

// badMessages returns the console messages that show a fault of the page:
// exceptions, console errors and warnings, CSP violations, and failed
// requests other than the answers the scenario expects (allowed, e.g.
// "status of 415").
func badMessages(msgs []chromedp.ConsoleMessage, allowed ...string) []string {
	var bad []string
	for _, m := range msgs {
		if m.Type == "log" || m.Type == "info" || m.Type == "debug" {
			if !strings.Contains(m.Text, "Content Security Policy") {
				continue
			}
		}
		if m.Source == "network" && slices.ContainsFunc(allowed, func(a string) bool { return strings.Contains(m.Text, a) }) {
			continue
		}
		bad = append(bad, fmt.Sprintf("%s [%s] %s (%s:%d)", m.Type, m.Source, m.Text, m.URL, m.Line+1))
	}
	return bad
}

// tabTo presses Tab until the element with id has the focus, and returns
// the number of presses, failing after max.
func (b *browser) tabTo(id string, max int) int {
	b.t.Helper()
	var path []string
	for i := 1; i <= max; i++ {
		b.do("press Tab", chromedp.KeyEvent(kb.Tab))
		got := eval[string](b, `document.activeElement ? (document.activeElement.id || document.activeElement.tagName) : ""`)
		path = append(path, got)
		if got == id {
			return i
		}
	}
	b.t.Fatalf("Tab %d times did not reach #%s; focus went %v", max, id, path)
	return 0
}

func TestWebPage(t *testing.T) {
	b := newBrowser(t)
	e, url := newWebEnv(t, envOptions{})
	photo := imgtest.Path(t, "photos/jpeg-baseline-small.jpg")

	// Load: the page, its assets, and the event stream, with no error.
	b.do("load the page", chromedp.Navigate(url+"/"))
	b.waitFor("the event stream", `document.getElementById("live").dataset.state === "live"`)
	if title := eval[string](b, `document.title`); title != "imgd" {
		t.Errorf("title = %q, want imgd", title)
	}
	b.shot("loaded")
	if bad := badMessages(b.console(0)); len(bad) > 0 {
		t.Errorf("console after loading the page:\n%s", strings.Join(bad, "\n"))
	}

	// Keyboard: Tab from the top reaches the file input.
	b.do("focus the top", chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur()`))
	b.tabTo("file", 5)

	// Upload a real photo by the file input.
	b.do("choose the photo", chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{photo}))
	b.waitFor("the upload", `document.querySelector('#uploads li[data-state="done"]')`)
	b.waitFor("the photo in the gallery", `document.querySelectorAll("#images button").length === 1`)
	resp, body := e.do("GET", "/api/v1/images", nil, nil)
	images := decode[struct{ Items []imgd.Image }](t, body).Items
	if resp.StatusCode != http.StatusOK || len(images) != 1 || images[0].Filename != filepath.Base(photo) {
		t.Fatalf("GET /api/v1/images after the upload = %d %s, want the one photo", resp.StatusCode, body)
	}
	im := images[0]
	if got := eval[string](b, `document.querySelector("#images button").dataset.id`); got != im.ID {
		t.Errorf("gallery shows image %q, want %q", got, im.ID)
	}
	// The thumbnail is made by imgd: a 240×240 WebP task result.
	b.waitFor("the thumbnail", `(i => i.complete && i.naturalWidth > 0 && i.getAttribute("src").endsWith("/result"))(document.querySelector("#images button img"))`)
	if w := eval[int](b, `document.querySelector("#images button img").naturalWidth`); w != 240 {
		t.Errorf("thumbnail is %d px wide, want imgd's 240", w)
	}
	if got := eval[string](b, `document.querySelector('#uploads li[data-state="done"] progress').value + ""`); got != "100" {
		t.Errorf("upload progress = %s, want 100", got)
	}
	b.shot("uploaded")

	// A file that is not an image: the API's message, in words.
	mark := len(b.console(0))
	b.do("choose the bad file", chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{imgtest.Path(t, "bad/text-named.jpg")}))
	b.waitFor("the upload error", `document.querySelector('#uploads li[data-state="error"]')`)
	msg := eval[string](b, `document.querySelector('#uploads li[data-state="error"] .msg').textContent`)
	want := "Not an image we can read: not an image format imgd reads"
	if !strings.HasPrefix(msg, want) {
		t.Errorf("bad upload shows %q, want it to start with %q", msg, want)
	}
	if role := eval[string](b, `document.querySelector('#uploads li[data-state="error"] .msg').getAttribute("role")`); role != "alert" {
		t.Errorf("bad upload message role = %q, want alert", role)
	}
	b.shot("bad-upload")
	if bad := badMessages(b.console(mark), "status of 415"); len(bad) > 0 {
		t.Errorf("console during the bad upload:\n%s", strings.Join(bad, "\n"))
	}

	// Open the image: its metadata.
	b.do("open the image", chromedp.Click(chromedp.CSS("#images button")))
	b.waitFor("the image panel", `!document.getElementById("detail").hidden && document.getElementById("meta").textContent.includes("`+im.ID+`")`)
	dims := eval[string](b, `[...document.querySelectorAll("#meta dt")].find(d => d.textContent === "Dimensions").nextElementSibling.textContent`)
	if want := fmt.Sprintf("%d × %d", im.Width, im.Height); dims != want {
		t.Errorf("dimensions shown = %q, want %q", dims, want)
	}

	// Keyboard: from the image's heading, Tab reaches the submit button.
	b.do("focus the heading", chromedp.Focus(chromedp.ID("detail-h")))
	b.tabTo("submit", 25)

	// Build resize 200 wide + convert webp with the form.
	b.do("build the pipeline",
		chromedp.SetValue(chromedp.ID("add-op"), "resize"),
		chromedp.Click(chromedp.ID("add-step")),
		chromedp.SendKeys(chromedp.CSS(`#steps li[data-op="resize"] input[name="width"]`), "200"),
		chromedp.SetValue(chromedp.ID("add-op"), "convert"),
		chromedp.Click(chromedp.ID("add-step")),
		chromedp.SetValue(chromedp.CSS(`#steps li[data-op="convert"] select[name="format"]`), "webp"),
	)
	pipeline := eval[string](b, `document.getElementById("pipeline-json").value`)
	if want := `[{"op":"resize","width":200},{"op":"convert","format":"webp"}]`; pipeline != want {
		t.Errorf("pipeline JSON = %s, want %s", pipeline, want)
	}
	cmd := eval[string](b, `document.getElementById("submit-cmd").value`)
	if want := "imgd submit --server " + url + " 'jpeg-baseline-small.jpg' resize:width=200 convert:format=webp"; cmd != want {
		t.Errorf("imgd submit command = %q, want %q", cmd, want)
	}
	// The command's steps are the pipeline of the form.
	fromText, err := imgd.ParsePipelineText(strings.Fields(cmd)[5:])
	if err != nil || string(fromText.Canonical()) != string(imgd.MustParsePipeline(pipeline).Canonical()) {
		t.Errorf("imgd submit's steps %v parse to %s, %v; want the form's pipeline %s", strings.Fields(cmd)[5:], fromText.Canonical(), err, pipeline)
	}
	if curl := eval[string](b, `document.getElementById("curl").value`); !strings.Contains(curl, `'{"image_id":"`+im.ID+`","pipeline":`+pipeline+`}'`) {
		t.Errorf("curl command = %q, want the task's JSON body", curl)
	}
	b.shot("pipeline")
	b.checkLabels()

	// Submit; the status changes arrive over SSE: no reload, no polling.
	b.do("watch the tasks", chromedp.Evaluate[chromedp.Void](`
		window.__noReload = true;
		window.__seen = [];
		performance.clearResourceTimings();
		new MutationObserver(() => {
			const li = document.querySelector("#tasks li");
			if (li && window.__seen[window.__seen.length - 1] !== li.dataset.status) window.__seen.push(li.dataset.status);
		}).observe(document.getElementById("tasks"), {subtree: true, childList: true, attributes: true});`))
	b.do("submit", chromedp.Click(chromedp.ID("submit")))
	b.waitFor("the completed task", `document.querySelector('#tasks li[data-status="completed"] .dims')`)
	seen := eval[[]string](b, `window.__seen`)
	if len(seen) < 2 || (seen[0] != "pending" && seen[0] != "processing") || seen[len(seen)-1] != "completed" {
		t.Errorf("task statuses on screen = %v, want pending (or processing, when the worker is faster than the answer) … completed", seen)
	}
	t.Logf("task statuses on screen: %v", seen)
	if !eval[bool](b, `window.__noReload === true`) {
		t.Error("the page reloaded while the task ran")
	}
	fetched := eval[[]string](b, `performance.getEntriesByType("resource").map(r => r.name).filter(n => n.includes("/api/v1/") && !n.endsWith("/api/v1/tasks") && !n.endsWith("/result"))`)
	if len(fetched) > 0 { // images (results) may load; status requests may not
		t.Errorf("the page fetched %v after submitting: the status must come from the event stream", fetched)
	}
	b.shot("completed")

	taskID := eval[string](b, `document.querySelector('#tasks li[data-status="completed"]').dataset.id`)
	task := e.waitTask(taskID, 10*time.Second)
	if task.Status != imgd.TaskCompleted || task.Result == nil || task.Result.Width != 200 || task.Result.Format != imgd.FormatWebP {
		t.Fatalf("task %s = %+v, want completed with a 200-wide WebP", taskID, task)
	}
	if got, want := eval[string](b, `document.querySelector('#tasks li[data-status="completed"] .dims').textContent`),
		fmt.Sprintf("%d×%d webp", task.Result.Width, task.Result.Height); got != want {
		t.Errorf("result dimensions shown = %q, want %q", got, want)
	}
	if got, want := eval[string](b, `document.querySelector('#tasks li[data-status="completed"] .bytes').textContent`),
		fmt.Sprintf("(%d bytes)", task.Result.Bytes); !strings.HasSuffix(got, want) {
		t.Errorf("result size shown = %q, want it to end with %q", got, want)
	}

	// The download link gives the WebP, 200 wide.
	href := eval[string](b, `document.querySelector('#tasks li[data-status="completed"] a.download').getAttribute("href")`)
	dl := eval[string](b, `document.querySelector('#tasks li[data-status="completed"] a.download').getAttribute("download")`)
	if dl != "jpeg-baseline-small.webp" {
		t.Errorf("download name = %q, want jpeg-baseline-small.webp", dl)
	}
	resp, data := fetch(t, "GET", url+href, nil, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/webp" {
		t.Fatalf("GET %s = %d %s, want 200 image/webp", href, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	info, err := e.Svc.Engine.Probe(data)
	if err != nil || info.Format != imgd.FormatWebP || info.Width != 200 || int64(len(data)) != task.Result.Bytes {
		t.Errorf("downloaded result: %+v, %d bytes, %v; want a WebP 200 wide of %d bytes", info, len(data), err, task.Result.Bytes)
	}

	// The comparison view shows both images at the same scale.
	b.do("compare", chromedp.Click(chromedp.CSS(`#tasks li[data-status="completed"] .compare-btn`)))
	b.waitFor("both images", `[...document.querySelectorAll(".compare img")].every(i => i.complete && i.naturalWidth > 0)`)
	b.shot("compare")

	// Escape closes the comparison and gives the focus back to its button.
	b.do("focus the slider", chromedp.Focus(chromedp.CSS(".compare input")))
	b.do("press Escape in the comparison", chromedp.KeyEvent(kb.Escape))
	b.waitFor("the comparison to close", `!document.querySelector(".compare")`)
	if got := eval[string](b, `document.activeElement.className`); got != "compare-btn" {
		t.Errorf("after Escape in the comparison the focus is on %q, want the Compare button", got)
	}

	// Delete asks in a modal dialog, which Escape closes without deleting,
	// giving the focus back to the Delete button.
	b.do("delete", chromedp.Click(chromedp.ID("delete")))
	if !eval[bool](b, `document.getElementById("confirm").open && document.getElementById("confirm").matches(":modal")`) {
		t.Fatal("delete did not ask for confirmation in a modal dialog")
	}
	if got := eval[string](b, `document.activeElement.id`); got != "confirm-no" {
		t.Errorf("the confirmation opened with the focus on %q, want confirm-no (the safe choice)", got)
	}
	b.shot("confirm")
	b.do("press Escape", chromedp.KeyEvent(kb.Escape))
	b.waitFor("the dialog to close", `!document.getElementById("confirm").open`)
	b.waitFor("the focus back on Delete", `document.activeElement.id === "delete"`)
	if resp, _ := e.do("GET", "/api/v1/images/"+im.ID, nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("image gone after Escape: GET = %d", resp.StatusCode)
	}
	// "Keep it" also closes it, back on Delete.
	b.do("delete, then keep", chromedp.Click(chromedp.ID("delete")), chromedp.Click(chromedp.ID("confirm-no")))
	b.waitFor("the dialog to close after Keep it", `!document.getElementById("confirm").open && document.activeElement.id === "delete"`)
	b.do("delete again", chromedp.Click(chromedp.ID("delete")))
	if resp, _ := e.do("GET", "/api/v1/images/"+im.ID, nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("image gone before the confirmation: GET = %d", resp.StatusCode)
	}
	b.do("confirm", chromedp.Click(chromedp.ID("confirm-yes")))
	b.waitFor("the image to go", `document.getElementById("detail").hidden && document.querySelectorAll("#images button").length === 0 && !document.getElementById("confirm").open`)
	if resp, body := e.do("GET", "/api/v1/images/"+im.ID, nil, nil); resp.StatusCode != http.StatusNotFound || errorCode(t, body) != "not_found" {
		t.Errorf("GET the deleted image = %d %s, want 404 not_found", resp.StatusCode, body)
	}
	b.shot("deleted")

	if bad := badMessages(b.console(0), "status of 415"); len(bad) > 0 {
		t.Errorf("console during the flows:\n%s", strings.Join(bad, "\n"))
	}

	// The console check can fail: a page with inline code shows a violation.
	mark = len(b.console(0))
	b.do("load the CSP probe", chromedp.Navigate(url+"/csp-probe"))
	deadline := time.Now().Add(5 * time.Second)
	for len(badMessages(b.console(mark))) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if bad := badMessages(b.console(mark)); len(bad) == 0 || !strings.Contains(strings.Join(bad, "\n"), "Content Security Policy") {
		t.Errorf("inline script under the CSP: console %v, want a Content Security Policy violation", bad)
	}
	if title := eval[string](b, `document.title`); title != "probe" {
		t.Errorf("inline script under the CSP ran: title %q", title)
	}
}

// TestWebPageCancelAndDrop cancels a task that stays pending (no
// workers), shows an API error on submit, sees an image uploaded elsewhere
// arrive over SSE, uploads two files at once by drag and drop, and fits a
// phone's width.
func TestWebPageCancelAndDrop(t *testing.T) {
	b := newBrowser(t)
	limits := engine.DefaultLimits()
	limits.MaxInputBytes = 20000 // over the small photo, under the progressive one
	e, url := newWebEnv(t, envOptions{workers: -1, limits: limits})
	mp, ct := multipartBody(t, "street.jpg", imgtest.Read(t, "photos/jpeg-baseline-small.jpg"), nil)
	resp, body := e.do("POST", "/api/v1/images", mp, http.Header{"Content-Type": {ct}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload = %d %s", resp.StatusCode, body)
	}
	im := decode[imgd.Image](t, body)

	b.do("load the page", chromedp.Navigate(url+"/"))
	b.waitFor("the event stream", `document.getElementById("live").dataset.state === "live"`)
	// Over the upload limit: the limit, in words.
	b.do("choose the big file", chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{imgtest.Path(t, "photos/jpeg-progressive-small.jpg")}))
	b.waitFor("the upload error", `document.querySelector('#uploads li[data-state="error"]')`)
	if got, want := eval[string](b, `document.querySelector('#uploads li[data-state="error"] .msg').textContent`), "Too large: max 19.5 KB"; got != want {
		t.Errorf("upload over the limit shows %q, want %q", got, want)
	}

	b.do("open the image", chromedp.Click(chromedp.CSS(`#images button[data-id="`+im.ID+`"]`)))
	b.waitFor("the image panel", `!document.getElementById("detail").hidden`)
	b.do("build and submit",
		chromedp.Click(chromedp.ID("add-step")), // resize, the first operation
		chromedp.SendKeys(chromedp.CSS(`#steps li[data-op="resize"] input[name="width"]`), "100"),
		chromedp.Click(chromedp.ID("submit")),
	)
	b.waitFor("the pending task", `document.querySelector('#tasks li[data-status="pending"] button.cancel')`)
	b.shot("pending")
	taskID := eval[string](b, `document.querySelector('#tasks li[data-status="pending"]').dataset.id`)
	b.do("cancel", chromedp.Click(chromedp.CSS(`#tasks li[data-status="pending"] button.cancel`)))
	b.waitFor("the canceled task", `document.querySelector('#tasks li[data-status="canceled"]') && !document.querySelector("#tasks button.cancel")`)
	b.shot("canceled")
	resp, body = e.do("GET", "/api/v1/tasks/"+taskID, nil, nil)
	if task := decode[imgd.Task](t, body); resp.StatusCode != http.StatusOK || task.Status != imgd.TaskCanceled {
		t.Errorf("GET task %s after cancel = %d %s, want canceled", taskID, resp.StatusCode, body)
	}

	// An API error on submit is shown: an empty pipeline.
	b.do("remove the step and submit",
		chromedp.Click(chromedp.CSS(`#steps li[data-op="resize"] button[aria-label="Remove resize"]`)),
		chromedp.Click(chromedp.ID("submit")),
	)
	b.waitFor("the error", `document.getElementById("form-error").textContent !== ""`)
	if got := eval[string](b, `document.getElementById("form-error").textContent`); !strings.HasPrefix(got, "Invalid request: ") {
		t.Errorf("empty pipeline shows %q, want the invalid_argument message", got)
	}
	b.shot("error")

	// Dither: the palette's preview uses only the palette's colours.
	b.do("add a dither step",
		chromedp.SetValue(chromedp.ID("add-op"), "dither"),
		chromedp.Click(chromedp.ID("add-step")),
		chromedp.SetValue(chromedp.CSS(`#steps li[data-op="dither"] select[name="palette"]`), "gameboy"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#steps li[data-op="dither"] select[name="palette"]').dispatchEvent(new Event("change", {bubbles: true}))`),
	)
	if got, want := eval[string](b, `document.getElementById("pipeline-json").value`), `[{"op":"dither","method":"floyd-steinberg","palette":"gameboy"}]`; got != want {
		t.Errorf("dither pipeline = %s, want %s", got, want)
	}
	b.waitFor("the dither preview", `document.querySelector(".dither-preview canvas").dataset.palette === "gameboy"`)
	colors := eval[[]string](b, `(() => {
		const c = document.querySelector(".dither-preview canvas");
		const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
		const seen = new Set();
		for (let i = 0; i < d.length; i += 4) seen.add("#" + [d[i], d[i+1], d[i+2]].map(v => v.toString(16).padStart(2, "0")).join(""));
		return [...seen].sort();
	})()`)
	if swatches := eval[int](b, `document.querySelectorAll(".swatches span").length`); swatches != 4 {
		t.Errorf("gameboy palette shows %d swatches, want 4", swatches)
	}
	for _, c := range colors {
		if !slices.Contains([]string{"#0f380f", "#306230", "#8bac0f", "#9bbc0f"}, c) {
			t.Errorf("dither preview has colour %s, not in the gameboy palette (colours: %v)", c, colors)
			break
		}
	}
	if len(colors) < 2 {
		t.Errorf("dither preview has colours %v, want several of the palette", colors)
	}
	b.shot("dither")

	// An upload by another client appears without a reload.
	mp, ct = multipartBody(t, "other.png", imgtest.Read(t, "photos/jpeg-baseline-small.jpg"), nil)
	resp, body = e.do("POST", "/api/v1/images", mp, http.Header{"Content-Type": {ct}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("second upload = %d %s", resp.StatusCode, body)
	}
	other := decode[imgd.Image](t, body)
	b.waitFor("the image uploaded elsewhere", `document.querySelector('#images button[data-id="`+other.ID+`"]')`)

	// Drag and drop of two files at once: the drop a browser delivers,
	// with files made from an image's bytes.
	b.do("drop two files", chromedp.Evaluate[chromedp.Void](`(async () => {
		const blob = await (await fetch("/api/v1/images/`+im.ID+`/content")).blob();
		const dt = new DataTransfer();
		dt.items.add(new File([blob], "dropped-1.jpg", {type: "image/jpeg"}));
		dt.items.add(new File([blob], "dropped-2.jpg", {type: "image/jpeg"}));
		document.getElementById("drop").dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
	})()`, chromedp.EvalAwaitPromise))
	b.waitFor("the dropped uploads", `document.querySelectorAll('#uploads li[data-state="done"]').length === 2`)
	_, body = e.do("GET", "/api/v1/images", nil, nil)
	var names []string
	for _, x := range decode[struct{ Items []imgd.Image }](t, body).Items {
		names = append(names, x.Filename)
	}
	slices.Sort(names)
	if want := []string{"dropped-1.jpg", "dropped-2.jpg", "other.png", "street.jpg"}; !slices.Equal(names, want) {
		t.Errorf("images after the drop = %v, want %v", names, want)
	}
	b.shot("dropped")

	// The status filter of the task list.
	b.do("show pending tasks", chromedp.SetValue(chromedp.ID("status-filter"), "pending"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("status-filter").dispatchEvent(new Event("change"))`))
	if n := eval[int](b, `document.querySelectorAll("#tasks li").length`); n != 0 {
		t.Errorf("filter pending shows %d tasks, want 0 (the one task is canceled)", n)
	}
	b.do("show canceled tasks", chromedp.SetValue(chromedp.ID("status-filter"), "canceled"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("status-filter").dispatchEvent(new Event("change"))`))
	if got := eval[string](b, `[...document.querySelectorAll("#tasks li")].map(li => li.dataset.id).join()`); got != taskID {
		t.Errorf("filter canceled shows tasks %q, want %q", got, taskID)
	}

	// prefers-color-scheme: dark gives a dark page.
	light := eval[string](b, `getComputedStyle(document.body).backgroundColor`)
	b.do("dark mode", func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
		return chromedp.Void{}, err
	})
	if dark := eval[string](b, `getComputedStyle(document.body).backgroundColor`); dark != "rgb(17, 19, 24)" || light != "rgb(246, 247, 249)" {
		t.Errorf("body background light %s, dark %s; want rgb(246, 247, 249) and rgb(17, 19, 24)", light, dark)
	}
	b.shot("dark")

	// A phone's width: nothing wider than the screen.
	b.do("phone width", chromedp.EmulateViewport(390, 844))
	if w := eval[int](b, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("page is %d px wide at a 390 px viewport", w)
	}
	b.shot("phone")

	if bad := badMessages(b.console(0), "status of 400", "status of 413"); len(bad) > 0 {
		t.Errorf("console:\n%s", strings.Join(bad, "\n"))
	}
}

// TestWebPageGalleryPages pages through the gallery with the cursor API.
func TestWebPageGalleryPages(t *testing.T) {
	b := newBrowser(t)
	e, url := newWebEnv(t, envOptions{workers: -1})
	photo := imgtest.Read(t, "photos/jpeg-baseline-small.jpg")
	const n = 30 // the page asks for 24 at a time
	for i := range n {
		mp, ct := multipartBody(t, fmt.Sprintf("p%02d.jpg", i), photo, nil)
		if resp, body := e.do("POST", "/api/v1/images", mp, http.Header{"Content-Type": {ct}}); resp.StatusCode != http.StatusCreated {
			t.Fatalf("upload %d = %d %s", i, resp.StatusCode, body)
		}
	}
	b.do("load the page", chromedp.Navigate(url+"/"))
	b.waitFor("the first page", `document.querySelectorAll("#images button").length === 24`)
	if hidden := eval[bool](b, `document.getElementById("more").hidden`); hidden {
		t.Fatal("no way to load more images after the first page")
	}
	// Scrolling to the end loads the next page; so does the button (when
	// the scroll has not already done it).
	b.do("load more", chromedp.Evaluate[chromedp.Void](`(m => { m.scrollIntoView(); if (!m.hidden) m.click(); })(document.getElementById("more"))`))
	b.waitFor("every image", `document.querySelectorAll("#images button").length === `+fmt.Sprint(n)+` && document.getElementById("more").hidden`)
	names := eval[[]string](b, `[...document.querySelectorAll("#images button span:first-of-type")].map(s => s.textContent)`)
	for i, name := range names { // newest first, each once
		if want := fmt.Sprintf("p%02d.jpg", n-1-i); name != want {
			t.Fatalf("gallery[%d] = %s, want %s (all: %v)", i, name, want, names)
		}
	}
	b.shot("gallery")
	if bad := badMessages(b.console(0)); len(bad) > 0 {
		t.Errorf("console:\n%s", strings.Join(bad, "\n"))
	}
}

// TestWebMounted: the API server serves the page at / and its assets, and
// other paths still get the API's JSON 404.
func TestWebMounted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	resp, body := e.do("GET", "/", nil, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" ||
		resp.Header.Get("Content-Security-Policy") != web.CSP || !strings.Contains(string(body), "/static/app.js?v=") {
		t.Errorf("GET / = %d %s, CSP %q, want the page", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Security-Policy"))
	}
	if resp, _ := e.do("GET", "/static/app.js", nil, nil); resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("GET /static/app.js = %d %s, want 200 JavaScript", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp, body := e.do("GET", "/nope", nil, nil); resp.StatusCode != http.StatusNotFound || errorCode(t, body) != "not_found" {
		t.Errorf("GET /nope = %d %s, want the API's 404", resp.StatusCode, body)
	}
}

// checkLabels checks that every control has a name a screen reader can say.
func (b *browser) checkLabels() {
	b.t.Helper()
	if unnamed := eval[[]string](b, `[...document.querySelectorAll("input, select, textarea, button")]
		.filter(c => !(c.labels && c.labels.length) && !c.getAttribute("aria-label") && !c.textContent.trim())
		.map(c => c.outerHTML.slice(0, 80))`); len(unnamed) > 0 {
		b.t.Errorf("controls without a label: %v", unnamed)
	}
}

// openUploaded uploads a file by the page's file input and opens it,
// returning the image as the API has it.
func (b *browser) openUploaded(e *env, file string) imgd.Image {
	b.t.Helper()
	b.do("choose "+filepath.Base(file), chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{file}))
	b.waitFor("the upload of "+filepath.Base(file), `[...document.querySelectorAll('#uploads li[data-state="done"]')].some(li => li.dataset.name === `+jsString(filepath.Base(file))+`)`)
	_, body := e.do("GET", "/api/v1/images?limit=1", nil, nil)
	items := decode[struct{ Items []imgd.Image }](b.t, body).Items
	if len(items) == 0 || items[0].Filename != filepath.Base(file) {
		b.t.Fatalf("newest image after uploading %s: %s", file, body)
	}
	im := items[0]
	b.waitFor("the image in the gallery", `document.querySelector('#images button[data-id="`+im.ID+`"]')`)
	b.do("open the image", chromedp.Click(chromedp.CSS(`#images button[data-id="`+im.ID+`"]`)))
	b.waitFor("the image panel", `!document.getElementById("detail").hidden && document.getElementById("meta").textContent.includes("`+im.ID+`")`)
	return im
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// setField sets a field of the pipeline form and tells the page, as a
// user's change would.
func (b *browser) setField(sel, value string) {
	b.t.Helper()
	b.do("set "+sel, chromedp.Evaluate[chromedp.Void](`(f => { f.value = `+jsString(value)+`; f.dispatchEvent(new Event("change", {bubbles: true})); })(document.querySelector(`+jsString(sel)+`))`))
}

// submitWatched submits the form and waits until the new task is final on
// the page. Its status must come from the event stream: the page asks for
// no task status after submitting (results and variants, which are images,
// may load). It returns the task as the API has it.
func (b *browser) submitWatched(e *env) imgd.Task {
	b.t.Helper()
	b.do("watch the tasks", chromedp.Evaluate[chromedp.Void](`
		window.__known = new Set([...document.querySelectorAll("#tasks li")].map(li => li.dataset.id));
		performance.clearResourceTimings();`))
	b.do("submit", chromedp.Click(chromedp.ID("submit")))
	final := `["completed", "completed_with_errors", "failed", "canceled"].includes(li.dataset.status)`
	b.do("wait for the new task to finish", chromedp.Poll[chromedp.Void](
		`[...document.querySelectorAll("#tasks li")].some(li => !window.__known.has(li.dataset.id) && `+final+`)`,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(60*time.Second)))
	id := eval[string](b, `[...document.querySelectorAll("#tasks li")].find(li => !window.__known.has(li.dataset.id)).dataset.id`)
	fetched := eval[[]string](b, `performance.getEntriesByType("resource").map(r => r.name)
		.filter(n => n.includes("/api/v1/") && !n.endsWith("/api/v1/tasks") && !n.endsWith("/result") && !/\/variants\/\d+$/.test(n))`)
	if len(fetched) > 0 {
		b.t.Errorf("the page fetched %v after submitting: the status must come from the event stream", fetched)
	}
	return e.waitTask(id, 10*time.Second)
}

// outputShown returns the text the page shows for key of a step's output
// in the task's item, or "" when it shows none.
func outputShown(b *browser, taskID, op, key string) string {
	return eval[string](b, `(s => s ? s.textContent : "")(document.querySelector('#tasks li[data-id="`+taskID+`"] .outputs dd[data-op="`+op+`"] [data-key="`+key+`"]'))`)
}

// checkOutputsShown checks that the page shows every field of a completed
// task's outputs.<op> as the API has it, and returns those outputs.
func checkOutputsShown(b *browser, task imgd.Task, op string) map[string]any {
	b.t.Helper()
	var outs map[string]map[string]any
	if err := json.Unmarshal(task.Result.Outputs, &outs); err != nil || len(outs[op]) == 0 {
		b.t.Fatalf("task outputs %s: want outputs.%s (%v)", task.Result.Outputs, op, err)
	}
	for k, v := range outs[op] {
		got := outputShown(b, task.ID, op, k)
		label := strings.ReplaceAll(k, "_", " ") + " "
		want, ok := label+fmt.Sprint(v), false
		switch v := v.(type) {
		case bool:
			want = label + map[bool]string{true: "yes", false: "no"}[v]
		case float64:
			switch k {
			case "bytes": // "bytes 12.3 KB (12345 bytes)"
				want = label + "… " + fmt.Sprintf("(%d bytes)", int64(v))
				ok = strings.HasPrefix(got, label) && strings.HasSuffix(got, fmt.Sprintf("(%d bytes)", int64(v)))
			case "angle", "skew":
				want = label + strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64) + "°"
			default:
				want = label + strconv.FormatFloat(math.Round(v*10000)/10000, 'f', -1, 64)
			}
		case map[string]any, []any: // lists and objects in words: not compared here
			ok = strings.HasPrefix(got, label)
		}
		if got != want && !ok {
			b.t.Errorf("outputs.%s.%s = %v shown as %q, want %q", op, k, v, got, want)
		}
	}
	return outs[op]
}

// runEngine runs a pipeline on data with the env's engine.
func runEngine(t *testing.T, e *env, data []byte, pipeline string) []byte {
	t.Helper()
	r, err := e.Svc.Engine.Run(t.Context(), data, imgd.MustParsePipeline(pipeline))
	if err != nil {
		t.Fatalf("engine run %s: %v", pipeline, err)
	}
	return r.Data
}

// TestWebPageCompress builds a compress step with an SSIM target from the
// form, follows it to completed over SSE, and checks what the page shows
// against the API: the step's outputs, the size and the savings.
func TestWebPageCompress(t *testing.T) {
	b := newBrowser(t)
	e, url := newWebEnv(t, envOptions{})
	b.do("load the page", chromedp.Navigate(url+"/"))
	b.waitFor("the event stream", `document.getElementById("live").dataset.state === "live"`)
	im := b.openUploaded(e, imgtest.Path(t, "photos/jpeg-icc.jpg"))

	b.do("add a compress step", chromedp.SetValue(chromedp.ID("add-op"), "compress"), chromedp.Click(chromedp.ID("add-step")))
	step := `#steps li[data-op="compress"] `
	if !eval[bool](b, `document.querySelector('`+step+`[name="ssim"]').disabled`) {
		t.Error("the SSIM field is enabled while a named quality level is chosen")
	}
	if got, want := eval[string](b, `document.getElementById("pipeline-json").value`), `[{"op":"compress","format":"auto","quality":"high"}]`; got != want {
		t.Errorf("default compress pipeline = %s, want %s", got, want)
	}
	b.setField(step+`select[name="format"]`, "webp")
	b.setField(step+`select[name="quality"]`, "ssim")
	if eval[bool](b, `document.querySelector('`+step+`[name="ssim"]').disabled`) {
		t.Error("the SSIM field is disabled with the SSIM target chosen")
	}
	b.setField(step+`input[name="ssim"]`, "0.97")
	pipeline := eval[string](b, `document.getElementById("pipeline-json").value`)
	if want := `[{"op":"compress","format":"webp","target":{"ssim":0.97}}]`; pipeline != want {
		t.Errorf("compress pipeline = %s, want %s", pipeline, want)
	}
	if curl := eval[string](b, `document.getElementById("curl").value`); !strings.Contains(curl, `"pipeline":`+pipeline) {
		t.Errorf("curl command = %q, want the pipeline %s", curl, pipeline)
	}
	b.checkLabels()
	b.shot("compress-form")

	task := b.submitWatched(e)
	if task.Status != imgd.TaskCompleted || task.Result == nil || task.Result.Format != imgd.FormatWebP {
		t.Fatalf("compress task = %+v, want completed as WebP", task)
	}
	li := `#tasks li[data-id="` + task.ID + `"] `
	b.waitFor("the outputs", `document.querySelector('`+li+`.outputs dd[data-op="compress"]')`)
	b.shot("compress-done")
	outs := checkOutputsShown(b, task, "compress")
	for _, k := range []string{"format", "quality_used", "score", "bytes"} {
		if _, ok := outs[k]; !ok {
			t.Errorf("outputs.compress has no %s: %v", k, outs)
		}
	}
	// The size and the savings against the original, in bytes and percent.
	if got, want := eval[string](b, `document.querySelector('`+li+`.bytes').textContent`), fmt.Sprintf("(%d bytes)", task.Result.Bytes); !strings.HasSuffix(got, want) {
		t.Errorf("result size shown = %q, want it to end with %q", got, want)
	}
	saved := im.Bytes - task.Result.Bytes
	pct := strconv.FormatFloat(math.Round(math.Abs(float64(saved))*1000/float64(im.Bytes))/10, 'f', -1, 64)
	if got, want := eval[string](b, `document.querySelector('`+li+`.saving').textContent`), fmt.Sprintf("(%d bytes, %s%%)", max(saved, -saved), pct); !strings.HasSuffix(got, want) || !strings.HasPrefix(got, map[bool]string{true: "saves ", false: "adds "}[saved >= 0]) {
		t.Errorf("savings shown = %q, want %s… ending %q", got, map[bool]string{true: "saves", false: "adds"}[saved >= 0], want)
	}
	// The download is the WebP the task describes.
	href := eval[string](b, `document.querySelector('`+li+`a.download').getAttribute("href")`)
	resp, data := fetch(t, "GET", url+href, nil, nil)
	info, err := e.Svc.Engine.Probe(data)
	if resp.StatusCode != http.StatusOK || err != nil || info.Format != imgd.FormatWebP || int64(len(data)) != task.Result.Bytes || info.Width != im.Width {
		t.Errorf("download %s = %d, %+v, %d bytes, %v; want the %d-byte WebP %d wide", href, resp.StatusCode, info, len(data), err, task.Result.Bytes, im.Width)
	}
	if bad := badMessages(b.console(0)); len(bad) > 0 {
		t.Errorf("console:\n%s", strings.Join(bad, "\n"))
	}
}

// TestWebPageOrientation uploads a document page turned a quarter turn,
// runs detect_orientation with fix from the form, and checks that the page
// shows the detected angle (as the API reports it) and that the result is
// the upright page; then deskews a page turned 4° and sees the skew.
func TestWebPageOrientation(t *testing.T) {
	b := newBrowser(t)
	e, url := newWebEnv(t, envOptions{})
	page := imgtest.Read(t, "documents/doc-page-150dpi-gray.jpg")
	upright := runEngine(t, e, page, `[{"op":"resize","width":620},{"op":"convert","format":"png"}]`)
	turned := filepath.Join(t.TempDir(), "turned-page.png")
	if err := os.WriteFile(turned, runEngine(t, e, upright, `[{"op":"rotate","angle":90}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	b.do("load the page", chromedp.Navigate(url+"/"))
	b.waitFor("the event stream", `document.getElementById("live").dataset.state === "live"`)
	im := b.openUploaded(e, turned)
	if im.Width <= im.Height {
		t.Fatalf("turned page is %d×%d, want landscape", im.Width, im.Height)
	}

	b.do("add a detect_orientation step", chromedp.SetValue(chromedp.ID("add-op"), "detect_orientation"), chromedp.Click(chromedp.ID("add-step")),
		chromedp.Click(chromedp.CSS(`#steps li[data-op="detect_orientation"] input[name="fix"]`)))
	if got, want := eval[string](b, `document.getElementById("pipeline-json").value`), `[{"op":"detect_orientation","fix":true}]`; got != want {
		t.Errorf("pipeline = %s, want %s", got, want)
	}
	b.checkLabels()
	b.shot("orientation-form")
	task := b.submitWatched(e)
	if task.Status != imgd.TaskCompleted || task.Result == nil {
		t.Fatalf("detect_orientation task = %+v, want completed", task)
	}
	b.waitFor("the outputs", `document.querySelector('#tasks li[data-id="`+task.ID+`"] .outputs dd[data-op="detect_orientation"]')`)
	b.shot("orientation-done")
	outs := checkOutputsShown(b, task, "detect_orientation")
	angle, ok := outs["angle"].(float64)
	if !ok {
		t.Fatalf("outputs.detect_orientation = %v, want an angle", outs)
	}
	if a := math.Mod(angle+360, 360); math.Abs(a-90) > 1 && math.Abs(a-270) > 1 {
		t.Errorf("detected angle %v for a page turned a quarter turn, want 90 or 270", angle)
	}
	// The fixed result is the upright page, not the page upside down.
	if got, want := eval[string](b, `document.querySelector('#tasks li[data-id="`+task.ID+`"] .dims').textContent`),
		fmt.Sprintf("%d×%d %s", task.Result.Width, task.Result.Height, task.Result.Format); got != want {
		t.Errorf("result dimensions shown = %q, want %q", got, want)
	}
	href := eval[string](b, `document.querySelector('#tasks li[data-id="`+task.ID+`"] a.download').getAttribute("href")`)
	_, fixed := fetch(t, "GET", url+href, nil, nil)
	small := `[{"op":"resize","width":62,"height":88,"fit":"fill"},{"op":"grayscale"},{"op":"convert","format":"png"}]`
	decodePNG := func(b []byte) image.Image {
		m, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		return m
	}
	got := decodePNG(runEngine(t, e, fixed, small))
	up := decodePNG(runEngine(t, e, upright, small))
	down := decodePNG(runEngine(t, e, runEngine(t, e, upright, `[{"op":"rotate","angle":180}]`), small))
	if du, dd := meanAbsDiff(got, up), meanAbsDiff(got, down); du >= dd/2 {
		t.Errorf("fixed page differs from the upright page by %.1f and from it upside down by %.1f: not upright", du, dd)
	}

	// Deskew, from its form, on the page turned 4°: the skew it measured.
	skewed := filepath.Join(t.TempDir(), "skewed-page.png")
	if err := os.WriteFile(skewed, runEngine(t, e, upright, `[{"op":"rotate","angle":4,"background":"#ffffff"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	b.openUploaded(e, skewed)
	b.do("replace the step with deskew",
		chromedp.Click(chromedp.CSS(`#steps li[data-op="detect_orientation"] button[aria-label="Remove detect_orientation"]`)),
		chromedp.SetValue(chromedp.ID("add-op"), "deskew"), chromedp.Click(chromedp.ID("add-step")))
	b.setField(`#steps li[data-op="deskew"] input[name="max_angle"]`, "10")
	if got, want := eval[string](b, `document.getElementById("pipeline-json").value`), `[{"op":"deskew","max_angle":10}]`; got != want {
		t.Errorf("pipeline = %s, want %s", got, want)
	}
	b.checkLabels()
	task = b.submitWatched(e)
	if task.Status != imgd.TaskCompleted || task.Result == nil {
		t.Fatalf("deskew task = %+v, want completed", task)
	}
	b.waitFor("the deskew outputs", `document.querySelector('#tasks li[data-id="`+task.ID+`"] .outputs dd[data-op="deskew"]')`)
	b.shot("deskew-done")
	outs = checkOutputsShown(b, task, "deskew")
	if skew, _ := outs["skew"].(float64); math.Abs(math.Abs(skew)-4) > 0.5 {
		t.Errorf("deskew measured %v° on a page turned 4°", outs["skew"])
	}
	if bad := badMessages(b.console(0)); len(bad) > 0 {
		t.Errorf("console:\n%s", strings.Join(bad, "\n"))
	}
}

// TestWebPageResponsive builds responsive sets from the form: one whose
// variants all succeed, listed with working downloads and the srcset, and
// one with widths over the output limit, which ends completed_with_errors
// with the failed variants' errors shown.
func TestWebPageResponsive(t *testing.T) {
	b := newBrowser(t)
	limits := engine.DefaultLimits()
	limits.MaxOutputDimension = 1000
	e, url := newWebEnv(t, envOptions{limits: limits})
	b.do("load the page", chromedp.Navigate(url+"/"))
	b.waitFor("the event stream", `document.getElementById("live").dataset.state === "live"`)
	im := b.openUploaded(e, imgtest.Path(t, "photos/jpeg-baseline-small.jpg"))

	b.do("add a responsive step", chromedp.SetValue(chromedp.ID("add-op"), "responsive"), chromedp.Click(chromedp.ID("add-step")))
	step := `#steps li[data-op="responsive"] `
	b.setField(step+`input[name="widths"]`, "160, 320")
	b.setField(step+`select[name="quality"]`, "medium")
	if got, want := eval[string](b, `document.getElementById("pipeline-json").value`), `[{"op":"responsive","widths":[160,320],"formats":["webp","jpeg"],"quality":"medium"}]`; got != want {
		t.Errorf("responsive pipeline = %s, want %s", got, want)
	}
	b.checkLabels()
	b.shot("responsive-form")
	task := b.submitWatched(e)
	if task.Status != imgd.TaskCompleted || task.Result == nil || len(task.Result.Variants) != 4 {
		t.Fatalf("responsive task = %+v, want completed with 4 variants", task)
	}
	li := `#tasks li[data-id="` + task.ID + `"] `
	b.waitFor("the variants", `document.querySelectorAll('`+li+`.variants tbody tr').length === 4`)
	b.shot("responsive-done")
	for _, v := range task.Result.Variants {
		row := li + `.variants tr[data-index="` + strconv.Itoa(v.Index) + `"] `
		if got, want := eval[string](b, `document.querySelector('`+row+`.dims').textContent`), fmt.Sprintf("%d×%d %s", v.Width, v.Height, v.Format); got != want {
			t.Errorf("variant %d shown as %q, want %q", v.Index, got, want)
		}
		var vo struct {
			Compress struct {
				QualityUsed *float64 `json:"quality_used"`
			} `json:"compress"`
		}
		if err := json.Unmarshal(v.Outputs, &vo); err != nil || vo.Compress.QualityUsed == nil {
			t.Errorf("variant %d outputs %s: want compress.quality_used (%v)", v.Index, v.Outputs, err)
		} else if got, want := eval[string](b, `document.querySelector('`+row+`.encoding').textContent`), fmt.Sprintf("q %g", *vo.Compress.QualityUsed); !strings.HasPrefix(got, want) {
			t.Errorf("variant %d encoding shown as %q, want it to start with %q", v.Index, got, want)
		}
		href := eval[string](b, `document.querySelector('`+row+`a.download').getAttribute("href")`)
		if want := imgd.VariantURL(task.ID, v.Index); href != want {
			t.Errorf("variant %d links %s, want %s", v.Index, href, want)
		}
		// The link works from the page's origin, and gives that variant.
		resp, data := fetch(t, "GET", url+href, nil, nil)
		info, err := e.Svc.Engine.Probe(data)
		if resp.StatusCode != http.StatusOK || err != nil || info.Format != v.Format || info.Width != v.Width || int64(len(data)) != v.Bytes {
			t.Errorf("GET %s = %d, %+v, %d bytes, %v; want the %d-byte %s %d wide", href, resp.StatusCode, info, len(data), err, v.Bytes, v.Format, v.Width)
		}
	}
	for f, want := range task.Result.Srcset {
		if got := eval[string](b, `(c => c ? c.textContent : "")(document.querySelector('`+li+`.srcset code[data-format="`+string(f)+`"]'))`); got != want {
			t.Errorf("srcset %s shown as %q, want %q", f, got, want)
		}
	}
	if len(task.Result.Srcset) != 2 {
		t.Errorf("task srcset = %v, want webp and jpeg", task.Result.Srcset)
	}
	if eval[bool](b, `!!document.querySelector('`+li+`.compare-btn')`) {
		t.Error("a responsive set offers a comparison with its manifest")
	}
	// After a reload the set comes from the image's task list: the same.
	shown := eval[string](b, `document.querySelector('`+li+`.variants').textContent`)
	b.do("reload", chromedp.Reload())
	b.waitFor("the gallery", `document.querySelector('#images button[data-id="`+im.ID+`"]')`)
	b.do("open the image", chromedp.Click(chromedp.CSS(`#images button[data-id="`+im.ID+`"]`)))
	b.waitFor("the variants after the reload", `document.querySelector('`+li+`.variants')`)
	if got := eval[string](b, `document.querySelector('`+li+`.variants').textContent`); got != shown {
		t.Errorf("after a reload the set shows %q, want %q as before", got, shown)
	}
	b.do("add the responsive step again", chromedp.SetValue(chromedp.ID("add-op"), "responsive"), chromedp.Click(chromedp.ID("add-step")))

	// Enlarged past the output limit: those variants fail, the rest do not.
	b.do("allow enlarging", chromedp.Click(chromedp.CSS(step+`input[name="enlarge"]`)))
	b.setField(step+`input[name="widths"]`, "200,1200")
	b.setField(step+`select[name="quality"]`, "medium")
	task = b.submitWatched(e)
	if task.Status != imgd.TaskCompletedWithErrors || task.Result == nil {
		t.Fatalf("responsive task over the limit = %+v, want completed_with_errors", task)
	}
	li = `#tasks li[data-id="` + task.ID + `"] `
	b.waitFor("the variants", `document.querySelector('`+li+`.variants')`)
	b.shot("responsive-errors")
	if got := eval[string](b, `document.querySelector('`+li+`.status').textContent`); got != "completed_with_errors" {
		t.Errorf("status shown = %q, want completed_with_errors", got)
	}
	failed := 0
	for _, v := range task.Result.Variants {
		row := li + `.variants tr[data-index="` + strconv.Itoa(v.Index) + `"] `
		if v.Failed() {
			failed++
			got := eval[string](b, `(c => c ? c.textContent : "")(document.querySelector('`+row+`.error'))`)
			if !strings.Contains(got, v.ErrorMessage) || !strings.HasPrefix(got, "Over the size limits") && v.ErrorCode == imgd.CodeOverLimit {
				t.Errorf("failed variant %d (%s: %s) shown as %q", v.Index, v.ErrorCode, v.ErrorMessage, got)
			}
			if got, want := eval[string](b, `document.querySelector('`+row+`.asked').textContent`), fmt.Sprintf("%dw %s", v.Width, v.Format); got != want {
				t.Errorf("failed variant %d shown as asked for %q, want %q", v.Index, got, want)
			}
			continue
		}
		if eval[bool](b, `!document.querySelector('`+row+`a.download')`) {
			t.Errorf("variant %d succeeded but has no download link", v.Index)
		}
	}
	if failed == 0 || failed == len(task.Result.Variants) {
		t.Fatalf("variants %+v: want some failed (over %d px) and some not", task.Result.Variants, limits.MaxOutputDimension)
	}
	if got, want := eval[string](b, `document.querySelector('`+li+`.variant-errors').textContent`), fmt.Sprintf("%d of %d variants failed", failed, len(task.Result.Variants)); got != want {
		t.Errorf("variant errors summary = %q, want %q", got, want)
	}
	// The variants table fits a phone's width (it scrolls inside its box).
	b.do("phone width", chromedp.EmulateViewport(390, 844))
	if w := eval[int](b, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("page is %d px wide at a 390 px viewport", w)
	}
	b.shot("responsive-phone")
	// The status filter knows the new status.
	b.setField("#status-filter", "completed_with_errors")
	if got := eval[string](b, `[...document.querySelectorAll("#tasks li")].map(li => li.dataset.id).join()`); got != task.ID {
		t.Errorf("filter completed_with_errors shows %q, want %q", got, task.ID)
	}
	if bad := badMessages(b.console(0)); len(bad) > 0 {
		t.Errorf("console:\n%s", strings.Join(bad, "\n"))
	}
}
