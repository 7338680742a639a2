package misp_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/reqlog"
)

const emptyAnswer = `{"response":{"Attribute":[]}}`

var q1 = intel.Query{Value: "198.51.100.7", Types: []string{"ip-dst"}, Limit: 10}

// sequence answers the given statuses in turn (then 200 with no match), counting calls.
type sequence struct {
	mu       sync.Mutex
	statuses []int
	header   http.Header
	calls    atomic.Int64
}

func (s *sequence) handler(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	s.mu.Lock()
	status := http.StatusOK
	if len(s.statuses) > 0 {
		status, s.statuses = s.statuses[0], s.statuses[1:]
	}
	s.mu.Unlock()
	for k, v := range s.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if status == http.StatusOK {
		_, _ = w.Write([]byte(emptyAnswer))
		return
	}
	_, _ = w.Write([]byte(`{"name":"x","message":"x","url":"/attributes/restSearch"}`))
}

func TestLookupsRetryOnce(t *testing.T) {
	tests := []struct {
		name      string
		statuses  []int
		header    http.Header
		wantCalls int64
		wantKind  error // nil: success
	}{
		{"503 then ok", []int{503}, nil, 2, nil},
		{"502 twice", []int{502, 502}, nil, 2, misp.ErrUnavailable},
		{"429 with a short reset", []int{429}, http.Header{"X-Rate-Limit-Reset": {"0"}}, 2, nil},
		{"429 with a long reset", []int{429}, http.Header{"X-Rate-Limit-Reset": {"900"}}, 1, misp.ErrRateLimited},
		{"500 is not retried", []int{500}, nil, 1, misp.ErrServer},
		{"403 is not retried", []int{403}, nil, 1, misp.ErrPermission},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq := &sequence{statuses: tt.statuses, header: tt.header}
			srv := newServer(t, seq.handler)
			c := newClient(t, srv.URL)
			_, err := c.Search(context.Background(), testKey, q1)
			if tt.wantKind == nil && err != nil {
				t.Fatalf("Search: %v", err)
			}
			if tt.wantKind != nil && !errors.Is(err, tt.wantKind) {
				t.Fatalf("err = %v, want %v", err, tt.wantKind)
			}
			if got := seq.calls.Load(); got != tt.wantCalls {
				t.Errorf("%d calls, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestSightingsAreNeverRetried(t *testing.T) {
	seq := &sequence{statuses: []int{503, 503}}
	srv := newServer(t, seq.handler)
	c := newClient(t, srv.URL)
	if err := c.AddSighting(context.Background(), testKey, "198.51.100.7", intel.Sighting, "XDR"); !errors.Is(err, misp.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if n := seq.calls.Load(); n != 1 {
		t.Errorf("%d sighting calls, want 1", n)
	}
}

func TestCircuitBreaker(t *testing.T) {
	seq := &sequence{statuses: []int{503, 503, 503, 503}}
	srv := newServer(t, seq.handler)
	c := newClient(t, srv.URL, func(cfg *misp.Config) {
		cfg.BreakerFailures = 4
		cfg.BreakerCooldown = 200 * time.Millisecond
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
	if n := seq.calls.Load(); n != 4 {
		t.Errorf("%d calls, want 4: an open breaker must not call MISP", n)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("failing fast took %v", d)
	}
	time.Sleep(250 * time.Millisecond) // the cool-down; MISP is back (the sequence is used up)
	if _, err := c.Search(ctx, testKey, q1); err != nil {
		t.Fatalf("after the cool-down: %v", err)
	}
	if s := c.BreakerState(); s != "closed" {
		t.Errorf("breaker %s after a success, want closed", s)
	}
}

func TestClientErrorsDoNotOpenTheBreaker(t *testing.T) {
	seq := &sequence{statuses: []int{403, 403, 403, 403, 403, 403}}
	srv := newServer(t, seq.handler)
	c := newClient(t, srv.URL, func(cfg *misp.Config) { cfg.BreakerFailures = 2 })
	for range 6 {
		_, _ = c.Search(context.Background(), testKey, q1)
	}
	if s := c.BreakerState(); s != "closed" {
		t.Errorf("breaker %s after 403s: MISP is up, the key is wrong", s)
	}
}

func TestConcurrencyIsBoundedPerMISP(t *testing.T) {
	var inFlight, peak atomic.Int64
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		inFlight.Add(-1)
		_, _ = w.Write([]byte(emptyAnswer))
	})
	c := newClient(t, srv.URL, func(cfg *misp.Config) { cfg.MaxConcurrent = 3 })
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			if _, err := c.Search(context.Background(), testKey, q1); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > 3 || p < 2 {
		t.Errorf("peak of %d calls in flight, want at most 3 (and concurrency to happen)", p)
	}
}

func TestCallsAreCounted(t *testing.T) {
	seq := &sequence{statuses: []int{503}}
	srv := newServer(t, seq.handler)
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
	seq := &sequence{statuses: []int{502, 502}}
	srv := newServer(t, seq.handler)
	c := newClient(t, srv.URL)
	if _, err := c.Version(context.Background(), testKey); !errors.Is(err, misp.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if n := seq.calls.Load(); n != 1 {
		t.Errorf("a version check made %d calls, want 1", n)
	}
}

func TestHideAnswers(t *testing.T) {
	srv := newServer(t, answer(http.StatusForbidden, "application/json",
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
	srv := newServer(t, answer(http.StatusOK, "application/json", `{"response":{"Attribute":[
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
