// Command service benchmarks `imgd serve` end to end, as clients see it.
//
//	go run ./bench/service [-n 500] [-c 8] [-imgd bin/imgd] [-only compat,v1,noop,batch]
//
// It starts imgd serve on a loopback port with a fresh data directory and
// runs three scenarios, each N tasks from C concurrent clients:
//
//  1. compat: the original resize service's clients: POST
//     /api/v1/images/resize (a testdata photo, 100×100), poll
//     /api/v1/status/{id} every 20 ms until SUCCESS, GET the result;
//  2. v1: POST /api/v1/images, POST /api/v1/tasks (resize 100×100),
//     wait for the task's completion event on /api/v1/events, GET the
//     result;
//  3. noop: queue overhead alone: tasks on tiny distinct images already
//     uploaded (an 8×8 PNG re-encoded: the engine's CPU share is ~0.1 ms,
//     though it took 2.9 ms p50 of wall time on the loaded 2-core machine
//     of 2026-11-23), from task creation to the completion event, then the
//     result download.
//
// Latency is measured from the first byte of the upload (task creation for
// noop) to the result being available. Then it runs `imgd process` doing
// the same resizes in batch on the same photos, and prints each scenario's
// throughput against it, the server's CPU time per task (user+system, from
// /proc) and its peak RSS. For noop it also splits each task's latency at
// the task's own timestamps (created_at, started_at, finished_at): request,
// job pickup, work, event delivery and result download, medians and 95th
// percentiles.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/bench/internal/noop"
	"github.com/imgd/imgd/bench/internal/photos"
	"github.com/imgd/imgd/internal/apiclient"
)

func main() {
	n := flag.Int("n", 500, "tasks per scenario")
	c := flag.Int("c", 8, "concurrent clients")
	bin := flag.String("imgd", "bin/imgd", "imgd binary")
	photosGlob := flag.String("photos", "testdata/photos/*.jpg", "glob of the photos to upload")
	workers := flag.Int("workers", 0, "IMGD_WORKERS of the server (0: its default, the number of cores)")
	only := flag.String("only", "", "comma-separated scenarios to run (compat, v1, noop, batch); empty runs them all")
	flag.Parse()
	want := func(name string) bool { return *only == "" || slices.Contains(strings.Split(*only, ","), name) }

	files, data, err := photos.Read(*photosGlob)
	if err != nil {
		log.Fatal(err)
	}

	srv, err := start(*bin, *workers)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.stop()
	fmt.Printf("imgd serve at %s, %d photos (%s), %d tasks per scenario, %d clients\n\n", srv.url, len(files), *photosGlob, *n, *c)

	cl := apiclient.New(srv.url)
	cl.HTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *c * 2}}
	var rows []row
	// measure runs a scenario and adds the server's CPU time per task.
	measure := func(name string, task func(i int) error) {
		cpu0 := srv.cpu()
		r := run(name, *n, *c, task)
		if len(r.lat) > 0 {
			r.cpuPerTask = (srv.cpu() - cpu0) / time.Duration(len(r.lat))
		}
		rows = append(rows, r)
	}
	// Task i resizes to (100 + i/len(files)) × 100: every (photo, size)
	// pair is new, so no task reuses an earlier task's result and each one
	// really decodes and resizes.
	width := func(i int) int { return 100 + i/len(files) }
	if want("compat") {
		measure("compat resize 100x100", func(i int) error {
			return compat(cl, files[i%len(files)], data[i%len(data)], width(i))
		})
	}
	if want("v1") {
		measure("v1 resize 100x100", func(i int) error {
			return v1(cl, files[i%len(files)], data[i%len(data)], width(i))
		})
	}
	var ph phases
	if want("noop") {
		tiny, err := noop.UploadTiny(cl, *n)
		if err != nil {
			log.Fatal(err)
		}
		measure("noop (queue overhead)", func(i int) error { return runNoop(cl, tiny[i], &ph) })
	}
	rss := srv.peakRSS()

	batch := 0.0
	if want("batch") {
		if batch, err = processBatch(*bin, files, *n, *workers); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("%-24s %8s %9s %9s %9s %9s %12s\n", "scenario", "tasks/s", "p50 ms", "p95 ms", "p99 ms", "vs batch", "server CPU")
	for _, r := range rows {
		vs := "-"
		if !strings.HasPrefix(r.name, "noop") && batch > 0 {
			vs = fmt.Sprintf("%.0f %%", 100*r.rate/batch)
		}
		fmt.Printf("%-24s %8.1f %9.1f %9.1f %9.1f %9s %7.2f ms/t", r.name, r.rate, r.p(50), r.p(95), r.p(99), vs,
			float64(r.cpuPerTask.Microseconds())/1000)
		if r.errors > 0 {
			fmt.Printf("  (%d errors, first: %v)", r.errors, r.firstErr)
		}
		fmt.Println()
	}
	if batch > 0 {
		fmt.Printf("%-24s %8.1f\n", "imgd process (batch)", batch)
	}
	fmt.Printf("\npeak RSS of imgd serve: %.0f MB\n", float64(rss)/(1<<20))
	ph.print()
}

