package cache_test

import (
	"context"
	"errors"
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
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/testkit"
	"github.com/misp-relay/misp-relay/internal/upstream"
)

// calls counts what reached the backend behind the cache.
type calls struct {
	searches, versions, sightings atomic.Int64
	fail                          atomic.Bool // every call fails while set

	mu      sync.Mutex
	release chan struct{} // when set, searches wait until it is closed
}

// hold makes searches wait until the channel it returns is closed. In a synctest bubble,
// waiting on it is durably blocking.
func (c *calls) hold() chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.release = make(chan struct{})
	return c.release
}

var errDown = &upstream.Error{Op: "search", Kind: upstream.ErrUnavailable}

// backend is a MISP behind the cache, counting its calls in c. Searches wait for c's release
// (see hold); they answer two events, the first naming the key and the value.
func backend(c *calls) *inteltest.Backend {
	return &inteltest.Backend{
		SearchFn: func(ctx context.Context, key string, q intel.Query) ([]intel.Event, error) {
			c.searches.Add(1)
			c.mu.Lock()
			release := c.release
			c.mu.Unlock()
			if release != nil {
				select {
				case <-release:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			if c.fail.Load() {
				return nil, errDown
			}
			return []intel.Event{{UUID: "a-" + key + "-" + q.Value + withHits(q), ThreatLevel: 3}, {UUID: "b", ThreatLevel: 1}}, nil
		},
		PingFn: func(context.Context, string) error {
			c.versions.Add(1)
			if c.fail.Load() {
				return errDown
			}
			return nil
		},
		AddSightingFn: func(context.Context, string, string, intel.SightingType, string) error {
			c.sightings.Add(1)
			return nil
		},
	}
}

// withHits marks the answer to a query with Warnings: "+hits".
func withHits(q intel.Query) string {
	if q.Warnings {
		return "+hits"
	}
	return ""
}

// newCache makes a cache in front of a counting backend. The cache starts no goroutine, so
// tests on synctest's fake clock make it inside their bubble, where its TTLs run on that clock.
func newCache(cfg cache.Config) (*cache.Cache, *calls) {
	c := &calls{}
	return cache.New(backend(c), cfg), c
}

var q = intel.Query{Value: "198.51.100.7", Types: []string{"ip-src", "ip-dst"}, Limit: 100}

func TestSearchIsCachedPerTenantAndQuery(t *testing.T) {
	c, f := newCache(cache.Config{BaseURL: "https://misp.example", TTL: time.Minute, Size: 100})
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
		// An answer without MISP's warninglist hits never stands in for one with them, nor
		// the reverse.
		{"key-1", intel.Query{Value: q.Value, Types: q.Types, Limit: 100, Warnings: true}, 6},
		{"key-1", intel.Query{Value: q.Value, Types: q.Types, Limit: 100, Warnings: true}, 6}, // hit
		{"key-1", q, 6}, // hit
	}
	for i, l := range lookups {
		events, err := c.Search(ctx, l.key, l.q)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.searches.Load(); got != l.want {
			t.Errorf("lookup %d: %d upstream calls, want %d", i, got, l.want)
		}
		if events[0].UUID != "a-"+l.key+"-"+l.q.Value+withHits(l.q) {
			t.Errorf("lookup %d got another tenant's or query's answer: %v", i, events[0].UUID)
		}
	}
	if diff := cmp.Diff(cache.Stats{Hits: 4, Misses: 6}, c.Stats()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestCallersMayReorderTheirEvents(t *testing.T) {
	c, _ := newCache(cache.Config{TTL: time.Minute})
	first, _ := c.Search(context.Background(), "k", q)
	slices.Reverse(first)
	second, _ := c.Search(context.Background(), "k", q)
	if second[0].UUID != "a-k-198.51.100.7" {
		t.Errorf("a caller's reordering leaked into the cache: %v", second)
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	c, f := newCache(cache.Config{TTL: time.Minute})
	f.fail.Store(true)
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
	synctest.Test(t, func(t *testing.T) {
		c, f := newCache(cache.Config{TTL: 50 * time.Millisecond, Size: 2})
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
		testkit.Advance(40 * time.Millisecond)
		search("a")
		if n := f.searches.Load(); n != 4 {
			t.Errorf("%d calls within the TTL, want 4 (a hit)", n)
		}
		testkit.Advance(80 * time.Millisecond) // past the TTL
		search("a")
		if n := f.searches.Load(); n != 5 {
			t.Errorf("%d calls after expiry, want 5", n)
		}
	})
}

func TestTTLZeroDisablesCaching(t *testing.T) {
	c, f := newCache(cache.Config{TTL: 0})
	for range 3 {
		if _, err := c.Search(context.Background(), "k", q); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.searches.Load(); n != 3 {
		t.Errorf("%d calls with caching off, want 3", n)
	}
}

// TestConcurrentIdenticalLookupsShareOneCall holds MISP's answer until every caller is
// blocked (synctest.Wait): by then each has joined the one call or made its own.
func TestConcurrentIdenticalLookupsShareOneCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, f := newCache(cache.Config{TTL: 0}) // sharing works without caching too
		release := f.hold()
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
		synctest.Wait() // every goroutine has reached the shared call, or MISP
		close(release)
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
	})
}

func TestCancelledCallerDoesNotFailOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, f := newCache(cache.Config{TTL: time.Minute})
		release := f.hold()
		ctx, cancel := context.WithCancel(context.Background())
		first := make(chan error, 1)
		go func() {
			_, err := c.Search(ctx, "k", q)
			first <- err
		}()
		synctest.Wait() // the first caller's lookup waits on MISP
		if n := f.searches.Load(); n != 1 {
			t.Fatalf("%d upstream calls, want 1", n)
		}
		second := make(chan error, 1)
		go func() {
			_, err := c.Search(context.Background(), "k", q)
			second <- err
		}()
		synctest.Wait() // the second has joined it
		cancel()
		if err := <-first; !errors.Is(err, context.Canceled) {
			t.Errorf("first caller: %v, want context.Canceled", err)
		}
		close(release)
		if err := <-second; err != nil {
			t.Errorf("second caller failed because the first gave up: %v", err)
		}
		if n := f.searches.Load(); n != 1 {
			t.Errorf("%d upstream calls, want 1 (shared)", n)
		}
	})
}

