package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"

	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivershared/baseservice"
	"github.com/riverqueue/river/rivershared/riverpilot"
	"github.com/riverqueue/river/rivertype"
)

// wakeDriver is River's SQLite driver with in-process wake-ups in place of
// its emulated LISTEN/NOTIFY.
//
// River's SQLite driver emulates notifications with an outbox table: every
// job insert writes a notification row, and a listener polls the table
// every 50 ms. In the embedded service the task inserts and the workers are
// in one process, so that round trip through the database is pure delay:
// measured, a new task waited 8.6 ms p50 for the job poll (10 ms plus River's
// up to 10 ms of jitter), which was most of the queue's overhead. Reporting
// no listener puts River in poll-only mode (no outbox writes, no listener
// polls), and the store's CreateTask then wakes the producers of this
// process directly once its transaction has committed, through the hook
// River gives poll-only drivers for that purpose (PilotInitParams.
// NotifyNonTxJobInsert). Jobs inserted by another process on the same file
// (an `imgd api` without workers) and scheduled retries are still found by
// the job poll.
//
// The plugin methods are River's internal driver-plugin API, pinned with
// River's version in go.mod; TestWakeStartsJobBeforePoll fails if an upgrade
// breaks them.
type wakeDriver struct {
	*riversqlite.Driver

	mu     sync.Mutex
	pilots []*wakePilot
}

var _ riverdriver.Driver[*sql.Tx] = (*wakeDriver)(nil)

func newWakeDriver(db *sql.DB) *wakeDriver { return &wakeDriver{Driver: riversqlite.New(db)} }

// SupportsListener and SupportsListenNotify put River in poll-only mode.
func (d *wakeDriver) SupportsListener() bool     { return false }
func (d *wakeDriver) SupportsListenNotify() bool { return false }

// PluginInit is part of River's driver-plugin API; nothing to set up.
func (d *wakeDriver) PluginInit(*baseservice.Archetype) {}

// PluginPilot gives each River client built on the driver its own pilot,
// which keeps the client's wake-up function.
func (d *wakeDriver) PluginPilot() riverpilot.Pilot {
	p := &wakePilot{StandardPilot: &riverpilot.StandardPilot{}}
	d.mu.Lock()
	d.pilots = append(d.pilots, p)
	d.mu.Unlock()
	return p
}

// wake tells the producers of queue, in every client of this process, to
// fetch jobs now. Call it only after the transaction that made the jobs
// available has committed.
func (d *wakeDriver) wake(queue string) {
	d.mu.Lock()
	pilots := d.pilots
	d.mu.Unlock()
	res := []*rivertype.JobInsertResult{{Job: &rivertype.JobRow{Queue: queue}}}
	for _, p := range pilots {
		if notify := p.notify.Load(); notify != nil {
			(*notify)(context.Background(), res)
		}
	}
}

// wakePilot is River's standard pilot that remembers the client's hook for
// waking its producers.
type wakePilot struct {
	*riverpilot.StandardPilot
	notify atomic.Pointer[func(context.Context, []*rivertype.JobInsertResult)]
}

func (p *wakePilot) PilotInit(a *baseservice.Archetype, params *riverpilot.PilotInitParams) {
	p.StandardPilot.PilotInit(a, params)
	p.notify.Store(&params.NotifyNonTxJobInsert)
}
