package cache

import (
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/misp-relay/misp-relay/internal/testkit"
)

func TestTTLLRUExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTTLLRU[int](3, time.Minute)
		c.Add("a", 1)
		testkit.Advance(30 * time.Second) // synctest's clock: no real wait
		c.Add("b", 2)
		if v, ok := c.Get("a"); !ok || v != 1 {
			t.Errorf("a = %v, %v before its TTL", v, ok)
		}
		testkit.Advance(31 * time.Second)
		if _, ok := c.Get("a"); ok {
			t.Error("a is still there after its TTL")
		}
		if v, ok := c.Get("b"); !ok || v != 2 {
			t.Errorf("b = %v, %v before its TTL", v, ok)
		}
		testkit.Advance(time.Minute)
		c.Add("c", 3) // b expired: dropped from the old end as c comes in
		if n := c.Len(); n != 1 {
			t.Errorf("%d entries held, want only c", n)
		}
	})
}

// TestCachesStartNoGoroutine: a cache the relay drops (with an evicted MISP) must leave
// nothing running behind it.
func TestCachesStartNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 100 {
		_ = New(nil, Config{TTL: time.Minute, Size: 10})
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("100 caches left %d goroutines running", after-before)
	}
}
