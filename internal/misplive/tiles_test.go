//go:build misplive

package misplive

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/tiles"
)

// The tiles against a real MISP. A MISP under test may hold anything, and the relay's
// periods end now, so exact figures are asserted at a moment of the past instead: the
// suite's five tile events are dated around 10 March 2001 (MISP takes the timestamps an
// event, its attributes and its sightings are added with), where no real MISP data lives
// (MISP began in 2011; the other events of the suite are dated now). The tiles are drawn
// there by package tiles over the relay's MISP client, with the clock at that moment; the
// same events, as MISP gives them back, in misptest must draw the same tiles. Then the relay
// itself answers every tile for the current periods, checked against the spec, holding at
// least what the suite added today.

// tilesNow is the moment the exact figures are drawn at: Saturday 10 March 2001, 12:00 UTC.
var tilesNow = time.Date(2001, 3, 10, 12, 0, 0, 0, time.UTC)

type tileSeed struct {
	info, level, date string
	at                time.Time
	tags              []string
	attrs             [][2]string // type, "ids" or ""
}

func tileSeeds() []tileSeed {
	return []tileSeed{
		{
			"tiles: E1 High", "1", "2001-03-10", tilesNow.Add(-30 * time.Minute),
			[]string{`misp-galaxy:threat-actor="Sofacy"`, "tlp:amber"},
			[][2]string{{"ip-dst", "ids"}, {"md5", "ids"}, {"domain", ""}},
		},
		{"tiles: E2 Medium", "2", "2001-03-08", tilesNow.Add(-60 * time.Hour), []string{"tlp:amber"}, [][2]string{{"url", "ids"}, {"email-src", "ids"}}},
		{"tiles: E3 Low", "3", "2001-02-18", tilesNow.Add(-20 * 24 * time.Hour), []string{`misp-galaxy:malware="Emotet"`}, [][2]string{{"mutex", "ids"}}},
		{"tiles: E4 Undefined", "4", "2001-01-19", tilesNow.Add(-50 * 24 * time.Hour), nil, [][2]string{{"sha256", "ids"}}},
		{"tiles: E5 High, 100 days before", "1", "2000-11-30", tilesNow.Add(-100 * 24 * time.Hour), nil, [][2]string{{"ip-src", "ids"}}},
	}
}

// seedTileEvents adds the tile events and their sightings; it returns their UUIDs and the
// events as MISP's GET /events/view answers them.
func seedTileEvents(t *testing.T, api *mispAPI) (uuids []string, raws [][]byte) {
	t.Helper()
	run := newUUID()[:8] // values unique to this run: a sighting applies to every attribute of its value
	var ipDst string
	for i, s := range tileSeeds() {
		ts := fmt.Sprint(s.at.Unix())
		tags := []map[string]string{{"name": suiteTag}}
		for _, n := range s.tags {
			tags = append(tags, map[string]string{"name": n})
		}
		var attrs []map[string]any
		for j, a := range s.attrs {
			v := map[string]string{
				"ip-dst": fmt.Sprintf("198.18.%d.%d", i, j+1), "ip-src": fmt.Sprintf("198.18.%d.%d", i, j+1),
				"md5": fmt.Sprintf("%032x", i*10+j+1), "sha256": fmt.Sprintf("%064x", i*10+j+1),
				"domain": fmt.Sprintf("tiles-%s-%d.example", run, i), "url": fmt.Sprintf("http://tiles-%s.example/%d", run, i),
				"email-src": fmt.Sprintf("tiles-%s-%d@example.org", run, i), "mutex": fmt.Sprintf("tiles-%s-%d", run, i),
			}[a[0]]
			if a[0] == "ip-dst" {
				ipDst = v
			}
			attrs = append(attrs, map[string]any{"type": a[0], "value": v, "to_ids": a[1] == "ids", "timestamp": ts, "uuid": newUUID()})
		}
		uuid := newUUID()
		var added struct {
			Event struct{ ID, UUID string } `json:"Event"`
		}
		api.json(t, http.MethodPost, "/events/add", map[string]any{"Event": map[string]any{
			"uuid": uuid, "info": s.info, "threat_level_id": s.level, "analysis": "0", "distribution": "0",
			"date": s.date, "timestamp": ts, "Tag": tags, "Attribute": attrs,
		}}, &added)
		if added.Event.UUID != uuid {
			t.Fatalf("MISP added %q as %q", s.info, added.Event.UUID)
		}
		uuids = append(uuids, uuid)
	}
	// E1's IP: seen 20 minutes before the moment, reported a false positive 10 minutes before
	// (not counted: the tiles count type 0 only).
	for _, sg := range []struct {
		typ string
		at  time.Time
	}{{"0", tilesNow.Add(-20 * time.Minute)}, {"1", tilesNow.Add(-10 * time.Minute)}} {
		api.json(t, http.MethodPost, "/sightings/add", map[string]any{
			"values": []string{ipDst}, "type": sg.typ, "source": "misp-relay test suite", "timestamp": sg.at.Unix(),
		}, nil)
	}
	var found struct {
		Response []struct {
			Event struct{ ID, UUID string } `json:"Event"`
		} `json:"response"`
	}
	api.json(t, http.MethodPost, "/events/restSearch", map[string]any{"returnFormat": "json", "metadata": true, "uuid": uuids}, &found)
	ids := map[string]string{}
	for _, e := range found.Response {
		ids[e.Event.UUID] = e.Event.ID
	}
	for _, u := range uuids {
		_, raw := api.call(t, http.MethodGet, "/events/view/"+ids[u], nil)
		raws = append(raws, raw)
	}
	return uuids, raws
}

