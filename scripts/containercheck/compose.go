package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// composeFile is the part of a Compose file this check reads, after YAML
// anchors and merge keys are resolved.
type composeFile struct {
	Services map[string]*composeService `json:"services"`
	Volumes  map[string]any             `json:"volumes"`
	extra    []string                   // unknown top-level keys
}

type composeService struct {
	Image       string         `json:"image"`
	Build       any            `json:"build"`
	Restart     string         `json:"restart"`
	Entrypoint  any            `json:"entrypoint"`
	Command     any            `json:"command"`
	Environment any            `json:"environment"`
	Volumes     []string       `json:"volumes"`
	Ports       []string       `json:"ports"`
	DependsOn   any            `json:"depends_on"`
	Healthcheck map[string]any `json:"healthcheck"`
	Deploy      map[string]any `json:"deploy"`
	StopGrace   string         `json:"stop_grace_period"`
}

// stopGrace is how long Docker waits after SIGTERM before SIGKILL.
func (s *composeService) stopGrace() (time.Duration, error) {
	if s.StopGrace == "" {
		return 10 * time.Second, nil // Docker's default
	}
	return time.ParseDuration(s.StopGrace)
}

// python is Debian's interpreter, where python3-yaml installs, rather than
// whichever python3 comes first on PATH (pyenv's, on some machines).
var python = func() string {
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	return "python3"
}()

// loadCompose parses a Compose file with PyYAML (YAML 1.1 with merge
// keys, as Compose accepts), since the module has no YAML parser of its
// own to spare.
func loadCompose(name string) (*composeFile, error) {
	cmd := exec.Command(python, "-c", "import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)")
	in, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	var stderr bytes.Buffer
	cmd.Stdin, cmd.Stderr = in, &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("parse %s as YAML: %v: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(out, &top); err != nil {
		return nil, fmt.Errorf("%s: the top level is not a mapping: %w", name, err)
	}
	cf := &composeFile{}
	if err := json.Unmarshal(out, cf); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for k := range top {
		switch {
		case k == "services" || k == "volumes" || k == "networks" || k == "configs" || k == "secrets" || k == "name":
		case strings.HasPrefix(k, "x-"):
		default:
			cf.extra = append(cf.extra, k)
		}
	}
	return cf, nil
}

// interpolate applies Compose's variable syntax with an empty environment,
// so the defaults in the file are what is checked: the setup that runs
// when nobody sets anything. It returns the variables used without a
// default.
func interpolate(s string) (string, []string) {
	var required []string
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			b.WriteByte('$')
			i++
			continue
		}
		v, n, err := expandVar(s[i:], func(name string) (string, bool) {
			return "", false
		})
		if err != nil {
			b.WriteByte('$')
			continue
		}
		ref := s[i : i+n]
		if !strings.Contains(ref, "-") && !strings.Contains(ref, "+") && n > 1 {
			required = append(required, strings.Trim(ref, "${}"))
		}
		b.WriteString(v)
		i += n - 1
	}
	return b.String(), required
}

// envMap returns a service's environment, interpolated.
func (s *composeService) envMap() map[string]string {
	m := map[string]string{}
	switch e := s.Environment.(type) {
	case map[string]any:
		for k, v := range e {
			if v == nil {
				m[k] = ""
				continue
			}
			m[k], _ = interpolate(fmt.Sprint(v))
		}
	case []any:
		for _, kv := range e {
			k, v, _ := strings.Cut(fmt.Sprint(kv), "=")
			m[k], _ = interpolate(v)
		}
	}
	return m
}

// argv returns a command or entrypoint as a list, interpolated.
func argv(v any) []string {
	switch c := v.(type) {
	case string:
		s, _ := interpolate(c)
		return []string{"/bin/sh", "-c", s}
	case []any:
		var out []string
		for _, a := range c {
			s, _ := interpolate(fmt.Sprint(a))
			out = append(out, s)
		}
		return out
	}
	return nil
}

// dependsOn returns the services s depends on and the condition of each.
func (s *composeService) dependsOn() map[string]string {
	m := map[string]string{}
	switch d := s.DependsOn.(type) {
	case []any:
		for _, n := range d {
			m[fmt.Sprint(n)] = "service_started"
		}
	case map[string]any:
		for n, v := range d {
			cond := "service_started"
			if o, ok := v.(map[string]any); ok && o["condition"] != nil {
				cond = fmt.Sprint(o["condition"])
			}
			m[n] = cond
		}
	}
	return m
}

