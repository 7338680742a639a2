package misp_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/tiles"
)

// tileEvents: three events changed at 1000, 2000 and 3000 seconds after T, with attributes
// at the same times (IDS or not) and sightings.
const tileT = 1800000000

func tileEvents() [][]byte {
	return [][]byte{
		[]byte(`{"Event":{"uuid":"11111111-1111-4111-8111-111111111111","info":"One","date":"2027-01-15","timestamp":"1800001000","threat_level_id":"1",
		  "Orgc":{"name":"CIRCL","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d210f"},"Tag":[{"name":"misp-galaxy:threat-actor=\"Sofacy\""},{"name":"tlp:amber"}],
		  "Attribute":[
		    {"type":"ip-dst","category":"Network activity","value":"198.51.100.1","to_ids":true,"timestamp":"1800001000",
		     "Sighting":[{"id":"1","type":"0","date_sighting":"1800001500","source":"a"},{"id":"2","type":"1","date_sighting":"1800001600","source":"a"}]},
		    {"type":"md5","category":"Payload delivery","value":"0749bae92ca336a02c83d126e04ec628","to_ids":false,"timestamp":"1800001000"}]}}`),
		[]byte(`{"Event":{"uuid":"22222222-2222-4222-8222-222222222222","info":"Two","date":"2027-01-15","timestamp":"1800002000","threat_level_id":"2",
		  "Orgc":{"name":"CERT.be","uuid":"5cf66e53-b5f8-43e7-be9a-49880a3b4631"},
		  "Attribute":[{"type":"url","category":"Network activity","value":"http://evil.example/x","to_ids":true,"timestamp":"1800002000",
		     "Sighting":[{"id":"3","type":"0","date_sighting":"1800002500","source":"b"}]}]}}`),
		[]byte(`{"Event":{"uuid":"33333333-3333-4333-8333-333333333333","info":"Three","date":"2027-01-15","timestamp":"1800003000","threat_level_id":"3",
		  "Orgc":{"name":"CIRCL","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d210f"},
		  "Attribute":[{"type":"domain","category":"Network activity","value":"evil.example","to_ids":true,"timestamp":"1800003000","deleted":true}]}}`),
	}
}

func window(from, to int64) tiles.Window {
	return tiles.Window{From: time.Unix(tileT+from, 0), To: time.Unix(tileT+to, 0)}
}

