package sqlite_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/queue"
	"github.com/imgd/imgd/internal/store/sqlite"
	"github.com/imgd/imgd/internal/store/storetest"
)

// A task created through the store is fetched by this process's workers at
// once, not at the next job poll: here the poll interval is a minute, so
// only the wake-up can start the jobs in time.
func TestWakeStartsJobBeforePoll(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStore(t, sqlite.Options{})
	im, _, err := s.CreateImage(ctx, storetest.NewImage("", "wake"))
	if err != nil {
		t.Fatal(err)
	}
	worked := make(chan string, 1)
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, job *river.Job[queue.TaskArgs]) error {
		worked <- job.Args.TaskID
		return nil
	}))
	client, err := river.NewClient(s.Driver(), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1}},
		Workers:           workers,
		FetchCooldown:     5 * time.Millisecond,
		FetchPollInterval: time.Minute,
		TestOnly:          true,
		Logger:            slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := client.Stop(stop); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	time.Sleep(300 * time.Millisecond) // past the producer's first fetch at start

	for i := range 3 {
		start := time.Now()
		task, _, err := s.CreateTask(ctx, imgd.Task{ImageID: im.ID,
			Pipeline: imgd.MustParsePipeline(`[{"op":"resize","width":` + string(rune('1'+i)) + `0}]`)})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case id := <-worked:
			if id != task.ID {
				t.Fatalf("worked %s, want %s", id, task.ID)
			}
			t.Logf("task %d started %v after CreateTask", i, time.Since(start))
		case <-time.After(15 * time.Second):
			t.Fatalf("task %d not started within 15 s: the wake-up did not reach the producer", i)
		}
	}
}
