package cache_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strconv"
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

// memStore is an in-memory cache.Store (the real one is tested against redis-server in
// rediscache and internal/app). Its faults are switched on by the test.
type memStore struct {
	mu     sync.Mutex
	values map[string]memValue
	ops    atomic.Int64
	locks  atomic.Int64
	sets   atomic.Int64
	// beforeLock, when set, runs once at the next Lock, before it looks at the key.
	beforeLock atomic.Pointer[func()]
	fail       atomic.Bool  // every operation fails
	failGets   atomic.Int32 // so many next Gets fail
	hang       atomic.Bool  // every operation waits for its context to end
}

type memValue struct {
	v       []byte
	expires time.Time
}

var errStoreDown = errors.New("connection refused")

func newMemStore() *memStore { return &memStore{values: map[string]memValue{}} }

func (m *memStore) fault(ctx context.Context) error {
	m.ops.Add(1)
	if m.hang.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	if m.fail.Load() {
		return errStoreDown
	}
	return nil
}

func (m *memStore) Get(ctx context.Context, key string, buf []byte) ([]byte, bool, error) {
	if err := m.fault(ctx); err != nil {
		return nil, false, err
	}
	if m.failGets.Add(-1) >= 0 {
		return nil, false, errStoreDown
	}
	m.failGets.Store(0)
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.values[key]
	if !ok || !time.Now().Before(e.expires) || len(e.v) > len(buf) {
		return nil, false, nil
	}
	return buf[:copy(buf, e.v)], true, nil
}

func (m *memStore) Set(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	m.sets.Add(1)
	if err := m.fault(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.values[key] = memValue{bytes.Clone(v), time.Now().Add(ttl)}
	return nil
}

func (m *memStore) Lock(ctx context.Context, key, token string, ttl time.Duration) (bool, error) {
	if hook := m.beforeLock.Swap(nil); hook != nil {
		(*hook)()
	}
	m.locks.Add(1)
	if err := m.fault(ctx); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.values[key]; ok && time.Now().Before(e.expires) {
		return string(e.v) == token, nil
	}
	m.values[key] = memValue{[]byte(token), time.Now().Add(ttl)}
	return true, nil
}

func (m *memStore) Unlock(ctx context.Context, key, token string) error {
	if err := m.fault(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.values[key]; ok && string(e.v) == token {
		delete(m.values, key)
	}
	return nil
}

func (m *memStore) GetMany(ctx context.Context, keys []string, bufs [][]byte) ([][]byte, error) {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		v, found, err := m.Get(ctx, k, bufs[i][:len(bufs[i])-1])
		if err != nil {
			return nil, err
		}
		if found {
			out[i] = v
		}
	}
	return out, nil
}

func (m *memStore) SetMany(ctx context.Context, keys []string, values [][]byte, ttl time.Duration) error {
	for i, k := range keys {
		if err := m.Set(ctx, k, values[i], ttl); err != nil {
			return err
		}
	}
	return nil
}

// entries are the stored answers (not the locks).
func (m *memStore) entries() map[string][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]byte{}
	for k, e := range m.values {
		if !strings.HasSuffix(k, ":lock") {
			out[k] = e.v
		}
	}
	return out
}

func (m *memStore) put(key string, v []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.values[key] = memValue{v, time.Now().Add(time.Hour)}
}

// instance is one relay instance: its own cache and Shared (breaker, counters) over the
// fleet's store, in front of the fleet's MISP.
type instance struct {
	cache  *cache.Cache
	shared *cache.Shared
}

func newInstance(store cache.Store, misp intel.Backend, base string, cfg cache.SharedConfig) instance {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	sh := cache.NewShared(store, cfg)
	return instance{cache.New(misp, cache.Config{BaseURL: base, TTL: time.Hour, Shared: sh}), sh}
}

// The tests on fake time (testing/synctest) build their instances outside the bubble: the
// in-process LRU keeps a cleanup goroutine for its life, which a bubble would wait for. Its
// ticker (every TTL/100 of real time, 36 s) never fires during a test.

func search(t *testing.T, c *cache.Cache, key string, q intel.Query) []intel.Event {
	t.Helper()
	events, err := c.Search(context.Background(), key, q)
	if err != nil {
		t.Fatalf("search %s for %s: %v", q.Value, key, err)
	}
	return events
}

