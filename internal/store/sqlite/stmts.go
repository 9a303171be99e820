package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// maxCachedStmts bounds the statement cache: the store's queries are a
// fixed set (list filters combine into a few dozen), so the bound only
// guards against a query text that would vary without end.
const maxCachedStmts = 256

// stmtCache keeps the store's statements prepared. modernc.org/sqlite
// parses a statement's text on every Exec or Query that is not prepared,
// and database/sql prepares nothing by itself: under load SQLite's parser
// took about 7 % of imgd serve's CPU (perf). A *sql.Stmt is prepared on
// each connection once, when first used there, and inside a transaction
// through Tx.StmtContext.
//
// A statement is prepared in the background the first time it is asked
// for, and run from its text meanwhile: preparing takes a connection of
// the pool, and the caller may be a transaction holding the only one.
type stmtCache struct {
	db     *sql.DB
	mu     sync.Mutex
	m      map[string]*sql.Stmt // nil value: being prepared, or failed to
	closed bool
}

// get returns the prepared statement for query, or nil when it is not (yet)
// prepared.
func (c *stmtCache) get(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[query]; ok || c.closed || len(c.m) >= maxCachedStmts {
		return s
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[query] = nil
	go c.prepare(query)
	return nil
}

func (c *stmtCache) prepare(query string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return // left nil: the text keeps being run, and reports the error
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		_ = s.Close()
		return
	}
	c.m[query] = s
}

// close closes every cached statement; statements still being prepared
// are closed when they are ready.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.m {
		if s != nil {
			_ = s.Close()
		}
	}
	c.m, c.closed = nil, true
}

// stmtQuerier runs queries through the cache, on the database or in a
// transaction.
type stmtQuerier struct {
	cache *stmtCache
	tx    *sql.Tx // nil: the database
}

func (q stmtQuerier) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s := q.cache.get(query)
	switch {
	case s == nil && q.tx != nil:
		return q.tx.ExecContext(ctx, query, args...)
	case s == nil:
		return q.cache.db.ExecContext(ctx, query, args...)
	case q.tx != nil:
		return q.tx.StmtContext(ctx, s).ExecContext(ctx, args...)
	}
	return s.ExecContext(ctx, args...)
}

func (q stmtQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s := q.cache.get(query)
	switch {
	case s == nil && q.tx != nil:
		return q.tx.QueryContext(ctx, query, args...)
	case s == nil:
		return q.cache.db.QueryContext(ctx, query, args...)
	case q.tx != nil:
		return q.tx.StmtContext(ctx, s).QueryContext(ctx, args...)
	}
	return s.QueryContext(ctx, args...)
}
