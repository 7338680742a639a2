package mispjson_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/mispjson"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

// TestSightingsExactCounts: 100,000 sightings of the three types are summarised exactly,
// compact or pretty-printed, with the earliest and latest type-0 dates, the earliest
// expiration, and the first distinct sources in MISP's order.
func TestSightingsExactCounts(t *testing.T) {
	const n = 100000
	const base = 1700000000
	var list strings.Builder // written, not marshalled: this is slow enough under -race
	list.WriteString(`{"value":"198.51.100.7","Sighting":[`)
	var wantSources []string
	for i := range n {
		typ := []string{"0", "0", "1", "2", "0"}[i%5]
		date := base + i
		switch i {
		case 50000: // type 0: the earliest sighting, in the middle
			date = base - 1000
		case 10: // type 0: the latest
			date = base + 1000000
		case 99998: // type 2: the earliest expiration, last
			date = base - 5
		}
		src := "ORG" // without a source, the organisation reported it
		if i > 0 {
			list.WriteByte(',')
		}
		fmt.Fprintf(&list, `{"id":"%d","type":"%s","date_sighting":"%d",`, i+1, typ, date)
		if i%7 != 0 {
			src = fmt.Sprintf("sensor-%d", i%13)
			fmt.Fprintf(&list, `"source":"%s",`, src)
		}
		list.WriteString(`"Organisation":{"name":"ORG"}}`)
		if typ == "0" && len(wantSources) < intel.MaxSightingSources && !slices.Contains(wantSources, src) {
			wantSources = append(wantSources, src)
		}
	}
	list.WriteString(`]}`)
	compact := []byte(list.String())
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, compact, "", "\t"); err != nil {
		t.Fatal(err)
	}
	want := intel.Sightings{
		Seen: 60000, FalsePositive: 20000, Expiration: 20000,
		First:   time.Unix(base-1000, 0).UTC(),
		Last:    time.Unix(base+1000000, 0).UTC(),
		Sources: wantSources,
		Expires: time.Unix(base-5, 0).UTC(),
	}
	for name, raw := range map[string][]byte{"compact": compact, "pretty": pretty.Bytes()} {
		var a mispjson.Attribute
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, a.Intel().Sightings); diff != "" {
			t.Errorf("%s: sightings (-want +got):\n%s", name, diff)
		}
		if err := a.Sighting.Err(); err != nil {
			t.Errorf("%s: Err = %v", name, err)
		}
	}
}

// TestListCaps: an attribute keeps its first MaxTags tags, MaxWarnings warnings and
// MaxDecayScores decay scores, its event the first MaxTags tags, in MISP's order, however
// the skipped elements are spelled.
func TestListCaps(t *testing.T) {
	// Names and nested values full of the characters that end elements and lists, so that
	// cutting the list in the wrong place would show.
	tricky := []string{`a,b`, `c]d`, `e"],["f`, `g\h`, `i}j`, `k\"l`}
	var tags, eventTags, warnings, decay []string
	var wantTags, wantWarnings []string
	var wantDecay []intel.DecayScore
	for i := range 300 {
		name := fmt.Sprintf("tag-%03d %s", i, tricky[i%len(tricky)])
		raw, _ := json.Marshal(map[string]any{"name": name, "meta": map[string]any{"x": []any{",", "]", map[string]any{"}": "{"}}}})
		tags = append(tags, string(raw))
		eventTags = append(eventTags, string(raw))
		if i < mispjson.MaxTags {
			wantTags = append(wantTags, name)
		}
	}
	for i := range 100 {
		warnings = append(warnings, fmt.Sprintf(`{"warninglist_id":"%d","warninglist_name":"list %d, ]","value":"198.51.100.7"}`, i, i))
		if i < mispjson.MaxWarnings {
			wantWarnings = append(wantWarnings, fmt.Sprintf("list %d, ]", i))
		}
	}
	for i := range 50 {
		decay = append(decay, fmt.Sprintf(`{"score":%d,"decayed":false,"DecayingModel":{"id":"%d","name":"model %d"}}`, i, i, i))
		if i < mispjson.MaxDecayScores {
			wantDecay = append(wantDecay, intel.DecayScore{Model: fmt.Sprintf("model %d", i), Score: float64(i)})
		}
	}
	raw := `{"uuid":"u","type":"ip-dst","value":"198.51.100.7","Tag":[` + strings.Join(tags, ",") + `],"warnings":[` + strings.Join(warnings, ",") +
		`],"decay_score":[` + strings.Join(decay, ",") + `],"Event":{"uuid":"e","Tag":[` + strings.Join(eventTags, " ,\n ") + `]}}`
	var a mispjson.Attribute
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		t.Fatal(err)
	}
	got := a.Intel()
	if diff := cmp.Diff(wantTags, got.Tags); diff != "" {
		t.Errorf("attribute tags (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantTags, a.Event.Intel().Tags); diff != "" {
		t.Errorf("event tags (-want +got):\n%s", diff)
	}
	var gotWarnings []string
	for _, w := range got.Warnings {
		gotWarnings = append(gotWarnings, w.List)
	}
	if diff := cmp.Diff(wantWarnings, gotWarnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantDecay, got.Decay); diff != "" {
		t.Errorf("decay scores (-want +got):\n%s", diff)
	}
	for _, err := range []error{a.Tag.Err(), a.Event.Tag.Err(), a.Warnings.Err(), a.DecayScore.Err()} {
		if err != nil {
			t.Errorf("Err = %v", err)
		}
	}
}

