package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

const (
	uuidHigh = "542e4c9c-cadc-4f8f-bb11-6d13950d210b"
	uuidLow  = "5f0e1a2b-1111-4222-8333-944455556666"
	uuidOdd  = "6a0e1a2b-2222-4333-8444-a55566667777"
	sha256v  = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	md5v     = "d41d8cd98f00b204e9800998ecf8427e"
)

// Events in MISP's feed/event wire format.
var (
	eventHigh = []byte(`{"Event":{"uuid":"` + uuidHigh + `","info":"Test Event With High Threat Level","date":"2014-10-02",
	 "timestamp":"1615504132","threat_level_id":"1","published":true,"analysis":"2",
	 "Orgc":{"name":"ORGNAME","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d210f"},
	 "Tag":[{"name":"test tag","colour":"#ffffff","exportable":true},{"name":"tlp:amber","colour":"#ffc000","exportable":true}],
	 "Attribute":[
	  {"uuid":"11111111-0000-4000-8000-000000000001","type":"ip-dst","category":"Payload delivery","value":"198.51.100.7","to_ids":true,"timestamp":"1615504000"},
	  {"uuid":"11111111-0000-4000-8000-000000000002","type":"domain|ip","category":"Network activity","value":"evil.example|203.0.113.5","to_ids":true,"timestamp":"1615504100"},
	  {"uuid":"11111111-0000-4000-8000-000000000003","type":"filename|sha256","category":"Payload installation","value":"dropper.exe|` + sha256v + `","to_ids":true,"timestamp":"1615504100"}]}}`)
	eventLow = []byte(`{"Event":{"uuid":"` + uuidLow + `","info":"Low threat campaign","date":"2023-11-14",
	 "timestamp":"1700000500","threat_level_id":"3","published":true,"analysis":"1",
	 "Orgc":{"name":"Example CERT","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d2100"},
	 "Attribute":[
	  {"uuid":"22222222-0000-4000-8000-000000000001","type":"domain","category":"Network activity","value":"evil.example","to_ids":true,"timestamp":"1700000000",
	   "first_seen":"2023-11-01T00:00:00.000000+00:00","last_seen":"2023-11-10T00:00:00.000000+00:00"},
	  {"uuid":"22222222-0000-4000-8000-000000000002","type":"email-src","category":"Payload delivery","value":"phish@example.org","to_ids":false,"timestamp":"1700000000"}]}}`)
	eventOdd = []byte(`{"Event":{"uuid":"` + uuidOdd + `","info":"Odd threat level","date":"2023-01-01",
	 "timestamp":"1700000000","threat_level_id":"9","Orgc":{"name":"","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d2101"},
	 "Attribute":[{"uuid":"33333333-0000-4000-8000-000000000001","type":"md5","category":"Payload delivery","value":"` + md5v + `","to_ids":true,"timestamp":"1700000000"}]}}`)
)

func allEvents() options { return options{events: [][]byte{eventHigh, eventLow, eventOdd}} }

// normalize replaces random transient ids by stable placeholders in order of appearance.
func normalize(v any) any {
	seen := map[string]string{}
	counts := map[string]int{}
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				x[k] = walk(e)
			}
		case []any:
			for i, e := range x {
				x[i] = walk(e)
			}
		case string:
			for _, kind := range []string{"judgement", "sighting", "relationship"} {
				prefix := "transient:" + kind + "-"
				if strings.HasPrefix(x, prefix) {
					if p, ok := seen[x]; ok {
						return p
					}
					counts[kind]++
					seen[x] = fmt.Sprintf("%s#%d", prefix, counts[kind])
					return seen[x]
				}
			}
		}
		return v
	}
	return walk(v)
}

func mustJSON(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad JSON in test: %v\n%s", err, s)
	}
	return v
}

