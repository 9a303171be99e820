package service

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/events"
)

// eventChannel is the prefix of the PostgreSQL NOTIFY channel of imgd's
// events. Channels are database-wide while imgd's tables live in a schema
// (search_path), so the channel is named after the schema too: two
// deployments in two schemas of one database do not see each other's
// events.
const eventChannel = "imgd_events"

// channelFor returns the channel of the deployment whose tables are in
// schema, within PostgreSQL's 63-byte identifier limit.
func channelFor(schema string) string {
	c := eventChannel + "." + schema
	if len(c) > 63 {
		c = c[:63]
	}
	return c
}

// maxNotifyPayload stays under PostgreSQL's 8000-byte NOTIFY limit; an
// event whose JSON is larger travels without its data (the ids and the
// status still tell a client what changed).
const maxNotifyPayload = 7900

// relay carries events between the processes that share a PostgreSQL
// database, so that the event stream of every api process shows what any
// worker did: each process NOTIFYs the events its hub publishes and
// LISTENs for the others', which it publishes into its own hub
// (events.Hub.PublishRemote, not forwarded again). Delivery is best
// effort, like the hub itself: an event lost while a connection is down
// is not replayed, and clients that resume find themselves told to
// reload (the hub's Missed).
type relay struct {
	pool    *pgxpool.Pool
	hub     *events.Hub
	origin  string // this process, to skip its own notifications
	log     *slog.Logger
	out     chan events.Event
	channel string // channelFor(the schema), set by start
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// wireEvent is a notification's payload.
type wireEvent struct {
	Origin string       `json:"o"`
	Event  events.Event `json:"e"`
}

func newRelay(pool *pgxpool.Pool, log *slog.Logger) *relay {
	return &relay{pool: pool, origin: imgd.NewID(), log: log.With("component", "event-relay"),
		out: make(chan events.Event, 1024)}
}

// forward is the hub's Forward: it queues e for the sender without
// waiting; a full queue drops the event (and says so).
func (r *relay) forward(e events.Event) {
	select {
	case r.out <- e:
	default:
		r.log.Warn("event relay queue full, event not sent to other processes", "type", e.Type, "task_id", e.TaskID)
	}
}

// start finds the deployment's channel and runs the sender and the
// listener until stop.
func (r *relay) start(ctx context.Context, hub *events.Hub) error {
	var schema string
	if err := r.pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return fmt.Errorf("event relay: current schema: %w", err)
	}
	r.channel = channelFor(schema)
	r.hub = hub
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	r.wg.Go(func() { r.send(ctx) })
	r.wg.Go(func() { r.listen(ctx) })
	return nil
}

func (r *relay) stop() error {
	if r.cancel != nil {
		r.cancel()
		r.wg.Wait()
	}
	return nil
}

func (r *relay) send(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-r.out:
			e.ID = 0 // each hub numbers its own events
			b, _ := json.Marshal(wireEvent{Origin: r.origin, Event: e})
			if len(b) > maxNotifyPayload {
				e.Data = nil
				b, _ = json.Marshal(wireEvent{Origin: r.origin, Event: e})
			}
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := r.pool.Exec(sctx, "SELECT pg_notify($1, $2)", r.channel, string(b))
			cancel()
			if err != nil && ctx.Err() == nil {
				r.log.Warn("event not sent to other processes", "type", e.Type, "task_id", e.TaskID, "error", err)
			}
		}
	}
}

// listen holds one connection LISTENing, and takes a new one after an
// error (the database restarted, the connection was cut) with backoff.
func (r *relay) listen(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := r.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("event listener lost its connection, reconnecting", "error", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (r *relay) listenOnce(ctx context.Context) error {
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer func() {
		// A connection left in LISTEN must not go back to the pool.
		_ = conn.Conn().Close(context.Background())
		conn.Release()
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{r.channel}.Sanitize()); err != nil {
		return err
	}
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var w wireEvent
		if err := json.Unmarshal([]byte(n.Payload), &w); err != nil {
			r.log.Warn("undecodable event notification", "error", err)
			continue
		}
		if w.Origin == r.origin {
			continue
		}
		r.hub.PublishRemote(w.Event)
	}
}
