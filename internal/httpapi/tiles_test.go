package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/cache"
	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/gen"
	"github.com/misp-relay/misp-relay/internal/httpapi"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/service"
	"github.com/misp-relay/misp-relay/internal/tiles"
)

var tileIDs = []string{"misp-summary", "misp-threat-levels", "misp-attribute-types", "misp-top-tags", "misp-latest-events"}

// tileEvent is a feed event changed at ts with one attribute per type (IDS flag as given).
func tileEvent(uuid, info, level string, ts time.Time, tags []string, attrs ...[2]string) []byte {
	var tagList, attrList []map[string]any
	for _, t := range tags {
		tagList = append(tagList, map[string]any{"name": t})
	}
	for i, a := range attrs {
		attrList = append(attrList, map[string]any{
			"type": a[0], "category": "Network activity", "value": fmt.Sprintf("v%d.%s.example", i, uuid[:8]),
			"to_ids": a[1] == "ids", "timestamp": fmt.Sprint(ts.Unix()),
		})
	}
	b, _ := json.Marshal(map[string]any{"Event": map[string]any{
		"uuid": uuid, "info": info, "date": ts.Format(time.DateOnly), "timestamp": fmt.Sprint(ts.Unix()),
		"threat_level_id": level, "Orgc": map[string]any{"name": "CIRCL", "uuid": "55f6ea5e-2c60-40e5-964f-47a8950d210f"},
		"Tag": tagList, "Attribute": attrList,
	}})
	return b
}

// tileSeed: events half an hour, two and a half days and 40 days before fixedNow.
func tileSeed() [][]byte {
	return [][]byte{
		tileEvent("11111111-1111-4111-8111-111111111111", "Sofacy | phishing", "1", fixedNow.Add(-30*time.Minute),
			[]string{`misp-galaxy:threat-actor="Sofacy"`, "tlp:amber"}, [2]string{"ip-dst", "ids"}, [2]string{"md5", "ids"}, [2]string{"domain", ""}),
		tileEvent("22222222-2222-4222-8222-222222222222", "Botnet", "2", fixedNow.Add(-60*time.Hour),
			[]string{"tlp:amber"}, [2]string{"url", "ids"}),
		tileEvent("33333333-3333-4333-8333-333333333333", "Old", "1", fixedNow.Add(-40*24*time.Hour), nil, [2]string{"email-src", "ids"}),
	}
}

func TestTilesDefinitions(t *testing.T) {
	h := newHarness(t, options{})
	_, body := h.post("/tiles", "")
	var ids []string
	for _, d := range body["data"].([]any) {
		ids = append(ids, d.(map[string]any)["id"].(string))
	}
	if diff := cmp.Diff(tileIDs, ids); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	for i, id := range tileIDs {
		_, one := h.post("/tiles/tile", `{"tile_id":"`+id+`"}`)
		if diff := cmp.Diff(body["data"].([]any)[i], one["data"]); diff != "" {
			t.Errorf("%s (-list +tile):\n%s", id, diff)
		}
	}
	if got := len(h.misp.Requests()); got != 0 {
		t.Errorf("definitions made %d MISP calls", got)
	}
}

