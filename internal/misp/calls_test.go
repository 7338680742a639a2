package misp_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
)

func TestVersionAndSightingsAgainstMISPTest(t *testing.T) {
	srv := misptest.New(t, testKey, feedEvent(t, "11111111-1111-4111-8111-111111111111", "e", "2", "ORG", nil,
		attr("ip-dst", "Network activity", "192.0.2.1", true)))
	c := newClient(t, srv.URL)
	ctx := context.Background()

	v, err := c.Version(ctx, testKey)
	if err != nil || v != "2.5.1" {
		t.Fatalf("Version = %q, %v", v, err)
	}
	if _, err := c.Version(ctx, "wrong-key"); !errors.Is(err, misp.ErrPermission) ||
		!strings.Contains(err.Error(), "Authentication failed") {
		t.Errorf("Version with a wrong key: %v", err)
	}
	if err := c.AddSighting(ctx, testKey, "192.0.2.1", intel.Sighting, "XDR"); err != nil {
		t.Errorf("AddSighting: %v", err)
	}
	if err := c.AddSighting(ctx, testKey, "192.0.2.1", intel.FalsePositive, "XDR"); err != nil {
		t.Errorf("AddSighting false positive: %v", err)
	}
	err = c.AddSighting(ctx, testKey, "198.51.100.1", intel.Sighting, "XDR")
	if !errors.Is(err, misp.ErrNotFound) || !strings.Contains(asError(t, err).Detail, "holds no attribute with this value") {
		t.Errorf("AddSighting of an unknown value: %v", err)
	}
	err = c.AddSighting(ctx, testKey, "192.0.2.1", intel.SightingType("7"), "XDR")
	if !errors.Is(err, misp.ErrUnexpected) || !strings.Contains(err.Error(), "Invalid type") {
		t.Errorf("AddSighting with a bad type: %v", err)
	}
	want := []misptest.SightingAdd{
		{Values: []string{"192.0.2.1"}, Type: "0", Source: "XDR"},
		{Values: []string{"192.0.2.1"}, Type: "1", Source: "XDR"},
	}
	if diff := cmp.Diff(want, srv.Sightings()); diff != "" {
		t.Errorf("sightings (-want +got):\n%s", diff)
	}
	// A failed sighting is not retried.
	if n := countPath(srv.Requests(), "/sightings/add"); n != 4 {
		t.Errorf("%d sighting requests, want 4", n)
	}

	srv.Fail("/sightings/add", http.StatusServiceUnavailable, "<html><title>503</title></html>")
	if err := c.AddSighting(ctx, testKey, "192.0.2.1", intel.Sighting, "XDR"); !errors.Is(err, misp.ErrUnavailable) {
		t.Errorf("AddSighting on a 503: %v", err)
	}
	if n := countPath(srv.Requests(), "/sightings/add"); n != 5 {
		t.Errorf("%d sighting requests after a 503, want 5 (no retry)", n)
	}
}

func countPath(reqs []misptest.Request, path string) int {
	n := 0
	for _, r := range reqs {
		if r.Path == path {
			n++
		}
	}
	return n
}
