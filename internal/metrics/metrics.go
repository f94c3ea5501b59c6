// Package metrics counts what a running Braid does, for Prometheus: the
// writer's commands and batches, the log's head and queue, verify runs,
// sessions, scheduled exports, replication and HTTP requests. It knows
// nothing of tickets or people: the server hands it functions to read.
package metrics

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"braid/internal/events"
)

// ReplicationStatus is what replication reports: the last position copied
// to the replica and how far behind the head it is. The replication
// package's replicator satisfies it; SetReplication wires it in.
type ReplicationStatus interface {
	Status() (position int64, lag time.Duration, err error)
}

// Metrics holds every collector in its own registry (never the global one,
// so two servers in one test process keep separate counts).
type Metrics struct {
	reg *prometheus.Registry

	commands    *prometheus.CounterVec
	batchSize   prometheus.Histogram
	batches     *prometheus.CounterVec
	commit      prometheus.Histogram
	batchTime   prometheus.Histogram
	verify      *prometheus.HistogramVec
	exports     *prometheus.CounterVec
	exportLast  prometheus.Gauge
	httpReqs    *prometheus.CounterVec
	httpLatency *prometheus.HistogramVec

	mu   sync.Mutex
	repl ReplicationStatus

	counted sync.Map // [2]string{kind, outcome} → prometheus.Counter, skipping the vector's hashing
}

// latency buckets from 100µs to 10s: a commit is an fsync, a page a few ms.
var latency = prometheus.ExponentialBuckets(0.0001, 2.5, 12)

// New returns the metrics with the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.commands = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "braid_commands_total",
		Help: "Commands the writer ran, by kind and outcome (ok, repeated, or the error code: invalid, conflict, forbidden, not_found, unavailable, internal)."},
		[]string{"kind", "outcome"})
	m.batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "braid_writer_batch_commands",
		Help: "Commands per writer batch (one transaction, one fsync).", Buckets: prometheus.ExponentialBuckets(1, 2, 9)})
	m.batches = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "braid_writer_batches_total",
		Help: "Writer batches, by whether they committed or rolled back."}, []string{"outcome"})
	m.commit = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "braid_writer_commit_seconds",
		Help: "Time in COMMIT: SQLite writes the WAL frames and fsyncs there (synchronous=FULL); the fsync is not timed apart.", Buckets: latency})
	m.batchTime = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "braid_writer_batch_seconds",
		Help: "Time of a whole writer batch, BEGIN to the end of COMMIT.", Buckets: latency})
	m.verify = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "braid_verify_seconds",
		Help:    "Duration of background verify runs, by kind (full: from position 1; incremental: the new events).",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"run"})
	m.exports = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "braid_exports_total",
		Help: "Scheduled exports, by outcome (ok or failed)."}, []string{"outcome"})
	m.exportLast = prometheus.NewGauge(prometheus.GaugeOpts{Name: "braid_export_last_success_timestamp_seconds",
		Help: "Unix time of the last scheduled export that was written and verified (0: none yet)."})
	m.httpReqs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "braid_http_requests_total",
		Help: "HTTP requests by route pattern, method and status."}, []string{"route", "method", "status"})
	m.httpLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "braid_http_request_seconds",
		Help: "HTTP request latency by route pattern and method.", Buckets: latency}, []string{"route", "method"})
	m.exports.WithLabelValues("ok")
	m.exports.WithLabelValues("failed")
	m.reg.MustRegister(m.commands, m.batchSize, m.batches, m.commit, m.batchTime, m.verify, m.exports, m.exportLast,
		m.httpReqs, m.httpLatency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "braid_replication_position",
			Help: "Last log position copied to the replica (-1: replication not configured or not answering)."},
			func() float64 { p, _ := m.replication(); return p }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "braid_replication_lag_seconds",
			Help: "How far the replica is behind the head, in seconds (-1: replication not configured or not answering)."},
			func() float64 { _, l := m.replication(); return l }))
	return m
}

