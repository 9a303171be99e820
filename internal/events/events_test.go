package events_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/imgd/imgd/internal/events"
)

// TestMain fails the package when goroutines outlive the tests: the hub
// must leave none behind, whatever its subscribers do.
func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			runtime.Gosched()
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			fmt.Fprintf(os.Stderr, "goroutine leak: %d before, %d after\n%s\n", before, n, buf[:runtime.Stack(buf, true)])
			code = 1
		}
	}
	os.Exit(code)
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newHub(buffer, subBuffer int) *events.Hub {
	return events.New(events.Options{BufferSize: buffer, SubscriberBuffer: subBuffer, NowFunc: func() time.Time { return t0 }})
}

func publish(h *events.Hub, n int) []events.Event {
	var out []events.Event
	for i := range n {
		out = append(out, h.Publish(events.Event{Type: events.TypeTaskUpdated, TaskID: fmt.Sprint("t", i)}))
	}
	return out
}

// receive reads n events or fails after a deadline.
func receive(t *testing.T, ch <-chan events.Event, n int) []events.Event {
	t.Helper()
	var got []events.Event
	timeout := time.After(5 * time.Second)
	for len(got) < n {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("channel closed after %d of %d events", len(got), n)
			}
			got = append(got, e)
		case <-timeout:
			t.Fatalf("received %d of %d events in 5 s", len(got), n)
		}
	}
	return got
}

// waitClosed drains ch until it is closed, or fails after a deadline.
func waitClosed(t *testing.T, ch <-chan events.Event) []events.Event {
	t.Helper()
	var got []events.Event
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return got
			}
			got = append(got, e)
		case <-timeout:
			t.Fatal("channel not closed within 5 s")
		}
	}
}

func ids(es []events.Event) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func TestPublishAssignsIDsAndTime(t *testing.T) {
	t.Parallel()
	h := newHub(8, 8)
	first := h.LastID()
	if first != t0.UnixMicro() {
		t.Errorf("LastID() of a new hub = %d, want %d (start time in µs)", first, t0.UnixMicro())
	}
	es := publish(h, 3)
	for i, e := range es {
		if e.ID != first+int64(i)+1 || !e.Time.Equal(t0) {
			t.Errorf("Publish #%d = id %d time %v, want id %d time %v", i, e.ID, e.Time, first+int64(i)+1, t0)
		}
	}
	explicit := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if e := h.Publish(events.Event{Type: events.TypeImageDeleted, Time: explicit}); !e.Time.Equal(explicit) {
		t.Errorf("Publish with Time %v kept %v", explicit, e.Time)
	}
	var nilHub *events.Hub
	nilHub.Publish(events.Event{Type: events.TypeImageUploaded}) // must not panic
}

func TestOrderingConcurrentPublishers(t *testing.T) {
	t.Parallel()
	const publishers, each = 8, 100
	h := newHub(publishers*each, publishers*each)
	ch, sub := h.Subscribe(t.Context(), events.Live)
	var wg sync.WaitGroup
	for range publishers {
		wg.Go(func() { publish(h, each) })
	}
	wg.Wait()
	got := receive(t, ch, publishers*each)
	for i := 1; i < len(got); i++ {
		if got[i].ID != got[i-1].ID+1 {
			t.Fatalf("event %d has id %d after %d, want consecutive ids", i, got[i].ID, got[i-1].ID)
		}
	}
	if sub.Missed() || sub.Err() != nil {
		t.Errorf("subscription Missed() = %v, Err() = %v; want false, nil", sub.Missed(), sub.Err())
	}
}

func TestResume(t *testing.T) {
	t.Parallel()
	h := newHub(4, 8)
	base := h.LastID()
	publish(h, 6) // base+1 .. base+6; the buffer keeps base+3 .. base+6
	tests := []struct {
		name       string
		afterID    int64
		wantIDs    []int64
		wantMissed bool
	}{
		{"live", events.Live, nil, false},
		{"latest", base + 6, nil, false},
		{"inside buffer", base + 4, []int64{base + 5, base + 6}, false},
		{"just before oldest", base + 2, []int64{base + 3, base + 4, base + 5, base + 6}, false},
		{"evicted", base + 1, []int64{base + 3, base + 4, base + 5, base + 6}, true},
		{"zero", 0, []int64{base + 3, base + 4, base + 5, base + 6}, true},
		{"from the future", base + 100, []int64{base + 3, base + 4, base + 5, base + 6}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			ch, sub := h.Subscribe(ctx, tt.afterID)
			got := ids(receive(t, ch, len(tt.wantIDs)))
			if fmt.Sprint(got) != fmt.Sprint(tt.wantIDs) {
				t.Errorf("Subscribe(after %d) replayed %v, want %v", tt.afterID-base, got, tt.wantIDs)
			}
			if sub.Missed() != tt.wantMissed {
				t.Errorf("Subscribe(after %d).Missed() = %v, want %v", tt.afterID-base, sub.Missed(), tt.wantMissed)
			}
			select {
			case e := <-ch:
				t.Errorf("Subscribe(after %d) replayed extra event %d", tt.afterID-base, e.ID-base)
			default:
			}
		})
	}
}

