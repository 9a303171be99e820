package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/imgd/imgd/internal/httpapi"
	"github.com/imgd/imgd/internal/metrics"
	"github.com/imgd/imgd/internal/service"
)

// role is what a long-running imgd process does.
type role string

const (
	roleServe  role = "serve"  // API, web page and workers in one process
	roleAPI    role = "api"    // API and web page; tasks run elsewhere
	roleWorker role = "worker" // workers, with /healthz, /readyz, /metrics
)

// runServer runs one of the long-running roles until SIGINT or SIGTERM,
// then shuts down gracefully: it stops accepting connections, lets
// requests and running tasks finish within the shutdown timeout, and puts
// tasks still running after it back in the queue.
func runServer(ctx context.Context, r role, args []string, env Env) int {
	fs, vals := newFlagSet(string(r), env)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "imgd %s: unexpected arguments %q\n", r, fs.Args())
		return exitUsage
	}
	c, err := resolve(fs, vals, env.Getenv)
	if err != nil {
		fmt.Fprintf(env.Stderr, "imgd %s: %v\n", r, err)
		return exitUsage
	}
	log := newLogger(c, env.Stderr).With("role", string(r))

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	workers := c.Workers
	if r == roleAPI {
		workers = 0
	}
	m := metrics.New()
	svc, err := service.Open(ctx, service.Options{
		DataDir:     c.DataDir,
		DatabaseURL: c.DatabaseURL,
		BlobURL:     c.BlobURL,
		Workers:     workers,
		TaskTimeout: c.TaskTimeout,
		// The embedded database is this process's own: it brings the
		// schema up to date. A shared database is migrated by
		// `imgd migrate`, once, not by every process that starts.
		Migrate:             c.DatabaseURL == "",
		Limits:              c.Limits,
		Logger:              log,
		WebhookSecret:       c.WebhookSecret,
		WebhookAllowPrivate: c.WebhookAllowPrivate,
		Metrics:             m,
		Getenv:              env.Getenv,
		ResultTTL:           c.ResultTTL,
	})
	if err != nil {
		log.Error("start failed", "error", err)
		return exitStartup
	}
	defer svc.Close()

	var handler http.Handler
	if r == roleWorker {
		handler = opsHandler(svc, m)
	} else {
		api, err := httpapi.New(httpapi.Options{Store: svc.Store, Blobs: svc.Blobs, Engine: svc.Engine, Hub: svc.Hub,
			Ready: svc.Ready, Metrics: m, Logger: log, OnTaskUpdate: svc.TaskUpdated,
			WebhookDeliveries: svc.WebhookDeliveries, PresignTTL: c.BlobPresign})
		if err != nil {
			log.Error("start failed", "error", err)
			return exitStartup
		}
		handler = api
	}

	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		log.Error("listen failed", "addr", c.Addr, "error", err)
		return exitStartup
	}
	// Requests get a context that ends when shutdown starts, so that
	// long-lived Server-Sent Event streams end and Shutdown does not wait
	// for them.
	reqCtx, endRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer endRequests()
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// River cancels running jobs when Start's context ends; shutdown is
	// svc.Stop's job, within the shutdown timeout.
	if err := svc.Start(context.WithoutCancel(ctx)); err != nil {
		log.Error("start workers failed", "error", err)
		return exitStartup
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("imgd started", "url", "http://"+ln.Addr().String(), "workers", workers,
		"data_dir", c.DataDir, "version", Version())

	code := exitOK
	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", c.ShutdownTimeout.String())
	case err := <-serveErr:
		log.Error("http server failed", "error", err)
		code = exitFailed
	}
	stop() // a second signal now kills the process at once
	shutCtx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	endRequests()
	if err := srv.Shutdown(shutCtx); err != nil {
		log.Warn("http shutdown", "error", err)
		_ = srv.Close()
	}
	if err := svc.Stop(shutCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Warn("stop workers", "error", err)
	}
	log.Info("imgd stopped")
	return code
}

// opsHandler serves a worker's /healthz, /readyz and /metrics.
func opsHandler(svc *service.Service, m *metrics.Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		if err := svc.Ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, `{"status":"unavailable"}`)
			return
		}
		fmt.Fprintln(w, `{"status":"ready"}`)
	})
	mux.Handle("GET /metrics", m.Handler())
	return mux
}

// runMigrate applies the schema to the configured database and exits.
func runMigrate(ctx context.Context, args []string, env Env) int {
	fs, vals := newFlagSet("migrate", env)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	c, err := resolve(fs, vals, env.Getenv)
	if err != nil {
		fmt.Fprintf(env.Stderr, "imgd migrate: %v\n", err)
		return exitUsage
	}
	log := newLogger(c, env.Stderr)
	svc, err := service.Open(ctx, service.Options{DataDir: c.DataDir, DatabaseURL: c.DatabaseURL, BlobURL: c.BlobURL,
		Migrate: true, Limits: c.Limits, Logger: log, Getenv: env.Getenv})
	if err != nil {
		log.Error("migrate failed", "error", err)
		return exitFailed
	}
	if err := svc.Close(); err != nil {
		log.Error("migrate failed", "error", err)
		return exitFailed
	}
	log.Info("schema is up to date")
	return exitOK
}