func TestTileCallsAgainstMISPTest(t *testing.T) {
	srv := misptest.New(t, testKey, tileEvents()...)
	// Pages of one event: Events must read every page.
	c := newClient(t, srv.URL, func(cfg *misp.Config) { cfg.PageSize = 1 })
	ctx := context.Background()
	count := func(n int, err error) int {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	tests := []struct {
		name string
		got  int
		want int
	}{
		{"events, all", count(c.CountEvents(ctx, testKey, window(0, 4000))), 3},
		{"events, the window's end is left out", count(c.CountEvents(ctx, testKey, window(1000, 2000))), 1},
		{"attributes, deleted left out", count(c.CountAttributes(ctx, testKey, tiles.AttributeFilter{Window: window(0, 4000)})), 3},
		{"IDS attributes", count(c.CountAttributes(ctx, testKey, tiles.AttributeFilter{Window: window(0, 4000), IDSOnly: true})), 2},
		{"IDS attributes of types", count(c.CountAttributes(ctx, testKey, tiles.AttributeFilter{Window: window(0, 4000), IDSOnly: true, Types: []string{"url", "md5"}})), 1},
		{"no type asked", count(c.CountAttributes(ctx, testKey, tiles.AttributeFilter{Window: window(0, 4000), Types: []string{}})), 0},
		{"sightings, type 0 only", count(c.CountSightings(ctx, testKey, window(0, 4000))), 2},
		{"sightings, a window", count(c.CountSightings(ctx, testKey, window(1500, 2500))), 1},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, tt.got, tt.want)
		}
	}
	events, err := c.Events(ctx, testKey, window(1000, 3000))
	if err != nil {
		t.Fatal(err)
	}
	want := []tiles.EventMeta{
		{
			UUID: "11111111-1111-4111-8111-111111111111", Info: "One", Org: "CIRCL", Date: "2027-01-15", Timestamp: time.Unix(tileT+1000, 0),
			ThreatLevel: 1, AttributeCount: 2, Tags: []string{`misp-galaxy:threat-actor="Sofacy"`, "tlp:amber"},
		},
		{
			UUID: "22222222-2222-4222-8222-222222222222", Info: "Two", Org: "CERT.be", Date: "2027-01-15", Timestamp: time.Unix(tileT+2000, 0),
			ThreatLevel: 2, AttributeCount: 1,
		},
	}
	if diff := cmp.Diff(want, events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	// What MISP was asked: the window as MISP's inclusive range.
	var bodies []string
	for _, r := range srv.Requests() {
		if r.Path == "/events/restSearch" && strings.Contains(string(r.Body), `"metadata"`) {
			bodies = append(bodies, string(r.Body))
		}
	}
	wantBodies := []string{
		`{"returnFormat":"json","metadata":true,"timestamp":[1800001000,1800002999],"limit":1,"page":1}`,
		`{"returnFormat":"json","metadata":true,"timestamp":[1800001000,1800002999],"limit":1,"page":2}`,
		`{"returnFormat":"json","metadata":true,"timestamp":[1800001000,1800002999],"limit":1,"page":3}`,
	}
	if diff := cmp.Diff(wantBodies, bodies); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestTileCallFailures(t *testing.T) {
	w := window(0, 4000)
	tests := []struct {
		name   string
		path   string
		answer misptest.Answer
		call   func(*misp.Client) error
		kind   error
		detail string
	}{
		{
			"count: a login page", "/events/restSearch", misptest.Raw(http.StatusOK, "text/html", "<html><title>Users - MISP</title></html>"),
			func(c *misp.Client) error { _, err := c.CountEvents(context.Background(), testKey, w); return err }, misp.ErrUnexpected, "HTML",
		},
		{
			"count: not a number", "/attributes/restSearch", misptest.Raw(http.StatusOK, "application/json", `{"response":{"Attribute":[]}}`),
			func(c *misp.Client) error {
				_, err := c.CountAttributes(context.Background(), testKey, tiles.AttributeFilter{Window: w})
				return err
			}, misp.ErrUnexpected, "not a number",
		},
		{
			"count: MISP failed", "/attributes/restSearch", misptest.Error(http.StatusInternalServerError, "boom"),
			func(c *misp.Client) error {
				_, err := c.CountAttributes(context.Background(), testKey, tiles.AttributeFilter{Window: w})
				return err
			}, misp.ErrServer, "",
		},
		{
			"sightings: over the answer cap", "/sightings/restSearch",
			misptest.Raw(http.StatusOK, "application/json", `{"response": [`+strings.Repeat(`{"Sighting":{"id":"1","type":"0"}},`, 200)+`{}]}`),
			func(c *misp.Client) error { _, err := c.CountSightings(context.Background(), testKey, w); return err }, misp.ErrUnexpected, "MISP_MAX_ANSWER_BYTES",
		},
		{
			"sightings: no response", "/sightings/restSearch", misptest.Raw(http.StatusOK, "application/json", `{"name":"x"}`),
			func(c *misp.Client) error { _, err := c.CountSightings(context.Background(), testKey, w); return err }, misp.ErrUnexpected, `no "response"`,
		},
		{
			"events: more than the pages hold", "",
			misptest.Answer{},
			func(c *misp.Client) error { _, err := c.Events(context.Background(), testKey, w); return err }, misp.ErrUnexpected, "more than 2 events",
		},
		{
			"events: not an event", "/events/restSearch", misptest.Raw(http.StatusOK, "application/json", `{"response": [{"Attribute":{}}]}`),
			func(c *misp.Client) error { _, err := c.Events(context.Background(), testKey, w); return err }, misp.ErrUnexpected, `no "Event"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := misptest.New(t, testKey, tileEvents()...)
			if tt.path != "" {
				srv.Always(tt.path, tt.answer)
			}
			c := newClient(t, srv.URL, func(cfg *misp.Config) {
				cfg.PageSize, cfg.MaxPages, cfg.MaxAnswerBytes = 1, 2, 4<<10
			})
			err := tt.call(c)
			var me *misp.Error
			if !errors.As(err, &me) || !errors.Is(me.Kind, tt.kind) || !strings.Contains(err.Error(), tt.detail) {
				t.Errorf("error %v, want kind %v with %q", err, tt.kind, tt.detail)
			}
			if err != nil && strings.Contains(err.Error(), testKey) {
				t.Errorf("the error holds the key: %v", err)
			}
		})
	}
}