// TestTileDataEveryTileAndPeriod asks every tile for every period of the fake MISP (every
// answer checked against the spec by the harness) and checks the figures of the seed.
func TestTileDataEveryTileAndPeriod(t *testing.T) {
	h := newHarness(t, options{events: tileSeed(), uiURL: "https://misp.example"})
	// events, attributes, IDS attributes, sightings, per period.
	summaries := map[string][]float64{
		"last_24_hours": {1, 3, 2, 0},
		"last_7_days":   {2, 4, 3, 0},
		"last_30_days":  {2, 4, 3, 0},
		"last_60_days":  {3, 5, 4, 0},
		"last_90_days":  {3, 5, 4, 0},
	}
	for _, p := range tiles.AllPeriods() {
		for _, id := range tileIDs {
			t.Run(id+"/"+string(p), func(t *testing.T) {
				_, body := h.post("/tiles/tile-data", `{"tile_id":"`+id+`","period":"`+string(p)+`"}`)
				if body["errors"] != nil {
					t.Fatalf("errors: %v", body["errors"])
				}
				d := body["data"].(map[string]any)
				if d["cache_scope"] != "org" {
					t.Errorf("cache_scope %v", d["cache_scope"])
				}
				if id == "misp-summary" {
					var got []float64
					for _, m := range d["data"].([]any) {
						got = append(got, m.(map[string]any)["value"].(float64))
					}
					if diff := cmp.Diff(summaries[string(p)], got); diff != "" {
						t.Errorf("figures (-want +got):\n%s", diff)
					}
				}
			})
		}
	}
	_, body := h.post("/tiles/tile-data", `{"tile_id":"misp-latest-events","period":"last_7_days"}`)
	want := []any{
		"| Threat | Event | Organisation | Date | Changed | Attributes |",
		"| --- | --- | --- | --- | --- | ---: |",
		`| High | [Sofacy \| phishing](https://misp.example/events/view/11111111-1111-4111-8111-111111111111) | CIRCL | 2025-12-31 | 2025-12-31 23:30 | 3 |`,
		"| Medium | [Botnet](https://misp.example/events/view/22222222-2222-4222-8222-222222222222) | CIRCL | 2025-12-29 | 2025-12-29 12:00 | 1 |",
	}
	if diff := cmp.Diff(want, body["data"].(map[string]any)["data"]); diff != "" {
		t.Errorf("latest events (-want +got):\n%s", diff)
	}
	_, body = h.post("/tiles/tile-data", `{"tile_id":"misp-threat-levels","period":"last_24_hours"}`)
	d := body["data"].(map[string]any)
	wantTimes := map[string]any{"start_time": "2025-12-31T00:00:00Z", "end_time": "2026-01-01T00:00:00Z"}
	if diff := cmp.Diff(wantTimes, d["observed_time"]); diff != "" {
		t.Errorf("observed_time (-want +got):\n%s", diff)
	}
	last := d["data"].([]any)[23].(map[string]any)
	wantBar := map[string]any{"key": float64(fixedNow.Add(-time.Hour).UnixMilli()), "label": "Dec 31 23:00", "value": float64(1), "values": []any{
		map[string]any{"key": "high", "value": float64(1)},
		map[string]any{"key": "medium", "value": float64(0)},
		map[string]any{"key": "low", "value": float64(0)},
		map[string]any{"key": "undefined", "value": float64(0)},
	}}
	if diff := cmp.Diff(wantBar, last); diff != "" {
		t.Errorf("last bar (-want +got):\n%s", diff)
	}
}

func TestTileDataFromAFeed(t *testing.T) {
	h := newHarness(t, options{feedDir: "../../sample/feed"})
	for _, id := range tileIDs {
		_, body := h.post("/tiles/tile-data", `{"tile_id":"`+id+`","period":"last_90_days"}`)
		if body["errors"] != nil || body["data"] == nil {
			t.Errorf("%s: %v", id, body)
		}
	}
}

