package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Docker's default PATH for a container whose image sets none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// mirror is the Debian archive debootstrap and the emulated images use,
// the one the official images name.
const mirror = "http://deb.debian.org/debian"

// imageConfig is the part of an image's configuration that the build and
// the container start read, as `docker inspect` would show it.
type imageConfig struct {
	Env          []string // NAME=value, one per name, in order of definition
	WorkingDir   string
	User         string
	Entrypoint   []string
	Cmd          []string
	Healthcheck  []string // "CMD", argv… or "CMD-SHELL", command
	HealthFlags  map[string]string
	ExposedPorts []string
	Volumes      []string
	Shell        []string
}

func (c imageConfig) clone() imageConfig {
	d := c
	d.Env = append([]string(nil), c.Env...)
	d.Entrypoint = append([]string(nil), c.Entrypoint...)
	d.Cmd = append([]string(nil), c.Cmd...)
	d.Healthcheck = append([]string(nil), c.Healthcheck...)
	d.ExposedPorts = append([]string(nil), c.ExposedPorts...)
	d.Volumes = append([]string(nil), c.Volumes...)
	d.Shell = append([]string(nil), c.Shell...)
	d.HealthFlags = map[string]string{}
	for k, v := range c.HealthFlags {
		d.HealthFlags[k] = v
	}
	return d
}

func (c imageConfig) getenv(name string) (string, bool) {
	for _, kv := range c.Env {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return v, true
		}
	}
	return "", false
}

func (c *imageConfig) setenv(name, value string) {
	for i, kv := range c.Env {
		if k, _, _ := strings.Cut(kv, "="); k == name {
			c.Env[i] = name + "=" + value
			return
		}
	}
	c.Env = append(c.Env, name+"="+value)
}

// baseImage says how one FROM image is emulated: a debootstrap rootfs of
// the same Debian release, plus what the official image adds on top.
type baseImage struct {
	ref       string
	suite     string
	slim      bool     // debian:X-slim: no documentation, man pages, locales
	include   []string // packages the official image installs beyond minbase
	goVersion string   // golang:V-X: the host's /usr/local/go, which must be Go V
	config    imageConfig
}

var (
	golangRef = regexp.MustCompile(`^(?:docker\.io/)?(?:library/)?golang:([0-9]+\.[0-9]+(?:\.[0-9]+)?)-([a-z]+)$`)
	debianRef = regexp.MustCompile(`^(?:docker\.io/)?(?:library/)?debian:([a-z]+)(-slim)?$`)
)

// emulation maps an image reference to its emulation, or explains why the
// image cannot be emulated here.
func emulation(ref string) (baseImage, error) {
	debianConfig := imageConfig{Env: []string{"PATH=" + defaultPath}, Cmd: []string{"bash"}, Shell: []string{"/bin/sh", "-c"}}
	if m := debianRef.FindStringSubmatch(ref); m != nil {
		// Both debian:X and debian:X-slim are minbase builds (debuerreotype);
		// -slim also drops documentation through dpkg path excludes.
		return baseImage{ref: ref, suite: m[1], slim: m[2] != "", config: debianConfig}, nil
	}
	if m := golangRef.FindStringSubmatch(ref); m != nil {
		// golang:V-X is buildpack-deps:X-scm (curl, git, …) plus a C
		// toolchain for cgo, with Go in /usr/local/go and GOPATH=/go.
		c := debianConfig.clone()
		c.Env = []string{
			"PATH=/go/bin:/usr/local/go/bin:" + defaultPath,
			"GOLANG_VERSION=" + m[1],
			"GOTOOLCHAIN=local",
			"GOPATH=/go",
		}
		c.WorkingDir = "/go"
		return baseImage{
			ref: ref, suite: m[2], goVersion: m[1], config: c,
			include: []string{"ca-certificates", "curl", "gnupg", "netbase", "wget", "git", "openssh-client", "procps",
				"g++", "gcc", "libc6-dev", "make", "pkg-config"},
		}, nil
	}
	return baseImage{}, fmt.Errorf("image %s: only debian:RELEASE[-slim] and golang:VERSION-RELEASE can be emulated", ref)
}

// key names the cached rootfs of the emulation; it changes with the recipe.
func (bi baseImage) key() string {
	h := sha256.Sum256([]byte(fmt.Sprint("base-v1", bi.suite, bi.slim, bi.include, bi.goVersion)))
	name := strings.NewReplacer(":", "-", "/", "-").Replace(bi.ref)
	return name + "-" + hex.EncodeToString(h[:])[:12]
}

// slimExcludes is what debian:*-slim's dpkg configuration leaves out.
const slimExcludes = `path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
`

