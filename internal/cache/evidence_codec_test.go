package cache

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/misp-relay/misp-relay/internal/intel"
)

// TestEvidenceRoundTrip: an answer read from the shared cache carries everything the verdict
// policy weighs, so a relay that got it from Redis judges as the one that asked MISP.
func TestEvidenceRoundTrip(t *testing.T) {
	events := []intel.Event{{
		UUID: "5f1c1b9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", Info: "resolver", ThreatLevel: 1, Org: "CIRCL",
		OrgUUID: "55f6ea5e-2c60-40e5-964f-47a8950d210f", Published: true, Analysis: intel.AnalysisComplete,
		Tags: []string{"tlp:green"},
		Attributes: []intel.Attribute{{
			UUID: "11111111-0000-4000-8000-000000000001", Type: "ip-dst", Value: "8.8.8.8", ToIDS: true,
			Tags:     []string{"tlp:red", `misp-galaxy:threat-actor="X"`},
			Warnings: []intel.WarninglistHit{{List: "List of known IPv4 public DNS resolvers", Match: "8.8.8.8/32", Category: "false_positive"}, {List: "#7"}},
			Sightings: intel.Sightings{
				Seen: 3, FalsePositive: 1, Expiration: 2,
				First: time.Unix(1551253950, 0).UTC(), Last: time.Unix(1551253999, 0).UTC(), Expires: time.Unix(1700000000, 0).UTC(),
				Sources: []string{"ORGNAME", "sensor-1"},
			},
			Decay: []intel.DecayScore{{Model: "NIDS Simple Decaying Model", Score: 49.98530793883329}, {Model: "Short", Score: 0, Decayed: true}, {Score: math.Inf(1)}},
		}, {
			Type: "domain", Value: "x.example", // no evidence at all
		}},
	}, {UUID: "b", Analysis: intel.AnalysisInitial}}
	got, err := decodeEvents(appendEvents(nil, events))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(events, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	// Every truncation of the entry is refused, never half read.
	b := appendEvents(nil, events)
	for n := range len(b) {
		if _, err := decodeEvents(b[:n]); err == nil {
			t.Fatalf("a %d-byte prefix of a %d-byte entry decoded", n, len(b))
		}
	}
}
