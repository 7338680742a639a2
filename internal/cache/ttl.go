package cache

import (
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// ttlLRU is a size-bounded LRU whose entries expire after ttl. Unlike golang-lru's expirable
// LRU it starts no goroutine (that one's cleanup goroutine can never be stopped): the relay
// drops the caches of MISPs it evicts from its pool, and each would otherwise leave a
// goroutine ticking for ever. Expired entries are dropped when read, and the least recently
// used ones as they expire when entries are added.
type ttlLRU[V any] struct {
	lru *lru.Cache[string, ttlEntry[V]]
	ttl time.Duration
	now func() time.Time
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
}

func newTTLLRU[V any](size int, ttl time.Duration) *ttlLRU[V] {
	c, err := lru.New[string, ttlEntry[V]](size)
	if err != nil {
		panic(err) // only for size <= 0, which New rules out
	}
	return &ttlLRU[V]{lru: c, ttl: ttl, now: time.Now}
}

// Get returns the entry for k when it has not expired.
func (c *ttlLRU[V]) Get(k string) (V, bool) {
	e, ok := c.lru.Get(k)
	if !ok {
		var zero V
		return zero, false
	}
	if !c.now().Before(e.expires) {
		c.lru.Remove(k)
		var zero V
		return zero, false
	}
	return e.v, true
}

// Add stores v for ttl, first dropping a few expired entries from the least recently used
// end, so memory follows what is alive rather than what was ever added.
func (c *ttlLRU[V]) Add(k string, v V) {
	c.AddUntil(k, v, time.Time{})
}

// AddUntil is Add for an entry that expires at until if that is sooner than ttl from now
// (an answer read from the shared store, which MISP gave some time ago). A zero until is ttl.
func (c *ttlLRU[V]) AddUntil(k string, v V, until time.Time) {
	now := c.now()
	for range 4 {
		_, oldest, ok := c.lru.GetOldest()
		if !ok || now.Before(oldest.expires) {
			break
		}
		c.lru.RemoveOldest()
	}
	expires := now.Add(c.ttl)
	if !until.IsZero() && until.Before(expires) {
		expires = until
	}
	c.lru.Add(k, ttlEntry[V]{v: v, expires: expires})
}

// Len is the number of entries held, expired ones not yet dropped included.
func (c *ttlLRU[V]) Len() int { return c.lru.Len() }