func TestObserveGolden(t *testing.T) {
	h := newHarness(t, allEvents())
	status, body := h.post("/observe/observables", `[{"type":"ip","value":"198.51.100.7"}]`)
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	uri := h.misp.URL + "/events/view/" + uuidHigh
	obs := `{"type":"ip","value":"198.51.100.7"}`
	valid := `{"start_time":"2026-01-01T00:00:00Z","end_time":"2026-01-08T00:00:00Z"}`
	ids := `["` + uuidHigh + `","11111111-0000-4000-8000-000000000001"]`
	refs := `[{"source_name":"MISP","url":"` + uri + `","external_id":"` + uuidHigh + `"}]`
	want := mustJSON(t, `{"data":{
	 "verdicts":{"count":1,"docs":[{"type":"verdict","disposition":2,"disposition_name":"Malicious","observable":`+obs+`,
	   "valid_time":`+valid+`,"judgement_id":"transient:judgement-#1"}]},
	 "judgements":{"count":1,"docs":[{"id":"transient:judgement-#1","type":"judgement","schema_version":"1.1.5","observable":`+obs+`,
	   "disposition":2,"disposition_name":"Malicious","priority":85,"confidence":"High","severity":"High","valid_time":`+valid+`,
	   "source":"MISP","source_uri":"`+uri+`","reason":"Malicious: MISP event threat level High; flagged for IDS.","reason_uri":"`+uri+`",
	   "external_ids":`+ids+`,"external_references":`+refs+`,"tlp":"amber"}]},
	 "sightings":{"count":1,"docs":[{"id":"transient:sighting-#1","type":"sighting","schema_version":"1.1.5",
	   "observed_time":{"start_time":"2021-03-11T23:06:40Z","end_time":"2021-03-11T23:06:40Z"},"confidence":"High","count":1,
	   "observables":[`+obs+`],"title":"Found in MISP event: Test Event With High Threat Level","description":"Category: Payload delivery",
	   "source":"MISP","source_uri":"`+uri+`","external_ids":`+ids+`,"external_references":`+refs+`,"tlp":"amber","timestamp":"2021-03-11T23:08:52Z"}]},
	 "indicators":{"count":1,"docs":[{"id":"transient:indicator-`+uuidHigh+`","type":"indicator","schema_version":"1.1.5",
	   "valid_time":{"start_time":"2014-10-02T00:00:00Z"},"producer":"ORGNAME","title":"Test Event With High Threat Level",
	   "short_description":"MISP event by ORGNAME, threat level High; matched ip-dst for IDS (Payload delivery)",
	   "external_ids":["`+uuidHigh+`"],"external_references":`+refs+`,
	   "tags":["test tag","tlp:amber"],"confidence":"High","severity":"High","tlp":"amber","source":"MISP","source_uri":"`+uri+`",
	   "timestamp":"2021-03-11T23:08:52Z"}]},
	 "relationships":{"count":2,"docs":[
	   {"id":"transient:relationship-#1","type":"relationship","schema_version":"1.1.5","relationship_type":"sighting-of",
	    "source_ref":"transient:sighting-#1","target_ref":"transient:indicator-`+uuidHigh+`"},
	   {"id":"transient:relationship-#2","type":"relationship","schema_version":"1.1.5","relationship_type":"element-of",
	    "source_ref":"transient:judgement-#1","target_ref":"transient:indicator-`+uuidHigh+`"}]}}}`)
	if diff := cmp.Diff(want, normalize(any(body))); diff != "" {
		t.Errorf("observe (-want +got):\n%s", diff)
	}
}

func TestObserveSeveralEvents(t *testing.T) {
	h := newHarness(t, allEvents())
	_, body := h.post("/observe/observables", `[{"type":"domain","value":"evil.example"},{"type":"email","value":"phish@example.org"}]`)
	data := body["data"].(map[string]any)
	count := func(k string) float64 { return data[k].(map[string]any)["count"].(float64) }
	// evil.example is in both events (as domain|ip and as domain), phish@ in the low one.
	for k, want := range map[string]float64{"verdicts": 2, "judgements": 3, "sightings": 3, "indicators": 2, "relationships": 6} {
		if got := count(k); got != want {
			t.Errorf("%s count = %v, want %v", k, got, want)
		}
	}
	verdicts := data["verdicts"].(map[string]any)["docs"].([]any)
	first := verdicts[0].(map[string]any)
	if first["disposition_name"] != "Malicious" || first["observable"].(map[string]any)["value"] != "evil.example" {
		t.Errorf("verdict for evil.example = %v, want Malicious from the most severe event", first)
	}
	// The email is in the Low event, not flagged for IDS: mentioned, not accused (a Low
	// threat level never makes a value Common).
	if second := verdicts[1].(map[string]any); second["disposition_name"] != "Unknown" {
		t.Errorf("verdict for the email = %v, want Unknown", second)
	}
	judgements := data["judgements"].(map[string]any)["docs"].([]any)
	if id := first["judgement_id"]; id != judgements[0].(map[string]any)["id"] {
		t.Errorf("verdict judgement_id %v is not the first judgement's id", id)
	}
	// The low event's sighting is dated from first_seen/last_seen.
	sightings := data["sightings"].(map[string]any)["docs"].([]any)
	ot := sightings[1].(map[string]any)["observed_time"].(map[string]any)
	if ot["start_time"] != "2023-11-01T00:00:00Z" || ot["end_time"] != "2023-11-10T00:00:00Z" {
		t.Errorf("observed_time = %v, want first_seen..last_seen", ot)
	}
	// The low event's indicator appears once although two observables hit it.
	ids := map[any]int{}
	for _, d := range data["indicators"].(map[string]any)["docs"].([]any) {
		ids[d.(map[string]any)["id"]]++
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("indicator %v emitted %d times", id, n)
		}
	}
}

