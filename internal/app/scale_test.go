package app_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/blob/s3test"
	"github.com/imgd/imgd/internal/store/storetest"
)

// These tests run the scale-out topology of issue 4 as separate OS
// processes: one `imgd api` and two `imgd worker` against a real PostgreSQL
// and a real S3-compatible server (versitygw), then break things (a worker
// killed or stopped, the database connections cut, S3 down) and check that
// every task still completes exactly once and that no blob is left behind.
// Tasks are polled through the api (GET /api/v1/tasks/{id} reads the
// shared database), not awaited on its event stream: they run in other
// processes, and a poll also sees what a broken process never reports.

// scaleTaskTimeout is the workers' IMGD_TASK_TIMEOUT. River rescues the jobs
// of a dead worker once they have run for this plus 10 s, so it bounds how
// long the SIGKILL test waits; it is still far above a task's run time
// here (well under a second).
const scaleTaskTimeout = "10s"

// scaleShutdownTimeout is the workers' IMGD_SHUTDOWN_TIMEOUT.
const scaleShutdownTimeout = 5 * time.Second

// cluster is one api and its workers sharing a PostgreSQL schema and an S3
// key prefix, all owned by one test.
type cluster struct {
	t       *testing.T
	dbURL   string // with application_name set to appName
	appName string // identifies this cluster's database sessions
	s3      *s3test.Server
	prefix  string // the blob URL's key prefix in the bucket, without "/"
	env     []string
	api     *daemon
	workers []*daemon
	// crashed: a process was killed, so an upload it had under way may
	// have left a temporary object (tmp/…), which the next start of a
	// process removes once it is 24 h old; results and originals must
	// still be exact.
	crashed bool
}

// startCluster migrates a fresh schema with `imgd migrate`, then starts
// one api and two workers on it.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	bin := imgdBinary(t)
	c := &cluster{t: t, appName: "imgd_scale_" + strings.ToLower(rand.Text()[:10])}
	// The schema first: its drop is the last cleanup, after the processes
	// that use it are gone.
	u, err := url.Parse(storetest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	// Other tests share the database (each in its own schema); the
	// application name lets the connection-cut test end only ours.
	q := u.Query()
	q.Set("application_name", c.appName)
	u.RawQuery = q.Encode()
	c.dbURL = u.String()
	c.s3 = s3test.StartServer(t)
	c.prefix = s3test.Prefix(t)
	c.env = append(s3test.Env(), "IMGD_DATABASE_URL="+c.dbURL, "IMGD_BLOB_URL="+c.s3.URLWithPrefix(c.prefix),
		"IMGD_WORKERS=2", "IMGD_TASK_TIMEOUT="+scaleTaskTimeout,
		"IMGD_SHUTDOWN_TIMEOUT="+scaleShutdownTimeout.String())

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "migrate")
	cmd.Env = append(append(os.Environ(), "IMGD_DATA_DIR="+t.TempDir(), "IMGD_LOG_FORMAT=text"), c.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("imgd migrate: %v\n%s", err, out)
	}

	c.api = startDaemon(t, "api", t.TempDir(), c.env...)
	c.workers = []*daemon{c.startWorker(), c.startWorker()}
	return c
}

func (c *cluster) startWorker() *daemon {
	c.t.Helper()
	return startDaemon(c.t, "worker", c.t.TempDir(), c.env...)
}

// smallPhotos are the originals of the quick tasks: a few tens of KB each.
var smallPhotos = []string{"photos/jpeg-baseline-small.jpg", "photos/jpeg-progressive-small.jpg", "photos/jpeg-gray.jpg"}

// submitSmall uploads the small photos and creates n quick resize tasks
// over them, each (photo, width) pair once so that no two share a result.
func (c *cluster) submitSmall(n int) (images []imgd.Image, ids []string) {
	c.t.Helper()
	for _, p := range smallPhotos {
		images = append(images, c.api.upload(p))
	}
	for i := range n {
		p := fmt.Sprintf(`[{"op":"resize","width":%d},{"op":"convert","format":"png"}]`, 40+i/len(images))
		ids = append(ids, c.api.createTask(images[i%len(images)].ID, p).ID)
	}
	return images, ids
}