func TestFleetSharesAnswers(t *testing.T) {
	f := &calls{}
	store := newMemStore()
	a := newInstance(store, backend(f), "https://misp.example", cache.SharedConfig{})
	b := newInstance(store, backend(f), "https://misp.example", cache.SharedConfig{})
	other := newInstance(store, backend(f), "https://misp2.example", cache.SharedConfig{})

	want := search(t, a.cache, "key-1", q)
	if got := search(t, b.cache, "key-1", q); !cmp.Equal(want, got) {
		t.Errorf("instance b got %v, want a's %v", got, want)
	}
	if n := f.searches.Load(); n != 1 {
		t.Fatalf("%d MISP calls for one lookup on two instances, want 1", n)
	}
	// Another API key, or another MISP, never gets key-1's answer.
	if got := search(t, b.cache, "key-2", q); got[0].UUID != "a-key-2-"+q.Value {
		t.Errorf("key-2 got %v", got[0].UUID)
	}
	if got := search(t, other.cache, "key-1", q); got[0].UUID != "a-key-1-"+q.Value {
		t.Errorf("another MISP got %v", got[0].UUID)
	}
	if n := f.searches.Load(); n != 3 {
		t.Errorf("%d MISP calls, want 3 (one per tenant)", n)
	}
	if diff := cmp.Diff(cache.SharedStats{Hits: 1, Misses: 1}, b.shared.Stats()); diff != "" {
		t.Errorf("b's stats (-want +got):\n%s", diff)
	}
	// The answer with MISP's warninglist hits is another entry: b asks MISP for it, and a
	// then gets it from the store.
	hits := intel.Query{Value: q.Value, Types: q.Types, Limit: q.Limit, Warnings: true}
	if got := search(t, b.cache, "key-1", hits); got[0].UUID != "a-key-1-"+q.Value+"+hits" {
		t.Errorf("with the hits, b got %v", got[0].UUID)
	}
	if got := search(t, a.cache, "key-1", hits); got[0].UUID != "a-key-1-"+q.Value+"+hits" {
		t.Errorf("with the hits, a got %v", got[0].UUID)
	}
	if n := f.searches.Load(); n != 4 {
		t.Errorf("%d MISP calls, want 4 (one more for the answer with the hits)", n)
	}
	// Nothing of the tenant in clear in the store.
	for k, v := range store.entries() {
		for _, secret := range []string{"key-1", "key-2", "misp.example", q.Value, "a-key"} {
			if strings.Contains(k, secret) || bytes.Contains(v, []byte(secret)) {
				t.Errorf("the store shows %q in %q", secret, k)
			}
		}
	}
}

// nothingMISP knows nothing, and counts the calls in c.
func nothingMISP(c *calls) *inteltest.Backend {
	return &inteltest.Backend{SearchFn: func(context.Context, string, intel.Query) ([]intel.Event, error) {
		c.searches.Add(1)
		return nil, nil
	}}
}

func TestNothingFoundIsShared(t *testing.T) {
	f := &calls{}
	store := newMemStore()
	a := newInstance(store, nothingMISP(f), "", cache.SharedConfig{})
	b := newInstance(store, nothingMISP(f), "", cache.SharedConfig{})
	for _, c := range []*cache.Cache{a.cache, b.cache, b.cache} {
		if got := search(t, c, "k", q); got != nil {
			t.Fatalf("got %v, want nil", got)
		}
	}
	if n := f.searches.Load(); n != 1 {
		t.Errorf("%d MISP calls, want 1: answers that found nothing are shared too", n)
	}
}

func TestErrorsAreNotShared(t *testing.T) {
	f := &calls{}
	f.fail.Store(true)
	store := newMemStore()
	a := newInstance(store, backend(f), "", cache.SharedConfig{})
	b := newInstance(store, backend(f), "", cache.SharedConfig{})
	if _, err := a.cache.Search(context.Background(), "k", q); err == nil {
		t.Fatal("no error")
	}
	f.fail.Store(false)
	search(t, b.cache, "k", q)
	if n := f.searches.Load(); n != 2 {
		t.Errorf("%d MISP calls, want 2 (a failure is never shared)", n)
	}
	if n := len(store.entries()); n != 1 {
		t.Errorf("%d stored entries, want 1 (b's answer)", n)
	}
}

