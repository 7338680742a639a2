package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
)

// compositeTypes are the composite attribute types MISP defines (Attribute::getCompositeTypes:
// malware-sample and every type whose name holds a '|'), as of MISP 2.4/2.5.
var compositeTypes = []string{
	"malware-sample", "domain|ip", "hostname|port", "ip-src|port", "ip-dst|port", "regkey|value",
	"filename|md5", "filename|sha1", "filename|sha224", "filename|sha256", "filename|sha384",
	"filename|sha512", "filename|sha512/224", "filename|sha512/256", "filename|sha3-224",
	"filename|sha3-256", "filename|sha3-384", "filename|sha3-512", "filename|authentihash",
	"filename|vhash", "filename|ssdeep", "filename|tlsh", "filename|imphash", "filename|impfuzzy",
	"filename|pehash",
}

// TestCompositeHalvesFeedAndMISP: an attribute of every composite type is found by either half,
// the same way in a feed and through MISP's restSearch (the fake MISP, which splits values as
// MISP does). A malware-sample ("name|md5") is found by its md5 in both.
func TestCompositeHalvesFeedAndMISP(t *testing.T) {
	const evUUID = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
	var attrs []map[string]any
	var halves []string
	for i, typ := range compositeTypes {
		name := strings.NewReplacer("|", "-", "/", "-").Replace(typ)
		first, second := "first-"+name, "second-"+name
		if typ == "malware-sample" {
			first, second = "runas.exe", "0749bae92ca336a02c83d126e04ec628"
		}
		attrs = append(attrs, map[string]any{
			"uuid": "aaaaaaaa-0000-4000-8000-" + padID(i), "type": typ, "category": "Payload delivery",
			"value": first + "|" + second, "to_ids": true, "timestamp": "1700000000",
		})
		halves = append(halves, first, second)
	}
	event, err := json.Marshal(map[string]any{"Event": map[string]any{
		"uuid": evUUID, "info": "Every composite type", "date": "2024-01-01", "threat_level_id": "3",
		"published": true, "analysis": "2", "Orgc": map[string]string{"name": "CIRCL", "uuid": "55f6ea5e-2c60-40e5-964f-47a8950d210f"},
		"Attribute": attrs,
	}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	manifest := `{"` + evUUID + `":{"info":"Every composite type"}}`
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, evUUID+".json"), event, 0o644); err != nil {
		t.Fatal(err)
	}
	store, err := feed.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := misptest.New(t, testMISPKey, event)
	client, err := misp.New(misp.Config{BaseURL: srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	found := func(b intel.Backend, value string) []string {
		r := b.Lookup(context.Background(), testMISPKey, []intel.Query{{Value: value, Limit: 10}})[0]
		evs, err := r.Events, r.Err
		if err != nil {
			t.Fatalf("%T: %v", b, err)
		}
		var out []string
		for _, e := range evs {
			for _, a := range e.Attributes {
				out = append(out, a.Type+"="+a.Value)
			}
		}
		return out
	}
	for i, v := range halves {
		typ := compositeTypes[i/2]
		fromFeed, fromMISP := found(store, v), found(client, v)
		if len(fromFeed) != 1 {
			t.Errorf("%s half %q: the feed found %q, want the one attribute", typ, v, fromFeed)
		}
		if diff := cmp.Diff(fromMISP, fromFeed); diff != "" {
			t.Errorf("%s half %q: feed and MISP differ (-misp +feed):\n%s", typ, v, diff)
		}
	}
}

func padID(i int) string { return fmt.Sprintf("%012d", i) }
