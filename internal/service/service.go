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
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/blob/fileblob"
	"github.com/imgd/imgd/internal/blob/s3blob"
	"github.com/imgd/imgd/internal/engine"
	"github.com/imgd/imgd/internal/events"
	"github.com/imgd/imgd/internal/metrics"
	"github.com/imgd/imgd/internal/store/postgres"
	"github.com/imgd/imgd/internal/store/sqlite"
	"github.com/imgd/imgd/internal/store/sqlstore"
	"github.com/imgd/imgd/internal/webhook"
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
	// WebhookSecret signs webhook deliveries (IMGD_WEBHOOK_SECRET); ""
	// sends them unsigned, with a warning at start.
	WebhookSecret string
	// WebhookAllowPrivate lets webhooks reach loopback and private
	// addresses (IMGD_WEBHOOK_ALLOW_PRIVATE).
	WebhookAllowPrivate bool
	// Metrics records task outcomes and queue depth; nil records nothing.
	Metrics *metrics.Metrics
	// Getenv reads the S3 credentials (AWS_ACCESS_KEY_ID, …); nil means
	// os.Getenv.
	Getenv func(string) string
	// ResultTTL is how long results are kept after they were made; 0
	// keeps them for good. Processes with workers expire them
	// (maintenance.go).
	ResultTTL time.Duration
}

// webhookWorkers is how many webhook deliveries a process with workers
// makes at once, in their own queue: they wait on the network, not the CPU.
const webhookWorkers = 8

// Service is an open imgd: every part the HTTP API and the workers need.
type Service struct {
	Store  imgd.Store
	Blobs  imgd.BlobStore
	Hub    *events.Hub
	Engine *engine.Engine
	Log    *slog.Logger

	dataDir string      // "" when nothing is kept on local disk
	queue   queueClient // nil without workers: the api role only inserts jobs
	// inserter inserts webhook jobs: the queue client, or an insert-only
	// client without workers.
	metrics    *metrics.Metrics
	relay      *relay // nil on SQLite
	inserter   webhook.Inserter
	deliveries webhook.Recorder
	closers    []func() error
}

// queueClient is what the service uses of river.Client[TTx], whose type
// depends on the database driver.
type queueClient interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
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
	s := &Service{Engine: eng, Log: o.Logger, metrics: o.Metrics}
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
	// How often an idle worker looks for new jobs: a fallback on both
	// databases. PostgreSQL wakes workers with LISTEN/NOTIFY as jobs are
	// inserted; on SQLite the store wakes the workers of its own process
	// once a task is committed (sqlite.wakeDriver), so only jobs inserted by
	// another process on the same file and scheduled retries wait for the
	// poll. Each poll of an idle queue is a database transaction.
	pollInterval := 100 * time.Millisecond
	switch {
	case o.DatabaseURL == "":
		st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(o.DataDir, DBFile), Logger: o.Logger})
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, st.Close)
		s.Store = st
		if err := prepareSchema(ctx, st, o.Migrate); err != nil {
			return nil, err
		}
		newClient = func(c *river.Config) (queueClient, error) { return newRiver(st.Driver(), c) }
		if o.Workers > 0 {
			// Only one process works the embedded queue, so the jobs it
			// finds running were cut off by a crash: run them again now.
			unlock, err := lockDataDir(o.DataDir)
			if err != nil {
				return nil, err
			}
			s.closers = append(s.closers, unlock)
			n, err := st.RequeueInterrupted(ctx)
			if err != nil {
				return nil, err
			}
			if n > 0 {
				o.Logger.Warn("requeued tasks interrupted by an earlier crash", "jobs", n)
			}
		}
	case strings.HasPrefix(o.DatabaseURL, "postgres://") || strings.HasPrefix(o.DatabaseURL, "postgresql://"):
		st, err := postgres.Open(ctx, postgres.Options{URL: o.DatabaseURL, Logger: o.Logger})
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, st.Close)
		s.Store = st
		if err := prepareSchema(ctx, st, o.Migrate); err != nil {
			return nil, err
		}
		newClient = func(c *river.Config) (queueClient, error) { return newRiver(st.Driver(), c) }
		s.relay = newRelay(st.Pool(), o.Logger)
	default:
		return nil, errors.New("database URL must start with postgres:// or postgresql://")
	}

	// Processes sharing PostgreSQL relay their events to each other; the
	// embedded database has one process.
	hubOpts := events.Options{}
	if s.relay != nil {
		hubOpts.Forward = s.relay.forward
	}
	s.Hub = events.New(hubOpts)
	if s.relay != nil {
		if err := s.relay.start(ctx, s.Hub); err != nil {
			return nil, err
		}
		s.closers = append(s.closers, s.relay.stop)
	}

	switch {
	case o.BlobURL == "":
		b, err := fileblob.Open(filepath.Join(o.DataDir, BlobDir))
		if err != nil {
			return nil, err
		}
		s.Blobs = b
	case strings.HasPrefix(o.BlobURL, "s3://"):
		// Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
		// (and AWS_SESSION_TOKEN); New checks the bucket and sweeps the
		// temporary objects of crashed uploads.
		getenv := o.Getenv
		if getenv == nil {
			getenv = os.Getenv
		}
		c, err := s3blob.ParseURL(o.BlobURL, getenv)
		if err != nil {
			return nil, fmt.Errorf("blob store: %w", err)
		}
		b, err := s3blob.New(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("blob store: %w", err)
		}
		s.Blobs = b
	default:
		return nil, fmt.Errorf("blob URL %q: must start with s3:// (or be empty for files in the data directory)", redactURL(o.BlobURL))
	}

	cfg := &river.Config{
		Logger: o.Logger.With("component", "river"),
		// The 100 ms default caps a client at ~20 jobs/s (ARCHITECTURE.md §7).
		FetchCooldown:     5 * time.Millisecond,
		FetchPollInterval: pollInterval,
		// A job whose process died is worked again soon after its attempt
		// could have ended, instead of River's one-hour default.
		RescueStuckJobsAfter: o.TaskTimeout + 10*time.Second,
		JobTimeout:           o.TaskTimeout,
	}
	if tc, ok := s.Store.(interface {
		TaskCounts(context.Context) (map[imgd.TaskStatus]int64, error)
	}); ok {
		o.Metrics.SetTaskCounter(tc.TaskCounts)
		o.Metrics.SetLogger(o.Logger)
	}
	ds, ok := s.Store.(deliveryStore)
	if !ok {
		return nil, fmt.Errorf("store %T keeps no webhook deliveries", s.Store)
	}
	s.deliveries = deliveryRecorder{ds}
	if o.Workers > 0 {
		w, err := worker.New(worker.Options{Store: s.Store, Blobs: s.Blobs, Engine: eng, Hub: s.Hub,
			Logger: o.Logger.With("component", "worker"), Timeout: o.TaskTimeout, OnUpdate: s.TaskUpdated})
		if err != nil {
			return nil, err
		}
		hooks, err := webhook.New(webhook.Options{Tasks: s.Store, Recorder: s.deliveries, Secret: o.WebhookSecret,
			AllowPrivate: o.WebhookAllowPrivate, Logger: o.Logger.With("component", "webhook")})
		if err != nil {
			return nil, err
		}
		workers := river.NewWorkers()
		river.AddWorker(workers, w)
		river.AddWorker(workers, hooks)
		cfg.Workers = workers
		cfg.Queues = map[string]river.QueueConfig{
			river.QueueDefault: {MaxWorkers: o.Workers},
			// Deliveries are not worth a poll every 10 ms: each poll of an
			// idle queue is a database transaction.
			webhook.Queue: {MaxWorkers: webhookWorkers, FetchPollInterval: time.Second},
		}
		if err := addMaintenance(cfg, workers, s, o.ResultTTL); err != nil {
			return nil, err
		}
		if s.queue, err = newClient(cfg); err != nil {
			return nil, fmt.Errorf("river client: %w", err)
		}
		s.inserter = s.queue
	} else {
		// Insert-only: the processes with workers deliver.
		ins, err := newClient(&river.Config{Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("river insert client: %w", err)
		}
		s.inserter = ins
	}
	return s, nil
}

