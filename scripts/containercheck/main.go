// Command containercheck verifies imgd's Dockerfile and docker-compose.yml
// on a machine without a Docker engine. It reads the Dockerfile itself and
// emulates what `docker build` and `docker run` would do with it: each
// stage's base image is a debootstrap rootfs of the same Debian release,
// RUN lines run in a chroot on overlayfs layers, COPY honours
// .dockerignore, and the last stage's ENTRYPOINT and CMD are started as
// its USER with its ENV, health-checked with its HEALTHCHECK and used
// through the API. The Compose file is checked offline against itself,
// the image and the environment variables imgd reads.
//
// It needs root (chroot, mounts), debootstrap, python3-yaml and network
// access to the Debian archive and the Go module proxy. See
// scripts/container-check.sh, which installs what is missing.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

type buildArgs map[string]string

func (b buildArgs) String() string { return fmt.Sprint(map[string]string(b)) }
func (b buildArgs) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("want NAME=value, got %q", s)
	}
	b[k] = v
	return nil
}

func main() {
	home, _ := os.UserHomeDir()
	root := flag.String("dir", ".", "repository root: the build context, with Dockerfile and docker-compose.yml")
	cache := flag.String("cache", filepath.Join(home, ".cache", "imgd-container"), "base images, layers and logs; reused by the next run")
	photo := flag.String("photo", "testdata/photos/jpeg-icc.jpg", "photo to upload to the running container (relative to -dir)")
	staticOnly := flag.Bool("static", false, "check the files without building or running anything")
	scale := flag.Bool("scale", true, "also run the Compose file's imgd services from the image against the host's PostgreSQL and versitygw (skipped with a note when either is missing)")
	args := buildArgs{}
	flag.Var(args, "build-arg", "NAME=value, as docker build --build-arg (repeatable)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	r := &report{out: os.Stdout}
	err := run(ctx, r, options{root: *root, cache: *cache, photo: *photo, static: *staticOnly, scale: *scale, buildArgs: args})
	if err != nil {
		r.fail("%v", err)
	}
	fmt.Printf("\ncontainer-check: %d failure(s), %d note(s) in %s\n", r.fails, r.notes, time.Since(start).Round(time.Second))
	if r.fails > 0 {
		os.Exit(1)
	}
}

type options struct {
	root, cache, photo string
	static, scale      bool
	buildArgs          map[string]string
}

func run(ctx context.Context, r *report, o options) error {
	root, err := filepath.Abs(o.root)
	if err != nil {
		return err
	}
	text, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		return err
	}
	df, err := parseDockerfile(string(text))
	if err != nil {
		return fmt.Errorf("parse Dockerfile: %w", err)
	}
	ignore, _ := os.ReadFile(filepath.Join(root, ".dockerignore"))
	rules, err := parseDockerignore(string(ignore))
	if err != nil {
		return err
	}
	files, err := buildContext(root, rules)
	if err != nil {
		return err
	}
	modCache, _ := exec.Command("/usr/local/go/bin/go", "env", "GOMODCACHE").Output()
	b := &builder{
		contextDir: root, cacheDir: o.cache, df: df, buildArgs: o.buildArgs, rules: rules, files: files,
		hostGo: hostGoVersion(), goModCache: strings.TrimSpace(string(modCache)), log: os.Stdout,
	}

	fmt.Println("== Dockerfile (static)")
	r.ok("Dockerfile parses: %d stages, build context %d entries after .dockerignore", len(df.stages), len(files))
	dry := *b
	dry.dry = true
	img, err := dry.build(ctx)
	if err != nil {
		r.fail("%v", err)
	} else {
		checkDockerfile(r, root, &dry, img)
	}

	fmt.Println("== docker-compose.yml (static)")
	var cf *composeFile
	if img != nil {
		cf = checkCompose(r, root, "docker-compose.yml", img.config)
	}
	if o.static || r.fails > 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("building needs root (chroot, mounts); run scripts/container-check.sh as root")
	}

	fmt.Println("== build (debootstrap base images, RUN in chroot, overlayfs layers)")
	if hostTrustsMore() {
		r.note("this host trusts CAs of its own (/usr/local/share/ca-certificates, a TLS-intercepting proxy): RUN lines get its bundle as SSL_CERT_FILE")
	}
	buildStart := time.Now()
	img, err = b.build(ctx)
	if err != nil {
		return err
	}
	r.ok("image built in %s", time.Since(buildStart).Round(time.Second))
	if n, err := b.prune(); err != nil {
		r.note("prune old layers: %v", err)
	} else if n > 0 {
		fmt.Printf("  pruned %d unused cached layer(s)\n", n)
	}

	fmt.Println("== run (the image's ENTRYPOINT + CMD as its USER, in a chroot)")
	if err := runContainer(ctx, r, o, root, img, cf); err != nil {
		return err
	}
	if !o.scale || cf == nil {
		return nil
	}
	fmt.Println("== docker-compose.yml's imgd services from the image, service names mapped to loopback")
	return runScale(ctx, r, o, root, img, cf)
}

