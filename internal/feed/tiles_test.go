package feed_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/tiles"
)

// TestTilesAsMISP: the sample feed as a Store and the same events in the fake MISP, through
// the MISP client, draw the same tiles, every tile and period, at a moment when the
// periods hold the sample's events (15 May 2024; its events date from August 2023 to 14 May
// 2024).
func TestTilesAsMISP(t *testing.T) {
	store, err := feed.Load(sampleFeed)
	if err != nil {
		t.Fatal(err)
	}
	var raws [][]byte
	for _, uuid := range []string{evPhishing, evCobalt, evHarvest, evScanning, "55ea9e0c-8f26-4c8e-9ec5-cf25fb94fef9"} {
		b, err := os.ReadFile(filepath.Join(sampleFeed, uuid+".json"))
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, b)
	}
	const key = "tiles-test-key"
	srv := misptest.New(t, key, raws...)
	client, err := misp.New(misp.Config{BaseURL: srv.URL, PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2024, 5, 15, 12, 0, 0, 0, time.UTC)
	nonEmpty := map[string]bool{}
	for _, d := range tiles.Definitions() {
		for _, p := range tiles.AllPeriods() {
			ask := func(src tiles.Source) *tiles.Data {
				t.Helper()
				got, err := (*tiles.Board)(nil).Data(context.Background(), tiles.Request{
					Tenant: "t", Key: key, Source: src, UI: "https://misp.example", Tile: d.ID, Period: p, Now: now,
				})
				if err != nil {
					t.Fatalf("%s %s: %v", d.ID, p, err)
				}
				return got
			}
			fromFeed, fromMISP := ask(store), ask(client)
			if diff := cmp.Diff(fromMISP, fromFeed); diff != "" {
				t.Errorf("%s %s: feed and MISP differ (-misp +feed):\n%s", d.ID, p, diff)
			}
			if d.ID == tiles.LatestEvents && len(fromFeed.Data.([]string)) > 1 {
				nonEmpty[string(p)] = true
			}
		}
	}
	// The test means something only if the periods hold events.
	if diff := cmp.Diff(map[string]bool{"last_24_hours": true, "last_7_days": true, "last_30_days": true, "last_60_days": true, "last_90_days": true}, nonEmpty); diff != "" {
		t.Errorf("periods with High or Medium events (-want +got):\n%s", diff)
	}
}

// TestSourceTilesAsStore: a public feed (Source, over HTTPS and from a directory) draws the
// same tiles as the Store of the same files, every tile and period, for the sample and a
// generated feed; before its first load it answers unavailable, not figures of part of it.
func TestSourceTilesAsStore(t *testing.T) {
	for name, f := range map[string]genFeed{"sample": sampleGenFeed(t), "generated": newGenFeed(t, 7, 16, 25, 200)} {
		t.Run(name, func(t *testing.T) {
			store, overHTTPS, fromDir := storeAndSources(t, f)
			if _, err := fromDir.CountEvents(t.Context(), "", tiles.Window{To: time.Now()}); err == nil || !strings.Contains(err.Error(), "still loading") {
				t.Errorf("before its load: %v", err)
			}
			for _, s := range []*feed.Source{overHTTPS, fromDir} {
				if err := s.Refresh(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			// The moment: an hour after the feed's newest event.
			all, err := store.Events(t.Context(), "", tiles.Window{From: time.Unix(0, 0), To: time.Unix(1<<40, 0)})
			if err != nil || len(all) == 0 {
				t.Fatalf("%d events, %v", len(all), err)
			}
			var newest time.Time
			for _, e := range all {
				if e.Timestamp.After(newest) {
					newest = e.Timestamp
				}
			}
			now := newest.Add(time.Hour)
			for _, d := range tiles.Definitions() {
				for _, p := range tiles.AllPeriods() {
					ask := func(src tiles.Source) *tiles.Data {
						got, err := (*tiles.Board)(nil).Data(t.Context(), tiles.Request{Source: src, Tile: d.ID, Period: p, Now: now})
						if err != nil {
							t.Fatalf("%s %s: %v", d.ID, p, err)
						}
						return got
					}
					want := ask(store)
					for _, s := range []*feed.Source{overHTTPS, fromDir} {
						if diff := cmp.Diff(want, ask(s)); diff != "" {
							t.Errorf("%s %s %s: (-store +source):\n%s", s.Name(), d.ID, p, diff)
						}
					}
				}
			}
		})
	}
}
