package cache

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/misp-relay/misp-relay/internal/intel"
)

var sampleEvents = []intel.Event{
	{
		UUID: "5f1c1b9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", Info: "Phishing campaign «Ünïcode» \x00 and NUL",
		Date: "2024-01-15", Timestamp: time.Unix(1705312800, 0).UTC(), ThreatLevel: 1,
		Org: "CIRCL", Tags: []string{"tlp:amber", `misp-galaxy:threat-actor="APT 28"`},
		Attributes: []intel.Attribute{
			{Type: "ip-dst", Category: "Network activity", Value: "198.51.100.7", ToIDS: true, Timestamp: time.Unix(1705312801, 0).UTC()},
			{
				Type: "domain|ip", Category: "Network activity", Value: "evil.example|198.51.100.7",
				FirstSeen: time.UnixMicro(1705312800123456).UTC(), LastSeen: time.Unix(-10, 5).UTC(),
			},
		},
	},
	{UUID: "b", ThreatLevel: -7},
	{UUID: "c", ThreatLevel: 4, Attributes: []intel.Attribute{{}}},
}

func TestEventsRoundTrip(t *testing.T) {
	for name, events := range map[string][]intel.Event{
		"nothing found": nil,
		"events":        sampleEvents,
		"large":         largeEvents(100, 5),
	} {
		b := appendEvents(nil, events)
		got, err := decodeEvents(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(events, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: round trip (-want +got):\n%s", name, diff)
		}
		if name == "nothing found" && (got != nil || len(b) != 1) {
			t.Errorf("nothing found: %v in %d bytes, want nil in 1 byte", got, len(b))
		}
	}
}

// TestEventsCompact: an entry is much smaller than the MISP JSON it came from (about 900 bytes
// per attribute with includeContext, see internal/loadbench).
func TestEventsCompact(t *testing.T) {
	events := largeEvents(100, 3)
	b := appendEvents(nil, events)
	if perAttr := len(b) / 300; perAttr > 200 {
		t.Errorf("%d bytes for 300 attributes: %d per attribute", len(b), perAttr)
	}
}

func largeEvents(n, attrs int) []intel.Event {
	events := make([]intel.Event, n)
	for i := range events {
		e := &events[i]
		e.UUID = strings.Repeat("0", 35) + string(rune('a'+i%26))
		e.Info = "OSINT - campaign report number " + strings.Repeat("x", i%40)
		e.Date = "2024-01-15"
		e.Timestamp = time.Unix(1705312800+int64(i), 0).UTC()
		e.ThreatLevel = 1 + i%4
		e.Org = "CIRCL"
		e.Tags = []string{"tlp:white", "type:OSINT"}
		for k := range attrs {
			e.Attributes = append(e.Attributes, intel.Attribute{
				Type: "ip-dst", Category: "Network activity", Value: "198.51.100." + string(rune('0'+k%10)),
				ToIDS: k%2 == 0, Timestamp: time.Unix(1705312900+int64(k), 0).UTC(),
			})
		}
	}
	return events
}

func TestDecodeRefusesCorruptInput(t *testing.T) {
	good := appendEvents(nil, sampleEvents)
	tests := map[string][]byte{
		"empty":              {},
		"truncated":          good[:len(good)-1],
		"trailing bytes":     append(bytes.Clone(good), 0),
		"huge count":         {0xff, 0xff, 0xff, 0xff, 0x0f},
		"count over input":   {5, 0, 0, 0},
		"bad bool":           patchFirstAttrToIDS(good),
		"bad time tag":       {1, 1, 'x', 0, 0, 7, 0, 0, 0, 0},
		"overlong uvarint":   {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
		"string past input":  {1, 50, 'a', 0, 0, 0, 0, 0, 0, 0, 0},
		"nanoseconds ≥ 1e9":  {1, 0, 0, 0, 1, 0, 0x80, 0x94, 0xeb, 0xdc, 0x03, 0, 0, 0, 0},
		"zero time spelled":  append(append([]byte{1, 0, 0, 0, 1}, appendZeroTimeAsUnix()...), 0, 0, 0, 0),
		"threat level range": {1, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0x1f, 0, 0, 0},
	}
	for name, b := range tests {
		if events, err := decodeEvents(b); err == nil {
			t.Errorf("%s: decoded %v", name, events)
		}
	}
}

// patchFirstAttrToIDS turns the first attribute's ToIDS byte of sampleEvents' encoding into 2.
func patchFirstAttrToIDS(good []byte) []byte {
	b := bytes.Clone(good)
	prefix := appendString(appendString(appendString(nil, "ip-dst"), "Network activity"), "198.51.100.7")
	i := bytes.Index(b, prefix)
	b[i+len(prefix)] = 2
	return b
}

func appendZeroTimeAsUnix() []byte {
	var z time.Time
	b := appendTime(nil, z.Add(time.Nanosecond))
	b[len(b)-1] = 0 // nanoseconds 0: Unix seconds of the zero time
	return b[1:]
}

func TestSealOpensOnlyForItsTenantAndKey(t *testing.T) {
	const base, apiKey = "https://misp.example", "tenant-key-1"
	key := sharedKey(base, apiKey, "search", "ip-dst", "198.51.100.7", "100")
	aead := newSealer(base, apiKey)
	fetched := time.UnixMilli(1705312800123)
	payload := appendEvents(nil, sampleEvents)
	value := seal(aead, key, fetched, payload)

	at, got, err := unseal(aead, key, bytes.Clone(value))
	if err != nil || !at.Equal(fetched) || !bytes.Equal(got, payload) {
		t.Fatalf("unseal = %v, %d bytes, %v", at, len(got), err)
	}
	otherKey := sharedKey(base, apiKey, "search", "ip-dst", "198.51.100.8", "100")
	flipped := bytes.Clone(value)
	flipped[len(flipped)/2] ^= 1
	for name, tt := range map[string]struct {
		aead  []string // base, api key of the opener
		key   string
		value []byte
	}{
		"another API key":      {[]string{base, "tenant-key-2"}, key, value},
		"another MISP":         {[]string{"https://misp2.example", apiKey}, key, value},
		"moved to another key": {[]string{base, apiKey}, otherKey, value},
		"flipped bit":          {[]string{base, apiKey}, key, flipped},
		"truncated":            {[]string{base, apiKey}, key, value[:len(value)-1]},
		"other version":        {[]string{base, apiKey}, key, append([]byte{entryVersion + 1}, value[1:]...)},
		"empty":                {[]string{base, apiKey}, key, nil},
	} {
		if _, _, err := unseal(newSealer(tt.aead[0], tt.aead[1]), tt.key, bytes.Clone(tt.value)); err == nil {
			t.Errorf("%s: the entry opened", name)
		}
	}
}

func TestSharedKeys(t *testing.T) {
	const base, apiKey = "https://misp.example:8443", "0123456789abcdefghijABCDEFGHIJ0123456789"
	k := sharedKey(base, apiKey, "search", "ip-src\x00ip-dst", "198.51.100.7", "100")
	if !strings.HasPrefix(k, "misp-relay:v2:") || entryVersion != 2 {
		t.Errorf("key %q: the prefix must name entryVersion %d", k, entryVersion)
	}
	for _, secret := range []string{apiKey, "misp.example", "198.51.100.7"} {
		if strings.Contains(k, secret) {
			t.Errorf("key %q shows %q", k, secret)
		}
	}
	distinct := map[string]bool{k: true}
	for _, other := range [][]string{
		{base, "another key", "search", "ip-src\x00ip-dst", "198.51.100.7", "100"},
		{"https://misp.example", apiKey, "search", "ip-src\x00ip-dst", "198.51.100.7", "100"},
		{base, apiKey, "warninglist", "ip-src\x00ip-dst", "198.51.100.7", "100"},
		{base, apiKey, "search", "ip-src", "198.51.100.7", "100"},
		{base, apiKey, "search", "ip-src\x00ip-dst", "198.51.100.7", "1"},
		// Moving bytes from one field to the next must not collide.
		{base, apiKey, "search", "ip-src\x00ip-dst1", "98.51.100.7", "100"},
	} {
		o := sharedKey(other[0], other[1], other[2], other[3:]...)
		if distinct[o] {
			t.Errorf("%q: same key as another lookup", other)
		}
		distinct[o] = true
	}
}

// FuzzDecodeEvents: any input decodes or fails cleanly (no panic, no allocation beyond its
// size), and what decodes encodes back to the same bytes.
func FuzzDecodeEvents(f *testing.F) {
	f.Add(appendEvents(nil, sampleEvents))
	f.Add(appendEvents(nil, nil))
	f.Add(appendEvents(nil, largeEvents(3, 2)))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		events, err := decodeEvents(b)
		if err != nil {
			return
		}
		again := appendEvents(nil, events)
		if !bytes.Equal(again, b) {
			// Varints have one shortest spelling; a longer one is the only other way in.
			back, err := decodeEvents(again)
			if err != nil {
				t.Fatalf("re-encoding does not decode: %v", err)
			}
			if diff := cmp.Diff(events, back, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("re-encoding changed the events (-first +second):\n%s", diff)
			}
		}
	})
}

