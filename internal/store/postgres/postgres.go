// Package postgres is the scale-out imgd.Store: PostgreSQL through a pgx
// pool, with River's tables in the same database (and schema, the first of
// search_path) so that a task and its job are inserted in one transaction.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/queue"
	"github.com/imgd/imgd/internal/store/migrations"
	"github.com/imgd/imgd/internal/store/sqlstore"
)

// Options configure Open.
type Options struct {
	// URL is a PostgreSQL connection URL, postgres://user@host:port/db?…;
	// query parameters pgx does not know, such as search_path, are sent as
	// run-time parameters.
	URL string
	// MaxConns is the pool size; 0 means pgxpool's default.
	MaxConns int32
	// Logger receives River's and goose's migration logs; nil discards them.
	Logger *slog.Logger
	// NowFunc returns the current time; nil means time.Now.
	NowFunc func() time.Time
}

// Store is imgd.Store on PostgreSQL. Build the app's River client on the same
// pool with river.NewClient(s.Driver(), cfg).
type Store struct {
	*sqlstore.Store
	pool   *pgxpool.Pool
	driver *riverpgxv5.Driver
	log    *slog.Logger
}

// Open connects to opts.URL and checks that the server answers. It does not
// migrate: call Migrate.
func Open(ctx context.Context, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		// The URL may hold a password: say what is wrong, not what it was.
		return nil, &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "database_url",
			Message: "is not a valid PostgreSQL URL", Err: errors.New(redact(err.Error()))}
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", translate(err))
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, translate(err))
	}
	driver := riverpgxv5.New(pool)
	// Insert-only: no queues, no workers. It inserts and cancels jobs inside
	// the store's transactions; the app's client works them.
	client, err := river.NewClient(driver, &river.Config{Logger: opts.Logger})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("river insert client: %w", err)
	}
	s := &Store{pool: pool, driver: driver, log: opts.Logger}
	s.Store = sqlstore.New(&backend{pool: pool, river: client}, sqlstore.Options{NowFunc: opts.NowFunc})
	return s, nil
}

// redact hides a password that pgx may quote from the URL.
func redact(msg string) string {
	if i := strings.Index(msg, "://"); i >= 0 {
		if j := strings.Index(msg[i:], "@"); j >= 0 {
			return msg[:i+3] + "…" + msg[i+j:]
		}
	}
	return msg
}

// Migrate brings River's tables and imgd's to the latest version. Run it from
// one process at a time (imgd migrate, or serve in embedded mode).
func (s *Store) Migrate(ctx context.Context) error {
	m, err := rivermigrate.New(s.driver, &rivermigrate.Config{Logger: s.log})
	if err != nil {
		return fmt.Errorf("river migrator: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate river: %w", translate(err))
	}
	return s.goose(ctx, func(p *goose.Provider) error {
		if _, err := p.Up(ctx); err != nil {
			return fmt.Errorf("migrate imgd: %w", translate(err))
		}
		return nil
	})
}

// MigrateDown reverts imgd's tables to version (0: none); River's stay.
// CheckSchema fails unless the database is migrated to exactly this
// binary's latest version (migrations.Check).
func (s *Store) CheckSchema(ctx context.Context) error {
	return s.goose(ctx, func(p *goose.Provider) error { return migrations.CheckProvider(ctx, p) })
}

func (s *Store) MigrateDown(ctx context.Context, version int64) error {
	return s.goose(ctx, func(p *goose.Provider) error {
		if _, err := p.DownTo(ctx, version); err != nil {
			return fmt.Errorf("migrate imgd down to %d: %w", version, translate(err))
		}
		return nil
	})
}

func (s *Store) goose(ctx context.Context, fn func(*goose.Provider) error) error {
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS,
		goose.WithTableName(migrations.TableName), goose.WithDisableGlobalRegistry(true), goose.WithSlog(s.log))
	if err != nil {
		return fmt.Errorf("goose: %w", err)
	}
	return fn(p)
}