func TestDeliberate(t *testing.T) {
	h := newHarness(t, allEvents())
	_, body := h.post("/deliberate/observables",
		`[{"type":"sha256","value":"`+sha256v+`"},{"type":"md5","value":"`+strings.ToUpper(md5v)+`"},{"type":"ip","value":"192.0.2.1"}]`)
	want := mustJSON(t, `{"data":{"verdicts":{"count":2,"docs":[
	 {"type":"verdict","disposition":2,"disposition_name":"Malicious","observable":{"type":"sha256","value":"`+sha256v+`"},
	  "valid_time":{"start_time":"2026-01-01T00:00:00Z","end_time":"2525-01-01T00:00:00Z"}},
	 {"type":"verdict","disposition":3,"disposition_name":"Suspicious","observable":{"type":"md5","value":"`+strings.ToUpper(md5v)+`"},
	  "valid_time":{"start_time":"2026-01-01T00:00:00Z","end_time":"2525-01-01T00:00:00Z"}}]}}}`)
	if diff := cmp.Diff(want, any(body)); diff != "" {
		t.Errorf("deliberate (-want +got):\n%s", diff)
	}
}

func TestNothingFound(t *testing.T) {
	h := newHarness(t, allEvents())
	for _, path := range []string{"/deliberate/observables", "/observe/observables"} {
		for _, body := range []string{`[]`, `[{"type":"ip","value":"192.0.2.1"}]`, `[{"type":"unsupported_type","value":"1.1.1.1"}]`} {
			_, got := h.post(path, body)
			if diff := cmp.Diff(mustJSON(t, `{"data":{}}`), any(got)); diff != "" {
				t.Errorf("%s %s (-want +got):\n%s", path, body, diff)
			}
		}
	}
	_, got := h.post("/refer/observables", `[{"type":"unsupported_type","value":"1.1.1.1"}]`)
	if diff := cmp.Diff(mustJSON(t, `{"data":[]}`), any(got)); diff != "" {
		t.Errorf("refer (-want +got):\n%s", diff)
	}
}

func TestFilteringNeverSendsUnsafeValues(t *testing.T) {
	h := newHarness(t, allEvents())
	body := `[{"type":"ip","value":" 198.51.100.7 "},{"type":"ip","value":"198.51.100.7"},
	 {"type":"ip","value":"0"},{"type":"ip","value":"   "},{"type":"domain","value":"!evil.example"},
	 {"type":"domain","value":"%evil"},{"type":"domain","value":"evil%"},{"type":"url","value":"http://a/?x=1&&y=2"},
	 {"type":"IP","value":"198.51.100.7"},{"type":"md5","value":"` + md5v + `"}]`
	_, got := h.post("/deliberate/observables", body)
	verdicts := got["data"].(map[string]any)["verdicts"].(map[string]any)["docs"].([]any)
	var values []string
	for _, v := range verdicts {
		values = append(values, v.(map[string]any)["observable"].(map[string]any)["value"].(string))
	}
	if diff := cmp.Diff([]string{"198.51.100.7", md5v}, values); diff != "" {
		t.Errorf("verdicts (-want +got):\n%s", diff)
	}
	var searched []string
	for _, r := range h.misp.Requests() {
		if r.Path == "/attributes/restSearch" {
			searched = append(searched, searchedValues(t, r)...)
		}
	}
	if diff := cmp.Diff([]string{"198.51.100.7", md5v}, searched); diff != "" {
		t.Errorf("values sent to MISP (-want +got):\n%s", diff)
	}
}

// searchedValues returns the values of a restSearch request: one value (a string) or several
// (a list, for a request's batch).
func searchedValues(t *testing.T, r misptest.Request) []string {
	t.Helper()
	var q struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(r.Body, &q); err != nil {
		t.Fatal(err)
	}
	var one string
	if json.Unmarshal(q.Value, &one) == nil {
		return []string{one}
	}
	var list []string
	if err := json.Unmarshal(q.Value, &list); err != nil {
		t.Fatalf("restSearch value %s: %v", q.Value, err)
	}
	return list
}

