package cache

import (
	"encoding/binary"
	"errors"
	"math"
	"time"

	"github.com/misp-relay/misp-relay/internal/intel"
)

// The events encoding keeps what the relay took from MISP's answer (intel.Event), not MISP's
// JSON: an entry is a few hundred bytes per event instead of MISP's kilobytes per attribute,
// and other relay instances read it without parsing MISP again. It is a plain varint-length
// binary of the intel types, written and read by hand so that it is compact, independent of
// Go's gob/reflection, and decoded with every length checked against what is left (a
// corrupted or hostile entry is an error, never a panic or a large allocation).
//
//	events    = uvarint(count) event*
//	event     = str(UUID) str(Info) str(Date) time(Timestamp) varint(ThreatLevel) str(Org)
//	            str(OrgUUID) byte(Published: 0 or 1) varint(Analysis)
//	            uvarint(count) str(tag)* uvarint(count) attribute*
//	attribute = str(Type) str(Category) str(Value) byte(ToIDS: 0 or 1)
//	            time(Timestamp) time(FirstSeen) time(LastSeen)
//	            str(UUID) uvarint(count) str(tag)* uvarint(count) hit* sightings
//	            uvarint(count) decay* str(Comment) object
//	object    = str(Name) str(Relation) uvarint(count) member*
//	member    = str(Type) str(Relation) str(Value)
//	hit       = uvarint(Source) str(List) str(Match) str(Category) str(Value)
//	sightings = uvarint(Seen) uvarint(FalsePositive) uvarint(Expiration)
//	            time(First) time(Last) time(Expires) uvarint(count) str(source)*
//	decay     = str(Model) float64(Score, 8 bytes little-endian IEEE 754) byte(Decayed: 0 or 1)
//	str       = uvarint(length) bytes
//	time      = byte(0) for the zero time, or byte(1) varint(Unix seconds) uvarint(nanoseconds)
//
// (Version 2 added what the verdict policy reads: the creator's UUID, publication and
// analysis, the attribute's UUID, own tags, warninglist hits, sightings and decay scores.
// Version 3 added a hit's Value: which half of a composite attribute MISP found listed.
// Version 4 added the attribute's comment and object, and a hit's Source.
// TestCodecCoversEveryField fails when a field is added to the intel types and not here.)
//
// Its version is that of the envelope around it (see seal.go): a change here is a new
// envelope version, so entries written by older relays read as misses.

var errCorrupt = errors.New("cache: corrupt shared cache entry")

// appendEvents appends the encoding of events to b.
func appendEvents(b []byte, events []intel.Event) []byte {
	b = binary.AppendUvarint(b, uint64(len(events)))
	for i := range events {
		e := &events[i]
		b = appendString(b, e.UUID)
		b = appendString(b, e.Info)
		b = appendString(b, e.Date)
		b = appendTime(b, e.Timestamp)
		b = binary.AppendVarint(b, int64(e.ThreatLevel))
		b = appendString(b, e.Org)
		b = appendString(b, e.OrgUUID)
		b = appendBool(b, e.Published)
		b = binary.AppendVarint(b, int64(e.Analysis))
		b = appendStrings(b, e.Tags)
		b = binary.AppendUvarint(b, uint64(len(e.Attributes)))
		for j := range e.Attributes {
			a := &e.Attributes[j]
			b = appendString(b, a.Type)
			b = appendString(b, a.Category)
			b = appendString(b, a.Value)
			if a.ToIDS {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
			b = appendTime(b, a.Timestamp)
			b = appendTime(b, a.FirstSeen)
			b = appendTime(b, a.LastSeen)
			b = appendEvidence(b, a)
		}
	}
	return b
}

// appendEvidence appends what the verdict policy reads of an attribute.
func appendEvidence(b []byte, a *intel.Attribute) []byte {
	b = appendString(b, a.UUID)
	b = appendStrings(b, a.Tags)
	b = appendHits(b, a.Warnings)
	s := &a.Sightings
	b = binary.AppendUvarint(b, uint64(max(s.Seen, 0)))          //nolint:gosec // not negative
	b = binary.AppendUvarint(b, uint64(max(s.FalsePositive, 0))) //nolint:gosec // not negative
	b = binary.AppendUvarint(b, uint64(max(s.Expiration, 0)))    //nolint:gosec // not negative
	b = appendTime(b, s.First)
	b = appendTime(b, s.Last)
	b = appendTime(b, s.Expires)
	b = appendStrings(b, s.Sources)
	b = binary.AppendUvarint(b, uint64(len(a.Decay)))
	for _, d := range a.Decay {
		b = appendString(b, d.Model)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(d.Score))
		b = appendBool(b, d.Decayed)
	}
	b = appendString(b, a.Comment)
	b = appendString(b, a.Object.Name)
	b = appendString(b, a.Object.Relation)
	b = binary.AppendUvarint(b, uint64(len(a.Object.Members)))
	for _, m := range a.Object.Members {
		b = appendString(b, m.Type)
		b = appendString(b, m.Relation)
		b = appendString(b, m.Value)
	}
	return b
}