// submitSlow uploads a large photo and creates n tasks of about half a
// second of CPU each, long enough that a worker is always in the middle of
// some when the test breaks it.
func (c *cluster) submitSlow(n int) (images []imgd.Image, ids []string) {
	c.t.Helper()
	im := c.api.upload("photos/jpeg-large-baseline.jpg")
	for i := range n {
		p := fmt.Sprintf(`[{"op":"resize","width":%d},{"op":"rotate","angle":%d.5,"background":"#ffffff"},{"op":"convert","format":"jpeg"}]`, 900+i, i+1)
		ids = append(ids, c.api.createTask(im.ID, p).ID)
	}
	return []imgd.Image{im}, ids
}

// counts returns "key=count" pairs from a two-column (text, count) query
// on the cluster's schema, over a session of the test's own.
func (c *cluster) counts(sql string) map[string]int64 {
	c.t.Helper()
	ctx := c.t.Context()
	conn, err := pgx.Connect(ctx, strings.Replace(c.dbURL, c.appName, c.appName+"_test", 1))
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		c.t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			c.t.Fatal(err)
		}
		out[k] = n
	}
	if err := rows.Err(); err != nil {
		c.t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// completedCount is imgd_tasks_total{outcome="completed"} of a process:
// the tasks it ran to completion.
func completedCount(t *testing.T, d *daemon) int {
	t.Helper()
	resp, err := http.Get(d.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/metrics = %d", d.URL, resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), `imgd_tasks_total{outcome="completed"} `); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric value %q: %v", v, err)
			}
			return int(f)
		}
	}
	return 0 // the counter has no series before the first task
}

