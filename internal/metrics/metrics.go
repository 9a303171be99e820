// Package metrics holds imgd's Prometheus metrics. A nil *Metrics records
// nothing, so callers need no checks.
//
// Every metric lives on the Metrics' own registry (with the Go runtime and
// process collectors), never on prometheus.DefaultRegisterer, so several
// servers in one test binary do not collide. Label values are bounded: HTTP
// routes are mux patterns (or "unrouted"), task ops are capped at four
// operations, codes and statuses are closed sets.
package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/imgd/imgd"
)

// Buckets are the upper bounds, in seconds, of every duration histogram:
// from 1 ms (a cached GET) to 5 min (a large pipeline near its time limit).
var Buckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// QueueTimeout bounds the task count query of one scrape, so that a slow
// database makes /metrics miss imgd_queue_tasks rather than hang.
const QueueTimeout = 2 * time.Second

// maxOpLabelSteps is how many operations the op label of a task names; a
// longer pipeline ends with "+…", which keeps the label's values bounded.
const maxOpLabelSteps = 4

// Task outcomes, the outcome label of task metrics. OutcomeReused is a task
// completed from a stored identical result without running (attempt 0).
const (
	OutcomeCompleted = "completed"
	OutcomeFailed    = "failed"
	OutcomeCanceled  = "canceled"
	OutcomeReused    = "reused"
)

// TaskCounterFunc returns the number of tasks in each status.
type TaskCounterFunc func(context.Context) (map[imgd.TaskStatus]int64, error)

// Metrics is the set of imgd's metrics.
type Metrics struct {
	reg          *prometheus.Registry
	httpDuration *prometheus.HistogramVec
	httpIn       *prometheus.CounterVec
	httpOut      *prometheus.CounterVec
	taskDuration *prometheus.HistogramVec
	queueWait    prometheus.Histogram
	engineErrors *prometheus.CounterVec
	tasks        *prometheus.CounterVec
	queue        *queueCollector
	handler      http.Handler
}

// New returns the metrics on a registry of their own.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "imgd_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern and status code.",
			Buckets: Buckets,
		}, []string{"route", "code"}),
		httpIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imgd_http_request_bytes_total",
			Help: "Request body bytes read, by route pattern.",
		}, []string{"route"}),
		httpOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imgd_http_response_bytes_total",
			Help: "Response body bytes written, by route pattern.",
		}, []string{"route"}),
		taskDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "imgd_task_duration_seconds",
			Help: "Time from the start of a task's last attempt (its creation when it never started) " +
				"to its final status, by operations and outcome.",
			Buckets: Buckets,
		}, []string{"op", "outcome"}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "imgd_task_queue_wait_seconds",
			Help:    "Time from a task's creation to the start of its first attempt.",
			Buckets: Buckets,
		}),
		engineErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imgd_engine_errors_total",
			Help: "Tasks that failed for good, by error code.",
		}, []string{"code"}),
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imgd_tasks_total",
			Help: "Tasks that reached a final status, by outcome.",
		}, []string{"outcome"}),
		queue: &queueCollector{desc: prometheus.NewDesc("imgd_queue_tasks",
			"Tasks in each status, counted in the database at scrape time.", []string{"status"}, nil)},
	}
	m.queue.log.Store(slog.New(slog.DiscardHandler))
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.httpDuration, m.httpIn, m.httpOut, m.taskDuration, m.queueWait, m.engineErrors, m.tasks, m.queue,
	)
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog: errorLog{m},
		// A collector failing (the task count) leaves its samples out
		// instead of failing the whole scrape.
		ErrorHandling: promhttp.ContinueOnError,
		// Served when the scraper asks for it (Prometheus does by default).
		EnableOpenMetrics: true,
	})
	return m
}

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return m.handler
}

// Registry is the registry the metrics live on, for components that add
// their own collectors.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// SetLogger sets where collection errors are logged; nil discards them.
func (m *Metrics) SetLogger(l *slog.Logger) {
	if m == nil {
		return
	}
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	m.queue.log.Store(l)
}

