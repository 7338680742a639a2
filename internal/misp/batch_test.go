package misp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
)

// batchEvent is a feed event holding the given attributes (type, value, to_ids), so that
// tests can say which values sit in which events.
func batchEvent(uuid string, attrs ...[3]string) []byte {
	var list []string
	for i, a := range attrs {
		list = append(list, fmt.Sprintf(`{"uuid":"%s-%04d-4000-8000-000000000000","type":%q,"category":"Network activity","value":%q,"to_ids":%s,"timestamp":"1700000000"}`,
			uuid[:8], i, a[0], a[1], a[2]))
	}
	return []byte(`{"Event":{"uuid":"` + uuid + `","info":"event ` + uuid[:8] + `","date":"2024-01-01","timestamp":"1700000000","threat_level_id":"1",
	 "Orgc":{"name":"ORGNAME","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d210f"},"Attribute":[` + strings.Join(list, ",") + `]}}`)
}

var (
	ipTypes     = []string{"ip-src", "ip-dst", "ip-src|port", "ip-dst|port", "domain|ip"}
	domainTypes = []string{"domain", "domain|ip", "hostname", "hostname|port"}
	md5Types    = []string{"md5", "filename|md5", "malware-sample"}
	nameTypes   = []string{"filename", "filename|md5", "malware-sample"}
)

// batchEvents: values shared between events, composites of every kind, letter case and
// IPv6 spellings, and a value present in an attribute of a type its observable does not ask.
func batchEvents() [][]byte {
	return [][]byte{
		batchEvent("11111111-aaaa-4aaa-8aaa-000000000001",
			[3]string{"ip-dst", "198.51.100.7", "true"},
			[3]string{"domain|ip", "Evil.Example|203.0.113.5", "true"},
			[3]string{"filename|md5", "dropper.exe|d41d8cd98f00b204e9800998ecf8427f", "true"},
			[3]string{"ip-src", "2001:db8::1", "false"},
			[3]string{"url", "http://evil.example/x", "true"},
		),
		batchEvent("22222222-bbbb-4bbb-8bbb-000000000002",
			[3]string{"domain", "evil.example", "true"},
			[3]string{"malware-sample", "stage2.bin|0cc175b9c0f1b6a831c399e269772661", "true"},
			[3]string{"ip-dst|port", "198.51.100.7|443", "true"},
			[3]string{"hostname", "198.51.100.7", "false"}, // a type no ip observable asks for
		),
		batchEvent("33333333-cccc-4ccc-8ccc-000000000003",
			[3]string{"domain", "other.example", "true"},
			[3]string{"ip-dst", "203.0.113.5", "false"},
		),
	}
}

func batchQueries() []intel.Query {
	return []intel.Query{
		{Value: "198.51.100.7", Types: ipTypes, Limit: 10},
		{Value: "EVIL.example", Types: domainTypes, Limit: 10},
		{Value: "evil.example", Types: domainTypes, Limit: 1}, // the same value, another cap
		{Value: "203.0.113.5", Types: ipTypes, Limit: 10},
		{Value: "d41d8cd98f00b204e9800998ecf8427f", Types: md5Types, Limit: 10},
		{Value: "dropper.exe", Types: nameTypes, Limit: 10},
		{Value: "0cc175b9c0f1b6a831c399e269772661", Types: md5Types, Limit: 10},
		{Value: "2001:0DB8:0:0::1", Types: ipTypes, Limit: 10},
		{Value: "443", Types: ipTypes, Limit: 10}, // a port: the half of ip-dst|port, which MISP matches
		{Value: "nothing.example", Types: domainTypes, Limit: 10},
		{Value: "other.example", Types: nil, Limit: 10}, // every type
	}
}

// TestLookupIsOneSearchAnsweringEachValueAsAlone: one restSearch for every query, and each
// query's answer is the one it gets asked alone.
func TestLookupIsOneSearchAnsweringEachValueAsAlone(t *testing.T) {
	srv := misptest.New(t, testKey, batchEvents()...)
	c := newClient(t, srv.URL)
	qs := batchQueries()
	got := c.Lookup(context.Background(), testKey, qs)
	if n := len(srv.Requests()); n != 1 {
		t.Fatalf("Lookup of %d queries made %d requests, want 1", len(qs), n)
	}
	if vs := misptest.SearchValues(&srv.Requests()[0]); len(vs) != len(qs)-1 {
		t.Errorf("the batch asked about %q, want each distinct value once", vs)
	}
	for i, q := range qs {
		events, err := c.Search(context.Background(), testKey, q)
		if err != nil || got[i].Err != nil {
			t.Fatalf("%s: alone %v, in the batch %v", q.Value, err, got[i].Err)
		}
		if diff := cmp.Diff(events, got[i].Events); diff != "" {
			t.Errorf("%s: the batch's answer differs from the answer alone (-alone +batch):\n%s", q.Value, diff)
		}
	}
	// A few answers spelled out, so that "the same as alone" is not "both empty".
	count := func(i int) (events, attrs int) {
		for _, e := range got[i].Events {
			attrs += len(e.Attributes)
		}
		return len(got[i].Events), attrs
	}
	for i, want := range map[int][2]int{0: {2, 2}, 1: {2, 2}, 2: {1, 1}, 3: {2, 2}, 6: {1, 1}, 7: {1, 1}, 8: {1, 1}, 9: {0, 0}, 10: {1, 1}} {
		if e, a := count(i); e != want[0] || a != want[1] {
			t.Errorf("%s: %d events, %d attributes; want %v", qs[i].Value, e, a, want)
		}
	}
}

