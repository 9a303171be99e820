package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/events"
	"github.com/imgd/imgd/internal/httpapi"
	"github.com/imgd/imgd/internal/imgtest"
)

// sseFrame is one block of an event stream, up to its blank line.
type sseFrame struct {
	ID, Event, Data, Retry string
	HasID                  bool
	Comments               []string
}

// sseStream is an open GET /api/v1/events.
type sseStream struct {
	t      *testing.T
	resp   *http.Response
	cancel context.CancelFunc
	frames chan sseFrame
	done   chan error // the reader's end: io.EOF when the server ended the stream
}

// openEvents connects to the event stream with the given query (with its
// "?") and headers, failing unless the answer is 200. Frames are read only
// once read is called, so a test can leave the stream unread.
func (e *env) openEvents(query string, header http.Header) *sseStream {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.t.Context())
	req, err := http.NewRequestWithContext(ctx, "GET", e.URL+"/api/v1/events"+query, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		e.t.Fatalf("GET /api/v1/events%s: %v", query, err)
	}
	s := &sseStream{t: e.t, resp: resp, cancel: cancel, frames: make(chan sseFrame, 10000), done: make(chan error, 1)}
	e.t.Cleanup(func() {
		cancel()
		resp.Body.Close()
	})
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("GET /api/v1/events%s = %d %s, want 200", query, resp.StatusCode, b)
	}
	return s
}

// read starts parsing the stream into s.frames.
func (s *sseStream) read() *sseStream {
	go func() {
		defer close(s.frames)
		br := bufio.NewReader(s.resp.Body)
		var f sseFrame
		seen := false
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				s.done <- err
				return
			}
			line = strings.TrimSuffix(line, "\n")
			if line == "" {
				if seen {
					s.frames <- f
				}
				f, seen = sseFrame{}, false
				continue
			}
			seen = true
			if c, ok := strings.CutPrefix(line, ":"); ok {
				f.Comments = append(f.Comments, strings.TrimPrefix(c, " "))
				continue
			}
			name, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch name {
			case "id":
				f.ID, f.HasID = value, true
			case "event":
				f.Event = value
			case "data":
				f.Data = value
			case "retry":
				f.Retry = value
			default:
				s.t.Errorf("event stream: unknown field in line %q", line)
			}
		}
	}()
	return s
}

// next returns the next frame, failing after timeout or at the stream's end.
func (s *sseStream) next(timeout time.Duration) sseFrame {
	s.t.Helper()
	select {
	case f, ok := <-s.frames:
		if !ok {
			s.t.Fatalf("event stream ended: %v", <-s.done)
		}
		return f
	case <-time.After(timeout):
		s.t.Fatalf("no event within %s", timeout)
	}
	return sseFrame{}
}

// preamble reads the stream's first frame and checks it.
func (s *sseStream) preamble() *sseStream {
	s.t.Helper()
	f := s.next(5 * time.Second)
	if want := (sseFrame{Retry: "2000", Comments: []string{"imgd events"}}); !cmp.Equal(f, want) {
		s.t.Fatalf("first frame = %+v, want %+v", f, want)
	}
	return s
}

// frameOf is the frame the server writes for e.
func frameOf(t *testing.T, e events.Event) sseFrame {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return sseFrame{ID: strconv.FormatInt(e.ID, 10), HasID: true, Event: e.Type, Data: string(b)}
}

func idOnly(id int64) sseFrame { return sseFrame{ID: strconv.FormatInt(id, 10), HasID: true} }

// expectFrames reads len(want) frames and compares them with want.
func (s *sseStream) expectFrames(what string, want ...sseFrame) {
	s.t.Helper()
	got := make([]sseFrame, len(want))
	for i := range want {
		got[i] = s.next(5 * time.Second)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		s.t.Errorf("%s: frames (-want +got):\n%s", what, diff)
	}
}