func TestVersionCachedBriefly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, f := newCache(cache.Config{HealthTTL: 50 * time.Millisecond})
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
		testkit.Advance(120 * time.Millisecond)
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
	})
}

func TestSightingsPassThrough(t *testing.T) {
	c, f := newCache(cache.Config{TTL: time.Minute})
	for range 2 {
		if err := c.AddSighting(context.Background(), "k", "v", intel.Sighting, "XDR"); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.sightings.Load(); n != 2 {
		t.Errorf("%d sightings reached MISP, want 2", n)
	}
}

// TestPanicInTheBackendIsAnError: the backend is asked in a goroutine of the cache's own, where
// a panic would end the process; every lookup waiting for it gets an error instead, not cached.
func TestPanicInTheBackendIsAnError(t *testing.T) {
	var calls atomic.Int64
	b := &inteltest.Backend{SearchFn: func(context.Context, string, intel.Query) ([]intel.Event, error) {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		return []intel.Event{{UUID: "e"}}, nil
	}}
	c := cache.New(b, cache.Config{BaseURL: "https://misp.example", TTL: time.Minute})
	r := c.Lookup(context.Background(), "k", []intel.Query{{Value: "a"}, {Value: "b"}})
	for i, res := range r {
		if res.Err == nil || !strings.Contains(res.Err.Error(), "panicked") {
			t.Errorf("query %d: %+v, want the panic as an error", i, res)
		}
	}
	if r := c.Lookup(context.Background(), "k", []intel.Query{{Value: "a"}})[0]; r.Err != nil || len(r.Events) != 1 {
		t.Errorf("after the panic: %+v, want the backend asked again (errors are not cached)", r)
	}
}
