package misptest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/misp/misptest"
)

const key = "Zk3fQ9xWm2Lp7Rt5Yv8Bn4Hc6Jd1Gs0Ae2Ui9Oq"

const authMsg = "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header."

// Two events: e1 has a composite attribute, an object attribute and tags; e2 is plain.
const (
	event1 = `{"Event":{"uuid":"11111111-1111-4111-8111-111111111111","info":"Phishing wave","date":"2024-01-02",
	  "timestamp":"1704153600","publish_timestamp":"1704153700","threat_level_id":"1","analysis":"2","published":true,
	  "Orgc":{"name":"CIRCL","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d210f"},
	  "Tag":[{"name":"tlp:green","colour":"#339900","exportable":true},{"name":"misp-galaxy:threat-actor=\"APT1\""}],
	  "Attribute":[
	    {"uuid":"a1111111-0000-4000-8000-000000000001","type":"domain","category":"Network activity","value":"Evil.Example",
	     "to_ids":true,"comment":"c2","timestamp":"1704153601","first_seen":"1701984000000000","Tag":[{"name":"kill-chain:c2"}]},
	    {"uuid":"a1111111-0000-4000-8000-000000000002","type":"domain|ip","category":"Network activity",
	     "value":"other.example|198.51.100.7","to_ids":false,"timestamp":"1704153602"}],
	  "Object":[{"name":"ip-port","distribution":"5","Attribute":[
	    {"uuid":"a1111111-0000-4000-8000-000000000003","type":"ip-dst","category":"Network activity","value":"198.51.100.7",
	     "to_ids":true,"timestamp":"1704153603","object_relation":"ip"}]}]}}`
	event2 = `{"Event":{"uuid":"22222222-2222-4222-8222-222222222222","info":"Botnet","date":"2024-02-03",
	  "timestamp":1706918400,"threat_level_id":3,"Orgc":{"name":"CERT.be","uuid":"5cf66e53-b5f8-43e7-be9a-49880a3b4631"},
	  "Attribute":[
	    {"uuid":"a2222222-0000-4000-8000-000000000001","type":"domain","category":"Network activity","value":"evil.example",
	     "to_ids":false,"timestamp":"1706918401"},
	    {"uuid":"a2222222-0000-4000-8000-000000000002","type":"md5","category":"Payload delivery",
	     "value":"0749bae92ca336a02c83d126e04ec628","to_ids":true,"timestamp":"1706918402"}]}}`
)

func newServer(t *testing.T) *misptest.Server {
	return misptest.New(t, key, []byte(event1), []byte(event2))
}

// send makes one request; header "" values are left out.
func send(t *testing.T, srv *misptest.Server, method, path string, header map[string]string, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// api are the headers a well-behaved client sends.
func api() map[string]string {
	return map[string]string{"Authorization": key, "Accept": "application/json", "Content-Type": "application/json"}
}

func with(h map[string]string, kv ...string) map[string]string {
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = kv[i+1]
	}
	return h
}

func mispError(msg, path string) string {
	b, _ := json.Marshal(map[string]string{"name": msg, "message": msg, "url": path})
	return string(b)
}