// drawAll draws every tile for every period at tilesNow.
func drawAll(t *testing.T, src tiles.Source, key, ui string) map[string]*tiles.Data {
	t.Helper()
	out := map[string]*tiles.Data{}
	for _, d := range tiles.Definitions() {
		for _, p := range tiles.AllPeriods() {
			got, err := (*tiles.Board)(nil).Data(context.Background(), tiles.Request{
				Tenant: "t", Key: key, Source: src, UI: ui, Tile: d.ID, Period: p, Now: tilesNow,
			})
			if err != nil {
				t.Fatalf("%s %s: %v", d.ID, p, err)
			}
			out[d.ID+" "+string(p)] = got
		}
	}
	return out
}

// tileIDField and tileBlanks blank in the tiles' MISP answers what the fake cannot know:
// database ids, the creator's e-mail address, and the clusters of the galaxies a MISP has
// installed (the fake knows none).
var (
	tileIDField = regexp.MustCompile(`"(id|orgc_id|org_id|attribute_id|event_id)":"[0-9]+"`)
	tileBlanks  = []*regexp.Regexp{
		regexp.MustCompile(`"event_creator_email":"[^"]*"`),
		regexp.MustCompile(`"Galaxy":\[.*?\],"CryptographicKey"`),
	}
)

func blankTileAnswer(s string) string {
	s = tileIDField.ReplaceAllString(s, `"$1":"*"`)
	for _, re := range tileBlanks {
		s = re.ReplaceAllStringFunc(s, func(m string) string {
			k, _, _ := strings.Cut(m, ":")
			return k + ":*"
		})
	}
	return s
}