// FuzzUnseal: no input opens without the key, and none panics.
func FuzzUnseal(f *testing.F) {
	aead := newSealer("https://misp.example", "k")
	f.Add(seal(aead, "key", time.Now(), appendEvents(nil, sampleEvents)))
	f.Add([]byte{entryVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, _, err := unseal(aead, "another key", b); err == nil {
			t.Fatal("a value opened under another key")
		}
	})
}

// BenchmarkSharedEntry: the CPU cost of a shared cache entry besides Redis's round trip:
// writing (encode and seal) and reading (open and decode) the answer of one lookup.
func BenchmarkSharedEntry(b *testing.B) {
	const base, apiKey = "https://misp.example", "0123456789abcdefghijABCDEFGHIJ0123456789"
	key := sharedKey(base, apiKey, "search", "ip-src\x00ip-dst", "198.51.100.7", "100")
	for _, size := range []struct {
		name          string
		events, attrs int
	}{{"3x2", 3, 2}, {"100x3", 100, 3}} {
		events := largeEvents(size.events, size.attrs)
		value := seal(newSealer(base, apiKey), key, time.Now(), appendEvents(nil, events))
		b.Run("write/"+size.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = seal(newSealer(base, apiKey), key, time.Now(), appendEvents(nil, events))
			}
			b.ReportMetric(float64(len(value)), "B/entry")
		})
		b.Run("read/"+size.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, len(value))
			for b.Loop() {
				copy(buf, value)
				_, payload, err := unseal(newSealer(base, apiKey), key, buf)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := decodeEvents(payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
