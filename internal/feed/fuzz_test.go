package feed_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/intel"
)

// FuzzLoad: any event file (and any manifest) either loads or fails with an error; a loaded
// feed answers searches without panicking, as a Store and, the same, as a Source.
func FuzzLoad(f *testing.F) {
	const uuid = "57c4445b-c548-4654-af0b-4be3950d210f"
	manifest := `{"` + uuid + `":{"info":"x","threat_level_id":"1"}}`
	f.Add([]byte(manifest), []byte(`{"Event":{"uuid":"`+uuid+`","info":"x","threat_level_id":"1","date":"2024-01-01",
	 "Attribute":[{"type":"ip-dst|port","value":"198.51.100.7|443","category":"Network activity","timestamp":"1"}],
	 "Object":[{"Attribute":[{"type":"md5","value":"d41d8cd98f00b204e9800998ecf8427e"}]}]}}`))
	f.Add([]byte(manifest), []byte(`{"Event":{"uuid":"`+uuid+`","threat_level_id":9,"timestamp":"x","Attribute":[{"type":"","value":""}]}}`))
	f.Add([]byte(manifest), []byte(`{"Event":{"uuid":"other"}}`))
	f.Add([]byte(`{"../etc":{}}`), []byte(`{}`))
	f.Add([]byte(`[]`), []byte(`null`))
	if raw, err := os.ReadFile("../../sample/feed/manifest.json"); err == nil {
		f.Add(raw, []byte(`{}`))
	}
	f.Fuzz(func(t *testing.T, manifestJSON, eventJSON []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "manifest.json"), manifestJSON, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, uuid+".json"), eventJSON, 0o600); err != nil {
			t.Fatal(err)
		}
		// A Source of the same directory loads or fails, never panics; when both load, it
		// answers as the Store does.
		src, err := feed.NewSource(feed.SourceConfig{Name: "fuzz", Location: dir})
		if err != nil {
			t.Fatal(err)
		}
		srcErr := src.Refresh(context.Background())
		store, err := feed.Load(dir)
		if err != nil {
			return
		}
		for _, v := range []string{"198.51.100.7", "443", "d41d8cd98f00b204e9800998ecf8427e", "x"} {
			events, err := store.Search(context.Background(), "", intel.Query{Value: v, Limit: 10})
			if err != nil {
				t.Fatalf("Search: %v", err)
			}
			for _, e := range events {
				if len(e.Attributes) == 0 {
					t.Fatalf("event %s returned without a matched attribute", e.UUID)
				}
			}
			if srcErr != nil {
				continue
			}
			fromSource, err := src.Search(context.Background(), "", intel.Query{Value: v, Limit: 10})
			if err != nil {
				t.Fatalf("Source.Search: %v", err)
			}
			if diff := cmp.Diff(events, fromSource); diff != "" {
				t.Fatalf("Search(%q): Store and Source differ (-store +source):\n%s", v, diff)
			}
		}
	})
}
