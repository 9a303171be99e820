package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// builder runs a Dockerfile's stages as overlayfs layers of emulated base
// images. Every RUN, COPY and WORKDIR leaves one layer under
// cacheDir/layers, named by a digest of everything it depends on (the
// layers below it, the instruction, its environment, and for COPY the
// bytes it copies), so a rerun reuses each layer whose inputs did not
// change, as Docker's layer cache does.
type builder struct {
	contextDir string
	cacheDir   string
	df         *dockerfile
	buildArgs  map[string]string
	rules      ignoreRules
	files      []contextFile // the build context, after .dockerignore
	hostGo     string
	goModCache string
	log        io.Writer

	// dry computes the stages' configurations without building anything:
	// the static checks need them even when a build cannot run.
	dry bool

	stages []*builtStage
	used   map[string]bool // layer names this build used, for pruning
}

// builtStage is the result of one stage: its layers (bottom first) and
// its image configuration.
type builtStage struct {
	def    *stageDef
	ref    string // the expanded FROM
	layers []string
	key    string
	config imageConfig
}

func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		io.WriteString(h, p)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// globalArgs returns the values of the ARGs declared before the first
// FROM, with -build-arg overrides.
func (b *builder) globalArgs() (map[string]string, error) {
	vals := map[string]string{}
	for _, in := range b.df.globalArgs {
		kv, err := keyValues("ARG", in.args, mapLookup(vals))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", in.line, err)
		}
		for _, p := range kv {
			v := p[1]
			if o, ok := b.buildArgs[p[0]]; ok {
				v = o
			} else if v == "\x00unset" {
				v = ""
			}
			vals[p[0]] = v
		}
	}
	return vals, nil
}

func mapLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// build runs every stage in order and returns the last one, the image.
func (b *builder) build(ctx context.Context) (*builtStage, error) {
	global, err := b.globalArgs()
	if err != nil {
		return nil, err
	}
	b.used = map[string]bool{}
	if !b.dry {
		if err := b.prepareBases(ctx, global); err != nil {
			return nil, err
		}
	}
	for _, def := range b.df.stages {
		st, err := b.buildStage(ctx, def, global)
		if err != nil {
			return nil, fmt.Errorf("stage %d (%s): %w", def.index, def.from, err)
		}
		b.stages = append(b.stages, st)
	}
	return b.stages[len(b.stages)-1], nil
}

