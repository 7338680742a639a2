package feed_test

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/intel"
)

const (
	sampleFeed        = "../../sample/feed"
	sampleObservables = "../../sample/observables.json"

	// Sample events (see sample/README.md).
	evPhishing = "ffb4d04a-a994-4e7d-8d96-366b8422d95f" // threat level 1, 2024-05-14
	evCobalt   = "473ef501-ffb0-4455-b006-b22fc85966a2" // threat level 2, 2024-03-02
	evHarvest  = "2d109a65-d18a-421c-b6ff-7f06b4a1ee7d" // threat level 3, 2023-11-20
	evScanning = "8106141a-c75c-4628-8b96-77b5a60640cd" // threat level 4, 2023-08-09, no tags
	evLoader   = "55ea9e0c-8f26-4c8e-9ec5-cf25fb94fef9" // threat level 3, 2024-02-20, OSINT-style

	md5Scan     = "512b717ec0e848ba311281fb4ab6d48d"
	sha1Trojan  = "e17c44c90e3d5241deb09c910d45fb10f5058a30"
	sha256Troj  = "a4ae01dae524f3420ab0c47b2fc523fd20653d1a75c12fc9055b07bfea0a6bb6"
	sha512Beacn = "44c7264c43cd6b98ed183b439c359fc8f9f635ab216fcf8282a5e9cf21d0ffe6046dc5ff25d5979071b74d4857d6891addffb5f0cc70c271d6127a3807f5aee2"
)

// observableTypes maps a CTIM observable type to the MISP attribute types a lookup searches.
// The relay has its own table; this one only has to be plausible for the sample feed.
func observableTypes() map[string][]string {
	return map[string][]string{
		"ip":        {"ip-src", "ip-dst", "ip-src|port", "ip-dst|port", "domain|ip"},
		"ipv6":      {"ip-src", "ip-dst", "ip-src|port", "ip-dst|port", "domain|ip"},
		"domain":    {"domain", "domain|ip", "hostname", "hostname|port"},
		"hostname":  {"domain", "domain|ip", "hostname", "hostname|port"},
		"url":       {"url", "uri", "link"},
		"md5":       {"md5", "filename|md5", "malware-sample"},
		"sha1":      {"sha1", "filename|sha1"},
		"sha256":    {"sha256", "filename|sha256"},
		"sha512":    {"sha512", "filename|sha512"},
		"email":     {"email", "email-src", "email-dst", "target-email", "whois-registrant-email"},
		"file_name": {"filename", "filename|md5", "filename|sha1", "filename|sha256", "filename|sha512", "malware-sample"},
	}
}

func loadSample(t *testing.T) *feed.Store {
	t.Helper()
	s, err := feed.Load(sampleFeed)
	if err != nil {
		t.Fatalf("Load(%s): %v", sampleFeed, err)
	}
	return s
}

// hit is the part of a result most tests compare: which events, in which order, with which
// attributes ("type=value").
type hit struct {
	UUID        string
	ThreatLevel int
	Attrs       []string
}

func hits(evs []intel.Event) []hit {
	var out []hit
	for _, e := range evs {
		h := hit{UUID: e.UUID, ThreatLevel: e.ThreatLevel}
		for _, a := range e.Attributes {
			h.Attrs = append(h.Attrs, a.Type+"="+a.Value)
		}
		out = append(out, h)
	}
	return out
}

func TestLoadSample(t *testing.T) {
	s := loadSample(t)
	if got, want := s.Len(), 5; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
	if got := s.Dir(); got != sampleFeed {
		t.Errorf("Dir() = %q, want %q", got, sampleFeed)
	}
}