// builtHere reports whether the service's image is built from this
// repository's Dockerfile.
func (s *composeService) builtHere() bool {
	switch b := s.Build.(type) {
	case string:
		return filepath.Clean(b) == "."
	case map[string]any:
		ctx, _ := b["context"].(string)
		df, _ := b["dockerfile"].(string)
		return filepath.Clean(ctx) == "." && (df == "" || df == "Dockerfile")
	}
	return false
}

// envNamesRead lists the string literals of the module's non-test Go
// files that look like environment variable names: what the binary can
// read from its environment.
func envNamesRead(root string) (map[string]bool, error) {
	re := regexp.MustCompile(`"([A-Z][A-Z0-9_]*_[A-Z0-9_]+)"`)
	names := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == ".git" || d.Name() == "bench" || d.Name() == "scripts") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
		return nil
	})
	return names, err
}

// report collects the outcome of checks.
type report struct {
	fails, notes int
	out          io.Writer
}

func (r *report) ok(format string, a ...any) { fmt.Fprintf(r.out, "  ok   "+format+"\n", a...) }
func (r *report) fail(format string, a ...any) {
	r.fails++
	fmt.Fprintf(r.out, "  FAIL "+format+"\n", a...)
}
func (r *report) note(format string, a ...any) {
	r.notes++
	fmt.Fprintf(r.out, "  note "+format+"\n", a...)
}

