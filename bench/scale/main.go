// Command scale benchmarks imgd scaled out: one `imgd api` and K `imgd
// worker` processes sharing PostgreSQL and an S3-compatible server
// (versitygw), for each K in -workers.
//
//	go run ./bench/scale [-imgd bin/imgd] [-n 300] [-c 8] [-workers 1,2] [-slots 1]
//
// For each K it makes a fresh PostgreSQL schema and S3 key prefix, runs
// `imgd migrate`, starts the processes, and runs two scenarios of N tasks
// created by C concurrent clients:
//
//  1. resize: a testdata photo to (100 + i/photos) × 100, so that no task
//     reuses another's result and each one decodes and resizes;
//  2. noop: tiny distinct 8×8 PNGs re-encoded, the queue's overhead;
//  3. noop-idle: the same, one task at a time (each created once the
//     previous one completed, at most 100): the queue latency of an idle
//     cluster, i.e. how soon a worker picks up a new task.
//
// The originals are uploaded before the clock starts. Throughput is N over
// the time from the first task's creation to the last one's completion;
// queue latency is each task's started_at - created_at, end-to-end latency
// finished_at - created_at, all from the server's own timestamps (so the
// clients' polling does not count).
//
// Before the topologies, the noop and noop-idle scenarios run on one
// embedded `imgd serve` (SQLite and blobs on disk, -slots task slots), rows
// "noop-sqlite" and "noop-idle-sqlite": the same queue without PostgreSQL
// and S3.
//
// Each worker runs -slots tasks at once (IMGD_WORKERS): with 1, K worker
// processes run at most K tasks at once. The api, the workers, PostgreSQL,
// versitygw and the clients all share this machine's cores.
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/bench/internal/noop"
	"github.com/imgd/imgd/bench/internal/photos"
	"github.com/imgd/imgd/internal/apiclient"
)

const (
	accessKey = "imgd-bench-access"
	secretKey = "imgd-bench-secret-key"
	bucket    = "imgd-bench"
)