// appendHits appends warninglist hits: an attribute's, or a warninglist check's answer for a
// value (an entry of its own, see Cache.CheckWarninglists).
func appendHits(b []byte, hits []intel.WarninglistHit) []byte {
	b = binary.AppendUvarint(b, uint64(len(hits)))
	for _, h := range hits {
		b = binary.AppendUvarint(b, uint64(max(h.Source, 0))) //nolint:gosec // not negative
		b = appendString(b, h.List)
		b = appendString(b, h.Match)
		b = appendString(b, h.Category)
		b = appendString(b, h.Value)
	}
	return b
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond())) //nolint:gosec // in [0, 1e9)
}

// decodeEvents reads what appendEvents wrote, and nothing else: trailing bytes are an error.
// Nothing found decodes as nil, as intel.Backend answers it. Strings are copied, so b may be
// reused afterwards.
func decodeEvents(b []byte) ([]intel.Event, error) {
	d := decoder{b: b}
	// Every event takes at least 11 bytes, every attribute 22, every hit 5, every decay score
	// 10, every object member 3 and every string 1: a count larger than what is left could not be honest, and is
	// refused before anything is allocated.
	n := d.count(11)
	var events []intel.Event
	if n > 0 {
		events = make([]intel.Event, n)
	}
	for i := range events {
		e := &events[i]
		e.UUID = d.string()
		e.Info = d.string()
		e.Date = d.string()
		e.Timestamp = d.time()
		e.ThreatLevel = d.int()
		e.Org = d.string()
		e.OrgUUID = d.string()
		e.Published = d.bool()
		e.Analysis = intel.Analysis(d.int())
		e.Tags = d.strings()
		if n := d.count(22); n > 0 {
			e.Attributes = make([]intel.Attribute, n)
			for j := range e.Attributes {
				a := &e.Attributes[j]
				a.Type = d.string()
				a.Category = d.string()
				a.Value = d.string()
				a.ToIDS = d.bool()
				a.Timestamp = d.time()
				a.FirstSeen = d.time()
				a.LastSeen = d.time()
				d.evidence(a)
			}
		}
		if d.err != nil {
			return nil, d.err
		}
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = errCorrupt
	}
	if d.err != nil {
		return nil, d.err
	}
	return events, nil
}

// evidence reads what appendEvidence wrote into a.
func (d *decoder) evidence(a *intel.Attribute) {
	a.UUID = d.string()
	a.Tags = d.strings()
	a.Warnings = d.hits()
	s := &a.Sightings
	s.Seen, s.FalsePositive, s.Expiration = d.smallCount(), d.smallCount(), d.smallCount()
	s.First, s.Last, s.Expires = d.time(), d.time(), d.time()
	s.Sources = d.strings()
	if n := d.count(10); n > 0 {
		a.Decay = make([]intel.DecayScore, n)
		for i := range a.Decay {
			sc := &a.Decay[i]
			sc.Model = d.string()
			sc.Score = d.float()
			sc.Decayed = d.bool()
		}
	}
	a.Comment = d.string()
	a.Object.Name = d.string()
	a.Object.Relation = d.string()
	if n := d.count(3); n > 0 {
		a.Object.Members = make([]intel.ObjectMember, n)
		for i := range a.Object.Members {
			m := &a.Object.Members[i]
			m.Type, m.Relation, m.Value = d.string(), d.string(), d.string()
		}
	}
}

// decodeHits reads what appendHits wrote, and nothing else.
func decodeHits(b []byte) ([]intel.WarninglistHit, error) {
	d := decoder{b: b}
	hits := d.hits()
	if d.err == nil && len(d.b) > 0 {
		d.err = errCorrupt
	}
	if d.err != nil {
		return nil, d.err
	}
	return hits, nil
}

// hits reads what appendHits wrote.
func (d *decoder) hits() []intel.WarninglistHit {
	n := d.count(5) // a hit takes at least 5 bytes
	if n == 0 {
		return nil
	}
	hits := make([]intel.WarninglistHit, n)
	for i := range hits {
		h := &hits[i]
		h.Source = intel.ListSource(d.smallCount())
		h.List, h.Match, h.Category, h.Value = d.string(), d.string(), d.string(), d.string()
	}
	return hits
}

func (d *decoder) strings() []string {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.string()
	}
	return out
}

// smallCount reads a count that is not a length (sightings): at most an int32.
func (d *decoder) smallCount() int {
	v := d.uvarint()
	if v > 1<<31-1 {
		d.fail()
		return 0
	}
	return int(v)
}

func (d *decoder) float() float64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

// decoder reads the encoding; after the first error every read returns a zero value and err
// stays set, so callers check it once.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.b, d.err = nil, errCorrupt }

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a number of items of at least minSize bytes each.
func (d *decoder) count(minSize int) int {
	v := d.uvarint()
	if v > uint64(len(d.b)/minSize) { //nolint:gosec // a length is never negative
		d.fail()
		return 0
	}
	return int(v) //nolint:gosec // at most len(d.b)
}

func (d *decoder) int() int {
	v := d.varint()
	if v < -1<<31 || v > 1<<31-1 {
		d.fail()
		return 0
	}
	return int(v)
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail()
	return false
}

func (d *decoder) time() time.Time {
	switch d.byte() {
	case 0:
		return time.Time{}
	case 1:
	default:
		d.fail()
		return time.Time{}
	}
	sec := d.varint()
	nsec := d.uvarint()
	if nsec >= uint64(time.Second) {
		d.fail()
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec)).UTC()
	if t.IsZero() { // the zero time has its own tag; any other spelling of it is not ours
		d.fail()
		return time.Time{}
	}
	return t
}
