package feed

import (
	"hash/maphash"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/intel"
)

// TestRecordRoundTrip: an attribute comes back from its record as it went in, whatever the
// spelling of its UUID, its times (before 1970, to the nanosecond) or its rarer parts.
func TestRecordRoundTrip(t *testing.T) {
	when := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	attrs := []intel.Attribute{
		{Type: "domain", Category: "Network activity", Value: "evil.example", UUID: "5e1f3c0a-1b2c-4d3e-8f4a-5b6c7d8e9f00", ToIDS: true, Timestamp: when},
		{Type: "ip-dst", Value: "198.51.100.7", UUID: "5E1F3C0A-1B2C-4D3E-8F4A-5B6C7D8E9F00", FirstSeen: time.Unix(-86400, 5).UTC(), LastSeen: when},
		{Type: "md5", Value: "d41d8cd98f00b204e9800998ecf8427e", UUID: "not-a-uuid", Tags: []string{"tlp:white", "kill-chain:Delivery", "tlp:white"}},
		{
			Type: "url", Value: "https://ünïcode.example/ä", Category: "Payload delivery",
			Warnings:  []intel.WarninglistHit{{List: "List of known domains", Match: "example", Category: "known", Value: "x"}},
			Sightings: intel.Sightings{Seen: 3, FalsePositive: 1, First: when, Last: when.Add(time.Hour), Sources: []string{"CIRCL"}},
			Decay:     []intel.DecayScore{{Model: "NIDS", Score: 42.5, Decayed: true}},
		},
		{Type: "domain|ip", Value: "c2.example|203.0.113.9"},
	}
	var in interner
	var buf []byte
	for i := range attrs {
		var err error
		if buf, err = appendRecord(buf, &in, &attrs[i]); err != nil {
			t.Fatal(err)
		}
	}
	off := 0
	for i, want := range attrs {
		got, ok := decode(buf[off:], in.names)
		if !ok {
			t.Fatalf("record %d does not decode", i)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("record %d (-in +out):\n%s", i, diff)
		}
		_, _, next, ok := head(buf[off:], in.names)
		if !ok {
			t.Fatalf("record %d: no head", i)
		}
		off += next
	}
	if off != len(buf) {
		t.Errorf("records end at %d of %d bytes", off, len(buf))
	}
	// A truncated record is refused, never read past.
	if _, ok := decode(buf[:5], in.names); ok {
		t.Error("a truncated record decoded")
	}
}

// TestHashCollisionIsNotAMatch: two values whose keys hash alike (forced here by a snapshot
// whose entries all have one hash) answer only their own events.
func TestHashCollisionIsNotAMatch(t *testing.T) {
	var in interner
	mk := func(uuid, value string) stored {
		a := intel.Attribute{Type: "domain", Value: value}
		recs, err := appendRecord(nil, &in, &a)
		if err != nil {
			t.Fatal(err)
		}
		return stored{meta: intel.Event{UUID: uuid}, recs: recs, n: 1}
	}
	seed := maphash.MakeSeed()
	sn := newSnapshot([]stored{mk("a", "one.example"), mk("b", "two.example")}, in.names, seed)
	for i := range sn.entries {
		sn.entries[i].hash = maphash.String(seed, "one.example") // both under one.example's hash
	}
	sn.buildBuckets()
	got, err := sn.search(t.Context(), intel.Query{Value: "one.example"})
	if err != nil || len(got) != 1 || got[0].UUID != "a" {
		t.Errorf("search: %+v, %v", got, err)
	}
}
