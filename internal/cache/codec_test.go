package cache

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
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
		Org: "CIRCL", OrgUUID: "55f6ea5e-2c60-40e5-964f-47a8950d210f",
		Tags: []string{"tlp:amber", `misp-galaxy:threat-actor="APT 28"`}, Published: true, Analysis: intel.AnalysisComplete,
		Attributes: []intel.Attribute{
			{
				Type: "ip-dst", Category: "Network activity", Value: "198.51.100.7", ToIDS: true, Timestamp: time.Unix(1705312801, 0).UTC(),
				UUID: "6a1f5a2e-0000-4000-8000-000000000001", Tags: []string{"false-positive:risk=\"low\""},
				Warnings: []intel.WarninglistHit{{List: "List of known IPv4 public DNS resolvers", Match: "198.51.100.0/24", Category: "false_positive"}, {List: "x"}},
				Sightings: intel.Sightings{
					Seen: 12, FalsePositive: 1, Expiration: 2, First: time.Unix(1705000000, 0).UTC(), Last: time.Unix(1705300000, 0).UTC(),
					Sources: []string{"CIRCL", "XDR"}, Expires: time.Unix(1706000000, 0).UTC(),
				},
				Decay: []intel.DecayScore{{Model: "NIDS Simple Decaying Model", Score: 63.25, Decayed: false}, {Model: "m", Score: math.Copysign(0, -1), Decayed: true}},
			},
			{
				Type: "domain|ip", Category: "Network activity", Value: "evil.example|198.51.100.7",
				FirstSeen: time.UnixMicro(1705312800123456).UTC(), LastSeen: time.Unix(-10, 5).UTC(),
			},
		},
	},
	{UUID: "b", ThreatLevel: -7, Analysis: intel.AnalysisInitial},
	{UUID: "c", ThreatLevel: 4, Attributes: []intel.Attribute{{}}},
}

// TestCodecCoversEveryField fills every field of an event (and of everything in it) with a
// value of its own, through reflection, and round-trips it: a field added to the intel types
// and not to the encoding fails here, instead of being dropped on every Redis hit.
func TestCodecCoversEveryField(t *testing.T) {
	var e intel.Event
	n := 0
	fillAll(reflect.ValueOf(&e).Elem(), &n)
	events := []intel.Event{e}
	got, err := decodeEvents(appendEvents(nil, events))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(events, got); diff != "" {
		t.Errorf("fields lost in the encoding (-want +got):\n%s", diff)
	}
}

// fillAll sets every field of v to a distinct non-zero value; slices get two elements.
func fillAll(v reflect.Value, n *int) {
	*n++
	if v.Type() == reflect.TypeFor[time.Time]() {
		v.Set(reflect.ValueOf(time.Unix(1700000000+int64(*n), int64(*n)).UTC()))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(*n))
	case reflect.Float64:
		v.SetFloat(float64(*n) + 0.25)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fillAll(v.Index(i), n)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			fillAll(v.Field(i), n)
		}
	default:
		panic("fillAll: add " + v.Kind().String() + " (" + v.Type().String() + ") to the test and to the codec")
	}
}

func TestHitsRoundTrip(t *testing.T) {
	for _, hits := range [][]intel.WarninglistHit{nil, sampleEvents[0].Attributes[0].Warnings} {
		got, err := decodeHits(appendHits(nil, hits))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(hits, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
	for _, bad := range [][]byte{{}, {1}, {2, 0, 0, 0}, append(appendHits(nil, []intel.WarninglistHit{{List: "l"}}), 0)} {
		if hits, err := decodeHits(bad); err == nil {
			t.Errorf("%v decoded as %v", bad, hits)
		}
	}
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
	// One event {UUID: "x", Timestamp}: count, "x", Info, Date, then the time at index 5 and
	// the threat level after it.
	withTime := func(ts time.Time) []byte { return appendEvents(nil, []intel.Event{{UUID: "x", Timestamp: ts}}) }
	plain := withTime(time.Time{})
	timeEnd := 6 // the zero time is one byte
	tests := map[string][]byte{
		"empty":              {},
		"truncated":          good[:len(good)-1],
		"trailing bytes":     append(bytes.Clone(good), 0),
		"huge count":         {0xff, 0xff, 0xff, 0xff, 0x0f},
		"count over input":   {5, 0, 0, 0},
		"bad bool":           patchFirstAttrToIDS(good),
		"bad time tag":       splice(plain, 5, 6, []byte{7}),
		"overlong uvarint":   {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
		"string past input":  splice(plain, 1, 3, []byte{50, 'x'}),
		"nanoseconds ≥ 1e9":  splice(plain, 5, timeEnd, []byte{1, 0, 0x80, 0x94, 0xeb, 0xdc, 0x03}),
		"zero time spelled":  splice(plain, 5, timeEnd, append([]byte{1}, appendZeroTimeAsUnix()...)),
		"threat level range": splice(plain, timeEnd, timeEnd+1, binary.AppendVarint(nil, 1<<40)),
		"decay score cut":    good[:bytes.Index(good, []byte("NIDS Simple Decaying Model"))+len("NIDS Simple Decaying Model")+4],
	}
	if !bytes.Equal(plain[:3], []byte{1, 1, 'x'}) || plain[5] != 0 {
		t.Fatalf("the layout the cases assume changed: %v", plain)
	}
	for name, b := range tests {
		if events, err := decodeEvents(b); err == nil {
			t.Errorf("%s: decoded %v", name, events)
		}
	}
}

// splice replaces b[i:j] with r.
func splice(b []byte, i, j int, r []byte) []byte {
	return slices.Concat(b[:i], r, b[j:])
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
	if !strings.HasPrefix(k, "misp-relay:v"+strconv.Itoa(entryVersion)+":") {
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
			if diff := cmp.Diff(events, back, cmpopts.EquateEmpty(), cmpopts.EquateNaNs()); diff != "" {
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
