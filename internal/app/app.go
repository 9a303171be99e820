// Package app wires imgd together: configuration, logging and the roles
// and commands of the imgd binary.
package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
)

// Env is what a command may touch of the outside world; tests pass their
// own.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1 // some work failed
	exitUsage   = 2 // bad command line or configuration
	exitStartup = 3 // could not start (e.g. libvips missing)
)

const usage = `imgd: asynchronous image processing

Usage:
  imgd serve            API, web page and workers in one process (embedded default)
  imgd api              API and web page only (scale-out)
  imgd worker           workers only, with /healthz, /readyz, /metrics (scale-out)
  imgd migrate          apply the database schema
  imgd submit FILE STEP... [--wait] [--out PATH]
                        upload FILE to a running server, run a pipeline on it
  imgd process -p PIPELINE [-o OUT] [--json] [-j N] INPUT...
                        run one pipeline on local files, no server
  imgd config           print the effective configuration
  imgd version          print the version

Run 'imgd COMMAND -h' for a command's flags.
`

// Main runs one imgd command and returns the process exit code.
func Main(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		return runServer(ctx, roleServe, args[1:], env)
	case "api":
		return runServer(ctx, roleAPI, args[1:], env)
	case "worker":
		return runServer(ctx, roleWorker, args[1:], env)
	case "migrate":
		return runMigrate(ctx, args[1:], env)
	case "submit":
		return runSubmit(ctx, args[1:], env)
	case "process":
		return runProcess(ctx, args[1:], env)
	case "config":
		return runConfig(args[1:], env)
	case "version":
		fmt.Fprintln(env.Stdout, "imgd", Version())
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, usage)
		return exitOK
	}
	fmt.Fprintf(env.Stderr, "imgd: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// Version is the module version or VCS revision the binary was built from.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return bi.Main.Version
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

func runConfig(args []string, env Env) int {
	fs, vals := newFlagSet("config", env)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	c, err := resolve(fs, vals, env.Getenv)
	if err != nil {
		fmt.Fprintf(env.Stderr, "imgd config: %v\n", err)
		return exitUsage
	}
	for _, s := range settings {
		fmt.Fprintf(env.Stdout, "%s=%s\n", s.env, s.get(&c))
	}
	return exitOK
}

// newLogger builds the process logger: JSON when asked or when stderr is
// not a terminal, text otherwise.
func newLogger(c Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(c.LogLevel)))
	opts := &slog.HandlerOptions{Level: level}
	jsonOut := c.LogFormat == "json"
	if c.LogFormat == "auto" {
		f, ok := w.(*os.File)
		jsonOut = !ok || !isTerminal(f)
	}
	if jsonOut {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