// replication reads the replicator's position and lag, -1 each when there
// is none or it cannot say.
func (m *Metrics) replication() (position, lag float64) {
	m.mu.Lock()
	r := m.repl
	m.mu.Unlock()
	if r == nil {
		return -1, -1
	}
	p, l, err := r.Status()
	if err != nil {
		return -1, -1
	}
	return float64(p), l.Seconds()
}

// SetReplication wires in the replicator (nil: not configured).
func (m *Metrics) SetReplication(r ReplicationStatus) {
	m.mu.Lock()
	m.repl = r
	m.mu.Unlock()
}

// Gauges are values read at scrape time.
type Gauges struct {
	Head     func() int64        // the committed head position
	Queue    func() int          // requests waiting for the writer
	Sessions func() (int, error) // sessions not yet expired
}

// Watch registers the gauges read at scrape time; call it once.
func (m *Metrics) Watch(g Gauges) {
	if g.Head != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "braid_head_position",
			Help: "Position of the last committed event."}, func() float64 { return float64(g.Head()) }))
	}
	if g.Queue != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "braid_writer_queue_depth",
			Help: "Commands waiting for the writer."}, func() float64 { return float64(g.Queue()) }))
	}
	if g.Sessions != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "braid_sessions_active",
			Help: "Sign-in sessions not yet expired (-1: could not count)."}, func() float64 {
			n, err := g.Sessions()
			if err != nil {
				return -1
			}
			return float64(n)
		}))
	}
}

// Command counts one command (events.Observer).
func (m *Metrics) Command(kind, outcome string) {
	k := [2]string{kind, outcome}
	c, ok := m.counted.Load(k)
	if !ok {
		c, _ = m.counted.LoadOrStore(k, m.commands.WithLabelValues(kind, outcome))
	}
	c.(prometheus.Counter).Inc()
}

// Batch records one writer batch (events.Observer).
func (m *Metrics) Batch(s events.BatchStats) {
	m.batchSize.Observe(float64(s.Commands))
	if !s.Committed {
		m.batches.WithLabelValues("rolled_back").Inc()
		return
	}
	m.batches.WithLabelValues("committed").Inc()
	m.commit.Observe(s.Commit.Seconds())
	m.batchTime.Observe(s.Total.Seconds())
}

// Verified records one verify run.
func (m *Metrics) Verified(took time.Duration, full bool) {
	run := "incremental"
	if full {
		run = "full"
	}
	m.verify.WithLabelValues(run).Observe(took.Seconds())
}

// Exported counts one scheduled export.
func (m *Metrics) Exported(at time.Time, err error) {
	if err != nil {
		m.exports.WithLabelValues("failed").Inc()
		return
	}
	m.exports.WithLabelValues("ok").Inc()
	m.exportLast.Set(float64(at.Unix()))
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Middleware counts every request by its route pattern (echo's c.Path(),
// never the raw URL, so the label set stays small) and status. Put it
// outermost (first e.Pre), so errors have become statuses when it looks.
// It answers /metrics itself: when token is not empty, to a request
// bearing "Authorization: Bearer TOKEN" with the metrics, to any other
// with 401; when token is empty, with 404 (not served here).
func (m *Metrics) Middleware(token string) echo.MiddlewareFunc {
	h := m.Handler()
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.URL.Path == "/metrics" {
				if token == "" {
					return echo.ErrNotFound
				}
				if !bearer(r, token) {
					c.Response().Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
					return c.String(http.StatusUnauthorized, "metrics need Authorization: Bearer and the metrics token\n")
				}
				h.ServeHTTP(c.Response(), r)
				return nil
			}
			start := time.Now()
			err := next(c)
			status := c.Response().Status
			if err != nil && !c.Response().Committed {
				status = http.StatusInternalServerError
				var he *echo.HTTPError
				if errors.As(err, &he) {
					status = he.Code
				}
			}
			route := c.Path()
			if route == "" || status == http.StatusNotFound && route == "/*" {
				route = "unmatched"
			}
			m.httpReqs.WithLabelValues(route, r.Method, strconv.Itoa(status)).Inc()
			m.httpLatency.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
			return err
		}
	}
}

// bearer reports whether r carries "Authorization: Bearer token".
func bearer(r *http.Request, token string) bool {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "Bearer ") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(h[7:]), []byte(token)) == 1
}
