package app

import (
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imgd/imgd/internal/engine"
)

func TestParseSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"1000", 1000},
		{"1_000_000", 1_000_000},
		{"100_000_000", 100_000_000},
		{"1KB", 1000},
		{"1kb", 1000},
		{"2K", 2000},
		{"1KiB", 1024},
		{"1kib", 1024},
		{"5MB", 5_000_000},
		{"3M", 3_000_000},
		{"50MiB", 50 << 20},
		{"2GB", 2_000_000_000},
		{"1G", 1_000_000_000},
		{"1GiB", 1 << 30},
		{"8GiB", 8 << 30},
		{"1_024KiB", 1 << 20},
		{" 7 MiB ", 7 << 20},
		{"-5", -5}, // the setting, not parseSize, rejects it
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := parseSize(tc.in)
			if err != nil || got != tc.want {
				t.Errorf("parseSize(%q) = %d, %v, want %d, nil", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParseSizeErrors(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", " ", "abc", "MB", "MiB", "1.5MB", "1TB", "1B", "1 KB B", "1e6", "0x10", "ten", "5 MiBs", "1KBKB"} {
		t.Run(in, func(t *testing.T) {
			t.Parallel()
			got, err := parseSize(in)
			if err == nil {
				t.Fatalf("parseSize(%q) = %d, nil, want an error", in, got)
			}
			if !strings.Contains(err.Error(), strconv.Quote(in)) {
				t.Errorf("parseSize(%q) error = %q, want it to quote the input", in, err)
			}
		})
	}
}

// load resolves a Config the way a command does, from flags and a fake
// environment.
func load(t *testing.T, args []string, env map[string]string) (Config, error) {
	t.Helper()
	fs, vals := newFlagSet("config", Env{Stderr: io.Discard})
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse flags %q: %v", args, err)
	}
	return resolve(fs, vals, func(k string) string { return env[k] })
}

func TestResolvePrecedence(t *testing.T) {
	t.Parallel()
	def := defaultConfig()
	with := func(f func(c *Config)) Config {
		c := defaultConfig()
		f(&c)
		return c
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want Config
	}{
		{"defaults", nil, nil, def},
		{"empty env values are unset", nil, map[string]string{"IMGD_MAX_PIXELS": "", "IMGD_WORKERS": ""}, def},
		{"other variables are ignored", nil, map[string]string{"MAX_PIXELS": "5", "imgd_max_pixels": "5"}, def},
		{"env", nil, map[string]string{"IMGD_MAX_PIXELS": "5", "IMGD_WORKERS": "3", "IMGD_LOG_FORMAT": "json"},
			with(func(c *Config) { c.Limits.MaxPixels, c.Workers, c.LogFormat = 5, 3, "json" })},
		{"env with a size suffix", nil, map[string]string{"IMGD_MAX_INPUT_BYTES": "2MiB"},
			with(func(c *Config) { c.Limits.MaxInputBytes = 2 << 20 })},
		{"flag", []string{"--max-pixels", "7"}, nil, with(func(c *Config) { c.Limits.MaxPixels = 7 })},
		{"flag with =", []string{"-max-frames=9"}, nil, with(func(c *Config) { c.Limits.MaxFrames = 9 })},
		{"flag wins over env", []string{"--max-pixels=7"}, map[string]string{"IMGD_MAX_PIXELS": "5"},
			with(func(c *Config) { c.Limits.MaxPixels = 7 })},
		{"flag wins over a bad env value", []string{"--log-level=debug"}, map[string]string{"IMGD_LOG_LEVEL": "loud"},
			with(func(c *Config) { c.LogLevel = "debug" })},
		{"each setting from its own source", []string{"--max-output-dimension=100", "--decode-strictness=none"},
			map[string]string{"IMGD_MAX_OUTPUT_DIMENSION": "200", "IMGD_MAX_FRAMES": "3", "IMGD_LOG_LEVEL": "warn"},
			with(func(c *Config) {
				c.Limits.MaxOutputDimension, c.Limits.Strictness, c.Limits.MaxFrames, c.LogLevel = 100, "none", 3, "warn"
			})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := load(t, tc.args, tc.env)
			if err != nil {
				t.Fatalf("resolve(%q, %v) error: %v", tc.args, tc.env, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("resolve(%q, %v) mismatch (-want +got):\n%s", tc.args, tc.env, diff)
			}
		})
	}
}

