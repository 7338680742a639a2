package misp_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/reqlog"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

var q1 = intel.Query{Value: "198.51.100.7", Types: []string{"ip-dst"}, Limit: 10}

// failing is MISP's JSON error for each status, one per call.
func failing(statuses ...int) []misptest.Answer {
	var out []misptest.Answer
	for _, s := range statuses {
		out = append(out, misptest.Error(s, http.StatusText(s)))
	}
	return out
}

func TestLookupsRetryOnce(t *testing.T) {
	tests := []struct {
		name      string
		answers   []misptest.Answer // then the fake's own answer: no match
		wantCalls int
		wantKind  error // nil: success
	}{
		{"503 then ok", failing(503), 2, nil},
		{"502 twice", failing(502, 502), 2, misp.ErrUnavailable},
		{"429 with a short reset", []misptest.Answer{misptest.RateLimited(0)}, 2, nil},
		{"429 with a long reset", []misptest.Answer{misptest.RateLimited(900)}, 1, misp.ErrRateLimited},
		{"500 is not retried", failing(500), 1, misp.ErrServer},
		{"403 is not retried", failing(403), 1, misp.ErrPermission},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := misptest.New(t, testKey)
			srv.Script("/attributes/restSearch", tt.answers...)
			c := newClient(t, srv.URL)
			_, err := c.Search(context.Background(), testKey, q1)
			if tt.wantKind == nil && err != nil {
				t.Fatalf("Search: %v", err)
			}
			if tt.wantKind != nil && !errors.Is(err, tt.wantKind) {
				t.Fatalf("err = %v, want %v", err, tt.wantKind)
			}
			if got := len(srv.Requests()); got != tt.wantCalls {
				t.Errorf("%d calls, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestSightingsAreNeverRetried(t *testing.T) {
	srv := misptest.New(t, testKey)
	srv.Script("/sightings/add", failing(503, 503)...)
	c := newClient(t, srv.URL)
	if err := c.AddSighting(context.Background(), testKey, "198.51.100.7", intel.Sighting, "XDR"); !errors.Is(err, misp.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("%d sighting calls, want 1", n)
	}
}

// TestCircuitBreaker runs in a synctest bubble, the client calling the fake MISP through an
// in-memory transport: the retry pauses and the breaker's cool-down pass on the bubble's fake
// clock, at once and exactly.
func TestCircuitBreaker(t *testing.T) {
	srv := misptest.New(t, testKey) // outside the bubble: it listens on a real socket
	srv.Script("/attributes/restSearch", failing(503, 503, 503, 503)...)
	synctest.Test(t, func(t *testing.T) {
		c := newClient(t, "http://misp.test", func(cfg *misp.Config) {
			cfg.BreakerFailures = 4
			cfg.BreakerCooldown = 200 * time.Millisecond
			cfg.Transport = testkit.HandlerTransport(srv)
		})
		ctx := context.Background()
		for range 2 { // two lookups, each one call plus one retry: four failures
			if _, err := c.Search(ctx, testKey, q1); !errors.Is(err, misp.ErrUnavailable) {
				t.Fatalf("err = %v", err)
			}
		}
		if s := c.BreakerState(); s != "open" {
			t.Fatalf("breaker %s after 4 failures, want open", s)
		}
		start := time.Now()
		_, err := c.Search(ctx, testKey, q1)
		var e *misp.Error
		if !errors.As(err, &e) || !errors.Is(err, misp.ErrUnavailable) || e.Status != 0 {
			t.Fatalf("open breaker: err = %v", err)
		}
		if n := len(srv.Requests()); n != 4 {
			t.Errorf("%d calls, want 4: an open breaker must not call MISP", n)
		}
		// On the fake clock any pause would show: failing fast takes no time at all.
		if d := time.Since(start); d != 0 {
			t.Errorf("failing fast took %v", d)
		}
		testkit.Advance(150 * time.Millisecond)
		if s := c.BreakerState(); s != "open" {
			t.Errorf("breaker %s before the end of its cool-down, want open", s)
		}
		testkit.Advance(100 * time.Millisecond) // past the cool-down; MISP is back (the script is used up)
		if _, err := c.Search(ctx, testKey, q1); err != nil {
			t.Fatalf("after the cool-down: %v", err)
		}
		if s := c.BreakerState(); s != "closed" {
			t.Errorf("breaker %s after a success, want closed", s)
		}
	})
}

func TestClientErrorsDoNotOpenTheBreaker(t *testing.T) {
	srv := misptest.New(t, testKey)
	srv.Script("/attributes/restSearch", failing(403, 403, 403, 403, 403, 403)...)
	c := newClient(t, srv.URL, func(cfg *misp.Config) { cfg.BreakerFailures = 2 })
	for range 6 {
		_, _ = c.Search(context.Background(), testKey, q1)
	}
	if s := c.BreakerState(); s != "closed" {
		t.Errorf("breaker %s after 403s: MISP is up, the key is wrong", s)
	}
}

// TestConcurrencyIsBoundedPerMISP holds MISP's answers until three calls are in flight, the
// bound, then lets them all through: the fake's peak of concurrent requests shows whether a
// fourth got in.
func TestConcurrencyIsBoundedPerMISP(t *testing.T) {
	srv := misptest.New(t, testKey)
	gate := make(chan struct{})
	srv.Always("/attributes/restSearch", misptest.Answer{Wait: gate})
	c := newClient(t, srv.URL, func(cfg *misp.Config) { cfg.MaxConcurrent = 3 })
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			if _, err := c.Search(context.Background(), testKey, q1); err != nil {
				t.Error(err)
			}
		})
	}
	if err := srv.WaitRequests(testkit.Context(t), "/attributes/restSearch", 3); err != nil {
		t.Fatal(err)
	}
	close(gate)
	wg.Wait()
	if p := srv.MaxInFlight(); p > 3 || p < 2 {
		t.Errorf("peak of %d calls in flight, want at most 3 (and concurrency to happen)", p)
	}
	if n := len(srv.Requests()); n != 12 {
		t.Errorf("%d calls, want 12", n)
	}
}