// waitSubscribers polls the hub until it has n subscribers.
func (e *env) waitSubscribers(n int) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for e.Svc.Hub.Subscribers() != n {
		if time.Now().After(deadline) {
			e.t.Fatalf("hub has %d subscribers, want %d", e.Svc.Hub.Subscribers(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEventsHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	s := e.openEvents("", nil)
	for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
		"X-Accel-Buffering": "no"} {
		if got := s.resp.Header.Get(k); got != want {
			t.Errorf("GET /api/v1/events: %s = %q, want %q", k, got, want)
		}
	}
	s.read().preamble()
}

// TestEventsTaskLifecycle follows a real upload and task through the API.
func TestEventsTaskLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	s := e.openEvents("", nil).read().preamble()
	e.waitSubscribers(1)

	body, ct := multipartBody(t, "a.jpg", imgtest.Read(t, "photos/jpeg-baseline-small.jpg"), nil)
	resp, b := e.do("POST", "/api/v1/images", body, http.Header{"Content-Type": {ct}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /api/v1/images = %d %s", resp.StatusCode, b)
	}
	im := decode[imgd.Image](t, b)
	resp, b = e.do("POST", "/api/v1/tasks",
		strings.NewReader(`{"image_id":"`+im.ID+`","pipeline":[{"op":"resize","width":64}]}`),
		http.Header{"Content-Type": {"application/json"}})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/v1/tasks = %d %s", resp.StatusCode, b)
	}
	task := decode[imgd.Task](t, b)

	type seen struct{ Type, ImageID, TaskID, Status string }
	var got []seen
	lastID := int64(0)
	for len(got) < 4 {
		f := s.next(30 * time.Second)
		var ev events.Event
		if err := json.Unmarshal([]byte(f.Data), &ev); err != nil {
			t.Fatalf("frame %+v: data is not an event: %v", f, err)
		}
		if f.Event != ev.Type || f.ID != strconv.FormatInt(ev.ID, 10) || ev.ID <= lastID {
			t.Errorf("frame %+v: id and event must be the data's id (increasing) and type", f)
		}
		lastID = ev.ID
		got = append(got, seen{ev.Type, ev.ImageID, ev.TaskID, ev.Status})
		if ev.Type == events.TypeTaskUpdated {
			var dt imgd.Task
			if err := json.Unmarshal(ev.Data, &dt); err != nil || dt.ID != task.ID || string(dt.Status) != ev.Status {
				t.Errorf("task.updated data = %s (%v), want task %s in status %s", ev.Data, err, task.ID, ev.Status)
			}
		}
	}
	want := []seen{
		{events.TypeImageUploaded, im.ID, "", ""},
		{events.TypeTaskUpdated, im.ID, task.ID, "pending"},
		{events.TypeTaskUpdated, im.ID, task.ID, "processing"},
		{events.TypeTaskUpdated, im.ID, task.ID, "completed"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events of an upload and its task (-want +got):\n%s", diff)
	}
}

// publish publishes n task events on e's hub and returns them as published.
func publish(e *env, n int) []events.Event {
	out := make([]events.Event, n)
	for i := range out {
		out[i] = e.Svc.Hub.Publish(events.Event{Type: events.TypeTaskUpdated, TaskID: fmt.Sprintf("t%d", i),
			Status: "pending", Data: json.RawMessage(`{"n":` + strconv.Itoa(i) + `}`)})
	}
	return out
}

func TestEventsResume(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	ev := publish(e, 5)

	s := e.openEvents("", http.Header{"Last-Event-Id": {strconv.FormatInt(ev[1].ID, 10)}}).read().preamble()
	s.expectFrames("resumed after the 2nd event", frameOf(t, ev[2]), frameOf(t, ev[3]), frameOf(t, ev[4]))
	more := publish(e, 2)
	s.expectFrames("live after the replay, no duplicates", frameOf(t, more[0]), frameOf(t, more[1]))

	q := e.openEvents("?last_event_id="+strconv.FormatInt(ev[3].ID, 10), nil).read().preamble()
	q.expectFrames("resumed with ?last_event_id", frameOf(t, ev[4]), frameOf(t, more[0]), frameOf(t, more[1]))

	// The header (a browser's reconnection) wins over the query.
	h := e.openEvents("?last_event_id="+strconv.FormatInt(ev[0].ID, 10),
		http.Header{"Last-Event-Id": {strconv.FormatInt(more[0].ID, 10)}}).read().preamble()
	h.expectFrames("Last-Event-ID over ?last_event_id", frameOf(t, more[1]))

	// At the latest id: nothing replayed, the next event comes.
	l := e.openEvents("?last_event_id="+strconv.FormatInt(more[1].ID, 10), nil).read().preamble()
	e.waitSubscribers(4)
	last := publish(e, 1)
	for _, st := range []*sseStream{s, q, h, l} {
		st.expectFrames("next live event", frameOf(t, last[0]))
	}

	// Without a resume point: live only.
	live := e.openEvents("", nil).read().preamble()
	e.waitSubscribers(5)
	last = publish(e, 1)
	live.expectFrames("live stream", frameOf(t, last[0]))
}

func TestEventsReset(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	ev := publish(e, 2)
	reset := sseFrame{Event: "reset", Data: "{}"}
	for _, id := range []int64{1, ev[1].ID + 1000} { // older than the buffer; not issued by this process
		s := e.openEvents("", http.Header{"Last-Event-Id": {strconv.FormatInt(id, 10)}}).read().preamble()
		s.expectFrames(fmt.Sprintf("resumed after unknown id %d", id), reset, frameOf(t, ev[0]), frameOf(t, ev[1]))
	}
}

func TestEventsFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	hub := e.Svc.Hub
	var before int64
	var ev []events.Event
	// publishBase publishes the events every case replays, after the
	// previous case's marker.
	publishBase := func() {
		before = hub.LastID()
		ev = []events.Event{
			hub.Publish(events.Event{Type: events.TypeImageUploaded, ImageID: "A"}),
			hub.Publish(events.Event{Type: events.TypeTaskUpdated, ImageID: "A", TaskID: "T1", Status: "pending"}),
			hub.Publish(events.Event{Type: events.TypeTaskUpdated, ImageID: "B", TaskID: "T2", Status: "pending"}),
			hub.Publish(events.Event{Type: events.TypeImageDeleted, ImageID: "B"}),
			hub.Publish(events.Event{Type: events.TypeTaskUpdated, ImageID: "A", TaskID: "T1", Status: "completed"}),
			hub.Publish(events.Event{Type: events.TypeImageUploaded, ImageID: "C"}),
		}
	}
	// Frames of the base events, as functions: the events change per case.
	f := func(i int) func() sseFrame { return func() sseFrame { return frameOf(t, ev[i]) } }
	last := func() sseFrame { return idOnly(ev[5].ID) } // the batch ends with a skipped event: the client's resume point moves on
	tests := []struct {
		query  string
		want   []func() sseFrame
		marker events.Event // matches the filter, published afterwards
	}{
		{"?image_id=A", []func() sseFrame{f(0), f(1), f(4), last},
			events.Event{Type: events.TypeImageDeleted, ImageID: "A"}},
		{"?task_id=T1", []func() sseFrame{f(1), f(4), last},
			events.Event{Type: events.TypeTaskUpdated, TaskID: "T1", Status: "completed"}},
		{"?types=image.uploaded,image.deleted", []func() sseFrame{f(0), f(3), f(5)},
			events.Event{Type: events.TypeImageDeleted, ImageID: "Z"}},
		{"?types=task.updated&image_id=B", []func() sseFrame{f(2), last},
			events.Event{Type: events.TypeTaskUpdated, ImageID: "B", TaskID: "T3"}},
		{"?image_id=Z", []func() sseFrame{last},
			events.Event{Type: events.TypeImageUploaded, ImageID: "Z"}},
	}
	for _, tt := range tests {
		publishBase()
		want := make([]sseFrame, len(tt.want))
		for i, w := range tt.want {
			want[i] = w()
		}
		q := tt.query + "&last_event_id=" + strconv.FormatInt(before, 10)
		s := e.openEvents(q, nil).read().preamble()
		s.expectFrames(tt.query, want...)
		e.waitSubscribers(1)
		s.expectFramesAfter(hub, tt.query, tt.marker)
		s.cancel()
		e.waitSubscribers(0)
	}
}

// expectFramesAfter publishes m and expects its frame next: nothing else
// was queued before it.
func (s *sseStream) expectFramesAfter(hub *events.Hub, what string, m events.Event) {
	s.t.Helper()
	m = hub.Publish(m)
	s.expectFrames(what+": next matching event", frameOf(s.t, m))
}

func TestEventsBadRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	for _, tt := range []struct {
		query  string
		header http.Header
	}{
		{"?types=nope", nil},
		{"?types=task.updated,", nil},
		{"?last_event_id=abc", nil},
		{"?last_event_id=-5", nil},
		{"", http.Header{"Last-Event-Id": {"1.5"}}},
	} {
		resp, b := e.do("GET", "/api/v1/events"+tt.query, nil, tt.header)
		if resp.StatusCode != http.StatusBadRequest || errorCode(t, b) != "invalid_argument" {
			t.Errorf("GET /api/v1/events%s %v = %d %s, want 400 invalid_argument", tt.query, tt.header, resp.StatusCode, b)
		}
	}
	if n := e.Svc.Hub.Subscribers(); n != 0 {
		t.Errorf("refused streams left %d subscribers", n)
	}
}