func newRiver[TTx any](d riverdriver.Driver[TTx], c *river.Config) (queueClient, error) {
	return river.NewClient(d, c)
}

// TaskUpdated is told of every task status change (by the worker, and by
// the API for cancellations); a final status of a task with a webhook URL
// enqueues its delivery. A failure is logged: the task's own state is
// already stored and must not depend on its webhook. The hook has no ctx
// (worker.Options.OnUpdate), and the caller's would be the wrong one anyway:
// a request or job ending must not cancel the enqueue of a change already
// made, hence a root context with its own timeout.
func (s *Service) TaskUpdated(t imgd.Task) {
	s.metrics.TaskUpdated(t)
	if t.WebhookURL == "" || !t.Status.Final() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := webhook.Enqueue(ctx, s.inserter, t); err != nil {
		s.Log.Error("webhook not enqueued", "task_id", t.ID, "status", t.Status, "err", err)
	}
}

// WebhookDeliveries returns the webhook delivery attempts of a task, oldest
// first (for GET /api/v1/tasks/{id}/webhooks).
func (s *Service) WebhookDeliveries(ctx context.Context, taskID string) ([]webhook.Delivery, error) {
	return s.deliveries.ListDeliveries(ctx, taskID)
}

// deliveryStore is what both stores (through sqlstore.Store) keep of
// webhook deliveries.
type deliveryStore interface {
	AddWebhookDelivery(ctx context.Context, d sqlstore.WebhookDelivery) (sqlstore.WebhookDelivery, error)
	ListWebhookDeliveries(ctx context.Context, taskID string) ([]sqlstore.WebhookDelivery, error)
}

// deliveryRecorder adapts a deliveryStore to webhook.Recorder; the store
// does not import the webhook package, and the two record types have the
// same fields.
type deliveryRecorder struct{ st deliveryStore }

func (r deliveryRecorder) RecordDelivery(ctx context.Context, d webhook.Delivery) error {
	_, err := r.st.AddWebhookDelivery(ctx, sqlstore.WebhookDelivery(d))
	return err
}

func (r deliveryRecorder) ListDeliveries(ctx context.Context, taskID string) ([]webhook.Delivery, error) {
	ds, err := r.st.ListWebhookDeliveries(ctx, taskID)
	if err != nil {
		return nil, err
	}
	out := make([]webhook.Delivery, len(ds))
	for i, d := range ds {
		out[i] = webhook.Delivery(d)
	}
	return out, nil
}

// schemaStore is what both stores offer for their schema.
type schemaStore interface {
	Migrate(ctx context.Context) error
	CheckSchema(ctx context.Context) error
}

// prepareSchema migrates the database when this process owns the schema
// (migrate), and otherwise checks that it is exactly the one this binary
// was built for.
func prepareSchema(ctx context.Context, st schemaStore, migrate bool) error {
	if !migrate {
		return st.CheckSchema(ctx)
	}
	if err := st.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate the database: %w", err)
	}
	return nil
}

// redactURL hides a URL's password for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
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
