package metrics_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/metrics"
)

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	return string(body)
}

func TestMetrics(t *testing.T) {
	m := metrics.New([]string{"/observe/observables", "/health"})
	m.ObserveRequest("/observe/observables", "ok", 20*time.Millisecond)
	m.ObserveRequest("/observe/observables", "service unavailable", time.Second)
	m.ObserveRequest("/wp-admin/../../etc/passwd", "404", time.Millisecond)
	m.UpstreamObserver("misp.example:443")("search", 200, 30*time.Millisecond)
	m.UpstreamObserver("misp.example:443")("search", 0, 5*time.Second)
	m.WatchCache(func() (int64, int64) { return 8, 2 })
	state := "open"
	m.WatchBreaker("misp.example:443", func() string { return state })

	out := scrape(t, m)
	for _, want := range []string{
		`relay_requests_total{outcome="ok",path="/observe/observables"} 1`,
		`relay_requests_total{outcome="service unavailable",path="/observe/observables"} 1`,
		`relay_requests_total{outcome="404",path="other"} 1`,
		`relay_request_duration_seconds_count{path="/observe/observables"} 2`,
		`relay_upstream_requests_total{host="misp.example:443",op="search",status="200"} 1`,
		`relay_upstream_requests_total{host="misp.example:443",op="search",status="0"} 1`,
		`relay_upstream_duration_seconds_count{host="misp.example:443",op="search"} 2`,
		`relay_cache_hits_total 8`,
		`relay_cache_misses_total 2`,
		`relay_breaker_state{host="misp.example:443"} 2`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if strings.Contains(out, "passwd") {
		t.Error("an unknown path became a label value")
	}
	state = "closed"
	if out := scrape(t, m); !strings.Contains(out, `relay_breaker_state{host="misp.example:443"} 0`) {
		t.Error("breaker gauge did not follow the state")
	}
}

func TestSharedCacheMetrics(t *testing.T) {
	m := metrics.New(nil)
	st := metrics.SharedCacheStats{Hits: 7, Misses: 3, Errors: 2, Fallbacks: 5, Skipped: 1, Waits: 4}
	state := "half-open"
	m.WatchSharedCache(func() metrics.SharedCacheStats { return st }, func() string { return state })
	out := scrape(t, m)
	for _, want := range []string{
		"relay_redis_hits_total 7", "relay_redis_misses_total 3", "relay_redis_errors_total 2",
		"relay_redis_fallbacks_total 5", "relay_redis_skipped_total 1", "relay_redis_waits_total 4",
		"relay_redis_breaker_state 1",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("scrape lacks %q", want)
		}
	}
	st.Hits, state = 8, "open"
	if out := scrape(t, m); !strings.Contains(out, "relay_redis_hits_total 8\n") || !strings.Contains(out, "relay_redis_breaker_state 2\n") {
		t.Error("the metrics did not follow the counters")
	}
}
