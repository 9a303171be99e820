package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// container is the image's filesystem mounted with a writable layer of
// its own, as `docker run` gives a container.
type container struct {
	root    string // the merged filesystem
	dir     string // holds root, its upper layer and the process logs
	config  imageConfig
	account account
}

// inContainer mounts the image under dir, runs fn chrooted into it, then
// unmounts it (a failure to unmount is reported as a check failure).
func inContainer(r *report, dir string, img *builtStage, fn func(c *container) error) error {
	c, err := startContainer(dir, img)
	if err != nil {
		return err
	}
	defer func() {
		if err := c.close(); err != nil {
			r.fail("%v", err)
		}
	}()
	return withChroot(c.root, false, nil, func() error { return fn(c) })
}

// startContainer mounts the image's layers under dir with a fresh upper
// layer. The caller must call close.
func startContainer(dir string, img *builtStage) (*container, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	c := &container{root: filepath.Join(dir, "merged"), dir: dir, config: img.config}
	for _, d := range []string{c.root, filepath.Join(dir, "upper"), filepath.Join(dir, "work")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := mountOverlay(c.root, img.layers, filepath.Join(dir, "upper"), filepath.Join(dir, "work")); err != nil {
		return nil, err
	}
	acc, err := lookupUser(c.root, c.config.User)
	if err != nil {
		unmount(c.root)
		return nil, err
	}
	c.account = acc
	return c, nil
}

// close unmounts the container's filesystem and removes its upper layer;
// the process logs stay for reading.
func (c *container) close() error {
	if err := unmount(c.root); err != nil {
		return err
	}
	for _, d := range []string{"upper", "work", "merged"} {
		if err := os.RemoveAll(filepath.Join(c.dir, d)); err != nil {
			return err
		}
	}
	return nil
}

// env is the process environment `docker run` gives: the image's ENV,
// HOME from the user's passwd entry unless ENV sets it, and overrides.
func (c *container) env(overrides map[string]string) []string {
	cfg := c.config.clone()
	if _, ok := cfg.getenv("PATH"); !ok {
		cfg.setenv("PATH", defaultPath)
	}
	if _, ok := cfg.getenv("HOME"); !ok {
		cfg.setenv("HOME", c.account.home)
	}
	cfg.setenv("HOSTNAME", "containercheck")
	for k, v := range overrides {
		cfg.setenv(k, v)
	}
	return cfg.Env
}

// command prepares argv inside the container as its USER.
func (c *container) command(argv []string, env []string) (*exec.Cmd, error) {
	return chrootCommand(c.root, argv, env, c.config.WorkingDir, c.account)
}

// exec runs argv to completion inside the container (with /proc and /dev
// mounted by the caller) and returns its combined output.
func (c *container) exec(ctx context.Context, timeout time.Duration, argv []string, env []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd, err := c.command(argv, env)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = runCtx(ctx, cmd)
	return out.String(), err
}

// healthcheck returns the HEALTHCHECK command as an argv, with the
// exposed port replaced by the port the check listens on (the one
// substitution a `-p` port mapping makes unnecessary under Docker).
func healthcheck(cfg imageConfig, exposed, port string) ([]string, error) {
	hc := cfg.Healthcheck
	if len(hc) < 2 {
		return nil, errors.New("the image has no HEALTHCHECK")
	}
	var argv []string
	switch hc[0] {
	case "CMD":
		argv = append(argv, hc[1:]...)
	case "CMD-SHELL":
		argv = append(append(argv, cfg.Shell...), hc[1])
	default:
		return nil, fmt.Errorf("HEALTHCHECK %s", hc[0])
	}
	for i, a := range argv {
		argv[i] = strings.ReplaceAll(a, ":"+exposed+"/", ":"+port+"/")
		if strings.HasSuffix(argv[i], ":"+exposed) {
			argv[i] = strings.TrimSuffix(argv[i], exposed) + port
		}
	}
	return argv, nil
}

// exposedPort is the image's one EXPOSE port, without /tcp.
func exposedPort(cfg imageConfig) (string, error) {
	if len(cfg.ExposedPorts) != 1 {
		return "", fmt.Errorf("want one EXPOSE port, the image has %q", cfg.ExposedPorts)
	}
	p, _, _ := strings.Cut(cfg.ExposedPorts[0], "/")
	return p, nil
}

// freePort asks the kernel for an unused loopback port.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, p, err := net.SplitHostPort(l.Addr().String())
	return p, err
}