func TestMISPRequest(t *testing.T) {
	h := newHarness(t, allEvents())
	h.post("/observe/observables", `[{"type":"sha1","value":"`+strings.Repeat("a", 40)+`"}]`)
	// One search, and the request's one warninglist check.
	var r misptest.Request
	var paths []string
	for _, req := range h.misp.Requests() {
		paths = append(paths, req.Path)
		if req.Path == "/attributes/restSearch" {
			r = req
		}
	}
	slices.Sort(paths) // the check runs concurrently with the search
	if diff := cmp.Diff([]string{"/attributes/restSearch", "/warninglists/checkValue"}, paths); diff != "" {
		t.Fatalf("MISP requests (-want +got):\n%s", diff)
	}
	for k, want := range map[string]string{"Authorization": testMISPKey, "Accept": "application/json", "Content-Type": "application/json"} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(r.Header.Get("User-Agent"), "misp-relay") {
		t.Errorf("User-Agent = %q", r.Header.Get("User-Agent"))
	}
	var q map[string]any
	if err := json.Unmarshal(r.Body, &q); err != nil {
		t.Fatal(err)
	}
	if q["value"] != strings.Repeat("a", 40) || q["includeContext"] == nil || q["includeEventTags"] == nil || q["limit"] == nil {
		t.Errorf("restSearch body = %v", q)
	}
	if diff := cmp.Diff([]any{"sha1", "filename|sha1"}, q["type"]); diff != "" {
		t.Errorf("type list (-want +got):\n%s", diff)
	}
}

func TestEntitiesLimit(t *testing.T) {
	o := allEvents()
	o.limit = 1
	h := newHarness(t, o)
	_, body := h.post("/observe/observables", `[{"type":"domain","value":"evil.example"}]`)
	data := body["data"].(map[string]any)
	if n := data["judgements"].(map[string]any)["count"]; n != 1.0 {
		t.Errorf("judgements = %v with CTR_ENTITIES_LIMIT 1, want 1", n)
	}
}

// TestRefer checks the link forms the real MISP resolves (internal/misplive opens them on
// one): searchvalue for values without a slash, with "+" escaped, IPv6 canonical and a
// tail so that a ".csv" value is not read as an export format; the events' UUIDs for a
// value with a slash, which needs one lookup; no link when no event holds it.
func TestRefer(t *testing.T) {
	const urlEvent = "7b0e1a2b-3333-4444-8555-b66677778888"
	withURL := []byte(`{"Event":{"uuid":"` + urlEvent + `","info":"URL event","date":"2024-01-01","timestamp":"1700000000","threat_level_id":"2",
	 "Orgc":{"name":"ORGNAME","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d210f"},
	 "Attribute":[{"uuid":"44444444-0000-4000-8000-000000000001","type":"url","category":"Network activity","value":"http://a/b?c=d e","to_ids":true,"timestamp":"1700000000"}]}}`)
	h := newHarness(t, options{uiURL: "https://misp.example.org/", events: [][]byte{withURL}})
	_, got := h.post("/refer/observables", `[{"type":"ip","value":"198.51.100.7"},{"type":"url","value":"http://a/b?c=d e"},
	 {"type":"url","value":"http://nowhere/x"},{"type":"file_name","value":"my report+v2.csv"},{"type":"ipv6","value":"2001:0DB8:0:0::5"},{"type":"nope","value":"x"}]`)
	want := mustJSON(t, `{"data":[
	 {"id":"ref-misp-search-ip-198.51.100.7","title":"Search events with this IP","description":"Lookup events with this IP on MISP",
	  "url":"https://misp.example.org/events/index/searchvalue:198.51.100.7/sort:timestamp/direction:desc","categories":["Search","MISP"]},
	 {"id":"ref-misp-search-url-http://a/b?c=d e","title":"Search events with this URL","description":"Lookup events with this URL on MISP",
	  "url":"https://misp.example.org/events/index/searcheventid:`+urlEvent+`/sort:timestamp/direction:desc","categories":["Search","MISP"]},
	 {"id":"ref-misp-search-file_name-my report+v2.csv","title":"Search events with this file name","description":"Lookup events with this file name on MISP",
	  "url":"https://misp.example.org/events/index/searchvalue:my%20report%2Bv2.csv/sort:timestamp/direction:desc","categories":["Search","MISP"]},
	 {"id":"ref-misp-search-ipv6-2001:0DB8:0:0::5","title":"Search events with this IPv6","description":"Lookup events with this IPv6 on MISP",
	  "url":"https://misp.example.org/events/index/searchvalue:2001:db8::5/sort:timestamp/direction:desc","categories":["Search","MISP"]}]}`)
	if diff := cmp.Diff(want, any(got)); diff != "" {
		t.Errorf("refer (-want +got):\n%s", diff)
	}
	requests := h.misp.Requests()
	if len(requests) != 1 || requests[0].Path != "/attributes/restSearch" {
		t.Fatalf("refer made %d MISP calls, want one restSearch", len(requests))
	}
	if diff := cmp.Diff([]string{"http://a/b?c=d e", "http://nowhere/x"}, searchedValues(t, requests[0])); diff != "" {
		t.Errorf("refer looked up (-want +got):\n%s", diff)
	}
}

