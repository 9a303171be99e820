// Package webhook delivers a task's final status (completed, failed,
// canceled) to the task's webhook_url: an HTTP POST, signed with HMAC-SHA256,
// retried with backoff through River so that it survives restarts, each
// attempt recorded.
//
// # Enqueue
//
// When a task reaches a final status, Enqueue inserts a River job of kind
// "imgd_webhook" (Args: task_id, status, event_id) in its own queue (Queue),
// so slow receivers never hold the slots that run image tasks. The job is
// unique by (task_id, status) across every job state River keeps (River
// UniqueOpts ByArgs, ByState all): a task reported final twice (a rescued
// job running again, the API and a worker racing) yields one job, one event
// id, one successful delivery. The insert is not in the transaction that
// changed the task: a process dying between the two loses the event. The
// caller logs an enqueue failure; it never fails the task.
//
// The event is built when it is delivered, from the task as stored then,
// rather than stored in the job's arguments: a final task no longer changes,
// so both give the same body, and this keeps jobs small and the body equal
// to what GET /api/v1/tasks/{id} shows. A task deleted meanwhile (with its
// image) is not delivered: its delivery records are deleted with it, and a
// receiver could not fetch it anyway.
//
// # Delivery
//
//	POST <webhook_url>
//	Content-Type: application/json
//	User-Agent: imgd-webhook/1
//	Imgd-Event-Id: <event id>
//	Imgd-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//
//	{"id":"<event id>","type":"task.updated","time":"<RFC 3339>","task":{…}}
//
// "task" is the task as the API shows it (imgd.Task plus result_url when
// completed); "time" is when the task became final, so every attempt of an
// event sends the same body. Only the signature's timestamp changes.
//
// A 2xx response is a delivery. Anything else is retried: other statuses
// (4xx included, since receivers are often misconfigured for a while and a
// retry costs little), 3xx (redirects are not followed: a public receiver
// could redirect into a private network), timeouts (ClientTimeout) and
// connection errors. Retries follow RetryDelays: 11 attempts over about 50
// minutes; the job is then discarded. A target that is not http(s), or
// whose address is forbidden (see below), fails at once, without retries
// (the job is canceled). Delivery is at
// least once: a process dying after the receiver answered but before River
// recorded the job sends the event again with the same Imgd-Event-Id, so
// receivers deduplicate on it; a job whose task already has a 2xx delivery
// recorded sends nothing (a task has one final status, so one event).
//
// # Verifying a delivery
//
// Receivers keep the secret (IMGD_WEBHOOK_SECRET), read the raw body, and:
//  1. split Imgd-Signature on "," into key=value pairs; take t and every v1;
//  2. reject if |now - t| exceeds a tolerance (5 minutes: DefaultTolerance),
//     which stops replays of a captured request;
//  3. compute hex(HMAC-SHA256(secret, t + "." + body)) and compare it in
//     constant time with each v1 (several during a secret rotation);
//  4. deduplicate on Imgd-Event-Id.
//
// Verify does exactly this in Go. Without a configured secret deliveries are
// sent unsigned (no Imgd-Signature header) and the worker logs a warning when
// it starts: refusing to start would break the zero-config embedded mode for
// a feature most setups never use, and sending nothing would be a silent
// failure. Receivers that verify will reject unsigned deliveries.
//
// # Server-side request forgery
//
// A webhook URL is chosen by the client, so imgd must not become a way to
// reach its own network. The HTTP client checks every address it connects to,
// after DNS resolution, in the dialer's Control function (so DNS rebinding
// cannot pass a check made earlier) and refuses the addresses Forbidden
// lists: loopback, private, link-local, unspecified, multicast, CGNAT and
// other reserved ranges, in IPv4 and in IPv6 including IPv4-mapped
// addresses. It uses no proxy from the environment and follows no redirect.
// Options.AllowPrivate (IMGD_WEBHOOK_ALLOW_PRIVATE) turns the check off, for
// receivers on a private network and for tests.
//
// # Records
//
// Every attempt is recorded (Recorder): task, URL, event id, attempt number,
// HTTP status (0 when no response), error, duration. Records are deleted with
// their task. A record that cannot be written is logged and does not change
// the outcome: failing the job for it would send the event again.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/imgd/imgd"
)

// Kind is the River job kind of Args.
const Kind = "imgd_webhook"

// Queue is the River queue of webhook jobs.
const Queue = "imgd_webhook"

// EventType is the type of every event sent: a task's status changed.
const EventType = "task.updated"

// UserAgent is sent with every delivery.
const UserAgent = "imgd-webhook/1"

// ClientTimeout bounds one delivery attempt: connecting, sending, and
// reading the response headers. A variable so that tests can shorten it
// before they start a worker.
var ClientTimeout = 10 * time.Second

// RetryDelays is the wait after each failed attempt: after attempt n comes
// RetryDelays[n-1], and a job makes len(RetryDelays)+1 attempts (11 over
// about 50 minutes). A variable so that tests can shorten it before they start a
// worker and insert jobs.
var RetryDelays = defaultRetryDelays