// SetTaskCounter sets the function imgd_queue_tasks is read from at each
// scrape (the store's TaskCounts); nil removes the metric's samples.
func (m *Metrics) SetTaskCounter(f TaskCounterFunc) {
	if m == nil {
		return
	}
	if f == nil {
		m.queue.count.Store(nil)
		return
	}
	m.queue.count.Store(&f)
}

// ObserveHTTP records one HTTP request by route pattern and status.
func (m *Metrics) ObserveHTTP(route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.httpDuration.WithLabelValues(route, strconv.Itoa(status)).Observe(d.Seconds())
}

// AddHTTPBytes records the body bytes one request read (in) and its
// response wrote (out).
func (m *Metrics) AddHTTPBytes(route string, in, out int64) {
	if m == nil {
		return
	}
	// Adding zero still creates the series, so every route that answered
	// shows up, even with empty bodies.
	m.httpIn.WithLabelValues(route).Add(float64(max(in, 0)))
	m.httpOut.WithLabelValues(route).Add(float64(max(out, 0)))
}

// TaskUpdated records a task's status change: the queue wait when it
// starts processing, its duration and outcome when it becomes final. Call
// it once per change (the worker's and the API's update hooks do).
func (m *Metrics) TaskUpdated(t imgd.Task) {
	if m == nil {
		return
	}
	switch {
	case t.Status == imgd.TaskProcessing:
		// Only the first attempt: a retry's StartedAt − CreatedAt would
		// count earlier attempts and the backoff as waiting.
		if t.StartedAt != nil && t.Attempt <= 1 {
			m.queueWait.Observe(nonNegative(t.StartedAt.Sub(t.CreatedAt)))
		}
	case t.Status.Final():
		outcome := string(t.Status)
		if t.Status.HasResult() && t.Attempt == 0 {
			outcome = OutcomeReused
		}
		if t.FinishedAt != nil {
			from := t.CreatedAt
			if t.StartedAt != nil {
				from = *t.StartedAt
			}
			m.taskDuration.WithLabelValues(OpLabel(t.Pipeline), outcome).Observe(nonNegative(t.FinishedAt.Sub(from)))
		}
		m.tasks.WithLabelValues(outcome).Inc()
		if t.Status == imgd.TaskFailed {
			code := t.ErrorCode
			if code == "" {
				code = imgd.CodeInternal
			}
			m.engineErrors.WithLabelValues(string(code)).Inc()
		}
	}
}

// OpLabel is the op label of a pipeline: its operations joined with "+",
// the first four only, then "+…"; "none" for an empty pipeline.
func OpLabel(p imgd.Pipeline) string {
	if len(p) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, s := range p {
		if i > 0 {
			b.WriteByte('+')
		}
		if i == maxOpLabelSteps {
			b.WriteString("…")
			break
		}
		b.WriteString(s.Op())
	}
	return b.String()
}

func nonNegative(d time.Duration) float64 { return max(d, 0).Seconds() }

// queueCollector reads the task counts from the database at each scrape.
type queueCollector struct {
	desc  *prometheus.Desc
	count atomic.Pointer[TaskCounterFunc]
	log   atomic.Pointer[slog.Logger]
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.count.Load()
	if f == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), QueueTimeout)
	defer cancel()
	counts, err := (*f)(ctx)
	if err != nil {
		// No samples: a stale or zero count would read as an empty queue.
		c.log.Load().Warn("metrics: count tasks by status", "err", err)
		return
	}
	// Every status gets a sample, zero included, so that a status with no
	// task reads 0 instead of "no data".
	for _, st := range imgd.TaskStatuses {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[st]), string(st))
	}
}

// errorLog sends promhttp's errors to the metrics' logger.
type errorLog struct{ m *Metrics }

func (l errorLog) Println(v ...any) {
	l.m.queue.log.Load().Warn("metrics: serve", "err", fmt.Sprint(v...))
}
