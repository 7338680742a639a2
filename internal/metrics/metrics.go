// Package metrics exposes the relay's Prometheus metrics on their own registry (served on a
// separate listener, METRICS_ADDR), so operators see traffic, outcomes, MISP latency and
// errors, cache efficiency and the circuit breaker without reading logs. It only counts: it
// must not decide anything, and its label values are bounded (unknown paths are "other").
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the collectors. Safe for concurrent use.
type Metrics struct {
	reg              *prometheus.Registry
	requests         *prometheus.CounterVec
	requestDuration  *prometheus.HistogramVec
	upstream         *prometheus.CounterVec
	upstreamDuration *prometheus.HistogramVec
	knownPaths       map[string]bool

	mu       sync.Mutex
	breakers map[string]prometheus.Collector // by host, for ForgetHost
}

// New registers every collector, the Go runtime's and the process's included. paths are the
// relay's API paths (httpapi.Routes, from the spec); any other path is counted as "other", so
// that scanners probing random URLs cannot grow the label set without bound.
func New(paths []string) *Metrics {
	known := make(map[string]bool, len(paths))
	for _, p := range paths {
		known[p] = true
	}
	m := &Metrics{
		knownPaths: known,
		reg:        prometheus.NewRegistry(),
		breakers:   map[string]prometheus.Collector{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_requests_total",
			Help: "Requests answered, by path and outcome (ok or the error code of the envelope).",
		}, []string{"path", "outcome"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "relay_request_duration_seconds",
			Help:    "Time to answer a request, by path.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 25},
		}, []string{"path"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_upstream_requests_total",
			Help: "HTTP calls to MISP, by MISP host, operation and status (0: no answer).",
		}, []string{"host", "op", "status"}),
		upstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "relay_upstream_duration_seconds",
			Help:    "Time until MISP answered (headers), by MISP host and operation.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 25},
		}, []string{"host", "op"}),
	}
	m.reg.MustRegister(m.requests, m.requestDuration, m.upstream, m.upstreamDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveRequest records one answered request.
func (m *Metrics) ObserveRequest(path, outcome string, d time.Duration) {
	if !m.knownPaths[path] {
		path = "other"
	}
	m.requests.WithLabelValues(path, outcome).Inc()
	m.requestDuration.WithLabelValues(path).Observe(d.Seconds())
}

// UpstreamObserver returns the hook a MISP client calls after each HTTP call to host.
func (m *Metrics) UpstreamObserver(host string) func(op string, status int, d time.Duration) {
	return func(op string, status int, d time.Duration) {
		m.upstream.WithLabelValues(host, op, strconv.Itoa(status)).Inc()
		m.upstreamDuration.WithLabelValues(host, op).Observe(d.Seconds())
	}
}

// WatchCache exports the cache's hit and miss counters, read when scraped.
func (m *Metrics) WatchCache(stats func() (hits, misses int64)) {
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "relay_cache_hits_total", Help: "MISP lookups answered from the cache.",
		}, func() float64 { h, _ := stats(); return float64(h) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "relay_cache_misses_total", Help: "MISP lookups the in-process cache did not answer (they went to the shared cache, if any, or to MISP).",
		}, func() float64 { _, mi := stats(); return float64(mi) }))
}

// SharedCacheStats are the counters of the shared (Redis/Valkey) cache.
type SharedCacheStats struct {
	Hits, Misses, Errors, Fallbacks, Skipped, Waits int64
}

// WatchSharedCache exports the shared cache's counters and its breaker's state ("closed",
// "half-open" or "open"), read when scraped.
func (m *Metrics) WatchSharedCache(stats func() SharedCacheStats, breaker func() string) {
	counter := func(name, help string, get func(SharedCacheStats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(get(stats())) })
	}
	m.reg.MustRegister(
		counter("relay_redis_hits_total", "Lookups (searches, and values of warninglist checks) answered by the shared cache: another instance asked MISP.",
			func(s SharedCacheStats) int64 { return s.Hits }),
		counter("relay_redis_misses_total", "Lookups (searches, and values of warninglist checks) the shared cache had no usable answer for (absent, expired, oversized or not opening).",
			func(s SharedCacheStats) int64 { return s.Misses }),
		counter("relay_redis_errors_total", "Failed shared cache operations (timeouts, refused connections, error replies).",
			func(s SharedCacheStats) int64 { return s.Errors }),
		counter("relay_redis_fallbacks_total", "Lookups that went to MISP without the shared cache: its breaker was open or reading it failed.",
			func(s SharedCacheStats) int64 { return s.Fallbacks }),
		counter("relay_redis_skipped_total", "Answers not stored in the shared cache because they were over its size bound.",
			func(s SharedCacheStats) int64 { return s.Skipped }),
		counter("relay_redis_waits_total", "Lookups answered by the shared cache after waiting for another instance's MISP call.",
			func(s SharedCacheStats) int64 { return s.Waits }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "relay_redis_breaker_state",
			Help: "Circuit breaker towards the shared cache: 0 closed, 1 half-open (probing), 2 open (not used).",
		}, func() float64 { return breakerValue(breaker()) }))
}

// WatchBreaker exports the state of host's circuit breaker: 0 closed, 1 half-open, 2 open.
func (m *Metrics) WatchBreaker(host string, state func() string) {
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "relay_breaker_state",
		Help:        "Circuit breaker towards MISP: 0 closed, 1 half-open (probing), 2 open (failing fast).",
		ConstLabels: prometheus.Labels{"host": host},
	}, func() float64 { return breakerValue(state()) })
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.breakers[host]; ok {
		m.reg.Unregister(old)
	}
	m.breakers[host] = g
	m.reg.MustRegister(g)
}

// ForgetHost drops host's series (its calls, their durations, its breaker): the relay
// evicted that MISP from its pool, and series of every host ever seen would grow without
// bound. Its counters start again from zero if it comes back, which Prometheus reads as a
// counter reset.
func (m *Metrics) ForgetHost(host string) {
	m.upstream.DeletePartialMatch(prometheus.Labels{"host": host})
	m.upstreamDuration.DeletePartialMatch(prometheus.Labels{"host": host})
	m.mu.Lock()
	defer m.mu.Unlock()
	if g, ok := m.breakers[host]; ok {
		m.reg.Unregister(g)
		delete(m.breakers, host)
	}
}

// breakerValue is a breaker state as a gauge value.
func breakerValue(state string) float64 {
	switch state {
	case "open":
		return 2
	case "half-open":
		return 1
	}
	return 0
}
