package cache

import "github.com/misp-relay/misp-relay/internal/intel"

// Next returns the backend the cache is in front of, for callers that ask it more than
// lookups: the dashboard tiles' counts go to the MISP itself (package tiles caches its own
// answers per tenant).
func (c *Cache) Next() intel.Backend { return c.next }
