package cache_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/cache"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/intel/inteltest"
	"github.com/misp-relay/misp-relay/internal/testkit"
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

// warnInstance is one relay instance's cache over the fleet's store, with MISP's warninglist
// check.
func warnInstance(store cache.Store, next *checkingMISP) (*cache.Cache, *cache.Shared) {
	sh := cache.NewShared(store, cache.SharedConfig{Log: slog.New(slog.DiscardHandler)})
	return cache.New(next, cache.Config{BaseURL: "https://misp.example", TTL: time.Hour, Shared: sh}), sh
}

// TestFleetSharesWarninglistChecks: a value one instance checked (on a list or not) is not
// checked again by another; another API key is another tenant.
func TestFleetSharesWarninglistChecks(t *testing.T) {
	next := &checkingMISP{}
	store := newMemStore()
	a, _ := warnInstance(store, next)
	b, bShared := warnInstance(store, next)
	ctx := context.Background()
	if _, err := a.CheckWarninglists(ctx, "key", []string{"8.8.8.8", "192.0.2.1"}); err != nil {
		t.Fatal(err)
	}
	got, err := b.CheckWarninglists(ctx, "key", []string{"192.0.2.1", "8.8.8.8", "203.0.113.5"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]intel.WarninglistHit{"8.8.8.8": dnsHit}, got); diff != "" {
		t.Errorf("b's check (-want +got):\n%s", diff)
	}
	if _, err := b.CheckWarninglists(ctx, "other key", []string{"8.8.8.8"}); err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"192.0.2.1", "8.8.8.8"}, {"203.0.113.5"}, {"8.8.8.8"}}
	if diff := cmp.Diff(want, next.asked); diff != "" {
		t.Errorf("values MISP was asked (-want +got):\n%s", diff)
	}
	if st := bShared.Stats(); st.Hits != 2 || st.Misses != 2 {
		t.Errorf("b's stats %+v, want 2 hits (a's values) and 2 misses", st)
	}
	for k, v := range store.entries() {
		for _, secret := range []string{"key", "8.8.8.8", "DNS", "misp.example"} {
			if strings.Contains(k, secret) || bytes.Contains(v, []byte(secret)) {
				t.Errorf("the store shows %q", secret)
			}
		}
	}
}

// TestWarninglistChecksWithoutTheStore: a store that fails costs nothing but the sharing.
func TestWarninglistChecksWithoutTheStore(t *testing.T) {
	next := &checkingMISP{}
	store := newMemStore()
	store.fail.Store(true)
	a, sh := warnInstance(store, next)
	got, err := a.CheckWarninglists(context.Background(), "key", []string{"8.8.8.8", "192.0.2.1"})
	if err != nil || len(got["8.8.8.8"]) != 1 {
		t.Fatalf("got %v, %v", got, err)
	}
	if st := sh.Stats(); st.Fallbacks != 2 || st.Errors != 1 || store.sets.Load() != 0 {
		t.Errorf("stats %+v and %d writes; want 2 fallbacks, 1 error (one read for both), no write", st, store.sets.Load())
	}
}

// TestWarninglistTTLIsFromMISPsAnswer: an instance that read a check from the store keeps it
// until TTL after MISP gave it, not TTL after reading it.
func TestWarninglistTTLIsFromMISPsAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		next := &checkingMISP{}
		store := newMemStore()
		a, _ := warnInstance(store, next)
		b, _ := warnInstance(store, next)
		ctx := context.Background()
		check := func(c *cache.Cache) {
			if _, err := c.CheckWarninglists(ctx, "key", []string{"8.8.8.8"}); err != nil {
				t.Fatal(err)
			}
		}
		check(a) // MISP answers at t0
		testkit.Advance(40 * time.Minute)
		check(b) // from the store
		testkit.Advance(19 * time.Minute)
		check(b) // b's own cache, t0+59m
		if n := next.calls.Load(); n != 1 {
			t.Fatalf("%d checks before the TTL, want 1", n)
		}
		testkit.Advance(2 * time.Minute)
		check(b) // t0+61m: expired everywhere
		if n := next.calls.Load(); n != 2 {
			t.Errorf("%d checks after the TTL, want 2", n)
		}
	})
}

// TestCachedWarninglists: the answer from memory is given only when every value's is held,
// without a call, and it is the answer CheckWarninglists gave.
func TestCachedWarninglists(t *testing.T) {
	m := &checkingMISP{}
	c := cache.New(m, cache.Config{BaseURL: "https://misp.example", TTL: time.Minute})
	ctx := context.Background()
	if _, ok := c.CachedWarninglists("k", []string{"8.8.8.8", "192.0.2.1"}); ok {
		t.Fatal("an answer from an empty cache")
	}
	want, err := c.CheckWarninglists(ctx, "k", []string{"8.8.8.8", "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	got, ok := c.CachedWarninglists("k", []string{"192.0.2.1", "8.8.8.8"})
	if !ok {
		t.Fatal("no answer from memory after a check")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answer from memory (-checked +cached):\n%s", diff)
	}
	if _, ok := c.CachedWarninglists("k", []string{"8.8.8.8", "198.51.100.1"}); ok {
		t.Error("an answer although one value was never checked")
	}
	if _, ok := c.CachedWarninglists("another key", []string{"8.8.8.8"}); ok {
		t.Error("an answer for another key: MISP answers each key apart")
	}
	if n := m.calls.Load(); n != 1 {
		t.Errorf("%d calls to MISP, want 1", n)
	}
}