func TestHealth(t *testing.T) {
	h := newHarness(t, allEvents())
	_, got := h.post("/health", ``)
	if diff := cmp.Diff(mustJSON(t, `{"data":{"status":"ok"}}`), any(got)); diff != "" {
		t.Errorf("health (-want +got):\n%s", diff)
	}
	if r := h.misp.Requests(); len(r) != 1 || r[0].Path != "/servers/getVersion" {
		t.Errorf("health made %v, want one GET /servers/getVersion", r)
	}
}

func TestMISPFailures(t *testing.T) {
	tests := []struct {
		status int
		body   string
		code   string
	}{
		{403, `{"name":"Authentication failed.","message":"Authentication failed.","url":"/servers/getVersion"}`, "permission denied"},
		{404, `{"name":"Not Found","message":"Not Found","url":"/x"}`, "not found"},
		{429, `{"name":"Rate limit exceeded.","message":"Rate limit exceeded.","url":"/x"}`, "too many requests"},
		{500, `{"name":"An Internal Error Has Occurred.","message":"An Internal Error Has Occurred.","url":"/x"}`, "internal error"},
		{502, `<html><body>Bad Gateway</body></html>`, "service unavailable"},
		{503, `<html>down</html>`, "service unavailable"},
		{504, `<html>timeout</html>`, "service unavailable"},
		{418, `{"name":"teapot"}`, "unknown"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			h := newHarness(t, allEvents())
			h.misp.Fail("/servers/getVersion", tt.status, tt.body)
			h.misp.Fail("/attributes/restSearch", tt.status, tt.body)
			for _, path := range []string{"/health", "/observe/observables", "/deliberate/observables", "/respond/observables"} {
				_, got := h.post(path, `[{"type":"ip","value":"198.51.100.7"}]`)
				code, msg := errorOf(t, got)
				if code != tt.code {
					t.Errorf("%s: code %q (%s), want %q", path, code, msg, tt.code)
				}
				if _, hasData := got["data"]; hasData && path != "/respond/observables" {
					t.Errorf("%s: data next to errors although nothing was found: %v", path, got)
				}
			}
		})
	}
	t.Run("refused connection", func(t *testing.T) {
		h := newHarness(t, allEvents())
		h.misp.Close()
		_, got := h.post("/health", ``)
		if code, msg := errorOf(t, got); code != "service unavailable" {
			t.Errorf("code %q (%s), want service unavailable", code, msg)
		}
	})
}

func TestRespondObservables(t *testing.T) {
	t.Run("MISP knows it, no urlscan key", func(t *testing.T) {
		h := newHarness(t, allEvents())
		_, got := h.post("/respond/observables", `[{"type":"domain","value":"evil.example"},{"type":"ip","value":"192.0.2.1"}]`)
		actions := got["data"].([]any)
		var ids []string
		for _, a := range actions {
			ids = append(ids, a.(map[string]any)["id"].(string))
		}
		if diff := cmp.Diff([]string{"misp-add-sighting", "misp-add-false-positive"}, ids); diff != "" {
			t.Errorf("actions (-want +got):\n%s", diff)
		}
		want := mustJSON(t, `{"id":"misp-add-sighting","title":"Report a sighting to MISP",
		 "description":"Add a sighting of this domain to the MISP events that hold it","categories":["MISP","Sighting"],
		 "query-params":{"observable_type":"domain","observable_value":"evil.example"}}`)
		if diff := cmp.Diff(want, actions[0]); diff != "" {
			t.Errorf("action (-want +got):\n%s", diff)
		}
	})
	t.Run("urlscan key from the JWT", func(t *testing.T) {
		h := newHarness(t, allEvents())
		tok := token(t, auth.Claims{Key: testMISPKey, URLScanKey: testURLScanKey})
		_, got := h.do(http.MethodPost, "/respond/observables", http.Header{"Authorization": {"Bearer " + tok}},
			`[{"type":"url","value":"https://unknown.example/x"},{"type":"ip","value":"198.51.100.7"}]`)
		var ids []string
		for _, a := range got["data"].([]any) {
			ids = append(ids, a.(map[string]any)["id"].(string))
		}
		if diff := cmp.Diff([]string{"urlscan-scan", "misp-add-sighting", "misp-add-false-positive"}, ids); diff != "" {
			t.Errorf("actions (-want +got):\n%s", diff)
		}
	})
	t.Run("urlscan key from the environment", func(t *testing.T) {
		o := allEvents()
		o.urlscanKey = testURLScanKey
		h := newHarness(t, o)
		_, got := h.post("/respond/observables", `[{"type":"domain","value":"new.example"}]`)
		if n := len(got["data"].([]any)); n != 1 {
			t.Errorf("%d actions, want the urlscan one: %v", n, got)
		}
	})
}

