package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"reflect"
	"sync"
)

// maxCachedStmts bounds each connection's statement cache: imgd's and
// River's queries are a fixed set (list filters and River's batch sizes
// combine into a few dozen texts), so the bound only guards against a
// query text that would vary without end. A text beyond it runs unprepared.
const maxCachedStmts = 256

// cachingConnector opens connections that keep every statement they run
// prepared, keyed by its text.
//
// modernc.org/sqlite parses a statement's text on every Exec or Query that
// is not prepared, and database/sql prepares nothing by itself. River's
// SQLite driver runs all its queries that way: under the service benchmark
// SQLite's parser took 11 % of imgd serve's CPU (perf), nine tenths of it
// for River's job fetch and insert, which are on every task's path. Caching
// in the connection, below database/sql, covers River's queries as well as
// the store's, inside transactions and out, without preparing anything on
// another connection than the one that runs it.
type cachingConnector struct {
	driver.Connector
}

func (c cachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	cc, ok := conn.(sqliteConn)
	if !ok {
		// modernc's connection implements all of sqliteConn; an upgrade
		// that breaks this fails TestStmtCache.
		_ = conn.Close()
		return nil, errors.New("sqlite: driver connection lacks the interfaces the statement cache needs")
	}
	return &cachingConn{sqliteConn: cc, stmts: make(map[string]*cachedStmt)}, nil
}

// sqliteConn is what database/sql uses of modernc's connection.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// cachingConn is a connection with a statement cache. database/sql uses a
// connection from one goroutine at a time, but a statement's rows may be
// closed while the connection serves another call (Rows.Close after the
// transaction moved on), hence the mutex.
type cachingConn struct {
	sqliteConn
	mu    sync.Mutex
	stmts map[string]*cachedStmt
}

var _ sqliteConn = (*cachingConn)(nil)

// cachedStmt is one prepared statement; busy while rows read from it are
// open, when a second use of the same text runs unprepared instead.
type cachedStmt struct {
	stmt interface {
		driver.Stmt
		driver.StmtExecContext
		driver.StmtQueryContext
	}
	busy bool
}

// acquire returns the prepared statement of query, preparing it on first
// use, or nil when query must run unprepared: the cache is full, the
// statement is busy, or it cannot be prepared (running the text then
// reports the error as it would have without the cache).
func (c *cachingConn) acquire(ctx context.Context, query string) *cachedStmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.stmts[query]; ok {
		if s.busy {
			return nil
		}
		s.busy = true
		return s
	}
	if len(c.stmts) >= maxCachedStmts {
		return nil
	}
	ds, err := c.sqliteConn.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	st, ok := ds.(interface {
		driver.Stmt
		driver.StmtExecContext
		driver.StmtQueryContext
	})
	if !ok {
		_ = ds.Close()
		return nil
	}
	s := &cachedStmt{stmt: st, busy: true}
	c.stmts[query] = s
	return s
}

func (c *cachingConn) release(s *cachedStmt) {
	c.mu.Lock()
	s.busy = false
	c.mu.Unlock()
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	s := c.acquire(ctx, query)
	if s == nil {
		return c.sqliteConn.ExecContext(ctx, query, args)
	}
	defer c.release(s)
	return s.stmt.ExecContext(ctx, args)
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	s := c.acquire(ctx, query)
	if s == nil {
		return c.sqliteConn.QueryContext(ctx, query, args)
	}
	rows, err := s.stmt.QueryContext(ctx, args)
	if err != nil {
		c.release(s)
		return nil, err
	}
	return &cachedRows{Rows: rows, release: func() { c.release(s) }}, nil
}

// Close finalizes the cached statements, then closes the connection.
func (c *cachingConn) Close() error {
	c.mu.Lock()
	var errs []error
	for q, s := range c.stmts {
		errs = append(errs, s.stmt.Close())
		delete(c.stmts, q)
	}
	c.mu.Unlock()
	return errors.Join(append(errs, c.sqliteConn.Close())...)
}

// cachedRows releases its statement when closed: closing modernc's rows of
// a prepared statement resets the statement for its next use. It passes on
// the column type information of the driver's rows.
type cachedRows struct {
	driver.Rows
	once    sync.Once
	release func()
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.once.Do(r.release)
	return err
}

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *cachedRows) ColumnTypeNullable(i int) (nullable, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *cachedRows) ColumnTypePrecisionScale(i int) (precision, scale int64, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}
