package tiles

import (
	"context"
	"sync"
	"time"
)

// Defaults of BoardConfig.
const (
	DefaultTTL     = 5 * time.Minute
	DefaultEntries = 4096
)

// BoardConfig configures a Board.
type BoardConfig struct {
	// TTL is how long an answer is served again to the same tenant: XDR's dashboard asks
	// for every tile every few minutes, and the figures of a period barely move in that time.
	// Default DefaultTTL.
	TTL time.Duration
	// Entries bounds the answers kept (tenants x tiles x periods). Default DefaultEntries.
	Entries int
}

// Board answers tile data, caching each answer per tenant for TTL. A nil *Board caches
// nothing. It is safe for concurrent use.
type Board struct {
	ttl time.Duration
	max int

	mu      sync.Mutex
	entries map[string]cached
}

type cached struct {
	data    *Data
	expires time.Time
}

// NewBoard returns a Board.
func NewBoard(cfg BoardConfig) *Board {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Entries <= 0 {
		cfg.Entries = DefaultEntries
	}
	return &Board{ttl: cfg.TTL, max: cfg.Entries, entries: map[string]cached{}}
}

// Request is one tile-data question.
type Request struct {
	// Tenant identifies whose data it is (the MISP and the key): answers are never shared
	// between tenants. It must not be the key itself, only something derived from it.
	Tenant string
	Key    string // the tenant's credential for Source
	Source Source
	UI     string // base of links into MISP; "" for none
	Tile   string
	Period Period
	Now    time.Time
}

// Data answers r: from the cache when a tenant asked the same within TTL, else from
// r.Source. A failure is not cached. Unknown tiles and periods are *ArgumentError.
func (b *Board) Data(ctx context.Context, r Request) (*Data, error) {
	if _, err := DefinitionOf(r.Tile); err != nil {
		return nil, err
	}
	sp, err := spanOf(r.Period, r.Now)
	if err != nil {
		return nil, err
	}
	if r.Source == nil {
		return nil, ErrNoSource
	}
	ck := r.Tenant + "\x00" + r.Tile + "\x00" + string(r.Period)
	if d, ok := b.get(ck, r.Now); ok {
		return d, nil
	}
	d, err := compute(ctx, r.Source, r.Key, r.Tile, sp, r.UI)
	if err != nil {
		return nil, err
	}
	ttl := DefaultTTL
	if b != nil {
		ttl = b.ttl
	}
	// The period observed ends now, within its last (partial) bucket; the figures hold from
	// now for as long as the Board serves them again.
	now := r.Now.UTC().Truncate(time.Second)
	end := sp.cur.To
	if now.Before(end) {
		end = now
	}
	d.ObservedTime = TimeRange{StartTime: iso(sp.cur.From), EndTime: iso(end)}
	d.ValidTime = TimeRange{StartTime: iso(now), EndTime: iso(now.Add(ttl))}
	// The figures are the tenant's (its MISP, seen with its key): XDR must not show them to
	// another organisation.
	d.CacheScope = "org"
	b.put(ck, d, r.Now)
	return d, nil
}

func iso(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func (b *Board) get(k string, now time.Time) (*Data, bool) {
	if b == nil {
		return nil, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[k]
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e.data, true
}

func (b *Board) put(k string, d *Data, now time.Time) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.entries) >= b.max {
		for k, e := range b.entries { // drop the expired; if none, everything
			if !now.Before(e.expires) {
				delete(b.entries, k)
			}
		}
		if len(b.entries) >= b.max {
			clear(b.entries)
		}
	}
	b.entries[k] = cached{data: d, expires: now.Add(b.ttl)}
}