func TestAuthAndRouting(t *testing.T) {
	srv := newServer(t)
	const search = `{"value":"evil.example"}`
	tests := []struct {
		name       string
		method     string
		path       string
		header     map[string]string
		body       string
		wantStatus int
		wantBody   string // exact, when set
		wantCT     string // prefix
		wantLoc    string
	}{
		{
			name: "no key", method: "POST", path: "/attributes/restSearch", header: with(api(), "Authorization", ""), body: search,
			wantStatus: 403, wantBody: mispError(authMsg, "/attributes/restSearch"), wantCT: "application/json",
		},
		{
			name: "wrong key", method: "GET", path: "/servers/getVersion", header: with(api(), "Authorization", "x"),
			wantStatus: 403, wantBody: mispError(authMsg, "/servers/getVersion"), wantCT: "application/json",
		},
		{
			name: "Bearer prefix", method: "GET", path: "/servers/getVersion", header: with(api(), "Authorization", "Bearer "+key),
			wantStatus: 403, wantBody: mispError(authMsg, "/servers/getVersion"),
		},
		{
			name: "Basic is no key", method: "GET", path: "/servers/getVersion", header: with(api(), "Authorization", "Basic "+key),
			wantStatus: 403,
		},
		{
			name: "X-MISP-AUTH overrides", method: "GET", path: "/servers/getVersion", header: with(api(), "Authorization", "x", "X-MISP-AUTH", key),
			wantStatus: 200,
		},
		{
			name: "comma list", method: "GET", path: "/servers/getVersion", header: with(api(), "Authorization", "other, "+key+" "),
			wantStatus: 200,
		},
		{
			name: "unknown path", method: "GET", path: "/servers/gaaa", header: api(),
			wantStatus: 404, wantBody: mispError("Not Found", "/servers/gaaa"), wantCT: "application/json",
		},
		{
			name: "wrong key without Accept redirects to login", method: "GET", path: "/servers/getVersion",
			header: map[string]string{"Authorization": "x"}, wantStatus: 302, wantCT: "text/html", wantLoc: "/users/login",
		},
		{
			name: "valid key without Accept is not REST", method: "GET", path: "/servers/getVersion",
			header: map[string]string{"Authorization": key}, wantStatus: 403, wantCT: "text/html",
		},
		{
			name: ".json suffix is REST", method: "GET", path: "/servers/getVersion.json",
			header: map[string]string{"Authorization": key}, wantStatus: 200, wantCT: "application/json",
		},
		{
			name: "restSearch is always REST", method: "POST", path: "/attributes/restSearch",
			header: map[string]string{"Authorization": "x"}, body: search, wantStatus: 403, wantCT: "application/json",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := send(t, srv, tc.method, tc.path, tc.header, tc.body)
			if status != tc.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", status, tc.wantStatus, body)
			}
			if tc.wantBody != "" && body != tc.wantBody {
				t.Errorf("body = %s\nwant   %s", body, tc.wantBody)
			}
			if !strings.HasPrefix(h.Get("Content-Type"), tc.wantCT) {
				t.Errorf("Content-Type = %q, want %q", h.Get("Content-Type"), tc.wantCT)
			}
			if h.Get("Location") != tc.wantLoc {
				t.Errorf("Location = %q, want %q", h.Get("Location"), tc.wantLoc)
			}
		})
	}
}

func TestGetVersion(t *testing.T) {
	srv := newServer(t)
	status, _, body := send(t, srv, "GET", "/servers/getVersion", api(), "")
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"version": "2.5.1", "pymisp_recommended_version": "2.5.1", "perm_sync": false, "perm_sighting": true,
		"perm_galaxy_editor": false, "perm_analyst_data": true, "uuid": "-", "request_encoding": []any{"gzip", "br"},
		"filter_sightings": true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("getVersion (-want +got):\n%s", diff)
	}
}

// searchAttrs posts a restSearch and returns the attributes' "id-value" strings.
func searchAttrs(t *testing.T, srv *misptest.Server, header map[string]string, body string) []string {
	t.Helper()
	status, _, resp := send(t, srv, "POST", "/attributes/restSearch", header, body)
	if status != 200 {
		t.Fatalf("status %d: %s", status, resp)
	}
	var r struct {
		Response struct {
			Attribute []struct{ ID, Value string }
		}
	}
	if err := json.Unmarshal([]byte(resp), &r); err != nil {
		t.Fatalf("%v: %s", err, resp)
	}
	var out []string
	for _, a := range r.Response.Attribute {
		out = append(out, a.ID+" "+a.Value)
	}
	return out
}

