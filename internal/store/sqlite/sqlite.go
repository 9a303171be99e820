// Package sqlite is the embedded imgd.Store: one SQLite file (pure-Go
// modernc.org/sqlite) holding imgd's tables and River's, so that a task and
// its job are inserted in one transaction.
//
// The database runs in WAL mode (readers never wait for the writer), with
// foreign keys on, a busy timeout, and every transaction started with BEGIN
// IMMEDIATE: a transaction takes the write lock when it starts, waiting up to
// the busy timeout for it, instead of failing with SQLITE_BUSY when it tries
// to upgrade a read lock (which no busy timeout can fix). That lets several
// connections share the file; MaxConns 1 serializes everything instead, as
// River's SQLite driver documentation suggests.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/queue"
	"github.com/imgd/imgd/internal/store/migrations"
	"github.com/imgd/imgd/internal/store/sqlstore"
)

// Options configure Open.
type Options struct {
	// Path is the database file, created when missing.
	Path string
	// MaxConns is the number of open connections; 0 means 4.
	MaxConns int
	// BusyTimeout is how long a statement waits for the write lock before
	// failing with CodeUnavailable; 0 means 10 s.
	BusyTimeout time.Duration
	// Logger receives River's migration logs; nil discards them.
	Logger *slog.Logger
	// NowFunc returns the current time; nil means time.Now.
	NowFunc func() time.Time
}

// Store is imgd.Store on a SQLite file. Build the app's River client on the
// same database with river.NewClient(s.Driver(), cfg).
type Store struct {
	*sqlstore.Store
	db     *sql.DB
	driver *wakeDriver
	log    *slog.Logger
}

// Open opens (creating when missing) the database at opts.Path. It does not
// migrate: call Migrate.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Path == "" || strings.ContainsAny(opts.Path, "?#") {
		return nil, &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "path",
			Message: fmt.Sprintf("SQLite path %q must be non-empty and contain no '?' or '#'", opts.Path)}
	}
	if opts.MaxConns == 0 {
		opts.MaxConns = 4
	}
	if opts.BusyTimeout == 0 {
		opts.BusyTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	dsn := "file:" + opts.Path + "?_txlock=immediate" +
		"&_pragma=busy_timeout(" + strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10) + ")" +
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)"
	connector, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", opts.Path, err)
	}
	db := sql.OpenDB(cachingConnector{connector})
	db.SetMaxOpenConns(opts.MaxConns)
	db.SetMaxIdleConns(opts.MaxConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", opts.Path, translate(err))
	}
	driver := newWakeDriver(db)
	// Insert-only: no queues, no workers. It inserts and cancels jobs inside
	// the store's transactions; the app's client works them.
	client, err := river.NewClient(driver, &river.Config{Logger: opts.Logger})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("river insert client: %w", err)
	}
	s := &Store{db: db, driver: driver, log: opts.Logger}
	s.Store = sqlstore.New(&backend{db: db, river: client}, sqlstore.Options{NowFunc: opts.NowFunc})
	return s, nil
}

// Migrate brings River's tables and imgd's to the latest version.
func (s *Store) Migrate(ctx context.Context) error {
	m, err := rivermigrate.New(s.driver, &rivermigrate.Config{Logger: s.log})
	if err != nil {
		return fmt.Errorf("river migrator: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate river: %w", translate(err))
	}
	p, err := s.migrations()
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate imgd: %w", translate(err))
	}
	return nil
}

// MigrateDown reverts imgd's tables to version (0: none); River's stay.
// CheckSchema fails unless the database is migrated to exactly this
// binary's latest version (migrations.Check).
func (s *Store) CheckSchema(ctx context.Context) error {
	p, err := s.migrations()
	if err != nil {
		return err
	}
	return migrations.CheckProvider(ctx, p)
}

func (s *Store) MigrateDown(ctx context.Context, version int64) error {
	p, err := s.migrations()
	if err != nil {
		return err
	}
	if _, err := p.DownTo(ctx, version); err != nil {
		return fmt.Errorf("migrate imgd down to %d: %w", version, translate(err))
	}
	return nil
}

func (s *Store) migrations() (*goose.Provider, error) {
	p, err := goose.NewProvider(goose.DialectSQLite3, s.db, migrations.FS,
		goose.WithTableName(migrations.TableName), goose.WithDisableGlobalRegistry(true), goose.WithSlog(s.log))
	if err != nil {
		return nil, fmt.Errorf("goose: %w", err)
	}
	return p, nil
}

// RequeueInterrupted makes the jobs River still marks running available
// again, and returns how many there were. Call it only while no process
// works this database's jobs (the embedded service holds a lock on its data
// directory for that): a job then marked running belongs to a process that
// died (SIGKILL, power loss), and River's own rescuer would wait
// RescueStuckJobsAfter (longer than a task's time limit) to notice. The
// worker is idempotent, so running such a job again completes its task
// exactly once.
func (s *Store) RequeueInterrupted(ctx context.Context) (int64, error) {
	n, err := exec(ctx, s.db, `UPDATE river_job SET state = 'available' WHERE state = 'running'`, nil)
	if err != nil {
		return 0, fmt.Errorf("requeue interrupted jobs: %w", err)
	}
	return n, nil
}

