package storetest

import (
	"context"
	"crypto/rand"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/imgd/imgd/internal/imgtest"
)

// PostgresURLEnv names the PostgreSQL server the tests use, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const PostgresURLEnv = "IMGD_TEST_POSTGRES_URL"

// PostgresURL returns the test server's URL with a fresh schema
// test_<random> as its search path, so that tests running at once do not
// see each other's rows; the schema is dropped in tb.Cleanup, registered
// first so that it runs after the cleanups of whatever the test opens on
// it. It skips (fails under IMGD_TEST_REQUIRE_ALL=1) when no server is
// configured.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	base := imgtest.RequireEnv(tb, PostgresURLEnv)
	schema := "test_" + strings.ToLower(rand.Text()[:16])
	admin, err := pgx.Connect(tb.Context(), base)
	if err != nil {
		tb.Fatalf("connect to %s: %v", PostgresURLEnv, err)
	}
	defer admin.Close(context.WithoutCancel(tb.Context()))
	if _, err := admin.Exec(tb.Context(), "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema %s: %v", schema, err)
	}
	tb.Cleanup(func() {
		ctx := context.Background()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
