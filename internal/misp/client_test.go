package misp_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

func TestNew(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		cfg      misp.Config
		wantErr  string // substring; "" means success
		wantBase string
	}{
		{name: "https", cfg: misp.Config{BaseURL: "https://misp.example"}, wantBase: "https://misp.example"},
		{name: "trailing slash", cfg: misp.Config{BaseURL: "https://misp.example/"}, wantBase: "https://misp.example"},
		{name: "path prefix", cfg: misp.Config{BaseURL: "http://10.0.0.1:8080/misp/"}, wantBase: "http://10.0.0.1:8080/misp"},
		{name: "empty", cfg: misp.Config{}, wantErr: "API_URL"},
		{name: "no scheme", cfg: misp.Config{BaseURL: "misp.example"}, wantErr: "API_URL"},
		{name: "ftp", cfg: misp.Config{BaseURL: "ftp://misp.example"}, wantErr: "https://"},
		{name: "no host", cfg: misp.Config{BaseURL: "https://"}, wantErr: "no host"},
		{name: "unparsable", cfg: misp.Config{BaseURL: "https://misp.example:port"}, wantErr: "API_URL"},
		{name: "credentials", cfg: misp.Config{BaseURL: "https://u:secret@misp.example"}, wantErr: "credentials"},
		{name: "query", cfg: misp.Config{BaseURL: "https://misp.example/?a=b"}, wantErr: "query"},
		{name: "missing CA file", cfg: misp.Config{BaseURL: "https://misp.example", CAFile: filepath.Join(dir, "nope.pem")}, wantErr: "MISP_CA_FILE"},
		{name: "CA file without PEM", cfg: misp.Config{BaseURL: "https://misp.example", CAFile: notPEM}, wantErr: "MISP_CA_FILE"},
		{name: "negative timeout", cfg: misp.Config{BaseURL: "https://misp.example", Timeout: -1}, wantErr: "Timeout"},
		{name: "negative page size", cfg: misp.Config{BaseURL: "https://misp.example", PageSize: -1}, wantErr: "PageSize"},
		{name: "negative max pages", cfg: misp.Config{BaseURL: "https://misp.example", MaxPages: -1}, wantErr: "MaxPages"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := misp.New(tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New() error = %v, want one mentioning %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error repeats the URL's password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New() error = %v", err)
			}
			if got := c.BaseURL(); got != tc.wantBase {
				t.Errorf("BaseURL() = %q, want %q", got, tc.wantBase)
			}
		})
	}
}

