// Package cache keeps recent lookup answers so that the relay asks MISP once for what many
// analysts (or one pivot fanning out to every module) ask at the same time. A Cache decorates
// any intel.Backend; it must not know which kind it wraps, nor change what it answers.
//
// Entries are keyed by (MISP base URL, SHA-256 of the API key, attribute types, value, limit):
// two tenants with different keys never share an entry, because MISP filters what a key may
// see. Errors are never cached. Concurrent identical lookups share one upstream call, and the
// queries of one Lookup that the cache lacks go to the wrapped backend in one Lookup (one
// restSearch for a MISP), each still cached apart.
//
// A relay run as many instances (Lambda, replicas) can add a second level shared by all of
// them (Shared, over a Store such as Redis): on a miss of the in-process cache, one lookup
// reads the shared store, and only when it has no answer asks MISP and stores what MISP said,
// so the fleet asks MISP once per lookup and CACHE_TTL. See shared.go and seal.go.
package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/reqlog"
)

// Config sizes the cache.
type Config struct {
	// BaseURL names the MISP instance in every key.
	BaseURL string
	// TTL is how long a search answer is reused; 0 turns search caching off (concurrent
	// identical lookups still share one call).
	TTL time.Duration
	// Size bounds the number of search answers kept (least recently used go first).
	Size int
	// HealthTTL is how long a successful version check is reused.
	HealthTTL time.Duration
	// Shared, when set, is the second level under this cache, shared with other relay
	// instances (and with the caches of other MISPs, each keyed apart). Unused when TTL is 0.
	Shared *Shared
}

// Defaults of Config.
const (
	DefaultTTL       = 60 * time.Second
	DefaultSize      = 10000
	DefaultHealthTTL = 5 * time.Second
)

// Cache is an intel.Backend in front of another that remembers its answers. Safe for
// concurrent use.
type Cache struct {
	next    intel.Backend
	baseURL string
	ttl     time.Duration
	search  *ttlLRU[entry] // nil when TTL is 0
	shared  *Shared        // nil without a second level, or when TTL is 0
	// warn holds MISP's warninglist hits per value (nil: none); nil when TTL is 0.
	warn   *ttlLRU[[]intel.WarninglistHit]
	health *ttlLRU[struct{}]
	flight singleflight.Group // pings and warninglist checks
	// inflight holds the searches being asked about, by key: a lookup of one of them waits
	// for its answer instead of asking again.
	mu       sync.Mutex
	inflight map[string]*call
	hits     atomic.Int64
	misses   atomic.Int64
}

// entry is a search answer and when it stops being used: TTL after MISP gave it, which for an
// answer read from the shared store is earlier than TTL after this instance read it.
type entry struct {
	events  []intel.Event
	expires time.Time
}

// eventsCodec stores search answers in the shared store.
var eventsCodec = codec[[]intel.Event]{encode: appendEvents, decode: decodeEvents}

var _ intel.Backend = (*Cache)(nil)

// New wraps next.
func New(next intel.Backend, cfg Config) *Cache {
	if cfg.Size <= 0 {
		cfg.Size = DefaultSize
	}
	if cfg.HealthTTL <= 0 {
		cfg.HealthTTL = DefaultHealthTTL
	}
	c := &Cache{next: next, baseURL: cfg.BaseURL, ttl: cfg.TTL, inflight: map[string]*call{}}
	if cfg.TTL > 0 {
		c.search = newTTLLRU[entry](cfg.Size, cfg.TTL)
		c.warn = newTTLLRU[[]intel.WarninglistHit](cfg.Size, cfg.TTL)
		c.shared = cfg.Shared
	}
	c.health = newTTLLRU[struct{}](1024, cfg.HealthTTL)
	return c
}

// Stats are the counters of search lookups answered from the cache and from MISP.
type Stats struct{ Hits, Misses int64 }

// Stats returns the counters so far.
func (c *Cache) Stats() Stats { return Stats{Hits: c.hits.Load(), Misses: c.misses.Load()} }

