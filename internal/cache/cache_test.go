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
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/upstream"
)

// fakeMISP counts calls; a call blocks until release is closed when release is set.
type fakeMISP struct {
	searches, versions, sightings atomic.Int64
	release                       chan struct{}
	fail                          atomic.Bool
}

var errDown = &upstream.Error{Op: "search", Kind: upstream.ErrUnavailable}

func (f *fakeMISP) Search(ctx context.Context, key string, q intel.Query) ([]intel.Event, error) {
	f.searches.Add(1)
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.fail.Load() {
		return nil, errDown
	}
	return []intel.Event{{UUID: "a-" + key + "-" + q.Value, ThreatLevel: 3}, {UUID: "b", ThreatLevel: 1}}, nil
}

func (f *fakeMISP) Ping(context.Context, string) error {
	f.versions.Add(1)
	if f.fail.Load() {
		return errDown
	}
	return nil
}

func (f *fakeMISP) Writable() bool { return true }

func (f *fakeMISP) AddSighting(context.Context, string, string, intel.SightingType, string) error {
	f.sightings.Add(1)
	return nil
}

var q = intel.Query{Value: "198.51.100.7", Types: []string{"ip-src", "ip-dst"}, Limit: 100}

func TestSearchIsCachedPerTenantAndQuery(t *testing.T) {
	f := &fakeMISP{}
	c := cache.New(f, cache.Config{BaseURL: "https://misp.example", TTL: time.Minute, Size: 100})
	ctx := context.Background()
	lookups := []struct {
		key  string
		q    intel.Query
		want int64 // upstream calls so far
	}{
		{"key-1", q, 1},
		{"key-1", q, 1}, // hit
		{"key-2", q, 2}, // another tenant never sees key-1's answer
		{"key-1", intel.Query{Value: q.Value, Types: q.Types, Limit: 1}, 3},
		{"key-1", intel.Query{Value: q.Value, Types: []string{"domain"}, Limit: 100}, 4},
		{"key-1", intel.Query{Value: "192.0.2.1", Types: q.Types, Limit: 100}, 5},
		{"key-2", q, 5}, // hit
	}
	for i, l := range lookups {
		events, err := c.Search(ctx, l.key, l.q)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.searches.Load(); got != l.want {
			t.Errorf("lookup %d: %d upstream calls, want %d", i, got, l.want)
		}
		if events[0].UUID != "a-"+l.key+"-"+l.q.Value {
			t.Errorf("lookup %d got another tenant's or query's answer: %v", i, events[0].UUID)
		}
	}
	if diff := cmp.Diff(cache.Stats{Hits: 2, Misses: 5}, c.Stats()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestCallersMayReorderTheirEvents(t *testing.T) {
	c := cache.New(&fakeMISP{}, cache.Config{TTL: time.Minute})
	first, _ := c.Search(context.Background(), "k", q)
	slices.Reverse(first)
	second, _ := c.Search(context.Background(), "k", q)
	if second[0].UUID != "a-k-198.51.100.7" {
		t.Errorf("a caller's reordering leaked into the cache: %v", second)
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	f := &fakeMISP{}
	f.fail.Store(true)
	c := cache.New(f, cache.Config{TTL: time.Minute})
	if _, err := c.Search(context.Background(), "k", q); !errors.Is(err, misp.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	f.fail.Store(false)
	if _, err := c.Search(context.Background(), "k", q); err != nil {
		t.Fatal(err)
	}
	if n := f.searches.Load(); n != 2 {
		t.Errorf("%d upstream calls, want 2 (the failure must not be reused)", n)
	}
}

func TestTTLAndSize(t *testing.T) {
	f := &fakeMISP{}
	c := cache.New(f, cache.Config{TTL: 50 * time.Millisecond, Size: 2})
	ctx := context.Background()
	search := func(v string) {
		if _, err := c.Search(ctx, "k", intel.Query{Value: v, Limit: 1}); err != nil {
			t.Fatal(err)
		}
	}
	search("a")
	search("b")
	search("c") // evicts a (size 2)
	search("a")
	if n := f.searches.Load(); n != 4 {
		t.Errorf("%d calls after eviction, want 4", n)
	}
	time.Sleep(120 * time.Millisecond) // past the TTL
	search("a")
	if n := f.searches.Load(); n != 5 {
		t.Errorf("%d calls after expiry, want 5", n)
	}
}

func TestTTLZeroDisablesCaching(t *testing.T) {
	f := &fakeMISP{}
	c := cache.New(f, cache.Config{TTL: 0})
	for range 3 {
		if _, err := c.Search(context.Background(), "k", q); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.searches.Load(); n != 3 {
		t.Errorf("%d calls with caching off, want 3", n)
	}
}

func TestConcurrentIdenticalLookupsShareOneCall(t *testing.T) {
	f := &fakeMISP{release: make(chan struct{})}
	c := cache.New(f, cache.Config{TTL: 0}) // sharing works without caching too
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			events, err := c.Search(context.Background(), "k", q)
			if err == nil && len(events) != 2 {
				err = errors.New("wrong answer")
			}
			errs <- err
		})
	}
	// Let every goroutine reach the shared call before MISP answers.
	for f.searches.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(f.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.searches.Load(); n != 1 {
		t.Errorf("%d upstream calls for 50 concurrent identical lookups, want 1", n)
	}
}

func TestCancelledCallerDoesNotFailOthers(t *testing.T) {
	f := &fakeMISP{release: make(chan struct{})}
	c := cache.New(f, cache.Config{TTL: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := c.Search(ctx, "k", q)
		first <- err
	}()
	for f.searches.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	second := make(chan error, 1)
	go func() {
		_, err := c.Search(context.Background(), "k", q)
		second <- err
	}()
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("first caller: %v, want context.Canceled", err)
	}
	close(f.release)
	if err := <-second; err != nil {
		t.Errorf("second caller failed because the first gave up: %v", err)
	}
}

func TestVersionCachedBriefly(t *testing.T) {
	f := &fakeMISP{}
	c := cache.New(f, cache.Config{HealthTTL: 50 * time.Millisecond})
	ctx := context.Background()
	for range 3 {
		if err := c.Ping(ctx, "k"); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Ping(ctx, "other-key"); err != nil {
		t.Fatal(err)
	}
	if n := f.versions.Load(); n != 2 {
		t.Errorf("%d version calls, want 2 (one per key)", n)
	}
	time.Sleep(120 * time.Millisecond)
	f.fail.Store(true)
	if err := c.Ping(ctx, "k"); err == nil {
		t.Error("an expired check was reused")
	}
	if err := c.Ping(ctx, "k"); err == nil {
		t.Error("a failed check was cached")
	}
	if n := f.versions.Load(); n != 4 {
		t.Errorf("%d version calls, want 4", n)
	}
}

func TestSightingsPassThrough(t *testing.T) {
	f := &fakeMISP{}
	c := cache.New(f, cache.Config{TTL: time.Minute})
	for range 2 {
		if err := c.AddSighting(context.Background(), "k", "v", intel.Sighting, "XDR"); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.sightings.Load(); n != 2 {
		t.Errorf("%d sightings reached MISP, want 2", n)
	}
}
