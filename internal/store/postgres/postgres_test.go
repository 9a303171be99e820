package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/imgtest"
	"github.com/imgd/imgd/internal/store/postgres"
	"github.com/imgd/imgd/internal/store/storetest"
)

// databaseURL returns the test server's URL, or skips (fails under
// IMGD_TEST_REQUIRE_ALL=1) when none is configured.
func databaseURL(t *testing.T) string {
	t.Helper()
	return imgtest.RequireEnv(t, storetest.PostgresURLEnv)
}

// openStore opens and migrates a store in a fresh schema test_<random>,
// dropped in t.Cleanup.
func openStore(t *testing.T, opts postgres.Options) *postgres.Store {
	t.Helper()
	opts.URL = storetest.PostgresURL(t)
	if opts.MaxConns == 0 {
		opts.MaxConns = 8
	}
	s, err := postgres.Open(t.Context(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() }) // runs before the schema is dropped
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func harness(s *postgres.Store) storetest.Harness {
	return storetest.Harness{
		Store:   s,
		Dialect: "postgres",
		Exec: func(ctx context.Context, query string, args ...any) error {
			_, err := s.Pool().Exec(ctx, query, args...)
			return err
		},
		QueryRow: func(ctx context.Context, query string, args ...any) storetest.Row {
			return s.Pool().QueryRow(ctx, query, args...)
		},
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	databaseURL(t)
	storetest.Run(t, func(t *testing.T, opts storetest.Options) storetest.Harness {
		return harness(openStore(t, postgres.Options{NowFunc: opts.NowFunc}))
	})
}

func TestRiver(t *testing.T) {
	t.Parallel()
	s := openStore(t, postgres.Options{})
	storetest.RunRiver(t, s, s.Driver())
}

func TestMigrateUpDownUp(t *testing.T) {
	t.Parallel()
	s := openStore(t, postgres.Options{})
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
	err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_tables
		WHERE schemaname = current_schema() AND tablename IN ('images', 'tasks')`).Scan(&n)
	if err != nil {
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

// Concurrent deletions of the last two images sharing a blob: exactly one
// of them reports the blob unreferenced (row locks order them).
func TestConcurrentDeletesReportSharedBlobOnce(t *testing.T) {
	t.Parallel()
	s := openStore(t, postgres.Options{})
	ctx := t.Context()
	for round := range 10 {
		content := fmt.Sprint("shared ", round)
		a, _, err := s.CreateImage(ctx, storetest.NewImage("", content))
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := s.CreateImage(ctx, storetest.NewImage("", content))
		if err != nil {
			t.Fatal(err)
		}
		results := make(chan []string, 2)
		for _, id := range []string{a.ID, b.ID} {
			go func() {
				keys, err := s.DeleteImage(ctx, id)
				if err != nil {
					t.Errorf("DeleteImage(%s): %v", id, err)
				}
				results <- keys
			}()
		}
		reported := len(<-results) + len(<-results)
		if reported != 1 {
			t.Errorf("round %d: the shared blob was reported %d times by two concurrent deletions, want 1", round, reported)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		url  string
		want imgd.Code
	}{
		{"not a URL", "postgres://user:secret@[::1", imgd.CodeInvalidArgument},
		{"nothing listening", "postgres://postgres:secret@127.0.0.1:1/test?sslmode=disable&connect_timeout=2", imgd.CodeUnavailable},
	}
	for _, tt := range tests {
		s, err := postgres.Open(t.Context(), postgres.Options{URL: tt.url})
		if err == nil {
			s.Close()
		}
		if got := imgd.CodeOf(err); got != tt.want {
			t.Errorf("Open(%s) = %v (code %q), want code %q", tt.name, err, got, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%s) error %q shows the password", tt.name, err)
		}
	}
}