// Pool is the connection pool, for River and for tests.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Driver is River's driver on the same pool.
func (s *Store) Driver() *riverpgxv5.Driver { return s.driver }

// Close closes the pool; River clients using it must be stopped first.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// backend implements sqlstore.Backend.
type backend struct {
	pool  *pgxpool.Pool
	river *river.Client[pgx.Tx]
}

type execQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func (b *backend) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return exec(ctx, b.pool, query, args)
}

func (b *backend) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return queryRows(ctx, b.pool, query, args)
}

func (b *backend) Ping(ctx context.Context) error { return translate(b.pool.Ping(ctx)) }

func (b *backend) ForUpdate() string { return " FOR UPDATE" }

func (b *backend) InTx(ctx context.Context, fn func(sqlstore.Tx) error) (err error) {
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", translate(err))
	}
	defer func() {
		if err != nil {
			// The error that made us roll back is the one to report; a
			// rollback on a canceled ctx still ends the transaction (pgx
			// closes the connection).
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if err := fn(&txn{tx: tx, river: b.river}); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", translate(err))
	}
	return nil
}

// txn implements sqlstore.Tx.
type txn struct {
	tx    pgx.Tx
	river *river.Client[pgx.Tx]
}

func (t *txn) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return exec(ctx, t.tx, query, args)
}

func (t *txn) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return queryRows(ctx, t.tx, query, args)
}

func (t *txn) InsertTaskJob(ctx context.Context, taskID string, priority int) (int64, error) {
	res, err := t.river.InsertTx(ctx, t.tx, queue.TaskArgs{TaskID: taskID}, &river.InsertOpts{Priority: priority})
	if err != nil {
		return 0, translate(err)
	}
	return res.Job.ID, nil
}

func (t *txn) CancelJob(ctx context.Context, jobID int64) error {
	_, err := t.river.JobCancelTx(ctx, t.tx, jobID)
	if errors.Is(err, rivertype.ErrNotFound) {
		return nil
	}
	return translate(err)
}

func exec(ctx context.Context, q execQuerier, query string, args []any) (int64, error) {
	tag, err := q.Exec(ctx, query, args...)
	if err != nil {
		return 0, translate(err)
	}
	return tag.RowsAffected(), nil
}

func queryRows(ctx context.Context, q execQuerier, query string, args []any) (sqlstore.Rows, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, translate(err)
	}
	return rowsAdapter{rows}, nil
}

type rowsAdapter struct{ rows pgx.Rows }

func (r rowsAdapter) Next() bool             { return r.rows.Next() }
func (r rowsAdapter) Scan(dest ...any) error { return translate(r.rows.Scan(dest...)) }
func (r rowsAdapter) Err() error             { return translate(r.rows.Err()) }
func (r rowsAdapter) Close()                 { r.rows.Close() }

// translate turns driver errors into what sqlstore.Backend promises.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &imgd.Error{Code: imgd.CodeCanceled, Message: "request canceled or timed out", Err: err}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505": // unique_violation
			return fmt.Errorf("%w: %w", sqlstore.ErrUnique, err)
		case pe.Code == "23503": // foreign_key_violation
			return fmt.Errorf("%w: %w", sqlstore.ErrForeignKey, err)
		case pe.Code == "40001", pe.Code == "40P01", // serialization failure, deadlock
			pe.Code == "53300", pe.Code == "55P03", // too many connections, lock not available
			strings.HasPrefix(pe.Code, "08"), strings.HasPrefix(pe.Code, "57P"): // connection, shutdown
			return &imgd.Error{Code: imgd.CodeUnavailable, Message: "database is busy or unavailable, retry", Err: err}
		}
		return err
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return &imgd.Error{Code: imgd.CodeUnavailable, Message: "database is unavailable, retry", Err: err}
	}
	return err
}