// checkDockerfile checks what can be known without building: the ports,
// the health check and the Go and Debian versions agree.
func checkDockerfile(r *report, root string, b *builder, img *builtStage) {
	cfg := img.config
	exposed, err := exposedPort(cfg)
	if err != nil {
		r.fail("%v", err)
		return
	}
	listening := false
	for _, kv := range cfg.Env {
		k, v, _ := strings.Cut(kv, "=")
		if h, p, err := net.SplitHostPort(v); err == nil && p == exposed {
			listening = true
			if h == "" || h == "0.0.0.0" || h == "::" {
				r.ok("%s=%s listens on every interface on the EXPOSEd port %s", k, v, exposed)
			} else {
				r.fail("%s=%s: a published port cannot reach an address other than 0.0.0.0 inside a container", k, v)
			}
		}
	}
	if !listening {
		r.fail("no ENV of the image sets a listen address on the EXPOSEd port %s", exposed)
	}
	if hc, err := healthcheck(cfg, exposed, exposed); err != nil {
		r.fail("%v", err)
	} else if !strings.Contains(strings.Join(hc, " "), "127.0.0.1:"+exposed+"/") && !strings.Contains(strings.Join(hc, " "), "localhost:"+exposed+"/") {
		r.fail("HEALTHCHECK %q does not ask the container's own port %s", hc, exposed)
	} else {
		r.ok("HEALTHCHECK asks 127.0.0.1:%s", exposed)
	}
	// A numeric USER lets a runtime that must refuse root (Kubernetes'
	// runAsNonRoot) check it without reading the image's /etc/passwd.
	if u, _, _ := strings.Cut(cfg.User, ":"); u == "" || u == "0" || u == "root" {
		r.fail("USER %q: the image runs as root", cfg.User)
	} else if strings.Trim(u, "0123456789") != "" {
		r.fail("USER %s is a name: runAsNonRoot policies refuse an image whose user they cannot tell is not root; use the uid", cfg.User)
	} else {
		r.ok("USER %s is numeric and not root", cfg.User)
	}
	if len(cfg.Entrypoint)+len(cfg.Cmd) == 0 {
		r.fail("the image has neither ENTRYPOINT nor CMD")
	}
	// The Go of the build stage must be at least go.mod's, since
	// GOTOOLCHAIN=local forbids downloading a newer one.
	mod, _ := os.ReadFile(filepath.Join(root, "go.mod"))
	want := regexp.MustCompile(`(?m)^go ([0-9.]+)`).FindSubmatch(mod)
	suites := map[string]bool{}
	for _, st := range b.stages {
		bi, err := emulation(st.ref)
		if err != nil {
			continue // FROM an earlier stage
		}
		suites[bi.suite] = true
		if bi.goVersion != "" && want != nil {
			if versionLess(bi.goVersion, string(want[1])) {
				r.fail("%s is older than go.mod's go %s; with GOTOOLCHAIN=local the build fails", st.ref, want[1])
			} else {
				r.ok("%s satisfies go.mod's go %s", st.ref, want[1])
			}
		}
	}
	if len(suites) == 1 {
		r.ok("every stage is on the same Debian release (%s): the runtime has the libvips the binary was linked with", sortedKeys(suites)[0])
	} else {
		r.fail("stages on different Debian releases %q: the runtime's shared libraries may not match the build's", sortedKeys(suites))
	}
}