func TestRespondTrigger(t *testing.T) {
	trigger := func(action, typ, value string) string {
		return fmt.Sprintf(`{"action-id":%q,"observable_type":%q,"observable_value":%q,"extra":"kept"}`, action, typ, value)
	}
	success := mustJSON(t, `{"data":{"status":"success"}}`)

	t.Run("sighting and false positive", func(t *testing.T) {
		h := newHarness(t, allEvents())
		for _, action := range []string{"misp-add-sighting", "misp-add-false-positive"} {
			_, got := h.post("/respond/trigger", trigger(action, "ip", "198.51.100.7"))
			if diff := cmp.Diff(success, any(got)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", action, diff)
			}
		}
		s := h.misp.Sightings()
		if len(s) != 2 || s[0].Type != "0" || s[1].Type != "1" || s[0].Source != "XDR" || s[0].Values[0] != "198.51.100.7" {
			t.Errorf("sightings = %+v", s)
		}
	})
	t.Run("MISP knows no such attribute", func(t *testing.T) {
		h := newHarness(t, allEvents())
		_, got := h.post("/respond/trigger", trigger("misp-add-sighting", "ip", "192.0.2.99"))
		if got["data"].(map[string]any)["status"] != "failure" {
			t.Errorf("status = %v, want failure", got["data"])
		}
		if code, msg := errorOf(t, got); code != "not found" || !strings.Contains(msg, "holds no attribute with this value") {
			t.Errorf("error %q %q, want not found saying MISP holds no such attribute", code, msg)
		}
	})
	t.Run("unknown action", func(t *testing.T) {
		h := newHarness(t, allEvents())
		_, got := h.post("/respond/trigger", trigger("do-something", "ip", "198.51.100.7"))
		if code, _ := errorOf(t, got); code != "invalid argument" || got["data"].(map[string]any)["status"] != "failure" {
			t.Errorf("got %v, want a failure with invalid argument", got)
		}
	})
	t.Run("urlscan scan", func(t *testing.T) {
		h := newHarness(t, allEvents())
		tok := token(t, auth.Claims{Key: testMISPKey, URLScanKey: testURLScanKey})
		hdr := http.Header{"Authorization": {"Bearer " + tok}}
		_, got := h.do(http.MethodPost, "/respond/trigger", hdr, trigger("urlscan-scan", "url", "https://evil.example/login"))
		if diff := cmp.Diff(success, any(got)); diff != "" {
			t.Errorf("scan (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]map[string]any{{"url": "https://evil.example/login", "visibility": "unlisted"}}, h.scans.got); diff != "" {
			t.Errorf("urlscan request (-want +got):\n%s", diff)
		}
		if h.scans.keys[0] != testURLScanKey {
			t.Errorf("API-Key header not sent")
		}
		h.scans.answer(400, `{"message":"DNS Error - Could not resolve domain","description":"The domain nope.example could not be resolved to a valid IPv4/IPv6 address.","status":400}`)
		_, got = h.do(http.MethodPost, "/respond/trigger", hdr, trigger("urlscan-scan", "domain", "nope.example"))
		code, msg := errorOf(t, got)
		if code != "bad request" || !strings.Contains(msg, "could not be resolved") || got["data"].(map[string]any)["status"] != "failure" {
			t.Errorf("got %v, want a bad request failure with urlscan's reason", got)
		}
	})
	t.Run("urlscan without a key", func(t *testing.T) {
		h := newHarness(t, allEvents())
		_, got := h.post("/respond/trigger", trigger("urlscan-scan", "url", "https://evil.example/"))
		if code, _ := errorOf(t, got); code != "permission denied" {
			t.Errorf("code %q, want permission denied", code)
		}
		if len(h.scans.got) != 0 {
			t.Error("a scan was submitted without a key")
		}
	})
}

func TestVersionAndWatchdog(t *testing.T) {
	h := newHarness(t, allEvents())
	_, got := h.do(http.MethodPost, "/version", nil, "")
	if diff := cmp.Diff(mustJSON(t, `{"version":"1.0.0"}`), any(got)); diff != "" {
		t.Errorf("version (-want +got):\n%s", diff)
	}
	_, got = h.do(http.MethodGet, "/watchdog", http.Header{"Health-Check": {"test"}}, "")
	if diff := cmp.Diff(mustJSON(t, `{"data":"test"}`), any(got)); diff != "" {
		t.Errorf("watchdog (-want +got):\n%s", diff)
	}
	_, got = h.do(http.MethodGet, "/watchdog", nil, "")
	want := mustJSON(t, `{"errors":[{"type":"fatal","code":"health check failed","message":"Invalid Health Check"}]}`)
	if diff := cmp.Diff(want, any(got)); diff != "" {
		t.Errorf("watchdog without header (-want +got):\n%s", diff)
	}
}

func TestRoutes(t *testing.T) {
	h := newHarness(t, allEvents())
	tests := []struct {
		method, path string
		status       int
	}{
		{"POST", "/post", 404},
		{"GET", "/get", 404},
		{"PUT", "/put", 404},
		{"DELETE", "/delete", 404},
		{"GET", "/version", 405},
		{"GET", "/health", 405},
		{"GET", "/deliberate/observables", 405},
		{"GET", "/observe/observables", 405},
		{"GET", "/refer/observables", 405},
		{"GET", "/respond/observables", 405},
		{"GET", "/respond/trigger", 405},
		{"POST", "/watchdog", 405},
		{"POST", "/health/", 200},
		{"POST", "/version/", 200},
	}
	for _, tt := range tests {
		status, body := h.do(tt.method, tt.path, http.Header{"Authorization": {h.bearer()}}, "")
		if status != tt.status {
			t.Errorf("%s %s = %d (%v), want %d", tt.method, tt.path, status, body, tt.status)
		}
	}
	// A 405 says which methods the path takes (RFC 9110; Flask did too).
	for path, want := range map[string]string{"/version": "POST", "/watchdog": "GET, HEAD", "/observe/observables/": "POST"} {
		method := http.MethodGet
		if want != "POST" {
			method = http.MethodDelete
		}
		req, err := http.NewRequestWithContext(context.Background(), method, h.srv.URL+path, http.NoBody)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != want {
			t.Errorf("%s %s: %d, Allow %q; want 405, Allow %q", method, path, resp.StatusCode, resp.Header.Get("Allow"), want)
		}
	}
}

// authCases are the contract's authorization failures (§8.1, §8.4, §8.5) plus the bugs it
// lists, which answer an authorization error here instead of HTTP 500.
func authCases(t *testing.T) []struct{ name, header, message string } {
	good := token(t, auth.Claims{Key: testMISPKey})
	parts := strings.Split(good, ".")
	other := testkit.JWT(t, "another-secret", auth.Claims{Key: testMISPKey})
	return []struct{ name, header, message string }{
		{"missing", "", "Authorization failed: Authorization header is missing"},
		{"wrong type", "wrong_type " + good, "Authorization failed: Wrong authorization type"},
		{"bearer alone", "Bearer", "Authorization failed: Wrong authorization type"},
		{"extra parts", "Bearer a b", "Authorization failed: Wrong authorization type"},
		{"structure", "Bearer wrong_jwt_structure", "Authorization failed: Wrong JWT structure"},
		{"tampered", "Bearer " + parts[0] + ".eyJrZXkiOiJ4Iiwic3VwZXJ1c2VyIjp0cnVlfQ." + parts[2], "Authorization failed: Failed to decode JWT with provided key"},
		{"other secret", "Bearer " + other, "Authorization failed: Failed to decode JWT with provided key"},
		{"payload", "Bearer " + token(t, auth.Claims{Key: " "}), "Authorization failed: Wrong JWT payload structure"},
	}
}

func TestAuthorization(t *testing.T) {
	h := newHarness(t, allEvents())
	paths := []string{"/health", "/deliberate/observables", "/observe/observables", "/refer/observables", "/respond/observables", "/respond/trigger"}
	for _, tc := range authCases(t) {
		for _, path := range paths {
			hdr := http.Header{}
			if tc.header != "" {
				hdr.Set("Authorization", tc.header)
			}
			// An invalid body too: authentication is checked first.
			_, got := h.do(http.MethodPost, path, hdr, `[{"type":"ip","value":""}]`)
			code, msg := errorOf(t, got)
			if code != "authorization error" || msg != tc.message {
				t.Errorf("%s %s: %q %q, want authorization error %q", tc.name, path, code, msg, tc.message)
			}
		}
	}
	if n := len(h.misp.Requests()); n != 0 {
		t.Errorf("%d MISP calls for unauthenticated requests", n)
	}
}

func TestSecretKeyMissing(t *testing.T) {
	empty := ""
	o := allEvents()
	o.secret = &empty
	h := newHarness(t, o)
	_, got := h.post("/health", ``)
	if code, msg := errorOf(t, got); code != "authorization error" || msg != "Authorization failed: <SECRET_KEY> is missing" {
		t.Errorf("got %q %q", code, msg)
	}
}

func TestBodyValidation(t *testing.T) {
	h := newHarness(t, allEvents())
	const prefix = "Invalid JSON payload received. "
	tests := []struct{ path, body, want string }{
		{"/observe/observables", `[{"type":"ip","value":""}]`, `{0: {'value': ['Field may not be blank.']}}`},
		{"/deliberate/observables", `not json`, `{'_schema': ['Invalid input type.']}`},
		{"/refer/observables", `{"type":"ip","value":"x"}`, `{'_schema': ['Invalid input type.']}`},
		{"/respond/observables", `[{"type":"ip","value":"1","extra":1}]`, `{0: {'extra': ['Unknown field.']}}`},
		{"/observe/observables", ``, `{'_schema': ['Invalid input type.']}`},
		{"/observe/observables", `null`, `{'_schema': ['Invalid input type.']}`},
		{"/observe/observables", `[{"type":null,"value":"x"}]`, `{0: {'type': ['Field may not be null.']}}`},
		{"/observe/observables", `[{"type":"ip","value":1}]`, `{0: {'value': ['Not a valid string.']}}`},
		{"/observe/observables", `[{"type":"ip","value":"1.1.1.1"},{}]`, `{1: {'type': ['Missing data for required field.'], 'value': ['Missing data for required field.']}}`},
		{"/respond/trigger", `{"action_id":"x","observable_type":"domain","observable_value":"cisco.com"}`, `{'action-id': ['Missing data for required field.']}`},
		{"/respond/trigger", `{"action-id":"x","observable_type":"ip","observable_value":""}`, `{'observable_value': ['Field may not be blank.']}`},
		{"/respond/trigger", `[]`, `{'_schema': ['Invalid input type.']}`},
		{"/respond/trigger", `{"action-id":"x","observable_type":"` + strings.Repeat("t", 129) + `","observable_value":"x"}`, `{'observable_type': ['Longer than maximum length 128.']}`},
	}
	for _, tt := range tests {
		_, got := h.post(tt.path, tt.body)
		code, msg := errorOf(t, got)
		if code != "invalid argument" || msg != prefix+tt.want {
			t.Errorf("%s %s:\n got %q %q\nwant invalid argument %q", tt.path, tt.body, code, msg, prefix+tt.want)
		}
	}
}

func TestContentTypeIgnored(t *testing.T) {
	h := newHarness(t, allEvents())
	_, got := h.do(http.MethodPost, "/deliberate/observables", http.Header{"Authorization": {h.bearer()}, "Content-Type": {"text/plain"}},
		`[{"type":"ip","value":"198.51.100.7"}]`)
	if _, ok := got["data"].(map[string]any)["verdicts"]; !ok {
		t.Errorf("text/plain body not read as JSON: %v", got)
	}
}

// TestLongValueIsSkipped: a value longer than the relay looks up does not fail the request
// (the spec has no maxLength for it): it is skipped like an unsupported type, never sent to
// MISP, and the other observables are answered.
func TestLongValueIsSkipped(t *testing.T) {
	h := newHarness(t, allEvents())
	long := "http://x/" + strings.Repeat("a", 4096)
	body := `[{"type":"url","value":"` + long + `"},{"type":"ip","value":"198.51.100.7"}]`
	_, got := h.post("/observe/observables", body)
	if _, ok := got["errors"]; ok {
		t.Fatalf("errors for a long value: %v", got)
	}
	verdicts := got["data"].(map[string]any)["verdicts"].(map[string]any)
	if verdicts["count"] != 1.0 {
		t.Errorf("verdicts %v, want the IP's only", verdicts)
	}
	for _, r := range h.misp.Requests() {
		if strings.Contains(string(r.Body), strings.Repeat("a", 4096)) {
			t.Errorf("the long value was sent to MISP: %s %s", r.Path, r.Body[:80])
		}
	}
	_, refer := h.post("/refer/observables", body)
	if _, ok := refer["errors"]; ok {
		t.Errorf("refer: %v", refer)
	}
}