// checkCompose validates the Compose file offline against itself, the
// Dockerfile's image (img) and the environment variables imgd reads.
func checkCompose(r *report, root, name string, img imageConfig) *composeFile {
	// Services are checked in name order, so the report reads the same on
	// every run.
	cf, err := loadCompose(filepath.Join(root, name))
	if err != nil {
		r.fail("%v", err)
		return nil
	}
	r.ok("%s parses as YAML (anchors and merge keys resolved): %d services", name, len(cf.Services))
	for _, k := range cf.extra {
		r.fail("unknown top-level key %q", k)
	}
	names := sortedKeys(cf.Services)
	groups := map[string][]string{}
	var sigs []string
	read, err := envNamesRead(root)
	if err != nil {
		r.fail("scan Go sources for environment names: %v", err)
	}
	exposed, _ := exposedPort(img)

	var requiredVars []string
	defaults := map[string]map[string]bool{} // variable → its defaults in the file
	raw, _ := os.ReadFile(filepath.Join(root, name))
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:?-)([^}]*)\}`).FindAllStringSubmatch(string(raw), -1) {
		if defaults[m[1]] == nil {
			defaults[m[1]] = map[string]bool{}
		}
		defaults[m[1]][m[3]] = true
	}
	for v, ds := range defaults {
		if len(ds) > 1 {
			r.fail("${%s} has different defaults in different places: %q; the out-of-the-box setup would not agree with itself", v, sortedKeys(ds))
		}
	}
	if _, req := interpolate(string(raw)); len(req) > 0 {
		requiredVars = req
	}
	for _, v := range requiredVars {
		r.note("${%s} has no default: it must be set", v)
	}

	for _, n := range names {
		s := cf.Services[n]
		if s == nil {
			r.fail("service %s is empty", n)
			continue
		}
		if s.Image == "" && s.Build == nil {
			r.fail("service %s has neither image nor build", n)
		}
		// depends_on: targets exist, conditions are known and satisfiable.
		for dep, cond := range s.dependsOn() {
			t, ok := cf.Services[dep]
			switch {
			case !ok:
				r.fail("%s depends on %s, which is not a service", n, dep)
				continue
			case cond == "service_healthy":
				if t.Healthcheck == nil && !(t.builtHere() && len(img.Healthcheck) > 1) {
					r.fail("%s waits for %s to be healthy, but %s has no health check", n, dep, dep)
				} else {
					r.ok("%s waits for %s to be healthy, and %s has a health check", n, dep, dep)
				}
			case cond == "service_completed_successfully":
				if t.Restart != "no" && t.Restart != "on-failure" && t.Restart != "" {
					r.fail("%s waits for %s to complete, but %s has restart: %s and would run again", n, dep, dep, t.Restart)
				} else {
					r.ok("%s waits for %s to complete (restart: %q)", n, dep, t.Restart)
				}
			case cond == "service_started":
			default:
				r.fail("%s depends on %s with unknown condition %q", n, dep, cond)
			}
		}
		// Health checks: a known form and valid durations.
		if hc := s.Healthcheck; hc != nil {
			test := argv(hc["test"])
			if _, isString := hc["test"].(string); isString {
				test = append([]string{"CMD-SHELL"}, test[2])
			}
			if len(test) == 0 || (test[0] != "CMD" && test[0] != "CMD-SHELL" && test[0] != "NONE") {
				r.fail("%s: healthcheck test %q must start with CMD, CMD-SHELL or NONE", n, test)
			}
			for _, k := range []string{"interval", "timeout", "start_period"} {
				if v, ok := hc[k]; ok {
					if _, err := time.ParseDuration(fmt.Sprint(v)); err != nil {
						r.fail("%s: healthcheck %s %v: %v", n, k, v, err)
					}
				}
			}
		}
		// Named volumes are declared.
		for _, v := range s.Volumes {
			src, _, ok := strings.Cut(v, ":")
			if ok && !strings.HasPrefix(src, ".") && !strings.HasPrefix(src, "/") && !strings.HasPrefix(src, "~") {
				if _, declared := cf.Volumes[src]; !declared {
					r.fail("%s mounts volume %s, which is not declared under volumes:", n, src)
				}
			}
		}
		if s.builtHere() {
			for _, p := range s.Ports {
				pp, _ := interpolate(p)
				parts := strings.Split(pp, ":")
				container, _, _ := strings.Cut(parts[len(parts)-1], "/")
				if container != exposed {
					r.fail("%s publishes container port %s, the image listens on %s", n, container, exposed)
				} else {
					r.ok("%s publishes %s → container port %s, the image's EXPOSE", n, pp, container)
				}
			}
			sig := fmt.Sprint(s.envMap())
			if groups[sig] == nil {
				sigs = append(sigs, sig)
			}
			groups[sig] = append(groups[sig], n)
		}
	}
	// Services sharing one environment (the x-imgd anchor) are checked
	// together.
	for _, sig := range sigs {
		ns := groups[sig]
		checkImgdEnv(r, cf, ns, cf.Services[ns[0]].envMap(), read)
	}
	if err := dependencyCycle(cf); err != nil {
		r.fail("%v", err)
	}
	return cf
}

// checkImgdEnv checks the environment of services running this
// repository's image.
func checkImgdEnv(r *report, cf *composeFile, names []string, env map[string]string, read map[string]bool) {
	n := strings.Join(names, ", ")
	unread := 0
	for _, k := range sortedKeys(env) {
		if !read[k] {
			r.fail("%s: sets %s, which no Go source of imgd reads", n, k)
			unread++
		}
	}
	if unread == 0 {
		r.ok("%s: all %d environment variables are read by imgd (%s)", n, len(env), strings.Join(sortedKeys(env), " "))
	}
	// The database URL names a service, with that service's credentials.
	if v := env["IMGD_DATABASE_URL"]; v != "" {
		u, err := url.Parse(v)
		if err != nil {
			r.fail("%s: IMGD_DATABASE_URL: %v", n, err)
		} else if db, ok := cf.Services[u.Hostname()]; !ok {
			r.fail("%s: IMGD_DATABASE_URL names host %s, which is not a service", n, u.Hostname())
		} else {
			de := db.envMap()
			pw, _ := u.User.Password()
			want := map[string][2]string{
				"POSTGRES_USER":     {u.User.Username(), "user"},
				"POSTGRES_PASSWORD": {pw, "password"},
				"POSTGRES_DB":       {strings.TrimPrefix(u.Path, "/"), "database"},
			}
			good := true
			for k, w := range want {
				if got, ok := de[k]; ok && got != w[0] {
					r.fail("%s: IMGD_DATABASE_URL's %s is %q, service %s has %s=%q", n, w[1], w[0], u.Hostname(), k, got)
					good = false
				}
			}
			if u.Port() != "" && u.Port() != "5432" {
				r.note("%s: IMGD_DATABASE_URL uses port %s, PostgreSQL's image listens on 5432", n, u.Port())
			}
			if good {
				r.ok("%s: IMGD_DATABASE_URL → service %s with its user, password and database (defaults)", n, u.Hostname())
			}
			for _, sn := range names {
				if !dependsOnTransitively(cf, sn, u.Hostname()) {
					r.fail("%s uses the database %s but does not (even indirectly) depend on it", sn, u.Hostname())
				}
			}
		}
	}
	// The blob URL's endpoint names a service that listens on that port,
	// accepts these credentials and has the bucket.
	if v := env["IMGD_BLOB_URL"]; v != "" {
		checkBlobURL(r, cf, names, v, env)
	}
}

func checkBlobURL(r *report, cf *composeFile, names []string, v string, env map[string]string) {
	n := strings.Join(names, ", ")
	u, err := url.Parse(v)
	if err != nil {
		r.fail("%s: IMGD_BLOB_URL: %v", n, err)
		return
	}
	bucket := u.Host
	ep, err := url.Parse(u.Query().Get("endpoint"))
	if err != nil || ep.Host == "" {
		r.fail("%s: IMGD_BLOB_URL has no endpoint=", n)
		return
	}
	s3, ok := cf.Services[ep.Hostname()]
	if !ok {
		r.fail("%s: IMGD_BLOB_URL's endpoint names host %s, which is not a service", n, ep.Hostname())
		return
	}
	for _, sn := range names {
		if !dependsOnTransitively(cf, sn, ep.Hostname()) {
			r.fail("%s uses the blob store %s but does not (even indirectly) depend on it", sn, ep.Hostname())
		}
	}
	// The S3 server's command line, with its own environment expanded the
	// way its shell will.
	se := s3.envMap()
	cmdline := strings.Join(append(argv(s3.Entrypoint), argv(s3.Command)...), " ")
	cmdline = os.Expand(cmdline, func(k string) string { return se[k] })
	fields := strings.Fields(cmdline)
	flag := func(name string) string {
		for i, f := range fields {
			if f == name && i+1 < len(fields) {
				return strings.Trim(fields[i+1], `"'`)
			}
			if v, ok := strings.CutPrefix(f, name+"="); ok {
				return strings.Trim(v, `"'`)
			}
		}
		return ""
	}
	if port := flag("--port"); port != "" {
		if _, p, _ := net.SplitHostPort(port); p != ep.Port() {
			r.fail("%s: IMGD_BLOB_URL's endpoint port is %s, %s listens on %s", n, ep.Port(), ep.Hostname(), port)
		} else {
			r.ok("%s: IMGD_BLOB_URL → service %s, which listens on %s", n, ep.Hostname(), port)
		}
	} else {
		r.note("%s: cannot tell which port %s listens on", n, ep.Hostname())
	}
	for flagName, envName := range map[string]string{"--access": "AWS_ACCESS_KEY_ID", "--secret": "AWS_SECRET_ACCESS_KEY"} {
		if got := flag(flagName); got != env[envName] {
			r.fail("%s: %s=%q, but %s is started with %s %q", n, envName, env[envName], ep.Hostname(), flagName, got)
		} else {
			r.ok("%s: %s matches %s's %s (defaults)", n, envName, ep.Hostname(), flagName)
		}
	}
	// versitygw's posix backend: a bucket is a directory of the root.
	if i := strings.Index(cmdline, " posix "); i >= 0 {
		rest := strings.Fields(cmdline[i+len(" posix "):])
		if len(rest) > 0 {
			dir := strings.TrimRight(rest[len(rest)-1], "/") + "/" + bucket
			if strings.Contains(cmdline, dir) {
				r.ok("%s: bucket %s is created as %s before the server starts", ep.Hostname(), bucket, dir)
			} else {
				r.fail("%s: imgd needs bucket %s, and nothing creates %s", ep.Hostname(), bucket, dir)
			}
		}
	}
}

// dependsOnTransitively reports whether service from reaches to through
// depends_on.
func dependsOnTransitively(cf *composeFile, from, to string) bool {
	seen := map[string]bool{}
	var walk func(string) bool
	walk = func(n string) bool {
		if seen[n] {
			return false
		}
		seen[n] = true
		s := cf.Services[n]
		if s == nil {
			return false
		}
		for d := range s.dependsOn() {
			if d == to || walk(d) {
				return true
			}
		}
		return false
	}
	return walk(from)
}

func dependencyCycle(cf *composeFile) error {
	for _, n := range sortedKeys(cf.Services) {
		if dependsOnTransitively(cf, n, n) {
			return fmt.Errorf("depends_on has a cycle through %s", n)
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
