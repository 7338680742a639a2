package misp_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
)

// realAnswer serves testdata/misp-2.5.1/name, an answer recorded from a real MISP 2.5.1.
func realAnswer(t *testing.T, status int, name string) misptest.Answer {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "misp-2.5.1", name))
	if err != nil {
		t.Fatal(err)
	}
	return misptest.Raw(status, "application/json", string(raw))
}

// TestRealMISPAnswers: the client reads what a real MISP 2.5.1 answered (recorded, see the
// testdata README) as the relay needs it: a batch's attributes given to each value, with their
// events, tags, warnings, sightings and decay scores; warninglist hits and MISP's empty-array
// "no hit"; the version; a refused sighting and a wrong key, as their error kinds.
func TestRealMISPAnswers(t *testing.T) {
	ctx := context.Background()
	srv := misptest.New(t, testKey)
	srv.Always("/attributes/restSearch", realAnswer(t, http.StatusOK, "restsearch_batch.json"))
	c := newClient(t, srv.URL)
	domains := []string{"domain", "domain|ip", "hostname", "hostname|port"}
	ips := []string{"ip-src", "ip-dst", "ip-src|port", "ip-dst|port"}
	got := c.Lookup(ctx, testKey, []intel.Query{
		{Value: "c2.relay-test.example", Types: domains, Limit: 10},
		{Value: "8.8.8.8", Types: ips, Limit: 10},
		{Value: "fp.relay-test.example", Types: domains, Limit: 10},
	})
	type summary struct {
		Event, Level, Value string
		Tags, Warnings      int
		Seen, FalsePositive int
		Decay               bool
	}
	var sums [][]summary
	for _, r := range got {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		var s []summary
		for _, e := range r.Events {
			for _, a := range e.Attributes {
				s = append(s, summary{
					e.UUID[:8], []string{"", "High", "Medium", "Low", "Undefined"}[e.ThreatLevel], a.Value,
					len(e.Tags), len(a.Warnings), a.Sightings.Seen, a.Sightings.FalsePositive, len(a.Decay) > 0,
				})
			}
		}
		sums = append(sums, s)
	}
	want := [][]summary{
		{{"74addc63", "High", "c2.relay-test.example", 3, 0, 0, 0, true}, {"aaca2b66", "Medium", "c2.relay-test.example", 2, 0, 0, 0, true}},
		{{"74addc63", "High", "8.8.8.8", 3, 1, 0, 0, true}},
		{{"74addc63", "High", "fp.relay-test.example", 3, 0, 1, 3, true}},
	}
	if diff := cmp.Diff(want, sums); diff != "" {
		t.Errorf("the recorded batch answer read as (-want +got):\n%s", diff)
	}

	srv.Script("/warninglists/checkValue", realAnswer(t, http.StatusOK, "checkvalue_hits.json"), realAnswer(t, http.StatusOK, "checkvalue_none.json"))
	hits, err := c.CheckWarninglists(ctx, testKey, []string{"8.8.8.8", "c2.relay-test.example", "10.11.12.13"})
	if err != nil || len(hits) != 2 || hits["8.8.8.8"][0].List != "List of known IPv4 public DNS resolvers" || hits["10.11.12.13"][0].Match != "10.0.0.0/8" {
		t.Errorf("checkValue hits: %+v, %v", hits, err)
	}
	if hits, err := c.CheckWarninglists(ctx, testKey, []string{"c2.relay-test.example"}); err != nil || len(hits) != 0 {
		t.Errorf("checkValue without a hit: %+v, %v", hits, err)
	}

	srv.Always("/servers/getVersion", realAnswer(t, http.StatusOK, "getversion.json"))
	if v, err := c.Version(ctx, testKey); err != nil || v != "2.5.1" {
		t.Errorf("Version = %q, %v", v, err)
	}
	srv.Always("/sightings/add", realAnswer(t, http.StatusOK, "sightings_add_not_found.json"))
	if err := c.AddSighting(ctx, testKey, "nothing.relay-test.example", intel.Sighting, "XDR"); !errors.Is(err, misp.ErrNotFound) {
		t.Errorf("a refused sighting: %v, want not found", err)
	}
	srv.Always("/servers/getVersion", realAnswer(t, http.StatusForbidden, "error_403_auth.json"))
	if _, err := c.Version(ctx, testKey); !errors.Is(err, misp.ErrPermission) {
		t.Errorf("a wrong key: %v, want permission denied", err)
	}
}
