// Package events is the in-process hub of image and task events. Publishers
// (the worker, the API) never wait for subscribers; subscribers (the SSE
// handler, the webhook sender) read a channel and may resume after the last
// event they saw, Last-Event-ID style, from a bounded buffer of recent events.
//
// Delivery rules:
//   - Events get increasing IDs in publication order, and every subscriber
//     receives them in that order, without gaps or duplicates, as long as it
//     keeps up.
//   - A subscriber whose channel is full when an event is published is not
//     waited for: it is dropped. Its channel is closed after the events it
//     already holds, and Subscription.Err reports ErrLagged. It can
//     subscribe again after the last ID it read; the replay fills the gap
//     while the events are still in the buffer.
//   - A resume point older than the buffer (or from another process) is
//     reported by Subscription.Missed: events were lost, so the client
//     should reload the state it shows.
package events

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/imgd/imgd"
)

// Event types.
const (
	TypeImageUploaded = "image.uploaded"
	TypeImageDeleted  = "image.deleted"
	TypeTaskUpdated   = "task.updated"
)

// Event is one change, as sent to SSE clients and webhooks.
type Event struct {
	ID      int64           `json:"id"` // assigned by Publish, increasing
	Type    string          `json:"type"`
	Time    time.Time       `json:"time"` // Publish sets it when zero
	ImageID string          `json:"image_id,omitempty"`
	TaskID  string          `json:"task_id,omitempty"`
	Status  string          `json:"status,omitempty"` // the task's new status
	Data    json.RawMessage `json:"data,omitempty"`   // the image or task, as the API shows it
}

// TaskUpdated returns the task.updated event of t's current status, with t
// as its data.
func TaskUpdated(t imgd.Task) Event {
	return Event{Type: TypeTaskUpdated, ImageID: t.ImageID, TaskID: t.ID, Status: string(t.Status), Data: mustJSON(t)}
}

// ImageEvent returns an image event of type typ (TypeImageUploaded or
// TypeImageDeleted) with im as its data.
func ImageEvent(typ string, im imgd.Image) Event {
	return Event{Type: typ, ImageID: im.ID, Data: mustJSON(im)}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("events: marshal " + err.Error()) // plain structs: programmer error
	}
	return b
}

// ErrLagged is Subscription.Err of a subscriber dropped because it did not
// read its events fast enough.
var ErrLagged = errors.New("events: subscriber fell behind and was dropped")

// Live as afterID subscribes to new events only, without replay.
const Live int64 = -1

// Defaults of Options.
const (
	DefaultBufferSize       = 1024
	DefaultSubscriberBuffer = 64
)

// Options configure a Hub.
type Options struct {
	// BufferSize is how many recent events are kept for resuming; 0 means
	// DefaultBufferSize.
	BufferSize int
	// SubscriberBuffer is each subscriber's channel capacity beyond its
	// replay; a subscriber with this many unread events is dropped. 0 means
	// DefaultSubscriberBuffer.
	SubscriberBuffer int
	// NowFunc returns the current time; nil means time.Now. The first event
	// ID is NowFunc's Unix time in microseconds, so IDs keep increasing
	// across restarts and a resume point from an earlier process is older
	// than the buffer (Missed) rather than mistaken for a current event.
	NowFunc func() time.Time
	// Forward, when set, receives every event published here (not those
	// that PublishRemote brings in), e.g. to send it to the hubs of other
	// processes. It is called outside the hub's lock and must not block.
	Forward func(Event)
}

// Hub fans events out to subscribers. The zero value is not usable; call
// New. A nil *Hub discards what is published.
type Hub struct {
	now    func() time.Time
	subBuf int
	mu     sync.Mutex
	ring   []Event // ring[(start+i)%len(ring)], i < n, oldest first
	start  int
	n      int
	lastID int64
	subs   map[*Subscription]struct{}
	fwd    func(Event)
}