// TestTileDataBehindTheCache: the relay's backends are caches in front of MISP clients; the
// tiles reach the client, and the service's Board answers a tenant again from memory.
func TestTileDataBehindTheCache(t *testing.T) {
	h := newHarness(t, options{})
	srv := misptest.New(t, testMISPKey, tileSeed()...)
	client, err := misp.New(misp.Config{BaseURL: srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h.serve(service.Config{
		Backend: cache.New(client, cache.Config{BaseURL: srv.URL, TTL: time.Minute, Size: 10}),
		Tiles:   tiles.NewBoard(tiles.BoardConfig{}),
		Now:     func() time.Time { return fixedNow },
	})
	const req = `{"tile_id":"misp-summary","period":"last_7_days"}`
	_, first := h.post("/tiles/tile-data", req)
	calls := len(srv.Requests())
	if first["errors"] != nil || calls != 8 {
		t.Fatalf("%d MISP calls (want 8: four counts, twice), %v", calls, first["errors"])
	}
	_, second := h.post("/tiles/tile-data", req)
	if diff := cmp.Diff(first, second); diff != "" || len(srv.Requests()) != calls {
		t.Errorf("not answered from the Board: %d calls, diff:\n%s", len(srv.Requests())-calls, diff)
	}
}

func TestTileErrors(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		body    string
		fault   *misptest.Answer
		code    gen.ErrorCode
		message string
	}{
		{"unknown tile", "/tiles/tile", `{"tile_id":"nope"}`, nil, gen.ErrorCodeInvalidArgument, `Unknown tile_id "nope": the tiles are misp-summary, `},
		{"unknown tile for data", "/tiles/tile-data", `{"tile_id":"nope","period":"last_7_days"}`, nil, gen.ErrorCodeInvalidArgument, `Unknown tile_id "nope"`},
		{"unknown period", "/tiles/tile-data", `{"tile_id":"misp-summary","period":"last_year"}`, nil, gen.ErrorCodeInvalidArgument, `Unknown period "last_year"`},
		{"MISP fails", "/tiles/tile-data", `{"tile_id":"misp-summary","period":"last_7_days"}`, ptr(misptest.Error(http.StatusInternalServerError, "boom")), gen.ErrorCodeInternalError, "MISP"},
		{"MISP down", "/tiles/tile-data", `{"tile_id":"misp-latest-events","period":"last_7_days"}`, ptr(misptest.Error(http.StatusServiceUnavailable, "down")), gen.ErrorCodeServiceUnavailable, "MISP"},
		{"MISP refuses the key", "/tiles/tile-data", `{"tile_id":"misp-top-tags","period":"last_7_days"}`, ptr(misptest.Error(http.StatusForbidden, "Authentication failed.")), gen.ErrorCodePermissionDenied, "MISP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, options{events: tileSeed()})
			if tt.fault != nil {
				h.misp.Always("", *tt.fault)
			}
			status, body := h.post(tt.path, tt.body)
			code, msg := errorOf(t, body)
			if status != http.StatusOK || code != string(tt.code) || !strings.Contains(msg, tt.message) {
				t.Errorf("HTTP %d, %s: %s; want %s with %q", status, code, msg, tt.code, tt.message)
			}
			if tt.fault == nil && len(h.misp.Requests()) != 0 {
				t.Errorf("a refused request made %d MISP calls", len(h.misp.Requests()))
			}
		})
	}
	// Authentication first, as on every endpoint.
	h := newHarness(t, options{})
	for _, path := range []string{"/tiles", "/tiles/tile", "/tiles/tile-data"} {
		_, body := h.do(http.MethodPost, path, http.Header{}, `{"tile_id":"misp-summary","period":"last_7_days"}`)
		if code, _ := errorOf(t, body); code != string(gen.ErrorCodeAuthorizationError) {
			t.Errorf("%s without a token: %s", path, code)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestTileBodyMessages: the contract's six dashboard cases (MISP-1.0.0's tests) and others.
func TestTileBodyMessages(t *testing.T) {
	long := strings.Repeat("x", 129)
	tests := []struct{ path, body, want string }{
		{"/tiles/tile", `{"tile-id":"some_value"}`, `{'tile_id': ['Missing data for required field.'], 'tile-id': ['Unknown field.']}`},
		{"/tiles/tile", `{"tile_id":""}`, `{'tile_id': ['Field may not be blank.']}`},
		{"/tiles/tile-data", `{"tile-id":"some_value","period":"some_period"}`, `{'tile_id': ['Missing data for required field.'], 'tile-id': ['Unknown field.']}`},
		{"/tiles/tile-data", `{"tile_id":"","period":"some_period"}`, `{'tile_id': ['Field may not be blank.']}`},
		{"/tiles/tile-data", `{"tile_id":"some_value","not_period":"some_period"}`, `{'period': ['Missing data for required field.'], 'not_period': ['Unknown field.']}`},
		{"/tiles/tile-data", `{"tile_id":"some_value","period":""}`, `{'period': ['Field may not be blank.']}`},
		{"/tiles/tile-data", `{}`, `{'period': ['Missing data for required field.'], 'tile_id': ['Missing data for required field.']}`},
		{"/tiles/tile-data", `{"tile_id":1,"period":null}`, `{'period': ['Field may not be null.'], 'tile_id': ['Not a valid string.']}`},
		{"/tiles/tile", `[]`, `{'_schema': ['Invalid input type.']}`},
		{"/tiles/tile", `not json`, `{'_schema': ['Invalid input type.']}`},
		{"/tiles/tile", ``, `{'_schema': ['Invalid input type.']}`},
		{"/tiles/tile", `{"tile_id":"` + long + `"}`, `{'tile_id': ['Longer than maximum length 128.']}`},
	}
	h := newHarness(t, options{})
	for _, tt := range tests {
		_, body := h.post(tt.path, tt.body)
		code, msg := errorOf(t, body)
		if code != string(gen.ErrorCodeInvalidArgument) || msg != "Invalid JSON payload received. "+tt.want {
			t.Errorf("%s %s: %s: %s\nwant %s", tt.path, tt.body, code, msg, tt.want)
		}
	}
}

// TestTileDataOfSeveralSources: a tenant's tiles sum its sources (a MISP and a feed here),
// each asked with its own key; an event links into its own source's MISP, a feed's to nothing.
func TestTileDataOfSeveralSources(t *testing.T) {
	h := newHarness(t, options{})
	srv := misptest.New(t, testMISPKey, tileSeed()...)
	client, err := misp.New(misp.Config{BaseURL: srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// A feed holding one event of the seed again, and one of its own, changed an hour ago.
	dir := t.TempDir()
	for _, raw := range [][]byte{tileSeed()[0], tileEvent("44444444-4444-4444-8444-444444444444", "Feed", "1", fixedNow.Add(-time.Hour), nil, [2]string{"sha1", "ids"})} {
		var ev struct{ Event struct{ UUID string } }
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ev.Event.UUID+".json"), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	manifest := `{"11111111-1111-4111-8111-111111111111":{},"44444444-4444-4444-8444-444444444444":{}}`
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := feed.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	h.serve(service.Config{
		Sources: func(c auth.Claims) ([]intel.Source, error) {
			return []intel.Source{
				{Name: "MISP misp.example", Backend: client, Key: c.Key, UI: "https://misp.example"},
				{Name: "MISP feed f", Backend: store},
			}, nil
		},
		Now: func() time.Time { return fixedNow },
	})
	_, body := h.post("/tiles/tile-data", `{"tile_id":"misp-summary","period":"last_24_hours"}`)
	var got []float64
	for _, m := range body["data"].(map[string]any)["data"].([]any) {
		got = append(got, m.(map[string]any)["value"].(float64))
	}
	// MISP: 1 event, 3 attributes, 2 for IDS; the feed: 2 events, 4 attributes, 3 for IDS.
	if diff := cmp.Diff([]float64{3, 7, 5, 0}, got); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	_, body = h.post("/tiles/tile-data", `{"tile_id":"misp-latest-events","period":"last_24_hours"}`)
	want := []any{
		"| Threat | Event | Organisation | Date | Changed | Attributes |",
		"| --- | --- | --- | --- | --- | ---: |",
		`| High | [Sofacy \| phishing](https://misp.example/events/view/11111111-1111-4111-8111-111111111111) | CIRCL | 2025-12-31 | 2025-12-31 23:30 | 3 |`,
		`| High | Sofacy \| phishing | CIRCL | 2025-12-31 | 2025-12-31 23:30 | 3 |`,
		"| High | Feed | CIRCL | 2025-12-31 | 2025-12-31 23:00 | 1 |",
	}
	if diff := cmp.Diff(want, body["data"].(map[string]any)["data"]); diff != "" {
		t.Errorf("latest events (-want +got):\n%s", diff)
	}
	// The MISP was asked with the token's key (the harness's fake accepts no other).
	if body["errors"] != nil {
		t.Errorf("errors: %v", body["errors"])
	}
	// A failing source fails the tile (its figures would be part of the tenant's), named.
	srv.Always("", misptest.Error(http.StatusInternalServerError, "boom"))
	_, body = h.post("/tiles/tile-data", `{"tile_id":"misp-summary","period":"last_7_days"}`)
	if code, msg := errorOf(t, body); code != string(gen.ErrorCodeInternalError) || !strings.HasPrefix(msg, "MISP misp.example: ") {
		t.Errorf("a failing MISP: %s %q", code, msg)
	}
}

// stallingTiles is a backend whose tiles hold in Events until released (or their request
// ends), and whose lookups answer at once: a tenant's MISP slow on dashboards.
type stallingTiles struct {
	*stallingMISP
	tiles.Source
}

func (s *stallingTiles) Events(ctx context.Context, key string, w tiles.Window) ([]tiles.EventMeta, error) {
	s.entered <- key
	select {
	case <-s.release:
	case <-ctx.Done():
	}
	return nil, nil
}

// TestTileCallsCountAgainstTheShare: a tile request whose MISP stalls holds one of its
// tenant's share like a lookup: past the share the tenant is told it is busy, and another
// tenant's lookups are served.
func TestTileCallsCountAgainstTheShare(t *testing.T) {
	h := newHarness(t, options{})
	m := newStallingMISP(t, 8)
	backend := struct {
		intel.Backend
		*stallingTiles
	}{m.backend(), &stallingTiles{stallingMISP: m}}
	h.serve(service.Config{Backend: backend, Tiles: tiles.NewBoard(tiles.BoardConfig{})}, httpapi.Config{MaxInFlight: 2})
	a, b := hs256(t, "tenant-A-key"), hs256(t, "tenant-B-key")
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.do(http.MethodPost, "/tiles/tile-data", http.Header{"Authorization": {a}}, `{"tile_id":"misp-latest-events","period":"last_7_days"}`)
	}()
	if got := <-m.entered; got != "tenant-A-key" {
		t.Fatalf("the tile asked with key %q", got)
	}
	wantBusy(t, "tenant A's lookup while its tile stalls", h.observeAs(a, quickLookup), msgOwnShareBusy)
	wantServed(t, "tenant B while A's tile stalls", h.observeAs(b, quickLookup))
	m.unblock()
	<-done
}
