package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/cache"
	"github.com/misp-relay/misp-relay/internal/httpapi"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/intel/inteltest"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/service"
)

// TestHostileRequests sends what the internet sends. Every answer must be the envelope (or
// data), valid against the spec (the harness checks), and never a 500.
func TestHostileRequests(t *testing.T) {
	h := newHarness(t, allEvents())
	deep := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	tests := []struct {
		name, path, contentType, body string
		wantCode                      string // "" means a data answer
	}{
		{"non-UTF-8 value", "/observe/observables", "application/json", "[{\"type\":\"ip\",\"value\":\"\xff\xfe\"}]", ""},
		{"non-UTF-8 key", "/observe/observables", "application/json", "[{\"type\":\"ip\",\"value\":\"x\",\"\xff\":1}]", "invalid argument"},
		{"deeply nested", "/observe/observables", "application/json", deep, "invalid argument"},
		{"deeply nested object", "/respond/trigger", "application/json", strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000), "invalid argument"},
		{"huge number", "/observe/observables", "application/json", `[{"type":"ip","value":1e400}]`, "invalid argument"},
		// Ambiguous JSON: parsers disagree on which value wins, so it is refused.
		{"duplicate keys", "/deliberate/observables", "application/json", `[{"type":"ip","type":"ip","value":"198.51.100.7"}]`, "invalid argument"},
		{"form content type", "/deliberate/observables", "application/x-www-form-urlencoded", `[{"type":"ip","value":"198.51.100.7"}]`, ""},
		{"no content type", "/deliberate/observables", "", `[{"type":"ip","value":"198.51.100.7"}]`, ""},
		{"xml", "/observe/observables", "application/xml", `<observables/>`, "invalid argument"},
		{"unicode values", "/observe/observables", "application/json", `[{"type":"domain","value":"пример.испытание"},{"type":"file_name","value":"файл 😀.exe"}]`, ""},
		{"negation", "/observe/observables", "application/json", `[{"type":"domain","value":"!evil.example"}]`, ""},
		{"like", "/observe/observables", "application/json", `[{"type":"domain","value":"%evil%"}]`, ""},
		{"and", "/observe/observables", "application/json", `[{"type":"url","value":"http://x/?a=1&&b=2"}]`, ""},
		{"NUL", "/observe/observables", "application/json", `[{"type":"ip","value":"1\u0000"}]`, ""},
		{"empty object body", "/respond/trigger", "application/json", `{}`, "invalid argument"},
		{"trigger with a huge extra", "/respond/trigger", "application/json", `{"action-id":"x","observable_type":"ip","observable_value":"1","extra":"` + strings.Repeat("a", 100000) + `"}`, "invalid argument"},
		{"bare string", "/refer/observables", "application/json", `"\u202e"`, "invalid argument"},
		{"longest value", "/refer/observables", "application/json", `[{"type":"url","value":"http://` + strings.Repeat("a", 4096-7) + `"}]`, ""},
		{"too long value (skipped)", "/refer/observables", "application/json", `[{"type":"url","value":"http://` + strings.Repeat("a", 50000) + `"}]`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := http.Header{"Authorization": {h.bearer()}}
			if tt.contentType != "" {
				hdr.Set("Content-Type", tt.contentType)
			}
			status, got := h.do(http.MethodPost, tt.path, hdr, tt.body)
			if status != http.StatusOK {
				t.Fatalf("status %d: %v", status, got)
			}
			_, hasErrors := got["errors"]
			switch {
			case tt.wantCode == "" && hasErrors:
				t.Errorf("want data, got %v", got)
			case tt.wantCode != "":
				if code, msg := errorOf(t, got); code != tt.wantCode {
					t.Errorf("code %q (%s), want %q", code, msg, tt.wantCode)
				}
			}
		})
	}
	// Nothing MISP would misread was sent: neither as a search value nor to the warninglist
	// check (a JSON list of the request's values).
	for _, r := range h.misp.Requests() {
		var values []string
		if r.Path == "/warninglists/checkValue" {
			_ = json.Unmarshal(r.Body, &values)
		} else {
			var q struct {
				Value string `json:"value"`
			}
			_ = json.Unmarshal(r.Body, &q)
			values = []string{q.Value}
		}
		for _, v := range values {
			if !intel.SafeValue(v) {
				t.Errorf("MISP was sent %q", v)
			}
		}
	}
}

