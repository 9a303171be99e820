package app

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/imgd/imgd/internal/blob/s3blob"
	"github.com/imgd/imgd/internal/engine"
)

// Config is every setting of every role. Each field has one row in
// settings, which registers its flag, reads its environment variable and
// documents it (a test keeps README.md's configuration table in step).
type Config struct {
	Addr                string
	DataDir             string
	DatabaseURL         string
	BlobURL             string
	Workers             int
	TaskTimeout         time.Duration
	ShutdownTimeout     time.Duration
	WebhookSecret       string
	WebhookAllowPrivate bool
	BlobPresign         time.Duration // 0: downloads go through the api
	ResultTTL           time.Duration // 0: results are kept for good
	LogLevel            string
	LogFormat           string
	Limits              engine.Limits
}

// setting is one row of the configuration table.
type setting struct {
	env, flag, def, help string
	// unsetDefault: def describes what an unset (empty) value means rather
	// than being a value itself.
	unsetDefault bool
	set          func(c *Config, v string) error
	get          func(c *Config) string
}

func intSetting(env, flagName, def, help string, p func(c *Config) *int, lo int) setting {
	return setting{env: env, flag: flagName, def: def, help: help,
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("must be an integer, got %q", v)
			}
			if n < lo {
				return fmt.Errorf("must be >= %d, got %d", lo, n)
			}
			*p(c) = n
			return nil
		},
		get: func(c *Config) string { return strconv.Itoa(*p(c)) }}
}

func int64Setting(env, flagName, def, help string, p func(c *Config) *int64) setting {
	return setting{env: env, flag: flagName, def: def, help: help,
		set: func(c *Config, v string) error {
			n, err := parseSize(v)
			if err != nil {
				return err
			}
			if n <= 0 {
				return fmt.Errorf("must be > 0, got %d", n)
			}
			*p(c) = n
			return nil
		},
		get: func(c *Config) string { return strconv.FormatInt(*p(c), 10) }}
}

func choiceSetting(env, flagName, def, help string, p func(c *Config) *string, choices ...string) setting {
	return setting{env: env, flag: flagName, def: def, help: help + " (" + strings.Join(choices, ", ") + ")",
		set: func(c *Config, v string) error {
			for _, ch := range choices {
				if v == ch {
					*p(c) = v
					return nil
				}
			}
			return fmt.Errorf("must be one of %s, got %q", strings.Join(choices, ", "), v)
		},
		get: func(c *Config) string { return *p(c) }}
}

func stringSetting(env, flagName, def, help string, p func(c *Config) *string) setting {
	return setting{env: env, flag: flagName, def: def, help: help,
		set: func(c *Config, v string) error { *p(c) = v; return nil },
		get: func(c *Config) string { return *p(c) }}
}

func unset(s setting) setting { s.unsetDefault = true; return s }

// secretSetting is a string setting that `imgd config` does not print.
func secretSetting(env, flagName, def, help string, p func(c *Config) *string) setting {
	s := stringSetting(env, flagName, def, help, p)
	s.get = func(c *Config) string {
		if *p(c) == "" {
			return ""
		}
		return "(set, not shown)"
	}
	return s
}

func durationSetting(env, flagName, def, help string, p func(c *Config) *time.Duration) setting {
	return setting{env: env, flag: flagName, def: def, help: help,
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("must be a duration such as 30s or 5m, got %q", v)
			}
			if d <= 0 {
				return fmt.Errorf("must be > 0, got %s", d)
			}
			*p(c) = d
			return nil
		},
		get: func(c *Config) string { return p(c).String() }}
}

// offDurationSetting is a duration setting whose 0 turns a feature off,
// at most hi.
func offDurationSetting(env, flagName, def, help string, p func(c *Config) *time.Duration, hi time.Duration) setting {
	return setting{env: env, flag: flagName, def: def, help: help,
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("must be a duration such as 15m or 720h (0: off), got %q", v)
			}
			if d < 0 || d > hi {
				return fmt.Errorf("must be 0 (off) or a duration up to %s, got %s", hi, d)
			}
			*p(c) = d
			return nil
		},
		get: func(c *Config) string { return p(c).String() }}
}

func boolSetting(env, flagName, def, help string, p func(c *Config) *bool) setting {
	return setting{env: env, flag: flagName, def: def, help: help,
		set: func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("must be true or false, got %q", v)
			}
			*p(c) = b
			return nil
		},
		get: func(c *Config) string { return strconv.FormatBool(*p(c)) }}
}

// parseSize reads an integer with an optional KB/MB/GB (or KiB/MiB/GiB)
// suffix; KB is 1000 and KiB 1024.
func parseSize(v string) (int64, error) {
	s := strings.ToUpper(strings.TrimSpace(v))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.m
			break
		}
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("must be an integer with an optional KB/MB/GB or KiB/MiB/GiB suffix, got %q", v)
	}
	if n > math.MaxInt64/mult || n < math.MinInt64/mult {
		return 0, fmt.Errorf("too large: %q", v)
	}
	return n * mult, nil
}

