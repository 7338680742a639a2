package loadbench

import (
	"context"
	"testing"
	"time"
)

// TestFakeMISPCheckValue: the fake answers the relay's warninglist check as MISP does when no
// value is on a list, so the benchmark measures the check without logging a failure per
// request.
func TestFakeMISPCheckValue(t *testing.T) {
	f := &fakeMISP{events: 1, attrs: 1}
	c := newClient(t, f, 5*time.Second)
	hits, err := c.CheckWarninglists(context.Background(), benchMISPKey, []string{"198.51.100.7", "203.0.113.1"})
	if err != nil || len(hits) != 0 {
		t.Errorf("CheckWarninglists = %v, %v; want no hit", hits, err)
	}
	if got := f.checks.Load(); got != 1 {
		t.Errorf("%d checkValue calls, want 1", got)
	}
}