func testTiles(t *testing.T, api *mispAPI, mispURL, key, org, orgUUID string) {
	uuids, raws := seedTileEvents(t, api)
	client, err := misp.New(misp.Config{BaseURL: mispURL, PageSize: 2}) // pages of 2: paging is exercised
	if err != nil {
		t.Fatal(err)
	}
	real := drawAll(t, client, key, mispURL)

	t.Run("exact figures", func(t *testing.T) {
		// Events, attributes, IDS attributes, sightings: this period and the one before.
		summaries := map[tiles.Period][2][4]int{
			tiles.Last24Hours: {{1, 3, 2, 1}, {0, 0, 0, 0}},
			tiles.Last7Days:   {{2, 5, 4, 1}, {0, 0, 0, 0}},
			tiles.Last30Days:  {{3, 6, 5, 1}, {1, 1, 1, 0}},
			tiles.Last60Days:  {{4, 7, 6, 1}, {1, 1, 1, 0}},
			tiles.Last90Days:  {{4, 7, 6, 1}, {1, 1, 1, 0}},
		}
		for p, want := range summaries {
			var got [2][4]int
			for i, m := range real[tiles.Summary+" "+string(p)].Data.([]tiles.Metric) {
				got[0][i] = m.Value
				var cur, prev int
				if _, err := fmt.Sscanf(m.Tooltip, "%d in the last", &cur); err != nil {
					t.Fatalf("tooltip %q", m.Tooltip)
				}
				_, after, _ := strings.Cut(m.Tooltip, "; ")
				if _, err := fmt.Sscanf(after, "%d in the", &prev); err != nil {
					t.Fatalf("tooltip %q", m.Tooltip)
				}
				got[1][i] = prev
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("summary %s (-want +got):\n%s", p, diff)
			}
		}
		// Threat levels: the non-empty bars, by bucket start.
		bars := func(p tiles.Period) map[string][4]int {
			out := map[string][4]int{}
			for _, b := range real[tiles.ThreatLevels+" "+string(p)].Data.([]tiles.Bar) {
				if b.Value > 0 {
					var v [4]int
					for i, bv := range b.Values {
						v[i] = bv.Value
					}
					out[b.Label] = v
				}
			}
			return out
		}
		for p, want := range map[tiles.Period]map[string][4]int{
			tiles.Last24Hours: {"Mar 10 11:00": {1, 0, 0, 0}},
			tiles.Last7Days:   {"Mar 10": {1, 0, 0, 0}, "Mar 8": {0, 1, 0, 0}},
			tiles.Last30Days:  {"Mar 10": {1, 0, 0, 0}, "Mar 8": {0, 1, 0, 0}, "Feb 18": {0, 0, 1, 0}},
			tiles.Last90Days:  {"Mar 10": {1, 0, 0, 0}, "Mar 8": {0, 1, 0, 0}, "Feb 18": {0, 0, 1, 0}, "Jan 19": {0, 0, 0, 1}},
		} {
			if diff := cmp.Diff(want, bars(p)); diff != "" {
				t.Errorf("threat levels %s (-want +got):\n%s", p, diff)
			}
		}
		// IDS attributes by group: network, hashes, URLs, email, other.
		for p, want := range map[tiles.Period][]int{
			tiles.Last24Hours: {1, 1, 0, 0, 0}, tiles.Last7Days: {1, 1, 1, 1, 0}, tiles.Last30Days: {1, 1, 1, 1, 1},
			tiles.Last60Days: {1, 2, 1, 1, 1}, tiles.Last90Days: {1, 2, 1, 1, 1},
		} {
			var got []int
			for _, s := range real[tiles.AttributeTypes+" "+string(p)].Data.([]tiles.Slice) {
				got = append(got, s.Value)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("attribute types %s (-want +got):\n%s", p, diff)
			}
		}
		// Top tags, galaxy clusters first.
		sofacy, emotet := `misp-galaxy:threat-actor="Sofacy"`, `misp-galaxy:malware="Emotet"`
		for p, want := range map[tiles.Period]map[string]int{
			tiles.Last24Hours: {sofacy: 1, suiteTag: 1, "tlp:amber": 1},
			tiles.Last7Days:   {sofacy: 1, suiteTag: 2, "tlp:amber": 2},
			tiles.Last30Days:  {emotet: 1, sofacy: 1, suiteTag: 3, "tlp:amber": 2},
			tiles.Last90Days:  {emotet: 1, sofacy: 1, suiteTag: 4, "tlp:amber": 2},
		} {
			d := real[tiles.TopTags+" "+string(p)]
			got := map[string]int{}
			for i, s := range d.Data.([]tiles.Slice) {
				got[d.Labels[0][i]] = s.Value
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("top tags %s (-want +got):\n%s", p, diff)
			}
			if first := d.Labels[0][0]; !strings.HasPrefix(first, "misp-galaxy:") {
				t.Errorf("top tags %s: %q first, not a galaxy cluster", p, first)
			}
		}
		// Latest events: High, then Medium, linked into this MISP.
		want := []string{
			"| Threat | Event | Organisation | Date | Changed | Attributes |",
			"| --- | --- | --- | --- | --- | ---: |",
			fmt.Sprintf("| High | [tiles: E1 High](%s/events/view/%s) | %s | 2001-03-10 | 2001-03-10 11:30 | 3 |", mispURL, uuids[0], org),
			fmt.Sprintf("| Medium | [tiles: E2 Medium](%s/events/view/%s) | %s | 2001-03-08 | 2001-03-08 00:00 | 2 |", mispURL, uuids[1], org),
		}
		if diff := cmp.Diff(want, real[tiles.LatestEvents+" "+string(tiles.Last90Days)].Data); diff != "" {
			t.Errorf("latest events (-want +got):\n%s", diff)
		}
	})

	t.Run("misptest answers the tiles' calls as MISP does", func(t *testing.T) {
		srv, err := misptest.NewServer(key, raws...)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		srv.Organisation(org, orgUUID)
		fake := newMISPAPI(srv.URL, key)
		from, to := tilesNow.Add(-101*24*time.Hour).Unix(), tilesNow.Add(time.Hour).Unix()
		window := []int64{from, to}
		for _, c := range []struct {
			path string
			body map[string]any
		}{
			{"/events/restSearch", map[string]any{"returnFormat": "count", "timestamp": window}},
			{"/events/restSearch", map[string]any{"returnFormat": "count", "timestamp": []int64{tilesNow.Add(-time.Hour).Unix(), to}}},
			{"/attributes/restSearch", map[string]any{"returnFormat": "count", "timestamp": window}},
			{"/attributes/restSearch", map[string]any{"returnFormat": "count", "timestamp": window, "to_ids": 1}},
			{"/attributes/restSearch", map[string]any{"returnFormat": "count", "timestamp": window, "to_ids": 1, "type": []string{"md5", "sha256", "url"}}},
			{"/events/restSearch", map[string]any{"returnFormat": "json", "metadata": true, "timestamp": window, "limit": 2, "page": 1}},
			{"/events/restSearch", map[string]any{"returnFormat": "json", "metadata": true, "timestamp": window, "limit": 2, "page": 3}},
			{"/events/restSearch", map[string]any{"returnFormat": "json", "metadata": true, "timestamp": window, "limit": 2, "page": 4}},
			{"/sightings/restSearch", map[string]any{"returnFormat": "json", "from": from, "to": to, "type": "0"}},
			{"/sightings/restSearch", map[string]any{"returnFormat": "json", "from": from, "to": to}},
		} {
			realStatus, realBody := api.call(t, http.MethodPost, c.path, c.body)
			fakeStatus, fakeBody := fake.call(t, http.MethodPost, c.path, c.body)
			if realStatus != fakeStatus {
				t.Errorf("%s %v: HTTP %d from MISP, %d from misptest", c.path, c.body, realStatus, fakeStatus)
			}
			if diff := cmp.Diff(blankTileAnswer(string(realBody)), blankTileAnswer(string(fakeBody))); diff != "" {
				t.Errorf("%s %v (-MISP +misptest):\n%s", c.path, c.body, diff)
			}
		}
	})

	t.Run("misptest draws the same tiles", func(t *testing.T) {
		srv, err := misptest.NewServer(key, raws...)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		fc, err := misp.New(misp.Config{BaseURL: srv.URL, PageSize: 2})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(real, drawAll(t, fc, key, mispURL)); diff != "" {
			t.Errorf("tiles (-real MISP +misptest):\n%s", diff)
		}
	})
}