type row struct {
	name       string
	rate       float64
	lat        []time.Duration
	errors     int
	firstErr   error
	cpuPerTask time.Duration // the server's user+system CPU time per task
}

func (r row) p(q int) float64 {
	if len(r.lat) == 0 {
		return 0
	}
	i := min(len(r.lat)-1, len(r.lat)*q/100)
	return float64(r.lat[i].Microseconds()) / 1000
}

// run calls task(i) for i < n from c goroutines and collects latencies.
func run(name string, n, c int, task func(i int) error) row {
	var (
		next atomic.Int64
		mu   sync.Mutex
		r    = row{name: name}
		wg   sync.WaitGroup
	)
	start := time.Now()
	for range c {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				err := task(i)
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					r.errors++
					if r.firstErr == nil {
						r.firstErr = err
					}
				} else {
					r.lat = append(r.lat, d)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	r.rate = float64(len(r.lat)) / time.Since(start).Seconds()
	slices.Sort(r.lat)
	return r
}

func compat(cl *apiclient.Client, name string, data []byte, width int) error {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("width", strconv.Itoa(width))
	mw.WriteField("height", "100")
	fw, _ := mw.CreateFormFile("file", filepath.Base(name))
	fw.Write(data)
	mw.Close()
	resp, err := cl.HTTP.Post(cl.BaseURL+"/api/v1/images/resize", mw.FormDataContentType(), &buf)
	if err != nil {
		return err
	}
	var created struct {
		TaskID string `json:"task_id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST resize: %d %v", resp.StatusCode, err)
	}
	for {
		resp, err := cl.HTTP.Get(cl.BaseURL + "/api/v1/status/" + created.TaskID)
		if err != nil {
			return err
		}
		var st struct {
			Status string `json:"status"`
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if st.Status == "FAILURE" {
			return fmt.Errorf("task %s failed", created.TaskID)
		}
		if st.Status == "SUCCESS" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err = cl.HTTP.Get(cl.BaseURL + "/api/v1/images/result/" + created.TaskID)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET result: %d", resp.StatusCode)
	}
	return err
}

var resize100 = imgd.MustParsePipeline(`[{"op":"resize","width":100,"height":100,"fit":"fill"}]`)

func v1(cl *apiclient.Client, name string, data []byte, width int) error {
	ctx := context.Background()
	im, err := cl.Upload(ctx, bytes.NewReader(data), filepath.Base(name))
	if err != nil {
		return err
	}
	p := imgd.Pipeline{&imgd.Resize{Width: width, Height: 100, Fit: "fill"}}
	return runTask(cl, im.ID, p, nil)
}

// runTask creates a task and waits for its completion event, then fetches
// the result. ph, when not nil, records where the time went.
func runTask(cl *apiclient.Client, imageID string, p imgd.Pipeline, ph *phases) error {
	ctx := context.Background()
	t0 := time.Now()
	t, err := cl.CreateTask(ctx, apiclient.TaskRequest{ImageID: imageID, Pipeline: p})
	if err != nil {
		return err
	}
	t1 := time.Now()
	if !t.Status.Final() {
		if t, err = cl.Wait(ctx, t.ID); err != nil {
			return err
		}
	}
	t2 := time.Now()
	if t.Status != imgd.TaskCompleted {
		return fmt.Errorf("task %s %s: %s", t.ID, t.Status, t.ErrorMessage)
	}
	_, err = cl.Result(ctx, t.ID, io.Discard)
	if err == nil && ph != nil {
		ph.add(t, t0, t1, t2, time.Now())
	}
	return err
}

func runNoop(cl *apiclient.Client, imageID string, ph *phases) error {
	return runTask(cl, imageID, noop.Pipeline, ph)
}

// phases splits each task's latency at the client's and the server's
// timestamps (one machine, one clock): the server's times are the task's
// created_at, started_at and finished_at, which the store takes inside its
// transactions (microsecond precision).
type phases struct {
	mu sync.Mutex
	d  [7][]time.Duration
}

var phaseNames = [7]string{
	"request sent -> task row time (created_at)",
	"created_at -> create answer received",
	"created_at -> started_at (job fetched, task started)",
	"started_at -> finished_at (read, engine, blob put, complete)",
	"finished_at -> Wait returned (event, GET task)",
	"Wait returned -> result downloaded",
	"total",
}

func (p *phases) add(t imgd.Task, sent, created, waited, done time.Time) {
	if t.StartedAt == nil || t.FinishedAt == nil {
		return // a reused result: no work to split
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, d := range [7]time.Duration{t.CreatedAt.Sub(sent), created.Sub(t.CreatedAt), t.StartedAt.Sub(t.CreatedAt),
		t.FinishedAt.Sub(*t.StartedAt), waited.Sub(*t.FinishedAt), done.Sub(waited), done.Sub(sent)} {
		p.d[i] = append(p.d[i], d)
	}
}

// print writes the median and 95th percentile of each phase.
func (p *phases) print() {
	if len(p.d[0]) == 0 {
		return
	}
	fmt.Printf("\nnoop phases over %d tasks      p50 ms   p95 ms\n", len(p.d[0]))
	for i, ds := range p.d {
		slices.Sort(ds)
		q := func(q int) float64 { return float64(ds[min(len(ds)-1, len(ds)*q/100)].Microseconds()) / 1000 }
		fmt.Printf("  %-62s %7.2f %8.2f\n", phaseNames[i], q(50), q(95))
	}
}

// server is the imgd serve process under test.
type server struct {
	cmd *exec.Cmd
	url string
	dir string
}

func start(bin string, workers int) (*server, error) {
	dir, err := os.MkdirTemp("", "imgd-bench-service-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "IMGD_ADDR=127.0.0.1:0", "IMGD_DATA_DIR="+dir, "IMGD_LOG_FORMAT=json", "IMGD_LOG_LEVEL=info")
	if workers > 0 {
		cmd.Env = append(cmd.Env, "IMGD_WORKERS="+strconv.Itoa(workers))
	}
	// The server logs as deployed (one JSON line per request); warnings
	// and errors are shown, the rest is read and dropped without decoding
	// it: the clients share the server's cores, and decoding each line
	// twice cost them as much as a request.
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, dir: dir}
	url := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if bytes.Contains(sc.Bytes(), []byte(`"level":"INFO"`)) && !bytes.Contains(sc.Bytes(), []byte(`"imgd started"`)) {
				continue
			}
			var rec struct {
				Msg, URL string
			}
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "imgd started" {
				url <- rec.URL
				continue
			}
			var lvl struct{ Level string }
			if json.Unmarshal(sc.Bytes(), &lvl) != nil || (lvl.Level != "INFO" && lvl.Level != "DEBUG") {
				fmt.Fprintln(os.Stderr, "imgd:", sc.Text())
			}
		}
	}()
	select {
	case s.url = <-url:
		return s, nil
	case <-time.After(30 * time.Second):
		s.stop()
		return nil, fmt.Errorf("imgd serve did not start in 30 s")
	}
}

// cpu reads the server's user+system CPU time so far (/proc/PID/stat, in
// clock ticks of 10 ms: the scenarios run for seconds).
func (s *server) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14 and stime 15.
	i := bytes.LastIndex(b, []byte(") "))
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// peakRSS reads the server's high-water resident set size.
func (s *server) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
	}
	os.RemoveAll(s.dir)
}

// processBatch runs `imgd process` on n inputs cycling through files, the
// same resize, and returns images per second.
func processBatch(bin string, files []string, n, workers int) (float64, error) {
	args := []string{"process", "-p", string(resize100.Canonical())}
	if workers > 0 {
		args = append(args, "-j", strconv.Itoa(workers))
	}
	for i := range n {
		args = append(args, files[i%len(files)])
	}
	start := time.Now()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("imgd process: %v\n%s", err, out)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