func TestTTLIsFromMISPsAnswerAcrossTheFleet(t *testing.T) {
	f := &calls{}
	store := newMemStore()
	a := newInstance(store, backend(f), "", cache.SharedConfig{})
	b := newInstance(store, backend(f), "", cache.SharedConfig{})
	synctest.Test(t, func(t *testing.T) {
		search(t, a.cache, "k", q) // MISP answers at t0
		testkit.Advance(40 * time.Minute)
		search(t, b.cache, "k", q) // from the store
		testkit.Advance(19 * time.Minute)
		search(t, b.cache, "k", q) // b's own cache, t0+59m
		if n := f.searches.Load(); n != 1 {
			t.Fatalf("%d MISP calls before the TTL, want 1", n)
		}
		testkit.Advance(2 * time.Minute)
		// t0+61m: b read the answer 21 minutes ago, but MISP gave it 61 minutes ago.
		search(t, b.cache, "k", q)
		if n := f.searches.Load(); n != 2 {
			t.Errorf("%d MISP calls after the TTL, want 2", n)
		}
	})
}

func TestTTLZeroTurnsTheStoreOff(t *testing.T) {
	f := &calls{}
	store := newMemStore()
	sh := cache.NewShared(store, cache.SharedConfig{})
	c := cache.New(backend(f), cache.Config{TTL: 0, Shared: sh})
	search(t, c, "k", q)
	search(t, c, "k", q)
	if n, ops := f.searches.Load(), store.ops.Load(); n != 2 || ops != 0 {
		t.Errorf("CACHE_TTL=0: %d MISP calls and %d store operations, want 2 and 0", n, ops)
	}
}

// TestUnusableValuesAreMisses: whatever is under a key, a value that does not open or
// decode is a miss, and MISP answers.
func TestUnusableValuesAreMisses(t *testing.T) {
	f := &calls{}
	store := newMemStore()
	a := newInstance(store, backend(f), "", cache.SharedConfig{})
	search(t, a.cache, "k", q)
	search(t, a.cache, "k", intel.Query{Value: "192.0.2.1", Types: q.Types, Limit: 100})
	entries := store.entries()
	keys := slices.Sorted(maps.Keys(entries))
	if len(keys) != 2 {
		t.Fatalf("%d entries", len(keys))
	}
	for name, value := range map[string][]byte{
		"garbage":              []byte("garbage"),
		"empty":                {},
		"truncated":            entries[keys[0]][:len(entries[keys[0]])-3],
		"another lookup's one": entries[keys[1]],
		"bit flipped":          flipBit(entries[keys[0]]),
	} {
		store.put(keys[0], value)
		before := f.searches.Load()
		b := newInstance(store, backend(f), "", cache.SharedConfig{})
		events, err := b.cache.Search(context.Background(), "k", q)
		if err != nil {
			t.Fatalf("%s: error %v, want MISP's answer", name, err)
		}
		if len(events) != 2 || f.searches.Load() != before+1 {
			t.Errorf("%s: %d events, %d MISP calls; want MISP's answer", name, len(events), f.searches.Load()-before)
		}
		if st := b.shared.Stats(); st.Misses != 1 || st.Errors != 0 {
			t.Errorf("%s: stats %+v, want one miss and no error", name, st)
		}
	}
}

func flipBit(v []byte) []byte {
	v = bytes.Clone(v)
	v[len(v)/2] ^= 0x40
	return v
}

func TestOversizedAnswersAreNotStored(t *testing.T) {
	f := &calls{}
	store := newMemStore()
	a := newInstance(store, backend(f), "", cache.SharedConfig{MaxEntry: 64})
	search(t, a.cache, "k", q)
	if n := len(store.entries()); n != 0 {
		t.Errorf("%d entries stored over the 64-byte bound", n)
	}
	if st := a.shared.Stats(); st.Skipped != 1 {
		t.Errorf("stats %+v, want 1 skipped", st)
	}
}

