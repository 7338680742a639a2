package tiles

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// now is the tests' clock: Monday 7 December 2026, 14:30 UTC.
var now = time.Date(2026, 12, 7, 14, 30, 0, 0, time.UTC)

type attr struct {
	ts   time.Time
	ids  bool
	typ  string
	seen []time.Time // type 0 sightings
}

// memSource is a Source over events and attributes in memory; calls counts its calls.
type memSource struct {
	events []EventMeta
	attrs  []attr
	calls  atomic.Int64
	lists  atomic.Int64 // calls of Events
	err    error
}

func (m *memSource) CountEvents(_ context.Context, _ string, w Window) (int, error) {
	m.calls.Add(1)
	n := 0
	for _, e := range m.events {
		if w.Contains(e.Timestamp) {
			n++
		}
	}
	return n, m.err
}

func (m *memSource) CountAttributes(_ context.Context, _ string, f AttributeFilter) (int, error) {
	m.calls.Add(1)
	n := 0
	for _, a := range m.attrs {
		if f.Window.Contains(a.ts) && (!f.IDSOnly || a.ids) && (f.Types == nil || slices.Contains(f.Types, a.typ)) {
			n++
		}
	}
	return n, m.err
}

func (m *memSource) CountSightings(_ context.Context, _ string, w Window) (int, error) {
	m.calls.Add(1)
	n := 0
	for _, a := range m.attrs {
		for _, s := range a.seen {
			if w.Contains(s) {
				n++
			}
		}
	}
	return n, m.err
}

func (m *memSource) Events(_ context.Context, _ string, w Window) ([]EventMeta, error) {
	m.calls.Add(1)
	m.lists.Add(1)
	var out []EventMeta
	for _, e := range m.events {
		if w.Contains(e.Timestamp) {
			out = append(out, e)
		}
	}
	return out, m.err
}

func ago(d time.Duration) time.Time { return now.Add(-d) }

const day = 24 * time.Hour

// sample: events at known distances from now, one per threat level and period.
func sample() *memSource {
	return &memSource{
		events: []EventMeta{
			{
				UUID: "aaaaaaaa-0000-4000-8000-000000000001", Info: "APT | phishing [x]", Org: "CIRCL", Date: "2026-12-07", Timestamp: ago(30 * time.Minute), ThreatLevel: 1, AttributeCount: 12,
				Tags: []string{`misp-galaxy:threat-actor="Sofacy"`, "tlp:amber"},
			},
			{UUID: "bbbbbbbb-0000-4000-8000-000000000002", Info: "Botnet C2", Org: "CERT.be", Date: "2026-12-07", Timestamp: ago(3 * time.Hour), ThreatLevel: 2, AttributeCount: 3, Tags: []string{"tlp:amber"}},
			{UUID: "cccccccc-0000-4000-8000-000000000003", Info: "Spam", Org: "CIRCL", Date: "2026-12-05", Timestamp: ago(2 * day), ThreatLevel: 3, Tags: []string{`misp-galaxy:malware="Emotet"`, "tlp:amber"}},
			{UUID: "dddddddd-0000-4000-8000-000000000004", Info: "Old", Org: "CIRCL", Date: "2026-11-27", Timestamp: ago(10 * day), ThreatLevel: 4},
			{UUID: "eeeeeeee-0000-4000-8000-000000000005", Info: "Older high", Org: "CIRCL", Date: "2026-10-28", Timestamp: ago(40 * day), ThreatLevel: 1, AttributeCount: 1},
			{UUID: "ffffffff-0000-4000-8000-000000000006", Info: "Oldest", Org: "CIRCL", Date: "2026-09-23", Timestamp: ago(75 * day), ThreatLevel: 0},
		},
		attrs: []attr{
			{ts: ago(time.Hour), ids: true, typ: "ip-dst", seen: []time.Time{ago(time.Hour), ago(2 * day)}},
			{ts: ago(time.Hour), ids: true, typ: "md5"},
			{ts: ago(time.Hour), ids: false, typ: "domain"},
			{ts: ago(3 * day), ids: true, typ: "url", seen: []time.Time{ago(20 * day)}},
			{ts: ago(3 * day), ids: true, typ: "email-src"},
			{ts: ago(3 * day), ids: true, typ: "yara"},
			{ts: ago(50 * day), ids: true, typ: "filename|sha256"},
		},
	}
}