// TestLookupBatchesByWarnings: queries with Warnings are searched together, with
// includeWarninglistHits, apart from the others, and each gets the answer it gets alone:
// MISP's hits on the IDS attributes of the first, none on the second.
func TestLookupBatchesByWarnings(t *testing.T) {
	srv := misptest.New(t, testKey, batchEvents()...)
	srv.Warninglist("List of known IPv4 addresses", "198.51.100.7")
	srv.Warninglist("List of known domains", "evil.example")
	c := newClient(t, srv.URL)
	qs := []intel.Query{
		{Value: "198.51.100.7", Types: ipTypes, Limit: 10, Warnings: true},
		{Value: "evil.example", Types: domainTypes, Limit: 10},
		{Value: "evil.example", Types: domainTypes, Limit: 10, Warnings: true},
		{Value: "203.0.113.5", Types: ipTypes, Limit: 10},
	}
	got := c.Lookup(context.Background(), testKey, qs)
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2 (one search per Warnings)", len(reqs))
	}
	asked := map[bool][]string{}
	for i := range reqs {
		var body struct {
			IncludeWarninglistHits int `json:"includeWarninglistHits"`
		}
		if err := json.Unmarshal(reqs[i].Body, &body); err != nil {
			t.Fatal(err)
		}
		vs := misptest.SearchValues(&reqs[i])
		slices.Sort(vs)
		asked[body.IncludeWarninglistHits == 1] = vs
	}
	want := map[bool][]string{true: {"198.51.100.7", "evil.example"}, false: {"203.0.113.5", "evil.example"}}
	if diff := cmp.Diff(want, asked); diff != "" {
		t.Errorf("values by includeWarninglistHits (-want +got):\n%s", diff)
	}
	warned := func(r intel.Result) (n int) {
		for _, e := range r.Events {
			for _, a := range e.Attributes {
				n += len(a.Warnings)
			}
		}
		return n
	}
	for i, q := range qs {
		alone, err := c.Search(context.Background(), testKey, q)
		if err != nil || got[i].Err != nil {
			t.Fatalf("%s: alone %v, in the batch %v", q.Value, err, got[i].Err)
		}
		if diff := cmp.Diff(alone, got[i].Events); diff != "" {
			t.Errorf("%s (Warnings %v): the batch's answer differs from the answer alone (-alone +batch):\n%s", q.Value, q.Warnings, diff)
		}
		if n := warned(got[i]); (n > 0) != q.Warnings {
			t.Errorf("%s (Warnings %v): %d warninglist hits", q.Value, q.Warnings, n)
		}
	}
}

// TestLookupHotValueDoesNotCrowdOutTheOthers: a value in more attributes than the batch's
// pages hold; the value found on a later page is asked again alone and found.
func TestLookupHotValueDoesNotCrowdOutTheOthers(t *testing.T) {
	var events [][]byte
	for i := range 12 {
		events = append(events, batchEvent(fmt.Sprintf("%08d-dddd-4ddd-8ddd-%012d", i, i), [3]string{"domain", "hot.example", "true"}))
	}
	events = append(events, batchEvent("99999999-eeee-4eee-8eee-000000000009", [3]string{"domain", "late.example", "true"}))
	srv := misptest.New(t, testKey, events...)
	c := newClient(t, srv.URL, func(cfg *misp.Config) { cfg.PageSize, cfg.MaxPages = 3, 2 })
	qs := []intel.Query{{Value: "hot.example", Types: domainTypes, Limit: 100}, {Value: "late.example", Types: domainTypes, Limit: 100}}
	got := c.Lookup(context.Background(), testKey, qs)
	if got[1].Err != nil || len(got[1].Events) != 1 {
		t.Errorf("late.example: %d events, %v; want its one event", len(got[1].Events), got[1].Err)
	}
	alone, _ := c.Search(context.Background(), testKey, qs[0])
	if diff := cmp.Diff(alone, got[0].Events); diff != "" {
		t.Errorf("hot.example: the batch's answer differs from the answer alone (-alone +batch):\n%s", diff)
	}
	// Two pages of the batch, then each value alone (two pages each: the caps are per lookup).
	var batches, single int
	for _, r := range srv.Requests()[:6] {
		if len(misptest.SearchValues(&r)) == 2 {
			batches++
		} else {
			single++
		}
	}
	if batches != 2 || single != 4 {
		t.Errorf("%d batch pages and %d single pages, want 2 and 4", batches, single)
	}
}