func TestEventsWithoutHub(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	api, err := httpapi.New(httpapi.Options{Store: e.Svc.Store, Blobs: e.Svc.Blobs, Engine: e.Svc.Engine})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || errorCode(t, b) != "unavailable" {
		t.Errorf("GET /api/v1/events without a hub = %d %s, want 503 unavailable", resp.StatusCode, b)
	}
}

// TestEventsHeartbeat is not parallel: it lowers the heartbeat interval.
func TestEventsHeartbeat(t *testing.T) {
	defer httpapi.SetHeartbeatInterval(20 * time.Millisecond)()
	e := newEnv(t, envOptions{workers: -1})
	s := e.openEvents("", nil).read().preamble()
	for range 3 {
		if f := s.next(5 * time.Second); !cmp.Equal(f, sseFrame{Comments: []string{"ping"}}) {
			t.Fatalf("idle stream sent %+v, want a ping comment", f)
		}
	}
	e.waitSubscribers(1)
	ev := publish(e, 1)
	for {
		f := s.next(5 * time.Second)
		if f.Event == "" {
			continue // a ping before the event
		}
		if want := frameOf(t, ev[0]); !cmp.Equal(f, want) {
			t.Fatalf("frame = %+v, want %+v", f, want)
		}
		break
	}
}