func TestRequests(t *testing.T) {
	wantHeaders := map[string]string{
		"Authorization": testKey,
		"Accept":        "application/json",
		"Content-Type":  "application/json",
		"User-Agent":    "misp-relay-test/1.0",
	}
	tests := []struct {
		name     string
		answer   string
		call     func(*misp.Client) error
		wantPath string
		wantBody map[string]any
		wantVerb string
	}{
		{
			name:   "search",
			answer: `{"response":{"Attribute":[]}}`,
			call: func(c *misp.Client) error {
				_, err := c.Search(context.Background(), testKey, intel.Query{Value: "evil.example", Types: []string{"domain", "domain|ip"}, Limit: 5})
				return err
			},
			wantVerb: http.MethodPost,
			wantPath: "/misp/attributes/restSearch",
			wantBody: map[string]any{
				"returnFormat": "json", "value": "evil.example", "type": []any{"domain", "domain|ip"},
				"includeContext": 1.0, "includeEventTags": 1.0, "includeWarninglistHits": 1.0, "includeSightings": 1.0, "includeDecayScore": 1.0, "limit": 7.0, "page": 1.0,
			},
		},
		{
			name:   "search without types sends an empty list",
			answer: `{"response":[]}`,
			call: func(c *misp.Client) error {
				_, err := c.Search(context.Background(), testKey, intel.Query{Value: "a&b<c>", Limit: 5})
				return err
			},
			wantVerb: http.MethodPost,
			wantPath: "/misp/attributes/restSearch",
			wantBody: map[string]any{
				"returnFormat": "json", "value": "a&b<c>", "type": []any{},
				"includeContext": 1.0, "includeEventTags": 1.0, "includeWarninglistHits": 1.0, "includeSightings": 1.0, "includeDecayScore": 1.0, "limit": 7.0, "page": 1.0,
			},
		},
		{
			name:     "version",
			answer:   `{"version":"2.5.1"}`,
			call:     func(c *misp.Client) error { _, err := c.Version(context.Background(), testKey); return err },
			wantVerb: http.MethodGet,
			wantPath: "/misp/servers/getVersion",
		},
		{
			name:   "sighting",
			answer: `{"Sighting":{"id":"1"}}`,
			call: func(c *misp.Client) error {
				return c.AddSighting(context.Background(), testKey, "8.8.8.8", intel.FalsePositive, "XDR")
			},
			wantVerb: http.MethodPost,
			wantPath: "/misp/sightings/add",
			wantBody: map[string]any{"values": []any{"8.8.8.8"}, "type": "1", "source": "XDR"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := answering(t, misptest.Raw(http.StatusOK, "application/json", tc.answer))
			c := newClient(t, srv.URL+"/misp/", func(cfg *misp.Config) { cfg.PageSize = 7 })
			if err := tc.call(c); err != nil {
				t.Fatalf("call: %v", err)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != tc.wantVerb || r.Path != tc.wantPath {
				t.Errorf("request = %s %s, want %s %s", r.Method, r.Path, tc.wantVerb, tc.wantPath)
			}
			for name, want := range wantHeaders {
				if got := r.Header.Values(name); len(got) != 1 || got[0] != want {
					t.Errorf("header %s = %q, want exactly [%q]", name, got, want)
				}
			}
			var body map[string]any
			if len(r.Body) > 0 {
				if err := json.Unmarshal(r.Body, &body); err != nil {
					t.Errorf("request body is not a JSON object: %q", r.Body)
				}
			}
			if diff := cmp.Diff(tc.wantBody, body); diff != "" {
				t.Errorf("request body (-want +got):\n%s", diff)
			}
		})
	}
}

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

// call runs one client operation; the error tests run each row through the right one.
type call struct {
	op string
	do func(*misp.Client) error
}

var (
	searchCall = call{"search", func(c *misp.Client) error {
		_, err := c.Search(context.Background(), testKey, intel.Query{Value: "evil.example", Types: []string{"domain"}, Limit: 5})
		return err
	}}
	versionCall = call{"version check", func(c *misp.Client) error {
		_, err := c.Version(context.Background(), testKey)
		return err
	}}
	sightingCall = call{"add sighting", func(c *misp.Client) error {
		return c.AddSighting(context.Background(), testKey, "evil.example", intel.Sighting, "XDR")
	}}
)

func TestErrorMapping(t *testing.T) {
	const badGateway = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
	tests := []struct {
		name       string
		call       call
		answer     misptest.Answer
		kind       error
		status     int
		detail     string // substring of Detail
		retryAfter time.Duration
	}{
		{
			name: "403 bad key", call: searchCall, kind: misp.ErrPermission, status: 403,
			answer: misptest.Raw(403, "application/json", misptest.ErrorBody("Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header.", "/attributes/restSearch")),
			detail: "Authentication failed. Please make sure",
		},
		{
			name: "401", call: versionCall, kind: misp.ErrPermission, status: 401,
			answer: misptest.Raw(401, "application/json", `{"message":"Unauthorized"}`), detail: "Unauthorized",
		},
		{
			name: "403 no permission on sightings", call: sightingCall, kind: misp.ErrPermission, status: 403,
			answer: misptest.Raw(403, "application/json", misptest.ErrorBody("You do not have permission to use this functionality.", "/sightings/add")),
			detail: "You do not have permission",
		},
		{
			name: "405 old MISP permission", call: searchCall, kind: misp.ErrPermission, status: 405,
			answer: misptest.Raw(405, "application/json", misptest.ErrorBody("You do not have permission to use this functionality.", "/attributes/restSearch")),
			detail: "You do not have permission",
		},
		{
			name: "404 wrong base URL", call: searchCall, kind: misp.ErrNotFound, status: 404,
			answer: misptest.Raw(404, "application/json", `{"name":"Not Found","message":"Not Found","url":"\/x\/attributes\/restSearch"}`),
			detail: "Not Found; check that API_URL points at the MISP base URL",
		},
		{
			name: "404 HTML from a web server", call: versionCall, kind: misp.ErrNotFound, status: 404,
			answer: misptest.Raw(404, "text/html", "<html><head><title>404 Not Found</title></head></html>"),
			detail: "API_URL",
		},
		{
			name: "429 with X-Rate-Limit-Reset", call: searchCall, kind: misp.ErrRateLimited, status: 429, retryAfter: 42 * time.Second,
			answer: misptest.RateLimited(42), // X-Rate-Limit-Limit 10, -Remaining 0, -Reset 42
			detail: "Rate limit exceeded.",
		},
		{
			name: "500", call: searchCall, kind: misp.ErrServer, status: 500,
			answer: misptest.Raw(500, "application/json", misptest.ErrorBody("An Internal Error Has Occurred.", "/attributes/restSearch")),
			detail: "An Internal Error Has Occurred.",
		},
		{
			name: "502 HTML from a proxy", call: searchCall, kind: misp.ErrUnavailable, status: 502,
			answer: misptest.Raw(502, "text/html", badGateway), detail: "MISP sent an HTML page instead of JSON (502 Bad Gateway)",
		},
		{
			name: "503", call: versionCall, kind: misp.ErrUnavailable, status: 503,
			answer: misptest.Raw(503, "text/plain", "Service Unavailable"), detail: "Service Unavailable",
		},
		{
			name: "504 HTML", call: sightingCall, kind: misp.ErrUnavailable, status: 504,
			answer: misptest.Raw(504, "text/html", "<html><title>504 Gateway Time-out</title></html>"), detail: "HTML page",
		},
		{
			name: "302 to the login page", call: versionCall, kind: misp.ErrPermission, status: 302,
			answer: misptest.LoginRedirect(), detail: "login page",
		},
		{
			name: "301 elsewhere", call: searchCall, kind: misp.ErrUnexpected, status: 301,
			answer: withHeader(misptest.Raw(http.StatusMovedPermanently, "text/html; charset=utf-8", ""), "Location", "https://misp.example/attributes/restSearch"),
			detail: `redirected to "https://misp.example/attributes/restSearch"`,
		},
		{
			name: "418 plain text", call: searchCall, kind: misp.ErrUnexpected, status: 418,
			answer: misptest.Raw(418, "text/plain", "I'm a teapot"), detail: "I'm a teapot",
		},
		{
			name: "200 truncated JSON", call: searchCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `{"response":{"Attribute":[{"type":"domain","value":"evil.exa`),
			detail: "truncated",
		},
		{
			name: "200 truncated between tokens", call: searchCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `{"response":{"Attribute":[`), detail: "truncated",
		},
		{
			name: "200 not JSON", call: searchCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "text/plain", "hello"), detail: "not valid JSON",
		},
		{
			name: "200 HTML login page", call: searchCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "text/html", "\n<!DOCTYPE html><html><head><title>Users - MISP</title>"), detail: "HTML page instead of JSON (Users - MISP)",
		},
		{
			name: "200 Attribute is an object", call: searchCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `{"response":{"Attribute":{}}}`), detail: "unexpected shape",
		},
		{
			name: "200 top-level list", call: searchCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `[1,2]`), detail: "unexpected shape",
		},
		{
			name: "200 attribute is a number", call: searchCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `{"response":{"Attribute":[1]}}`), detail: "unexpected shape",
		},
		{
			name: "200 events instead of attributes", call: searchCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `{"response":[{"Event":{"uuid":"x"}}]}`), detail: "unexpected shape",
		},
		{
			name: "200 without response", call: searchCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `{"name":"x"}`), detail: "unexpected shape",
		},
		{
			name: "200 empty body", call: searchCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", ""), detail: "empty",
		},
		{
			name: "version without version", call: versionCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `{"perm_sync":false}`), detail: `no "version"`,
		},
		{
			name: "version as a number", call: versionCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `{"version":2.5}`), detail: `no "version"`,
		},
		{
			name: "version list", call: versionCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `[]`), detail: "unexpected shape",
		},
		{
			name: "version not JSON", call: versionCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `{"version":`), detail: "JSON",
		},
		{
			name: "sighting refused with HTTP 200", call: sightingCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `{"message":"Could not add the Sighting. Reason: No valid attributes found that match the criteria."}`),
			detail: "Could not add the Sighting. Reason: No valid attributes found that match the criteria.",
		},
		{
			name: "sighting answer without anything", call: sightingCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `{"Sighting":[]}`), detail: `no "Sighting"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := answering(t, tc.answer)
			err := tc.call.do(newClient(t, srv.URL))
			if err == nil {
				t.Fatal("no error")
			}
			for _, r := range srv.Requests() {
				if r.Path == "/users/login" {
					t.Error("the client followed the redirect")
				}
			}
			me := asError(t, err)
			if !errors.Is(err, tc.kind) {
				t.Errorf("error kind = %v, want %v (error: %v)", me.Kind, tc.kind, err)
			}
			if me.Op != tc.call.op {
				t.Errorf("Op = %q, want %q", me.Op, tc.call.op)
			}
			if me.Status != tc.status {
				t.Errorf("Status = %d, want %d", me.Status, tc.status)
			}
			if !strings.Contains(me.Detail, tc.detail) {
				t.Errorf("Detail = %q, want it to contain %q", me.Detail, tc.detail)
			}
			if len(me.Detail) > 300 {
				t.Errorf("Detail is %d bytes long: %q", len(me.Detail), me.Detail)
			}
			if me.RetryAfter != tc.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", me.RetryAfter, tc.retryAfter)
			}
			if !strings.HasPrefix(err.Error(), "MISP "+tc.call.op+" failed") {
				t.Errorf("Error() = %q", err.Error())
			}
			checkNoKey(t, err)
		})
	}
}

// TestKeyNeverInErrors uses answers that carry the request's API key in every place a naive
// client would copy into its error, as a server echoing the Authorization header would.
func TestKeyNeverInErrors(t *testing.T) {
	echo := func(status int, contentType, format string) misptest.Answer {
		return misptest.Raw(status, contentType, strings.ReplaceAll(format, "KEY", testKey))
	}
	tests := []struct {
		name   string
		call   call
		answer misptest.Answer
	}{
		{"JSON message", searchCall, echo(403, "application/json", `{"name":"bad key KEY","message":"The key KEY is not valid","url":"/attributes/restSearch"}`)},
		{"JSON name only", versionCall, echo(403, "application/json", `{"name":"bad key KEY"}`)},
		{"plain text", searchCall, echo(500, "text/plain", "headers: Authorization=KEY Accept=application/json")},
		// The key sits across the 200-byte truncation point: removing it after truncating
		// would leave its first half behind.
		{"plain text cut at the key", searchCall, echo(418, "text/plain", strings.Repeat("a", 180)+" KEY "+strings.Repeat("b", 100))},
		{"HTML title", searchCall, echo(502, "text/html", "<html><title>proxy error for KEY</title></html>")},
		{"redirect location", versionCall, withHeader(misptest.Raw(http.StatusFound, "", ""), "Location", "https://sso.example/login?key="+testKey)},
		{"sighting message", sightingCall, echo(200, "application/json", `{"message":"Could not add the Sighting for key KEY"}`)},
		{"200 HTML", sightingCall, echo(200, "text/html", "<html><title>Welcome KEY</title></html>")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := answering(t, tc.answer)
			err := tc.call.do(newClient(t, srv.URL))
			if err == nil {
				t.Fatal("no error")
			}
			_ = asError(t, err)
			checkNoKey(t, err)
		})
	}
}

func TestUnreachable(t *testing.T) {
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String()
	_ = ln.Close()

	hungURL := answering(t, misptest.Hang()).URL
	// Headers and the start of the body come at once, then nothing.
	hungBodyURL := answering(t, misptest.Answer{Status: http.StatusOK, Body: `{"response":{"Attribute":[`, Stall: true}).URL

	tests := []struct {
		name    string
		url     string
		timeout time.Duration
		call    call
		detail  string
	}{
		{name: "connection refused", url: closedURL, timeout: 2 * time.Second, call: searchCall, detail: "cannot reach MISP"},
		{name: "hung server", url: hungURL, timeout: 200 * time.Millisecond, call: searchCall, detail: "did not answer within 200ms"},
		{name: "hung server, version", url: hungURL, timeout: 200 * time.Millisecond, call: versionCall, detail: "did not answer"},
		{name: "hung server, sighting", url: hungURL, timeout: 200 * time.Millisecond, call: sightingCall, detail: "did not answer"},
		{name: "hung mid-body", url: hungBodyURL, timeout: 200 * time.Millisecond, call: searchCall, detail: "did not answer"},
		{name: "DNS failure", url: "http://misp-relay-test.invalid", timeout: 3 * time.Second, call: versionCall},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, tc.url, func(cfg *misp.Config) { cfg.Timeout = tc.timeout })
			start := time.Now()
			err := tc.call.do(c)
			if elapsed := time.Since(start); elapsed > tc.timeout+2*time.Second {
				t.Errorf("call took %v with Timeout %v", elapsed, tc.timeout)
			}
			me := asError(t, err)
			if !errors.Is(err, misp.ErrUnavailable) {
				t.Errorf("kind = %v, want ErrUnavailable (%v)", me.Kind, err)
			}
			if tc.name != "hung mid-body" && me.Status != 0 {
				t.Errorf("Status = %d, want 0", me.Status)
			}
			if !strings.Contains(me.Detail, tc.detail) {
				t.Errorf("Detail = %q, want it to contain %q", me.Detail, tc.detail)
			}
			checkNoKey(t, err)
		})
	}
}

// TestCanceledContext: the caller gives up while MISP is answering.
func TestCanceledContext(t *testing.T) {
	srv := answering(t, misptest.Hang())
	c := newClient(t, srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Search(ctx, testKey, intel.Query{Value: "x", Limit: 1})
		errc <- err
	}()
	if err := srv.WaitRequests(testkit.Context(t), "", 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	err := <-errc
	if !errors.Is(err, misp.ErrUnavailable) || !strings.Contains(asError(t, err).Detail, "canceled") {
		t.Errorf("Search with a canceled context: %v", err)
	}
}

func TestTLS(t *testing.T) {
	srv, err := misptest.NewTLSServer(testKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		mod     func(*misp.Config)
		wantErr bool
	}{
		{name: "self-signed, verified", mod: func(*misp.Config) {}, wantErr: true},
		{name: "InsecureSkipVerify", mod: func(c *misp.Config) { c.InsecureSkipVerify = true }},
		{name: "CAFile", mod: func(c *misp.Config) { c.CAFile = caFile }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := newClient(t, srv.URL, tc.mod).Version(context.Background(), testKey)
			if !tc.wantErr {
				if err != nil || v != "2.5.1" {
					t.Fatalf("Version = %q, %v", v, err)
				}
				return
			}
			me := asError(t, err)
			if !errors.Is(err, misp.ErrUnexpected) || me.Status != 0 {
				t.Errorf("error = %v (kind %v, status %d), want ErrUnexpected without status", err, me.Kind, me.Status)
			}
			if !strings.Contains(me.Detail, "MISP_CA_FILE") || !strings.Contains(me.Detail, "certificate") {
				t.Errorf("Detail = %q, want a hint about the certificate and MISP_CA_FILE", me.Detail)
			}
		})
	}

	t.Run("plain HTTP server behind an https URL", func(t *testing.T) {
		plain := misptest.New(t, testKey)
		_, err := newClient(t, strings.Replace(plain.URL, "http://", "https://", 1)).Version(context.Background(), testKey)
		if !errors.Is(err, misp.ErrUnexpected) || !strings.Contains(asError(t, err).Detail, "API_URL") {
			t.Errorf("Version: %v", err)
		}
	})
}

func TestLocalRefusals(t *testing.T) {
	srv := misptest.New(t, testKey)
	c := newClient(t, srv.URL)
	for _, v := range []string{"", "0", "!x", "%x", "x%", "a&&b"} {
		_, err := c.Search(context.Background(), testKey, intel.Query{Value: v, Limit: 1})
		if !errors.Is(err, misp.ErrUnexpected) {
			t.Errorf("Search(%q) error = %v, want ErrUnexpected", v, err)
		}
	}
	if _, err := c.Search(context.Background(), " ", intel.Query{Value: "x", Limit: 1}); !errors.Is(err, misp.ErrPermission) {
		t.Errorf("Search with a blank key: %v, want ErrPermission", err)
	}
	if _, err := c.Version(context.Background(), ""); !errors.Is(err, misp.ErrPermission) {
		t.Errorf("Version with no key: %v, want ErrPermission", err)
	}
	if err := c.AddSighting(context.Background(), "", "x", intel.Sighting, "XDR"); !errors.Is(err, misp.ErrPermission) {
		t.Errorf("AddSighting with no key: %v, want ErrPermission", err)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests were sent, want none", n)
	}
}

func TestVersionAndSightingsAgainstMISPTest(t *testing.T) {
	srv := misptest.New(t, testKey, feedEvent(t, "11111111-1111-4111-8111-111111111111", "e", "2", "ORG", nil,
		attr("ip-dst", "Network activity", "192.0.2.1", true)))
	c := newClient(t, srv.URL)
	ctx := context.Background()

	v, err := c.Version(ctx, testKey)
	if err != nil || v != "2.5.1" {
		t.Fatalf("Version = %q, %v", v, err)
	}
	if _, err := c.Version(ctx, "wrong-key"); !errors.Is(err, misp.ErrPermission) ||
		!strings.Contains(err.Error(), "Authentication failed") {
		t.Errorf("Version with a wrong key: %v", err)
	}
	if err := c.AddSighting(ctx, testKey, "192.0.2.1", intel.Sighting, "XDR"); err != nil {
		t.Errorf("AddSighting: %v", err)
	}
	if err := c.AddSighting(ctx, testKey, "192.0.2.1", intel.FalsePositive, "XDR"); err != nil {
		t.Errorf("AddSighting false positive: %v", err)
	}
	err = c.AddSighting(ctx, testKey, "198.51.100.1", intel.Sighting, "XDR")
	if !errors.Is(err, misp.ErrUnexpected) || asError(t, err).Detail != "Could not add the Sighting. Reason: No valid attributes found that match the criteria." {
		t.Errorf("AddSighting of an unknown value: %v", err)
	}
	err = c.AddSighting(ctx, testKey, "192.0.2.1", intel.SightingType("7"), "XDR")
	if !errors.Is(err, misp.ErrUnexpected) || !strings.Contains(err.Error(), "Invalid type") {
		t.Errorf("AddSighting with a bad type: %v", err)
	}
	want := []misptest.SightingAdd{
		{Values: []string{"192.0.2.1"}, Type: "0", Source: "XDR"},
		{Values: []string{"192.0.2.1"}, Type: "1", Source: "XDR"},
	}
	if diff := cmp.Diff(want, srv.Sightings()); diff != "" {
		t.Errorf("sightings (-want +got):\n%s", diff)
	}
	// A failed sighting is not retried.
	if n := countPath(srv.Requests(), "/sightings/add"); n != 4 {
		t.Errorf("%d sighting requests, want 4", n)
	}

	srv.Fail("/sightings/add", http.StatusServiceUnavailable, "<html><title>503</title></html>")
	if err := c.AddSighting(ctx, testKey, "192.0.2.1", intel.Sighting, "XDR"); !errors.Is(err, misp.ErrUnavailable) {
		t.Errorf("AddSighting on a 503: %v", err)
	}
	if n := countPath(srv.Requests(), "/sightings/add"); n != 5 {
		t.Errorf("%d sighting requests after a 503, want 5 (no retry)", n)
	}
}

func countPath(reqs []misptest.Request, path string) int {
	n := 0
	for _, r := range reqs {
		if r.Path == path {
			n++
		}
	}
	return n
}

func TestConcurrentSearches(t *testing.T) {
	var events [][]byte
	for i := range 5 {
		events = append(events, feedEvent(t, fmt.Sprintf("00000000-0000-4000-8000-%012d", i), "e", "2", "ORG", nil,
			attr("ip-dst", "Network activity", "192.0.2.1", true),
			attr("ip-dst", "Network activity", fmt.Sprintf("192.0.2.%d", 10+i), true)))
	}
	srv := misptest.New(t, testKey, events...)
	c := newClient(t, srv.URL, func(cfg *misp.Config) { cfg.PageSize = 2 })
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			got, err := c.Search(context.Background(), testKey, intel.Query{Value: "192.0.2.1", Types: []string{"ip-dst"}, Limit: 3 + i%3})
			if err != nil {
				t.Errorf("Search: %v", err)
				return
			}
			if len(got) != 3+i%3 {
				t.Errorf("got %d events, want %d", len(got), 3+i%3)
			}
		})
	}
	wg.Wait()
}