func TestCallsAreCounted(t *testing.T) {
	srv := misptest.New(t, testKey)
	srv.Script("/attributes/restSearch", failing(503)...)
	var observed []int
	var mu sync.Mutex
	c := newClient(t, srv.URL, func(cfg *misp.Config) {
		cfg.OnCall = func(op string, status int, _ time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			observed = append(observed, status)
		}
	})
	ctx, counters := reqlog.New(context.Background())
	if _, err := c.Search(ctx, testKey, q1); err != nil {
		t.Fatal(err)
	}
	if n := counters.Upstream(); n != 2 {
		t.Errorf("request counted %d upstream calls, want 2 (one retry)", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(observed) != 2 || observed[0] != 503 || observed[1] != 200 {
		t.Errorf("OnCall saw %v, want [503 200]", observed)
	}
}

func TestVersionIsOneCall(t *testing.T) {
	srv := misptest.New(t, testKey)
	srv.Script("/servers/getVersion", failing(502, 502)...)
	c := newClient(t, srv.URL)
	if _, err := c.Version(context.Background(), testKey); !errors.Is(err, misp.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("a version check made %d calls, want 1", n)
	}
}

func TestHideAnswers(t *testing.T) {
	srv := answering(t, misptest.Raw(http.StatusForbidden, "application/json",
		`{"name":"internal admin page: db password is hunter2","message":"internal admin page: db password is hunter2"}`))
	for _, hide := range []bool{false, true} {
		c := newClient(t, srv.URL, func(cfg *misp.Config) { cfg.HideAnswers = hide })
		_, err := c.Search(context.Background(), testKey, q1)
		if !errors.Is(err, misp.ErrPermission) {
			t.Fatalf("err = %v", err)
		}
		if leaked := strings.Contains(err.Error(), "hunter2"); leaked == hide {
			t.Errorf("HideAnswers=%v: error %q", hide, err)
		}
		if !strings.Contains(err.Error(), "403") {
			t.Errorf("the status is gone from %q", err)
		}
	}
}

func TestEventsWithoutAUsableUUIDAreSkipped(t *testing.T) {
	long := strings.Repeat("a", 5000)
	srv := answering(t, misptest.Raw(http.StatusOK, "application/json", `{"response":{"Attribute":[
	 {"type":"ip-dst","value":"198.51.100.7","Event":{"uuid":"`+long+`","threat_level_id":"1"}},
	 {"type":"ip-dst","value":"198.51.100.7","Event":{"uuid":"has space","threat_level_id":"1"}},
	 {"type":"ip-dst","value":"198.51.100.7","Event":{"uuid":"542e4c9c-cadc-4f8f-bb11-6d13950d210b","threat_level_id":"1"}}]}}`))
	events, err := newClient(t, srv.URL).Search(context.Background(), testKey, q1)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].UUID != "542e4c9c-cadc-4f8f-bb11-6d13950d210b" {
		t.Errorf("events = %+v, want only the one with a real UUID", events)
	}
}