// TestListKinds: lists and elements of the wrong kind read as empty, are remembered for the
// strict readers (Event.Check), and never stop the rest of the attribute from being read.
// Elements past a cap are not read at all, so their kind does not matter.
func TestListKinds(t *testing.T) {
	goodTags := strings.Repeat(`{"name":"t"},`, mispjson.MaxTags)
	tests := []struct {
		name      string
		field     string // an attribute member, before "value"
		tags      []string
		sightings intel.Sightings
		bad       string // what Check says; "" for no error
	}{
		{name: "no lists"},
		{name: "null lists", field: `"Tag":null,"Sighting":null,"warnings":null,"decay_score":null`},
		{name: "tags not a list", field: `"Tag":{}`, bad: "want a list, got {}"},
		{name: "a tag not an object", field: `"Tag":[1,{"name":"a"}]`, tags: []string{"a"}, bad: "mispjson.Tag"},
		{name: "a bad tag past the cap", field: `"Tag":[` + goodTags + `1]`, tags: slices.Repeat([]string{"t"}, mispjson.MaxTags)},
		{name: "a tag name of the wrong kind", field: `"Tag":[{"name":["a"]},{"name":"b"}]`, tags: []string{"b"}, bad: `want a string or a number, got ["a"]`},
		{name: "sightings not a list", field: `"Sighting":"many"`, bad: `want a list, got "many"`},
		{name: "sightings not objects", field: `"Sighting":[1,null,{"type":"1"}]`, sightings: intel.Sightings{Seen: 2, FalsePositive: 1}, bad: "want a sighting object, got 1"},
		{name: "a null sighting", field: `"Sighting":[null]`, sightings: intel.Sightings{Seen: 1}},
		{
			name: "a sighting type of the wrong kind", field: `"Sighting":[{"type":{}},{"type":"2","date_sighting":"1700000000"}]`,
			sightings: intel.Sightings{Seen: 1, Expiration: 1, Expires: time.Unix(1700000000, 0).UTC()}, bad: "want a string or a number, got {}",
		},
		{
			name: "a sighting organisation of the wrong kind", field: `"Sighting":[{"type":"1","Organisation":[]},{"source":"s"}]`,
			sightings: intel.Sightings{Seen: 1, FalsePositive: 1, Sources: []string{"s"}}, bad: "Org",
		},
		{name: "warnings not a list", field: `"warnings":7`, bad: "want a list, got 7"},
		{name: "a warning name of the wrong kind", field: `"warnings":[{"warninglist_name":{}}]`, bad: "want a string or a number, got {}"},
		{name: "decay scores not a list", field: `"decay_score":{"score":1}`, bad: `want a list, got {"score":1}`},
		{name: "a decay flag of the wrong kind", field: `"decay_score":[{"score":1,"decayed":"maybe"}]`, bad: `want a boolean, got "maybe"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attr := `{"type":"md5",` + tt.field
			if tt.field != "" {
				attr += ","
			}
			attr += `"value":"d41d8cd98f00b204e9800998ecf8427e"}`
			var ev mispjson.Event
			if err := json.Unmarshal([]byte(`{"uuid":"u","Attribute":[`+attr+`]}`), &ev); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			a := ev.Attribute[0].Intel()
			if a.Value != "d41d8cd98f00b204e9800998ecf8427e" {
				t.Errorf("value %q: the rest of the attribute was not read", a.Value)
			}
			if diff := cmp.Diff(tt.tags, a.Tags); diff != "" {
				t.Errorf("tags (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.sightings, a.Sightings); diff != "" {
				t.Errorf("sightings (-want +got):\n%s", diff)
			}
			err := ev.Check()
			if (err != nil) != (tt.bad != "") || err != nil && !strings.Contains(err.Error(), tt.bad) {
				t.Errorf("Check = %v, want an error saying %q", err, tt.bad)
			}
		})
	}
}

// TestReadList: the kept elements are the first ones, cut between elements whatever the
// strings and nested values hold, and the caller's bytes are left as they were.
func TestReadList(t *testing.T) {
	tests := []struct {
		list  string
		limit int
		want  []string
		bad   bool
	}{
		{`[]`, 2, nil, false},
		{`null`, 2, nil, false},
		{` [ 1 , 2 , 3 ] `, 2, []string{`1`, `2`}, false},
		{`["a,b","c]","d"]`, 2, []string{`"a,b"`, `"c]"`}, false},
		{`["\"],[",{"x":[1,2,{"y":"]}"}]},3]`, 2, []string{`"\"],["`, `{"x":[1,2,{"y":"]}"}]}`}, false},
		{`[[1,[2]],[3]]`, 1, []string{`[1,[2]]`}, false},
		{`[1,2]`, 5, []string{`1`, `2`}, false},
		{`[1,2]`, 0, nil, false},
		{`{"a":1}`, 2, nil, true},
		{`"x"`, 2, nil, true},
	}
	for _, tt := range tests {
		b := []byte(tt.list)
		got, err := mispjson.ReadList[json.RawMessage](b, tt.limit)
		var texts []string
		for _, r := range got {
			texts = append(texts, string(r))
		}
		if diff := cmp.Diff(tt.want, texts); diff != "" || (err != nil) != tt.bad {
			t.Errorf("ReadList(%s, %d) = %q, %v; want %q, error %v", tt.list, tt.limit, texts, err, tt.want, tt.bad)
		}
		if string(b) != tt.list {
			t.Errorf("ReadList changed its input to %s", b)
		}
	}
	// Elements that do not fit are zero values in their place, with the error.
	got, err := mispjson.ReadList[mispjson.Tag]([]byte(`[{"name":"a"},"b",{"name":"c"}]`), 10)
	if len(got) != 3 || got[0].Name.Text() != "a" || got[1].Name.Text() != "" || got[2].Name.Text() != "c" || err == nil {
		t.Errorf("got %+v, %v; want a, an empty tag, c and an error", got, err)
	}
}

// TestDecodeCostFollowsWhatIsKept: an attribute whose every list holds 300,000 empty
// objects (a 1 MiB answer that compresses to a few KB) allocates about what one with short
// lists does. Decoding them element by element allocated over a GiB.
func TestDecodeCostFollowsWhatIsKept(t *testing.T) {
	empties := "[" + strings.Repeat("{},", 300000) + "{}]"
	raw := []byte(`{"type":"ip-dst","value":"198.51.100.7","Tag":` + empties + `,"Sighting":` + empties + `,"warnings":` + empties +
		`,"decay_score":` + empties + `,"Event":{"uuid":"e","Tag":` + empties + `,"Attribute":` + empties + `,"Object":` + empties + `}}`)
	var a mispjson.Attribute
	alloc := testkit.AllocatedDuring(func() {
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("%d KiB of JSON allocated %d KiB", len(raw)>>10, alloc>>10)
	if got := a.Intel().Sightings.Seen; got != 300001 {
		t.Errorf("%d sightings, want 300001", got)
	}
	if n := len(a.Tag.All()); n != mispjson.MaxTags {
		t.Errorf("%d tags kept, want %d", n, mispjson.MaxTags)
	}
	if alloc > 1<<20 {
		t.Errorf("decoding allocated %d KiB, want under 1 MiB", alloc>>10)
	}
}

// FuzzLists: for any JSON list, ReadList keeps exactly the first elements encoding/json
// finds, and Sightings counts every element by the type encoding/json reads in it.
func FuzzLists(f *testing.F) {
	for _, seed := range []string{
		`[]`, `[1, "a,b", {"x":"]"}, [2, [3]], null]`, `["\"],[", {"a":{"b":[{}]}}, "\\"]`,
		`[{"type":"0"},{"type":"1"},{"type":"2"},{"type":" 0 "},{},null,"x",{"type":{}},{"type":3}]`,
		` [ {"type" : "2", "date_sighting" : "1700000000"} , 7 ] `,
	} {
		f.Add([]byte(seed), 2)
	}
	f.Fuzz(func(t *testing.T, list []byte, limit int) {
		var all []json.RawMessage
		if json.Unmarshal(list, &all) != nil {
			return // not a JSON list: encoding/json never hands one to UnmarshalJSON
		}
		limit = max(0, min(limit, len(all)+2))
		got, err := mispjson.ReadList[json.RawMessage](list, limit)
		if err != nil {
			t.Fatalf("ReadList: %v", err)
		}
		want := all[:min(limit, len(all))]
		if len(got) != len(want) {
			t.Fatalf("ReadList(%d) kept %d elements of %d", limit, len(got), len(all))
		}
		for i := range got {
			if !bytes.Equal(compact(t, got[i]), compact(t, want[i])) {
				t.Errorf("element %d = %s, want %s", i, got[i], want[i])
			}
		}

		var counts [3]int
		for _, raw := range all {
			var one mispjson.Sighting
			_ = json.Unmarshal(raw, &one) // a field or element of the wrong kind reads as empty
			switch strings.TrimSpace(one.Type.Text()) {
			case "0", "":
				counts[0]++
			case "1":
				counts[1]++
			case "2":
				counts[2]++
			}
		}
		var a mispjson.Attribute
		if err := json.Unmarshal([]byte(`{"Sighting":`+string(list)+`}`), &a); err != nil {
			t.Fatal(err)
		}
		s := a.Intel().Sightings
		if got := [3]int{s.Seen, s.FalsePositive, s.Expiration}; got != counts {
			t.Errorf("sightings by type %v, want %v", got, counts)
		}
	})
}

func compact(t *testing.T, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