// listenOverrides maps every ENV value that listens on the exposed port
// (host:port) to 127.0.0.1:port, so the container's server answers on a
// free loopback port instead of the fixed one.
func listenOverrides(cfg imageConfig, exposed, port string) map[string]string {
	o := map[string]string{}
	for _, kv := range cfg.Env {
		k, v, _ := strings.Cut(kv, "=")
		if h, p, err := net.SplitHostPort(v); err == nil && p == exposed && !strings.Contains(h, "/") {
			o[k] = "127.0.0.1:" + port
		}
	}
	return o
}

// process is a long-running command in a container.
type process struct {
	cmd  *exec.Cmd
	done chan error
	log  string
}

// start runs argv in the container as its USER, its output to logName
// under the container's directory.
func (c *container) start(argv, env []string, logName string) (*process, error) {
	cmd, err := c.command(argv, env)
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(c.dir, logName)
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan error, 1), log: logPath}
	go func() { p.done <- cmd.Wait(); f.Close() }()
	return p, nil
}

// stop sends SIGTERM to the process (by its PID, as `docker stop` does)
// and waits for it to exit, killing it after grace.
func (p *process) stop(grace time.Duration) (time.Duration, error) {
	start := time.Now()
	select {
	case err := <-p.done:
		return 0, fmt.Errorf("exited before it was stopped: %v", err)
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, err
	}
	select {
	case err := <-p.done:
		return time.Since(start), err
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.done
		return time.Since(start), fmt.Errorf("still running %s after SIGTERM: killed", grace)
	}
}

