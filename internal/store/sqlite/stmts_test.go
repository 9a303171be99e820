package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/store/sqlstore"
)

// cachedTexts returns the statement texts cached on the connection of a
// one-connection pool.
func cachedTexts(t *testing.T, db *sql.DB) []string {
	t.Helper()
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var texts []string
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*cachingConn)
		if !ok {
			t.Fatalf("driver connection is %T, want *cachingConn", dc)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		for q, s := range c.stmts {
			if s.busy {
				t.Errorf("statement still busy after its rows were closed: %q", q)
			}
			texts = append(texts, q)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return texts
}

func openOneConn(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), Options{Path: filepath.Join(t.TempDir(), "imgd.db"), MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

func count(t *testing.T, q sqlstore.Querier, query string, args ...any) int64 {
	t.Helper()
	rows, err := q.Query(t.Context(), query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var n int64 = -1
	for rows.Next() {
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// A statement run again, from its cache, sees the current data (it is
// reset and rebound, not replayed), inside transactions and out.
func TestStmtCacheAnswers(t *testing.T) {
	ctx := t.Context()
	s := openOneConn(t)
	b := &backend{db: s.db}
	const q = `SELECT count(*) FROM imgd_stmt_test WHERE owner = $1`
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE imgd_stmt_test (owner TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if n := count(t, b, q, "a"); n != int64(i) {
			t.Fatalf("outside a transaction, after %d inserts: %d", i, n)
		}
		err := b.InTx(ctx, func(tx sqlstore.Tx) error {
			if n := count(t, tx, q, "a"); n != int64(i) {
				t.Errorf("in a transaction, after %d inserts: %d", i, n)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO imgd_stmt_test (owner) VALUES ($1)`, "a"); err != nil {
				return err
			}
			if n := count(t, tx, q, "a"); n != int64(i+1) {
				t.Errorf("in a transaction, after its insert: %d, want %d", n, i+1)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := count(t, b, q, "b"); n != 0 {
			t.Fatalf("other argument: %d, want 0", n)
		}
	}
	texts := cachedTexts(t, s.db)
	for _, want := range []string{q, `INSERT INTO imgd_stmt_test (owner) VALUES ($1)`} {
		found := false
		for _, text := range texts {
			found = found || text == want
		}
		if !found {
			t.Errorf("%q not cached; cached: %q", want, texts)
		}
	}

	// A table changed after its statements were prepared: SQLite prepares
	// them again by itself.
	if _, err := s.db.ExecContext(ctx, `ALTER TABLE imgd_stmt_test ADD COLUMN note TEXT NOT NULL DEFAULT ''`); err != nil {
		t.Fatal(err)
	}
	if n := count(t, b, q, "a"); n != 3 {
		t.Errorf("after ALTER TABLE: %d, want 3", n)
	}
	if _, err := b.Query(ctx, `SELECT nonsense FROM`); err == nil {
		t.Error("a statement that does not parse gave no error")
	}
}

// The same text run again while the rows of its first run are still open
// runs unprepared beside it, and both read their own rows.
func TestStmtCacheNested(t *testing.T) {
	ctx := t.Context()
	s := openOneConn(t)
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE imgd_stmt_test (v INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for v := range 4 {
		if _, err := s.db.ExecContext(ctx, `INSERT INTO imgd_stmt_test (v) VALUES ($1)`, v); err != nil {
			t.Fatal(err)
		}
	}
	const q = `SELECT v FROM imgd_stmt_test WHERE v >= $1 ORDER BY v`
	err := (&backend{db: s.db}).InTx(ctx, func(tx sqlstore.Tx) error {
		outer, err := tx.Query(ctx, q, 0)
		if err != nil {
			return err
		}
		defer outer.Close()
		var got []int64
		for outer.Next() {
			var v int64
			if err := outer.Scan(&v); err != nil {
				return err
			}
			got = append(got, v)
			// Rows from v: 4 - v of them.
			inner, err := tx.Query(ctx, q, v)
			if err != nil {
				return err
			}
			n := 0
			for inner.Next() {
				n++
			}
			inner.Close()
			if n != 4-int(v) {
				t.Errorf("inner query from %d: %d rows, want %d", v, n, 4-v)
			}
		}
		if len(got) != 4 {
			t.Errorf("outer query: %v, want 0..3", got)
		}
		return outer.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	cachedTexts(t, s.db) // and nothing is left busy
}

// River's queries, which its SQLite driver runs from their text, are
// cached too: the job insert of CreateTask is.
func TestStmtCacheRiver(t *testing.T) {
	ctx := context.Background()
	s := openOneConn(t)
	im, _, err := s.CreateImage(ctx, imgd.Image{Owner: "o", Filename: "a.png", MediaType: "image/png",
		Format: imgd.FormatPNG, Width: 1, Height: 1, Frames: 1, Bytes: 1,
		SHA256: strings.Repeat("a", 64), BlobKey: imgd.BlobKeyPrefix + strings.Repeat("a", 64)})
	if err != nil {
		t.Fatal(err)
	}
	p := imgd.MustParsePipeline(`[{"op":"convert","format":"png"}]`)
	for range 2 {
		if _, _, err := s.CreateTask(ctx, imgd.Task{ImageID: im.ID, Owner: "o", Pipeline: p}); err != nil {
			t.Fatal(err)
		}
	}
	var river bool
	for _, text := range cachedTexts(t, s.db) {
		river = river || strings.Contains(text, "INSERT INTO") && strings.Contains(text, "river_job")
	}
	if !river {
		t.Errorf("River's job insert is not among the cached statements")
	}
}
