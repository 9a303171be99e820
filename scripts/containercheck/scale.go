package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// scaleDatabase is created afresh on the host's PostgreSQL for each run.
const scaleDatabase = "imgd_container_check"

// runScale runs the Compose file's imgd services from the built image
// (each service once, in depends_on order) against the host's PostgreSQL
// and a host versitygw started with the s3 service's own command line.
// Service names in the imgd environment are mapped to loopback; nothing
// else of the environment changes.
func runScale(ctx context.Context, r *report, o options, root string, img *builtStage, cf *composeFile) error {
	var imgdNames []string
	for _, n := range sortedKeys(cf.Services) {
		if cf.Services[n].builtHere() {
			imgdNames = append(imgdNames, n)
		}
	}
	if len(imgdNames) == 0 {
		return nil
	}
	env := cf.Services[imgdNames[0]].envMap()
	dbURL, err := url.Parse(env["IMGD_DATABASE_URL"])
	if err != nil || dbURL.Host == "" {
		r.note("scale-out run skipped: the imgd services set no IMGD_DATABASE_URL")
		return nil
	}
	blobURL, err := url.Parse(env["IMGD_BLOB_URL"])
	if err != nil {
		return err
	}
	endpoint, err := url.Parse(blobURL.Query().Get("endpoint"))
	if err != nil || cf.Services[endpoint.Hostname()] == nil {
		r.note("scale-out run skipped: IMGD_BLOB_URL's endpoint is not a service of the Compose file")
		return nil
	}
	if exec.CommandContext(ctx, "pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432").Run() != nil {
		r.note("scale-out run skipped: no PostgreSQL on 127.0.0.1:5432")
		return nil
	}
	vgw := os.Getenv("IMGD_VERSITYGW")
	if vgw == "" {
		home, _ := os.UserHomeDir()
		vgw = filepath.Join(home, ".cache", "imgd-tools", "versitygw")
	}
	if _, err := os.Stat(vgw); err != nil {
		r.note("scale-out run skipped: no versitygw at %s (scripts/versitygw.sh builds it)", vgw)
		return nil
	}

	// The database: a fresh one, dropped afterwards.
	psql := func(sql string) error {
		out, err := exec.CommandContext(ctx, "psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", sql).CombinedOutput()
		if err != nil {
			return fmt.Errorf("psql %q: %v: %s", sql, err, out)
		}
		return nil
	}
	if err := psql("DROP DATABASE IF EXISTS " + scaleDatabase); err != nil {
		return err
	}
	if err := psql("CREATE DATABASE " + scaleDatabase); err != nil {
		return err
	}
	defer psql("DROP DATABASE IF EXISTS " + scaleDatabase + " WITH (FORCE)")

	// The S3 server, started with its service's command line.
	s3 := cf.Services[endpoint.Hostname()]
	s3Port, err := freePort()
	if err != nil {
		return err
	}
	dir := filepath.Join(o.cache, "scale")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	cmdArgv := append(argv(s3.Entrypoint), argv(s3.Command)...)
	if len(cmdArgv) < 3 || cmdArgv[0] != "/bin/sh" || cmdArgv[1] != "-c" {
		r.note("scale-out run skipped: %s's command is not a shell command line this check can map", endpoint.Hostname())
		return nil
	}
	script := strings.Join(cmdArgv[2:], " ")
	for _, v := range s3.Volumes {
		if _, target, ok := strings.Cut(v, ":"); ok {
			host := filepath.Join(dir, "volumes", filepath.Base(target))
			if err := os.MkdirAll(host, 0o755); err != nil {
				return err
			}
			script = strings.ReplaceAll(script, target, host)
		}
	}
	script = regexp.MustCompile(`\S*/versitygw\b`).ReplaceAllString(script, vgw)
	script = strings.ReplaceAll(script, ":"+endpoint.Port(), "127.0.0.1:"+s3Port)
	s3Env := []string{"PATH=" + defaultPath}
	for k, v := range s3.envMap() {
		s3Env = append(s3Env, k+"="+v)
	}
	logPath := filepath.Join(dir, "s3.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	s3Cmd := exec.Command("/bin/sh", "-c", script)
	s3Cmd.Env, s3Cmd.Stdout, s3Cmd.Stderr = s3Env, logFile, logFile
	fmt.Printf("  start %s as on the host: %s\n", endpoint.Hostname(), script)
	if err := s3Cmd.Start(); err != nil {
		return err
	}
	s3Done := make(chan error, 1)
	go func() { s3Done <- s3Cmd.Wait() }()
	defer func() {
		s3Cmd.Process.Signal(syscall.SIGTERM) // by PID: the script execs the server
		select {
		case <-s3Done:
		case <-time.After(10 * time.Second):
			s3Cmd.Process.Kill()
			<-s3Done
		}
	}()
	// The S3 service's own health check, against the mapped port.
	if hc := argv(s3.Healthcheck["test"]); len(hc) > 1 && hc[0] == "CMD" {
		check := make([]string, len(hc)-1)
		for i, a := range hc[1:] {
			check[i] = strings.ReplaceAll(a, ":"+endpoint.Port()+"/", ":"+s3Port+"/")
		}
		var err error
		for i := 0; i < 40; i++ {
			if err = exec.CommandContext(ctx, check[0], check[1:]...).Run(); err == nil {
				break
			}
			select {
			case e := <-s3Done:
				return fmt.Errorf("%s exited: %v; log %s:\n%s", endpoint.Hostname(), e, logPath, tail(logPath, 10))
			case <-time.After(250 * time.Millisecond):
			}
		}
		if err != nil {
			return fmt.Errorf("%s health check %q: %v; log:\n%s", endpoint.Hostname(), check, err, tail(logPath, 10))
		}
		r.ok("%s: its health check %q passes against versitygw started with its command line", endpoint.Hostname(), check)
	}

	// The imgd environment with the service names mapped to loopback.
	mapped := map[string]string{}
	for k, v := range env {
		mapped[k] = v
	}
	db := *dbURL
	db.User = url.User("postgres")
	db.Host = "127.0.0.1:5432"
	db.Path = "/" + scaleDatabase
	mapped["IMGD_DATABASE_URL"] = db.String()
	mapped["IMGD_BLOB_URL"] = strings.Replace(env["IMGD_BLOB_URL"], endpoint.Host, "127.0.0.1:"+s3Port, 1)

	return inContainer(r, filepath.Join(dir, "container"), img, func(c *container) error {
		cfg := img.config
		exposed, _ := exposedPort(cfg)
		var running []*process
		defer func() {
			for _, p := range running {
				p.stop(5 * time.Second)
			}
		}()
		api := ""
		for _, n := range dependencyOrder(cf, imgdNames) {
			s := cf.Services[n]
			cmd := append(append([]string(nil), cfg.Entrypoint...), argv(s.Command)...)
			over := map[string]string{}
			for k, v := range mapped {
				over[k] = v
			}
			if s.Restart == "no" {
				out, err := c.exec(ctx, 2*time.Minute, cmd, c.env(over))
				if err != nil {
					r.fail("%s: %q: %v\n%s", n, cmd, err, out)
					return nil
				}
				r.ok("%s: %q exited 0 against PostgreSQL and versitygw", n, cmd)
				continue
			}
			port, err := freePort()
			if err != nil {
				return err
			}
			for k, v := range listenOverrides(cfg, exposed, port) {
				over[k] = v
			}
			p, err := c.start(cmd, c.env(over), n+".log")
			if err != nil {
				return err
			}
			running = append(running, p)
			hc, err := healthcheck(cfg, exposed, port)
			if err != nil {
				return err
			}
			took, err := c.waitHealthy(ctx, p, hc, c.env(over))
			if err != nil {
				r.fail("%s: %v", n, err)
				return nil
			}
			r.ok("%s: %q healthy after %s (HEALTHCHECK in the image)", n, cmd, took.Round(10*time.Millisecond))
			// /readyz answers 200 only once the role reaches the database
			// and the blob store through the mapped URLs.
			if code, err := httpStatus(ctx, "http://127.0.0.1:"+port+"/readyz"); err != nil || code != 200 {
				r.fail("%s: GET /readyz: %d %v", n, code, err)
			} else {
				r.ok("%s: /readyz 200 (PostgreSQL and S3 reachable)", n)
			}
			if len(s.Ports) > 0 {
				api = "http://127.0.0.1:" + port
			}
		}
		if api == "" {
			r.note("scale-out run: no imgd service publishes a port; API not exercised")
			return nil
		}
		outDir := filepath.Join(dir, "results")
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return err
		}
		if err := apiSmoke(ctx, api, filepath.Join(root, o.photo), outDir, os.Stdout); err != nil {
			r.fail("scale-out: %v", err)
		}
		for _, p := range running {
			took, err := p.stop(45 * time.Second)
			if err != nil {
				r.fail("%s: SIGTERM: %v", filepath.Base(p.log), err)
			} else {
				r.ok("%s: SIGTERM to pid %d: exited 0 after %s", strings.TrimSuffix(filepath.Base(p.log), ".log"), p.cmd.Process.Pid, took.Round(10*time.Millisecond))
			}
		}
		running = nil
		return nil
	})
}

func httpStatus(ctx context.Context, u string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// dependencyOrder sorts names so that each comes after the services it
// depends on.
func dependencyOrder(cf *composeFile, names []string) []string {
	var out []string
	done := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		if done[n] {
			return
		}
		done[n] = true
		for _, d := range sortedKeys(cf.Services[n].dependsOn()) {
			if cf.Services[d] != nil {
				visit(d)
			}
		}
		for _, m := range names {
			if m == n {
				out = append(out, n)
			}
		}
	}
	for _, n := range names {
		visit(n)
	}
	return out
}