func TestTooManyObservables(t *testing.T) {
	h := newHarness(t, allEvents())
	body := "[" + strings.Repeat(`{"type":"ip","value":"192.0.2.1"},`, 1000) + `{"type":"ip","value":"192.0.2.2"}]`
	for _, path := range []string{"/observe/observables", "/refer/observables", "/respond/observables"} {
		_, got := h.post(path, body)
		if code, msg := errorOf(t, got); code != "invalid argument" || !strings.Contains(msg, "At most 1000 observables") {
			t.Errorf("%s: %q %q", path, code, msg)
		}
	}
	if n := len(h.misp.Requests()); n != 0 {
		t.Errorf("%d MISP calls for a refused request", n)
	}
}

func TestBodyTooLarge(t *testing.T) {
	h := newHarness(t, allEvents())
	body := `[{"type":"url","value":"http://` + strings.Repeat("a", 2<<20) + `"}]`
	_, got := h.post("/observe/observables", body)
	if code, msg := errorOf(t, got); code != "invalid argument" || !strings.Contains(msg, "larger than 1048576 bytes") {
		t.Errorf("got %q %q", code, msg)
	}
}

func TestRequestLogLine(t *testing.T) {
	h := newHarness(t, allEvents())
	hdr := http.Header{"Authorization": {h.bearer()}, "X-Request-Id": {"lb-1234"}}
	h.do(http.MethodPost, "/observe/observables", hdr, `[{"type":"ip","value":"198.51.100.7"},{"type":"ip","value":"192.0.2.1"}]`)
	h.do(http.MethodPost, "/observe/observables", http.Header{}, `[]`)
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		if m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("%d request lines, want 2", len(lines))
	}
	first := lines[0]
	for k, want := range map[string]any{
		"request_id": "lb-1234", "path": "/observe/observables", "status": 200.0,
		// One search for both values and the request's one warninglist check.
		"outcome": "ok", "observables": 2.0, "upstream_calls": 2.0, "cache_hits": 0.0,
	} {
		if first[k] != want {
			t.Errorf("log %s = %v, want %v (line %v)", k, first[k], want, first)
		}
	}
	if lines[1]["outcome"] != "authorization error" || lines[1]["request_id"] == "" {
		t.Errorf("second line = %v", lines[1])
	}
}

// panicFeed is a backend with a bug.
var panicFeed = &inteltest.Backend{
	SearchFn: func(context.Context, string, intel.Query) ([]intel.Event, error) { panic("boom") },
	ReadOnly: true,
}

func TestPanicIsRecovered(t *testing.T) {
	h := newHarness(t, options{})
	h.serve(service.Config{Backend: panicFeed})
	_, got := h.post("/observe/observables", `[{"type":"ip","value":"192.0.2.1"}]`)
	if code, _ := errorOf(t, got); code != "unknown" {
		t.Errorf("panic answered %v, want the unknown envelope", got)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "boom") || !strings.Contains(logs, "goroutine") {
		t.Errorf("panic not logged with a stack: %s", logs)
	}
}

func TestTrailingDataIsNotJSON(t *testing.T) {
	h := newHarness(t, allEvents())
	for _, tt := range []struct{ path, body string }{
		{"/deliberate/observables", `[{"type":"ip","value":"198.51.100.7"}] garbage`},
		{"/observe/observables", `[][`},
		{"/respond/trigger", `{"action-id":"x","observable_type":"ip","observable_value":"1"} {}`},
	} {
		_, got := h.post(tt.path, tt.body)
		if code, msg := errorOf(t, got); code != "invalid argument" || msg != "Invalid JSON payload received. {'_schema': ['Invalid input type.']}" {
			t.Errorf("%s %q: %q %q", tt.path, tt.body, code, msg)
		}
	}
	if n := len(h.misp.Requests()); n != 0 {
		t.Errorf("%d MISP calls for bodies that are not JSON", n)
	}
}

func TestAuthBeforeBodySize(t *testing.T) {
	h := newHarness(t, allEvents())
	body := `[{"type":"url","value":"http://` + strings.Repeat("a", 2<<20) + `"}]`
	_, got := h.do(http.MethodPost, "/observe/observables", http.Header{}, body)
	if code, msg := errorOf(t, got); code != "authorization error" {
		t.Errorf("an unauthenticated oversized body got %q %q, want the authorization error first", code, msg)
	}
}

func TestHeadWatchdog(t *testing.T) {
	h := newHarness(t, allEvents())
	req, _ := http.NewRequest(http.MethodHead, h.srv.URL+"/watchdog", nil)
	req.Header.Set("Health-Check", "x")
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD /watchdog = %d, want 200 like GET", resp.StatusCode)
	}
}