// TestStoreDownNeverFailsALookup: with the store failing, every lookup is answered by MISP;
// after Failures failures the breaker stops calling the store, logging it once; when the
// store is back, one probe after OpenFor closes the breaker, logged once.
func TestStoreDownNeverFailsALookup(t *testing.T) {
	var clock atomic.Int64
	now := func() time.Time { return time.Unix(clock.Load(), 0) }
	f := &calls{}
	store := newMemStore()
	logs := &testkit.SyncBuffer{}
	a := newInstance(store, backend(f), "", cache.SharedConfig{
		Failures: 3, OpenFor: 10 * time.Second, Now: now, Name: "redis://cache:6379",
		Log: slog.New(slog.NewTextHandler(logs, nil)),
	})
	store.fail.Store(true)
	value := func(i int) intel.Query {
		return intel.Query{Value: "10.0.0." + string(rune('a'+i)), Types: q.Types, Limit: 1}
	}
	for i := range 10 {
		if events := search(t, a.cache, "k", value(i)); len(events) != 2 {
			t.Fatalf("lookup %d: %v", i, events)
		}
		if i == 0 {
			clock.Add(1) // failures going on for a second open the breaker
		}
	}
	st := a.shared.Stats()
	if f.searches.Load() != 10 || store.ops.Load() != 3 || st.Errors != 3 || st.Fallbacks != 10 {
		t.Errorf("store down: %d MISP calls, %d store operations, stats %+v; want 10 calls, 3 operations (then the breaker opened), 3 errors and 10 fallbacks",
			f.searches.Load(), store.ops.Load(), st)
	}
	if a.shared.BreakerState() != "open" {
		t.Errorf("breaker %s, want open", a.shared.BreakerState())
	}

	store.fail.Store(false)
	clock.Add(4)
	search(t, a.cache, "k", value(10))
	if n := store.ops.Load(); n != 3 {
		t.Errorf("the store was called %d times while the breaker was open", n-3)
	}
	clock.Add(6)
	search(t, a.cache, "k", value(11)) // the probe: the store answers
	search(t, a.cache, "k", value(12))
	if a.shared.BreakerState() != "closed" || len(store.entries()) != 2 {
		t.Errorf("after the store came back: breaker %s, %d entries; want closed, 2", a.shared.BreakerState(), len(store.entries()))
	}
	out := logs.String()
	if down, up := strings.Count(out, "shared cache unavailable"), strings.Count(out, "shared cache available again"); down != 1 || up != 1 {
		t.Errorf("logged %d outages and %d recoveries, want 1 and 1:\n%s", down, up, out)
	}
}

// TestSlowStoreCostsAtMostTheTimeout: a store that never answers costs a lookup the
// timeout once before MISP (the read fails, so nothing is written after), until the breaker,
// after a second of failures, stops asking it.
func TestSlowStoreCostsAtMostTheTimeout(t *testing.T) {
	f := &calls{}
	store := newMemStore()
	store.hang.Store(true)
	const timeout = 50 * time.Millisecond
	a := newInstance(store, backend(f), "", cache.SharedConfig{Timeout: timeout, Failures: 2, OpenFor: time.Hour})
	synctest.Test(t, func(t *testing.T) {
		var took []time.Duration
		for i := range 30 {
			start := time.Now()
			search(t, a.cache, "k", intel.Query{Value: strconv.Itoa(i), Limit: 1})
			took = append(took, time.Since(start))
		}
		// The first failure ends at 50ms; the 21st, at 1.05s, is a second later.
		want := slices.Repeat([]time.Duration{timeout}, 21)
		want = append(want, slices.Repeat([]time.Duration{0}, 9)...)
		if diff := cmp.Diff(want, took); diff != "" {
			t.Errorf("lookup durations with the store hung (-want +got):\n%s", diff)
		}
		if n := f.searches.Load(); n != 30 {
			t.Errorf("%d MISP calls, want 30", n)
		}
	})
}

// TestConcurrentLookupsReadTheStoreOnce: singleflight covers the store too.
func TestConcurrentLookupsReadTheStoreOnce(t *testing.T) {
	g := &gatedMISP{gate: make(chan bool), entered: make(chan struct{}, 1)}
	store := newMemStore()
	a := newInstance(store, g, "", cache.SharedConfig{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { search(t, a.cache, "k", q) })
	}
	<-g.entered
	close(g.gate)
	wg.Wait()
	// A lookup that missed the in-process cache just before the shared one stored its answer,
	// and asked just after it ended, reads the store (a hit): it neither locks nor writes.
	if n, locks, sets := g.searches.Load(), store.locks.Load(), store.sets.Load(); n != 1 || locks != 1 || sets != 1 {
		t.Errorf("%d MISP calls, %d locks and %d writes for 20 concurrent lookups, want 1 of each", n, locks, sets)
	}
}

