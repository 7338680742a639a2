package feed_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/intel"
)

// ignoreEvidence leaves out of a comparison the evidence the verdict policy reads (attribute
// UUID, own tags, warninglist hits, sightings, decay; event creator UUID, publication,
// analysis), for tests about other fields. TestEvidence checks those.
var ignoreEvidence = cmp.Options{
	cmpopts.IgnoreFields(intel.Event{}, "OrgUUID", "Published", "Analysis"),
	cmpopts.IgnoreFields(intel.Attribute{}, "UUID", "Tags", "Warnings", "Sightings", "Decay"),
}

// TestEvidence loads a feed whose attributes carry their own tags, inherited tags and
// sightings (as a MISP export with sightings does) and checks what Search returns of them.
func TestEvidence(t *testing.T) {
	dir := oneEventFeed(t, map[string]string{
		"9c1b3a52-0a5e-4b55-9d8a-2f9c1e7d5a01": `{"Event":{"uuid":"9c1b3a52-0a5e-4b55-9d8a-2f9c1e7d5a01","info":"evidence","date":"2024-01-02",
		 "threat_level_id":"1","published":false,"analysis":"0","Orgc":{"name":"Example CERT","uuid":"3ec5774b-9c8f-4a83-a0fc-f4bb732aa7b8"},
		 "Tag":[{"name":"tlp:green"}],
		 "Attribute":[{"uuid":"5b6464ca-e0a0-40e0-8e21-d0350acd0835","type":"domain","category":"Network activity","value":"diqjwhebseqhbasdh.com","to_ids":true,
		   "Tag":[{"name":"tlp:amber"},{"name":"tlp:green","inherited":1}],
		   "Sighting":[
		     {"type":"2","date_sighting":"1551253968","source":"honeyp","Organisation":{"name":"ORGNAME"}},
		     {"type":"1","date_sighting":"1551253976","source":"dede","Organisation":{"name":"ORGNAME"}},
		     {"type":"0","date_sighting":"1551253990","source":"","Organisation":{"name":"ORGNAME"}},
		     {"type":"0","date_sighting":"1551253950","source":"sensor-1","Organisation":{"name":"ORGNAME"}},
		     {"type":"0","date_sighting":"1551253999","source":"sensor-1"}]}]}}`,
	})
	s, err := feed.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Search(context.Background(), "", intel.Query{Value: "diqjwhebseqhbasdh.com"})
	if err != nil || len(got) != 1 || len(got[0].Attributes) != 1 {
		t.Fatalf("Search = %+v, %v", got, err)
	}
	ev, a := got[0], got[0].Attributes[0]
	if ev.OrgUUID != "3ec5774b-9c8f-4a83-a0fc-f4bb732aa7b8" || ev.Published || ev.Analysis != intel.AnalysisInitial {
		t.Errorf("event evidence: %+v", ev)
	}
	want := intel.Attribute{
		UUID: "5b6464ca-e0a0-40e0-8e21-d0350acd0835", Type: "domain", Category: "Network activity", Value: "diqjwhebseqhbasdh.com", ToIDS: true,
		Tags: []string{"tlp:amber"}, // the inherited one is the event's
		Sightings: intel.Sightings{
			Seen: 3, FalsePositive: 1, Expiration: 1,
			First:   time.Unix(1551253950, 0).UTC(),
			Last:    time.Unix(1551253999, 0).UTC(),
			Sources: []string{"ORGNAME", "sensor-1"},
			Expires: time.Unix(1551253968, 0).UTC(),
		},
	}
	if diff := cmp.Diff(want, a); diff != "" {
		t.Errorf("attribute (-want +got):\n%s", diff)
	}
}

// TestEvidenceStrict: a feed is the operator's own data, so evidence of the wrong kind is a
// defect that stops the load, as for every other field.
func TestEvidenceStrict(t *testing.T) {
	for name, attr := range map[string]string{
		"sighting type":     `"Sighting":[{"type":{"x":1}}]`,
		"sighting date":     `"Sighting":[{"date_sighting":[1]}]`,
		"inherited":         `"Tag":[{"name":"x","inherited":"maybe"}]`,
		"attribute uuid":    `"uuid":{"a":1}`,
		"decay score":       `"decay_score":[{"score":{"x":1}}]`,
		"warning list name": `"warnings":[{"warninglist_name":[1]}]`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := oneEventFeed(t, map[string]string{
				"9c1b3a52-0a5e-4b55-9d8a-2f9c1e7d5a02": `{"Event":{"uuid":"9c1b3a52-0a5e-4b55-9d8a-2f9c1e7d5a02","info":"x","date":"2024-01-02",
				 "Attribute":[{"type":"domain","value":"a.example",` + attr + `}]}}`,
			})
			if _, err := feed.Load(dir); err == nil {
				t.Errorf("a feed with a bad %s loaded", name)
			}
		})
	}
}

// oneEventFeed writes a feed of the given events (uuid -> file content) with its manifest.
func oneEventFeed(t *testing.T, events map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	manifest := "{"
	for uuid, content := range events {
		if len(manifest) > 1 {
			manifest += ","
		}
		manifest += `"` + uuid + `":{}`
		if err := os.WriteFile(filepath.Join(dir, uuid+".json"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(manifest+"}"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}
