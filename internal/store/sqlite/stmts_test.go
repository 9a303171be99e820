package sqlite

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/imgd/imgd/internal/store/sqlstore"
)

// The store's statements end up prepared and give the same answers,
// outside and inside transactions, also on a one-connection pool where a
// statement's first use is inside a transaction holding that connection
// (preparing it there synchronously would deadlock).
func TestStmtCache(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "imgd.db"), MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	b := &backend{db: s.db, stmts: s.stmts}
	count := func(q sqlstore.Querier, query string) int64 {
		t.Helper()
		rows, err := q.Query(ctx, query, "nobody")
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
	inTx := func(query string) int64 {
		t.Helper()
		var n int64
		done := make(chan error, 1)
		go func() {
			done <- b.InTx(ctx, func(tx sqlstore.Tx) error { n = count(tx, query); return nil })
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("a transaction on a one-connection pool deadlocked")
		}
		return n
	}
	prepared := func(query string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			s.stmts.mu.Lock()
			ok := s.stmts.m[query] != nil
			s.stmts.mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%q not prepared 10 s after its first use", query)
			}
		}
	}

	const q1 = `SELECT count(*) FROM images WHERE owner = $1`
	if n := count(b, q1); n != 0 {
		t.Errorf("first use: %d, want 0", n)
	}
	prepared(q1)
	if n := count(b, q1); n != 0 {
		t.Errorf("prepared: %d, want 0", n)
	}

	const q2 = `SELECT count(*) FROM tasks WHERE owner = $1`
	if n := inTx(q2); n != 0 {
		t.Errorf("first use in a transaction: %d, want 0", n)
	}
	prepared(q2)
	if n := inTx(q2); n != 0 {
		t.Errorf("prepared, in a transaction: %d, want 0", n)
	}
}
