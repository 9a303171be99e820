package sqlite_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/store/sqlite"
)

func TestTaskCounts(t *testing.T) {
	t.Parallel()
	s := openStore(t, sqlite.Options{})
	ctx := t.Context()

	got, err := s.TaskCounts(ctx)
	if err != nil {
		t.Fatalf("TaskCounts on an empty store: %v", err)
	}
	if len(got) != 0 {
		t.Errorf("TaskCounts on an empty store = %v, want an empty map", got)
	}

	sum := sha256.Sum256([]byte("counts"))
	digest := hex.EncodeToString(sum[:])
	im, _, err := s.CreateImage(ctx, imgd.Image{Filename: "a.png", MediaType: "image/png", Format: imgd.FormatPNG,
		Width: 1, Height: 1, Frames: 1, Bytes: 1, SHA256: digest, BlobKey: "sha256/" + digest})
	if err != nil {
		t.Fatalf("CreateImage: %v", err)
	}
	var ids []string
	for range 4 {
		task, _, err := s.CreateTask(ctx, imgd.Task{ImageID: im.ID, Pipeline: imgd.MustParsePipeline(`[{"op":"grayscale"}]`)})
		if err != nil {
			t.Fatalf("CreateTask: %v", err)
		}
		ids = append(ids, task.ID)
	}
	if _, err := s.StartTask(ctx, ids[0], 1); err != nil {
		t.Fatalf("StartTask: %v", err)
	}
	for _, id := range ids[1:3] {
		if _, err := s.CancelTask(ctx, id); err != nil {
			t.Fatalf("CancelTask: %v", err)
		}
	}

	got, err = s.TaskCounts(ctx)
	if err != nil {
		t.Fatalf("TaskCounts: %v", err)
	}
	want := map[imgd.TaskStatus]int64{imgd.TaskPending: 1, imgd.TaskProcessing: 1, imgd.TaskCanceled: 2}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("TaskCounts (-want +got):\n%s", diff)
	}
}
