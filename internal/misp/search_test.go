package misp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
)

func TestSearchAgainstMISPTest(t *testing.T) {
	srv := misptest.New(t, testKey,
		feedEvent(t, "11111111-1111-4111-8111-111111111111", "Phishing wave", "1", "CIRCL",
			[]string{"tlp:green", `misp-galaxy:threat-actor="APT1"`},
			attr("domain", "Network activity", "evil.example", true, "first_seen", "1701984000000000"),
			attr("md5", "Payload delivery", "0749bae92ca336a02c83d126e04ec628", true),
			attr("domain|ip", "Network activity", "other.example|198.51.100.7", false),
		),
		feedEvent(t, "22222222-2222-4222-8222-222222222222", "Botnet C2", "3", "CERT.be", nil,
			attr("url", "Network activity", "http://evil.example/x", true),
			attr("domain|ip", "Network activity", "EVIL.example|198.51.100.9", false, "last_seen", "2021-01-01T00:00:00.000000+00:00"),
			attr("ip-dst", "Network activity", "198.51.100.7", true, "object_relation", "ip"),
		),
		feedEvent(t, "33333333-3333-4333-8333-333333333333", "Unrelated", "2", "CIRCL", nil,
			attr("domain", "Network activity", "benign.example", false),
		),
	)
	c := newClient(t, srv.URL)
	ts := time.Unix(1704153600, 0).UTC()
	ev1 := func(attrs ...intel.Attribute) intel.Event {
		return intel.Event{
			UUID: "11111111-1111-4111-8111-111111111111", Info: "Phishing wave", Date: "2024-01-02", Timestamp: ts,
			ThreatLevel: 1, Org: "CIRCL", Tags: []string{"tlp:green", `misp-galaxy:threat-actor="APT1"`}, Attributes: attrs,
		}
	}
	ev2 := func(attrs ...intel.Attribute) intel.Event {
		return intel.Event{
			UUID: "22222222-2222-4222-8222-222222222222", Info: "Botnet C2", Date: "2024-01-02", Timestamp: ts,
			ThreatLevel: 3, Org: "CERT.be", Attributes: attrs,
		}
	}
	tests := []struct {
		name string
		q    intel.Query
		want []intel.Event
	}{
		{
			name: "value in two events, one composite, case-insensitive",
			q:    intel.Query{Value: "evil.example", Types: []string{"domain", "domain|ip", "hostname"}, Limit: 10},
			want: []intel.Event{
				ev1(intel.Attribute{
					Type: "domain", Category: "Network activity", Value: "evil.example", ToIDS: true, Timestamp: ts,
					FirstSeen: time.Date(2023, 12, 7, 21, 20, 0, 0, time.UTC),
				}),
				ev2(intel.Attribute{
					Type: "domain|ip", Category: "Network activity", Value: "EVIL.example|198.51.100.9", Timestamp: ts,
					LastSeen: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC),
				}),
			},
		},
		{
			name: "second half of a composite and an object attribute",
			q:    intel.Query{Value: "198.51.100.7", Types: []string{"ip-dst", "domain|ip"}, Limit: 10},
			want: []intel.Event{
				ev1(intel.Attribute{Type: "domain|ip", Category: "Network activity", Value: "other.example|198.51.100.7", Timestamp: ts}),
				ev2(intel.Attribute{Type: "ip-dst", Category: "Network activity", Value: "198.51.100.7", ToIDS: true, Timestamp: ts}),
			},
		},
		{
			name: "type filter",
			q:    intel.Query{Value: "198.51.100.7", Types: []string{"ip-dst"}, Limit: 10},
			want: []intel.Event{
				ev2(intel.Attribute{Type: "ip-dst", Category: "Network activity", Value: "198.51.100.7", ToIDS: true, Timestamp: ts}),
			},
		},
		{
			name: "limit caps events",
			q:    intel.Query{Value: "evil.example", Types: []string{"domain", "domain|ip"}, Limit: 1},
			want: []intel.Event{
				ev1(intel.Attribute{
					Type: "domain", Category: "Network activity", Value: "evil.example", ToIDS: true, Timestamp: ts,
					FirstSeen: time.Date(2023, 12, 7, 21, 20, 0, 0, time.UTC),
				}),
			},
		},
		{
			name: "no match",
			q:    intel.Query{Value: "nothing.example", Types: []string{"domain"}, Limit: 10},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Search(context.Background(), testKey, tc.q)
			if err != nil {
				t.Fatalf("Search: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, ignoreEvidence); diff != "" {
				t.Errorf("Search (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSearchCIRCLFeedEvent(t *testing.T) {
	raw, err := os.ReadFile("testdata/circl_event_57c4445b.json")
	if err != nil {
		t.Fatal(err)
	}
	srv := misptest.New(t, testKey, raw)
	c := newClient(t, srv.URL)
	got, err := c.Search(context.Background(), testKey, intel.Query{Value: "0749BAE92CA336A02C83D126E04EC628", Types: []string{"md5", "filename|md5"}, Limit: 10})
	if err != nil {
		t.Fatalf("Search: %v", err)
	}
	want := []intel.Event{{
		UUID: "57c4445b-c548-4654-af0b-4be3950d210f", Info: "Ransomware - Xorist", Date: "2016-08-29",
		Timestamp: time.Unix(1472541011, 0).UTC(), ThreatLevel: 3, Org: "CIRCL",
		Tags: []string{"tlp:white", `circl:incident-classification="malware"`, `ms-caro-malware:malware-type="Ransom"`, `malware_classification:malware-category="Ransomware"`},
		Attributes: []intel.Attribute{{
			Type: "md5", Category: "Payload delivery", Value: "0749bae92ca336a02c83d126e04ec628", ToIDS: true,
			Timestamp: time.Unix(1472480395, 0).UTC(),
		}},
	}}
	if diff := cmp.Diff(want, got, ignoreEvidence); diff != "" {
		t.Errorf("Search (-want +got):\n%s", diff)
	}
}

// servePages makes srv answer the next restSearch calls with the given pages of attribute
// JSON objects, in order, and returns a func that reports the pages asked for, checking that
// each call asked for pageSize attributes.
func servePages(t *testing.T, srv *misptest.Server, pageSize int, pages [][]string) func() []int {
	t.Helper()
	for _, items := range pages {
		srv.Script("/attributes/restSearch", misptest.Raw(http.StatusOK, "application/json",
			fmt.Sprintf(`{"response":{"Attribute":[%s]}}`, strings.Join(items, ","))))
	}
	return func() []int {
		var asked []int
		for _, r := range srv.Requests() {
			var body struct{ Limit, Page int }
			if err := json.Unmarshal(r.Body, &body); err != nil {
				t.Errorf("bad request body: %v", err)
			}
			if body.Limit != pageSize {
				t.Errorf("limit = %d, want %d", body.Limit, pageSize)
			}
			asked = append(asked, body.Page)
		}
		return asked
	}
}

// wireAttr is an attributes restSearch element of event ev with the given value.
func wireAttr(ev, value string) string {
	return fmt.Sprintf(`{"id":"1","type":"domain","category":"Network activity","to_ids":true,"timestamp":"1704153600","value":%q,`+
		`"Event":{"id":"1","uuid":%q,"info":"event %s","threat_level_id":"2","Orgc":{"id":"1","name":"ORG"},"Tag":[]}}`, value, ev, ev)
}

func TestSearchPaging(t *testing.T) {
	tests := []struct {
		name      string
		pageSize  int
		maxPages  int
		limit     int
		pages     [][]string
		want      map[string][]string // event uuid -> attribute values
		wantOrder []string
		wantPages []int
	}{
		{
			name: "limit 2 over 3 interleaved events on 2 pages", pageSize: 4, limit: 2,
			pages: [][]string{
				{wireAttr("e1", "a1"), wireAttr("e1", "a2"), wireAttr("e1", "a3"), wireAttr("e1", "a4")},
				{wireAttr("e2", "a5"), wireAttr("e1", "a6"), wireAttr("e3", "a7"), wireAttr("e2", "a8")},
			},
			// Reading stops at a7, the first attribute of a third event.
			want:      map[string][]string{"e1": {"a1", "a2", "a3", "a4", "a6"}, "e2": {"a5"}},
			wantOrder: []string{"e1", "e2"},
			wantPages: []int{1, 2},
		},
		{
			name: "cap reached on a full first page: no second page", pageSize: 3, limit: 2,
			pages: [][]string{
				{wireAttr("e1", "a1"), wireAttr("e2", "a2"), wireAttr("e1", "a3")},
				{wireAttr("e3", "a4")},
			},
			want:      map[string][]string{"e1": {"a1", "a3"}, "e2": {"a2"}},
			wantOrder: []string{"e1", "e2"},
			wantPages: []int{1},
		},
		{
			name: "short page is the last", pageSize: 3, limit: 10,
			pages: [][]string{
				{wireAttr("e1", "a1"), wireAttr("e2", "a2")},
				{wireAttr("e3", "a3")},
			},
			want:      map[string][]string{"e1": {"a1"}, "e2": {"a2"}},
			wantOrder: []string{"e1", "e2"},
			wantPages: []int{1},
		},
		{
			name: "max pages", pageSize: 1, maxPages: 3, limit: 10,
			pages: [][]string{
				{wireAttr("e1", "a1")}, {wireAttr("e1", "a2")}, {wireAttr("e2", "a3")}, {wireAttr("e3", "a4")},
			},
			want:      map[string][]string{"e1": {"a1", "a2"}, "e2": {"a3"}},
			wantOrder: []string{"e1", "e2"},
			wantPages: []int{1, 2, 3},
		},
		{
			name: "server ignoring the page size is read up to it only", pageSize: 2, limit: 10,
			pages: [][]string{
				{wireAttr("e1", "a1"), wireAttr("e2", "a2"), wireAttr("e3", "a3"), wireAttr("e4", "a4")},
			},
			want:      map[string][]string{"e1": {"a1"}, "e2": {"a2"}},
			wantOrder: []string{"e1", "e2"},
			wantPages: []int{1},
		},
		{
			name: "attributes without an event uuid are skipped", pageSize: 10, limit: 10,
			pages: [][]string{{
				`{"type":"domain","value":"x1"}`,
				`{"type":"domain","value":"x2","Event":{"id":"9","info":"no uuid"}}`,
				`{"type":"domain","value":"x3","Event":[]}`,
				wireAttr("e1", "a1"),
			}},
			want:      map[string][]string{"e1": {"a1"}},
			wantOrder: []string{"e1"},
			wantPages: []int{1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := misptest.New(t, testKey)
			pagesAsked := servePages(t, srv, tc.pageSize, tc.pages)
			c := newClient(t, srv.URL, func(cfg *misp.Config) {
				cfg.PageSize = tc.pageSize
				cfg.MaxPages = tc.maxPages
			})
			events, err := c.Search(context.Background(), testKey, intel.Query{Value: "x", Types: []string{"domain"}, Limit: tc.limit})
			if err != nil {
				t.Fatalf("Search: %v", err)
			}
			got := map[string][]string{}
			var order []string
			for _, e := range events {
				order = append(order, e.UUID)
				for _, a := range e.Attributes {
					got[e.UUID] = append(got[e.UUID], a.Value)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("attributes per event (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantOrder, order); diff != "" {
				t.Errorf("event order (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantPages, pagesAsked()); diff != "" {
				t.Errorf("pages asked (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSearchDecoding(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []intel.Event
	}{
		{name: "no match, list form", body: `{"response":[]}`},
		{name: "no match, object form", body: `{"response":{"Attribute":[]}}`},
		{name: "no match, empty response object", body: `{"response":{}}`},
		{
			name: "times, numbers and unknown fields",
			body: `{"other":{"x":[1,{"y":null}]},"response":{"Extra":[1,2],"Attribute":[
			  {"id":"1","type":"ip-dst","category":"Network activity","value":"192.0.2.1","to_ids":true,
			   "timestamp":1624865598,"first_seen":"1701984000000000","last_seen":"2021-01-01T00:00:00.000000+00:00",
			   "Sighting":[{"id":"1","type":"0"}],"RelatedAttribute":[{"Event":{"uuid":"zzz"}}],
			   "Tag":[{"name":"attribute-tag","inherited":1}],
			   "Event":{"uuid":"e1","info":"numbers","date":"2020-03-13","timestamp":1624893849,"threat_level_id":2,
			            "Orgc":{"id":"8","name":"CERT.be","uuid":"x"},"Tag":[{"name":"tlp:white"},{"name":""},{"id":"3"}]}},
			  {"type":"ip-dst","category":"Network activity","value":"192.0.2.1","to_ids":false,"timestamp":"garbage",
			   "first_seen":null,"last_seen":1701984000000000,
			   "Event":{"uuid":"e2","info":"odd threat level","threat_level_id":"9","Orgc":[],"Tag":{}}},
			  {"type":"ip-dst","value":"192.0.2.1","first_seen":"2021-06-01 10:00:00","last_seen":"not a date",
			   "Event":{"uuid":"e3","threat_level_id":"high"}}
			]}}`,
			want: []intel.Event{
				{
					UUID: "e1", Info: "numbers", Date: "2020-03-13", Timestamp: time.Unix(1624893849, 0).UTC(),
					ThreatLevel: 2, Org: "CERT.be", Tags: []string{"tlp:white"},
					Attributes: []intel.Attribute{{
						Type: "ip-dst", Category: "Network activity", Value: "192.0.2.1", ToIDS: true,
						Timestamp: time.Unix(1624865598, 0).UTC(),
						FirstSeen: time.Date(2023, 12, 7, 21, 20, 0, 0, time.UTC),
						LastSeen:  time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC),
					}},
				},
				{
					UUID: "e2", Info: "odd threat level",
					Attributes: []intel.Attribute{{
						Type: "ip-dst", Category: "Network activity", Value: "192.0.2.1",
						LastSeen: time.Date(2023, 12, 7, 21, 20, 0, 0, time.UTC),
					}},
				},
				{
					UUID: "e3",
					Attributes: []intel.Attribute{{
						Type: "ip-dst", Value: "192.0.2.1", FirstSeen: time.Date(2021, 6, 1, 10, 0, 0, 0, time.UTC),
					}},
				},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := answering(t, misptest.Raw(http.StatusOK, "application/json", tc.body))
			got, err := newClient(t, srv.URL).Search(context.Background(), testKey, intel.Query{Value: "192.0.2.1", Limit: 10})
			if err != nil {
				t.Fatalf("Search: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, ignoreEvidence); diff != "" {
				t.Errorf("Search (-want +got):\n%s", diff)
			}
		})
	}
}