func (c *Cache) keyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// searchKey is q's cache key for the API key whose keyHash is keyHash: a Lookup hashes the
// key once for all its queries.
func (c *Cache) searchKey(keyHash string, q intel.Query) string {
	return strings.Join([]string{searchKind(q), c.baseURL, keyHash, strings.Join(q.Types, ","), q.Value, strconv.Itoa(q.Limit)}, "\x00")
}

// searchKind tells apart, in the keys, the answers with MISP's warninglist hits (a query with
// Warnings) from those without: an answer without them must not stand in for one with them.
// Those with the hits keep the name of the releases that asked for the hits every time, so
// that, while a fleet sharing the store is upgraded, such a release never reads an answer
// without the hits it expects, and its answers serve the queries with Warnings.
func searchKind(q intel.Query) string {
	if q.Warnings {
		return "search"
	}
	return "search-no-warninglist-hits"
}

// Search is Lookup of one query.
func (c *Cache) Search(ctx context.Context, key string, q intel.Query) ([]intel.Event, error) {
	r := c.Lookup(ctx, key, []intel.Query{q})[0]
	return r.Events, r.Err
}

// call is one query's trip to the wrapped backend (or the shared store), which every
// concurrent lookup of the same query waits for.
type call struct {
	done      chan struct{} // closed once the fields below are set
	events    []intel.Event
	err       error
	fromStore bool // answered by the shared store, not by MISP
	fromLRU   bool // answered by this cache: a call ended just before this one began
}

// Lookup answers each query from the cache, and asks the wrapped backend about the others in
// one Lookup (one restSearch for a MISP). A query another lookup is already asking about is
// not asked again: this lookup waits for that answer, so concurrent requests asking the same
// value make one call for it. With a shared store, the queries another instance answered come
// from the store, those another instance is asking about wait for its answer, and the rest
// go to the backend together. Callers get their own slice of events and may reorder it; the
// events' contents are shared and must not be modified.
func (c *Cache) Lookup(ctx context.Context, key string, qs []intel.Query) []intel.Result {
	out := make([]intel.Result, len(qs))
	calls := make([]*call, len(qs))
	var led []int // the queries this lookup asks about
	var ledCalls []*call
	// The keys are made before taking the lock, which every lookup of this MISP shares.
	keys := make([]string, len(qs))
	kh := c.keyHash(key)
	for i, q := range qs {
		keys[i] = c.searchKey(kh, q)
	}
	c.mu.Lock()
	for i, k := range keys {
		if c.search != nil {
			if e, ok := c.search.Get(k); ok && time.Now().Before(e.expires) {
				c.hits.Add(1)
				reqlog.From(ctx).AddCacheHit()
				out[i].Events = slices.Clone(e.events)
				continue
			}
		}
		if cl, ok := c.inflight[k]; ok {
			calls[i] = cl
			continue
		}
		cl := &call{done: make(chan struct{})}
		c.inflight[k] = cl
		calls[i] = cl
		led, ledCalls = append(led, i), append(ledCalls, cl)
	}
	c.mu.Unlock()
	if len(led) > 0 {
		// The calls must not fail because this caller gave up: other lookups may wait for
		// them. They run on a context without this caller's cancellation (the MISP client
		// bounds them by its own timeout), and each caller stops waiting when its own
		// context ends.
		go c.ask(context.WithoutCancel(ctx), key, qs, led, keys, ledCalls)
	}
	for i, cl := range calls {
		if cl == nil {
			continue
		}
		select {
		case <-ctx.Done():
			out[i].Err = ctx.Err()
			continue
		case <-cl.done:
		}
		if cl.err != nil {
			out[i].Err = cl.err
			continue
		}
		if cl.fromLRU {
			c.hits.Add(1)
		}
		if cl.fromStore || cl.fromLRU {
			reqlog.From(ctx).AddCacheHit()
		}
		out[i].Events = slices.Clone(cl.events)
	}
	return out
}