// waitHealthy runs the health check inside the container until it passes,
// the process exits or the start period plus retries run out.
func (c *container) waitHealthy(ctx context.Context, p *process, argv, env []string) (time.Duration, error) {
	start := time.Now()
	timeout := 3 * time.Second
	if d, err := time.ParseDuration(c.config.HealthFlags["timeout"]); err == nil {
		timeout = d
	}
	limit := 60 * time.Second
	if d, err := time.ParseDuration(c.config.HealthFlags["start-period"]); err == nil {
		limit = d
		if iv, err := time.ParseDuration(c.config.HealthFlags["interval"]); err == nil {
			n, _ := strconv.Atoi(c.config.HealthFlags["retries"])
			limit += time.Duration(max(n, 1)) * iv
		}
	}
	if _, err := c.command(argv, env); err != nil {
		return 0, fmt.Errorf("health check %q: %w", strings.Join(argv, " "), err) // no retry makes it appear
	}
	var last string
	for time.Since(start) < limit {
		out, err := c.exec(ctx, timeout, argv, env)
		if err == nil {
			return time.Since(start), nil
		}
		last = strings.TrimSpace(out + " " + err.Error())
		select {
		case err := <-p.done:
			p.done <- err
			return 0, fmt.Errorf("the process exited (%v) before the health check passed; log %s:\n%s", err, p.log, tail(p.log, 15))
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("health check %q still failing after %s: %s", strings.Join(argv, " "), limit, last)
}

// apiSmoke exercises the API the way a client of the image would: upload
// a photo, run a resize to WebP and a compress to AVIF, download both
// results and check what they are.
func apiSmoke(ctx context.Context, base, photo, outDir string, log io.Writer) error {
	im, err := upload(ctx, base, photo)
	if err != nil {
		return fmt.Errorf("upload %s: %w", photo, err)
	}
	fmt.Fprintf(log, "  ok   uploaded %s: image %s, %s %dx%d\n", filepath.Base(photo), im.ID, im.Format, im.Width, im.Height)
	cases := []struct {
		name, pipeline string
		check          func([]byte) bool
		want           string
	}{
		{"resize-webp", `[{"op":"resize","width":320},{"op":"convert","format":"webp"}]`, isWebP, "RIFF…WEBP"},
		{"compress-avif", `[{"op":"compress","format":"avif"}]`, isAVIF, "ftyp avif"},
	}
	for _, tc := range cases {
		var t task
		body := fmt.Sprintf(`{"image_id":%q,"pipeline":%s}`, im.ID, tc.pipeline)
		if err := doJSON(ctx, "POST", base+"/api/v1/tasks", "application/json", strings.NewReader(body), http.StatusAccepted, &t); err != nil {
			return fmt.Errorf("%s: create task: %w", tc.name, err)
		}
		start := time.Now()
		for t.Status != "completed" && t.Status != "failed" && t.Status != "canceled" {
			if time.Since(start) > 2*time.Minute {
				return fmt.Errorf("%s: task %s still %s after 2m", tc.name, t.ID, t.Status)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
			if err := doJSON(ctx, "GET", base+"/api/v1/tasks/"+t.ID, "", nil, http.StatusOK, &t); err != nil {
				return fmt.Errorf("%s: %w", tc.name, err)
			}
		}
		if t.Status != "completed" {
			return fmt.Errorf("%s: task %s %s: %s %s", tc.name, t.ID, t.Status, t.ErrorCode, t.ErrorMessage)
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/tasks/"+t.ID+"/result", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: download result: %d %v", tc.name, resp.StatusCode, err)
		}
		if !tc.check(b) {
			return fmt.Errorf("%s: result (%d bytes, %s) is not %s", tc.name, len(b), resp.Header.Get("Content-Type"), tc.want)
		}
		out := filepath.Join(outDir, tc.name+"."+t.Result.Format)
		if err := os.WriteFile(out, b, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(log, "  ok   %s: %s %dx%d, %d bytes in %s → %s\n", tc.name, t.Result.Format, t.Result.Width, t.Result.Height, len(b), time.Since(start).Round(10*time.Millisecond), out)
	}
	return nil
}

type image struct {
	ID            string `json:"id"`
	Format        string `json:"format"`
	Width, Height int
}

type task struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	ErrorCode    string `json:"error_code"`
	ErrorMessage string `json:"error_message"`
	Result       *struct {
		Format string `json:"format"`
		Width  int    `json:"width"`
		Height int    `json:"height"`
	} `json:"result"`
}

func upload(ctx context.Context, base, photo string) (image, error) {
	var im image
	data, err := os.ReadFile(photo)
	if err != nil {
		return im, err
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", filepath.Base(photo))
	fw.Write(data)
	mw.Close()
	err = doJSON(ctx, "POST", base+"/api/v1/images", mw.FormDataContentType(), &body, http.StatusCreated, &im)
	return im, err
}

func doJSON(ctx context.Context, method, url, contentType string, body io.Reader, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, out)
}

func isWebP(b []byte) bool {
	return len(b) > 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP"
}

func isAVIF(b []byte) bool {
	return len(b) > 12 && string(b[4:8]) == "ftyp" && (string(b[8:12]) == "avif" || string(b[8:12]) == "avis")
}

// ownedBy lists the entries under dir (inside the container) that are not
// owned by uid, with their owner.
func ownedBy(dir string, uid uint32) (n int, wrong []string, err error) {
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n++
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Uid != uid {
			rel, _ := filepath.Rel(dir, p)
			wrong = append(wrong, fmt.Sprintf("%s (uid %d)", rel, st.Uid))
		}
		return nil
	})
	return n, wrong, err
}