// A replay followed by live events has no gap and no duplicate, even while
// publishers run.
func TestResumeWhilePublishing(t *testing.T) {
	t.Parallel()
	h := newHub(1000, 1000)
	base := h.LastID()
	publish(h, 10)
	var wg sync.WaitGroup
	wg.Go(func() { publish(h, 200) })
	ch, _ := h.Subscribe(t.Context(), base+5)
	wg.Wait()
	got := receive(t, ch, 205)
	for i, e := range got {
		if e.ID != base+6+int64(i) {
			t.Fatalf("event %d has id base+%d, want base+%d", i, e.ID-base, 6+i)
		}
	}
}

func TestSlowSubscriberIsDroppedNotWaitedFor(t *testing.T) {
	t.Parallel()
	h := newHub(100, 3)
	base := h.LastID()
	slow, slowSub := h.Subscribe(t.Context(), events.Live)
	fast, fastSub := h.Subscribe(t.Context(), events.Live)

	// Publish returns at once although slow never reads (a blocking Publish
	// would hang here); fast reads each event as it comes.
	var fastGot []events.Event
	for range 10 {
		publish(h, 1)
		fastGot = append(fastGot, receive(t, fast, 1)...)
	}
	if fastSub.Err() != nil || fastGot[9].ID != base+10 {
		t.Errorf("fast subscriber: Err() = %v, last id base+%d; want nil, base+10", fastSub.Err(), fastGot[9].ID-base)
	}

	// The slow one keeps what fitted, then sees its channel closed.
	got := waitClosed(t, slow)
	if want := []int64{base + 1, base + 2, base + 3}; fmt.Sprint(ids(got)) != fmt.Sprint(want) {
		t.Errorf("slow subscriber received %v, want %v before being dropped", ids(got), want)
	}
	if !errors.Is(slowSub.Err(), events.ErrLagged) {
		t.Errorf("slow subscriber Err() = %v, want ErrLagged", slowSub.Err())
	}
	// It resumes from its last event; the buffer fills the gap.
	again, sub := h.Subscribe(t.Context(), got[len(got)-1].ID)
	rest := receive(t, again, 7)
	if sub.Missed() || rest[0].ID != base+4 || rest[6].ID != base+10 {
		t.Errorf("resume after lag: Missed() = %v, ids %v; want false, base+4..base+10", sub.Missed(), ids(rest))
	}
	if n := h.Subscribers(); n != 2 {
		t.Errorf("Subscribers() = %d, want 2 (fast and the resumed one)", n)
	}
}

func TestUnsubscribeOnCancel(t *testing.T) {
	t.Parallel()
	h := newHub(10, 10)
	ctx, cancel := context.WithCancel(t.Context())
	ch, sub := h.Subscribe(ctx, events.Live)
	publish(h, 2)
	cancel()
	got := waitClosed(t, ch)
	if len(got) > 2 {
		t.Errorf("received %d events after cancel, want at most the 2 published before", len(got))
	}
	if !errors.Is(sub.Err(), context.Canceled) {
		t.Errorf("Err() after cancel = %v, want context.Canceled", sub.Err())
	}
	if n := h.Subscribers(); n != 0 {
		t.Errorf("Subscribers() after cancel = %d, want 0", n)
	}
	publish(h, 3) // must not panic on the closed channel

	// A context already done: the replay is delivered, then the channel closes.
	h.Publish(events.Event{Type: events.TypeImageUploaded})
	ch, sub = h.Subscribe(ctx, h.LastID()-1)
	if got := waitClosed(t, ch); len(got) != 1 || !errors.Is(sub.Err(), context.Canceled) {
		t.Errorf("Subscribe with a done context: %d events, Err() = %v; want 1, context.Canceled", len(got), sub.Err())
	}
}

// Many subscribers come and go while events are published: no goroutine is
// left (TestMain checks), nothing blocks.
func TestChurn(t *testing.T) {
	t.Parallel()
	h := newHub(64, 2)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				h.Publish(events.Event{Type: events.TypeTaskUpdated})
			}
		}
	})
	for i := range 50 {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(t.Context())
			ch, _ := h.Subscribe(ctx, h.LastID()-int64(i%10))
			for range i % 5 {
				select {
				case <-ch:
				case <-time.After(time.Second): // the publisher may have stopped
				}
			}
			cancel()
			for range ch { // closed by cancel or by lagging
			}
		})
	}
	time.AfterFunc(100*time.Millisecond, func() { close(stop) })
	wg.Wait()
	if n := h.Subscribers(); n != 0 {
		t.Errorf("Subscribers() after churn = %d, want 0", n)
	}
}
