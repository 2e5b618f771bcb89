package report

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hotdrop/hotdrop/delivery"
)

// Metrics are hotdrop's Prometheus series, fed by the Hub from the Engine's events and views.
// They live in their own registry (no global state): one per daemon, one per test.
type Metrics struct {
	reg       *prometheus.Registry
	files     prometheus.Counter
	bytes     prometheus.Counter
	errors    *prometheus.CounterVec
	durations prometheus.Histogram
	lastOK    prometheus.Gauge
	down      prometheus.Gauge

	mu       sync.Mutex
	started  map[int64]int64   // file id → when its upload started (Unix ns: 100,000 frames start at once)
	attempts map[int64]int     // file id → last retry attempt seen
	states   map[string]string // request id → state
	queued   map[string]int64  // request id → bytes still to send
}

var (
	requestsDesc = prometheus.NewDesc("hotdrop_requests", "Source requests by delivery state.", []string{"state"}, nil)
	queueDesc    = prometheus.NewDesc("hotdrop_queue_bytes", "Bytes of ready and uploading files not yet sent.", nil, nil)
)

var allStates = []delivery.State{delivery.Waiting, delivery.Settling, delivery.Held, delivery.Ready,
	delivery.Uploading, delivery.Delivered, delivery.Failed}

// NewMetrics makes the series and their registry (with the Go and process collectors).
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		files: prometheus.NewCounter(prometheus.CounterOpts{Name: "hotdrop_files_delivered_total",
			Help: "Files delivered and verified on the destination."}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "hotdrop_bytes_delivered_total",
			Help: "Bytes of the files delivered."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hotdrop_errors_total",
			Help: "Delivery errors by kind: a failure reason, \"transient\" for a retried upload error, or \"destination_unreachable\"."},
			[]string{"kind"}),
		durations: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hotdrop_upload_duration_seconds",
			Help: "Time from the start of a file's upload to its verified delivery.", Buckets: prometheus.ExponentialBuckets(1, 2.5, 12)}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hotdrop_last_delivery_timestamp_seconds",
			Help: "Unix time of the last successful delivery."}),
		down: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hotdrop_destination_unreachable",
			Help: "1 while the destination has been failing for destination.alert_after."}),
		started: map[int64]int64{}, attempts: map[int64]int{},
		states: map[string]string{}, queued: map[string]int64{},
	}
	m.reg.MustRegister(m.files, m.bytes, m.errors, m.durations, m.lastOK, m.down, (*viewCollector)(m),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the series in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func (m *Metrics) observe(ev delivery.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var id int64
	if ev.File != nil {
		id = ev.File.ID
	}
	switch ev.Type {
	case delivery.EventFileUploading:
		m.started[id] = ev.At.UnixNano()
		delete(m.attempts, id)
	case delivery.EventFileDelivered:
		m.files.Inc()
		m.bytes.Add(float64(ev.File.Size))
		m.lastOK.Set(float64(ev.At.UnixNano()) / 1e9)
		if t, ok := m.started[id]; ok {
			m.durations.Observe(ev.At.Sub(time.Unix(0, t)).Seconds())
		}
		delete(m.started, id)
		delete(m.attempts, id)
	case delivery.EventFileFailed:
		kind := "unknown"
		if ev.Reason != nil {
			kind = ev.Reason.Code
		}
		m.errors.WithLabelValues(kind).Inc()
		delete(m.started, id)
		delete(m.attempts, id)
	case delivery.EventDestinationDown:
		m.errors.WithLabelValues("destination_unreachable").Inc()
		m.down.Set(1)
	case delivery.EventDestinationBack:
		m.down.Set(0)
	}
}

func (m *Metrics) observeView(ri RequestInfo) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var queued int64
	for _, f := range ri.Files {
		if f.Retrying != nil && f.Retrying.Attempt > m.attempts[f.ID] {
			m.errors.WithLabelValues("transient").Add(float64(f.Retrying.Attempt - m.attempts[f.ID]))
			m.attempts[f.ID] = f.Retrying.Attempt
		}
		if f.State == string(delivery.Ready) || f.State == string(delivery.Uploading) {
			queued += max(f.Size-f.Done, 0)
		}
	}
	for _, s := range ri.Sequences {
		if s.State == string(delivery.Ready) || s.State == string(delivery.Uploading) {
			queued += max(s.Size-s.DeliveredSize-s.Done, 0)
		}
	}
	key := ri.ID
	if ri.Bin {
		key = "\x00bin"
	} else {
		m.states[key] = ri.State
	}
	m.queued[key] = queued
}

// viewCollector reports the series derived from the latest views at scrape time.
type viewCollector Metrics

// Describe is part of prometheus.Collector.
func (c *viewCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- requestsDesc
	ch <- queueDesc
}

// Collect is part of prometheus.Collector: the counts are taken at scrape time.
func (c *viewCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	count := map[string]int{}
	for _, s := range c.states {
		count[s]++
	}
	var q int64
	for _, b := range c.queued {
		q += b
	}
	c.mu.Unlock()
	for _, s := range allStates {
		ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.GaugeValue, float64(count[string(s)]), string(s))
	}
	ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(q))
}

// retain forgets the requests not in keep.
func (m *Metrics) retain(keep map[string]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id := range m.states {
		if !keep[id] {
			delete(m.states, id)
			delete(m.queued, id)
		}
	}
}
