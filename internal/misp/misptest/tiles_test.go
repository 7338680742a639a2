package misptest_test

import (
	"net/http"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestTileCalls checks the tiles' calls against answers copied from MISP 2.5.1 (the same
// requests on a real MISP holding the same events; database ids and the instance's
// organisation differ there).
func TestTileCalls(t *testing.T) {
	srv := newServer(t)
	// A sighting and a false positive of evil.example (both domains), dated 1706918500 and
	// 1706918600.
	for _, b := range []string{
		`{"values":["evil.example"],"type":"0","source":"s","timestamp":1706918500}`,
		`{"values":["evil.example"],"type":"1","source":"s","timestamp":1706918600}`,
	} {
		if status, _, body := send(t, srv, http.MethodPost, "/sightings/add", api(), b); status != http.StatusOK {
			t.Fatalf("sightings/add: %d %s", status, body)
		}
	}
	e2 := `{"Event":{"id":"2","orgc_id":"3","org_id":"1","date":"2024-02-03","threat_level_id":"3","info":"Botnet","published":false,` +
		`"uuid":"22222222-2222-4222-8222-222222222222","attribute_count":"2","analysis":"0","timestamp":"1706918400","distribution":"3",` +
		`"proposal_email_lock":false,"locked":false,"publish_timestamp":"0","sharing_group_id":"0","disable_correlation":false,` +
		`"extends_uuid":"","protected":null,"event_creator_email":"admin@admin.test",` +
		`"Org":{"id":"1","name":"ORGNAME","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d210f","local":true},` +
		`"Orgc":{"id":"3","name":"CERT.be","uuid":"5cf66e53-b5f8-43e7-be9a-49880a3b4631","local":false},` +
		`"RelatedEvent":[],"Galaxy":[],"CryptographicKey":[],"Tag":[]}}`
	tests := []struct {
		name, path, body string
		wantType         string
		want             string
		wantCount        string // X-Result-Count
	}{
		{"attributes, all", "/attributes/restSearch", `{"returnFormat":"count"}`, "text/plain; charset=UTF-8", "5", "5"},
		{"attributes, a range, both ends in", "/attributes/restSearch", `{"returnFormat":"count","timestamp":[1704153601,1704153602]}`, "text/plain; charset=UTF-8", "2", "2"},
		{"attributes, from a time on", "/attributes/restSearch", `{"returnFormat":"count","timestamp":"1706918400"}`, "text/plain; charset=UTF-8", "2", "2"},
		{"attributes for IDS", "/attributes/restSearch", `{"returnFormat":"count","to_ids":1}`, "text/plain; charset=UTF-8", "3", "3"},
		{"attributes for IDS of types", "/attributes/restSearch", `{"returnFormat":"count","to_ids":1,"type":["md5","ip-dst"]}`, "text/plain; charset=UTF-8", "2", "2"},
		{"events count", "/events/restSearch", `{"returnFormat":"count","timestamp":[1704153600,1704153600]}`, "text/plain; charset=UTF-8", "1", "1"},
		{"events count, none", "/events/restSearch", `{"returnFormat":"count","timestamp":[1,2]}`, "text/plain; charset=UTF-8", "0", "0"},
		{"events metadata", "/events/restSearch", `{"returnFormat":"json","metadata":true,"timestamp":[1706918400,1706918400]}`, "application/json; charset=UTF-8", `{"response": [` + e2 + "]}\n", "1"},
		{"events metadata, second page", "/events/restSearch", `{"metadata":true,"limit":1,"page":2}`, "application/json; charset=UTF-8", `{"response": [` + e2 + "]}\n", "1"},
		{"events metadata, none", "/events/restSearch", `{"metadata":true,"timestamp":[1,2]}`, "application/json; charset=UTF-8", "{\"response\": []}\n", "0"},
		{
			"sightings of a window, type 0", "/sightings/restSearch", `{"returnFormat":"json","from":1706918400,"to":1706918700,"type":"0"}`, "application/json; charset=UTF-8",
			`{"response": [{"Sighting":{"id":"1","attribute_id":"1","event_id":"1","org_id":"1","date_sighting":"1706918500","uuid":"*","source":"s","type":"0","value":"Evil.Example",` +
				`"Organisation":{"id":"1","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d210f","name":"ORGNAME"}}},` +
				`{"Sighting":{"id":"2","attribute_id":"4","event_id":"2","org_id":"1","date_sighting":"1706918500","uuid":"*","source":"s","type":"0","value":"evil.example",` +
				`"Organisation":{"id":"1","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d210f","name":"ORGNAME"}}}]}` + "\n", "0",
		},
		{
			"sightings, both ends included", "/sightings/restSearch", `{"from":1706918600,"to":1706918600}`, "application/json; charset=UTF-8",
			`{"response": [{"Sighting":{"id":"3","attribute_id":"1","event_id":"1","org_id":"1","date_sighting":"1706918600","uuid":"*","source":"s","type":"1","value":"Evil.Example",` +
				`"Organisation":{"id":"1","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d210f","name":"ORGNAME"}}},` +
				`{"Sighting":{"id":"4","attribute_id":"4","event_id":"2","org_id":"1","date_sighting":"1706918600","uuid":"*","source":"s","type":"1","value":"evil.example",` +
				`"Organisation":{"id":"1","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d210f","name":"ORGNAME"}}}]}` + "\n", "0",
		},
		{
			"sightings, no count format", "/sightings/restSearch", `{"returnFormat":"count","from":1,"to":2}`, "application/json",
			mispError("Invalid output format.", "/sightings/restSearch"), "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := send(t, srv, http.MethodPost, tt.path, api(), tt.body)
			if status == http.StatusOK != (tt.wantCount != "") {
				t.Fatalf("status %d: %s", status, body)
			}
			if diff := cmp.Diff(tt.want, blankUUIDs(body)); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if got := h.Get("Content-Type"); got != tt.wantType {
				t.Errorf("Content-Type %q, want %q", got, tt.wantType)
			}
			if got := h.Get("X-Result-Count"); got != tt.wantCount {
				t.Errorf("X-Result-Count %q, want %q", got, tt.wantCount)
			}
		})
	}
}

// sightingUUID matches a sighting's uuid, which the fake makes at random.
var sightingUUID = regexp.MustCompile(`("date_sighting":"[0-9]+","uuid":)"[^"]*"`)

func blankUUIDs(s string) string { return sightingUUID.ReplaceAllString(s, `$1"*"`) }
