// Command service benchmarks `imgd serve` end to end, as clients see it.
//
//	go run ./bench/service [-n 500] [-c 8] [-imgd bin/imgd]
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
//     uploaded (an 8×8 PNG re-encoded: the engine's share is ~0.1 ms), from
//     task creation to its completion event.
//
// Latency is measured from the first byte of the upload (task creation for
// noop) to the result being available. Then it runs `imgd process` doing
// the same resizes in batch on the same photos, and prints each scenario's
// throughput against it, and the server's peak RSS.
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
	"github.com/imgd/imgd/internal/apiclient"
)

func main() {
	n := flag.Int("n", 500, "tasks per scenario")
	c := flag.Int("c", 8, "concurrent clients")
	bin := flag.String("imgd", "bin/imgd", "imgd binary")
	photos := flag.String("photos", "testdata/photos/*.jpg", "glob of the photos to upload")
	workers := flag.Int("workers", 0, "IMGD_WORKERS of the server (0: its default, the number of cores)")
	flag.Parse()

	files, _ := filepath.Glob(*photos)
	if len(files) == 0 {
		log.Fatalf("no photos match %s", *photos)
	}
	data := make([][]byte, len(files))
	for i, f := range files {
		var err error
		if data[i], err = os.ReadFile(f); err != nil {
			log.Fatal(err)
		}
	}

	srv, err := start(*bin, *workers)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.stop()
	fmt.Printf("imgd serve at %s, %d photos (%s), %d tasks per scenario, %d clients\n\n", srv.url, len(files), *photos, *n, *c)

	cl := apiclient.New(srv.url)
	cl.HTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *c * 2}}
	var rows []row
	// Task i resizes to (100 + i/len(files)) × 100: every (photo, size)
	// pair is new, so no task reuses an earlier task's result and each one
	// really decodes and resizes.
	width := func(i int) int { return 100 + i/len(files) }
	rows = append(rows, run("compat resize 100x100", *n, *c, func(i int) error {
		return compat(cl, files[i%len(files)], data[i%len(data)], width(i))
	}))
	rows = append(rows, run("v1 resize 100x100", *n, *c, func(i int) error {
		return v1(cl, files[i%len(files)], data[i%len(data)], width(i))
	}))
	tiny, err := noop.UploadTiny(cl, *n)
	if err != nil {
		log.Fatal(err)
	}
	rows = append(rows, run("noop (queue overhead)", *n, *c, func(i int) error { return runNoop(cl, tiny[i]) }))
	rss := srv.peakRSS()

	batch, err := processBatch(*bin, files, *n, *workers)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%-24s %8s %9s %9s %9s %9s\n", "scenario", "tasks/s", "p50 ms", "p95 ms", "p99 ms", "vs batch")
	for _, r := range rows {
		vs := "-"
		if !strings.HasPrefix(r.name, "noop") {
			vs = fmt.Sprintf("%.0f %%", 100*r.rate/batch)
		}
		fmt.Printf("%-24s %8.1f %9.1f %9.1f %9.1f %9s", r.name, r.rate, r.p(50), r.p(95), r.p(99), vs)
		if r.errors > 0 {
			fmt.Printf("  (%d errors, first: %v)", r.errors, r.firstErr)
		}
		fmt.Println()
	}
	fmt.Printf("%-24s %8.1f\n", "imgd process (batch)", batch)
	fmt.Printf("\npeak RSS of imgd serve: %.0f MB\n", float64(rss)/(1<<20))
}

type row struct {
	name     string
	rate     float64
	lat      []time.Duration
	errors   int
	firstErr error
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
	return runTask(cl, im.ID, p)
}

// runTask creates a task and waits for its completion event, then fetches
// the result.
func runTask(cl *apiclient.Client, imageID string, p imgd.Pipeline) error {
	ctx := context.Background()
	t, err := cl.CreateTask(ctx, apiclient.TaskRequest{ImageID: imageID, Pipeline: p})
	if err != nil {
		return err
	}
	if !t.Status.Final() {
		if t, err = cl.Wait(ctx, t.ID); err != nil {
			return err
		}
	}
	if t.Status != imgd.TaskCompleted {
		return fmt.Errorf("task %s %s: %s", t.ID, t.Status, t.ErrorMessage)
	}
	_, err = cl.Result(ctx, t.ID, io.Discard)
	return err
}

func runNoop(cl *apiclient.Client, imageID string) error { return runTask(cl, imageID, noop.Pipeline) }

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
	// and errors are shown, the rest is read and dropped.
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
