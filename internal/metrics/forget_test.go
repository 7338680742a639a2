package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/metrics"
)

// TestForgetHost: an evicted MISP's series go away, and it can be watched again.
func TestForgetHost(t *testing.T) {
	m := metrics.New(nil)
	for _, h := range []string{"https://a.example", "https://b.example"} {
		m.UpstreamObserver(h)("search", 200, time.Millisecond)
		m.WatchBreaker(h, func() string { return "closed" })
	}
	m.ForgetHost("https://a.example")
	out := scrape(t, m)
	if strings.Contains(out, `host="https://a.example"`) {
		t.Errorf("the forgotten host's series remain:\n%s", out)
	}
	if !strings.Contains(out, `relay_breaker_state{host="https://b.example"}`) || !strings.Contains(out, `relay_upstream_requests_total{host="https://b.example"`) {
		t.Errorf("the other host's series are gone:\n%s", out)
	}
	m.WatchBreaker("https://a.example", func() string { return "open" })
	if out := scrape(t, m); !strings.Contains(out, `relay_breaker_state{host="https://a.example"} 2`) {
		t.Errorf("a host watched again is not exported:\n%s", out)
	}
}