func main() {
	n := flag.Int("n", 300, "tasks per scenario")
	c := flag.Int("c", 8, "concurrent clients creating tasks")
	bin := flag.String("imgd", "bin/imgd", "imgd binary")
	workerList := flag.String("workers", "1,2", "comma-separated numbers of imgd worker processes to compare")
	slots := flag.Int("slots", 1, "IMGD_WORKERS of each worker process: tasks it runs at once")
	photosGlob := flag.String("photos", "testdata/photos/*.jpg", "glob of the photos to resize")
	dbURL := flag.String("db", envOr("IMGD_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"),
		"PostgreSQL database; each run gets its own schema in it, dropped afterwards")
	gw := flag.String("versitygw", versitygwBinary(), "versitygw binary (scripts/versitygw.sh installs it)")
	flag.Parse()

	var counts []int
	for f := range strings.SplitSeq(*workerList, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || k < 1 {
			log.Fatalf("-workers: %q is not a positive number", f)
		}
		counts = append(counts, k)
	}
	files, data, err := photos.Read(*photosGlob)
	if err != nil {
		log.Fatal(err)
	}
	if *gw == "" {
		log.Fatal("versitygw not found: run scripts/versitygw.sh or pass -versitygw")
	}
	s3, err := startS3(*gw)
	if err != nil {
		log.Fatal(err)
	}
	defer s3.stop()

	fmt.Printf("imgd scale-out: 1 api + K workers (IMGD_WORKERS=%d each) on PostgreSQL and versitygw, %d cores, %d tasks per scenario, %d clients, %d photos (%s)\n\n",
		*slots, runtime.NumCPU(), *n, *c, len(files), *photosGlob)
	var rows []row
	// The same no-op scenarios on the embedded database and file blobs,
	// one imgd serve process: what PostgreSQL and S3 cost against it.
	r, err := runEmbedded(*bin, *slots, *n, *c)
	if err != nil {
		log.Fatalf("embedded: %v", err)
	}
	rows = append(rows, r...)
	for _, k := range counts {
		r, err := runTopology(*bin, *dbURL, s3, k, *slots, *n, *c, files, data)
		if err != nil {
			log.Fatalf("%d workers: %v", k, err)
		}
		rows = append(rows, r...)
	}
	fmt.Printf("%-16s %7s %8s %12s %12s %12s %12s %6s\n", "scenario", "workers", "tasks/s", "queue p50 ms", "queue p99 ms", "e2e p50 ms", "e2e p99 ms", "failed")
	for _, r := range rows {
		rate := "-" // one task at a time: no throughput
		if r.rate > 0 {
			rate = strconv.FormatFloat(r.rate, 'f', 1, 64)
		}
		fmt.Printf("%-16s %7d %8s %12.1f %12.1f %12.1f %12.1f %6d\n", r.name, r.workers, rate,
			pct(r.queue, 50), pct(r.queue, 99), pct(r.e2e, 50), pct(r.e2e, 99), r.failed)
	}
	for _, name := range []string{"resize", "noop"} {
		var base float64
		for _, r := range rows {
			if r.name != name {
				continue
			}
			if base == 0 {
				base = r.rate
				continue
			}
			fmt.Printf("%s: %d workers do %.2fx the tasks/s of %d\n", name, r.workers, r.rate/base, counts[0])
		}
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// row is one scenario on one topology.
type row struct {
	name       string
	workers    int
	rate       float64
	queue, e2e []time.Duration // sorted
	failed     int
}

func pct(d []time.Duration, q int) float64 {
	if len(d) == 0 {
		return 0
	}
	return float64(d[min(len(d)-1, len(d)*q/100)].Microseconds()) / 1000
}

// runTopology starts a fresh cluster with k workers and runs both scenarios.
func runTopology(bin, dbURL string, s3 *s3Server, k, slots, n, c int, files []string, data [][]byte) ([]row, error) {
	schemaURL, drop, err := freshSchema(dbURL)
	if err != nil {
		return nil, err
	}
	defer drop()
	env := []string{"IMGD_DATABASE_URL=" + schemaURL,
		"IMGD_BLOB_URL=s3://" + bucket + "/run-" + strings.ToLower(rand.Text()[:8]) + "?endpoint=" + s3.endpoint + "&region=us-east-1&path_style=true",
		"AWS_ACCESS_KEY_ID=" + accessKey, "AWS_SECRET_ACCESS_KEY=" + secretKey}
	if out, err := command(bin, env, "migrate").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("imgd migrate: %v\n%s", err, out)
	}
	api, err := startImgd(bin, env, "api")
	if err != nil {
		return nil, err
	}
	defer api.stop()
	for range k {
		w, err := startImgd(bin, append(env, "IMGD_WORKERS="+strconv.Itoa(slots)), "worker")
		if err != nil {
			return nil, err
		}
		defer w.stop()
	}
	cl := apiclient.New(api.url)
	cl.HTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c * 2}}

	// Originals first, outside the clock.
	photoIDs := make([]string, len(data))
	for i, d := range data {
		im, err := cl.Upload(context.Background(), bytes.NewReader(d), filepath.Base(files[i]))
		if err != nil {
			return nil, fmt.Errorf("upload %s: %w", files[i], err)
		}
		photoIDs[i] = im.ID
	}
	tiny, err := noop.UploadTiny(cl, n)
	if err != nil {
		return nil, err
	}
	resize := run(cl, "resize", k, n, c, func(i int) (string, imgd.Pipeline) {
		return photoIDs[i%len(photoIDs)], imgd.Pipeline{&imgd.Resize{Width: 100 + i/len(photoIDs), Height: 100, Fit: "fill"}}
	})
	noop := run(cl, "noop", k, n, c, func(i int) (string, imgd.Pipeline) { return tiny[i], noop.Pipeline })
	return []row{resize, noop, idleProbe(cl, "noop-idle", k, n, tiny)}, nil
}

// runEmbedded runs the no-op scenarios on one imgd serve process with its
// embedded SQLite database and file blobs (rows named "…-sqlite").
func runEmbedded(bin string, slots, n, c int) ([]row, error) {
	srv, err := startImgd(bin, []string{"IMGD_WORKERS=" + strconv.Itoa(slots)}, "serve")
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	cl := apiclient.New(srv.url)
	cl.HTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c * 2}}
	tiny, err := noop.UploadTiny(cl, n)
	if err != nil {
		return nil, err
	}
	noop := run(cl, "noop-sqlite", 1, n, c, func(i int) (string, imgd.Pipeline) { return tiny[i], noop.Pipeline })
	return []row{noop, idleProbe(cl, "noop-idle-sqlite", 1, n, tiny)}, nil
}

// idleProbe creates up to 100 no-op tasks one at a time on idle workers:
// the queue latency is then the pickup delay alone, not the backlog.
func idleProbe(cl *apiclient.Client, name string, workers, n int, tiny []string) row {
	probe := row{name: name, workers: workers}
	p := imgd.MustParsePipeline(`[{"op":"convert","format":"webp"}]`)
	for i := range min(n, 100) {
		im := tiny[i]
		r := run(cl, "", workers, 1, 1, func(int) (string, imgd.Pipeline) { return im, p })
		probe.queue, probe.e2e, probe.failed = append(probe.queue, r.queue...), append(probe.e2e, r.e2e...), probe.failed+r.failed
	}
	slices.Sort(probe.queue)
	slices.Sort(probe.e2e)
	return probe
}

