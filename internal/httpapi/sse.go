package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/events"
)

// defaultHeartbeat is how often an idle event stream sends a comment, so
// that proxies keep it open and a dead client is noticed.
const defaultHeartbeat = 15 * time.Second

// heartbeatInterval overrides defaultHeartbeat when > 0 (nanoseconds);
// tests lower it. Atomic: a stream may read it while a test restores it.
var heartbeatInterval atomic.Int64

func heartbeatEvery() time.Duration {
	if d := heartbeatInterval.Load(); d > 0 {
		return time.Duration(d)
	}
	return defaultHeartbeat
}

// sseRetryMillis is the reconnection delay the stream asks browsers for.
const sseRetryMillis = 2000

// maxBatch bounds the events written between two flushes.
const maxBatch = 256

// eventTypes are the values ?types= accepts.
var eventTypes = []string{events.TypeImageUploaded, events.TypeImageDeleted, events.TypeTaskUpdated}

func (s *Server) eventRoutes() {
	s.HandleFunc("GET /api/v1/events", s.streamEvents)
}

// eventFilter selects the events of one stream; zero fields match all.
type eventFilter struct {
	imageID string
	taskID  string
	types   []string
}

func (f eventFilter) match(e events.Event) bool {
	return (f.imageID == "" || e.ImageID == f.imageID) &&
		(f.taskID == "" || e.TaskID == f.taskID) &&
		(len(f.types) == 0 || slices.Contains(f.types, e.Type))
}

func parseEventFilter(r *http.Request) (eventFilter, error) {
	q := r.URL.Query()
	f := eventFilter{imageID: q.Get("image_id"), taskID: q.Get("task_id")}
	if v := q.Get("types"); v != "" {
		for t := range strings.SplitSeq(v, ",") {
			t = strings.TrimSpace(t)
			if !slices.Contains(eventTypes, t) {
				return f, &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "types",
					Message: "unknown event type " + strconv.Quote(t) + " (known: " + strings.Join(eventTypes, ", ") + ")"}
			}
			f.types = append(f.types, t)
		}
	}
	return f, nil
}

// resumePoint returns the ID after which the stream starts: the browser's
// Last-Event-ID header on a reconnection, else ?last_event_id=, else Live.
func resumePoint(r *http.Request) (int64, error) {
	v := r.Header.Get("Last-Event-ID")
	field := "Last-Event-ID"
	if v == "" {
		v, field = r.URL.Query().Get("last_event_id"), "last_event_id"
	}
	if v == "" {
		return events.Live, nil
	}
	id, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || id < 0 {
		return 0, &imgd.Error{Code: imgd.CodeInvalidArgument, Field: field,
			Message: "must be the id of an event, got " + strconv.Quote(v)}
	}
	return id, nil
}

// streamEvents is GET /api/v1/events: image and task events as
// Server-Sent Events, each "id: <id>", "event: <type>", "data: <event
// JSON>". A client that reconnects with Last-Event-ID gets the events it
// missed; when they are no longer buffered it first gets an "event: reset"
// and should reload what it shows. A client too slow to read is
// disconnected and resumes the same way.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) {
	if s.hub == nil {
		writeError(w, imgd.Errorf(imgd.CodeUnavailable, "events are not available on this server"))
		return
	}
	filter, err := parseEventFilter(r)
	if err != nil {
		writeError(w, err)
		return
	}
	after, err := resumePoint(r)
	if err != nil {
		writeError(w, err)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel() // unsubscribes, whichever way the stream ends
	ch, sub := s.hub.Subscribe(ctx, after)

	rc := http.NewResponseController(w)
	// The server's write timeout is for ordinary answers; a stream lives
	// until the client leaves or the server shuts down (its context ends).
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: pass events through at once
	w.WriteHeader(http.StatusOK)

	out := bufio.NewWriter(w)
	out.WriteString("retry: " + strconv.Itoa(sseRetryMillis) + "\n: imgd events\n\n")
	if sub.Missed() {
		out.WriteString("event: reset\ndata: {}\n\n")
	}
	if flushEvents(out, rc) != nil {
		return
	}

	every := heartbeatEvery()
	heartbeat := time.NewTicker(every)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-heartbeat.C:
			out.WriteString(": ping\n\n")
		case e, ok := <-ch:
			if !ok {
				// Lagged (or ending): the client reconnects with its
				// Last-Event-ID and the replay fills the gap.
				return
			}
			writeBatch(out, filter, e, ch)
			heartbeat.Reset(every)
		}
		if flushEvents(out, rc) != nil {
			return // the client is gone
		}
	}
}

// writeBatch writes e and every event already queued behind it, so that a
// burst costs one flush. When the batch ends with events the filter
// skipped, an id-only frame moves the client's Last-Event-ID past them
// (browsers record an id without dispatching an event), so that a
// reconnection does not replay them or find its resume point too old.
func writeBatch(out *bufio.Writer, f eventFilter, e events.Event, ch <-chan events.Event) {
	var (
		last int64
		sent bool
	)
	for n := 1; ; n++ {
		sent = f.match(e)
		if sent {
			writeEvent(out, e)
		}
		last = e.ID
		if n == maxBatch {
			break // flush now and then under a steady stream
		}
		select {
		case next, ok := <-ch:
			if ok {
				e = next
				continue
			}
		default:
		}
		break
	}
	if !sent {
		out.WriteString("id: " + strconv.FormatInt(last, 10) + "\n\n")
	}
}

func writeEvent(out *bufio.Writer, e events.Event) {
	data, err := json.Marshal(e)
	if err != nil {
		data = []byte("{}") // plain struct with raw JSON already validated: cannot happen
	}
	out.WriteString("id: " + strconv.FormatInt(e.ID, 10) + "\nevent: " + e.Type + "\ndata: ")
	out.Write(data)
	out.WriteString("\n\n")
}

func flushEvents(out *bufio.Writer, rc *http.ResponseController) error {
	if err := out.Flush(); err != nil {
		return err
	}
	return rc.Flush()
}
