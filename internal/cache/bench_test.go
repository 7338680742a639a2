package cache_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/cache"
	"github.com/misp-relay/misp-relay/internal/intel"
)

// BenchmarkLookup is the cache's own cost for a 5-observable request: every query answered
// from the cache (hit), and every query going to the backend, as with caching off (miss).
//
//	go test -run '^$' -bench Lookup -benchmem ./internal/cache/
func BenchmarkLookup(b *testing.B) {
	var qs []intel.Query
	for i := range 5 {
		qs = append(qs, intel.Query{Value: fmt.Sprintf("198.51.100.%d", i), Types: []string{"ip-src", "ip-dst"}, Limit: 200})
	}
	const key = "0123456789abcdef0123456789abcdef01234567"
	for _, tt := range []struct {
		name string
		ttl  time.Duration
	}{{"hit", time.Hour}, {"miss", 0}} {
		b.Run(tt.name, func(b *testing.B) {
			c := cache.New(backend(new(calls)), cache.Config{BaseURL: "https://misp.example", TTL: tt.ttl})
			ctx := context.Background()
			for b.Loop() {
				for _, r := range c.Lookup(ctx, key, qs) {
					if r.Err != nil {
						b.Fatal(r.Err)
					}
				}
			}
		})
	}
}