// run creates n tasks from c clients, waits for all of them, and computes
// the row from the tasks' server timestamps.
func run(cl *apiclient.Client, name string, workers, n, c int, task func(i int) (string, imgd.Pipeline)) row {
	ids := make([]string, n)
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range c {
		wg.Go(func() {
			for i := range next {
				im, p := task(i)
				t, err := cl.CreateTask(context.Background(), apiclient.TaskRequest{ImageID: im, Pipeline: p})
				if err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
					continue
				}
				ids[i] = t.ID
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		log.Fatalf("%s: create task: %v", name, firstErr)
	}

	r := row{name: name, workers: workers}
	var first, last time.Time
	for _, id := range ids {
		t := waitFinal(cl, id)
		if t.Status != imgd.TaskCompleted || t.StartedAt == nil || t.FinishedAt == nil {
			r.failed++
			continue
		}
		if first.IsZero() || t.CreatedAt.Before(first) {
			first = t.CreatedAt
		}
		if t.FinishedAt.After(last) {
			last = *t.FinishedAt
		}
		r.queue = append(r.queue, t.StartedAt.Sub(t.CreatedAt))
		r.e2e = append(r.e2e, t.FinishedAt.Sub(t.CreatedAt))
	}
	slices.Sort(r.queue)
	slices.Sort(r.e2e)
	if span := last.Sub(first); span > 0 {
		r.rate = float64(len(r.e2e)) / span.Seconds()
	}
	return r
}

// waitFinal polls a task until it is final.
func waitFinal(cl *apiclient.Client, id string) imgd.Task {
	deadline := time.Now().Add(10 * time.Minute)
	for {
		t, err := cl.Task(context.Background(), id)
		if err != nil {
			log.Fatalf("get task %s: %v", id, err)
		}
		if t.Status.Final() {
			return t
		}
		if time.Now().After(deadline) {
			log.Fatalf("task %s still %s after 10 minutes", id, t.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freshSchema creates a schema in dbURL's database and returns a URL that
// uses it, and a function that drops it.
func freshSchema(dbURL string) (string, func(), error) {
	ctx := context.Background()
	schema := "imgd_bench_" + strings.ToLower(rand.Text()[:12])
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", nil, fmt.Errorf("connect to PostgreSQL (-db): %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	drop := func() {
		c, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			log.Printf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			log.Printf("drop schema %s: %v", schema, err)
		}
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		drop()
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

func command(bin string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "IMGD_ADDR=127.0.0.1:0", "IMGD_LOG_FORMAT=json", "IMGD_LOG_LEVEL=info")
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// process is a started imgd or versitygw.
type process struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
}

// startImgd starts `imgd role` and waits for its "imgd started" line; it
// shows the process's warnings and errors.
func startImgd(bin string, env []string, role string) (*process, error) {
	dir, err := os.MkdirTemp("", "imgd-bench-scale-")
	if err != nil {
		return nil, err
	}
	cmd := command(bin, append(env, "IMGD_DATA_DIR="+dir), role)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	started := make(chan string, 1)
	go func() {
		defer close(p.done)
		defer os.RemoveAll(dir)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var rec struct{ Msg, URL, Level string }
			if json.Unmarshal(sc.Bytes(), &rec) != nil {
				continue
			}
			switch {
			case rec.Msg == "imgd started":
				started <- rec.URL
			case rec.Level != "INFO" && rec.Level != "DEBUG":
				fmt.Fprintf(os.Stderr, "imgd %s: %s\n", role, sc.Text())
			}
		}
		_ = cmd.Wait()
	}()
	select {
	case p.url = <-started:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("imgd %s exited at start", role)
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, fmt.Errorf("imgd %s did not start in 30 s", role)
	}
}

// stop sends SIGINT, then kills the process if it has not exited in 30 s.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func versitygwBinary() string {
	if p := os.Getenv("IMGD_VERSITYGW"); p != "" {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		if p := filepath.Join(home, ".cache", "imgd-tools", "versitygw"); fileExists(p) {
			return p
		}
	}
	p, _ := exec.LookPath("versitygw")
	return p
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// s3Server is versitygw on a loopback port with its posix backend in a
// temporary directory holding the bucket.
type s3Server struct {
	*process
	endpoint string
	dir      string
}

func startS3(bin string) (*s3Server, error) {
	dir, err := os.MkdirTemp("", "imgd-bench-s3-")
	if err != nil {
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(dir, bucket), 0o755); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "--port", addr, "--access", accessKey, "--secret", secretKey,
		"--region", "us-east-1", "--quiet", "posix", dir)
	var out bytes.Buffer // shown only if it fails to start
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	s := &s3Server{process: p, endpoint: "http://" + addr, dir: dir}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return s, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("versitygw exited at start: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, errors.New("versitygw did not listen in 15 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *s3Server) stop() {
	s.process.stop()
	os.RemoveAll(s.dir)
}
