// Package service assembles a running imgd from its parts: the metadata
// store (SQLite in the data directory, or PostgreSQL), the blob store (files
// in the data directory), the event hub, the engine, and the River client
// that works tasks. The roles of the binary (serve, api, worker) differ only
// in whether the River client works jobs and whether HTTP serves the API.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/blob/fileblob"
	"github.com/imgd/imgd/internal/engine"
	"github.com/imgd/imgd/internal/events"
	"github.com/imgd/imgd/internal/store/postgres"
	"github.com/imgd/imgd/internal/store/sqlite"
	"github.com/imgd/imgd/internal/worker"
)

// DBFile is the embedded database's file name in the data directory.
const DBFile = "imgd.db"

// BlobDir is the embedded blob store's directory in the data directory.
const BlobDir = "blobs"

// Options configure Open.
type Options struct {
	// DataDir holds the embedded database and blobs; created when missing.
	DataDir string
	// DatabaseURL selects PostgreSQL (postgres://…); "" means SQLite in
	// DataDir.
	DatabaseURL string
	// BlobURL selects the blob store; "" means files in DataDir.
	BlobURL string
	// Workers is how many tasks this process runs at once; 0 means it
	// runs none (the api role).
	Workers int
	// TaskTimeout is the time limit of one task attempt; 0 means
	// worker.DefaultTimeout.
	TaskTimeout time.Duration
	// Migrate applies the schema at start (embedded mode, imgd migrate).
	Migrate bool
	Limits  engine.Limits
	Logger  *slog.Logger // nil discards
}

// Service is an open imgd: every part the HTTP API and the workers need.
type Service struct {
	Store  imgd.Store
	Blobs  imgd.BlobStore
	Hub    *events.Hub
	Engine *engine.Engine
	Log    *slog.Logger

	dataDir string      // "" when nothing is kept on local disk
	queue   queueClient // nil without workers: the api role only inserts jobs
	closers []func() error
}

// queueClient is what the service uses of river.Client[TTx], whose type
// depends on the database driver.
type queueClient interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
}

// Open opens the stores (migrating them when o.Migrate), and builds the
// River client. It starts nothing: call Start.
func Open(ctx context.Context, o Options) (_ *Service, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Workers < 0 {
		return nil, fmt.Errorf("workers must be >= 0, got %d", o.Workers)
	}
	if o.TaskTimeout == 0 {
		o.TaskTimeout = worker.DefaultTimeout
	}
	eng, err := engine.New(engine.Options{Limits: o.Limits, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	s := &Service{Hub: events.New(events.Options{}), Engine: eng, Log: o.Logger}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	needDir := o.DatabaseURL == "" || o.BlobURL == ""
	if needDir {
		if o.DataDir == "" {
			return nil, errors.New("a data directory is required for the embedded database or blob store")
		}
		if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
		s.dataDir = o.DataDir
	}

	var newClient func(*river.Config) (queueClient, error)
	switch {
	case o.DatabaseURL == "":
		st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(o.DataDir, DBFile), Logger: o.Logger})
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, st.Close)
		s.Store = st
		if o.Migrate {
			if err := st.Migrate(ctx); err != nil {
				return nil, fmt.Errorf("migrate SQLite database: %w", err)
			}
		}
		newClient = func(c *river.Config) (queueClient, error) { return newRiver(st.Driver(), c) }
	case strings.HasPrefix(o.DatabaseURL, "postgres://") || strings.HasPrefix(o.DatabaseURL, "postgresql://"):
		st, err := postgres.Open(ctx, postgres.Options{URL: o.DatabaseURL, Logger: o.Logger})
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, st.Close)
		s.Store = st
		if o.Migrate {
			if err := st.Migrate(ctx); err != nil {
				return nil, fmt.Errorf("migrate PostgreSQL database: %w", err)
			}
		}
		newClient = func(c *river.Config) (queueClient, error) { return newRiver(st.Driver(), c) }
	default:
		return nil, errors.New("database URL must start with postgres:// or postgresql://")
	}

	switch {
	case o.BlobURL == "":
		b, err := fileblob.Open(filepath.Join(o.DataDir, BlobDir))
		if err != nil {
			return nil, err
		}
		s.Blobs = b
	default:
		return nil, fmt.Errorf("blob URL %q: only the embedded blob store is supported yet", redactURL(o.BlobURL))
	}

	cfg := &river.Config{
		Logger: o.Logger.With("component", "river"),
		// The 100 ms default caps a client at ~20 jobs/s (ARCHITECTURE.md §7).
		FetchCooldown:     5 * time.Millisecond,
		FetchPollInterval: 100 * time.Millisecond,
		// A job whose process died is worked again soon after its attempt
		// could have ended, instead of River's one-hour default.
		RescueStuckJobsAfter: o.TaskTimeout + 10*time.Second,
		JobTimeout:           o.TaskTimeout,
	}
	if o.Workers > 0 {
		w, err := worker.New(worker.Options{Store: s.Store, Blobs: s.Blobs, Engine: eng, Hub: s.Hub,
			Logger: o.Logger.With("component", "worker"), Timeout: o.TaskTimeout})
		if err != nil {
			return nil, err
		}
		workers := river.NewWorkers()
		river.AddWorker(workers, w)
		cfg.Workers = workers
		cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: o.Workers}}
		if s.queue, err = newClient(cfg); err != nil {
			return nil, fmt.Errorf("river client: %w", err)
		}
	}
	return s, nil
}

func newRiver[TTx any](d riverdriver.Driver[TTx], c *river.Config) (queueClient, error) {
	return river.NewClient(d, c)
}

// redactURL drops the user information of a URL for messages.
func redactURL(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "…" + u[i:]
		}
	}
	return u
}

// Start starts working tasks and River's maintenance (rescuing jobs of
// dead workers), when Options.Workers > 0; without workers there is
// nothing to start.
func (s *Service) Start(ctx context.Context) error {
	if s.queue == nil {
		return nil
	}
	return s.queue.Start(ctx)
}

// Stop stops fetching jobs and waits for running tasks until ctx ends;
// tasks still running then are canceled, and the worker puts them back
// to pending for another process (or the next start) to run.
func (s *Service) Stop(ctx context.Context) error {
	if s.queue == nil {
		return nil
	}
	err := s.queue.Stop(ctx)
	if err == nil {
		return nil
	}
	hard, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return errors.Join(err, s.queue.StopAndCancel(hard))
}

// Ready reports whether the database and blob store serve requests and, in
// the embedded mode, whether the data directory is writable.
func (s *Service) Ready(ctx context.Context) error {
	var errs []error
	if err := s.Store.Ping(ctx); err != nil {
		errs = append(errs, fmt.Errorf("database: %w", err))
	}
	if err := s.Blobs.Ping(ctx); err != nil {
		errs = append(errs, fmt.Errorf("blob store: %w", err))
	}
	if s.dataDir != "" {
		f, err := os.CreateTemp(s.dataDir, ".ready-*")
		if err != nil {
			errs = append(errs, fmt.Errorf("data directory not writable: %w", err))
		} else {
			name := f.Name()
			f.Close()
			os.Remove(name)
		}
	}
	return errors.Join(errs...)
}

// Close releases the stores. Call Stop first.
func (s *Service) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	return errors.Join(errs...)
}