// versionLess compares dotted version numbers.
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			fmt.Sscan(as[i], &x)
		}
		if i < len(bs) {
			fmt.Sscan(bs[i], &y)
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// runContainer starts the image the way `docker run -p PORT:EXPOSE IMAGE`
// would, checks it and stops it.
func runContainer(ctx context.Context, r *report, o options, root string, img *builtStage, cf *composeFile) error {
	return inContainer(r, filepath.Join(o.cache, "run"), img, func(c *container) error {
		cfg := img.config
		exposed, _ := exposedPort(cfg)
		port, err := freePort()
		if err != nil {
			return err
		}
		over := listenOverrides(cfg, exposed, port)
		env := c.env(over)
		argv := append(append([]string(nil), cfg.Entrypoint...), cfg.Cmd...)

		// Every shared library of the entrypoint resolves in the runtime.
		bin, err := c.command(argv, env)
		if err != nil {
			return err
		}
		if out, err := c.exec(ctx, 20*time.Second, []string{"ldd", bin.Path}, env); err != nil || strings.Contains(out, "not found") {
			r.fail("ldd %s in the runtime image: %v\n%s", bin.Path, err, out)
		} else {
			r.ok("ldd %s: all %d shared libraries found in the runtime image", bin.Path, strings.Count(out, "=>"))
		}
		if cf != nil {
			checkComposeInImage(ctx, r, c, cf, cfg, env)
		}

		fmt.Printf("  start %q as %s (uid %d), %s\n", argv, cfg.User, c.account.uid, formatOverrides(over))
		p, err := c.start(argv, env, "imgd.log")
		if err != nil {
			return err
		}
		stopped := false
		defer func() {
			if !stopped {
				p.stop(5 * time.Second)
			}
		}()
		hc, err := healthcheck(cfg, exposed, port)
		if err != nil {
			return err
		}
		took, err := c.waitHealthy(ctx, p, hc, env)
		if err != nil {
			return err
		}
		r.ok("HEALTHCHECK %q passed inside the container after %s (pid %d)", hc, took.Round(10*time.Millisecond), p.cmd.Process.Pid)

		outDir := filepath.Join(o.cache, "results")
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return err
		}
		if err := apiSmoke(ctx, "http://127.0.0.1:"+port, filepath.Join(root, o.photo), outDir, os.Stdout); err != nil {
			r.fail("%v; log %s:\n%s", err, p.log, tail(p.log, 15))
		}

		for _, vol := range cfg.Volumes {
			n, wrong, err := ownedBy(filepath.Join(c.root, vol), c.account.uid)
			switch {
			case err != nil:
				r.fail("VOLUME %s: %v", vol, err)
			case len(wrong) > 0:
				r.fail("VOLUME %s: %d entries not owned by uid %d: %s", vol, len(wrong), c.account.uid, strings.Join(wrong, ", "))
			default:
				r.ok("VOLUME %s: all %d entries (the directory, the database, the blobs) owned by %s (uid %d)", vol, n, cfg.User, c.account.uid)
			}
		}

		took, err = p.stop(45 * time.Second)
		stopped = true
		if err != nil {
			r.fail("stop pid %d with SIGTERM: %v", p.cmd.Process.Pid, err)
		} else {
			r.ok("SIGTERM to pid %d: exited 0 after %s", p.cmd.Process.Pid, took.Round(10*time.Millisecond))
		}
		if log, err := os.ReadFile(p.log); err == nil {
			if v, _ := cfg.getenv("IMGD_LOG_FORMAT"); v == "json" && !strings.HasPrefix(strings.TrimSpace(string(log)), "{") {
				r.fail("IMGD_LOG_FORMAT=json but the log is not JSON: %s", tail(p.log, 3))
			}
		}
		return nil
	})
}

func formatOverrides(over map[string]string) string {
	var s []string
	for _, k := range sortedKeys(over) {
		s = append(s, k+"="+over[k])
	}
	if len(s) == 0 {
		return "no overrides"
	}
	return "override " + strings.Join(s, " ") + " (the port mapping)"
}

// checkComposeInImage runs, in the built image, what the Compose file asks
// of it: each role it names is a command of the binary, and each service's
// environment is a valid imgd configuration.
func checkComposeInImage(ctx context.Context, r *report, c *container, cf *composeFile, cfg imageConfig, env []string) {
	help, err := c.exec(ctx, 10*time.Second, append(append([]string(nil), cfg.Entrypoint...), "help"), env)
	if err != nil {
		r.fail("%s help: %v", strings.Join(cfg.Entrypoint, " "), err)
		return
	}
	for _, n := range sortedKeys(cf.Services) {
		s := cf.Services[n]
		if s == nil || !s.builtHere() {
			continue
		}
		cmd := argv(s.Command)
		if len(cmd) == 0 {
			cmd = cfg.Cmd
		}
		if len(cmd) == 0 || !strings.Contains(help, " "+cfg.Entrypoint[len(cfg.Entrypoint)-1]+" "+cmd[0]+" ") {
			r.fail("service %s runs %q, which `imgd help` does not list", n, cmd)
			continue
		}
		senv := append([]string(nil), env...)
		for k, v := range s.envMap() {
			senv = append(senv, k+"="+v)
		}
		out, err := c.exec(ctx, 10*time.Second, append(append([]string(nil), cfg.Entrypoint...), "config"), senv)
		if err != nil {
			r.fail("service %s: imgd config rejects its environment: %v: %s", n, err, strings.TrimSpace(out))
			continue
		}
		r.ok("service %s: `imgd %s` is a command of the image, `imgd config` accepts its environment", n, cmd[0])
		// Docker's SIGKILL must not come before imgd's own shutdown
		// deadline, or running tasks wait for the stuck-job rescue.
		for _, line := range strings.Split(out, "\n") {
			v, ok := strings.CutPrefix(line, "IMGD_SHUTDOWN_TIMEOUT=")
			if !ok {
				continue
			}
			shut, err1 := time.ParseDuration(v)
			grace, err2 := s.stopGrace()
			switch {
			case err1 != nil || err2 != nil:
				r.fail("service %s: IMGD_SHUTDOWN_TIMEOUT %q, stop_grace_period %q: %v %v", n, v, s.StopGrace, err1, err2)
			case grace <= shut:
				r.fail("service %s: Docker kills it %s after SIGTERM (stop_grace_period), before IMGD_SHUTDOWN_TIMEOUT=%s is over", n, grace, shut)
			default:
				r.ok("service %s: stop_grace_period %s > IMGD_SHUTDOWN_TIMEOUT %s", n, grace, shut)
			}
		}
	}
}