// testRelayTiles asks the relay for every tile and period now: each answer is checked
// against the spec, and the current periods hold at least what seed added today (4 events,
// 4 sightings of type 0; the MISP may hold more).
func testRelayTiles(t *testing.T, r *relay, token string, secrets []string) {
	defs := r.post(t, token, "/tiles", nil, secrets...)
	if n := len(defs["data"].([]any)); n != 5 {
		t.Errorf("%d tiles", n)
	}
	for _, d := range tiles.Definitions() {
		for _, p := range tiles.AllPeriods() {
			got := r.post(t, token, "/tiles/tile-data", map[string]string{"tile_id": d.ID, "period": string(p)}, secrets...)
			if code, msg := errorOf(got); code != "" {
				t.Fatalf("%s %s: %s: %s", d.ID, p, code, msg)
			}
			if d.ID != tiles.Summary {
				continue
			}
			metrics := got["data"].(map[string]any)["data"].([]any)
			events := metrics[0].(map[string]any)["value"].(float64)
			sightings := metrics[3].(map[string]any)["value"].(float64)
			if events < 4 || sightings < 4 {
				t.Errorf("%s: %v events and %v sightings, want at least the suite's 4 and 4", p, events, sightings)
			}
		}
	}
	got := r.post(t, token, "/tiles/tile-data", map[string]string{"tile_id": "nope", "period": "last_7_days"}, secrets...)
	if code, _ := errorOf(got); code != "invalid argument" {
		t.Errorf("unknown tile: %q", code)
	}
}
