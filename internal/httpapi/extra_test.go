package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/google/go-cmp/cmp"
)

func TestFeedMode(t *testing.T) {
	h := newHarness(t, options{feedDir: "../../sample/feed"})
	obs, err := os.ReadFile("../../sample/observables.json")
	if err != nil {
		t.Fatal(err)
	}
	_, got := h.post("/health", "")
	if diff := cmp.Diff(mustJSON(t, `{"data":{"status":"ok"}}`), any(got)); diff != "" {
		t.Errorf("health (-want +got):\n%s", diff)
	}
	_, got = h.post("/observe/observables", string(obs))
	data := got["data"].(map[string]any)
	if n := data["verdicts"].(map[string]any)["count"]; n != 12.0 {
		t.Errorf("%v verdicts on the sample, want 12 (every type and 8.8.8.8, not the unknown IP)", n)
	}
	// Without MISP_UI_URL a feed has no MISP to link to: no source_uri, no refer links.
	for _, d := range data["judgements"].(map[string]any)["docs"].([]any) {
		if _, ok := d.(map[string]any)["source_uri"]; ok {
			t.Fatalf("judgement with a source_uri in feed mode without MISP_UI_URL: %v", d)
		}
	}
	_, got = h.post("/refer/observables", string(obs))
	if diff := cmp.Diff(mustJSON(t, `{"data":[]}`), any(got)); diff != "" {
		t.Errorf("refer (-want +got):\n%s", diff)
	}
	// A feed cannot be written to: no MISP actions, and triggering one fails clearly.
	_, got = h.post("/respond/observables", string(obs))
	if diff := cmp.Diff(mustJSON(t, `{"data":[]}`), any(got)); diff != "" {
		t.Errorf("respond (-want +got):\n%s", diff)
	}
	_, got = h.post("/respond/trigger", `{"action-id":"misp-add-sighting","observable_type":"ip","observable_value":"198.51.100.23"}`)
	if code, msg := errorOf(t, got); code != "invalid argument" || !strings.Contains(msg, "feed") {
		t.Errorf("trigger in feed mode: %q %q", code, msg)
	}
}

func TestFeedModeWithUIURL(t *testing.T) {
	h := newHarness(t, options{feedDir: "../../sample/feed", uiURL: "https://misp.example.org"})
	_, got := h.post("/observe/observables", `[{"type":"ip","value":"198.51.100.23"}]`)
	j := got["data"].(map[string]any)["judgements"].(map[string]any)["docs"].([]any)[0].(map[string]any)
	if uri, _ := j["source_uri"].(string); !strings.HasPrefix(uri, "https://misp.example.org/events/view/") {
		t.Errorf("source_uri = %q, want a link into MISP_UI_URL", uri)
	}
	// The sample IP is in a High and a Low event: the verdict follows the High one.
	v := got["data"].(map[string]any)["verdicts"].(map[string]any)["docs"].([]any)[0].(map[string]any)
	if v["disposition_name"] != "Malicious" {
		t.Errorf("verdict = %v, want Malicious", v)
	}
}

// TestCIRCLEvents replays two real CIRCL OSINT feed events (testdata/README.md) through the
// fake MISP.
func TestCIRCLEvents(t *testing.T) {
	var events [][]byte
	for _, name := range []string{"misp_feed_event_circl_57c4445b.json", "misp_feed_event_circl_objects_5a0ac036.json"} {
		raw, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, raw)
	}
	h := newHarness(t, options{events: events})
	// Values taken from the two CIRCL events: a URL of the Xorist event, and the IP of an
	// ip-port object in the other.
	_, got := h.post("/observe/observables", `[{"type":"url","value":"https://www.virustotal.com/file/b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68/analysis/1469554268/"}]`)
	data, ok := got["data"].(map[string]any)
	if !ok || data["indicators"] == nil {
		t.Fatalf("no indicator for a value of the CIRCL event: %v", got)
	}
	ind := data["indicators"].(map[string]any)["docs"].([]any)[0].(map[string]any)
	if ind["producer"] != "CIRCL" || ind["tlp"] != "white" || ind["title"] != "Ransomware - Xorist" {
		t.Errorf("indicator = %v", ind)
	}
	// The URL is a VirusTotal permalink (a link attribute, External analysis): context, so a
	// sighting of the event and its indicator, but no judgement and no verdict.
	if data["verdicts"] != nil || data["judgements"] != nil {
		t.Errorf("a link was judged: %v", data)
	}
	s := data["sightings"].(map[string]any)["docs"].([]any)[0].(map[string]any)
	if d := s["description"].(string); !strings.Contains(d, "reported as context, not judged (link)") ||
		!strings.Contains(d, `comment: "Imported via the Freetext Import Tool - Xchecked via VT: b3c4ae25`) {
		t.Errorf("sighting description %q", d)
	}
}

// TestValidatorAndMessagesAgree checks that kin-openapi (which decides) and the contract's
// message builder (which explains) agree on which bodies are valid.
func TestValidatorAndMessagesAgree(t *testing.T) {
	h := newHarness(t, allEvents())
	bodies := []string{
		`[]`, `[{"type":"ip","value":"1"}]`, `[{"type":"ip","value":" "}]`, `[{"type":"ip","value":""}]`,
		`[{"type":"ip"}]`, `[{"type":"ip","value":"1","x":1}]`, `[{"type":1,"value":"1"}]`, `[null]`, `null`, `{}`,
		`"x"`, `[{"type":"ip","value":null}]`, `[[]]`, `[{"type":"ip","value":"1"},{"type":"","value":"2"}]`,
	}
	for _, b := range bodies {
		req := httptest.NewRequest(http.MethodPost, "/observe/observables", strings.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		route, params, err := h.contract.Router.FindRoute(req)
		if err != nil {
			t.Fatal(err)
		}
		kinErr := openapi3filter.ValidateRequestBody(context.Background(), &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
		}, route.Operation.RequestBody.Value)
		_, got := h.post("/observe/observables", b)
		_, relayRejected := got["errors"]
		if (kinErr != nil) != relayRejected {
			t.Errorf("%s: kin-openapi error %v, relay rejected %v", b, kinErr, relayRejected)
		}
	}
}