// ask answers the calls of the queries qs[led]: from the cache when a call that ended
// between the caller's read and its taking the query filled it, else from the shared store or
// the wrapped backend, all of the backend's in one Lookup.
func (c *Cache) ask(ctx context.Context, key string, qs []intel.Query, led []int, keys []string, calls []*call) {
	defer func() {
		// This runs in a goroutine of its own: a panic in the backend would end the process.
		// Every waiting lookup gets it as an error instead (never cached).
		if v := recover(); v != nil {
			for _, cl := range calls {
				cl.events, cl.err = nil, fmt.Errorf("lookup panicked: %v", v)
			}
		}
		c.mu.Lock()
		for j, i := range led {
			delete(c.inflight, keys[i])
			close(calls[j].done)
		}
		c.mu.Unlock()
	}()
	var ask []int // positions in led
	for j, i := range led {
		if c.search != nil {
			if e, ok := c.search.Get(keys[i]); ok && time.Now().Before(e.expires) {
				calls[j].events, calls[j].fromLRU = e.events, true
				continue
			}
		}
		c.misses.Add(1)
		ask = append(ask, j)
	}
	if len(ask) == 0 {
		return
	}
	if c.shared != nil && c.search != nil {
		c.askShared(ctx, key, qs, led, keys, calls, ask)
		return
	}
	batch := make([]intel.Query, len(ask))
	for n, j := range ask {
		batch[n] = qs[led[j]]
	}
	fetchedAt := time.Now()
	for n, r := range c.next.Lookup(ctx, key, batch) {
		j := ask[n]
		calls[j].events, calls[j].err = r.Events, r.Err
		if r.Err == nil && c.search != nil {
			c.search.Add(keys[led[j]], entry{events: r.Events, expires: fetchedAt.Add(c.ttl)})
		}
	}
}

// askShared answers the asked calls through the shared store: each query is filled (read from
// the store, or waited for while another instance holds its lock) concurrently, and those the
// store cannot answer go to the wrapped backend together (see batcher).
func (c *Cache) askShared(ctx context.Context, key string, qs []intel.Query, led []int, keys []string, calls []*call, ask []int) {
	b := newBatcher(len(ask))
	b.run = func(pos []int) {
		batch := make([]intel.Query, len(pos))
		for n, p := range pos {
			batch[n] = qs[led[ask[p]]]
		}
		for n, r := range c.next.Lookup(ctx, key, batch) {
			b.answers[pos[n]] = r
		}
	}
	b.alone = func(p int) ([]intel.Event, error) {
		r := c.next.Lookup(ctx, key, []intel.Query{qs[led[ask[p]]]})[0]
		return r.Events, r.Err
	}
	var wg sync.WaitGroup
	for p, j := range ask {
		wg.Go(func() {
			i := led[j]
			fetch := func() ([]intel.Event, error) { return b.fetch(p) }
			events, fetchedAt, fromStore, err := fill(ctx, c.shared, c.sharedRef(key, qs[i]), c.ttl, eventsCodec, fetch, func() { b.settle(p) })
			b.settle(p) // answered without the batch (no-op when it asked)
			calls[j].events, calls[j].fromStore, calls[j].err = events, fromStore, err
			if err == nil {
				c.search.Add(keys[i], entry{events: events, expires: fetchedAt.Add(c.ttl)})
			}
		})
	}
	wg.Wait()
}

// batcher gathers the backend calls of the queries a lookup fills through the shared store,
// so that they make one Lookup: it sends the batch once every fill has asked for its answer,
// been answered by the store, or begun waiting for another instance's answer. A fill that
// waited and must then ask the backend after the batch left (the other instance failed) asks
// alone: holding the batch for it could stall two instances waiting on each other's locks.
type batcher struct {
	mu      sync.Mutex
	state   []fillState // by position
	pending int         // fills still fillOpen
	asked   []int       // positions waiting for the batch
	sent    bool
	answers []intel.Result // by position
	ready   chan struct{}  // closed once answers holds the batch's
	run     func(pos []int)
	alone   func(pos int) ([]intel.Event, error)
}

type fillState uint8

const (
	fillOpen    fillState = iota // neither asked nor settled yet
	fillAsked                    // waits for the batch
	fillSettled                  // answered by the store, or waiting for another instance
)

func newBatcher(n int) *batcher {
	return &batcher{state: make([]fillState, n), pending: n, answers: make([]intel.Result, n), ready: make(chan struct{})}
}