// TestRequestDeadline: a request whose lookups cannot all finish in RequestTimeout answers in
// time with what it found and says what it could not do, instead of losing its answer to the
// server's WriteTimeout.
//
// MISP answers the first request's search at once, and never the second's. The first request
// leaves the cache holding its value; the second asks about it and two more. RequestTimeout
// leaves the search 700 ms, and the answer must still come well before the 2 s bound, with
// the cached value's verdict.
func TestRequestDeadline(t *testing.T) {
	h := newHarness(t, allEvents())
	h.misp.Script("/attributes/restSearch", misptest.Answer{}, misptest.Hang())
	client, err := misp.New(misp.Config{BaseURL: h.misp.URL, MaxConcurrent: 1})
	if err != nil {
		t.Fatal(err)
	}
	backend := cache.New(client, cache.Config{BaseURL: h.misp.URL, TTL: time.Minute})
	h.serve(service.Config{Backend: backend, UIURL: h.misp.URL}, httpapi.Config{RequestTimeout: 700 * time.Millisecond})
	h.post("/observe/observables", `[{"type":"ip","value":"198.51.100.7"}]`)
	start := time.Now()
	_, got := h.post("/observe/observables", `[{"type":"ip","value":"198.51.100.7"},{"type":"domain","value":"evil.example"},{"type":"email","value":"phish@example.org"}]`)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("answered after %v", d)
	}
	data, _ := got["data"].(map[string]any)
	if data == nil || data["verdicts"] == nil {
		t.Errorf("no data from the lookup answered in time (from the cache): %v", got)
	}
	if code, msg := errorOf(t, got); code != "service unavailable" {
		t.Errorf("code %q (%s), want service unavailable for the lookups out of time", code, msg)
	}
}

func TestURLScanTakesAnyURL(t *testing.T) {
	o := allEvents()
	o.urlscanKey = testURLScanKey
	h := newHarness(t, o)
	const u = "http://evil.example/?a=1&&b=2" // MISP would misread it, urlscan.io would not
	_, got := h.post("/respond/observables", `[{"type":"url","value":"`+u+`"}]`)
	if actions := got["data"].([]any); len(actions) != 1 || actions[0].(map[string]any)["id"] != "urlscan-scan" {
		t.Errorf("actions = %v, want the scan", actions)
	}
	_, got = h.post("/respond/trigger", `{"action-id":"urlscan-scan","observable_type":"url","observable_value":"`+u+`"}`)
	if got["data"].(map[string]any)["status"] != "success" || len(h.scans.got) != 1 || h.scans.got[0]["url"] != u {
		t.Errorf("trigger = %v, scans %v", got, h.scans.got)
	}
	if n := len(h.misp.Requests()); n != 0 {
		t.Errorf("the URL was sent to MISP (%d calls)", n)
	}
}

// TestAmbiguousBodiesAndPaths: a body naming a member twice is refused in the contract's
// words for what the last value (the Python relays kept it) lacks, else as the duplicate it
// is; a route's path written with escapes is another path, a 404 whatever the token and
// the body, as the router reads it.
func TestAmbiguousBodiesAndPaths(t *testing.T) {
	h := newHarness(t, allEvents())
	for _, tc := range []struct{ path, body, want string }{
		{
			"/deliberate/observables", `[{"type":"ip","type":"ip","value":"198.51.100.7"}]`,
			"Invalid JSON payload received. {'_schema': ['duplicate object member name']}",
		},
		{
			"/deliberate/observables", `[{"type":"ip","value":"x","value":""}]`,
			"Invalid JSON payload received. {0: {'value': ['Field may not be blank.']}}",
		},
		{
			"/respond/trigger", `{"action-id":"misp-add-sighting","action-id":"x","observable_type":"ip","observable_value":"198.51.100.7"}`,
			"Invalid JSON payload received. {'_schema': ['duplicate object member name']}",
		},
	} {
		status, got := h.post(tc.path, tc.body)
		if code, msg := errorOf(t, got); status != http.StatusOK || code != "invalid argument" || msg != tc.want {
			t.Errorf("%s %s: HTTP %d, %s %q, want invalid argument %q", tc.path, tc.body, status, code, msg, tc.want)
		}
	}
	for _, path := range []string{"/observe%2Fobservables", "/observe/%6Fbservables", "/%68ealth", "/tiles%2Ftile-data"} {
		for _, hdr := range []http.Header{{}, {"Authorization": {h.bearer()}}} {
			status, got := h.do(http.MethodPost, path, hdr, `[{"type":"ip"}]`)
			if status != http.StatusNotFound {
				t.Errorf("POST %s (token: %v): HTTP %d %v, want 404", path, len(hdr) > 0, status, got)
			}
		}
	}
}