// ensureBase returns the cached rootfs of bi, building it when missing:
// debootstrap, the official image's apt sources (with -updates and
// -security, which debootstrap leaves out) and an upgrade from them, as
// the image published on Docker Hub would have.
func ensureBase(ctx context.Context, cacheDir string, bi baseImage, hostGo string, log io.Writer) (string, error) {
	final := filepath.Join(cacheDir, "base", bi.key())
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}
	if bi.goVersion != "" && hostGo != "go"+bi.goVersion {
		return "", fmt.Errorf("%s wants Go %s, the host has %s in /usr/local/go: cannot emulate this image here", bi.ref, bi.goVersion, hostGo)
	}
	start := time.Now()
	tmp := final + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	fmt.Fprintf(log, "  base %s: debootstrap %s into %s (minutes, once)\n", bi.ref, bi.suite, final)
	args := []string{"--variant=minbase"}
	if len(bi.include) > 0 {
		args = append(args, "--include="+strings.Join(bi.include, ","))
	}
	args = append(args, bi.suite, tmp, mirror)
	logPath := final + ".log"
	if err := runLogged(ctx, logPath, "debootstrap", args...); err != nil {
		return "", fmt.Errorf("debootstrap %s: %w (log: %s)", bi.suite, err, logPath)
	}
	sources := fmt.Sprintf(`Types: deb
URIs: http://deb.debian.org/debian
Suites: %[1]s %[1]s-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: %[1]s-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`, bi.suite)
	writes := map[string]string{
		"etc/apt/sources.list.d/debian.sources": sources,
		// As in the official images: packages never start services at
		// build time.
		"usr/sbin/policy-rc.d": "#!/bin/sh\nexit 101\n",
	}
	if bi.slim {
		writes["etc/dpkg/dpkg.cfg.d/docker"] = slimExcludes
	}
	for name, text := range writes {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(text), 0o755); err != nil {
			return "", err
		}
	}
	if err := os.Remove(filepath.Join(tmp, "etc/apt/sources.list")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	err := withChroot(tmp, true, nil, func() error {
		return runLogged(ctx, logPath, "chroot", tmp, "/bin/sh", "-c",
			"apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -y -qq upgrade && apt-get clean && rm -rf /var/lib/apt/lists/*")
	})
	if err != nil {
		return "", fmt.Errorf("upgrade %s: %w (log: %s)", bi.ref, err, logPath)
	}
	if bi.goVersion != "" {
		if err := runLogged(ctx, logPath, "cp", "-a", "/usr/local/go", filepath.Join(tmp, "usr/local/go")); err != nil {
			return "", err
		}
		for _, d := range []string{"go/src", "go/bin"} {
			if err := os.MkdirAll(filepath.Join(tmp, d), 0o777); err != nil {
				return "", err
			}
		}
		if err := runLogged(ctx, logPath, "chmod", "-R", "1777", filepath.Join(tmp, "go")); err != nil {
			return "", err
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", err
	}
	fmt.Fprintf(log, "  base %s: built in %s\n", bi.ref, time.Since(start).Round(time.Second))
	return final, nil
}

// hostGoVersion is the version `/usr/local/go/bin/go version` reports.
func hostGoVersion() string {
	b, err := os.ReadFile("/usr/local/go/VERSION")
	if err != nil {
		return "none"
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(first)
}

// runLogged runs a host command, appending its output to logPath.
func runLogged(ctx context.Context, logPath, name string, args ...string) error {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "+ %s %s\n", name, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	return cmd.Run()
}

// mountOverlay mounts the layers (bottom first) at target: writable
// through upper and work when upper is set, read-only otherwise.
func mountOverlay(target string, layers []string, upper, work string) error {
	if upper == "" && len(layers) == 1 {
		if err := syscall.Mount(layers[0], target, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s: %w", target, err)
		}
		return syscall.Mount("", target, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, "")
	}
	lowers := make([]string, 0, len(layers))
	for i := len(layers) - 1; i >= 0; i-- {
		lowers = append(lowers, layers[i])
	}
	opts := "lowerdir=" + strings.Join(lowers, ":")
	if upper != "" {
		opts += ",upperdir=" + upper + ",workdir=" + work
	}
	if err := syscall.Mount("overlay", target, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay at %s: %w", target, err)
	}
	return nil
}

// unmount detaches target, lazily if something still holds it, so that a
// failed step never leaves a mount behind.
func unmount(target string) error {
	if err := syscall.Unmount(target, 0); err != nil {
		if err2 := syscall.Unmount(target, syscall.MNT_DETACH); err2 != nil {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
	return nil
}

// bindMount is a host path shown inside the chroot.
type bindMount struct {
	host, target string // target is absolute inside the root
	file         bool
}

// withChroot runs fn with /proc and /dev (and, for builds, the host's DNS
// configuration and the given binds) mounted in root, and unmounts them
// afterwards whatever fn returns.
func withChroot(root string, build bool, binds []bindMount, fn func() error) (err error) {
	var mounted []string
	defer func() {
		for i := len(mounted) - 1; i >= 0; i-- {
			if uerr := unmount(mounted[i]); uerr != nil && err == nil {
				err = uerr
			}
		}
	}()
	proc := filepath.Join(root, "proc")
	if err := os.MkdirAll(proc, 0o555); err != nil {
		return err
	}
	if err := syscall.Mount("proc", proc, "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount %s: %w", proc, err)
	}
	mounted = append(mounted, proc)
	all := []bindMount{{host: "/dev", target: "/dev"}}
	if build {
		// RUN lines see the host's resolver, as under `docker build`.
		all = append(all, bindMount{host: "/etc/resolv.conf", target: "/etc/resolv.conf", file: true})
	}
	all = append(all, binds...)
	for _, b := range all {
		t := filepath.Join(root, b.target)
		if b.file {
			if _, err := os.Stat(t); err != nil {
				if err := os.WriteFile(t, nil, 0o644); err != nil {
					return err
				}
			}
		} else if err := os.MkdirAll(t, 0o755); err != nil {
			return err
		}
		if err := syscall.Mount(b.host, t, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s at %s: %w", b.host, t, err)
		}
		mounted = append(mounted, t)
	}
	return fn()
}

// account is a user of an image, from its /etc/passwd and /etc/group.
type account struct {
	uid, gid uint32
	home     string
}

// lookupUser resolves a USER value (name, uid, name:group, uid:gid) in
// the image rooted at root; "" is root.
func lookupUser(root, spec string) (account, error) {
	if spec == "" {
		spec = "root"
	}
	user, group, hasGroup := strings.Cut(spec, ":")
	acc := account{home: "/"}
	found := false
	err := scanColon(filepath.Join(root, "etc/passwd"), func(f []string) bool {
		if len(f) < 6 || (f[0] != user && f[2] != user) {
			return true
		}
		uid, _ := strconv.Atoi(f[2])
		gid, _ := strconv.Atoi(f[3])
		acc = account{uid: uint32(uid), gid: uint32(gid), home: f[5]}
		found = true
		return false
	})
	if err != nil {
		return acc, err
	}
	if !found {
		n, err := strconv.ParseUint(user, 10, 32)
		if err != nil {
			return acc, fmt.Errorf("USER %s: no such user in the image's /etc/passwd", spec)
		}
		acc.uid, acc.gid = uint32(n), uint32(n)
	}
	if hasGroup {
		gid, err := lookupGroup(root, group)
		if err != nil {
			return acc, err
		}
		acc.gid = gid
	}
	return acc, nil
}

func lookupGroup(root, group string) (uint32, error) {
	var gid uint32
	found := false
	err := scanColon(filepath.Join(root, "etc/group"), func(f []string) bool {
		if len(f) >= 3 && (f[0] == group || f[2] == group) {
			n, _ := strconv.Atoi(f[2])
			gid, found = uint32(n), true
			return false
		}
		return true
	})
	if err == nil && !found {
		n, perr := strconv.ParseUint(group, 10, 32)
		if perr != nil {
			return 0, fmt.Errorf("group %s: not in the image's /etc/group", group)
		}
		gid = uint32(n)
	}
	return gid, err
}

func scanColon(name string, fn func([]string) bool) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if !fn(strings.Split(sc.Text(), ":")) {
			break
		}
	}
	return sc.Err()
}

// chrootCommand prepares argv to run inside root as acc, with env and the
// working directory dir (inside root). argv[0] is looked up in the PATH of
// env inside the root, never on the host.
func chrootCommand(root string, argv, env []string, dir string, acc account) (*exec.Cmd, error) {
	if len(argv) == 0 {
		return nil, errors.New("empty command")
	}
	bin := argv[0]
	if !strings.Contains(bin, "/") {
		pathVar := defaultPath
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok {
				pathVar = v
			}
		}
		found := ""
		for _, d := range filepath.SplitList(pathVar) {
			if _, err := os.Lstat(filepath.Join(root, d, bin)); err == nil {
				found = path.Join(d, bin)
				break
			}
		}
		if found == "" {
			return nil, fmt.Errorf("%s: not found in PATH %s inside the image", bin, pathVar)
		}
		bin = found
	}
	if dir == "" {
		dir = "/"
	}
	cmd := &exec.Cmd{Path: bin, Args: argv, Env: env, Dir: dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     root,
		Credential: &syscall.Credential{Uid: acc.uid, Gid: acc.gid, Groups: []uint32{acc.gid}},
		Setpgid:    true,
	}
	return cmd, nil
}