// TestSampleObservables checks that every observable shipped in sample/observables.json finds
// the events it is meant to demonstrate, and that together they show all four threat levels.
func TestSampleObservables(t *testing.T) {
	s := loadSample(t)
	b, err := os.ReadFile(sampleObservables)
	if err != nil {
		t.Fatal(err)
	}
	var obs []struct{ Type, Value string }
	if err := json.Unmarshal(b, &obs); err != nil {
		t.Fatalf("%s: %v", sampleObservables, err)
	}

	want := map[string][]string{ // value -> event uuids, in result order
		"198.51.100.23":                                           {evPhishing, evHarvest},
		"2001:db8:85a3::8a2e:370:7334":                            {evCobalt},
		"c2-relay.example.net":                                    {evCobalt},
		"beacon.c2-relay.example.net":                             {evCobalt},
		"http://invoice-portal.example.com/download/inv_0412.php": {evPhishing},
		md5Scan:                        {evScanning},
		sha1Trojan:                     {evPhishing},
		sha256Troj:                     {evPhishing},
		sha512Beacn:                    {evCobalt},
		"accounts-payable@example.org": {evPhishing},
		"invoice_0412.pdf.exe":         {evPhishing},
		"8.8.8.8":                      {evPhishing}, // a public resolver: Common with WARNINGLISTS_DIR
		"192.0.2.250":                  nil,          // the unknown one
	}
	types := observableTypes()
	seenTypes := map[string]bool{}
	levels := map[int]bool{}
	for _, o := range obs {
		t.Run(o.Type+"/"+o.Value, func(t *testing.T) {
			attrTypes, ok := types[o.Type]
			if !ok {
				t.Fatalf("observable type %q has no type table entry", o.Type)
			}
			wantUUIDs, ok := want[o.Value]
			if !ok {
				t.Fatalf("observable %q is not described by this test", o.Value)
			}
			seenTypes[o.Type] = true
			evs, err := s.Search(context.Background(), "", intel.Query{Value: o.Value, Types: attrTypes, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range evs {
				got = append(got, e.UUID)
				levels[e.ThreatLevel] = true
				if len(e.Attributes) == 0 {
					t.Errorf("event %s returned without a matching attribute", e.UUID)
				}
			}
			if diff := cmp.Diff(wantUUIDs, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
	for typ := range types {
		if !seenTypes[typ] {
			t.Errorf("%s has no %s observable", sampleObservables, typ)
		}
	}
	if diff := cmp.Diff(map[int]bool{1: true, 2: true, 3: true, 4: true}, levels); diff != "" {
		t.Errorf("threat levels reached by the sample observables (-want +got):\n%s", diff)
	}
}

func TestSearch(t *testing.T) {
	s := loadSample(t)
	types := observableTypes()
	ipTypes, domainTypes := types["ip"], types["domain"]
	tests := []struct {
		name string
		q    intel.Query
		want []hit
	}{{
		name: "value in two events, newest first",
		q:    intel.Query{Value: "198.51.100.23", Types: ipTypes},
		want: []hit{
			{evPhishing, 1, []string{"ip-dst=198.51.100.23"}},
			{evHarvest, 3, []string{"ip-dst=198.51.100.23"}},
		},
	}, {
		name: "limit caps events",
		q:    intel.Query{Value: "198.51.100.23", Types: ipTypes, Limit: 1},
		want: []hit{{evPhishing, 1, []string{"ip-dst=198.51.100.23"}}},
	}, {
		name: "negative limit is no cap",
		q:    intel.Query{Value: "198.51.100.23", Types: ipTypes, Limit: -1},
		want: []hit{
			{evPhishing, 1, []string{"ip-dst=198.51.100.23"}},
			{evHarvest, 3, []string{"ip-dst=198.51.100.23"}},
		},
	}, {
		name: "case-insensitive",
		q:    intel.Query{Value: "Accounts-Payable@EXAMPLE.org", Types: types["email"]},
		want: []hit{{evPhishing, 1, []string{"email-src=accounts-payable@example.org"}}},
	}, {
		name: "upper-case hash finds composite and object attribute",
		q:    intel.Query{Value: strings.ToUpper(sha256Troj), Types: types["sha256"]},
		want: []hit{{evPhishing, 1, []string{
			"filename|sha256=invoice_0412.pdf.exe|" + sha256Troj,
			"sha256=" + sha256Troj,
		}}},
	}, {
		name: "first half of domain|ip",
		q:    intel.Query{Value: "invoice-portal.example.com", Types: domainTypes},
		want: []hit{{evPhishing, 1, []string{"domain|ip=invoice-portal.example.com|198.51.100.24"}}},
	}, {
		name: "second half of domain|ip",
		q:    intel.Query{Value: "198.51.100.24", Types: ipTypes},
		want: []hit{{evPhishing, 1, []string{"domain|ip=invoice-portal.example.com|198.51.100.24"}}},
	}, {
		name: "ip half of ip-dst|port",
		q:    intel.Query{Value: "203.0.113.45", Types: ipTypes},
		want: []hit{{evCobalt, 2, []string{"ip-dst|port=203.0.113.45|8443"}}},
	}, {
		name: "port half matches too, as in MISP",
		q:    intel.Query{Value: "8443"},
		want: []hit{
			{evCobalt, 2, []string{"ip-dst|port=203.0.113.45|8443"}},
			{evLoader, 3, []string{"hostname|port=update-check.example.net|8443", "port=8443"}},
		},
	}, {
		name: "whole composite value matches nothing",
		q:    intel.Query{Value: "203.0.113.45|8443"},
	}, {
		name: "object attribute",
		q:    intel.Query{Value: "203.0.113.46", Types: ipTypes},
		want: []hit{{evCobalt, 2, []string{"ip-dst=203.0.113.46"}}},
	}, {
		name: "no types means any type",
		q:    intel.Query{Value: "c2-relay.example.net"},
		want: []hit{{evCobalt, 2, []string{"domain=c2-relay.example.net", "domain=c2-relay.example.net"}}},
	}, {
		name: "type filter keeps the plain attribute",
		q:    intel.Query{Value: sha256Troj, Types: []string{"sha256"}},
		want: []hit{{evPhishing, 1, []string{"sha256=" + sha256Troj}}},
	}, {
		name: "type filter keeps the composite",
		q:    intel.Query{Value: sha256Troj, Types: []string{"filename|sha256"}},
		want: []hit{{evPhishing, 1, []string{"filename|sha256=invoice_0412.pdf.exe|" + sha256Troj}}},
	}, {
		name: "type filter excludes everything",
		q:    intel.Query{Value: "c2-relay.example.net", Types: []string{"hostname", "url"}},
	}, {
		name: "filename in object and composite",
		q:    intel.Query{Value: "invoice_0412.pdf.exe", Types: types["file_name"]},
		want: []hit{{evPhishing, 1, []string{
			"filename|sha256=invoice_0412.pdf.exe|" + sha256Troj,
			"filename=invoice_0412.pdf.exe",
		}}},
	}, {
		name: "IPv6 is normalised",
		q:    intel.Query{Value: "2001:0DB8:85A3:0000:0000:8A2E:0370:7334", Types: types["ipv6"]},
		want: []hit{{evCobalt, 2, []string{"ip-src=2001:db8:85a3::8a2e:370:7334"}}},
	}, {
		name: "trailing spaces ignored (PAD SPACE collation)",
		q:    intel.Query{Value: "scan_agent.sh  ", Types: types["file_name"]},
		want: []hit{{evScanning, 4, []string{"filename=scan_agent.sh"}}},
	}, {
		name: "exact match only",
		q:    intel.Query{Value: "198.51.100.2"},
	}, {
		name: "empty value matches nothing",
		q:    intel.Query{Value: ""},
	}, {
		name: "unknown value",
		q:    intel.Query{Value: "192.0.2.250", Types: ipTypes},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := s.Search(context.Background(), "", tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, hits(evs)); diff != "" {
				t.Errorf("Search(%+v) (-want +got):\n%s", tt.q, diff)
			}
		})
	}
}

// TestSearchFullEvent checks every field converted from the feed files.
func TestSearchFullEvent(t *testing.T) {
	s := loadSample(t)
	evs, err := s.Search(context.Background(), "", intel.Query{Value: "198.51.100.23", Types: []string{"ip-dst"}, Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	want := []intel.Event{{
		UUID:        evPhishing,
		Info:        "Invoice-themed phishing delivering a banking trojan to finance departments",
		Date:        "2024-05-14",
		Timestamp:   time.Date(2024, 5, 14, 15, 20, 0, 0, time.UTC),
		ThreatLevel: 1,
		Org:         "Example CERT",
		OrgUUID:     "3ec5774b-9c8f-4a83-a0fc-f4bb732aa7b8",
		Published:   true,
		Analysis:    intel.AnalysisComplete,
		Tags: []string{
			"tlp:amber",
			`circl:incident-classification="phishing"`,
			`malware_classification:malware-category="Trojan"`,
		},
		Attributes: []intel.Attribute{{
			UUID:      "30bb0794-6ac6-4f3f-8bb8-03a49c20486a",
			Type:      "ip-dst",
			Category:  "Network activity",
			Value:     "198.51.100.23",
			ToIDS:     true,
			Timestamp: time.Date(2024, 5, 14, 15, 20, 0, 0, time.UTC),
			FirstSeen: time.Date(2024, 5, 13, 0, 0, 0, 0, time.UTC),
			LastSeen:  time.Date(2024, 5, 15, 0, 0, 0, 0, time.UTC),
			Comment:   "Trojan C2",
		}},
	}, {
		UUID:        evHarvest,
		Info:        "OSINT - Credential-harvesting kit reuses known hosting infrastructure",
		Date:        "2023-11-20",
		Timestamp:   time.Date(2023, 11, 21, 8, 5, 10, 0, time.UTC),
		ThreatLevel: 3,
		Org:         "Example CERT",
		OrgUUID:     "3ec5774b-9c8f-4a83-a0fc-f4bb732aa7b8",
		Published:   true,
		Analysis:    intel.AnalysisComplete,
		Tags:        []string{"tlp:white", `osint:source-type="blog-post"`},
		Attributes: []intel.Attribute{{
			UUID:      "ec380501-af70-4eeb-941d-693c7c30cd6b",
			Type:      "ip-dst",
			Category:  "Network activity",
			Value:     "198.51.100.23",
			ToIDS:     true,
			Timestamp: time.Date(2023, 11, 21, 8, 5, 10, 0, time.UTC),
			Comment:   "Kit hosting, shared with earlier campaigns",
		}},
	}}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	evs, err = s.Search(context.Background(), "", intel.Query{Value: md5Scan, Types: observableTypes()["md5"]})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Tags != nil || evs[0].Org != "Example ISAC" || evs[0].ThreatLevel != 4 {
		t.Errorf("untagged event: got %+v", evs)
	}
}

// TestSearchResultsAreCopies makes sure a caller editing a result cannot change the Store.
func TestSearchResultsAreCopies(t *testing.T) {
	s := loadSample(t)
	q := intel.Query{Value: "198.51.100.23"}
	first, err := s.Search(context.Background(), "", q)
	if err != nil {
		t.Fatal(err)
	}
	want := hits(first)
	wantTags := slices.Clone(first[0].Tags)
	first[0].Tags[0] = "changed"
	first[0].Attributes[0].Value = "changed"
	first[0].UUID = "changed"
	again, err := s.Search(context.Background(), "", q)
	if err != nil {
		t.Fatal(err)
	}
	want[0].UUID = evPhishing
	if diff := cmp.Diff(want, hits(again)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantTags, again[0].Tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
}

func TestSearchCancelled(t *testing.T) {
	s := loadSample(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	evs, err := s.Search(ctx, "", intel.Query{Value: "198.51.100.23"})
	if !errors.Is(err, context.Canceled) || evs != nil {
		t.Errorf("Search with a cancelled context = %v, %v; want nil, context.Canceled", evs, err)
	}
}

// TestSearchConcurrent is meant for -race: a Store is shared by all request goroutines.
func TestSearchConcurrent(t *testing.T) {
	s := loadSample(t)
	values := []string{"198.51.100.23", "c2-relay.example.net", sha256Troj, md5Scan, "192.0.2.250"}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				v := values[(i+j)%len(values)]
				if _, err := s.Search(context.Background(), "", intel.Query{Value: v, Limit: 2}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestSampleCoverage keeps the hand-written sample feed honest: it must show every attribute
// type and feed feature the relay documents, so demos and integration tests can rely on it.
func TestSampleCoverage(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(sampleFeed, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var manifest map[string]json.RawMessage
	if err := json.Unmarshal(b, &manifest); err != nil {
		t.Fatal(err)
	}
	type attr struct {
		Type      string  `json:"type"`
		Value     string  `json:"value"`
		FirstSeen *string `json:"first_seen"`
		LastSeen  *string `json:"last_seen"`
	}
	var file struct {
		Event struct {
			ThreatLevel string `json:"threat_level_id"`
			Tag         []struct {
				Name string `json:"name"`
			} `json:"Tag"`
			Attribute []attr `json:"Attribute"`
			Object    []struct {
				Attribute []attr `json:"Attribute"`
			} `json:"Object"`
		} `json:"Event"`
	}
	attrTypes := map[string]bool{}
	levels := map[string]bool{}
	var tlp, untagged, seen, inObject bool
	for uuid := range manifest {
		file.Event.Tag, file.Event.Attribute, file.Event.Object = nil, nil, nil
		b, err := os.ReadFile(filepath.Join(sampleFeed, uuid+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &file); err != nil {
			t.Fatalf("%s: %v", uuid, err)
		}
		ev := file.Event
		levels[ev.ThreatLevel] = true
		untagged = untagged || len(ev.Tag) == 0
		for _, tag := range ev.Tag {
			tlp = tlp || strings.HasPrefix(tag.Name, "tlp:")
		}
		all := ev.Attribute
		for _, o := range ev.Object {
			all = append(all, o.Attribute...)
			inObject = inObject || len(o.Attribute) > 0
		}
		for _, a := range all {
			attrTypes[a.Type] = true
			seen = seen || (a.FirstSeen != nil && a.LastSeen != nil)
		}
	}
	for _, typ := range []string{
		"ip-src", "ip-dst", "ip-dst|port", "domain", "domain|ip", "hostname", "hostname|port", "url",
		"md5", "sha1", "sha256", "sha512", "email-src", "filename", "filename|sha256", "filename|md5",
		"malware-sample", "link",
	} {
		if !attrTypes[typ] {
			t.Errorf("sample feed has no %s attribute", typ)
		}
	}
	for _, l := range []string{"1", "2", "3", "4"} {
		if !levels[l] {
			t.Errorf("sample feed has no event with threat level %s", l)
		}
	}
	for what, ok := range map[string]bool{
		"a tlp: tag": tlp, "an untagged event": untagged,
		"first_seen/last_seen": seen, "an object attribute": inObject,
	} {
		if !ok {
			t.Errorf("sample feed lacks %s", what)
		}
	}
}

// writeFeed creates a feed directory holding files (name -> content).
func writeFeed(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const (
	uuidA = "11111111-2222-4333-8444-555555555555"
	uuidB = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
)

func minimalEvent(uuid string) string {
	return `{"Event":{"uuid":"` + uuid + `","info":"x","date":"2024-01-01","threat_level_id":"2",
		"Attribute":[{"type":"domain","value":"a.example","to_ids":true}]}}`
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		// wantIn are substrings the error must contain: at least the file to fix.
		wantIn   []string
		notExist bool
	}{{
		name:     "missing manifest",
		files:    map[string]string{uuidA + ".json": minimalEvent(uuidA)},
		wantIn:   []string{"manifest.json"},
		notExist: true,
	}, {
		name:   "manifest not JSON",
		files:  map[string]string{"manifest.json": `{"` + uuidA + `": {`},
		wantIn: []string{"manifest.json", "invalid JSON"},
	}, {
		name:   "manifest is an array",
		files:  map[string]string{"manifest.json": `[]`},
		wantIn: []string{"manifest.json", "not a MISP feed manifest"},
	}, {
		name:   "manifest is null",
		files:  map[string]string{"manifest.json": `null`},
		wantIn: []string{"manifest.json"},
	}, {
		name:   "path traversal key",
		files:  map[string]string{"manifest.json": `{"../../etc/passwd": {}}`},
		wantIn: []string{"manifest.json", "../../etc/passwd", "not an event UUID"},
	}, {
		name:   "key is not a UUID",
		files:  map[string]string{"manifest.json": `{"1234": {}}`, "1234.json": minimalEvent("1234")},
		wantIn: []string{"manifest.json", `"1234"`},
	}, {
		name: "same event listed twice",
		files: map[string]string{
			"manifest.json": `{"` + uuidB + `": {}, "` + strings.ToUpper(uuidB) + `": {}}`,
			uuidB + ".json": minimalEvent(uuidB),
			"AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE.json": minimalEvent(uuidB),
		},
		wantIn: []string{"manifest.json", "listed twice"},
	}, {
		name: "missing event file",
		files: map[string]string{
			"manifest.json": `{"` + uuidA + `": {}, "` + uuidB + `": {}}`,
			uuidA + ".json": minimalEvent(uuidA),
		},
		wantIn:   []string{uuidB + ".json"},
		notExist: true,
	}, {
		name: "event file not JSON",
		files: map[string]string{
			"manifest.json": `{"` + uuidA + `": {}}`,
			uuidA + ".json": `{"Event": {"uuid": "` + uuidA + `",}}`,
		},
		wantIn: []string{uuidA + ".json", "invalid JSON"},
	}, {
		name: "event file with trailing garbage",
		files: map[string]string{
			"manifest.json": `{"` + uuidA + `": {}}`,
			uuidA + ".json": minimalEvent(uuidA) + "}",
		},
		wantIn: []string{uuidA + ".json", "invalid JSON"},
	}, {
		name: "event file without Event",
		files: map[string]string{
			"manifest.json": `{"` + uuidA + `": {}}`,
			uuidA + ".json": `{"response": []}`,
		},
		wantIn: []string{uuidA + ".json", `"Event"`},
	}, {
		name: "uuid mismatch",
		files: map[string]string{
			"manifest.json": `{"` + uuidA + `": {}}`,
			uuidA + ".json": minimalEvent(uuidB),
		},
		wantIn: []string{uuidA + ".json", uuidB, "does not match"},
	}, {
		name: "wrong field type",
		files: map[string]string{
			"manifest.json": `{"` + uuidA + `": {}}`,
			uuidA + ".json": `{"Event":{"uuid":"` + uuidA + `","Attribute":[{"type":"md5","value":"x","to_ids":{}}]}}`,
		},
		wantIn: []string{uuidA + ".json", "not a MISP feed file", "want a boolean, got {}"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFeed(t, tt.files)
			s, err := feed.Load(dir)
			if err == nil {
				t.Fatalf("Load succeeded with %d events, want an error", s.Len())
			}
			t.Log(err)
			for _, w := range tt.wantIn {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if got := errors.Is(err, fs.ErrNotExist); got != tt.notExist {
				t.Errorf("errors.Is(%q, fs.ErrNotExist) = %v, want %v", err, got, tt.notExist)
			}
		})
	}

	t.Run("missing directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "nope")
		if _, err := feed.Load(dir); err == nil || !strings.Contains(err.Error(), dir) || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load(%s) error = %v, want one naming the directory and wrapping fs.ErrNotExist", dir, err)
		}
	})
}

// TestLoadFieldForms covers the variants real feeds contain: numbers as JSON numbers or
// strings, booleans as "0"/"1", first_seen as ISO text or null, deleted attributes and objects,
// out-of-range threat levels, and '|' inside a value of a non-composite type.
func TestLoadFieldForms(t *testing.T) {
	dir := writeFeed(t, map[string]string{
		"manifest.json": `{"` + uuidA + `": {"threat_level_id": 2, "analysis": 1, "timestamp": 1700000000, "info": "generated"},
			"` + strings.ToUpper(uuidB) + `": {"threat_level_id": "9"}}`,
		uuidA + ".json": `{"Event": {"uuid": "` + uuidA + `", "info": "Numbers", "date": "2023-11-14",
			"threat_level_id": 2, "timestamp": 1700000000, "analysis": 1, "published": 1,
			"Orgc": {"name": "Example Org", "uuid": "` + uuidB + `"},
			"Tag": [{"name": "tlp:green", "colour": "#339900", "exportable": true, "local": 0}, {"name": ""}],
			"Attribute": [
				{"type": "ip-dst", "category": "Network activity", "value": "192.0.2.1", "to_ids": "1", "timestamp": 1700000001,
				 "first_seen": "2023-11-01T10:00:00.000000+00:00", "last_seen": null, "object_relation": null},
				{"type": "ip-dst", "value": "192.0.2.2", "to_ids": 0, "timestamp": "junk",
				 "first_seen": "1698832800000000", "last_seen": "2023-11-02T10:00:00Z"},
				{"type": "ip-dst", "value": "192.0.2.3", "deleted": true},
				{"type": "text", "value": "left|right"},
				{"type": "regkey|value", "value": "HKLM\\Run|C:\\evil.exe"},
				{"type": "domain|ip", "value": "SAME.example|same.example"},
				{"type": "port", "value": 8080}
			],
			"Object": [
				{"name": "ip-port", "Attribute": [{"type": "ip-dst", "value": "192.0.2.4", "object_relation": "ip", "to_ids": true}]},
				{"name": "ip-port", "deleted": true, "Attribute": [{"type": "ip-dst", "value": "192.0.2.5"}]}
			]}}`,
		strings.ToUpper(uuidB) + ".json": `{"Event": {"uuid": "` + uuidB + `", "info": "Strange level", "threat_level_id": "9",
			"Attribute": [{"type": "ip-dst", "value": "192.0.2.1", "to_ids": false, "timestamp": "0"}]}}`,
	})
	s, err := feed.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 2 {
		t.Errorf("Len() = %d, want 2", s.Len())
	}

	evA := func(attrs ...intel.Attribute) intel.Event {
		return intel.Event{
			UUID: uuidA, Info: "Numbers", Date: "2023-11-14", ThreatLevel: 2, Org: "Example Org",
			Timestamp: time.Unix(1700000000, 0).UTC(), Tags: []string{"tlp:green"}, Attributes: attrs,
		}
	}
	tests := []struct {
		value string
		want  []intel.Event
	}{{
		value: "192.0.2.1",
		want: []intel.Event{
			evA(intel.Attribute{
				Type: "ip-dst", Category: "Network activity", Value: "192.0.2.1", ToIDS: true,
				Timestamp: time.Unix(1700000001, 0).UTC(),
				FirstSeen: time.Date(2023, 11, 1, 10, 0, 0, 0, time.UTC),
			}),
			// No date sorts after any date; a threat level outside 1..4 is 0.
			{UUID: uuidB, Info: "Strange level", Attributes: []intel.Attribute{{Type: "ip-dst", Value: "192.0.2.1"}}},
		},
	}, {
		value: "192.0.2.2",
		want: []intel.Event{evA(intel.Attribute{
			Type: "ip-dst", Value: "192.0.2.2",
			FirstSeen: time.Date(2023, 11, 1, 10, 0, 0, 0, time.UTC),
			LastSeen:  time.Date(2023, 11, 2, 10, 0, 0, 0, time.UTC),
		})},
	}, {
		value: "192.0.2.3", // deleted attribute
	}, {
		value: "192.0.2.4",
		want: []intel.Event{evA(intel.Attribute{Type: "ip-dst", Value: "192.0.2.4", ToIDS: true, Object: intel.Object{
			Name: "ip-port", Relation: "ip", Members: []intel.ObjectMember{{Type: "ip-dst", Relation: "ip", Value: "192.0.2.4"}},
		}})},
	}, {
		value: "192.0.2.5", // attribute of a deleted object
	}, {
		value: "left", // text is not a composite type, so its value is not split
	}, {
		value: "LEFT|RIGHT",
		want:  []intel.Event{evA(intel.Attribute{Type: "text", Value: "left|right"})},
	}, {
		value: `c:\EVIL.exe`,
		want:  []intel.Event{evA(intel.Attribute{Type: "regkey|value", Value: `HKLM\Run|C:\evil.exe`})},
	}, {
		value: "same.example", // both halves equal: the attribute is returned once
		want:  []intel.Event{evA(intel.Attribute{Type: "domain|ip", Value: "SAME.example|same.example"})},
	}, {
		value: "8080", // a number where a string is expected
		want:  []intel.Event{evA(intel.Attribute{Type: "port", Value: "8080"})},
	}}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			got, err := s.Search(context.Background(), "", intel.Query{Value: tt.value})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, ignoreEvidence); diff != "" {
				t.Errorf("Search(%q) (-want +got):\n%s", tt.value, diff)
			}
		})
	}
}

func TestLoadEmptyManifest(t *testing.T) {
	s, err := feed.Load(writeFeed(t, map[string]string{"manifest.json": "{}\n"}))
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 0 {
		t.Errorf("Len() = %d, want 0", s.Len())
	}
	evs, err := s.Search(context.Background(), "", intel.Query{Value: "192.0.2.1"})
	if err != nil || evs != nil {
		t.Errorf("Search on an empty feed = %v, %v; want nil, nil", evs, err)
	}
}

// TestCIRCLFixtures loads two real CIRCL OSINT feed events (testdata/README.md).
func TestCIRCLFixtures(t *testing.T) {
	const fixtures = "testdata"
	files := map[string]string{ // event uuid -> fixture file
		"57c4445b-c548-4654-af0b-4be3950d210f": "misp_feed_event_circl_57c4445b.json",
		"5a0ac036-6fbc-4855-83af-422b950d210f": "misp_feed_event_circl_objects_5a0ac036.json",
	}
	dir := t.TempDir()
	manifest := map[string]any{}
	for uuid, name := range files {
		b, err := os.ReadFile(filepath.Join(fixtures, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, uuid+".json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		manifest[uuid] = map[string]any{"info": name}
	}
	b, err := json.Marshal(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := feed.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 2 {
		t.Errorf("Len() = %d, want 2", s.Len())
	}

	types := observableTypes()
	got, err := s.Search(context.Background(), "", intel.Query{Value: "0749BAE92CA336A02C83D126E04EC628", Types: types["md5"]})
	if err != nil {
		t.Fatal(err)
	}
	want := []intel.Event{{
		UUID:        "57c4445b-c548-4654-af0b-4be3950d210f",
		Info:        "Ransomware - Xorist",
		Date:        "2016-08-29",
		Timestamp:   time.Unix(1472541011, 0).UTC(),
		ThreatLevel: 3,
		Org:         "CIRCL",
		Tags: []string{
			"tlp:white",
			`circl:incident-classification="malware"`,
			`ms-caro-malware:malware-type="Ransom"`,
			`malware_classification:malware-category="Ransomware"`,
		},
		Attributes: []intel.Attribute{{
			Type: "md5", Category: "Payload delivery", Value: "0749bae92ca336a02c83d126e04ec628",
			ToIDS: true, Timestamp: time.Unix(1472480395, 0).UTC(), Comment: "Imported via the Freetext Import Tool",
		}},
	}}
	if diff := cmp.Diff(want, got, ignoreEvidence); diff != "" {
		t.Errorf("md5 (-want +got):\n%s", diff)
	}

	// An ip-dst inside an ip-port object of the second event.
	got, err = s.Search(context.Background(), "", intel.Query{Value: "64.183.173.170", Types: types["ip"]})
	if err != nil {
		t.Fatal(err)
	}
	wantHits := []hit{{"5a0ac036-6fbc-4855-83af-422b950d210f", 3, []string{"ip-dst=64.183.173.170"}}}
	if diff := cmp.Diff(wantHits, hits(got)); diff != "" {
		t.Errorf("object ip (-want +got):\n%s", diff)
	}
}
