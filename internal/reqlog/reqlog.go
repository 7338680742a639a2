// Package reqlog carries per-request counters through the context, so that the one log line
// (and the metrics) of a request can say how many MISP calls and cache hits it cost, although
// those happen deep inside the MISP client and the cache. It holds counters only: never a
// header, a body, a key or a value looked up.
package reqlog

import (
	"context"
	"sync"
	"sync/atomic"
)

// Counters of one request. All methods are safe on a nil *Counters (a call outside a request).
type Counters struct {
	upstream  atomic.Int64
	cacheHits atomic.Int64

	mu      sync.Mutex
	outcome string // the first error code answered, "" for success
}

type key struct{}

// New returns ctx carrying fresh counters.
func New(ctx context.Context) (context.Context, *Counters) {
	c := &Counters{}
	return context.WithValue(ctx, key{}, c), c
}

// From returns the request's counters, or nil.
func From(ctx context.Context) *Counters {
	c, _ := ctx.Value(key{}).(*Counters)
	return c
}

// AddUpstream counts one HTTP call to MISP or urlscan.io.
func (c *Counters) AddUpstream() {
	if c != nil {
		c.upstream.Add(1)
	}
}

// AddCacheHit counts one lookup answered from the cache.
func (c *Counters) AddCacheHit() {
	if c != nil {
		c.cacheHits.Add(1)
	}
}

// SetOutcome records the error code of the answer; the first one wins.
func (c *Counters) SetOutcome(code string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.outcome == "" {
		c.outcome = code
	}
}

// Upstream is the number of upstream calls so far.
func (c *Counters) Upstream() int64 {
	if c == nil {
		return 0
	}
	return c.upstream.Load()
}

// CacheHits is the number of cache hits so far.
func (c *Counters) CacheHits() int64 {
	if c == nil {
		return 0
	}
	return c.cacheHits.Load()
}

// Outcome is "ok" or the first error code answered.
func (c *Counters) Outcome() string {
	if c == nil {
		return "ok"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.outcome == "" {
		return "ok"
	}
	return c.outcome
}
