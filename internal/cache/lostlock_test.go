package cache_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/misp-relay/misp-relay/internal/cache"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

// lostReplyStore is a memStore whose next Lock takes effect on the server but whose reply is
// lost: the client's REDIS_TIMEOUT ends first (a latency spike on a real Redis).
type lostReplyStore struct {
	*memStore
	loseLock atomic.Bool
}

func (s *lostReplyStore) Lock(ctx context.Context, key, token string, ttl time.Duration) (bool, error) {
	locked, err := s.memStore.Lock(ctx, key, token, ttl)
	if err == nil && s.loseLock.CompareAndSwap(true, false) {
		return false, context.DeadlineExceeded
	}
	return locked, err
}

// TestLostLockReplyDoesNotStallTheFleet: one lost Lock reply on instance a (Redis took the
// lock, a timed out), then an answer a cannot share (MISP failed, or it is over MaxEntry): a
// frees the lock it may hold (its token's, only), so another instance asking the same asks
// MISP at once instead of waiting the whole lease (5 s) for a lock nobody uses.
func TestLostLockReplyDoesNotStallTheFleet(t *testing.T) {
	for name, tc := range map[string]struct {
		fail     bool
		maxEntry int
	}{
		"MISP error":       {fail: true},
		"oversized answer": {maxEntry: 64},
	} {
		t.Run(name, func(t *testing.T) {
			store := &lostReplyStore{memStore: newMemStore()}
			g := &gatedMISP{}
			a := newInstance(store, g, "", cache.SharedConfig{MaxEntry: tc.maxEntry})
			f := &calls{}
			b := newInstance(store, backend(f), "", cache.SharedConfig{})
			synctest.Test(t, func(t *testing.T) {
				g.gate, g.entered = make(chan bool), make(chan struct{}, 1)
				store.loseLock.Store(true)
				done := make(chan struct{})
				go func() {
					_, _ = a.cache.Search(context.Background(), "k", q)
					close(done)
				}()
				<-g.entered
				g.gate <- tc.fail
				<-done // a is finished: nothing stored, nobody asking MISP
				start := time.Now()
				search(t, b.cache, "k", q)
				if waited := time.Since(start); waited > time.Second {
					t.Errorf("b waited %v for a lock nobody holds (REDIS_TIMEOUT is %v)", waited, cache.DefaultSharedTimeout)
				}
			})
		})
	}
}

// A lookup that went to MISP because reading the store failed is a fallback
// (relay_redis_fallbacks_total: "lookups that went to MISP ... reading it failed").
func TestFailedReadsAreFallbacks(t *testing.T) {
	t.Run("re-read after the lock fails", func(t *testing.T) {
		f := &calls{}
		store := newMemStore()
		a := newInstance(store, backend(f), "", cache.SharedConfig{})
		failRecheck := func() { store.failGets.Store(1) }
		store.beforeLock.Store(&failRecheck)
		search(t, a.cache, "k", q)
		if st := a.shared.Stats(); st.Fallbacks != 1 {
			t.Errorf("stats %+v: the lookup went to MISP because a read failed, want 1 fallback", st)
		}
	})
	t.Run("wait ends on failed looks", func(t *testing.T) {
		g := &gatedMISP{}
		store := newMemStore()
		a := newInstance(store, g, "", cache.SharedConfig{})
		b := newInstance(store, g, "", cache.SharedConfig{})
		synctest.Test(t, func(t *testing.T) {
			g.gate, g.entered = make(chan bool), make(chan struct{}, 2)
			done := make(chan []intel.Event, 2)
			go func() { done <- search(t, a.cache, "k", q) }()
			<-g.entered
			go func() { done <- search(t, b.cache, "k", q) }()
			testkit.Advance(10 * time.Millisecond)
			store.failGets.Store(2)
			<-g.entered // b asks MISP itself
			close(g.gate)
			<-done
			<-done
			if st := b.shared.Stats(); st.Fallbacks != 1 {
				t.Errorf("b's stats %+v: it went to MISP because two reads failed, want 1 fallback", st)
			}
		})
	})
}
