package cache_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/cache"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/intel/inteltest"
	"github.com/misp-relay/misp-relay/internal/upstream"
)

// checkingMISP is a backend with MISP's warninglist check: 8.8.8.8 is on a list.
type checkingMISP struct {
	inteltest.Backend
	calls   atomic.Int64
	mu      sync.Mutex
	asked   [][]string
	fail    atomic.Bool
	release chan struct{} // when set, a call waits for it to close
	started chan struct{} // when set, a call sends on it first
}

var dnsHit = []intel.WarninglistHit{{List: "List of known IPv4 public DNS resolvers", Match: "8.8.8.8/32"}}

func (m *checkingMISP) CheckWarninglists(ctx context.Context, _ string, values []string) (map[string][]intel.WarninglistHit, error) {
	m.calls.Add(1)
	m.mu.Lock()
	m.asked = append(m.asked, slices.Clone(values))
	m.mu.Unlock()
	if m.started != nil {
		m.started <- struct{}{}
	}
	if m.release != nil {
		<-m.release
	}
	if m.fail.Load() {
		return nil, &upstream.Error{Op: "warninglist check", Kind: upstream.ErrNotFound}
	}
	out := map[string][]intel.WarninglistHit{}
	for _, v := range values {
		if v == "8.8.8.8" {
			out[v] = dnsHit
		}
	}
	return out, nil
}

func TestCheckWarninglistsCached(t *testing.T) {
	next := &checkingMISP{}
	c := cache.New(next, cache.Config{BaseURL: "https://misp.example", TTL: time.Minute})
	ctx := context.Background()
	got, err := c.CheckWarninglists(ctx, "key", []string{"8.8.8.8", "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]intel.WarninglistHit{"8.8.8.8": dnsHit}, got); diff != "" {
		t.Errorf("first check (-want +got):\n%s", diff)
	}
	// Both values are cached, hit or not: only the new one is asked about.
	got, err = c.CheckWarninglists(ctx, "key", []string{"192.0.2.1", "8.8.8.8", "198.51.100.9", "198.51.100.9"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]intel.WarninglistHit{"8.8.8.8": dnsHit}, got); diff != "" {
		t.Errorf("second check (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]string{{"192.0.2.1", "8.8.8.8"}, {"198.51.100.9"}}, next.asked); diff != "" {
		t.Errorf("values asked (-want +got):\n%s", diff)
	}
	// Everything cached: no call at all.
	if _, err := c.CheckWarninglists(ctx, "key", []string{"8.8.8.8"}); err != nil || next.calls.Load() != 2 {
		t.Errorf("calls = %d, err %v", next.calls.Load(), err)
	}
	// Another key is another tenant: asked again.
	if _, err := c.CheckWarninglists(ctx, "other", []string{"8.8.8.8"}); err != nil || next.calls.Load() != 3 {
		t.Errorf("calls = %d for another key, err %v", next.calls.Load(), err)
	}
}

func TestCheckWarninglistsErrorsNotCached(t *testing.T) {
	next := &checkingMISP{}
	next.fail.Store(true)
	c := cache.New(next, cache.Config{TTL: time.Minute})
	if _, err := c.CheckWarninglists(context.Background(), "key", []string{"8.8.8.8"}); err == nil {
		t.Fatal("no error")
	}
	next.fail.Store(false)
	got, err := c.CheckWarninglists(context.Background(), "key", []string{"8.8.8.8"})
	if err != nil || len(got["8.8.8.8"]) != 1 || next.calls.Load() != 2 {
		t.Errorf("after a failure: %v, %v, %d calls", got, err, next.calls.Load())
	}
}

func TestCheckWarninglistsWithoutCapability(t *testing.T) {
	c := cache.New(&inteltest.Backend{}, cache.Config{TTL: time.Minute})
	got, err := c.CheckWarninglists(context.Background(), "key", []string{"8.8.8.8"})
	if err != nil || got != nil {
		t.Errorf("got %v, %v; want nothing from a backend without warninglists", got, err)
	}
}

func TestCheckWarninglistsCallerGivesUp(t *testing.T) {
	next := &checkingMISP{release: make(chan struct{}), started: make(chan struct{}, 1)}
	c := cache.New(next, cache.Config{TTL: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.CheckWarninglists(ctx, "key", []string{"8.8.8.8"})
		done <- err
	}()
	<-next.started // the call to MISP is in flight
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
	// The call itself was not cancelled: its answer is kept for the next caller.
	close(next.release)
	got, err := c.CheckWarninglists(context.Background(), "key", []string{"8.8.8.8"})
	if err != nil || len(got["8.8.8.8"]) != 1 {
		t.Errorf("after the first caller gave up: %v, %v", got, err)
	}
	if n := next.calls.Load(); n != 1 {
		t.Errorf("%d calls", n)
	}
}