var defaultRetryDelays = []time.Duration{
	time.Second, 5 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute,
	5 * time.Minute, 10 * time.Minute, 10 * time.Minute, 10 * time.Minute, 10 * time.Minute,
}

// maxResponseBytes is how much of a response body is read (and dropped), so
// that the connection can be reused without letting a receiver stream
// forever.
const maxResponseBytes = 64 << 10

// Args are the arguments of a delivery job.
type Args struct {
	TaskID string          `json:"task_id" river:"unique"`
	Status imgd.TaskStatus `json:"status" river:"unique"`
	// EventID is the event's id, generated at enqueue time and sent in
	// every attempt, so that receivers can deduplicate.
	EventID string `json:"event_id"`
}

// Kind implements river.JobArgs.
func (Args) Kind() string { return Kind }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (Args) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue:       Queue,
		MaxAttempts: len(RetryDelays) + 1,
		// Every state: a delivery that was discarded or canceled is not
		// started again by a repeated final status either.
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: rivertype.JobStates()},
	}
}

// Inserter inserts River jobs: a *river.Client of any driver.
type Inserter interface {
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// Enqueue inserts the delivery job of t when t has a webhook URL and a final
// status. It reports whether a job was inserted: false when there is nothing
// to send, or when the job exists already (the status was reported before).
func Enqueue(ctx context.Context, ins Inserter, t imgd.Task) (bool, error) {
	if t.WebhookURL == "" || !t.Status.Final() {
		return false, nil
	}
	res, err := ins.Insert(ctx, Args{TaskID: t.ID, Status: t.Status, EventID: imgd.NewID()}, nil)
	if err != nil {
		return false, fmt.Errorf("enqueue webhook of task %s: %w", t.ID, err)
	}
	return !res.UniqueSkippedAsDuplicate, nil
}

// Delivery is the record of one attempt.
type Delivery struct {
	ID         string    `json:"id"`
	TaskID     string    `json:"task_id"`
	URL        string    `json:"url"`
	EventID    string    `json:"event_id"`
	Attempt    int       `json:"attempt"`
	StatusCode int       `json:"status_code"`     // 0: no response
	Error      string    `json:"error,omitempty"` // "" for a 2xx
	DurationMS int64     `json:"duration_ms"`
	CreatedAt  time.Time `json:"created_at"`
}

// OK reports whether the attempt delivered the event.
func (d Delivery) OK() bool { return d.StatusCode >= 200 && d.StatusCode <= 299 }

// Recorder keeps delivery records.
type Recorder interface {
	// RecordDelivery stores d; the store fills ID and CreatedAt when empty.
	RecordDelivery(ctx context.Context, d Delivery) error
	// ListDeliveries returns the records of a task, oldest first.
	ListDeliveries(ctx context.Context, taskID string) ([]Delivery, error)
}

// Tasks reads tasks: an imgd.Store.
type Tasks interface {
	GetTask(ctx context.Context, id string) (imgd.Task, error)
}

// Options configure a Worker.
type Options struct {
	Tasks    Tasks    // required
	Recorder Recorder // required
	// Secret signs deliveries; "" sends them unsigned (see the package doc).
	Secret string
	// AllowPrivate lets deliveries reach loopback, private and other
	// non-public addresses.
	AllowPrivate bool
	Logger       *slog.Logger // nil discards
	// NowFunc returns the current time; nil means time.Now.
	NowFunc func() time.Time
}

// Worker delivers Args jobs. Register it with river.AddWorker and give the
// client a Queue queue.
type Worker struct {
	river.WorkerDefaults[Args]
	tasks   Tasks
	rec     Recorder
	secret  string
	client  *http.Client
	timeout time.Duration
	delays  []time.Duration
	log     *slog.Logger
	now     func() time.Time
}

var _ river.Worker[Args] = (*Worker)(nil)

// New returns a Worker, or an error naming a missing option. It reads
// ClientTimeout and RetryDelays once.
func New(o Options) (*Worker, error) {
	var errs []error
	if o.Tasks == nil {
		errs = append(errs, errors.New("webhook: Tasks is required"))
	}
	if o.Recorder == nil {
		errs = append(errs, errors.New("webhook: Recorder is required"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.NowFunc == nil {
		o.NowFunc = time.Now
	}
	if o.Secret == "" {
		o.Logger.Info("no webhook secret configured: webhooks are sent unsigned (set IMGD_WEBHOOK_SECRET)")
	}
	if o.AllowPrivate {
		o.Logger.Warn("webhooks may reach loopback and private addresses (IMGD_WEBHOOK_ALLOW_PRIVATE)")
	}
	return &Worker{
		tasks: o.Tasks, rec: o.Recorder, secret: o.Secret,
		client:  newClient(ClientTimeout, o.AllowPrivate),
		timeout: ClientTimeout,
		delays:  append([]time.Duration(nil), RetryDelays...),
		log:     o.Logger, now: o.NowFunc,
	}, nil
}

// Timeout implements river.Worker: one attempt, plus time to record it.
func (w *Worker) Timeout(*river.Job[Args]) time.Duration { return w.timeout + 10*time.Second }

// NextRetry implements river.Worker: the delay after attempt n is
// RetryDelays[n-1], the last one repeated.
func (w *Worker) NextRetry(job *river.Job[Args]) time.Time {
	i := min(max(job.Attempt-1, 0), len(w.delays)-1)
	if i < 0 {
		return w.now() // no schedule: retry at once
	}
	return w.now().Add(w.delays[i])
}

// Event is the JSON body of a delivery.
type Event struct {
	ID   string    `json:"id"`
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	Task TaskJSON  `json:"task"`
}

// TaskJSON is a task as the API shows it.
type TaskJSON struct {
	imgd.Task
	ResultURL string `json:"result_url,omitempty"`
}

// NewTaskJSON returns t as the API shows it.
func NewTaskJSON(t imgd.Task) TaskJSON {
	j := TaskJSON{Task: t}
	if t.Status.HasResult() {
		j.ResultURL = "/api/v1/tasks/" + t.ID + "/result"
	}
	return j
}

// Work implements river.Worker.
func (w *Worker) Work(ctx context.Context, job *river.Job[Args]) error {
	a := job.Args
	log := w.log.With("task_id", a.TaskID, "event_id", a.EventID, "job_id", job.ID, "attempt", job.Attempt)
	t, err := w.tasks.GetTask(ctx, a.TaskID)
	switch {
	case imgd.CodeOf(err) == imgd.CodeNotFound:
		log.Info("webhook not sent: task deleted")
		return nil
	case err != nil:
		return fmt.Errorf("get task %s: %w", a.TaskID, err)
	case t.WebhookURL == "":
		return nil
	}
	if t.Status != a.Status {
		// Final statuses do not change; a mismatch is a bug elsewhere. The
		// receiver gets the task as it is.
		log.Warn("webhook task status differs from the event's", "event_status", a.Status, "status", t.Status)
	}
	prev, err := w.rec.ListDeliveries(ctx, t.ID)
	if err != nil {
		return fmt.Errorf("list deliveries of task %s: %w", t.ID, err)
	}
	for _, d := range prev {
		if d.OK() {
			log.Info("webhook already delivered", "delivered_event_id", d.EventID)
			return nil
		}
	}

	d := Delivery{TaskID: t.ID, URL: t.WebhookURL, EventID: a.EventID, Attempt: job.Attempt}
	at := job.CreatedAt
	if t.FinishedAt != nil {
		at = *t.FinishedAt
	}
	body, err := json.Marshal(Event{ID: a.EventID, Type: EventType, Time: at.UTC(), Task: NewTaskJSON(t)})
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	start := w.now()
	code, sendErr := w.send(ctx, t.WebhookURL, a.EventID, body)
	d.DurationMS = w.now().Sub(start).Milliseconds()
	d.StatusCode = code
	if sendErr != nil {
		d.Error = sendErr.Error()
	}
	// Recorded even when ctx ended: the attempt happened.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := w.rec.RecordDelivery(rctx, d); err != nil {
		log.Error("webhook delivery not recorded", "err", err)
	}

	log = log.With("url", redactURL(t.WebhookURL))
	switch {
	case sendErr == nil:
		log.Info("webhook delivered", "status_code", code, "duration_ms", d.DurationMS)
		return nil
	case errors.Is(sendErr, errPermanent):
		log.Error("webhook refused", "err", sendErr)
		return river.JobCancel(sendErr)
	case job.Attempt >= job.MaxAttempts:
		log.Error("webhook failed, giving up", "status_code", code, "err", sendErr)
	default:
		log.Warn("webhook failed, will retry", "status_code", code, "err", sendErr)
	}
	return sendErr
}

// redactURL drops what may carry a credential from a URL for logs: user
// information, query and fragment. The delivery record keeps the URL whole,
// as the task does.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	return r.String()
}

// errPermanent marks a delivery that no retry can make succeed.
var errPermanent = errors.New("permanent")

type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() []error { return []error{e.err, errPermanent} }

// send POSTs body to target and returns the response status (0 without
// one) and nil for a 2xx, an error otherwise; an error that retries cannot
// fix matches errPermanent.
func (w *Worker) send(ctx context.Context, target, eventID string, body []byte) (int, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return 0, &permanentError{fmt.Errorf("webhook URL %q is not an absolute http(s) URL", target)}
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, &permanentError{fmt.Errorf("webhook request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(EventIDHeader, eventID)
	if w.secret != "" {
		req.Header.Set(SignatureHeader, Sign(w.secret, w.now(), body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		if errors.Is(err, ErrForbiddenAddress) {
			var fe *forbiddenError
			if errors.As(err, &fe) {
				return 0, &permanentError{fe}
			}
			return 0, &permanentError{err}
		}
		// The URL is the task's and may carry a token: keep it out of the
		// message, which is stored and logged beside the URL anyway.
		var ue *url.Error
		if errors.As(err, &ue) {
			if ue.Timeout() {
				return 0, fmt.Errorf("post webhook: no response within %s: %w", w.timeout, ue.Err)
			}
			err = ue.Err
		}
		return 0, fmt.Errorf("post webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("webhook receiver answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}
