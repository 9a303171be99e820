package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/store/sqlite"
	"github.com/imgd/imgd/internal/store/storetest"
)

// openStore opens and migrates a store on a fresh file in t.TempDir().
func openStore(t *testing.T, opts sqlite.Options) *sqlite.Store {
	t.Helper()
	if opts.Path == "" {
		opts.Path = filepath.Join(t.TempDir(), "imgd.db")
	}
	s, err := sqlite.Open(t.Context(), opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", opts.Path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func harness(s *sqlite.Store) storetest.Harness {
	return storetest.Harness{
		Store:   s,
		Dialect: "sqlite",
		Exec: func(ctx context.Context, query string, args ...any) error {
			_, err := s.DB().ExecContext(ctx, query, args...)
			return err
		},
		QueryRow: func(ctx context.Context, query string, args ...any) storetest.Row {
			return s.DB().QueryRowContext(ctx, query, args...)
		},
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, opts storetest.Options) storetest.Harness {
		return harness(openStore(t, sqlite.Options{NowFunc: opts.NowFunc}))
	})
}

// The same suite with one connection, River's recommended SQLite setting.
func TestConformanceOneConn(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, opts storetest.Options) storetest.Harness {
		return harness(openStore(t, sqlite.Options{NowFunc: opts.NowFunc, MaxConns: 1}))
	})
}

func TestRiver(t *testing.T) {
	t.Parallel()
	for _, conns := range []int{1, 4} {
		t.Run(fmt.Sprint(conns, "conns"), func(t *testing.T) {
			t.Parallel()
			s := openStore(t, sqlite.Options{MaxConns: conns})
			storetest.RunRiver(t, s, s.Driver())
		})
	}
}

func TestPragmasOnEveryConnection(t *testing.T) {
	t.Parallel()
	s := openStore(t, sqlite.Options{MaxConns: 3, BusyTimeout: 2500 * time.Millisecond})
	ctx := t.Context()
	// Hold three connections at once so that each is a different one.
	var conns []*sql.Conn
	for range 3 {
		c, err := s.DB().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	tests := []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"busy_timeout", "2500"},
		{"synchronous", "1"}, // NORMAL
	}
	for i, c := range conns {
		for _, tt := range tests {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+tt.pragma).Scan(&got); err != nil {
				t.Fatalf("PRAGMA %s: %v", tt.pragma, err)
			}
			if got != tt.want {
				t.Errorf("connection %d: PRAGMA %s = %s, want %s", i, tt.pragma, got, tt.want)
			}
		}
	}
}

// Writers queue on the write lock for up to the busy timeout instead of
// failing: many goroutines, more connections than SQLite has writers.
func TestBusyWritersWait(t *testing.T) {
	t.Parallel()
	s := openStore(t, sqlite.Options{MaxConns: 16})
	ctx := t.Context()
	im, _, err := s.CreateImage(ctx, storetest.NewImage("", "busy"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			task, _, err := s.CreateTask(ctx, imgd.Task{ImageID: im.ID,
				Pipeline: imgd.MustParsePipeline(`[{"op":"grayscale"}]`), IdempotencyKey: fmt.Sprint(i)})
			if err != nil {
				t.Errorf("CreateTask #%d: %v", i, err)
				return
			}
			if _, err := s.StartTask(ctx, task.ID, 1); err != nil {
				t.Errorf("StartTask #%d: %v", i, err)
			}
			if _, err := s.CompleteTask(ctx, task.ID, storetest.NewResult(fmt.Sprint(i))); err != nil {
				t.Errorf("CompleteTask #%d: %v", i, err)
			}
			if _, err := s.GetImage(ctx, im.ID); err != nil {
				t.Errorf("GetImage #%d: %v", i, err)
			}
		})
	}
	wg.Wait()
	var done int
	if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM tasks WHERE status = 'completed'`).Scan(&done); err != nil {
		t.Fatal(err)
	}
	if done != n {
		t.Errorf("%d completed tasks, want %d", done, n)
	}
}

// Past the busy timeout, a writer fails with CodeUnavailable (retry), not
// with a driver error.
func TestBusyTimeoutIsUnavailable(t *testing.T) {
	t.Parallel()
	s := openStore(t, sqlite.Options{BusyTimeout: 50 * time.Millisecond})
	ctx := t.Context()
	tx, err := s.DB().BeginTx(ctx, nil) // BEGIN IMMEDIATE: holds the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	_, _, err = s.CreateImage(ctx, storetest.NewImage("", "blocked"))
	if got := imgd.CodeOf(err); got != imgd.CodeUnavailable {
		t.Errorf("CreateImage while another connection writes = %v (code %q), want code unavailable", err, got)
	}
	// Readers are not blocked by the writer (WAL).
	if _, err := s.ListImages(ctx, imgd.ImageFilter{}); err != nil {
		t.Errorf("ListImages while another connection writes: %v", err)
	}
}

func TestMigrateUpDownUp(t *testing.T) {
	t.Parallel()
	s := openStore(t, sqlite.Options{})
	ctx := t.Context()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	if _, _, err := s.CreateImage(ctx, storetest.NewImage("", "before down")); err != nil {
		t.Fatal(err)
	}
	if err := s.MigrateDown(ctx, 0); err != nil {
		t.Fatalf("MigrateDown(0): %v", err)
	}
	var n int
	if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name IN ('images', 'tasks')`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d of imgd's tables left after MigrateDown(0)", n)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate after down: %v", err)
	}
	if _, _, err := s.CreateImage(ctx, storetest.NewImage("", "after up")); err != nil {
		t.Errorf("CreateImage after up/down/up: %v", err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "imgd.db")
	s, err := sqlite.Open(t.Context(), sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	im, _, err := s.CreateImage(t.Context(), storetest.NewImage("", "durable"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, sqlite.Options{Path: path})
	got, err := s2.GetImage(t.Context(), im.ID)
	if err != nil || got.SHA256 != im.SHA256 || !got.CreatedAt.Equal(im.CreatedAt) {
		t.Errorf("GetImage after reopen = %+v, %v; want %+v", got, err, im)
	}
}

func TestOpenInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		path string
		want imgd.Code
	}{
		{"empty", "", imgd.CodeInvalidArgument},
		{"query in path", "a.db?mode=ro", imgd.CodeInvalidArgument},
		{"missing directory", filepath.Join(t.TempDir(), "no", "such", "dir", "imgd.db"), imgd.CodeUnavailable},
	}
	for _, tt := range tests {
		s, err := sqlite.Open(t.Context(), sqlite.Options{Path: tt.path})
		if err == nil {
			s.Close()
		}
		if got := imgd.CodeOf(err); got != tt.want {
			t.Errorf("Open(%s) = %v (code %q), want code %q", tt.name, err, got, tt.want)
		}
	}
}
