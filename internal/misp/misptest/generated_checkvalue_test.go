package misptest_test

import (
	"context"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/misp/misptest"
)

// TestGeneratedCheckValue: Generated answers the relay's warninglist check as MISP does when
// no value is on a list, so the load benchmark measures the check without a failure (and a
// log line) per request.
func TestGeneratedCheckValue(t *testing.T) {
	g := misptest.NewGenerated(misptest.GeneratedOptions{Key: generatedKey, Events: 1})
	c := generatedClient(t, g, 5*time.Second)
	hits, err := c.CheckWarninglists(context.Background(), generatedKey, []string{"198.51.100.7", "203.0.113.1"})
	if err != nil || len(hits) != 0 {
		t.Errorf("CheckWarninglists = %v, %v; want no hit", hits, err)
	}
	if n := g.Checks(); n != 1 {
		t.Errorf("%d checkValue calls, want 1", n)
	}
}