func TestEventsClientLeaves(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	var streams []*sseStream
	for range 3 {
		streams = append(streams, e.openEvents("", nil).read().preamble())
	}
	e.waitSubscribers(3)
	for i, s := range streams {
		s.cancel()
		e.waitSubscribers(len(streams) - 1 - i)
	}
}

// TestEventsLaggingClient checks that a client that stops reading is
// disconnected rather than buffered without bound, and can resume.
func TestEventsLaggingClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{workers: -1})
	s := e.openEvents("", nil) // not read: its socket buffers fill up
	e.waitSubscribers(1)
	data := json.RawMessage(`"` + strings.Repeat("x", 16<<10) + `"`)
	var lastPublished int64
	for i := 0; e.Svc.Hub.Subscribers() == 1; i++ {
		if i == 20000 {
			t.Fatal("the client was never dropped")
		}
		lastPublished = e.Svc.Hub.Publish(events.Event{Type: events.TypeTaskUpdated, TaskID: "t", Data: data}).ID
	}
	s.read().preamble()
	var lastRead int64
	for f := range s.frames {
		if f.HasID {
			lastRead, _ = strconv.ParseInt(f.ID, 10, 64)
		}
	}
	if err := <-s.done; err != io.EOF {
		t.Errorf("stream of a lagging client ended with %v, want the server to end it (EOF)", err)
	}
	if lastRead == 0 || lastRead >= lastPublished {
		t.Errorf("lagging client read up to %d of %d, want some but not all", lastRead, lastPublished)
	}
	// Resuming from there replays what is still buffered, or says reset.
	r := e.openEvents("", http.Header{"Last-Event-Id": {strconv.FormatInt(lastRead, 10)}}).read().preamble()
	f := r.next(5 * time.Second)
	if f.Event != "reset" && f.ID != strconv.FormatInt(lastRead+1, 10) {
		t.Errorf("resumed after %d: first frame %s %s, want reset or event %d", lastRead, f.Event, f.ID, lastRead+1)
	}
}