// fetch is fill's fetch for the query at position p.
func (b *batcher) fetch(p int) ([]intel.Event, error) {
	b.mu.Lock()
	if b.sent {
		b.mu.Unlock()
		return b.alone(p)
	}
	if b.state[p] == fillOpen {
		b.pending--
	}
	b.state[p] = fillAsked
	b.asked = append(b.asked, p)
	send := b.pending == 0
	b.mu.Unlock()
	if send {
		b.send()
	}
	<-b.ready
	r := b.answers[p]
	return r.Events, r.Err
}

// settle says that the fill at position p will not ask for the batch now (answered by the
// store, or waiting for another instance); if it asks later, it joins the batch when the
// batch has not left yet, else it asks alone.
func (b *batcher) settle(p int) {
	b.mu.Lock()
	if b.sent || b.state[p] != fillOpen {
		b.mu.Unlock()
		return
	}
	b.state[p] = fillSettled
	b.pending--
	send := b.pending == 0
	b.mu.Unlock()
	if send {
		b.send()
	}
}

func (b *batcher) send() {
	b.mu.Lock()
	b.sent = true
	asked := b.asked
	b.mu.Unlock()
	slices.Sort(asked) // the queries' order, whichever fill asked first
	if len(asked) > 0 {
		b.run(asked)
	}
	close(b.ready)
}

// sharedRef is the shared store's entry of a search: keyed and sealed for the tenant.
func (c *Cache) sharedRef(key string, q intel.Query) entryRef {
	return entryRef{
		key:  sharedKey(c.baseURL, key, searchKind(q), strings.Join(q.Types, "\x00"), q.Value, strconv.Itoa(q.Limit)),
		aead: newSealer(c.baseURL, key),
	}
}

// Ping reuses a successful check of the same backend and key for HealthTTL, so a health
// probe every second costs MISP one call every few seconds.
func (c *Cache) Ping(ctx context.Context, key string) error {
	k := c.baseURL + "\x00" + c.keyHash(key)
	if _, ok := c.health.Get(k); ok {
		return nil
	}
	_, err, _ := c.flight.Do("ping\x00"+k, func() (any, error) {
		err := c.next.Ping(context.WithoutCancel(ctx), key)
		if err == nil {
			c.health.Add(k, struct{}{})
		}
		return nil, err
	})
	return err
}

// AddSighting is never cached nor shared: each call is a write.
func (c *Cache) AddSighting(ctx context.Context, key, value string, typ intel.SightingType, source string) error {
	return c.next.AddSighting(ctx, key, value, typ, source)
}

// Writable is the wrapped backend's.
func (c *Cache) Writable() bool { return c.next.Writable() }

// warninglistChecker is the optional capability of a backend that asks MISP's warninglists
// (the MISP client has it; a feed does not).
type warninglistChecker interface {
	CheckWarninglists(ctx context.Context, key string, values []string) (map[string][]intel.WarninglistHit, error)
}