var settings = []setting{
	stringSetting("IMGD_ADDR", "addr", "127.0.0.1:8080", "listen address of serve and api (worker: its health and metrics port)",
		func(c *Config) *string { return &c.Addr }),
	stringSetting("IMGD_DATA_DIR", "data-dir", "./data", "directory of the embedded database and blobs",
		func(c *Config) *string { return &c.DataDir }),
	unset(secretSetting("IMGD_DATABASE_URL", "database-url", "SQLite in the data dir", "postgres://user@host:port/db?sslmode=… selects PostgreSQL",
		func(c *Config) *string { return &c.DatabaseURL })),
	unset(stringSetting("IMGD_BLOB_URL", "blob-url", "files in the data dir", "s3://BUCKET?endpoint=http://host:port&region=…&path_style=true selects S3-compatible storage",
		func(c *Config) *string { return &c.BlobURL })),
	intSetting("IMGD_WORKERS", "workers", "number of cores", "concurrent tasks per process (imgd process: default for -j)",
		func(c *Config) *int { return &c.Workers }, 1),
	durationSetting("IMGD_TASK_TIMEOUT", "task-timeout", "5m", "time limit of one task attempt",
		func(c *Config) *time.Duration { return &c.TaskTimeout }),
	durationSetting("IMGD_SHUTDOWN_TIMEOUT", "shutdown-timeout", "30s", "on SIGTERM, how long running tasks and requests may finish before they are re-queued or cut",
		func(c *Config) *time.Duration { return &c.ShutdownTimeout }),
	unset(secretSetting("IMGD_WEBHOOK_SECRET", "webhook-secret", "none: webhooks unsigned", "HMAC-SHA256 key that signs webhook deliveries",
		func(c *Config) *string { return &c.WebhookSecret })),
	boolSetting("IMGD_WEBHOOK_ALLOW_PRIVATE", "webhook-allow-private", "false", "allow webhook targets on loopback and private addresses",
		func(c *Config) *bool { return &c.WebhookAllowPrivate }),
	offDurationSetting("IMGD_BLOB_PRESIGN", "blob-presign", "0", "with S3 blobs, answer downloads of results and originals with a 302 to a presigned URL valid this long (0: serve them through the api)",
		func(c *Config) *time.Duration { return &c.BlobPresign }, s3blob.MaxPresignTTL),
	offDurationSetting("IMGD_RESULT_TTL", "result-ttl", "0", "delete task results this long after they were made (0: keep them)",
		func(c *Config) *time.Duration { return &c.ResultTTL }, math.MaxInt64),
	int64Setting("IMGD_MAX_INPUT_BYTES", "max-input-bytes", "50MiB", "largest accepted input file",
		func(c *Config) *int64 { return &c.Limits.MaxInputBytes }),
	int64Setting("IMGD_MAX_PIXELS", "max-pixels", "100000000", "largest decoded image, all frames together, input or output",
		func(c *Config) *int64 { return &c.Limits.MaxPixels }),
	intSetting("IMGD_MAX_FRAMES", "max-frames", "1000", "most frames of an animated input",
		func(c *Config) *int { return &c.Limits.MaxFrames }, 1),
	intSetting("IMGD_MAX_OUTPUT_DIMENSION", "max-output-dimension", "16384", "largest output width or height",
		func(c *Config) *int { return &c.Limits.MaxOutputDimension }, 1),
	choiceSetting("IMGD_DECODE_STRICTNESS", "decode-strictness", "warning", "reject inputs the decoder reports at this level or worse",
		func(c *Config) *string { return &c.Limits.Strictness }, "none", "truncated", "error", "warning"),
	choiceSetting("IMGD_LOG_LEVEL", "log-level", "info", "log level", func(c *Config) *string { return &c.LogLevel },
		"debug", "info", "warn", "error"),
	choiceSetting("IMGD_LOG_FORMAT", "log-format", "auto", "log format; auto is text on a terminal, JSON otherwise",
		func(c *Config) *string { return &c.LogFormat }, "auto", "text", "json"),
}

// defaultConfig is the configuration before flags and environment.
func defaultConfig() Config {
	return Config{Addr: "127.0.0.1:8080", DataDir: "./data", Workers: runtime.NumCPU(),
		TaskTimeout: 5 * time.Minute, ShutdownTimeout: 30 * time.Second,
		LogLevel: "info", LogFormat: "auto", Limits: engine.DefaultLimits()}
}

// register adds every setting as a flag of fs. Flags win over the
// environment, which wins over defaults: Load applies them in that order.
func register(fs *flag.FlagSet, flagVals map[string]*string) {
	for _, s := range settings {
		v := new(string)
		flagVals[s.flag] = v
		fs.StringVar(v, s.flag, "", fmt.Sprintf("%s (env %s, default %s)", s.help, s.env, s.def))
	}
}

// resolve builds the Config from defaults, then getenv, then the flags
// that were set, and validates it. The error joins every problem, each
// naming its variable.
func resolve(fs *flag.FlagSet, flagVals map[string]*string, getenv func(string) string) (Config, error) {
	c := defaultConfig()
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	for _, s := range settings {
		v, from := getenv(s.env), s.env
		if set[s.flag] {
			v, from = *flagVals[s.flag], "--"+s.flag
		}
		if v == "" {
			continue
		}
		if err := s.set(&c, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", from, err))
		}
	}
	if c.BlobPresign > 0 && !strings.HasPrefix(c.BlobURL, "s3://") {
		errs = append(errs, errors.New("IMGD_BLOB_PRESIGN: presigned downloads need S3 blob storage (an s3:// IMGD_BLOB_URL)"))
	}
	if len(errs) == 0 {
		if err := c.Limits.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return c, errors.Join(errs...)
}
