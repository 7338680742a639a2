package loadbench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
)

// The fake MISP of the load scenarios is misptest.Generated (tested in misptest); here only
// what loadbench adds: the key and the connection count.
func TestFakeMISPCountsConnections(t *testing.T) {
	f := startFakeMISP(misptest.GeneratedOptions{Events: 1})
	t.Cleanup(f.close)
	c, err := misp.New(misp.Config{BaseURL: f.srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.Search(context.Background(), benchMISPKey, intel.Query{Value: "203.0.113.1", Limit: 10}); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.Searches(); got != 3 {
		t.Errorf("%d searches, want 3", got)
	}
	if got := f.conns.Load(); got != 1 {
		t.Errorf("%d connections for 3 sequential calls, want 1 (kept alive)", got)
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50}, {0.95, 95}, {0.99, 99}, {1, 100}, {0.001, 1}} {
		if got := percentile(d, tc.q); got != tc.want {
			t.Errorf("percentile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile of nothing = %v", got)
	}
}

func TestSelectScenarios(t *testing.T) {
	got, err := selectScenarios("2, cache,2,startup")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.name)
	}
	if diff := cmp.Diff([]string{"throughput", "cache", "startup"}, names); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got, err := selectScenarios("8"); err != nil || len(got) != 1 || got[0].name != "versus" {
		t.Errorf("scenario 8: %v, %v; want versus", got, err)
	}
	if _, err := selectScenarios("9"); err == nil {
		t.Error("scenario 9 accepted")
	}
}

// A flag out of range is refused with usage status 2 and a line naming it, before any
// scenario runs (Build is nil: nothing may be wired).
func TestRunRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-fleet-clients", "0"},
		{"-fleet-clients", "1025"},
		{"-misp-concurrency", "-1"},
		{"-duration", "0s"},
	} {
		var stdout, stderr bytes.Buffer
		if code := Run(context.Background(), []string{"relaybench"}, nil, args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
		if !strings.Contains(stderr.String(), strings.TrimPrefix(args[0], "-")) || stdout.Len() != 0 {
			t.Errorf("%v: stderr %q, stdout %q: want a line naming the flag, and nothing on stdout", args, stderr.String(), stdout.String())
		}
	}
}