// TestAnswerStoredBetweenReadAndLock: an instance that missed the store just before another
// stored its answer (and freed the lock) takes the lock, looks again, and finds it.
func TestAnswerStoredBetweenReadAndLock(t *testing.T) {
	f := &calls{}
	store := newMemStore()
	a := newInstance(store, backend(f), "", cache.SharedConfig{})
	b := newInstance(store, backend(f), "", cache.SharedConfig{})
	aAnswers := func() { search(t, a.cache, "k", q) }
	store.beforeLock.Store(&aAnswers) // runs when b, having missed, takes the lock
	search(t, b.cache, "k", q)
	if n := f.searches.Load(); n != 1 {
		t.Errorf("%d MISP calls, want 1 (a's)", n)
	}
	if st := b.shared.Stats(); st.Hits != 1 || st.Misses != 1 {
		t.Errorf("b's stats %+v, want a miss, then a hit after the lock", st)
	}
}

// TestLockIsFreedWhenTheStoreFails: an instance that took a lookup's lock frees it even when
// the store failed in between, so that others do not wait for the lease.
func TestLockIsFreedWhenTheStoreFails(t *testing.T) {
	f := &calls{}
	store := newMemStore()
	a := newInstance(store, backend(f), "", cache.SharedConfig{})
	failRecheck := func() { store.failGets.Store(1) }
	store.beforeLock.Store(&failRecheck) // the look after taking the lock fails
	search(t, a.cache, "k", q)
	store.mu.Lock()
	defer store.mu.Unlock()
	for k := range store.values {
		if strings.HasSuffix(k, ":lock") {
			t.Errorf("lock %s left behind", k)
		}
	}
	if st := a.shared.Stats(); st.Errors != 1 || f.searches.Load() != 1 {
		t.Errorf("stats %+v, %d MISP calls; want 1 error and 1 call", st, f.searches.Load())
	}
}

// gatedMISP answers a search only when its gate says so: true fails the search, false (or
// a closed gate) answers it. entered says a search started.
type gatedMISP struct {
	inteltest.Backend
	searches atomic.Int64
	gate     chan bool
	entered  chan struct{}
}

func (g *gatedMISP) Lookup(ctx context.Context, key string, qs []intel.Query) []intel.Result {
	out := make([]intel.Result, len(qs))
	for i, q := range qs {
		out[i].Events, out[i].Err = g.Search(ctx, key, q)
	}
	return out
}

func (g *gatedMISP) Search(ctx context.Context, key string, qq intel.Query) ([]intel.Event, error) {
	g.searches.Add(1)
	g.entered <- struct{}{}
	if fail := <-g.gate; fail {
		return nil, &upstream.Error{Op: "search", Kind: upstream.ErrUnavailable}
	}
	return []intel.Event{{UUID: "a-" + key + "-" + qq.Value}}, nil
}

// TestFleetWaitsForTheInstanceAskingMISP: while one instance asks MISP, another asking the
// same waits for its answer instead of asking too.
func TestFleetWaitsForTheInstanceAskingMISP(t *testing.T) {
	g := &gatedMISP{}
	store := newMemStore()
	a := newInstance(store, g, "", cache.SharedConfig{})
	b := newInstance(store, g, "", cache.SharedConfig{})
	synctest.Test(t, func(t *testing.T) {
		done := holderAndWaiter(t, g, a, b)
		testkit.Advance(290 * time.Millisecond) // b polls the store meanwhile
		close(g.gate)
		first, second := <-done, <-done
		if !cmp.Equal(first, second) {
			t.Errorf("answers differ: %v, %v", first, second)
		}
		if n := g.searches.Load(); n != 1 {
			t.Errorf("%d MISP calls, want 1", n)
		}
		if st := b.shared.Stats(); st.Waits != 1 || st.Hits != 1 {
			t.Errorf("b's stats %+v, want one wait, one hit", st)
		}
	})
}

// TestWaitSurvivesAFailedLook: a look that fails while waiting (a timeout on a busy
// instance) is tried again at the next one, rather than sending the instance to MISP too.
func TestWaitSurvivesAFailedLook(t *testing.T) {
	g := &gatedMISP{}
	store := newMemStore()
	a := newInstance(store, g, "", cache.SharedConfig{})
	b := newInstance(store, g, "", cache.SharedConfig{})
	synctest.Test(t, func(t *testing.T) {
		done := holderAndWaiter(t, g, a, b)
		store.failGets.Store(1) // b's next look fails
		testkit.Advance(200 * time.Millisecond)
		if store.failGets.Load() > 0 {
			t.Fatal("b did not look at the store")
		}
		close(g.gate)
		<-done
		<-done
		if n := g.searches.Load(); n != 1 {
			t.Errorf("%d MISP calls, want 1", n)
		}
		if st := b.shared.Stats(); st.Waits != 1 || st.Errors != 1 {
			t.Errorf("b's stats %+v, want one failed look, then the answer after waiting", st)
		}
	})
}