func TestResolveDefaults(t *testing.T) {
	t.Parallel()
	c, err := load(t, nil, nil)
	if err != nil {
		t.Fatalf("resolve(no flags, no env) error: %v", err)
	}
	want := Config{Addr: "127.0.0.1:8080", DataDir: "./data", Workers: runtime.NumCPU(),
		TaskTimeout: 5 * time.Minute, ShutdownTimeout: 30 * time.Second,
		LogLevel: "info", LogFormat: "auto", Limits: engine.DefaultLimits()}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("resolve(no flags, no env) mismatch (-want +got):\n%s", diff)
	}
}

// TestResolveErrors checks that every bad value is reported, joined, each
// naming its variable or flag.
func TestResolveErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // one line per problem: the name it must start with
	}{
		{"negative size", nil, map[string]string{"IMGD_MAX_PIXELS": "-1"}, []string{"IMGD_MAX_PIXELS: must be > 0, got -1"}},
		{"zero size", nil, map[string]string{"IMGD_MAX_INPUT_BYTES": "0"}, []string{"IMGD_MAX_INPUT_BYTES: must be > 0"}},
		{"bad size", nil, map[string]string{"IMGD_MAX_INPUT_BYTES": "lots"}, []string{"IMGD_MAX_INPUT_BYTES: must be an integer"}},
		{"zero workers", nil, map[string]string{"IMGD_WORKERS": "0"}, []string{"IMGD_WORKERS: must be >= 1, got 0"}},
		{"bad choice", nil, map[string]string{"IMGD_LOG_FORMAT": "xml"}, []string{"IMGD_LOG_FORMAT: must be one of auto, text, json"}},
		{"bad flag", []string{"--max-frames=many"}, nil, []string{"--max-frames: must be an integer"}},
		{"several", []string{"--max-output-dimension=0"}, map[string]string{
			"IMGD_MAX_PIXELS": "-1", "IMGD_WORKERS": "x", "IMGD_DECODE_STRICTNESS": "pedantic", "IMGD_LOG_LEVEL": "loud",
		}, []string{
			"IMGD_WORKERS: ", "IMGD_MAX_PIXELS: ", "--max-output-dimension: ", "IMGD_DECODE_STRICTNESS: ", "IMGD_LOG_LEVEL: ",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, tc.args, tc.env)
			if err == nil {
				t.Fatalf("resolve(%q, %v) = nil error, want %q", tc.args, tc.env, tc.want)
			}
			joined, ok := err.(interface{ Unwrap() []error })
			if !ok {
				t.Fatalf("resolve(%q, %v) error = %T, want errors.Join of every problem", tc.args, tc.env, err)
			}
			if got := len(joined.Unwrap()); got != len(tc.want) {
				t.Errorf("resolve(%q, %v) joins %d errors, want %d: %v", tc.args, tc.env, got, len(tc.want), err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("resolve(%q, %v) = %q, want %d lines", tc.args, tc.env, err, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("resolve(%q, %v) line %d = %q, want it to start with %q", tc.args, tc.env, i, lines[i], w)
				}
			}
		})
	}
}

// TestSettingsTable checks the configuration table itself: names follow
// one pattern, and each documented default is the default in effect.
func TestSettingsTable(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	def := defaultConfig()
	for _, s := range settings {
		t.Run(s.env, func(t *testing.T) {
			t.Parallel()
			if !strings.HasPrefix(s.env, "IMGD_") {
				t.Errorf("setting env %q, want the IMGD_ prefix", s.env)
			}
			if want := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(s.env, "IMGD_"), "_", "-")); s.flag != want {
				t.Errorf("setting %s has flag --%s, want --%s", s.env, s.flag, want)
			}
			if s.help == "" || s.def == "" {
				t.Errorf("setting %s: help %q, default %q, want both documented", s.env, s.help, s.def)
			}
			if s.env == "IMGD_WORKERS" {
				if got, want := s.get(&def), strconv.Itoa(runtime.NumCPU()); got != want {
					t.Errorf("default %s = %s, want %s (the number of cores)", s.env, got, want)
				}
				return
			}
			if s.unsetDefault {
				if got := s.get(&def); got != "" {
					t.Errorf("setting %s: documented as %q when unset, but its default is %q", s.env, s.def, got)
				}
				return
			}
			var c Config
			if err := s.set(&c, s.def); err != nil {
				t.Fatalf("setting %s: documented default %q does not parse: %v", s.env, s.def, err)
			}
			if got, want := s.get(&c), s.get(&def); got != want {
				t.Errorf("setting %s: documented default %q means %s, but the default in effect is %s", s.env, s.def, got, want)
			}
		})
		if seen[s.env] || seen[s.flag] {
			t.Errorf("setting %s / --%s appears twice", s.env, s.flag)
		}
		seen[s.env], seen[s.flag] = true, true
	}
}