func TestSpans(t *testing.T) {
	tests := []struct {
		p          Period
		from, to   string
		prev       string // the previous window's start
		buckets    int
		bucketSize time.Duration
	}{
		{Last24Hours, "2026-12-06T15:00:00Z", "2026-12-07T15:00:00Z", "2026-12-05T15:00:00Z", 24, time.Hour},
		{Last7Days, "2026-12-01T00:00:00Z", "2026-12-08T00:00:00Z", "2026-11-24T00:00:00Z", 7, day},
		{Last30Days, "2026-11-08T00:00:00Z", "2026-12-08T00:00:00Z", "2026-10-09T00:00:00Z", 30, day},
		{Last60Days, "2026-10-09T00:00:00Z", "2026-12-08T00:00:00Z", "2026-08-10T00:00:00Z", 60, day},
		{Last90Days, "2026-09-09T00:00:00Z", "2026-12-08T00:00:00Z", "2026-06-11T00:00:00Z", 90, day},
	}
	for _, tt := range tests {
		t.Run(string(tt.p), func(t *testing.T) {
			sp, err := spanOf(tt.p, now)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{iso(sp.cur.From), iso(sp.cur.To), iso(sp.prev.From), iso(sp.prev.To)}
			want := []string{tt.from, tt.to, tt.prev, tt.from}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("windows (-want +got):\n%s", diff)
			}
			if sp.nBuckets != tt.buckets || sp.bucket != tt.bucketSize {
				t.Errorf("%d buckets of %s, want %d of %s", sp.nBuckets, sp.bucket, tt.buckets, tt.bucketSize)
			}
		})
	}
	// On a bucket's boundary, the window ends there.
	sp, err := spanOf(Last24Hours, time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC))
	if err != nil || iso(sp.cur.To) != "2026-12-07T14:00:00Z" {
		t.Errorf("at 14:00 the window ends at %s (%v), want 14:00", iso(sp.cur.To), err)
	}
}

func data(t *testing.T, src Source, tile string, p Period) *Data {
	t.Helper()
	d, err := (*Board)(nil).Data(context.Background(), Request{Tenant: "t", Key: "k", Source: src, UI: "https://misp.example/", Tile: tile, Period: p, Now: now})
	if err != nil {
		t.Fatalf("%s %s: %v", tile, p, err)
	}
	return d
}

