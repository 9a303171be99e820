package storetest

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/queue"
)

// RunRiver checks the store the way the app will use it: a River client built
// on the store's own driver, river.NewClient(driver, cfg), works the jobs
// that CreateTask inserts, in priority order, and never works the job of a
// task canceled first. s must be a fresh store of its own.
func RunRiver[TTx any](t *testing.T, s imgd.Store, driver riverdriver.Driver[TTx]) {
	ctx := t.Context()
	im := mustCreateImage(t, s, NewImage("", "river"))
	var want []string
	for _, prio := range []int{4, 1, 3} {
		task := mustCreateTask(t, s, imgd.Task{ImageID: im.ID, Pipeline: resize300, Priority: prio})
		want = append(want, task.ID)
	}
	want[0], want[1], want[2] = want[1], want[2], want[0] // by priority: 1, 3, 4
	canceled := mustCreateTask(t, s, imgd.Task{ImageID: im.ID, Pipeline: grayscale, Priority: 1})
	if _, err := s.CancelTask(ctx, canceled.ID); err != nil {
		t.Fatal(err)
	}

	var (
		mu     sync.Mutex
		worked []string
	)
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, job *river.Job[queue.TaskArgs]) error {
		id := job.Args.TaskID
		mu.Lock()
		worked = append(worked, id)
		mu.Unlock()
		if _, err := s.StartTask(ctx, id, job.Attempt); err != nil {
			if errors.Is(err, imgd.ErrTaskTransition) {
				return river.JobCancel(err)
			}
			return err
		}
		_, err := s.CompleteTask(ctx, id, NewResult("worked "+id))
		return err
	}))
	client, err := river.NewClient(driver, &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1}},
		Workers:           workers,
		FetchCooldown:     5 * time.Millisecond,
		FetchPollInterval: 20 * time.Millisecond,
		TestOnly:          true,
		Logger:            slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatalf("river.NewClient on the store's driver: %v", err)
	}
	events, unsubscribe := client.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled)
	defer unsubscribe()
	if err := client.Start(ctx); err != nil {
		t.Fatalf("start River client: %v", err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := client.Stop(stopCtx); err != nil {
			t.Errorf("stop River client: %v", err)
		}
	}()

	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for done := 0; done < len(want); {
		select {
		case ev := <-events:
			if ev.Kind != river.EventKindJobCompleted {
				t.Fatalf("job %d: event %s, want job_completed", ev.Job.ID, ev.Kind)
			}
			done++
		case <-timeout.C:
			t.Fatalf("River worked %d of %d jobs in 30 s", done, len(want))
		}
	}
	mu.Lock()
	got := slices.Clone(worked)
	mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("River worked tasks %v, want %v (priority order, canceled task never)", got, want)
	}
	for _, id := range want {
		task, err := s.GetTask(ctx, id)
		if err != nil || task.Status != imgd.TaskCompleted || task.Attempt != 1 {
			t.Errorf("GetTask(%s) after River worked it = %s attempt %d, %v; want completed attempt 1", id, task.Status, task.Attempt, err)
		}
	}
}
