package service

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/imgd/imgd"
)

// Periodic upkeep: expiring results (IMGD_RESULT_TTL) and sweeping the
// temporary objects crashed S3 uploads left. It runs as a River periodic
// job: only processes with workers have it, River's elected leader
// enqueues it, and one worker of one process runs each occurrence, however
// many processes share the database.

// maintenanceQueue is the queue of upkeep jobs, apart from tasks so that a
// long backlog does not delay them, and polled rarely: an idle queue's poll
// is a database transaction.
const maintenanceQueue = "maintenance"

const (
	// maxMaintenanceInterval is how often upkeep runs at most: the S3 sweep
	// removes objects older than a day, so hourly is plenty.
	maxMaintenanceInterval = time.Hour
	// minMaintenanceInterval bounds how often a tiny TTL makes it run.
	minMaintenanceInterval = time.Second
	// expireBatch is how many results one transaction expires: a long
	// backlog (a TTL just set on a large store) goes in short transactions.
	expireBatch = 500
	// maintenanceTimeout bounds one run; the next run continues the work.
	maintenanceTimeout = 10 * time.Minute
)

// maintenanceInterval is how often upkeep runs for a result TTL (0: none):
// a quarter of the TTL, so that a result outlives it by at most that much,
// within [minMaintenanceInterval, maxMaintenanceInterval].
func maintenanceInterval(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return maxMaintenanceInterval
	}
	return min(max(ttl/4, minMaintenanceInterval), maxMaintenanceInterval)
}

// maintenanceArgs is the (empty) argument of an upkeep job.
type maintenanceArgs struct{}

func (maintenanceArgs) Kind() string { return "imgd_maintenance" }

func (maintenanceArgs) InsertOpts() river.InsertOpts {
	// One attempt: the next period is the retry.
	return river.InsertOpts{Queue: maintenanceQueue, MaxAttempts: 1}
}

// resultExpirer is what the stores (sqlstore.Store) offer for expiry.
type resultExpirer interface {
	ExpireResults(ctx context.Context, cutoff time.Time, limit int) (expired int, unreferenced []string, _ error)
}

// tempSweeper is a blob store whose crashed uploads leave temporary
// objects (s3blob.Store).
type tempSweeper interface {
	RemoveStaleTemps(ctx context.Context)
}

// maintenanceWorker runs the upkeep job.
type maintenanceWorker struct {
	river.WorkerDefaults[maintenanceArgs]
	store   imgd.Store
	expirer resultExpirer // nil: results never expire
	blobs   imgd.BlobStore
	ttl     time.Duration
	now     func() time.Time
	log     *slog.Logger
}

func (w *maintenanceWorker) Timeout(*river.Job[maintenanceArgs]) time.Duration {
	return maintenanceTimeout
}

func (w *maintenanceWorker) Work(ctx context.Context, _ *river.Job[maintenanceArgs]) error {
	if s, ok := w.blobs.(tempSweeper); ok {
		s.RemoveStaleTemps(ctx)
	}
	if w.expirer == nil {
		return nil
	}
	return w.expire(ctx, w.now().Add(-w.ttl))
}

// expire drops the results finished before cutoff, batch by batch, and
// deletes the blobs nothing references any more. A blob that cannot be
// deleted now is leaked (logged), never lost while referenced: the reference
// is gone from the database first.
func (w *maintenanceWorker) expire(ctx context.Context, cutoff time.Time) error {
	total, deleted := 0, 0
	for {
		n, unref, err := w.expirer.ExpireResults(ctx, cutoff, expireBatch)
		if err != nil {
			return fmt.Errorf("expire results: %w", err)
		}
		total += n
		// DeleteUnreferenced checks the rule again, just before deleting:
		// a task completed meanwhile may reuse one of these blobs.
		if err := imgd.DeleteUnreferenced(ctx, w.store, w.blobs, unref...); err != nil {
			w.log.Warn("expired result blobs not deleted", "blobs", len(unref), "err", err)
		} else {
			deleted += len(unref)
		}
		if n < expireBatch {
			break
		}
	}
	if total > 0 {
		w.log.Info("results expired", "tasks", total, "blobs_deleted", deleted, "finished_before", cutoff)
	}
	return nil
}

// addMaintenance registers the upkeep worker and its periodic job in cfg,
// when there is upkeep to do: results expire, or the blob store has
// temporary objects to sweep.
func addMaintenance(cfg *river.Config, workers *river.Workers, s *Service, ttl time.Duration) error {
	w := &maintenanceWorker{store: s.Store, blobs: s.Blobs, ttl: ttl, now: time.Now,
		log: s.Log.With("component", "maintenance")}
	if ttl > 0 {
		e, ok := s.Store.(resultExpirer)
		if !ok {
			return fmt.Errorf("store %T cannot expire results", s.Store)
		}
		w.expirer = e
	}
	if _, sweeps := s.Blobs.(tempSweeper); w.expirer == nil && !sweeps {
		return nil
	}
	river.AddWorker(workers, w)
	cfg.Queues[maintenanceQueue] = river.QueueConfig{MaxWorkers: 1, FetchPollInterval: time.Second}
	cfg.PeriodicJobs = append(cfg.PeriodicJobs, river.NewPeriodicJob(
		river.PeriodicInterval(maintenanceInterval(ttl)),
		func() (river.JobArgs, *river.InsertOpts) { return maintenanceArgs{}, nil },
		&river.PeriodicJobOpts{ID: "imgd_maintenance", RunOnStart: true}))
	return nil
}