// New returns an empty hub.
func New(o Options) *Hub {
	if o.BufferSize <= 0 {
		o.BufferSize = DefaultBufferSize
	}
	if o.SubscriberBuffer <= 0 {
		o.SubscriberBuffer = DefaultSubscriberBuffer
	}
	if o.NowFunc == nil {
		o.NowFunc = time.Now
	}
	return &Hub{
		now:    o.NowFunc,
		subBuf: o.SubscriberBuffer,
		ring:   make([]Event, o.BufferSize),
		lastID: o.NowFunc().UnixMicro(),
		subs:   make(map[*Subscription]struct{}),
		fwd:    o.Forward,
	}
}

// Publish assigns e the next ID (and the current time when e.Time is zero),
// keeps it in the buffer and hands it to every subscriber without waiting.
// It returns e as published.
func (h *Hub) Publish(e Event) Event {
	if h == nil {
		return e
	}
	e = h.publish(e)
	if h.fwd != nil {
		h.fwd(e)
	}
	return e
}

// PublishRemote publishes an event that another process published first:
// subscribers here get it, with an ID of this hub's, and it is not
// forwarded again.
func (h *Hub) PublishRemote(e Event) Event {
	if h == nil {
		return e
	}
	return h.publish(e)
}

func (h *Hub) publish(e Event) Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastID++
	e.ID = h.lastID
	if e.Time.IsZero() {
		e.Time = h.now()
	}
	if h.n < len(h.ring) {
		h.ring[(h.start+h.n)%len(h.ring)] = e
		h.n++
	} else {
		h.ring[h.start] = e
		h.start = (h.start + 1) % len(h.ring)
	}
	for s := range h.subs {
		select {
		case s.ch <- e:
		default:
			h.removeLocked(s, ErrLagged)
		}
	}
	return e
}

// LastID returns the ID of the latest event (or the value before the first
// ID when none was published).
func (h *Hub) LastID() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastID
}

// Subscription is one subscriber's state.
type Subscription struct {
	ch     chan Event
	stop   func() bool // stops the context.AfterFunc
	missed bool
	mu     sync.Mutex
	err    error
}

// Missed reports whether events after the requested resume point were no
// longer buffered (or the point was not one of this hub's IDs), so the
// replay starts with a gap.
func (s *Subscription) Missed() bool { return s.missed }

// Err returns why the channel was closed: ErrLagged, or the context's
// error when it ended; nil while the subscription is open.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Subscribe returns a channel of the buffered events with IDs above afterID
// followed by every event published afterwards; afterID Live (any negative
// value) skips the replay. The channel is closed when ctx ends or the
// subscriber lags (see Subscription.Err); no goroutine is left behind.
func (h *Hub) Subscribe(ctx context.Context, afterID int64) (<-chan Event, *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var replay []Event
	s := &Subscription{}
	if afterID >= 0 {
		oldest := h.lastID + 1 - int64(h.n) // ID of the oldest buffered event
		s.missed = afterID+1 < oldest || afterID > h.lastID
		for i := range h.n {
			if e := h.ring[(h.start+i)%len(h.ring)]; e.ID > afterID || afterID > h.lastID {
				replay = append(replay, e)
			}
		}
	}
	s.ch = make(chan Event, len(replay)+h.subBuf)
	for _, e := range replay {
		s.ch <- e
	}
	if err := ctx.Err(); err != nil {
		s.err = err
		close(s.ch)
		return s.ch, s
	}
	h.subs[s] = struct{}{}
	s.stop = context.AfterFunc(ctx, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.removeLocked(s, ctx.Err())
	})
	return s.ch, s
}

// removeLocked unsubscribes s, closing its channel, once.
func (h *Hub) removeLocked(s *Subscription, err error) {
	if _, ok := h.subs[s]; !ok {
		return
	}
	delete(h.subs, s)
	s.stop()
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	close(s.ch)
}

// Subscribers returns the number of open subscriptions, for metrics and
// tests.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}