// TestLookupSplitsWhatIsOverTheCaps: a batch whose answer is over MISP_MAX_ANSWER_BYTES is
// split, and each value, under the cap alone, is answered.
func TestLookupSplitsWhatIsOverTheCaps(t *testing.T) {
	var events [][]byte
	var qs []intel.Query
	for i := range 8 {
		v := fmt.Sprintf("v%d.example", i)
		events = append(events, batchEvent(fmt.Sprintf("%08d-ffff-4fff-8fff-%012d", i, i), [3]string{"domain", v, "true"}))
		qs = append(qs, intel.Query{Value: v, Types: domainTypes, Limit: 10})
	}
	srv := misptest.New(t, testKey, events...)
	// One value's answer is about 1.3 KB: 3 KB holds two of them, not eight.
	c := newClient(t, srv.URL, func(cfg *misp.Config) { cfg.MaxAnswerBytes = 3 << 10 })
	for i, r := range c.Lookup(context.Background(), testKey, qs) {
		if r.Err != nil || len(r.Events) != 1 {
			t.Errorf("%s: %d events, %v; want its event", qs[i].Value, len(r.Events), r.Err)
		}
	}
	if n := len(srv.Requests()); n < 3 || n > 15 {
		t.Errorf("%d requests, want the batch and its halves (at most 15 for 8 values)", n)
	}
}

// TestLookupAsksAloneWhatItCannotMatch: a value outside ASCII is asked alone (MISP's
// collation decides what matches it), an unsafe value is never sent, and the others are
// answered in one batch.
func TestLookupAsksAloneWhatItCannotMatch(t *testing.T) {
	srv := misptest.New(t, testKey, batchEvents()...)
	c := newClient(t, srv.URL)
	qs := []intel.Query{
		{Value: "198.51.100.7", Types: ipTypes, Limit: 10},
		{Value: "évil.example", Types: domainTypes, Limit: 10},
		{Value: "!evil.example", Types: domainTypes, Limit: 10},
		{Value: "evil.example", Types: domainTypes, Limit: 10},
	}
	got := c.Lookup(context.Background(), testKey, qs)
	if got[2].Err == nil {
		t.Error("an unsafe value was answered")
	}
	if len(got[0].Events) != 2 || len(got[3].Events) != 2 || got[1].Err != nil {
		t.Errorf("answers %+v", got)
	}
	var sent [][]string
	for _, r := range srv.Requests() {
		sent = append(sent, misptest.SearchValues(&r))
	}
	want := [][]string{{"198.51.100.7", "evil.example"}, {"évil.example"}}
	if diff := cmp.Diff(want, sent, cmpSorted); diff != "" {
		t.Errorf("values sent (-want +got):\n%s", diff)
	}
}

// TestLookupAsksAloneWhenMISPMatchedOtherwise: an attribute whose value is none of the batch's
// (MISP's collation matched it, e.g. without accents) makes each query be asked alone, so no
// query loses what MISP gives it alone.
func TestLookupAsksAloneWhenMISPMatchedOtherwise(t *testing.T) {
	srv := misptest.New(t, testKey, batchEvents()...)
	srv.When(func(r *misptest.Request) bool { return len(misptest.SearchValues(r)) > 1 }, misptest.Raw(200, "application/json",
		`{"response":{"Attribute":[{"type":"domain","value":"évil.example","Event":{"uuid":"44444444-0000-4000-8000-000000000004","threat_level_id":"1"}}]}}`))
	c := newClient(t, srv.URL)
	qs := []intel.Query{{Value: "198.51.100.7", Types: ipTypes, Limit: 10}, {Value: "evil.example", Types: domainTypes, Limit: 10}}
	got := c.Lookup(context.Background(), testKey, qs)
	if len(got[0].Events) != 2 || len(got[1].Events) != 2 {
		t.Errorf("answers %+v, want each value's own", got)
	}
	if n := len(srv.Requests()); n != 3 {
		t.Errorf("%d requests, want the batch and each value alone", n)
	}
}

// cmpSorted compares lists of lists whatever their order: requests asked alone run
// concurrently.
var cmpSorted = cmp.Transformer("sorted", func(in [][]string) map[string]bool {
	out := map[string]bool{}
	for _, l := range in {
		out[strings.Join(l, "\x00")] = true
	}
	return out
})