func TestSummary(t *testing.T) {
	// events, attributes, IDS attributes, sightings: this period, the one before.
	tests := []struct {
		p          Period
		cur, prev  [4]int
		firstLabel string
	}{
		{Last24Hours, [4]int{2, 3, 2, 1}, [4]int{0, 0, 0, 0}, ""},
		{Last7Days, [4]int{3, 6, 5, 2}, [4]int{1, 0, 0, 0}, ""},
		{Last30Days, [4]int{4, 6, 5, 3}, [4]int{1, 1, 1, 0}, ""},
		{Last60Days, [4]int{5, 7, 6, 3}, [4]int{1, 0, 0, 0}, ""},
		{Last90Days, [4]int{6, 7, 6, 3}, [4]int{0, 0, 0, 0}, ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.p), func(t *testing.T) {
			d := data(t, sample(), Summary, tt.p)
			ms := d.Data.([]Metric)
			var got [4]int
			for i, m := range ms {
				got[i] = m.Value
			}
			if got != tt.cur {
				t.Errorf("figures %v, want %v", got, tt.cur)
			}
			for i, m := range ms {
				sp, _ := spanOf(tt.p, now)
				want := Metric{
					Icon: ms[i].Icon, Label: []string{"Events", "Attributes", "IDS attributes", "Sightings"}[i], Value: tt.cur[i], ValueUnit: "integer",
					Tooltip: tooltip(tt.cur[i], tt.prev[i], sp.words),
				}
				if diff := cmp.Diff(want, m); diff != "" {
					t.Errorf("metric %d (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

func tooltip(cur, prev int, words string) string {
	return itoa(cur) + " in the last " + words + "; " + itoa(prev) + " in the " + words + " before (" + change(cur, prev) + ")."
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestChange(t *testing.T) {
	for _, tt := range []struct {
		cur, prev int
		want      string
	}{{3, 3, "no change"}, {4, 0, "+4"}, {6, 4, "+50%"}, {1, 4, "-75%"}, {0, 2, "-100%"}} {
		if got := change(tt.cur, tt.prev); got != tt.want {
			t.Errorf("change(%d, %d) = %q, want %q", tt.cur, tt.prev, got, tt.want)
		}
	}
}

func TestThreatLevels(t *testing.T) {
	for _, p := range AllPeriods() {
		t.Run(string(p), func(t *testing.T) {
			d := data(t, sample(), ThreatLevels, p)
			sp, _ := spanOf(p, now)
			bars := d.Data.([]Bar)
			if len(bars) != sp.nBuckets || d.KeyType != "timestamp" || len(d.Keys) != 4 {
				t.Fatalf("%d bars, key_type %q, %d keys", len(bars), d.KeyType, len(d.Keys))
			}
			// Which events fall in the period, by level, and where.
			want := map[int64][4]int{}
			for _, e := range sample().events {
				if sp.cur.Contains(e.Timestamp) {
					k := sp.cur.From.Add(e.Timestamp.Sub(sp.cur.From).Truncate(sp.bucket)).UnixMilli()
					v := want[k]
					v[levelIndex(e.ThreatLevel)]++
					want[k] = v
				}
			}
			got := map[int64][4]int{}
			for i, b := range bars {
				if b.Key != sp.cur.From.Add(time.Duration(i)*sp.bucket).UnixMilli() {
					t.Errorf("bar %d key %d", i, b.Key)
				}
				var v [4]int
				sum := 0
				for j, bv := range b.Values {
					if bv.Key != threatLevelKeys[j].Key {
						t.Errorf("bar %d value %d is %q", i, j, bv.Key)
					}
					v[j] = bv.Value
					sum += bv.Value
				}
				if sum != b.Value {
					t.Errorf("bar %d: value %d, parts add up to %d", i, b.Value, sum)
				}
				if sum > 0 {
					got[b.Key] = v
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("bars (-want +got):\n%s", diff)
			}
		})
	}
	// The labels: hours over 24 hours, days otherwise.
	if got := data(t, sample(), ThreatLevels, Last24Hours).Data.([]Bar)[23].Label; got != "Dec 7 14:00" {
		t.Errorf("last hour's label %q", got)
	}
	if got := data(t, sample(), ThreatLevels, Last7Days).Data.([]Bar)[6].Label; got != "Dec 7" {
		t.Errorf("last day's label %q", got)
	}
}

func TestAttributeTypes(t *testing.T) {
	labels := [][]string{{"Network", "File hashes", "URLs", "Email", "Other"}}
	tests := []struct {
		p    Period
		want []Slice
	}{
		{Last24Hours, []Slice{{0, 1}, {1, 1}, {2, 0}, {3, 0}, {4, 0}}},
		{Last7Days, []Slice{{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 1}}},
		{Last30Days, []Slice{{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 1}}},
		{Last60Days, []Slice{{0, 1}, {1, 2}, {2, 1}, {3, 1}, {4, 1}}},
		{Last90Days, []Slice{{0, 1}, {1, 2}, {2, 1}, {3, 1}, {4, 1}}},
	}
	for _, tt := range tests {
		t.Run(string(tt.p), func(t *testing.T) {
			d := data(t, sample(), AttributeTypes, tt.p)
			if diff := cmp.Diff(labels, d.Labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, d.Data); diff != "" {
				t.Errorf("slices (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTypeGroupsDisjoint(t *testing.T) {
	seen := map[string]string{}
	for _, g := range TypeGroups() {
		for _, typ := range g.Types {
			if other, ok := seen[typ]; ok {
				t.Errorf("%s is in %s and %s: it would be counted twice", typ, other, g.Label)
			}
			seen[typ] = g.Label
		}
	}
}

func TestTopTags(t *testing.T) {
	tests := []struct {
		p      Period
		labels []string
		want   []Slice
	}{
		{Last24Hours, []string{`misp-galaxy:threat-actor="Sofacy"`, "tlp:amber"}, []Slice{{0, 1}, {1, 2}}},
		{Last7Days, []string{`misp-galaxy:malware="Emotet"`, `misp-galaxy:threat-actor="Sofacy"`, "tlp:amber"}, []Slice{{0, 1}, {1, 1}, {2, 3}}},
	}
	for _, tt := range tests {
		t.Run(string(tt.p), func(t *testing.T) {
			d := data(t, sample(), TopTags, tt.p)
			if diff := cmp.Diff([][]string{tt.labels}, d.Labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, d.Data); diff != "" {
				t.Errorf("slices (-want +got):\n%s", diff)
			}
		})
	}
	// At most maxTags, and none for a period without events.
	src := &memSource{}
	for i := range 30 {
		src.events = append(src.events, EventMeta{Timestamp: ago(time.Hour), Tags: []string{"t" + itoa(i%15), "t" + itoa(i%15)}})
	}
	if d := data(t, src, TopTags, Last24Hours); len(d.Labels[0]) != maxTags || len(d.Data.([]Slice)) != maxTags {
		t.Errorf("%d labels, want %d", len(d.Labels[0]), maxTags)
	}
	if d := data(t, &memSource{}, TopTags, Last24Hours); len(d.Labels[0]) != 0 || len(d.Data.([]Slice)) != 0 {
		t.Errorf("no events: %+v", d)
	}
}

func TestLatestEvents(t *testing.T) {
	head := []string{"| Threat | Event | Organisation | Date | Changed | Attributes |", "| --- | --- | --- | --- | --- | ---: |"}
	a := `| High | [APT \| phishing \[x\]](https://misp.example/events/view/aaaaaaaa-0000-4000-8000-000000000001) | CIRCL | 2026-12-07 | 2026-12-07 14:00 | 12 |`
	b := "| Medium | [Botnet C2](https://misp.example/events/view/bbbbbbbb-0000-4000-8000-000000000002) | CERT.be | 2026-12-07 | 2026-12-07 11:30 | 3 |"
	e := "| High | [Older high](https://misp.example/events/view/eeeeeeee-0000-4000-8000-000000000005) | CIRCL | 2026-10-28 | 2026-10-28 14:30 | 1 |"
	tests := []struct {
		p    Period
		want []string
	}{
		{Last24Hours, append(slices.Clone(head), a, b)},
		{Last7Days, append(slices.Clone(head), a, b)},
		{Last60Days, append(slices.Clone(head), a, e, b)},
	}
	for _, tt := range tests {
		t.Run(string(tt.p), func(t *testing.T) {
			if diff := cmp.Diff(tt.want, data(t, sample(), LatestEvents, tt.p).Data); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
		})
	}
	src := &memSource{events: []EventMeta{{UUID: "x", Timestamp: ago(time.Hour), ThreatLevel: 3}}}
	if diff := cmp.Diff([]string{"No event of High or Medium threat level was added or changed in the last 24 hours."}, data(t, src, LatestEvents, Last24Hours).Data); diff != "" {
		t.Errorf("none (-want +got):\n%s", diff)
	}
}

func TestMarkdownCell(t *testing.T) {
	for in, want := range map[string]string{
		"a|b":           `a\|b`,
		"line\nbreak":   "line break",
		"<script>":      "&lt;script&gt;",
		"[x](http://e)": `\[x\](http://e)`,
		"*_`":           "\\*\\_\\`",
	} {
		if got := mdCell(in); got != want {
			t.Errorf("mdCell(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBoardCaches(t *testing.T) {
	b := NewBoard(BoardConfig{TTL: time.Minute})
	src := sample()
	req := Request{Tenant: "t1", Key: "k", Source: src, Tile: Summary, Period: Last7Days, Now: now}
	first, err := b.Data(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	calls := src.calls.Load()
	second, err := b.Data(context.Background(), req)
	if err != nil || second != first || src.calls.Load() != calls {
		t.Errorf("the second ask within the TTL was not answered from the cache (%d calls, want %d)", src.calls.Load(), calls)
	}
	other := req
	other.Tenant = "t2"
	if _, err := b.Data(context.Background(), other); err != nil || src.calls.Load() == calls {
		t.Errorf("another tenant was answered from the first one's cache")
	}
	later := req
	later.Now = now.Add(time.Minute)
	calls = src.calls.Load()
	if _, err := b.Data(context.Background(), later); err != nil || src.calls.Load() == calls {
		t.Errorf("an answer older than the TTL was served")
	}
	want := TimeRange{StartTime: "2026-12-07T14:30:00Z", EndTime: "2026-12-07T14:31:00Z"}
	if diff := cmp.Diff(want, first.ValidTime); diff != "" {
		t.Errorf("valid_time (-want +got):\n%s", diff)
	}
	// The period observed ends now, not at the end of today's bucket.
	if diff := cmp.Diff(TimeRange{StartTime: "2026-12-01T00:00:00Z", EndTime: "2026-12-07T14:30:00Z"}, first.ObservedTime); diff != "" {
		t.Errorf("observed_time (-want +got):\n%s", diff)
	}
}

func TestBoardErrors(t *testing.T) {
	b := NewBoard(BoardConfig{})
	failing := sample()
	failing.err = errors.New("MISP is down")
	tests := []struct {
		name     string
		req      Request
		argument bool
	}{
		{"unknown tile", Request{Source: sample(), Tile: "nope", Period: Last7Days}, true},
		{"unknown period", Request{Source: sample(), Tile: Summary, Period: "last_year"}, true},
		{"no source", Request{Tile: Summary, Period: Last7Days}, false},
		{"failing source", Request{Source: failing, Tile: LatestEvents, Period: Last7Days}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Now = now
			_, err := b.Data(context.Background(), tt.req)
			var ae *ArgumentError
			if err == nil || errors.As(err, &ae) != tt.argument {
				t.Errorf("error %v; an argument error: %v, want %v", err, errors.As(err, &ae), tt.argument)
			}
		})
	}
	// A failure is not cached.
	failing.err = nil
	if _, err := b.Data(context.Background(), Request{Source: failing, Tile: LatestEvents, Period: Last7Days, Now: now}); err != nil {
		t.Errorf("after the source recovered: %v", err)
	}
}

func TestDefinitions(t *testing.T) {
	ids := []string{}
	for _, d := range Definitions() {
		ids = append(ids, d.ID)
		if len(d.Periods) != 5 || !slices.Contains(d.Periods, d.DefaultPeriod) || d.Title == "" || d.Description == "" || d.ShortDescription == "" {
			t.Errorf("%s: %+v", d.ID, d)
		}
		if got, err := DefinitionOf(d.ID); err != nil || got.ID != d.ID {
			t.Errorf("DefinitionOf(%s) = %v, %v", d.ID, got.ID, err)
		}
	}
	if diff := cmp.Diff([]string{Summary, ThreatLevels, AttributeTypes, TopTags, LatestEvents}, ids); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
}

// TestBoardSharesEventLists: the three tiles drawn from the events list them once per
// tenant and window, whether asked one after the other or all at once (the race detector
// watches the sharing).
func TestBoardSharesEventLists(t *testing.T) {
	b := NewBoard(BoardConfig{})
	src := sample()
	ask := func(tenant, tile string) {
		_, err := b.Data(context.Background(), Request{Tenant: tenant, Source: src, Tile: tile, Period: Last30Days, Now: now})
		if err != nil {
			t.Error(err)
		}
	}
	for _, tile := range []string{ThreatLevels, TopTags, LatestEvents} {
		ask("t1", tile)
	}
	if n := src.lists.Load(); n != 1 {
		t.Errorf("one after the other: %d event lists, want 1", n)
	}
	var wg sync.WaitGroup
	for _, tile := range []string{ThreatLevels, TopTags, LatestEvents, ThreatLevels, TopTags, LatestEvents} {
		wg.Go(func() { ask("t2", tile) })
	}
	wg.Wait()
	if n := src.lists.Load(); n != 2 {
		t.Errorf("all at once, another tenant: %d event lists in all, want 2", n)
	}
	// Each tile's answer is the one a Board without sharing gives.
	for _, tile := range []string{ThreatLevels, TopTags, LatestEvents} {
		shared, _ := b.Data(context.Background(), Request{Tenant: "t2", Source: src, Tile: tile, Period: Last30Days, Now: now})
		alone, _ := (*Board)(nil).Data(context.Background(), Request{Tenant: "t2", Source: sample(), Tile: tile, Period: Last30Days, Now: now})
		if diff := cmp.Diff(alone, shared); diff != "" {
			t.Errorf("%s (-alone +shared):\n%s", tile, diff)
		}
	}
}

func TestCombine(t *testing.T) {
	a, b := sample(), sample()
	b.events = b.events[:2]
	b.attrs = b.attrs[:1]
	both := Combine(a, b)
	for _, tt := range []struct {
		tile string
		want any
	}{
		{Summary, []int{5, 7, 6, 4}},
		{LatestEvents, 6}, // head, then a, a, b... (High a, High a, Medium b, Medium b)
	} {
		d := data(t, both, tt.tile, Last7Days)
		switch got := d.Data.(type) {
		case []Metric:
			var vals []int
			for _, m := range got {
				vals = append(vals, m.Value)
			}
			if diff := cmp.Diff(tt.want, vals); diff != "" {
				t.Errorf("summary (-want +got):\n%s", diff)
			}
		case []string:
			if len(got) != tt.want {
				t.Errorf("latest events: %d lines, want %d", len(got), tt.want)
			}
		}
	}
	failing := sample()
	failing.err = errors.New("down")
	if _, err := (*Board)(nil).Data(context.Background(), Request{Source: Combine(a, failing), Tile: Summary, Period: Last7Days, Now: now}); err == nil {
		t.Error("a failing source gave figures")
	}
	if Combine(a) != Source(a) {
		t.Error("Combine of one source is not that source")
	}
}

// TestLatestEventsLinksOnlyUUIDs: a MISP sending something else as an event's uuid gets no
// link, so nothing it sends can end the link and start another.
func TestLatestEventsLinksOnlyUUIDs(t *testing.T) {
	src := &memSource{events: []EventMeta{
		{UUID: "x) [click](https://evil.example", Info: "Hostile", Org: "O", Date: "2026-12-07", Timestamp: ago(time.Hour), ThreatLevel: 1},
	}}
	want := "| High | Hostile | O | 2026-12-07 | 2026-12-07 13:30 | 0 |"
	if got := data(t, src, LatestEvents, Last24Hours).Data.([]string)[2]; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
