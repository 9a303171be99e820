package service_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imgd/imgd/internal/engine"
	"github.com/imgd/imgd/internal/events"
	"github.com/imgd/imgd/internal/service"
	"github.com/imgd/imgd/internal/store/storetest"
)

// TestEventRelay: two processes' services on one PostgreSQL database see
// each other's events once, their own once, none of another deployment's
// in another schema, and again after the database cut their connections.
func TestEventRelay(t *testing.T) {
	// The application name marks this test's connections, so that cutting
	// them below leaves other tests on the same database alone.
	app := "imgd-relay-test-" + strings.ToLower(rand.Text()[:8])
	dbURL := storetest.PostgresURL(t) + "&application_name=" + app
	a, b := openOn(t, dbURL, true), openOn(t, dbURL, false)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	subA, _ := a.Hub.Subscribe(ctx, events.Live)
	subB, _ := b.Hub.Subscribe(ctx, events.Live)

	expect := func(ch <-chan events.Event, taskID, what string) {
		t.Helper()
		select {
		case e := <-ch:
			if e.TaskID != taskID {
				t.Fatalf("%s: got event of task %q, want %q", what, e.TaskID, taskID)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no event within 10 s", what)
		}
	}
	none := func(ch <-chan events.Event, what string) {
		t.Helper()
		select {
		case e := <-ch:
			t.Fatalf("%s: unexpected event %+v", what, e)
		case <-time.After(300 * time.Millisecond):
		}
	}

	// The listeners may not be up yet: publish until the first arrives.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.Hub.Publish(events.Event{Type: events.TypeTaskUpdated, TaskID: "warmup", Status: "pending"})
		<-subB // B's own copy
		select {
		case <-subA:
		case <-time.After(200 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("no event relayed from B to A in 10 s")
			}
			continue
		}
		break
	}
	// Drain late warm-up copies.
	for drained := false; !drained; {
		select {
		case <-subA:
		case <-time.After(300 * time.Millisecond):
			drained = true
		}
	}

	b.Hub.Publish(events.Event{Type: events.TypeTaskUpdated, TaskID: "t1", Status: "completed"})
	expect(subB, "t1", "B's own event")
	expect(subA, "t1", "B's event on A")
	none(subB, "B after its own event (no echo)")

	a.Hub.Publish(events.Event{Type: events.TypeImageUploaded, TaskID: "t2"})
	expect(subA, "t2", "A's own event")
	expect(subB, "t2", "A's event on B")
	none(subA, "A after its own event (no echo)")

	// Another deployment in another schema of the same database: its
	// events stay its own.
	other := openOn(t, storetest.PostgresURL(t), true)
	for range 3 {
		other.Hub.Publish(events.Event{Type: events.TypeTaskUpdated, TaskID: "other-schema"})
	}
	none(subA, "A after another schema's events")

	// Cut every other connection to the database: the listeners reconnect.
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = $1
		AND query ILIKE 'LISTEN%'`, app); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(15 * time.Second)
	for i := 0; ; i++ {
		b.Hub.Publish(events.Event{Type: events.TypeTaskUpdated, TaskID: "after-cut", Status: "pending"})
		<-subB
		select {
		case e := <-subA:
			if e.TaskID != "after-cut" {
				t.Fatalf("after the cut: event of %q", e.TaskID)
			}
			t.Logf("relay back %d attempts after its connection was cut", i+1)
			return
		case <-time.After(500 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("events not relayed 15 s after the database cut the listener's connection")
			}
		}
	}
}

func openOn(t *testing.T, dbURL string, migrate bool) *service.Service {
	t.Helper()
	s, err := service.Open(t.Context(), service.Options{DataDir: t.TempDir(), DatabaseURL: dbURL,
		Migrate: migrate, Limits: engine.DefaultLimits()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
