package misp_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/mispjson"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

// maxDecodeAlloc bounds what one lookup or check of these tests may allocate: a few times
// what reading 2 MiB costs. Before lists were capped, 900 KiB of [{},{},...] allocated
// 166 MiB as tags, 307 MiB as sightings and 1.5 GiB as the event's attributes.
const maxDecodeAlloc = 32 << 20

// TestSearchDecodeAmplification: an answer of tiny JSON values (a few KB gzipped) that
// would decode into huge structures costs about what the caps say one lookup reads, and the
// lookup still answers, with exact sighting counts.
func TestSearchDecodeAmplification(t *testing.T) {
	const n = (900 << 10) / 3 // empty objects in 900 KiB, under MISP_MAX_ATTRIBUTE_BYTES
	empties := "[" + strings.Repeat(`{},`, n-1) + `{}]`
	attr := func(members string) string {
		return `{"type":"ip-dst","value":"198.51.100.7","Event":{"uuid":"542e4c9c-cadc-4f8f-bb11-6d13950d210b"` + members
	}
	tests := []struct {
		name, attributes string
		seen             int // sightings of the first attribute
	}{
		{"sightings", attr(`},"Sighting":`+empties+`}`) + "," + attr(`},"Sighting":`+empties+`}`), n},
		{"tags", attr(`},"Tag":` + empties + `}`), 0},
		{"event tags", attr(`,"Tag":` + empties + `}}`), 0},
		{"warnings", attr(`},"warnings":` + empties + `}`), 0},
		{"decay scores", attr(`},"decay_score":` + empties + `}`), 0},
		{"event attributes", attr(`,"Attribute":` + empties + `}}`), 0},
		{"event objects", attr(`,"Object":` + empties + `}}`), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"response":{"Attribute":[` + tt.attributes + `]}}`
			srv := gzipMISP(t, testkit.GzipBomb(t, body, nil, 0, ""))
			c := newClient(t, srv.URL, func(cfg *misp.Config) { cfg.MaxAnswerBytes = 2 << 20 })
			var events []intel.Event
			var err error
			alloc := testkit.AllocatedDuring(func() { events, err = c.Search(context.Background(), testKey, q1) })
			t.Logf("%d KiB of JSON: allocated %d MiB", len(body)>>10, alloc>>20)
			if err != nil || len(events) != 1 {
				t.Fatalf("%d events, err %v; want the event", len(events), err)
			}
			if got := events[0].Attributes[0].Sightings.Seen; got != tt.seen {
				t.Errorf("%d sightings, want %d", got, tt.seen)
			}
			if alloc > maxDecodeAlloc {
				t.Errorf("one lookup capped at 2 MiB allocated %d MiB", alloc>>20)
			}
		})
	}
}

// TestSearchKeepsTheFirstTags: past MaxTags, an event's and an attribute's tags are cut to
// the first ones, in MISP's order.
func TestSearchKeepsTheFirstTags(t *testing.T) {
	var tags, want []string
	for i := range mispjson.MaxTags + 50 {
		tags = append(tags, fmt.Sprintf(`{"name":"tag-%03d"}`, i))
		if i < mispjson.MaxTags {
			want = append(want, fmt.Sprintf("tag-%03d", i))
		}
	}
	list := "[" + strings.Join(tags, ",") + "]"
	body := `{"response":{"Attribute":[{"type":"ip-dst","value":"198.51.100.7","Tag":` + list +
		`,"Event":{"uuid":"542e4c9c-cadc-4f8f-bb11-6d13950d210b","Tag":` + list + `}}]}}`
	srv := gzipMISP(t, testkit.GzipBomb(t, body, nil, 0, ""))
	events, err := newClient(t, srv.URL).Search(context.Background(), testKey, q1)
	if err != nil || len(events) != 1 {
		t.Fatalf("%d events, err %v", len(events), err)
	}
	if diff := cmp.Diff(want, events[0].Tags); diff != "" {
		t.Errorf("event tags (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, events[0].Attributes[0].Tags); diff != "" {
		t.Errorf("attribute tags (-want +got):\n%s", diff)
	}
}

// TestCheckWarninglistsDecodeAmplification: the check reads up to 1 MiB once per request;
// hits that decode into huge lists, and values nobody asked about, cost nothing to hold.
func TestCheckWarninglistsDecodeAmplification(t *testing.T) {
	var unasked strings.Builder
	for i := range 60000 {
		fmt.Fprintf(&unasked, `"v%d":[{}],`, i)
	}
	tests := []struct {
		name, body string
		hits       int
	}{
		{"hits of empty objects", `{"198.51.100.7":[` + strings.Repeat(`{},`, (1000<<10)/3) + `{}]}`, 0},
		{"named hits", `{"198.51.100.7":[` + strings.Repeat(`{"name":"A"},`, (1000<<10)/13) + `{}]}`, 64},
		{"values not asked about", `{` + unasked.String() + `"198.51.100.7":[{"id":"1"}]}`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := gzipMISP(t, testkit.GzipBomb(t, tt.body, nil, 0, ""))
			c := newClient(t, srv.URL)
			var got map[string][]intel.WarninglistHit
			var err error
			alloc := testkit.AllocatedDuring(func() { got, err = c.CheckWarninglists(context.Background(), testKey, []string{"198.51.100.7"}) })
			t.Logf("%d KiB of JSON: allocated %d MiB", len(tt.body)>>10, alloc>>20)
			if err != nil || len(got) > 1 || len(got["198.51.100.7"]) != tt.hits {
				t.Errorf("got %d values, %d hits, err %v; want only the value asked, with %d hits", len(got), len(got["198.51.100.7"]), err, tt.hits)
			}
			if alloc > maxDecodeAlloc {
				t.Errorf("a 1 MiB warninglist answer allocated %d MiB", alloc>>20)
			}
		})
	}
}

// TestCheckWarninglistsKeepsTheFirstHits: past 64 hits, a value keeps the first ones, in
// MISP's order; a value repeated in the answer keeps its first hits.
func TestCheckWarninglistsKeepsTheFirstHits(t *testing.T) {
	var hits []string
	var want []intel.WarninglistHit
	for i := range 100 {
		hits = append(hits, fmt.Sprintf(`{"id":"%d","name":"list %d","matched":"8.8.8.8"}`, i, i))
		if i < 64 {
			want = append(want, intel.WarninglistHit{List: fmt.Sprintf("list %d", i), Match: "8.8.8.8"})
		}
	}
	srv := newEvidenceServer(t, 200, `{"8.8.8.8":[`+strings.Join(hits, ",")+`],"8.8.8.8":[{"name":"later"}]}`)
	got, err := evidenceClient(t, srv.URL).CheckWarninglists(context.Background(), testKey, []string{"8.8.8.8"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got["8.8.8.8"]); diff != "" {
		t.Errorf("hits (-want +got):\n%s", diff)
	}
}
