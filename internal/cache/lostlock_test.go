package cache_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/misp-relay/misp-relay/internal/cache"
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

// TestFailedReadsAreFallbacks: a lookup that went to MISP because reading the store failed is
// a fallback (relay_redis_fallbacks_total), also when the read that failed came after taking
// the lock (a wait's failed looks: TestWaitEndsWhenTheStoreKeepsFailing).
func TestFailedReadsAreFallbacks(t *testing.T) {
	f := &calls{}
	store := newMemStore()
	a := newInstance(store, backend(f), "", cache.SharedConfig{})
	failRecheck := func() { store.failGets.Store(1) } // the read again after the lock fails
	store.beforeLock.Store(&failRecheck)
	search(t, a.cache, "k", q)
	if st := a.shared.Stats(); st.Fallbacks != 1 {
		t.Errorf("stats %+v: the lookup went to MISP because a read failed, want 1 fallback", st)
	}
}
