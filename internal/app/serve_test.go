package app_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/blob/s3test"
	"github.com/imgd/imgd/internal/imgtest"
	"github.com/imgd/imgd/internal/store/storetest"
)

// These tests run the real imgd binary, as a user would: built once, started
// on a loopback port with a temporary data directory, stopped with signals.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// imgdBinary builds cmd/imgd once per test run.
func imgdBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "imgd-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "imgd")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/imgd")
		cmd.Dir = imgtest.Root(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// daemon is one running imgd process.
type daemon struct {
	t    *testing.T
	cmd  *exec.Cmd
	URL  string
	done chan error // receives Wait's result
	mu   sync.Mutex
	logs bytes.Buffer
}

// startDaemon starts `imgd <role>` with the data directory and extra
// environment, and waits until it listens.
func startDaemon(t *testing.T, role, dataDir string, env ...string) *daemon {
	t.Helper()
	cmd := exec.Command(imgdBinary(t), role)
	cmd.Env = append(os.Environ(), "IMGD_ADDR=127.0.0.1:0", "IMGD_DATA_DIR="+dataDir, "IMGD_LOG_FORMAT=json",
		"IMGD_LOG_LEVEL=info")
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, cmd: cmd, done: make(chan error, 1)}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			d.mu.Lock()
			d.logs.Write(line)
			d.logs.WriteByte('\n')
			d.mu.Unlock()
			var rec struct {
				Msg string `json:"msg"`
				URL string `json:"url"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "imgd started" {
				urls <- rec.URL
			}
		}
		d.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			_ = d.cmd.Process.Kill() // only the process this test started
			<-d.done
		}
		if t.Failed() {
			t.Logf("imgd %s logs:\n%s", role, d.Logs())
		}
	})
	select {
	case d.URL = <-urls:
		return d
	case err := <-d.done:
		t.Fatalf("imgd %s exited before listening: %v\n%s", role, err, d.Logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("imgd %s did not start in 30 s\n%s", role, d.Logs())
	}
	return nil
}

func (d *daemon) Logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logs.String()
}

// signal sends sig and waits for the process to exit, returning its exit
// code (-1 when killed by a signal).
func (d *daemon) signal(sig syscall.Signal, timeout time.Duration) int {
	d.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatal(err)
	}
	select {
	case <-d.done:
		return d.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		d.t.Fatalf("imgd did not exit within %s of %s", timeout, sig)
	}
	return 0
}

// call sends a request and decodes a JSON answer into out (when not nil),
// failing unless the status is want.
func (d *daemon) call(method, path string, body io.Reader, contentType string, want int, out any) {
	d.t.Helper()
	req, err := http.NewRequest(method, d.URL+path, body)
	if err != nil {
		d.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		d.t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			d.t.Fatalf("%s %s: %v\n%s", method, path, err, b)
		}
	}
}

func (d *daemon) upload(rel string) imgd.Image {
	d.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", filepath.Base(rel))
	fw.Write(imgtest.Read(d.t, rel))
	mw.Close()
	var im imgd.Image
	d.call("POST", "/api/v1/images", &buf, mw.FormDataContentType(), http.StatusCreated, &im)
	return im
}

func (d *daemon) createTask(imageID, pipeline string) imgd.Task {
	d.t.Helper()
	var task imgd.Task
	body := fmt.Sprintf(`{"image_id":%q,"pipeline":%s}`, imageID, pipeline)
	d.call("POST", "/api/v1/tasks", strings.NewReader(body), "application/json", http.StatusAccepted, &task)
	return task
}

func (d *daemon) task(id string) imgd.Task {
	d.t.Helper()
	var task imgd.Task
	d.call("GET", "/api/v1/tasks/"+id, nil, "", http.StatusOK, &task)
	return task
}

// slowTasks creates n tasks that each take a while (a rotation by an
// arbitrary angle and an error-diffusion dither of a 1600 px photo) and that
// differ, so that none reuses another's result.
func slowTasks(d *daemon, n int) []string {
	im := d.upload("photos/jpeg-large-baseline.jpg")
	ids := make([]string, n)
	for i := range ids {
		p := fmt.Sprintf(`[{"op":"resize","width":1600},{"op":"rotate","angle":%d.5,"background":"#ffffff"},{"op":"dither","method":"stucki","palette":"pico8"},{"op":"convert","format":"png"}]`, i+1)
		ids[i] = d.createTask(im.ID, p).ID
	}
	return ids
}

// waitProcessing waits until one of ids is processing.
func waitProcessing(t *testing.T, d *daemon, ids []string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, id := range ids {
			if d.task(id).Status == imgd.TaskProcessing {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no task started processing in 30 s")
}

// waitAllCompleted waits until every task is completed, failing on a
// task that fails or is canceled.
func waitAllCompleted(t *testing.T, d *daemon, ids []string, timeout time.Duration) []imgd.Task {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tasks := make([]imgd.Task, len(ids))
	for i, id := range ids {
		for {
			tasks[i] = d.task(id)
			if tasks[i].Status == imgd.TaskCompleted {
				break
			}
			if tasks[i].Status.Final() {
				t.Fatalf("task %s ended %s (%s: %s), want completed", id, tasks[i].Status, tasks[i].ErrorCode, tasks[i].ErrorMessage)
			}
			if time.Now().After(deadline) {
				t.Fatalf("task %s still %s after %s", id, tasks[i].Status, timeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return tasks
}

// TestServeSIGKILLRestart kills the server with tasks in flight and starts
// it again on the same data directory: every task completes exactly once,
// within seconds of the restart, and each has exactly one result blob.
func TestServeSIGKILLRestart(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, "serve", dir, "IMGD_WORKERS=2")
	ids := slowTasks(d, 6)
	waitProcessing(t, d, ids)
	if code := d.signal(syscall.SIGKILL, 10*time.Second); code != -1 {
		t.Fatalf("exit code after SIGKILL = %d, want -1 (killed)", code)
	}

	restart := time.Now()
	d = startDaemon(t, "serve", dir, "IMGD_WORKERS=2")
	tasks := waitAllCompleted(t, d, ids, 2*time.Minute)
	t.Logf("all %d tasks completed %s after the restart", len(ids), time.Since(restart).Round(time.Millisecond))
	if !strings.Contains(d.Logs(), "requeued tasks interrupted by an earlier crash") {
		t.Error("the restarted server did not report requeuing the interrupted tasks")
	}

	// Exactly once: one completed River job per task, and the results are
	// distinct blobs that all exist.
	var jobs struct {
		Items []json.RawMessage `json:"items"`
	}
	d.call("GET", "/api/v1/tasks?limit=100", nil, "", http.StatusOK, &jobs)
	if len(jobs.Items) != len(ids) {
		t.Errorf("GET /api/v1/tasks lists %d tasks, want %d", len(jobs.Items), len(ids))
	}
	seen := map[string]bool{}
	for _, task := range tasks {
		if task.Result == nil || task.Result.Bytes == 0 {
			t.Fatalf("task %s completed without a result", task.ID)
		}
		resp, err := http.Get(d.URL + "/api/v1/tasks/" + task.ID + "/result")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || int64(len(b)) != task.Result.Bytes {
			t.Errorf("result of %s: %d, %d bytes, want 200 and %d bytes", task.ID, resp.StatusCode, len(b), task.Result.Bytes)
		}
		key := fmt.Sprintf("%x", sha256.Sum256(b))
		if seen[key] {
			t.Errorf("two tasks share a result: pipelines differ, so results must too")
		}
		seen[key] = true
	}
	// One original and one result per task; nothing else, nothing left in tmp.
	blobs, _ := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*", "*"))
	if len(blobs) != len(ids)+1 {
		t.Errorf("%d blobs stored, want %d (the original and one result per task)", len(blobs), len(ids)+1)
	}
	if code := d.signal(syscall.SIGTERM, 40*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
}

// TestServeGracefulShutdown stops the server with SIGTERM while tasks run:
// it exits 0 within the shutdown timeout, no task is left processing or
// failed, and after a restart they all complete.
func TestServeGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, "serve", dir, "IMGD_WORKERS=2", "IMGD_SHUTDOWN_TIMEOUT=1s")
	ids := slowTasks(d, 4)
	waitProcessing(t, d, ids)
	start := time.Now()
	if code := d.signal(syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("shutdown took %s with a 1 s shutdown timeout", took)
	}
	if !strings.Contains(d.Logs(), `"msg":"imgd stopped"`) {
		t.Error("no 'imgd stopped' log line")
	}

	d = startDaemon(t, "serve", dir, "IMGD_WORKERS=2")
	if strings.Contains(d.Logs(), "requeued tasks interrupted") {
		t.Error("after a graceful shutdown, the restart found interrupted jobs: shutdown did not re-queue them")
	}
	waitAllCompleted(t, d, ids, 2*time.Minute)

	// The process's metrics saw the tasks it ran and read the queue depth
	// from the database.
	resp, err := http.Get(d.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`imgd_queue_tasks{status="completed"} 4`,
		`imgd_task_duration_seconds_count{op="resize+rotate+dither+convert",outcome="completed"}`,
		`imgd_http_request_duration_seconds_count{code="200",route="GET /api/v1/tasks/{id}"}`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestServeOneWorkingProcessPerDataDir: a second serve on the same data
// directory refuses to start (it would run the first one's jobs again),
// with a message that says why.
func TestServeOneWorkingProcessPerDataDir(t *testing.T) {
	dir := t.TempDir()
	startDaemon(t, "serve", dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, imgdBinary(t), "serve")
	cmd.Env = append(os.Environ(), "IMGD_ADDR=127.0.0.1:0", "IMGD_DATA_DIR="+dir, "IMGD_LOG_FORMAT=text")
	out, err := cmd.CombinedOutput()
	if err == nil || cmd.ProcessState.ExitCode() != 3 {
		t.Fatalf("second imgd serve on the same data dir: %v, exit %d, want exit 3\n%s", err, cmd.ProcessState.ExitCode(), out)
	}
	if !strings.Contains(string(out), "in use by another imgd process") {
		t.Errorf("second serve's message does not say the data directory is in use:\n%s", out)
	}
}

// TestSubmit drives `imgd submit` against a running server: upload, task,
// events, download; then the failures a person meets.
func TestSubmit(t *testing.T) {
	d := startDaemon(t, "serve", t.TempDir())
	out := filepath.Join(t.TempDir(), "thumb.webp")
	run := func(args ...string) (int, string, string) {
		cmd := exec.Command(imgdBinary(t), append([]string{"submit"}, args...)...)
		cmd.Env = append(os.Environ(), "IMGD_SERVER="+d.URL)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		_ = cmd.Run()
		return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
	}

	code, stdout, stderr := run(imgtest.Path(t, "photos/jpeg-large-camera-exif.jpg"), "resize:w=64", "convert:webp", "--out", out)
	if code != 0 || !strings.HasSuffix(strings.TrimSpace(stdout), " completed") {
		t.Fatalf("submit = exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WEBP" {
		t.Errorf("%s is not a WebP file", out)
	}

	// --json prints the final task; the flag may come first.
	code, stdout, stderr = run("--json", "--wait", imgtest.Path(t, "png/png-gray.png"), `[{"op":"resize","width":10}]`)
	if code != 0 {
		t.Fatalf("submit --json = exit %d\n%s", code, stderr)
	}
	var task imgd.Task
	if err := json.Unmarshal([]byte(stdout), &task); err != nil || task.Status != imgd.TaskCompleted || task.Result.Width != 10 {
		t.Errorf("submit --json printed %q (%v), want a completed task 10 px wide", stdout, err)
	}

	for _, tc := range []struct {
		args     []string
		code     int
		inStderr string
	}{
		{[]string{imgtest.Path(t, "bad/text-named.jpg"), "resize:w=10"}, 1, "unsupported_image"},
		{[]string{imgtest.Path(t, "png/png-gray.png"), "blur"}, 2, "unknown"},
		{[]string{imgtest.Path(t, "png/png-gray.png")}, 2, "need FILE"},
		{[]string{"/nonexistent.png", "resize:w=10"}, 2, "no such file"},
		{[]string{"--server", "http://127.0.0.1:1", imgtest.Path(t, "png/png-gray.png"), "resize:w=10"}, 3, "cannot reach"},
	} {
		code, _, stderr := run(tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.inStderr) {
			t.Errorf("submit %q = exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, stderr, tc.code, tc.inStderr)
		}
	}
}

// TestServeS3Blobs runs the service with its blobs in a real S3-compatible
// server (versitygw): upload, task, result, delete, and nothing left in
// the data directory's blob store.
func TestServeS3Blobs(t *testing.T) {
	blobURL := s3test.Start(t)
	dir := t.TempDir()
	d := startDaemon(t, "serve", dir, append(s3test.Env(), "IMGD_BLOB_URL="+blobURL)...)
	im := d.upload("photos/jpeg-icc.jpg")
	task := d.createTask(im.ID, `[{"op":"resize","width":50},{"op":"convert","format":"png"}]`)
	done := waitAllCompleted(t, d, []string{task.ID}, time.Minute)[0]
	resp, err := http.Get(d.URL + "/api/v1/tasks/" + task.ID + "/result")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || int64(len(b)) != done.Result.Bytes || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatalf("result from S3: %d, %d bytes, want 200 and a %d-byte PNG", resp.StatusCode, len(b), done.Result.Bytes)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "blobs")); len(entries) != 0 {
		t.Errorf("with IMGD_BLOB_URL, the data directory has a blob store too: %v", entries)
	}
	d.call("DELETE", "/api/v1/images/"+im.ID, nil, "", http.StatusNoContent, nil)
	resp, err = http.Get(d.URL + "/api/v1/tasks/" + task.ID + "/result")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("result after deleting the image: %d, want 404", resp.StatusCode)
	}
}

// TestSharedSchemaCheck: processes on a shared PostgreSQL database do not
// migrate it; they refuse to start until `imgd migrate` has run, and when
// the schema is newer than they know.
func TestSharedSchemaCheck(t *testing.T) {
	dbURL := storetest.PostgresURL(t)
	run := func(args ...string) (int, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, imgdBinary(t), args...)
		cmd.Env = append(os.Environ(), "IMGD_DATABASE_URL="+dbURL, "IMGD_DATA_DIR="+t.TempDir(),
			"IMGD_ADDR=127.0.0.1:0", "IMGD_LOG_FORMAT=text")
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	for _, role := range []string{"api", "worker"} {
		if code, out := run(role); code != 3 || !strings.Contains(out, "run `imgd migrate` first") {
			t.Errorf("imgd %s on an unmigrated database: exit %d, want 3 and a hint to migrate:\n%s", role, code, out)
		}
	}
	if code, out := run("migrate"); code != 0 {
		t.Fatalf("imgd migrate: exit %d\n%s", code, out)
	}
	d := startDaemon(t, "api", t.TempDir(), "IMGD_DATABASE_URL="+dbURL)
	d.signal(syscall.SIGTERM, 30*time.Second)

	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), `INSERT INTO imgd_schema_version (version_id, is_applied) VALUES (9999, true)`); err != nil {
		t.Fatal(err)
	}
	if code, out := run("worker"); code != 3 || !strings.Contains(out, "upgrade imgd") {
		t.Errorf("imgd worker on a newer schema: exit %d, want 3 and a hint to upgrade:\n%s", code, out)
	}
}