// readyz returns the status of GET /readyz.
func readyz(d *daemon) int {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(d.URL + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitReady polls /readyz until it answers 200.
func waitReady(t *testing.T, d *daemon, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		code := readyz(d)
		if code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz = %d after %s, want 200", d.URL, code, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitCompletedAtLeast waits until n of ids are completed.
func (c *cluster) waitCompletedAtLeast(n int, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done := c.counts(`SELECT status, count(*) FROM tasks GROUP BY status`)[string(imgd.TaskCompleted)]
		if done >= int64(n) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("only %d tasks completed after %s, want %d", done, timeout, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// verifyExactlyOnce checks the end state: every task completed once with
// its own result, which downloads with the content its key names; one
// completed River job per task; and the bucket holds exactly the originals
// and the results, nothing else (no duplicate results of a task run twice,
// no temporary objects).
func (c *cluster) verifyExactlyOnce(images []imgd.Image, tasks []imgd.Task) {
	t := c.t
	t.Helper()
	st := c.counts(`SELECT status, count(*) FROM tasks GROUP BY status`)
	if len(st) != 1 || st[string(imgd.TaskCompleted)] != int64(len(tasks)) {
		t.Errorf("task statuses in the database: %v, want only completed=%d", st, len(tasks))
	}
	// River records a job's completion in batches, shortly after the work
	// (and with it the task) is done.
	var jobs map[string]int64
	for deadline := time.Now().Add(10 * time.Second); ; {
		jobs = c.counts(`SELECT state::text, count(*) FROM river_job WHERE kind = 'imgd_task' GROUP BY state`)
		if len(jobs) == 1 && jobs["completed"] == int64(len(tasks)) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("River task jobs by state: %v, want only completed=%d", jobs, len(tasks))
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	want := map[string]bool{}
	for _, im := range images {
		want["sha256/"+im.SHA256] = true
	}
	results := 0
	for _, task := range tasks {
		if task.Status != imgd.TaskCompleted || task.Result == nil || task.Result.Bytes == 0 {
			t.Fatalf("task %s: %s, result %v; want completed with a result", task.ID, task.Status, task.Result)
		}
		resp, err := http.Get(c.api.URL + "/api/v1/tasks/" + task.ID + "/result")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || int64(len(b)) != task.Result.Bytes ||
			resp.Header.Get("Content-Type") != task.Result.MediaType {
			t.Fatalf("result of %s: %d %q, %d bytes (%v); want 200 %q, %d bytes", task.ID, resp.StatusCode,
				resp.Header.Get("Content-Type"), len(b), err, task.Result.MediaType, task.Result.Bytes)
		}
		sum := sha256.Sum256(b)
		key := "sha256/" + hex.EncodeToString(sum[:])
		if want[key] {
			t.Errorf("task %s has the same result as another task or an original; pipelines differ", task.ID)
		}
		want[key] = true
		results++
	}

	root := filepath.Join(c.s3.Dir, s3test.Bucket, c.prefix)
	var stored []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		stored = append(stored, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var orphans, temps []string
	for _, k := range stored {
		if c.crashed && strings.HasPrefix(k, "tmp/") {
			temps = append(temps, k)
			continue
		}
		if !want[k] {
			orphans = append(orphans, k)
		}
		delete(want, k)
	}
	if len(orphans) > 0 || len(want) > 0 {
		t.Errorf("bucket prefix holds %d objects, want %d (%d originals + %d results); unexpected: %v; missing: %v",
			len(stored)-len(temps), len(images)+results, len(images), results, orphans, want)
	}
	if len(temps) > 0 {
		t.Logf("the killed process left %d temporary upload(s) under tmp/ (swept at a start once 24 h old): %v", len(temps), temps)
	}
	if t.Failed() {
		return
	}
	t.Logf("verified: %d tasks completed, one River job each, %d distinct results downloaded, bucket holds exactly %d originals + %d results",
		len(tasks), results, len(images), results)
}

// TestScaleOutTopology: 300 quick tasks submitted through the api all
// complete on the two workers, both of which take a share.
func TestScaleOutTopology(t *testing.T) {
	c := startCluster(t)
	images, ids := c.submitSmall(300)
	start := time.Now()
	tasks := waitAllCompleted(t, c.api, ids, 2*time.Minute)
	took := time.Since(start)
	c.verifyExactlyOnce(images, tasks)

	a, b := completedCount(t, c.workers[0]), completedCount(t, c.workers[1])
	if a == 0 || b == 0 || a+b != len(ids) {
		t.Errorf("workers completed %d and %d tasks, want both > 0 and %d in all", a, b, len(ids))
	}
	if n := completedCount(t, c.api); n != 0 {
		t.Errorf("the api process completed %d tasks; it must run none", n)
	}
	for _, w := range c.workers {
		if code := readyz(w); code != http.StatusOK {
			t.Errorf("worker %s/readyz = %d, want 200", w.URL, code)
		}
	}
	if t.Failed() {
		return
	}
	t.Logf("verified: %d tasks completed in %s after submission, split %d/%d between the workers, none in the api",
		len(ids), took.Round(time.Millisecond), a, b)
}

// TestScaleOutWorkerSIGKILL kills a worker in the middle of its tasks: River
// rescues its jobs after the task timeout, the other worker runs them, and
// each task completes exactly once, with no orphan original or result (an
// upload the kill cut short may leave a temporary object, swept later).
func TestScaleOutWorkerSIGKILL(t *testing.T) {
	c := startCluster(t)
	images, ids := c.submitSlow(24)
	victim, survivor := c.workers[0], c.workers[1]
	// Once the victim has finished a task, its two slots are busy with the
	// next ones: there are more tasks than the workers can run at once.
	deadline := time.Now().Add(time.Minute)
	for completedCount(t, victim) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the worker to kill completed no task in a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.crashed = true
	if code := victim.signal(syscall.SIGKILL, 10*time.Second); code != -1 {
		t.Fatalf("exit code after SIGKILL = %d, want -1 (killed)", code)
	}
	killed := time.Now()
	// The survivor finishes its own running tasks within a couple of
	// seconds; what is still running after that was the victim's.
	time.Sleep(3 * time.Second)
	stuck := c.counts(`SELECT status, count(*) FROM tasks GROUP BY status`)[string(imgd.TaskProcessing)]

	tasks := waitAllCompleted(t, c.api, ids, 2*time.Minute)
	c.verifyExactlyOnce(images, tasks)
	rerun := 0
	for _, task := range tasks {
		if task.Attempt > 1 {
			rerun++
		}
	}
	if rerun == 0 {
		t.Errorf("no task needed a second attempt: the kill interrupted nothing (%d tasks were processing 3 s after it)", stuck)
	}
	// The dead worker held at most IMGD_WORKERS=2 tasks: more reruns mean
	// a live worker's task was run again.
	if rerun > 2 {
		t.Errorf("%d tasks ran more than once; the killed worker could only have interrupted 2", rerun)
	}
	if code := readyz(survivor); code != http.StatusOK {
		t.Errorf("surviving worker /readyz = %d, want 200", code)
	}
	if t.Failed() {
		return
	}
	t.Logf("verified: 3 s after the SIGKILL %d tasks were processing (the survivor's and the dead worker's); %d tasks were rescued and ran a second attempt; all %d completed %s after the kill, exactly once",
		stuck, rerun, len(ids), time.Since(killed).Round(time.Millisecond))
}

// TestScaleOutWorkerSIGTERM stops a worker gracefully in the middle of its
// tasks: it exits 0 within its shutdown timeout, and the other worker
// completes everything left.
func TestScaleOutWorkerSIGTERM(t *testing.T) {
	c := startCluster(t)
	images, ids := c.submitSlow(16)
	leaving, staying := c.workers[0], c.workers[1]
	deadline := time.Now().Add(time.Minute)
	for completedCount(t, leaving) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the worker to stop completed no task in a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := completedCount(t, staying)
	start := time.Now()
	if code := leaving.signal(syscall.SIGTERM, scaleShutdownTimeout+15*time.Second); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}
	took := time.Since(start)
	// Running tasks finish or are put back within the shutdown timeout;
	// a second for closing the pools and the listener.
	if took > scaleShutdownTimeout+2*time.Second {
		t.Errorf("worker took %s to stop, shutdown timeout %s", took, scaleShutdownTimeout)
	}
	logs := leaving.Logs()
	if !strings.Contains(logs, `"msg":"imgd stopped"`) {
		t.Error("no 'imgd stopped' log line from the stopped worker")
	}
	// Tasks take well under a second, the shutdown timeout is 5 s: the
	// worker drains, it does not cut its tasks short.
	if n := strings.Count(logs, `"msg":"task interrupted by shutdown, snoozed"`); n > 0 {
		// River cancels running jobs when the context given to Start
		// ends: that must not be the signal context.
		t.Errorf("the stopped worker interrupted %d tasks instead of finishing them within IMGD_SHUTDOWN_TIMEOUT=%s", n, scaleShutdownTimeout)
	}
	stopped := time.Now()
	tasks := waitAllCompleted(t, c.api, ids, time.Minute)
	after := time.Since(stopped)
	c.verifyExactlyOnce(images, tasks)
	n := completedCount(t, staying)
	if n <= before {
		t.Errorf("the remaining worker completed no task after the other stopped (%d before, %d after)", before, n)
	}
	// A graceful stop leaves no job running: nothing waits for River's
	// rescue (task timeout + 10 s).
	if after > 15*time.Second {
		t.Errorf("the tasks took %s to complete after the graceful stop; were they left for the rescuer?", after)
	}
	if t.Failed() {
		return
	}
	t.Logf("verified: SIGTERM -> exit 0 in %s, no task cut short; the other worker completed %d more tasks, all %d done %s later",
		took.Round(time.Millisecond), n-before, len(ids), after.Round(time.Millisecond))
}

// TestScaleOutPostgresConnectionsCut terminates every database session of
// the cluster mid-run: the processes reconnect on their own, the api stays
// or becomes ready again, and every task completes exactly once.
func TestScaleOutPostgresConnectionsCut(t *testing.T) {
	c := startCluster(t)
	images, ids := c.submitSmall(80)
	c.waitCompletedAtLeast(5, time.Minute)

	conn, err := pgx.Connect(t.Context(), strings.Replace(c.dbURL, c.appName, c.appName+"_admin", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var cut int
	err = conn.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()`, c.appName).Scan(&cut)
	if err != nil {
		t.Fatal(err)
	}
	// The api holds at least one session, each worker at least its
	// LISTEN session.
	if cut < 3 {
		t.Fatalf("terminated %d sessions, want at least one per process (3)", cut)
	}
	cutAt := time.Now()
	first := readyz(c.api)
	waitReady(t, c.api, 30*time.Second)
	ready := time.Since(cutAt)

	tasks := waitAllCompleted(t, c.api, ids, 2*time.Minute)
	c.verifyExactlyOnce(images, tasks)
	for _, w := range c.workers {
		waitReady(t, w, 10*time.Second)
	}
	// The processes must still work after recovering, not merely have
	// finished what was queued: a new task completes.
	late := c.api.createTask(images[0].ID, `[{"op":"resize","width":7},{"op":"convert","format":"png"}]`)
	waitAllCompleted(t, c.api, []string{late.ID}, time.Minute)
	if t.Failed() {
		return
	}
	t.Logf("verified: %d sessions terminated; api /readyz answered %d at once, 200 within %s; all %d tasks and a new one completed %s after the cut",
		cut, first, ready.Round(time.Millisecond), len(ids), time.Since(cutAt).Round(time.Millisecond))
}

// versitygw is a versitygw this file restarts on the port and directory of
// an s3test server it stopped.
type versitygw struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// restartS3 starts versitygw again on srv's port and directory, with the
// flags s3test uses, and stops it when t ends.
func restartS3(t *testing.T, srv *s3test.Server) {
	t.Helper()
	addr := strings.TrimPrefix(srv.Endpoint, "http://")
	v := &versitygw{exited: make(chan struct{})}
	v.cmd = exec.Command(s3test.Binary(), "--port", addr, "--access", s3test.AccessKeyID,
		"--secret", s3test.SecretAccessKey, "--region", s3test.Region, "--quiet", "posix", srv.Dir)
	out, err := os.CreateTemp(t.TempDir(), "versitygw-*.log")
	if err != nil {
		t.Fatal(err)
	}
	v.cmd.Stdout, v.cmd.Stderr = out, out
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = v.cmd.Wait()
		close(v.exited)
	}()
	t.Cleanup(func() {
		_ = v.cmd.Process.Kill() // the process this test started
		<-v.exited
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-v.exited:
			b, _ := os.ReadFile(out.Name())
			t.Fatalf("versitygw exited at restart on %s: %s", addr, b)
		default:
		}
		if conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not listen on %s again within 15 s", addr)
		}
		time.Sleep(20 * time.Millisecond) // polling a child's port; nothing to wait on
	}
}

// TestScaleOutS3Outage stops the S3 server while tasks are queued and
// brings it back a few seconds later on the same port and directory: the
// api reports itself unready meanwhile, the tasks that failed to read
// their image are retried, and all complete.
func TestScaleOutS3Outage(t *testing.T) {
	c := startCluster(t)
	// Upload first (that needs S3), then queue the tasks with S3 down, so
	// that every task's first attempt meets the outage.
	var images []imgd.Image
	for _, p := range smallPhotos {
		images = append(images, c.api.upload(p))
	}
	c.s3.Stop()
	down := time.Now()
	var ids []string
	for i := range 30 {
		p := fmt.Sprintf(`[{"op":"resize","width":%d},{"op":"convert","format":"webp"}]`, 30+i)
		ids = append(ids, c.api.createTask(images[i%len(images)].ID, p).ID)
	}
	// Let the workers meet the outage.
	time.Sleep(3 * time.Second)
	unready := readyz(c.api)
	if unready != http.StatusServiceUnavailable {
		t.Errorf("api /readyz with S3 down = %d, want 503", unready)
	}
	during := c.counts(`SELECT status, count(*) FROM tasks GROUP BY status`)
	if during[string(imgd.TaskCompleted)] != 0 {
		t.Fatalf("tasks completed with S3 down: %v", during)
	}
	restartS3(t, c.s3)
	outage := time.Since(down)
	waitReady(t, c.api, 30*time.Second)

	tasks := waitAllCompleted(t, c.api, ids, 2*time.Minute)
	c.verifyExactlyOnce(images, tasks)
	retried := 0
	for _, task := range tasks {
		if task.Attempt > 1 {
			retried++
		}
	}
	logs := c.workers[0].Logs() + c.workers[1].Logs()
	failed := strings.Count(logs, `"msg":"task attempt failed, will retry"`)
	if retried == 0 || failed == 0 {
		t.Errorf("with S3 down, %d tasks took more than one attempt and the workers logged %d failed attempts; want both > 0",
			retried, failed)
	}
	if t.Failed() {
		return
	}
	t.Logf("verified: S3 down %s (api /readyz %d meanwhile, statuses %v); %d failed attempts logged, %d tasks retried; all %d completed %s after S3 returned",
		outage.Round(time.Millisecond), unready, during, failed, retried, len(ids), time.Since(down.Add(outage)).Round(time.Millisecond))
}
