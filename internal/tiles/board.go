package tiles

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
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
//
// XDR's dashboard asks for all its tiles at once, and three of them read the same events: a
// Board lists a tenant's events of a window once for all three (one MISP search, shared by
// the concurrent askers and kept for TTL), and computes one tile once for concurrent askers.
type Board struct {
	ttl time.Duration
	max int

	flight singleflight.Group // by tile key, and by event-list key

	mu      sync.Mutex
	entries map[string]cached
	lists   map[string]cachedList
}

type cachedList struct {
	events  []EventMeta
	expires time.Time
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
	return &Board{ttl: cfg.TTL, max: cfg.Entries, entries: map[string]cached{}, lists: map[string]cachedList{}}
}

// Request is one tile-data question.
type Request struct {
	// Tenant identifies whose data it is (the MISP and the key): answers are never shared
	// between tenants. It must not be the key itself, only something derived from it.
	Tenant string
	Key    string // the tenant's credential for Source
	Source Source
	// UI is the base of links into MISP for events whose source gives none (see Keyed);
	// "" for none.
	UI     string
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
	if b == nil {
		d, err := compute(ctx, r.Source, r.Key, r.Tile, sp, r.UI)
		if err != nil {
			return nil, err
		}
		return b.finish(d, sp, r, ck), nil
	}
	// Concurrent askers of one tile share one computation (under the first one's context).
	v, err, _ := b.flight.Do("tile\x00"+ck, func() (any, error) {
		src := &sharedEvents{Source: r.Source, b: b, tenant: r.Tenant, now: r.Now}
		d, err := compute(ctx, src, r.Key, r.Tile, sp, r.UI)
		if err != nil {
			return nil, err
		}
		return b.finish(d, sp, r, ck), nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*Data), nil
}

// finish stamps d's times and scope and caches it.
func (b *Board) finish(d *Data, sp span, r Request, ck string) *Data {
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
	return d
}

// sharedEvents is a tenant's Source whose event lists the Board shares between tiles.
type sharedEvents struct {
	Source
	b      *Board
	tenant string
	now    time.Time
}

// maxLists bounds the event lists a Board keeps (each up to a period's events).
const maxLists = 256

func (s *sharedEvents) Events(ctx context.Context, key string, w Window) ([]EventMeta, error) {
	lk := s.tenant + "\x00" + w.From.UTC().Format(time.RFC3339) + "\x00" + w.To.UTC().Format(time.RFC3339)
	s.b.mu.Lock()
	l, ok := s.b.lists[lk]
	s.b.mu.Unlock()
	if ok && s.now.Before(l.expires) {
		return l.events, nil
	}
	v, err, _ := s.b.flight.Do("events\x00"+lk, func() (any, error) {
		events, err := s.Source.Events(ctx, key, w)
		if err != nil {
			return nil, err
		}
		s.b.mu.Lock()
		defer s.b.mu.Unlock()
		if len(s.b.lists) >= maxLists {
			clear(s.b.lists)
		}
		s.b.lists[lk] = cachedList{events: events, expires: s.now.Add(s.b.ttl)}
		return events, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]EventMeta), nil
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
