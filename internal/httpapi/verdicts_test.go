package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/service"
	"github.com/misp-relay/misp-relay/internal/verdict"
	"github.com/misp-relay/misp-relay/internal/warninglist"
)

// The tests of the verdict policy through the whole relay: every answer is validated
// against api/openapi.yaml by the harness.

const (
	dnsListName = "List of known IPv4 public DNS resolvers"
	dnsReason   = `on MISP warninglist "List of known IPv4 public DNS resolvers"`
	// relayDNSReason is the reason the relay's own copy of the list gives (WARNINGLISTS_DIR).
	relayDNSReason = `on the relay's warninglist "List of known IPv4 public DNS resolvers"`
	uuidDNS        = "7d3c1b2a-0e9f-4a8b-9c7d-6e5f4a3b2c1d"
	uuidOther      = "8e4d2c3b-1f0a-4b9c-8d7e-7f6a5b4c3d2e"
)

// dnsEvent is a High-threat event that lists 8.8.8.8, flagged for IDS or not.
func dnsEvent(uuid string, toIDS bool) []byte {
	ids := "false"
	if toIDS {
		ids = "true"
	}
	return []byte(`{"Event":{"uuid":"` + uuid + `","info":"Loader resolving its C2 through public DNS","date":"2025-06-01",
	 "timestamp":"1748736000","threat_level_id":"1","published":true,"analysis":"2",
	 "Orgc":{"name":"CIRCL","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d210f"},"Tag":[{"name":"tlp:green"}],
	 "Attribute":[{"uuid":"aaaaaaaa-0000-4000-8000-00000000000` + map[bool]string{true: "1", false: "2"}[toIDS] + `","type":"ip-dst","category":"Network activity",
	   "value":"8.8.8.8","to_ids":` + ids + `,"timestamp":"1748736000"}]}}`)
}

// answerOf posts body to path and returns the data block.
func answerOf(t *testing.T, h *harness, path, body string) map[string]any {
	t.Helper()
	_, got := h.post(path, body)
	if errs, ok := got["errors"]; ok {
		t.Fatalf("%s: errors %v", path, errs)
	}
	data, _ := got["data"].(map[string]any)
	if data == nil {
		t.Fatalf("%s: no data in %v", path, got)
	}
	return data
}

func docs(data map[string]any, kind string) []map[string]any {
	list, _ := data[kind].(map[string]any)
	if list == nil {
		return nil
	}
	var out []map[string]any
	for _, d := range list["docs"].([]any) {
		out = append(out, d.(map[string]any))
	}
	return out
}

// verdictFor returns the verdict of value, and the judgement it points at (observe).
func verdictFor(t *testing.T, data map[string]any, value string) (map[string]any, map[string]any) {
	t.Helper()
	for _, v := range docs(data, "verdicts") {
		if v["observable"].(map[string]any)["value"] != value {
			continue
		}
		for _, j := range docs(data, "judgements") {
			if j["id"] == v["judgement_id"] {
				return v, j
			}
		}
		return v, nil
	}
	t.Fatalf("no verdict for %s in %v", value, data)
	return nil, nil
}

// judgementsFor returns value's judgements, by event UUID.
func judgementsFor(data map[string]any, value string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, j := range docs(data, "judgements") {
		if j["observable"].(map[string]any)["value"] == value {
			out[j["external_ids"].([]any)[0].(string)] = j
		}
	}
	return out
}

