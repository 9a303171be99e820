// Package sqlstore implements imgd.Store once, in SQL that SQLite (modernc)
// and PostgreSQL (pgx) both accept, over a small Backend that each of
// internal/store/sqlite and internal/store/postgres provides: running
// statements, transactions that can insert and cancel River jobs, and
// translating driver errors.
package sqlstore

import (
	"context"
	"errors"
)

// Querier runs SQL with $N placeholders. Arguments and scan destinations
// are Go values: string, int, int64, time.Time and *time.Time (NULL when
// nil); the backend converts what its driver needs. Errors are translated as
// described at Backend.
type Querier interface {
	Exec(ctx context.Context, query string, args ...any) (rowsAffected int64, _ error)
	Query(ctx context.Context, query string, args ...any) (Rows, error)
}

// Rows is the result of Querier.Query.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Tx is a transaction; jobs inserted through it exist exactly when the
// transaction commits.
type Tx interface {
	Querier
	// InsertTaskJob inserts the River job of a task (queue.TaskArgs) with
	// the given priority and returns its id.
	InsertTaskJob(ctx context.Context, taskID string, priority int) (jobID int64, _ error)
	// CancelJob cancels a River job; a job River already deleted is not an
	// error.
	CancelJob(ctx context.Context, jobID int64) error
}

// Backend is one database. Errors from every method are translated at the
// backend's edge: a unique-constraint violation wraps ErrUnique, a
// foreign-key violation ErrForeignKey, an unreachable or busy database is an
// *imgd.Error with CodeUnavailable, an ended ctx one with CodeCanceled;
// nothing returns a driver error type unwrapped.
type Backend interface {
	Querier
	// InTx runs fn in a transaction that commits when fn returns nil and
	// rolls back otherwise.
	InTx(ctx context.Context, fn func(Tx) error) error
	Ping(ctx context.Context) error
	// ForUpdate is appended to a SELECT to lock the rows it reads until the
	// transaction ends: " FOR UPDATE" on PostgreSQL, "" on SQLite, whose
	// write transactions are already exclusive.
	ForUpdate() string
}

// Errors backends wrap so that the store can tell constraint violations apart.
var (
	ErrUnique     = errors.New("unique constraint violated")
	ErrForeignKey = errors.New("foreign key constraint violated")
)