// DB is the database, for River and for tests.
func (s *Store) DB() *sql.DB { return s.db }

// Driver is River's driver on the same database. Clients built on it in this
// process are woken by CreateTask (see wakeDriver).
func (s *Store) Driver() riverdriver.Driver[*sql.Tx] { return s.driver }

// CreateTask is sqlstore's, then wakes this process's workers: the task's
// job is committed and can be fetched at once.
func (s *Store) CreateTask(ctx context.Context, t imgd.Task) (imgd.Task, bool, error) {
	t, created, err := s.Store.CreateTask(ctx, t)
	if err == nil && created {
		s.driver.wake(river.QueueDefault)
	}
	return t, created, err
}

// Close closes the database; River clients using it must be stopped first.
func (s *Store) Close() error {
	return s.db.Close()
}

// backend implements sqlstore.Backend.
type backend struct {
	db    *sql.DB
	river *river.Client[*sql.Tx]
}

type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (b *backend) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return exec(ctx, b.db, query, args)
}

func (b *backend) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return queryRows(ctx, b.db, query, args)
}

func (b *backend) Ping(ctx context.Context) error {
	_, err := b.db.ExecContext(ctx, `SELECT 1`)
	return translate(err)
}

func (b *backend) ForUpdate() string { return "" }

func (b *backend) InTx(ctx context.Context, fn func(sqlstore.Tx) error) (err error) {
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", translate(err))
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // the error that made us roll back is the one to report
		}
	}()
	if err := fn(&txn{tx: tx, river: b.river}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", translate(err))
	}
	return nil
}

// txn implements sqlstore.Tx.
type txn struct {
	tx    *sql.Tx
	river *river.Client[*sql.Tx]
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
	res, err := q.ExecContext(ctx, query, convertArgs(args)...)
	if err != nil {
		return 0, translate(err)
	}
	n, err := res.RowsAffected()
	return n, translate(err)
}

func queryRows(ctx context.Context, q execQuerier, query string, args []any) (sqlstore.Rows, error) {
	rows, err := q.QueryContext(ctx, query, convertArgs(args)...)
	if err != nil {
		return nil, translate(err)
	}
	return &rowsAdapter{rows: rows}, nil
}

// timeLayout is how times are stored: fixed width and UTC, so that text
// order is time order, with PostgreSQL's microsecond precision.
const timeLayout = "2006-01-02 15:04:05.000000"

func convertArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case time.Time:
			out[i] = v.UTC().Format(timeLayout)
		case *time.Time:
			if v != nil {
				out[i] = v.UTC().Format(timeLayout)
			}
		default:
			out[i] = a
		}
	}
	return out
}

type rowsAdapter struct{ rows *sql.Rows }

func (r *rowsAdapter) Next() bool { return r.rows.Next() }
func (r *rowsAdapter) Err() error { return translate(r.rows.Err()) }
func (r *rowsAdapter) Close()     { _ = r.rows.Close() }

func (r *rowsAdapter) Scan(dest ...any) error {
	conv := make([]any, len(dest))
	for i, d := range dest {
		switch p := d.(type) {
		case *time.Time:
			conv[i] = &timeScanner{t: p}
		case **time.Time:
			conv[i] = &nullTimeScanner{t: p}
		default:
			conv[i] = d
		}
	}
	return translate(r.rows.Scan(conv...))
}

type timeScanner struct{ t *time.Time }

func (s *timeScanner) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		*s.t = v.UTC()
		return nil
	case string:
		return s.parse(v)
	case []byte:
		return s.parse(string(v))
	}
	return fmt.Errorf("scan %T into time", src)
}

func (s *timeScanner) parse(v string) error {
	t, err := time.ParseInLocation(timeLayout, v, time.UTC)
	if err != nil {
		return fmt.Errorf("stored time %q: %w", v, err)
	}
	*s.t = t
	return nil
}

type nullTimeScanner struct{ t **time.Time }

func (s *nullTimeScanner) Scan(src any) error {
	if src == nil {
		*s.t = nil
		return nil
	}
	var t time.Time
	if err := (&timeScanner{t: &t}).Scan(src); err != nil {
		return err
	}
	*s.t = &t
	return nil
}

// translate turns driver errors into what sqlstore.Backend promises.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &imgd.Error{Code: imgd.CodeCanceled, Message: "request canceled or timed out", Err: err}
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch code := se.Code(); {
	case code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return fmt.Errorf("%w: %w", sqlstore.ErrUnique, err)
	case code == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return fmt.Errorf("%w: %w", sqlstore.ErrForeignKey, err)
	case code&0xff == sqlite3.SQLITE_BUSY || code&0xff == sqlite3.SQLITE_LOCKED:
		return &imgd.Error{Code: imgd.CodeUnavailable, Message: "database is busy, retry", Err: err}
	case code&0xff == sqlite3.SQLITE_FULL || code&0xff == sqlite3.SQLITE_IOERR || code&0xff == sqlite3.SQLITE_CANTOPEN:
		return &imgd.Error{Code: imgd.CodeUnavailable, Message: "database cannot be written", Err: err}
	}
	return err
}