// CheckWarninglists answers each value's warninglist hits from the cache (kept per value, hit
// or no hit, for TTL like a search), and asks the wrapped backend once about the others;
// concurrent identical checks share that call. A backend without the capability has no hits.
// Errors are not cached.
func (c *Cache) CheckWarninglists(ctx context.Context, key string, values []string) (map[string][]intel.WarninglistHit, error) {
	wc, ok := c.next.(warninglistChecker)
	if !ok || len(values) == 0 {
		return nil, nil
	}
	prefix := c.baseURL + "\x00" + c.keyHash(key) + "\x00"
	out := map[string][]intel.WarninglistHit{}
	var missing []string
	for _, v := range values {
		if c.warn != nil {
			if hits, ok := c.warn.Get(prefix + v); ok {
				if len(hits) > 0 {
					out[v] = hits
				}
				continue
			}
		}
		missing = append(missing, v)
	}
	if len(missing) == 0 {
		return out, nil
	}
	slices.Sort(missing)
	missing = slices.Compact(missing)
	ch := c.flight.DoChan("warn\x00"+prefix+strings.Join(missing, "\x00"), func() (any, error) {
		// A call that ended between this caller's cache read and its joining the flight
		// has filled the cache: look again rather than ask MISP twice.
		if got, ok := c.cachedHits(prefix, missing); ok {
			return got, nil
		}
		// As for searches: the shared call outlives a caller that gives up.
		ctx := context.WithoutCancel(ctx)
		if c.shared != nil {
			return c.checkShared(ctx, wc, key, prefix, missing)
		}
		got, err := wc.CheckWarninglists(ctx, key, missing)
		if err == nil && c.warn != nil {
			for _, v := range missing {
				c.warn.Add(prefix+v, got[v])
			}
		}
		return got, err
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		for v, hits := range r.Val.(map[string][]intel.WarninglistHit) {
			out[v] = hits
		}
		return out, nil
	}
}

// CachedWarninglists answers a warninglist check from this instance's memory alone, when it
// holds every value's answer (ok false otherwise: CheckWarninglists asks). The caller can then
// skip running the check beside its lookups: an answer in memory needs no goroutine.
func (c *Cache) CachedWarninglists(key string, values []string) (map[string][]intel.WarninglistHit, bool) {
	if _, ok := c.next.(warninglistChecker); !ok || len(values) == 0 {
		return nil, true // CheckWarninglists would answer nothing too
	}
	return c.cachedHits(c.baseURL+"\x00"+c.keyHash(key)+"\x00", values)
}

// cachedHits returns the cached hits of every value, and false when one is not cached.
func (c *Cache) cachedHits(prefix string, values []string) (map[string][]intel.WarninglistHit, bool) {
	if c.warn == nil {
		return nil, false
	}
	out := map[string][]intel.WarninglistHit{}
	for _, v := range values {
		hits, ok := c.warn.Get(prefix + v)
		if !ok {
			return nil, false
		}
		if len(hits) > 0 {
			out[v] = hits
		}
	}
	return out, true
}

// maxHitsEntry bounds a value's warninglist hits in the shared store: a value on a dozen lists
// takes about 1.5 KiB. A check of 1,000 values reads at most 2 MiB.
const maxHitsEntry = 2 << 10

// hitsCodec stores warninglist check answers in the shared store, one entry per value.
var hitsCodec = codec[[]intel.WarninglistHit]{encode: appendHits, decode: decodeHits}

// checkShared answers a warninglist check from the shared store where another instance
// already asked MISP about a value (one round trip for all the values), asks MISP once about
// the others and stores their answers (hit or no hit), so that the fleet checks a value once
// per TTL. Unlike a search, no lock is taken: a check is one call for a request's values,
// and two instances checking the same value at the same moment both ask MISP.
func (c *Cache) checkShared(ctx context.Context, wc warninglistChecker, key, prefix string, values []string) (map[string][]intel.WarninglistHit, error) {
	aead := newSealer(c.baseURL, key)
	refs := make([]entryRef, len(values))
	for i, v := range values {
		refs[i] = entryRef{key: sharedKey(c.baseURL, key, "warninglist", v), aead: aead}
	}
	before, cancel := context.WithTimeout(ctx, c.shared.cfg.Timeout)
	stored, fetched, found, readable := loadMany(before, c.shared, refs, c.ttl, maxHitsEntry, hitsCodec)
	cancel()
	out := map[string][]intel.WarninglistHit{}
	var ask []string
	var askRefs []entryRef
	for i, v := range values {
		if !found[i] {
			ask, askRefs = append(ask, v), append(askRefs, refs[i])
			continue
		}
		c.warn.AddUntil(prefix+v, stored[i], fetched[i].Add(c.ttl))
		if len(stored[i]) > 0 {
			out[v] = stored[i]
		}
	}
	if len(ask) == 0 {
		return out, nil
	}
	fetchedAt := time.Now()
	got, err := wc.CheckWarninglists(ctx, key, ask)
	if err != nil {
		return nil, err
	}
	payloads := make([][]byte, len(ask))
	for i, v := range ask {
		c.warn.Add(prefix+v, got[v])
		if len(got[v]) > 0 {
			out[v] = got[v]
		}
		payloads[i] = appendHits(nil, got[v])
	}
	if readable { // a store that did not answer is not written to
		after, cancel := context.WithTimeout(ctx, c.shared.cfg.Timeout)
		c.shared.putMany(after, askRefs, c.ttl, maxHitsEntry, fetchedAt, payloads)
		cancel()
	}
	return out, nil
}
