package webhook

import (
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

func TestNextRetry(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	w := &Worker{delays: []time.Duration{time.Second, 5 * time.Second, time.Minute}, now: func() time.Time { return now }}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 5 * time.Second, 3: time.Minute, 4: time.Minute, 10: time.Minute} {
		job := &river.Job[Args]{JobRow: &rivertype.JobRow{Attempt: attempt}}
		if got := w.NextRetry(job).Sub(now); got != want {
			t.Errorf("NextRetry(attempt %d) = now+%v, want now+%v", attempt, got, want)
		}
	}
	empty := &Worker{now: func() time.Time { return now }}
	if got := empty.NextRetry(&river.Job[Args]{JobRow: &rivertype.JobRow{Attempt: 1}}); !got.Equal(now) {
		t.Errorf("NextRetry without delays = %v, want now", got)
	}
}

// TestDefaultSchedule keeps the documented schedule true: 11 attempts over
// about 50 minutes, no delay above 10 minutes.
func TestDefaultSchedule(t *testing.T) {
	t.Parallel()
	// TestMain shortens RetryDelays; the defaults are what New would copy
	// in production, kept here.
	delays := defaultRetryDelays
	var total time.Duration
	for _, d := range delays {
		if d > 10*time.Minute {
			t.Errorf("retry delay %v above 10 minutes", d)
		}
		total += d
	}
	if n := len(delays) + 1; n != 11 {
		t.Errorf("%d attempts, want 11", n)
	}
	if total < 45*time.Minute || total > 55*time.Minute {
		t.Errorf("retries span %v, want about 50 minutes", total)
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://user:pw@example.com/hook?token=abc#x": "https://example.com/hook",
		"http://example.com:8080/a/b":                  "http://example.com:8080/a/b",
		"::":                                           "(unparsable URL)",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