func TestRestSearchFilters(t *testing.T) {
	srv := newServer(t)
	all := []string{"1 Evil.Example", "2 other.example|198.51.100.7", "3 198.51.100.7", "4 evil.example", "5 0749bae92ca336a02c83d126e04ec628"}
	tests := []struct {
		name   string
		header map[string]string
		body   string
		want   []string
	}{
		{name: "value, case-insensitive", body: `{"value":"EVIL.example"}`, want: []string{"1 Evil.Example", "4 evil.example"}},
		{
			name: "value list", body: `{"value":["evil.example","0749BAE92CA336A02C83D126E04EC628"]}`,
			want: []string{"1 Evil.Example", "4 evil.example", "5 0749bae92ca336a02c83d126e04ec628"},
		},
		{
			name: "composite halves and object attributes", body: `{"value":"198.51.100.7"}`,
			want: []string{"2 other.example|198.51.100.7", "3 198.51.100.7"},
		},
		{name: "first half of a composite", body: `{"value":"other.example"}`, want: []string{"2 other.example|198.51.100.7"}},
		{name: "type list", body: `{"value":"198.51.100.7","type":["ip-dst","ip-src"]}`, want: []string{"3 198.51.100.7"}},
		{name: "type string", body: `{"value":"198.51.100.7","type":"domain|ip"}`, want: []string{"2 other.example|198.51.100.7"}},
		{name: "limit", body: `{"value":["evil.example","198.51.100.7"],"limit":2}`, want: []string{"1 Evil.Example", "2 other.example|198.51.100.7"}},
		{name: "limit and page", body: `{"value":["evil.example","198.51.100.7"],"limit":2,"page":2}`, want: []string{"3 198.51.100.7", "4 evil.example"}},
		{name: "limit and page as strings", body: `{"value":["evil.example","198.51.100.7"],"limit":"3","page":"2"}`, want: []string{"4 evil.example"}},
		{name: "page past the end", body: `{"value":"evil.example","limit":2,"page":5}`},
		{name: "no match", body: `{"value":"nothing.example"}`},
		{name: "nested under request", body: `{"request":{"value":"evil.example","type":"domain"}}`, want: []string{"1 Evil.Example", "4 evil.example"}},
		// MISP's traps, which the relay must avoid (see intel.SafeValue):
		{name: "empty value returns everything", body: `{"value":""}`, want: all},
		{name: "value 0 returns everything", body: `{"value":"0","limit":2}`, want: all[:2]},
		{name: "no Content-Type: filters ignored", header: with(api(), "Content-Type", ""), body: `{"value":"evil.example","limit":1}`, want: all},
		{name: "form Content-Type: filters ignored", header: with(api(), "Content-Type", "application/x-www-form-urlencoded"), body: `{"value":"evil.example"}`, want: all},
		{name: "&& splits", body: `{"value":"evil.example&&198.51.100.7","type":["domain","ip-dst"]}`, want: []string{"1 Evil.Example", "3 198.51.100.7", "4 evil.example"}},
		{name: "! negates", body: `{"value":"!evil.example","type":"domain"}`},
		{name: "% is LIKE", body: `{"value":"%.example"}`, want: []string{"1 Evil.Example", "2 other.example|198.51.100.7", "4 evil.example"}},
		{name: "charset in Content-Type is fine", header: with(api(), "Content-Type", "application/json; charset=utf-8"), body: `{"value":"evil.example"}`, want: []string{"1 Evil.Example", "4 evil.example"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.header
			if h == nil {
				h = api()
			}
			if diff := cmp.Diff(tc.want, searchAttrs(t, srv, h, tc.body)); diff != "" {
				t.Errorf("attributes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRestSearchWireFormat(t *testing.T) {
	srv := newServer(t)
	tests := []struct {
		name string
		body string
		want string
	}{
		{
			name: "no match",
			body: `{"value":"nothing.example"}`,
			want: `{"response":{"Attribute":[]}}`,
		},
		{
			name: "short Event block without includeContext",
			body: `{"value":"evil.example","type":"domain","limit":1}`,
			want: `{"response":{"Attribute":[{"id":"1","event_id":"1","object_id":"0","object_relation":null,"category":"Network activity",` +
				`"type":"domain","to_ids":true,"uuid":"a1111111-0000-4000-8000-000000000001","timestamp":"1704153601","distribution":"5",` +
				`"sharing_group_id":"0","comment":"c2","deleted":false,"disable_correlation":false,"first_seen":"1701984000000000",` +
				`"last_seen":null,"value":"Evil.Example","Event":{"org_id":"1","distribution":"3","id":"1",` +
				`"info":"Phishing wave","orgc_id":"2","uuid":"11111111-1111-4111-8111-111111111111"},` +
				`"Tag":[{"id":"3","name":"kill-chain:c2","colour":"#0088cc","numerical_value":null,"is_galaxy":false,"local":false}]}]}}`,
		},
		{
			name: "includeContext and includeEventTags",
			body: `{"value":"evil.example","type":"domain","includeContext":1,"includeEventTags":true,"limit":1}`,
			want: `{"response":{"Attribute":[{"id":"1","event_id":"1","object_id":"0","object_relation":null,"category":"Network activity",` +
				`"type":"domain","to_ids":true,"uuid":"a1111111-0000-4000-8000-000000000001","timestamp":"1704153601","distribution":"5",` +
				`"sharing_group_id":"0","comment":"c2","deleted":false,"disable_correlation":false,"first_seen":"1701984000000000",` +
				`"last_seen":null,"value":"Evil.Example","Event":{"id":"1","orgc_id":"2","org_id":"1","date":"2024-01-02",` +
				`"threat_level_id":"1","info":"Phishing wave","published":true,"uuid":"11111111-1111-4111-8111-111111111111",` +
				`"analysis":"2","timestamp":"1704153600","distribution":"3","publish_timestamp":"1704153700","sharing_group_id":"0",` +
				`"extends_uuid":"","Tag":[{"local":false,"id":"1","name":"tlp:green","colour":"#339900","numerical_value":null},` +
				`{"local":false,"id":"2","name":"misp-galaxy:threat-actor=\"APT1\"","colour":"#0088cc","numerical_value":null}],` +
				`"Orgc":{"id":"2","name":"CIRCL","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d210f","local":false}},` +
				`"Tag":[{"id":"3","name":"kill-chain:c2","colour":"#0088cc","numerical_value":null,"is_galaxy":false,"local":false},` +
				`{"id":"1","name":"tlp:green","colour":"#339900","numerical_value":null,"inherited":1},` +
				`{"id":"2","name":"misp-galaxy:threat-actor=\"APT1\"","colour":"#0088cc","numerical_value":null,"inherited":1}]}]}}`,
		},
		{
			name: "numbers in the feed become strings; object attributes carry Object",
			body: `{"value":"198.51.100.7","type":"ip-dst","includeContext":"1"}`,
			want: `{"response":{"Attribute":[{"id":"3","event_id":"1","object_id":"1","object_relation":"ip","category":"Network activity",` +
				`"type":"ip-dst","to_ids":true,"uuid":"a1111111-0000-4000-8000-000000000003","timestamp":"1704153603","distribution":"5",` +
				`"sharing_group_id":"0","comment":"","deleted":false,"disable_correlation":false,"first_seen":null,"last_seen":null,` +
				`"value":"198.51.100.7","Event":{"id":"1","orgc_id":"2","org_id":"1","date":"2024-01-02","threat_level_id":"1",` +
				`"info":"Phishing wave","published":true,"uuid":"11111111-1111-4111-8111-111111111111","analysis":"2",` +
				`"timestamp":"1704153600","distribution":"3","publish_timestamp":"1704153700","sharing_group_id":"0","extends_uuid":"",` +
				`"Tag":[{"local":false,"id":"1","name":"tlp:green","colour":"#339900","numerical_value":null},` +
				`{"local":false,"id":"2","name":"misp-galaxy:threat-actor=\"APT1\"","colour":"#0088cc","numerical_value":null}],` +
				`"Orgc":{"id":"2","name":"CIRCL","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d210f","local":false}},` +
				`"Object":{"id":"1","distribution":"5","sharing_group_id":"0"}}]}}`,
		},
		{
			name: "event with numeric fields",
			body: `{"value":"0749bae92ca336a02c83d126e04ec628","includeContext":1}`,
			want: `{"response":{"Attribute":[{"id":"5","event_id":"2","object_id":"0","object_relation":null,"category":"Payload delivery",` +
				`"type":"md5","to_ids":true,"uuid":"a2222222-0000-4000-8000-000000000002","timestamp":"1706918402","distribution":"5",` +
				`"sharing_group_id":"0","comment":"","deleted":false,"disable_correlation":false,"first_seen":null,"last_seen":null,` +
				`"value":"0749bae92ca336a02c83d126e04ec628","Event":{"id":"2","orgc_id":"3","org_id":"1","date":"2024-02-03",` +
				`"threat_level_id":"3","info":"Botnet","published":false,"uuid":"22222222-2222-4222-8222-222222222222","analysis":"0",` +
				`"timestamp":"1706918400","distribution":"3","publish_timestamp":"0","sharing_group_id":"0","extends_uuid":"","Tag":[],` +
				`"Orgc":{"id":"3","name":"CERT.be","uuid":"5cf66e53-b5f8-43e7-be9a-49880a3b4631","local":false}}}]}}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := send(t, srv, "POST", "/attributes/restSearch", api(), tc.body)
			if status != 200 || h.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, Content-Type %q", status, h.Get("Content-Type"))
			}
			if body != tc.want {
				t.Errorf("body:\n%s\nwant:\n%s", body, tc.want)
			}
		})
	}
}

func TestRestSearchErrors(t *testing.T) {
	srv := newServer(t)
	const path = "/attributes/restSearch"
	tests := []struct {
		name       string
		method     string
		body       string
		wantStatus int
		wantBody   string
	}{
		{
			name: "malformed JSON", method: "POST", body: `{"value":`, wantStatus: 405,
			wantBody: mispError("Invalid JSON input. Make sure that the JSON input is a correctly formatted JSON string. This request has been blocked to avoid an unfiltered request.", path),
		},
		{
			name: "empty body", method: "POST", body: "", wantStatus: 400,
			wantBody: mispError("Either specify the search terms in the url, or POST a json with the filter parameters.", path),
		},
		{
			name: "GET", method: "GET", wantStatus: 400,
			wantBody: mispError("Restsearch queries using GET and no parameters are not allowed. If you have passed parameters via a JSON body, make sure you use POST requests.", path),
		},
		{
			name: "bad returnFormat", method: "POST", body: `{"returnFormat":"pdf","value":"x"}`, wantStatus: 404,
			wantBody: mispError("Invalid output format.", path),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := send(t, srv, tc.method, path, api(), tc.body)
			if status != tc.wantStatus || body != tc.wantBody {
				t.Errorf("got %d %s\nwant %d %s", status, body, tc.wantStatus, tc.wantBody)
			}
		})
	}
}

func TestSightings(t *testing.T) {
	srv := newServer(t)
	const path = "/sightings/add"
	msg := func(m string) string { return `{"message":"` + m + `"}` }
	tests := []struct {
		name   string
		method string
		body   string
		status int
		want   string // exact body; "" means a Sighting is expected
		record *misptest.SightingAdd
	}{
		{
			name: "sighting", method: "POST", body: `{"values":["EVIL.example"],"type":"0","source":" XDR "}`, status: 200,
			record: &misptest.SightingAdd{Values: []string{"EVIL.example"}, Type: "0", Source: "XDR"},
		},
		{
			name: "false positive, numeric type, value key", method: "POST", body: `{"value":"198.51.100.7","type":1,"source":"XDR"}`, status: 200,
			record: &misptest.SightingAdd{Values: []string{"198.51.100.7"}, Type: "1", Source: "XDR"},
		},
		{
			name: "default type, Sighting wrapper", method: "POST", body: `{"Sighting":{"values":["0749bae92ca336a02c83d126e04ec628"]}}`, status: 200,
			record: &misptest.SightingAdd{Values: []string{"0749bae92ca336a02c83d126e04ec628"}, Type: "0"},
		},
		{
			name: "no match", method: "POST", body: `{"values":["nothing.example"],"type":"0","source":"XDR"}`, status: 200,
			want: msg("Could not add the Sighting. Reason: No valid attributes found that match the criteria."),
		},
		{
			name: "invalid type", method: "POST", body: `{"values":["evil.example"],"type":"5","source":"XDR"}`, status: 200,
			want: msg("Could not add the Sighting. Reason: Invalid type, please change it before you POST 1000000 sightings."),
		},
		{
			name: "no values", method: "POST", body: `{"type":"0"}`, status: 200,
			want: msg("Could not add the Sighting. Reason: No valid attributes found."),
		},
		{
			name: "malformed JSON", method: "POST", body: `{`, status: 405,
			want: mispError("Invalid JSON input. Make sure that the JSON input is a correctly formatted JSON string. This request has been blocked to avoid an unfiltered request.", path),
		},
		{name: "GET", method: "GET", status: 405, want: mispError("This action is only accessible via POST request.", path)},
	}
	var wantRecords []misptest.SightingAdd
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now().Unix()
			status, _, body := send(t, srv, tc.method, path, api(), tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if tc.want != "" {
				if body != tc.want {
					t.Errorf("body %s\nwant %s", body, tc.want)
				}
				return
			}
			wantRecords = append(wantRecords, *tc.record)
			var r struct{ Sighting map[string]string }
			if err := json.Unmarshal([]byte(body), &r); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			s := r.Sighting
			for _, k := range []string{"id", "attribute_id", "event_id", "org_id", "date_sighting", "uuid"} {
				if s[k] == "" {
					t.Errorf("Sighting.%s is empty: %s", k, body)
				}
			}
			if s["type"] != tc.record.Type || s["source"] != tc.record.Source {
				t.Errorf("Sighting type/source = %q/%q, want %q/%q", s["type"], s["source"], tc.record.Type, tc.record.Source)
			}
			if d := s["date_sighting"]; d < fmt.Sprint(before) {
				t.Errorf("date_sighting %s is before the request (%d)", d, before)
			}
		})
	}
	if diff := cmp.Diff(wantRecords, srv.Sightings()); diff != "" {
		t.Errorf("Sightings() (-want +got):\n%s", diff)
	}
}

func TestFailAndDelay(t *testing.T) {
	srv := newServer(t)
	const path = "/servers/getVersion"
	tests := []struct {
		name       string
		status     int
		body       string
		wantCT     string
		wantHeader map[string]string
	}{
		{name: "JSON", status: 500, body: mispError("An Internal Error Has Occurred.", path), wantCT: "application/json"},
		{name: "HTML", status: 504, body: "<html><title>504 Gateway Time-out</title></html>", wantCT: "text/html"},
		{
			name: "429", status: 429, body: mispError("Rate limit exceeded.", path), wantCT: "application/json",
			wantHeader: map[string]string{"X-Rate-Limit-Reset": "60", "X-Rate-Limit-Remaining": "0"},
		},
		{name: "302", status: 302, body: "<html></html>", wantCT: "text/html", wantHeader: map[string]string{"Location": "/users/login"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv.Fail(path, tc.status, tc.body)
			// A failure answers whatever the request, even without a key.
			status, h, body := send(t, srv, "GET", path, nil, "")
			if status != tc.status || body != tc.body || !strings.HasPrefix(h.Get("Content-Type"), tc.wantCT) {
				t.Errorf("got %d %q %q, want %d %q %q", status, h.Get("Content-Type"), body, tc.status, tc.wantCT, tc.body)
			}
			for k, v := range tc.wantHeader {
				if h.Get(k) != v {
					t.Errorf("header %s = %q, want %q", k, h.Get(k), v)
				}
			}
			// Other paths are unaffected.
			if status, _, _ := send(t, srv, "POST", "/attributes/restSearch", api(), `{"value":"x"}`); status != 200 {
				t.Errorf("restSearch status %d while %s fails", status, path)
			}
		})
	}
	srv.Fail(path, 0, "")
	if status, _, _ := send(t, srv, "GET", path, api(), ""); status != 200 {
		t.Errorf("status %d after clearing the failure", status)
	}

	srv.Always(path, misptest.Answer{Status: 429, Header: http.Header{"X-Rate-Limit-Reset": {"7"}}, Body: "{}"})
	if _, h, _ := send(t, srv, "GET", path, api(), ""); h.Get("X-Rate-Limit-Reset") != "7" {
		t.Errorf("Always with a header: X-Rate-Limit-Reset = %q", h.Get("X-Rate-Limit-Reset"))
	}
	srv.Fail(path, 0, "")

	srv.Delay(path, 150*time.Millisecond)
	start := time.Now()
	if status, _, _ := send(t, srv, "GET", path, api(), ""); status != 200 || time.Since(start) < 150*time.Millisecond {
		t.Errorf("delayed call: status %d after %v", status, time.Since(start))
	}
	// A client giving up early does not keep the server (and its Close) waiting.
	srv.Delay(path, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		_ = resp.Body.Close()
		t.Error("a call delayed by an hour answered")
	}
	srv.Delay(path, 0)
}

func TestRequests(t *testing.T) {
	srv := newServer(t)
	send(t, srv, "GET", "/servers/getVersion", api(), "")
	send(t, srv, "POST", "/attributes/restSearch", with(api(), "User-Agent", "ua/1"), `{"value":"x"}`)
	send(t, srv, "POST", "/nope", nil, "body")
	got := srv.Requests()
	var summary []string
	for _, r := range got {
		summary = append(summary, r.Method+" "+r.Path+" "+string(r.Body))
	}
	want := []string{"GET /servers/getVersion ", `POST /attributes/restSearch {"value":"x"}`, "POST /nope body"}
	if diff := cmp.Diff(want, summary); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if got[1].Header.Get("Authorization") != key || got[1].Header.Get("User-Agent") != "ua/1" {
		t.Errorf("headers not recorded: %v", got[1].Header)
	}
	// The result is a copy.
	got[1].Body[0] = 'X'
	got[1].Header.Set("Authorization", "changed")
	again := srv.Requests()
	if string(again[1].Body) != `{"value":"x"}` || again[1].Header.Get("Authorization") != key {
		t.Error("Requests() shares memory with the server")
	}
}

// fakeTB records Fatalf instead of stopping the test.
type fakeTB struct {
	testing.TB
	fatal string
}

func (f *fakeTB) Fatalf(format string, args ...any) { f.fatal = fmt.Sprintf(format, args...) }
func (f *fakeTB) Helper()                           {}

func TestNewRejectsBadEvents(t *testing.T) {
	for _, raw := range []string{`{`, `{"Event":{"info":"no uuid"}}`, `[]`} {
		tb := &fakeTB{TB: t}
		if srv := misptest.New(tb, key, []byte(raw)); srv != nil || tb.fatal == "" {
			t.Errorf("New(%s): server %v, Fatalf %q", raw, srv, tb.fatal)
		}
	}
	// Without the "Event" wrapper is fine.
	srv := misptest.New(t, key, []byte(`{"uuid":"x","Attribute":[{"type":"domain","value":"a.example"}]}`))
	if got := searchAttrs(t, srv, api(), `{"value":"a.example"}`); len(got) != 1 {
		t.Errorf("unwrapped event: %v", got)
	}
}

// TestCIRCLFeedEvents loads real CIRCL OSINT feed events (testdata/README.md).
func TestCIRCLFeedEvents(t *testing.T) {
	var events [][]byte
	for _, f := range []string{"testdata/circl_event_57c4445b.json", "testdata/circl_objects_5a0ac036_trimmed.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, b)
	}
	srv := misptest.New(t, key, events...)

	if got := searchAttrs(t, srv, api(), `{"value":"0749BAE92CA336A02C83D126E04EC628","type":["md5"]}`); !cmp.Equal(got, []string{"6 0749bae92ca336a02c83d126e04ec628"}) {
		t.Errorf("md5: %v", got)
	}
	// The first event's regkey|value composite: its second half matches.
	if got := searchAttrs(t, srv, api(), `{"value":["Software\\Wow6432Node\\Microsoft\\Windows\\CurrentVersion\\Run"]}`); len(got) != 1 || !strings.HasPrefix(got[0], "9 ") {
		t.Errorf("regkey|value: %v", got)
	}

	// An ip-dst inside an ip-port object of the second event, with context.
	status, _, body := send(t, srv, "POST", "/attributes/restSearch", api(), `{"value":"64.183.173.170","type":["ip-dst","ip-src"],"includeContext":1,"includeEventTags":1}`)
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	var r struct {
		Response struct {
			Attribute []struct {
				ID             string  `json:"id"`
				ObjectID       string  `json:"object_id"`
				ObjectRelation *string `json:"object_relation"`
				Event          struct {
					ID, UUID, Info string
					ThreatLevelID  string `json:"threat_level_id"`
					Orgc           struct{ Name string }
					Tag            []struct{ Name string }
				}
				Tag []struct {
					Name      string
					Inherited int
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Response.Attribute) != 1 {
		t.Fatalf("got %d attributes: %s", len(r.Response.Attribute), body)
	}
	a := r.Response.Attribute[0]
	if a.ID != "15" || a.ObjectID != "1" || a.ObjectRelation == nil || *a.ObjectRelation != "ip" {
		t.Errorf("attribute id %s, object %s, relation %v", a.ID, a.ObjectID, a.ObjectRelation)
	}
	e := a.Event
	if e.ID != "2" || e.UUID != "5a0ac036-6fbc-4855-83af-422b950d210f" || e.ThreatLevelID != "3" || e.Orgc.Name != "CIRCL" || len(e.Tag) != 5 {
		t.Errorf("event block: %+v", e)
	}
	if len(a.Tag) != 5 || a.Tag[0].Inherited != 1 || a.Tag[0].Name != e.Tag[0].Name {
		t.Errorf("inherited tags: %+v", a.Tag)
	}
}

func TestConcurrentUse(t *testing.T) {
	srv := newServer(t)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			switch i % 4 {
			case 0:
				if got := searchAttrs(t, srv, api(), `{"value":"evil.example","includeContext":1,"includeEventTags":1}`); len(got) != 2 {
					t.Errorf("search: %v", got)
				}
			case 1:
				if status, _, body := send(t, srv, "POST", "/sightings/add", api(), `{"values":["evil.example"]}`); status != 200 || !strings.Contains(body, "Sighting") {
					t.Errorf("sighting: %d %s", status, body)
				}
			case 2:
				srv.Fail("/users/view/me", 500, "{}")
				_ = srv.Requests()
				srv.Fail("/users/view/me", 0, "")
			case 3:
				_ = srv.Sightings()
				send(t, srv, "GET", "/servers/getVersion", api(), "")
			}
		})
	}
	wg.Wait()
	if n := len(srv.Sightings()); n != 4 {
		t.Errorf("%d sightings recorded, want 4", n)
	}
}