func (b *builder) buildStage(ctx context.Context, def *stageDef, global map[string]string) (*builtStage, error) {
	ref, err := expand(def.from, mapLookup(global))
	if err != nil {
		return nil, err
	}
	st := &builtStage{def: def, ref: ref}
	name := def.name
	if name == "" {
		name = strconv.Itoa(def.index)
	}
	if !b.dry {
		fmt.Fprintf(b.log, "stage %s: FROM %s\n", name, ref)
	}
	if prev := b.builtStage(ref); prev != nil {
		st.layers = append(st.layers, prev.layers...)
		st.key, st.config = prev.key, prev.config.clone()
	} else {
		bi, err := emulation(ref)
		if err != nil {
			return nil, err
		}
		base := "(dry run)"
		if !b.dry {
			if base, err = ensureBase(ctx, b.cacheDir, bi, b.hostGo, b.log); err != nil {
				return nil, err
			}
		}
		st.layers = []string{base}
		st.key = digest("base", filepath.Base(base))
		st.config = bi.config.clone()
	}
	args := map[string]string{} // ARGs declared in this stage
	for _, in := range def.instrs {
		// ENV wins over an ARG of the same name when expanding.
		lookup := func(k string) (string, bool) {
			if v, ok := st.config.getenv(k); ok {
				return v, true
			}
			v, ok := args[k]
			return v, ok
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := b.step(ctx, st, in, args, global, lookup); err != nil {
			return nil, fmt.Errorf("line %d %s: %w", in.line, in.cmd, err)
		}
	}
	return st, nil
}

// prepareBases builds the missing base images of all stages at once: on a
// cold cache, each is a debootstrap of a few minutes, mostly waiting on
// downloads.
func (b *builder) prepareBases(ctx context.Context, global map[string]string) error {
	var wg sync.WaitGroup
	errs := make([]error, len(b.df.stages))
	seen := map[string]bool{}
	for i, def := range b.df.stages {
		ref, err := expand(def.from, mapLookup(global))
		if err != nil {
			return err
		}
		bi, err := emulation(ref)
		if err != nil || seen[bi.key()] {
			continue // an earlier stage, or reported when the stage is built
		}
		seen[bi.key()] = true
		if _, err := os.Stat(filepath.Join(b.cacheDir, "base", bi.key())); err == nil {
			fmt.Fprintf(b.log, "  base %s: cached\n", ref)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = ensureBase(ctx, b.cacheDir, bi, b.hostGo, b.log)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// builtStage finds an earlier stage by name or index.
func (b *builder) builtStage(ref string) *builtStage {
	for _, s := range b.stages {
		if (s.def.name != "" && s.def.name == strings.ToLower(ref)) || strconv.Itoa(s.def.index) == ref {
			return s
		}
	}
	return nil
}

func (b *builder) step(ctx context.Context, st *builtStage, in instruction, args, global map[string]string, lookup func(string) (string, bool)) error {
	c := &st.config
	switch in.cmd {
	case "ARG":
		kv, err := keyValues("ARG", in.args, lookup)
		if err != nil {
			return err
		}
		for _, p := range kv {
			v := p[1]
			if o, ok := b.buildArgs[p[0]]; ok {
				v = o
			} else if v == "\x00unset" {
				v = global[p[0]] // ARG NAME inherits the global default
			}
			args[p[0]] = v
			st.key = digest(st.key, "ARG", p[0], v)
		}
	case "ENV":
		kv, err := keyValues("ENV", in.args, lookup)
		if err != nil {
			return err
		}
		for _, p := range kv {
			c.setenv(p[0], p[1])
		}
		st.key = digest(st.key, "ENV", strings.Join(c.Env, "\n"))
	case "USER":
		u, err := expand(in.args, lookup)
		if err != nil {
			return err
		}
		c.User = u
		st.key = digest(st.key, "USER", u)
	case "WORKDIR":
		w, err := expand(in.args, lookup)
		if err != nil {
			return err
		}
		if !path.IsAbs(w) {
			w = path.Join("/", c.WorkingDir, w)
		}
		c.WorkingDir = path.Clean(w)
		return b.layer(ctx, st, digest(st.key, "WORKDIR", c.WorkingDir), in, func(root string) error {
			return os.MkdirAll(filepath.Join(root, c.WorkingDir), 0o755)
		})
	case "EXPOSE":
		ws, err := words(in.args, lookup)
		if err != nil {
			return err
		}
		c.ExposedPorts = append(c.ExposedPorts, ws...)
	case "VOLUME":
		vs, ok := execForm(in.args)
		if !ok {
			var err error
			if vs, err = words(in.args, lookup); err != nil {
				return err
			}
		}
		c.Volumes = append(c.Volumes, vs...)
	case "ENTRYPOINT", "CMD", "SHELL":
		argv, ok := execForm(in.args)
		if !ok {
			if in.cmd == "SHELL" {
				return errors.New("SHELL wants the JSON form")
			}
			argv = append(append([]string(nil), c.Shell...), in.args)
		}
		switch in.cmd {
		case "ENTRYPOINT":
			c.Entrypoint = argv
			c.Cmd = nil // an ENTRYPOINT resets the CMD inherited from the base image
		case "CMD":
			c.Cmd = argv
		default:
			c.Shell = argv
		}
	case "HEALTHCHECK":
		rest := strings.TrimSpace(in.args)
		if strings.EqualFold(rest, "NONE") {
			c.Healthcheck = []string{"NONE"}
			break
		}
		kw, cmdArgs, _ := strings.Cut(rest, " ")
		if !strings.EqualFold(kw, "CMD") {
			return fmt.Errorf("want HEALTHCHECK [options] CMD …, got %q", rest)
		}
		if argv, ok := execForm(cmdArgs); ok {
			c.Healthcheck = append([]string{"CMD"}, argv...)
		} else {
			c.Healthcheck = []string{"CMD-SHELL", strings.TrimSpace(cmdArgs)}
		}
		c.HealthFlags = map[string]string{}
		for _, f := range in.flags {
			k, v, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
			c.HealthFlags[k] = v
		}
	case "LABEL", "STOPSIGNAL", "MAINTAINER":
		// Metadata that changes nothing this check can observe.
	case "RUN":
		return b.run(ctx, st, in, args)
	case "COPY":
		return b.copy(ctx, st, in, lookup)
	default:
		return fmt.Errorf("instruction %s is not emulated by this check", in.cmd)
	}
	return nil
}

// cacheMounts turns RUN --mount=type=cache flags into bind mounts of
// directories kept on the host, which is what a BuildKit cache mount is:
// content that outlives the build and never enters a layer. The module
// cache is the host's own, so `go mod download` fetches only what the
// host does not have yet.
func (b *builder) cacheMounts(in instruction) ([]bindMount, []string, error) {
	var binds []bindMount
	var desc []string
	for _, f := range in.flags {
		v, ok := strings.CutPrefix(f, "--mount=")
		if !ok {
			return nil, nil, fmt.Errorf("RUN flag %s is not emulated", f)
		}
		opts := map[string]string{}
		for _, kv := range strings.Split(v, ",") {
			k, val, _ := strings.Cut(kv, "=")
			opts[k] = val
		}
		target := opts["target"]
		if target == "" {
			target = opts["dst"]
		}
		if opts["type"] != "cache" || target == "" {
			return nil, nil, fmt.Errorf("only --mount=type=cache,target=… is emulated, got %s", f)
		}
		host := filepath.Join(b.cacheDir, "mounts", strings.NewReplacer("/", "_").Replace(strings.Trim(target, "/")))
		if target == "/go/pkg/mod" && b.goModCache != "" {
			host = b.goModCache
		}
		if err := os.MkdirAll(host, 0o755); err != nil {
			return nil, nil, err
		}
		binds = append(binds, bindMount{host: host, target: target})
		desc = append(desc, target+"="+host)
	}
	return binds, desc, nil
}

func (b *builder) run(ctx context.Context, st *builtStage, in instruction, args map[string]string) error {
	c := st.config
	argv, ok := execForm(in.args)
	if !ok {
		argv = append(append([]string(nil), c.Shell...), in.args)
	}
	binds, mounts, err := b.cacheMounts(in)
	if err != nil {
		return err
	}
	// RUN sees the stage's ARGs as environment variables, below ENV.
	env := append([]string(nil), c.Env...)
	var names []string
	for k := range args {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if _, ok := c.getenv(k); !ok {
			env = append(env, k+"="+args[k])
		}
	}
	key := digest(st.key, "RUN", strings.Join(argv, "\x01"), strings.Join(env, "\x01"), c.WorkingDir, c.User, strings.Join(mounts, ","))
	return b.layer(ctx, st, key, in, func(root string) error {
		acc, err := lookupUser(root, c.User)
		if err != nil {
			return err
		}
		// As under Docker, HOME is the user's home unless ENV sets it (Go
		// needs it for its build cache).
		env := env
		if _, ok := c.getenv("HOME"); !ok {
			env = append(env[:len(env):len(env)], "HOME="+acc.home)
		}
		logPath := filepath.Join(b.cacheDir, "logs", fmt.Sprintf("line%d-%s.log", in.line, key))
		if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
			return err
		}
		f, err := os.Create(logPath)
		if err != nil {
			return err
		}
		defer f.Close()
		binds := binds
		if hostTrustsMore() {
			// This host reaches the Internet through a TLS-intercepting
			// proxy whose CA only the host trusts: RUN lines get the host's
			// bundle through SSL_CERT_FILE (read by Go, curl and git), as a
			// docker build here would need too. It stays out of the layer
			// and of the cache key.
			binds = append(binds[:len(binds):len(binds)], bindMount{host: hostCABundle, target: runCABundle, file: true})
			env = append(env[:len(env):len(env)], "SSL_CERT_FILE="+runCABundle)
			defer os.Remove(filepath.Join(root, runCABundle))
		}
		return withChroot(root, true, binds, func() error {
			cmd, err := chrootCommand(root, argv, env, c.WorkingDir, acc)
			if err != nil {
				return err
			}
			cmd.Stdout, cmd.Stderr = f, f
			if err := runCtx(ctx, cmd); err != nil {
				return fmt.Errorf("%w; last lines of %s:\n%s", err, logPath, tail(logPath, 25))
			}
			return nil
		})
	})
}

const (
	hostCABundle = "/etc/ssl/certs/ca-certificates.crt"
	runCABundle  = "/run/containercheck-ca.crt"
)

// hostTrustsMore reports whether the host trusts certificate authorities
// of its own (/usr/local/share/ca-certificates), which a Debian image
// does not.
func hostTrustsMore() bool {
	m, _ := filepath.Glob("/usr/local/share/ca-certificates/*.crt")
	_, err := os.Stat(hostCABundle)
	return len(m) > 0 && err == nil
}

// runCtx runs cmd and kills it (by its PID) when ctx ends.
func runCtx(ctx context.Context, cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		cmd.Process.Kill()
		<-done
		return ctx.Err()
	}
}

func tail(name string, n int) string {
	b, _ := os.ReadFile(name)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

// layer runs fn on the stage's filesystem with a fresh upper directory
// and keeps that directory as the layer named key, or reuses the layer
// when it exists already.
func (b *builder) layer(ctx context.Context, st *builtStage, key string, in instruction, fn func(root string) error) error {
	st.key = key
	if b.dry {
		return nil
	}
	final := filepath.Join(b.cacheDir, "layers", key)
	b.used[key] = true
	short := in.String()
	if len(short) > 90 {
		short = short[:87] + "..."
	}
	if _, err := os.Stat(final); err == nil {
		now := time.Now()
		os.Chtimes(final, now, now) // last use, for prune
		fmt.Fprintf(b.log, "  cached  %s\n", short)
		st.layers = append(st.layers, final)
		return nil
	}
	start := time.Now()
	tmp := final + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	upper, work, merged := filepath.Join(tmp, "diff"), filepath.Join(tmp, "work"), filepath.Join(tmp, "merged")
	for _, d := range []string{upper, work, merged} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := mountOverlay(merged, st.layers, upper, work); err != nil {
		return err
	}
	err := fn(merged)
	if uerr := unmount(merged); err == nil {
		err = uerr
	}
	if err == nil {
		err = os.Rename(upper, final)
	}
	if rerr := os.RemoveAll(tmp); err == nil {
		err = rerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(b.log, "  %-7s %s\n", time.Since(start).Round(100*time.Millisecond), short)
	st.layers = append(st.layers, final)
	return nil
}

func (b *builder) copy(ctx context.Context, st *builtStage, in instruction, lookup func(string) (string, bool)) error {
	ws, err := words(in.args, lookup)
	if err != nil {
		return err
	}
	if argv, ok := execForm(in.args); ok {
		ws = argv
	}
	if len(ws) < 2 {
		return errors.New("COPY wants at least one source and a destination")
	}
	srcs, dest := ws[:len(ws)-1], ws[len(ws)-1]
	c := st.config
	if !path.IsAbs(dest) {
		d := path.Join("/", c.WorkingDir, dest)
		if strings.HasSuffix(dest, "/") || dest == "." {
			d += "/"
		}
		dest = d
	}
	destIsDir := strings.HasSuffix(dest, "/") || len(srcs) > 1
	var chmod *fs.FileMode
	chown := ""
	var from *builtStage
	for _, f := range in.flags {
		k, v, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		switch k {
		case "from":
			if from = b.builtStage(v); from == nil {
				return fmt.Errorf("COPY --from=%s: no earlier stage of that name (images are not pulled here)", v)
			}
		case "chown":
			chown = v
		case "chmod":
			m, err := strconv.ParseUint(v, 8, 32)
			if err != nil {
				return fmt.Errorf("--chmod=%s: %w", v, err)
			}
			mode := fs.FileMode(m)
			chmod = &mode
		case "link":
		default:
			return fmt.Errorf("COPY flag %s is not emulated", f)
		}
	}
	var key string
	var plan []copyItem
	if from == nil {
		plan, err = b.contextPlan(srcs, dest, destIsDir)
		if err != nil {
			return err
		}
		files := make([]contextFile, 0, len(plan))
		for _, p := range plan {
			files = append(files, contextFile{rel: p.src, mode: p.mode})
		}
		sum, err := hashContext(b.contextDir, files)
		if err != nil {
			return err
		}
		key = digest(st.key, "COPY", strings.Join(in.flags, " "), dest, sum)
	} else {
		key = digest(st.key, "COPY", strings.Join(in.flags, " "), from.key, strings.Join(srcs, "\x01"), dest)
	}
	return b.layer(ctx, st, key, in, func(root string) error {
		acc := account{}
		if chown != "" {
			var err error
			if acc, err = lookupUser(root, chown); err != nil {
				return err
			}
		}
		srcRoot := b.contextDir
		if from != nil {
			mnt := filepath.Join(b.cacheDir, "from-mount")
			if err := os.MkdirAll(mnt, 0o755); err != nil {
				return err
			}
			if err := mountOverlay(mnt, from.layers, "", ""); err != nil {
				return err
			}
			defer unmount(mnt)
			srcRoot = mnt
			if plan, err = stagePlan(mnt, srcs, dest, destIsDir); err != nil {
				return err
			}
		}
		for _, p := range plan {
			if err := copyItemTo(srcRoot, root, p, acc, chmod); err != nil {
				return err
			}
		}
		return nil
	})
}

// copyItem is one file, directory or symlink a COPY creates.
type copyItem struct {
	src  string // relative to the source root (slash-separated)
	dst  string // absolute inside the image
	mode fs.FileMode
}

// contextPlan applies COPY's rules to sources in the build context: a
// directory's contents go into the destination, a file goes to the
// destination path or into it when it names a directory.
func (b *builder) contextPlan(srcs []string, dest string, destIsDir bool) ([]copyItem, error) {
	var plan []copyItem
	for _, s := range srcs {
		pat := strings.TrimPrefix(path.Clean("/"+s), "/")
		matched := false
		for _, f := range b.files {
			if pat == "" { // "." : the whole context
				plan = append(plan, copyItem{src: f.rel, dst: path.Join(dest, f.rel), mode: f.mode})
				matched = true
				continue
			}
			if ok, _ := path.Match(pat, f.rel); ok {
				matched = true
				if f.mode.IsDir() {
					plan = append(plan, copyItem{src: f.rel, dst: path.Clean(dest), mode: f.mode})
					continue
				}
				dst := dest
				if destIsDir || strings.ContainsAny(pat, "*?[") {
					dst = path.Join(dest, path.Base(f.rel))
				}
				plan = append(plan, copyItem{src: f.rel, dst: path.Clean(dst), mode: f.mode})
				continue
			}
			// Files inside a matched directory.
			for d := path.Dir(f.rel); d != "."; d = path.Dir(d) {
				if ok, _ := path.Match(pat, d); ok {
					plan = append(plan, copyItem{src: f.rel, dst: path.Join(dest, strings.TrimPrefix(f.rel, d+"/")), mode: f.mode})
					break
				}
			}
		}
		if !matched {
			return nil, fmt.Errorf("COPY %s: not in the build context (or excluded by .dockerignore)", s)
		}
	}
	return plan, nil
}

// stagePlan is contextPlan for COPY --from: paths inside another stage's
// filesystem, mounted at root.
func stagePlan(root string, srcs []string, dest string, destIsDir bool) ([]copyItem, error) {
	var plan []copyItem
	for _, s := range srcs {
		matches, err := filepath.Glob(filepath.Join(root, filepath.Clean("/"+s)))
		if err != nil {
			return nil, err
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("COPY --from: %s does not exist in that stage", s)
		}
		for _, m := range matches {
			rel, _ := filepath.Rel(root, m)
			info, err := os.Lstat(m)
			if err != nil {
				return nil, err
			}
			if !info.IsDir() {
				dst := dest
				if destIsDir {
					dst = path.Join(dest, filepath.Base(m))
				}
				plan = append(plan, copyItem{src: filepath.ToSlash(rel), dst: path.Clean(dst), mode: info.Mode()})
				continue
			}
			err = filepath.WalkDir(m, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				info, err := d.Info()
				if err != nil {
					return err
				}
				r, _ := filepath.Rel(root, p)
				in, _ := filepath.Rel(m, p)
				plan = append(plan, copyItem{src: filepath.ToSlash(r), dst: path.Join(dest, filepath.ToSlash(in)), mode: info.Mode()})
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	return plan, nil
}

// copyItemTo creates one planned entry in the image, owned by acc (root
// unless --chown) with the source's permissions (or --chmod).
func copyItemTo(srcRoot, root string, p copyItem, acc account, chmod *fs.FileMode) error {
	src := filepath.Join(srcRoot, filepath.FromSlash(p.src))
	dst := filepath.Join(root, p.dst)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	mode := p.mode.Perm()
	if chmod != nil {
		mode = *chmod
	}
	switch {
	case p.mode.IsDir():
		if err := os.MkdirAll(dst, mode); err != nil {
			return err
		}
	case p.mode&fs.ModeSymlink != 0:
		t, err := os.Readlink(src)
		if err != nil {
			return err
		}
		os.Remove(dst)
		if err := os.Symlink(t, dst); err != nil {
			return err
		}
		return os.Lchown(dst, int(acc.uid), int(acc.gid))
	case p.mode.IsRegular():
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("COPY %s: unsupported file type %s", p.src, p.mode.Type())
	}
	if err := os.Chmod(dst, mode); err != nil {
		return err
	}
	if err := os.Lchown(dst, int(acc.uid), int(acc.gid)); err != nil {
		return err
	}
	if info, err := os.Stat(src); err == nil {
		os.Chtimes(dst, info.ModTime(), info.ModTime())
	}
	return nil
}

// pruneAge is how long a layer no build uses stays in the cache, so that
// going back to another branch a few days later is still fast.
const pruneAge = 7 * 24 * time.Hour

// prune removes the cached layers this build did not use and no build
// used for pruneAge: older versions of layers whose inputs changed.
func (b *builder) prune() (int, error) {
	dir := filepath.Join(b.cacheDir, "layers")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			return n, err
		}
		if !b.used[e.Name()] && time.Since(info.ModTime()) > pruneAge {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return n, err
			}
			n++
		}
	}
	// RUN logs are named line<N>-<layer>.log.
	logs, _ := filepath.Glob(filepath.Join(b.cacheDir, "logs", "line*-*.log"))
	for _, l := range logs {
		key := strings.TrimSuffix(filepath.Base(l), ".log")
		if _, key, _ = strings.Cut(key, "-"); !b.used[key] {
			if _, err := os.Stat(filepath.Join(dir, key)); err != nil {
				os.Remove(l) // its layer is gone
			}
		}
	}
	return n, nil
}