// withMISPPolicy rebuilds h's service over its fake MISP with a policy and own lists.
func withMISPPolicy(t *testing.T, h *harness, p verdict.Policy, lists service.Warninglists) {
	t.Helper()
	client, err := misp.New(misp.Config{BaseURL: h.misp.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h.serve(service.Config{Backend: client, UIURL: h.misp.URL, Policy: p, Warninglists: lists, Now: func() time.Time { return fixedNow }})
}

// TestWarninglistFromMISP: 8.8.8.8 in a High event, flagged for IDS, on a MISP warninglist
// is Common, and the reason names the list; deliberate agrees.
func TestWarninglistFromMISP(t *testing.T) {
	h := newHarness(t, options{events: [][]byte{dnsEvent(uuidDNS, true)}})
	h.misp.Warninglist(dnsListName, "8.8.8.8")
	data := answerOf(t, h, "/observe/observables", `[{"type":"ip","value":"8.8.8.8"}]`)
	v, j := verdictFor(t, data, "8.8.8.8")
	if v["disposition_name"] != "Common" || j["disposition_name"] != "Common" || j["severity"] != "Low" {
		t.Errorf("verdict %v, judgement %v; want Common", v, j)
	}
	if reason, _ := j["reason"].(string); !strings.Contains(reason, dnsReason) || !strings.Contains(reason, "threat level High") {
		t.Errorf("reason %q does not name the list and the threat level", reason)
	}
	d := answerOf(t, h, "/deliberate/observables", `[{"type":"ip","value":"8.8.8.8"}]`)
	if got := docs(d, "verdicts")[0]["disposition_name"]; got != "Common" {
		t.Errorf("deliberate says %v, observe Common", got)
	}
}

// TestWarninglistCheckValue: MISP annotates only attributes flagged for IDS; for the others,
// the request's one checkValue call supplies the hit, and a warninglist hit makes the verdict
// Common whatever event mentions the value.
func TestWarninglistCheckValue(t *testing.T) {
	h := newHarness(t, options{events: [][]byte{dnsEvent(uuidDNS, false), eventHigh}})
	h.misp.Warninglist(dnsListName, "8.8.8.8")
	data := answerOf(t, h, "/observe/observables", `[{"type":"ip","value":"8.8.8.8"},{"type":"ip","value":"198.51.100.7"}]`)
	v, j := verdictFor(t, data, "8.8.8.8")
	if v["disposition_name"] != "Common" || !strings.Contains(j["reason"].(string), dnsReason) {
		t.Errorf("verdict %v, judgement reason %q; want Common by the list", v, j["reason"])
	}
	if v, _ := verdictFor(t, data, "198.51.100.7"); v["disposition_name"] != "Malicious" {
		t.Errorf("the other value: %v", v)
	}
	var searches, checks int
	var checked []string
	for _, r := range h.misp.Requests() {
		switch r.Path {
		case "/attributes/restSearch":
			searches++
		case "/warninglists/checkValue":
			checks++
			if err := json.Unmarshal(r.Body, &checked); err != nil {
				t.Errorf("checkValue body %s: %v", r.Body, err)
			}
		}
	}
	slices.Sort(checked)
	if searches != 1 || checks != 1 || !slices.Equal(checked, []string{"198.51.100.7", "8.8.8.8"}) {
		t.Errorf("%d searches, %d checks of %q; want one search and one check of both values", searches, checks, checked)
	}
}

// TestWarninglistCheckFails: a MISP without warninglists/checkValue (or refusing it) does not
// fail the request; the log says why, once.
func TestWarninglistCheckFails(t *testing.T) {
	h := newHarness(t, options{events: [][]byte{dnsEvent(uuidDNS, false)}})
	h.misp.Fail("/warninglists/checkValue", http.StatusNotFound, `{"name":"Not Found","message":"Not Found","url":"/warninglists/checkValue"}`)
	data := answerOf(t, h, "/observe/observables", `[{"type":"ip","value":"8.8.8.8"},{"type":"ip","value":"192.0.2.1"}]`)
	v, j := verdictFor(t, data, "8.8.8.8")
	// No list said anything: High, capped because the attribute is not for IDS.
	if v["disposition_name"] != "Suspicious" || !strings.Contains(j["reason"].(string), "capped at Suspicious: not flagged for IDS") {
		t.Errorf("verdict %v, reason %q", v, j["reason"])
	}
	if n := strings.Count(h.logs.String(), `"msg":"MISP warninglist check failed`); n != 1 {
		t.Errorf("%d log lines about the failed check, want 1:\n%s", n, h.logs.String())
	}
	if !strings.Contains(h.logs.String(), "404") {
		t.Errorf("the log does not say why: %s", h.logs.String())
	}
}

// TestWarninglistCheckFailsAsksTheSearch: the search does not ask MISP for the matched
// attributes' warninglist hits, as checkValue answers for every value; when checkValue
// fails, the values MISP holds are searched again with the hits, so 8.8.8.8 of a High event
// is still Common by MISP's list, and a value without events costs nothing more.
func TestWarninglistCheckFailsAsksTheSearch(t *testing.T) {
	h := newHarness(t, options{events: [][]byte{dnsEvent(uuidDNS, true)}})
	h.misp.Warninglist(dnsListName, "8.8.8.8")
	h.misp.Fail("/warninglists/checkValue", http.StatusServiceUnavailable, `{"name":"busy","message":"busy","url":"/warninglists/checkValue"}`)
	data := answerOf(t, h, "/observe/observables", `[{"type":"ip","value":"8.8.8.8"},{"type":"ip","value":"192.0.2.1"}]`)
	if v, j := verdictFor(t, data, "8.8.8.8"); v["disposition_name"] != "Common" || !strings.Contains(j["reason"].(string), dnsReason) {
		t.Errorf("verdict %v, judgement reason %q; want Common by MISP's list", v, j["reason"])
	}
	type search struct {
		Values []string
		Hits   int
	}
	var searches []search
	for _, r := range h.misp.Requests() {
		if r.Path != "/attributes/restSearch" {
			continue
		}
		var body struct {
			Value                  any `json:"value"`
			IncludeWarninglistHits int `json:"includeWarninglistHits"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		var values []string
		switch v := body.Value.(type) {
		case string:
			values = []string{v}
		case []any:
			for _, x := range v {
				values = append(values, x.(string))
			}
		}
		slices.Sort(values)
		searches = append(searches, search{values, body.IncludeWarninglistHits})
	}
	want := []search{{[]string{"192.0.2.1", "8.8.8.8"}, 0}, {[]string{"8.8.8.8"}, 1}}
	if diff := cmp.Diff(want, searches); diff != "" {
		t.Errorf("searches (-want +got):\n%s", diff)
	}
	// With checkValue answering, one search, without the hits.
	h.misp.Fail("/warninglists/checkValue", 0, "")
	before := len(h.misp.Requests())
	data = answerOf(t, h, "/observe/observables", `[{"type":"ip","value":"8.8.8.8"}]`)
	if v, _ := verdictFor(t, data, "8.8.8.8"); v["disposition_name"] != "Common" {
		t.Errorf("with checkValue: %v", v)
	}
	for _, r := range h.misp.Requests()[before:] {
		if r.Path == "/attributes/restSearch" && strings.Contains(string(r.Body), `"includeWarninglistHits":1`) {
			t.Errorf("a search asked for the hits with checkValue answering: %s", r.Body)
		}
	}
}

// TestWarninglistCheckInLowerCase: MISP keeps hashes and domains in lower case, in its
// attributes and its lists, and its checkValue compares the value as sent (a sha256 in
// capitals is on no list of a real MISP 2.5.1): such values are checked in lower case, A to
// Z only, as PHP's strtolower; a URL's scheme and host are, its path is not; a file name is
// checked as written. The hits are given to the value as the analyst wrote it, and only to
// observables of the kinds that were asked in that spelling: a file name written like a
// listed domain is not Common.
func TestWarninglistCheckInLowerCase(t *testing.T) {
	const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	h := newHarness(t, options{})
	h.misp.Warninglist("List of known hashes for empty files", emptySHA256)
	h.misp.Warninglist("Top domains", "example.com", "http://example.com/X")
	upper := strings.ToUpper(emptySHA256)
	data := answerOf(t, h, "/observe/observables", `[{"type":"sha256","value":"`+upper+`"},{"type":"domain","value":"Example.COM"},`+
		`{"type":"file_name","value":"Example.COM"},{"type":"url","value":"http://Example.COM/X"},{"type":"domain","value":"\u212aelvin.example"}]`)
	for _, v := range []string{upper, "Example.COM", "http://Example.COM/X"} {
		if got, _ := verdictFor(t, data, v); got["disposition_name"] != "Common" {
			t.Errorf("%s: %v, want Common", v, got)
		}
	}
	for _, v := range docs(data, "verdicts") {
		if o := v["observable"].(map[string]any); o["type"] == "file_name" {
			t.Errorf("the file name Example.COM has a verdict %v: the domain's hits leaked to it", v)
		}
	}
	var checked []string
	for _, r := range h.misp.Requests() {
		if r.Path == "/warninglists/checkValue" {
			if err := json.Unmarshal(r.Body, &checked); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := []string{emptySHA256, "example.com", "Example.COM", "http://example.com/X", "\u212aelvin.example"}
	if diff := cmp.Diff(want, checked); diff != "" {
		t.Errorf("checkValue body (-want +got):\n%s", diff)
	}
}

// TestFeedWithWarninglists: the relay's own lists (WARNINGLISTS_DIR) cover a feed, which has
// no warninglist of its own: 8.8.8.8 of the sample feed's High event is Common.
func TestFeedWithWarninglists(t *testing.T) {
	h := newHarness(t, options{feedDir: "../../sample/feed"})
	store, err := feed.Load("../../sample/feed")
	if err != nil {
		t.Fatal(err)
	}
	lists, err := warninglist.Load("../../sample/warninglists")
	if err != nil {
		t.Fatal(err)
	}
	h.serve(service.Config{Backend: store, Warninglists: lists, Now: func() time.Time { return fixedNow }})
	body := `[{"type":"ip","value":"8.8.8.8"},{"type":"ip","value":"198.51.100.23"}]`
	data := answerOf(t, h, "/observe/observables", body)
	v, j := verdictFor(t, data, "8.8.8.8")
	if v["disposition_name"] != "Common" || !strings.Contains(j["reason"].(string), relayDNSReason) || strings.Contains(j["reason"].(string), "MISP warninglist") {
		t.Errorf("8.8.8.8: verdict %v, reason %q", v, j["reason"])
	}
	if v, _ := verdictFor(t, data, "198.51.100.23"); v["disposition_name"] != "Malicious" {
		t.Errorf("198.51.100.23: %v", v)
	}
	d := answerOf(t, h, "/deliberate/observables", body)
	for _, v := range docs(d, "verdicts") {
		want := map[string]string{"8.8.8.8": "Common", "198.51.100.23": "Malicious"}[v["observable"].(map[string]any)["value"].(string)]
		if v["disposition_name"] != want {
			t.Errorf("deliberate %v, want %s", v, want)
		}
	}
	// Without the lists, the same feed gives the original relay's answer.
	h.serve(service.Config{Backend: store, Now: func() time.Time { return fixedNow }})
	if v, _ := verdictFor(t, answerOf(t, h, "/observe/observables", body), "8.8.8.8"); v["disposition_name"] != "Malicious" {
		t.Errorf("without WARNINGLISTS_DIR: %v", v)
	}
}

// eventFixture reads the one event of a wrapped events restSearch fixture, with its threat
// level set to level ("" keeps it).
func eventFixture(t *testing.T, name, level string) []byte {
	t.Helper()
	raw, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var wrapped struct {
		Response []map[string]map[string]any `json:"response"`
	}
	if err := json.Unmarshal(raw, &wrapped); err != nil || len(wrapped.Response) != 1 {
		t.Fatalf("%s: %v", name, err)
	}
	ev := wrapped.Response[0]
	if level != "" {
		ev["Event"]["threat_level_id"] = level
	}
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRealSightings replays a real MISP event whose attributes carry sightings, false
// positives and an expiration, as MISP exported it (Low threat) and with its threat level
// raised to High, so that the sightings, not the level, are seen to decide.
func TestRealSightings(t *testing.T) {
	for _, level := range []string{"", "1"} {
		t.Run("threat level "+level, func(t *testing.T) {
			h := newHarness(t, options{events: [][]byte{eventFixture(t, "misp_events_restsearch_domain_sightings.json", level)}})
			data := answerOf(t, h, "/observe/observables", `[{"type":"domain","value":"eqowiesajenqweasd.com"},
			 {"type":"domain","value":"diqjwhebseqhbasdh.com"},{"type":"domain","value":"ooiasjdnqjwbeasdasd.com"}]`)

			// One false positive, no sighting: Common, whatever the level.
			v, j := verdictFor(t, data, "eqowiesajenqweasd.com")
			if v["disposition_name"] != "Common" || !strings.Contains(j["reason"].(string), "more false-positive reports than sightings in MISP (no sightings, 1 false positive)") {
				t.Errorf("false-positive value: %v, reason %q", v, j["reason"])
			}
			// A false positive and an expiration in 2019: Common, valid only until then.
			v, j = verdictFor(t, data, "diqjwhebseqhbasdh.com")
			vt := j["valid_time"].(map[string]any)
			if v["disposition_name"] != "Common" || vt["end_time"] != "2019-02-27T07:52:48Z" || vt["start_time"] != "2019-02-27T07:52:48Z" {
				t.Errorf("expired value: %v, valid_time %v", v, vt)
			}
			// One sighting, no false positive: the threat level and the IDS flag decide. As
			// exported (Low), an IDS value is Suspicious on weak evidence, never Common.
			want := map[string]string{"": "Suspicious", "1": "Malicious"}[level]
			wantConf := map[string]string{"": "Low", "1": "High"}[level]
			v, j = verdictFor(t, data, "ooiasjdnqjwbeasdasd.com")
			if v["disposition_name"] != want || j["confidence"] != wantConf {
				t.Errorf("sighted value: %v (confidence %v), want %s (%s)", v, j["confidence"], want, wantConf)
			}
			// Its MISP sighting is a CTIM sighting of its own.
			var found bool
			for _, s := range docs(data, "sightings") {
				obs := s["observables"].([]any)[0].(map[string]any)
				if obs["value"] != "ooiasjdnqjwbeasdasd.com" || !strings.HasPrefix(s["title"].(string), "Sighted") {
					continue
				}
				found = true
				ot := s["observed_time"].(map[string]any)
				if s["count"] != 1.0 || ot["start_time"] != "2019-02-27T07:52:30Z" || !strings.Contains(s["description"].(string), "ORGNAME") {
					t.Errorf("MISP sighting = %v", s)
				}
				ids := s["external_ids"].([]any)
				if len(ids) != 2 || ids[1] != "5b6464ca-e73c-4707-9b8a-d0350acd0835" {
					t.Errorf("external_ids = %v, want the event and attribute UUIDs", ids)
				}
			}
			if !found {
				t.Error("no CTIM sighting for the attribute's MISP sighting")
			}
		})
	}
}

// attributesFixtureMISP serves the real attributes restSearch fixture (with modify applied to
// its attributes) and an empty warninglist check.
func attributesFixtureMISP(t *testing.T, modify func(attrs []map[string]any)) string {
	t.Helper()
	raw, err := os.ReadFile("testdata/misp_attributes_restsearch_context_sightings.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Response struct {
			Attribute []map[string]any `json:"Attribute"`
		} `json:"response"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if modify != nil {
		modify(doc.Response.Attribute)
	}
	body, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/warninglists/checkValue" {
			_, _ = io.WriteString(w, "[]")
			return
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestRealAttributes replays a real attributes restSearch answer: one md5 in a High event
// (flagged for IDS), a Low one, and a Medium one where it is not flagged for IDS.
func TestRealAttributes(t *testing.T) {
	const md5 = "6c73d338ec64e0e44bd54ea61b6988b2"
	const (
		evHigh   = "5e6b322a-9f80-4e2f-9f2a-3cab0a3b4631"
		evNotIDS = "56d76936-0d34-44ff-a8c5-5280c0a8ab16"
	)
	body := `[{"type":"md5","value":"` + md5 + `"}]`
	for _, tc := range []struct {
		name   string
		modify func([]map[string]any)
		// the not-for-IDS event's judgement
		want   string
		reason string
	}{
		{"as exported", nil, "Suspicious", "MISP event threat level Medium; not flagged for IDS"},
		{"the not-for-IDS event raised to High", func(attrs []map[string]any) {
			attrs[2]["Event"].(map[string]any)["threat_level_id"] = "1"
		}, "Suspicious", "MISP event threat level High, capped at Suspicious: not flagged for IDS (to_ids false)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, options{})
			client, err := misp.New(misp.Config{BaseURL: attributesFixtureMISP(t, tc.modify), Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			h.serve(service.Config{Backend: client, UIURL: "https://misp.example.org", Now: func() time.Time { return fixedNow }})
			data := answerOf(t, h, "/observe/observables", body)
			v, j := verdictFor(t, data, md5)
			// A plain IDS value in a High event stays Malicious.
			if v["disposition_name"] != "Malicious" || j["external_ids"].([]any)[0] != evHigh {
				t.Errorf("verdict %v from %v", v, j["external_ids"])
			}
			if j["confidence"] != "Low" { // the High event is unpublished, in initial analysis
				t.Errorf("confidence %v, want Low", j["confidence"])
			}
			if j["reason_uri"] != "https://misp.example.org/events/view/"+evHigh {
				t.Errorf("reason_uri %v", j["reason_uri"])
			}
			js := judgementsFor(data, md5)
			if got := js[evNotIDS]; got["disposition_name"] != tc.want || !strings.Contains(got["reason"].(string), tc.reason) {
				t.Errorf("not-for-IDS judgement %v, reason %q; want %s, %q", got["disposition_name"], got["reason"], tc.want, tc.reason)
			}
			// The indicator of the High event carries the attribute's own tags beside the
			// event's, galaxy clusters included.
			for _, ind := range docs(data, "indicators") {
				if ind["id"] != "transient:indicator-"+evHigh {
					continue
				}
				tags := ind["tags"].([]any)
				for _, want := range []string{"Test1", "misp-galaxy:financial-fraud=Scam", "misp-galaxy:malpedia=Loki", "tlp:white"} {
					if !slices.Contains(tags, any(want)) {
						t.Errorf("indicator tags %v lack %q", tags, want)
					}
				}
				if ind["tlp"] != "white" || ind["short_description"] == nil {
					t.Errorf("indicator %v", ind)
				}
			}
		})
	}
}

// policyEvents: a Low event whose event tag names a threat actor, a Medium one whose
// attribute is tagged benign, and a High one by an organisation the tests do not trust.
var policyEvents = [][]byte{
	[]byte(`{"Event":{"uuid":"` + uuidDNS + `","info":"Actor infrastructure","date":"2025-01-01","threat_level_id":"3","published":true,"analysis":"2",
	 "Orgc":{"name":"CIRCL","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d210f"},"Tag":[{"name":"misp-galaxy:threat-actor=\"Sofacy\""},{"name":"tlp:green"}],
	 "Attribute":[{"uuid":"bbbbbbbb-0000-4000-8000-000000000001","type":"domain","category":"Network activity","value":"actor.example","to_ids":true,"timestamp":"1735689600",
	   "Tag":[{"name":"tlp:red"},{"name":"misp-galaxy:mitre-attack-pattern=\"T1071\""}]}]}}`),
	[]byte(`{"Event":{"uuid":"` + uuidOther + `","info":"CDN seen in a campaign","date":"2025-01-02","threat_level_id":"2","published":true,"analysis":"1",
	 "Orgc":{"name":"CIRCL","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d210f"},
	 "Attribute":[{"uuid":"bbbbbbbb-0000-4000-8000-000000000002","type":"domain","category":"Network activity","value":"cdn.example","to_ids":true,"timestamp":"1735689600",
	   "Tag":[{"name":"known-good:cdn"}],
	   "decay_score":[{"score":22.5,"decayed":false,"DecayingModel":{"id":"1","name":"NIDS Simple Decaying Model"}}]}]}}`),
	[]byte(`{"Event":{"uuid":"9f5e3d4c-2a1b-4c0d-9e8f-8a7b6c5d4e3f","info":"Untrusted report","date":"2025-01-03","threat_level_id":"1","published":true,"analysis":"2",
	 "Orgc":{"name":"Unknown Blog","uuid":"0ab5391a-51d3-4abc-8084-c59e60b3688f"},
	 "Attribute":[{"uuid":"bbbbbbbb-0000-4000-8000-000000000003","type":"domain","category":"Network activity","value":"untrusted.example","to_ids":true,"timestamp":"1735689600",
	   "Sighting":[{"type":"2","date_sighting":"1767484800","source":"analyst"}],
	   "decay_score":[{"score":5,"decayed":true,"DecayingModel":{"id":"2","name":"Short-lived"}}]},
	  {"uuid":"bbbbbbbb-0000-4000-8000-000000000004","type":"domain","category":"Network activity","value":"cdn.example","to_ids":true,"timestamp":"1735689600",
	   "Sighting":[{"type":"2","date_sighting":"1767398400","source":"analyst"}]}]}}`),
}

// TestPolicySettings: tag settings and trusted organisations through the relay.
func TestPolicySettings(t *testing.T) {
	h := newHarness(t, options{events: policyEvents})
	withMISPPolicy(t, h, verdict.Policy{
		Benign:      verdict.MustTags("known-good:*"),
		Malicious:   verdict.MustTags("misp-galaxy:threat-actor=*"),
		TrustedOrgs: []string{"CIRCL"},
	}, nil)
	body := `[{"type":"domain","value":"actor.example"},{"type":"domain","value":"cdn.example"},{"type":"domain","value":"untrusted.example"}]`
	data := answerOf(t, h, "/observe/observables", body)

	// An event tag in MALICIOUS_TAGS makes a Low event's value Malicious; the attribute's
	// tlp:red marks the judgement and the indicator.
	v, j := verdictFor(t, data, "actor.example")
	if v["disposition_name"] != "Malicious" || !strings.Contains(j["reason"].(string), `event tag "misp-galaxy:threat-actor=\"Sofacy\"" is a malicious tag`) {
		t.Errorf("actor.example: %v, reason %q", v, j["reason"])
	}
	if j["tlp"] != "red" {
		t.Errorf("judgement tlp %v, want the attribute's red", j["tlp"])
	}
	for _, ind := range docs(data, "indicators") {
		if ind["id"] == "transient:indicator-"+uuidDNS && (ind["tlp"] != "red" || !slices.Contains(ind["tags"].([]any), any(`misp-galaxy:mitre-attack-pattern="T1071"`))) {
			t.Errorf("indicator %v", ind)
		}
	}

	// A benign tag decides its own attribute's judgement (Clean, with the decay score in
	// the reason); in the untrusted event the same value expires on 2026-01-03, after now
	// (2026-01-01), so that event is Malicious capped at Suspicious, and the verdict follows it.
	js := judgementsFor(data, "cdn.example")
	if j := js[uuidOther]; j["disposition_name"] != "Clean" || !strings.Contains(j["reason"].(string), `decay model "NIDS Simple Decaying Model", score 22.5`) || j["confidence"] != "Low" {
		t.Errorf("benign judgement %v", j)
	}
	untrusted := js["9f5e3d4c-2a1b-4c0d-9e8f-8a7b6c5d4e3f"]
	if untrusted["disposition_name"] != "Suspicious" || !strings.Contains(untrusted["reason"].(string), `event created by "Unknown Blog", not a trusted organisation`) {
		t.Errorf("untrusted judgement %v", untrusted)
	}
	if vt := untrusted["valid_time"].(map[string]any); vt["end_time"] != "2026-01-03T00:00:00Z" {
		t.Errorf("valid_time %v, want the expiration date as its end", vt)
	}
	if v, _ := verdictFor(t, data, "cdn.example"); v["disposition_name"] != "Suspicious" {
		t.Errorf("cdn.example verdict %v", v)
	}

	// Decayed: Unknown, naming the model and the score.
	v, j = verdictFor(t, data, "untrusted.example")
	if v["disposition_name"] != "Unknown" || !strings.Contains(j["reason"].(string), `decayed in MISP (model "Short-lived", score 5.0)`) {
		t.Errorf("untrusted.example: %v, reason %q", v, j["reason"])
	}

	// Deliberate agrees with observe.
	for _, dv := range docs(answerOf(t, h, "/deliberate/observables", body), "verdicts") {
		value := dv["observable"].(map[string]any)["value"].(string)
		ov, _ := verdictFor(t, data, value)
		if dv["disposition"] != ov["disposition"] || !cmpJSON(dv["valid_time"], ov["valid_time"]) {
			t.Errorf("%s: deliberate %v, observe %v", value, dv, ov)
		}
	}
}

func cmpJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestOneCheckPerRequest: the warninglist check is one call per request, whatever the number
// of observables; respond and refer do not make it.
func TestOneCheckPerRequest(t *testing.T) {
	h := newHarness(t, allEvents())
	body := `[{"type":"ip","value":"198.51.100.7"},{"type":"domain","value":"evil.example"},{"type":"email","value":"phish@example.org"},{"type":"domain","value":"evil.example"}]`
	count := func() (searches, checks int) {
		for _, r := range h.misp.Requests() {
			switch r.Path {
			case "/attributes/restSearch":
				searches++
			case "/warninglists/checkValue":
				checks++
			}
		}
		return searches, checks
	}
	answerOf(t, h, "/observe/observables", body)
	if s, c := count(); s != 1 || c != 1 {
		t.Errorf("observe: %d searches, %d checks; want 1 and 1", s, c)
	}
	answerOf(t, h, "/deliberate/observables", body)
	if s, c := count(); s != 2 || c != 2 {
		t.Errorf("after deliberate: %d searches, %d checks; want 2 and 2", s, c)
	}
	h.post("/respond/observables", body)
	h.post("/refer/observables", body)
	if _, c := count(); c != 2 {
		t.Errorf("respond or refer made a warninglist check (%d in all)", c)
	}
}