// TestWaitEndsWhenTheStoreKeepsFailing: two failed looks in a row send the waiting instance
// to MISP: a store that slow may not take the holder's answer either, and waiting for the
// lease would make it cost seconds.
func TestWaitEndsWhenTheStoreKeepsFailing(t *testing.T) {
	g := &gatedMISP{}
	store := newMemStore()
	a := newInstance(store, g, "", cache.SharedConfig{})
	b := newInstance(store, g, "", cache.SharedConfig{})
	synctest.Test(t, func(t *testing.T) {
		done := holderAndWaiter(t, g, a, b)
		store.failGets.Store(2)
		start := time.Now()
		<-g.entered // b asks MISP itself
		if waited := time.Since(start); waited > 100*time.Millisecond {
			t.Errorf("b asked MISP %v after the store began failing", waited)
		}
		close(g.gate)
		<-done
		<-done
		// It went to MISP because reading the store failed: a fallback.
		if st := b.shared.Stats(); st.Fallbacks != 1 {
			t.Errorf("b's stats %+v, want 1 fallback", st)
		}
	})
}

// holderAndWaiter starts, in a synctest bubble, instance a asking MISP (held at g's gate)
// and then instance b, which finds a's lock and waits for its answer; done receives both
// answers.
func holderAndWaiter(t *testing.T, g *gatedMISP, a, b instance) (done chan []intel.Event) {
	t.Helper()
	g.gate, g.entered = make(chan bool), make(chan struct{}, 2)
	done = make(chan []intel.Event, 2)
	go func() { done <- search(t, a.cache, "k", q) }()
	<-g.entered
	go func() { done <- search(t, b.cache, "k", q) }()
	testkit.Advance(10 * time.Millisecond) // b is waiting
	return done
}

// TestWaitEndsWhenTheHolderFails: the waiting instance asks MISP itself, at once, when the
// instance holding the lock got an error (errors are not shared).
func TestWaitEndsWhenTheHolderFails(t *testing.T) {
	g := &gatedMISP{}
	store := newMemStore()
	a := newInstance(store, g, "", cache.SharedConfig{})
	b := newInstance(store, g, "", cache.SharedConfig{})
	synctest.Test(t, func(t *testing.T) {
		g.gate, g.entered = make(chan bool), make(chan struct{}, 2)
		errc := make(chan error, 1)
		go func() {
			_, err := a.cache.Search(context.Background(), "k", q)
			errc <- err
		}()
		<-g.entered
		start := time.Now()
		done := make(chan []intel.Event, 1)
		go func() { done <- search(t, b.cache, "k", q) }()
		testkit.Advance(100 * time.Millisecond)
		g.gate <- true // a's call fails
		if err := <-errc; err == nil {
			t.Error("a: no error")
		}
		<-g.entered // b took the lock and asks MISP itself
		close(g.gate)
		if got := <-done; len(got) != 1 {
			t.Errorf("b got %v", got)
		}
		if waited := time.Since(start); waited > time.Second {
			t.Errorf("b waited %v, want about 100ms (until a's failure)", waited)
		}
	})
}

// TestWaitIsBoundedByTheLease: an instance that took the lock and died holds nobody up for
// more than the lease.
func TestWaitIsBoundedByTheLease(t *testing.T) {
	f := &calls{}
	store := newMemStore()
	const lease = 2 * time.Second
	b := newInstance(store, backend(f), "", cache.SharedConfig{Lease: lease})
	g := &gatedMISP{}
	dead := newInstance(store, g, "", cache.SharedConfig{Lease: time.Hour})
	synctest.Test(t, func(t *testing.T) {
		// An instance that took the lock of q's lookup and hangs.
		gate := make(chan bool)
		g.gate, g.entered = gate, make(chan struct{}, 1)
		go func() { _, _ = dead.cache.Search(context.Background(), "k", q) }()
		synctest.Wait()
		start := time.Now()
		search(t, b.cache, "k", q)
		if waited := time.Since(start); waited < lease || waited > lease+time.Second {
			t.Errorf("b waited %v, want the lease (%v)", waited, lease)
		}
		if n := f.searches.Load(); n != 1 {
			t.Errorf("b made %d MISP calls, want 1", n)
		}
		close(gate)
	})
}
