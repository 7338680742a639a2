package feed

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/maphash"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/misp-relay/misp-relay/internal/intel"
)

// The compact index of a Source. Where a Store keeps every attribute as an intel.Attribute
// (a dozen strings and slices: about 630 bytes a value with its map entries, measured), a
// Source keeps each attribute as one record of bytes in its event's buffer (about 30 bytes
// besides the value, its 16-byte UUID included) and each match key as one 16-byte entry of a
// sorted array, with a 2-byte-per-entry prefix table in front: about 108 bytes a value on
// BenchmarkLargeFeed's feed, whose values average about 40 bytes. Lookups decode only the
// records a key points at.

// snapshot is one immutable state of a Source: its events and the index over their values.
// Lookups read the current snapshot without locks; a load or refresh builds a new one and
// swaps it in, so a lookup never sees half an update.
type snapshot struct {
	// events are in result order (date descending, then uuid), as a Store's, so that walking
	// a key's entries front to back yields events already sorted.
	events []stored
	// entries are the match keys' hashes, sorted by (hash, event, record): one per value, two
	// for a composite value whose halves differ.
	entries []entry
	// buckets[p] is the first entry whose hash's top bits are >= p (a prefix table), so a
	// lookup starts within a few entries of its key instead of binary searching them all.
	buckets []uint32
	shift   uint
	// names are the interned type, category and tag names records refer to by number.
	names []string
	seed  maphash.Seed
	// values counts the attributes indexed.
	values int
}

// stored is one event of a Source: its metadata, its manifest timestamp (to tell a changed
// event at the next refresh) and its attributes as records.
type stored struct {
	meta  intel.Event // Attributes is always nil; Search fills in the matched ones
	stamp string      // the manifest's timestamp of the event, as written there
	recs  []byte      // the attributes, as records (see appendRecord), in feed order
	n     int         // number of records
}

// entry says that the record at events[ev].recs[off:] holds a value whose match key hashes
// to hash.
type entry struct {
	hash    uint64
	ev, off uint32
}

// Record flags.
const (
	flagToIDS = 1 << iota
	flagUUID16
	flagUUIDText
	flagTimestamp
	flagFirstSeen
	flagLastSeen
	flagTags
	flagExtra // a comment, an object, warnings, sightings or decay scores, as JSON
)

// extra is what a record keeps of the parts of an attribute that many attributes lack.
type extra struct {
	Comment   string                 `json:"c,omitempty"`
	Object    *intel.Object          `json:"o,omitempty"`
	Warnings  []intel.WarninglistHit `json:"w,omitempty"`
	Sightings *intel.Sightings       `json:"s,omitempty"`
	Decay     []intel.DecayScore     `json:"d,omitempty"`
}

// interner numbers names (types, categories, tags) so that records hold small integers. Its
// list only grows, and only the goroutine building snapshots adds to it: a snapshot's names
// slice is a prefix that later appends never change.
type interner struct {
	names []string
	index map[string]uint32
}

// errTooManyNames is a feed inventing types, categories or tags without end.
var errTooManyNames = errors.New("more than 65536 distinct attribute types, categories and tags")

func (in *interner) id(s string) (uint32, error) {
	if n, ok := in.index[s]; ok {
		return n, nil
	}
	if len(in.names) >= 1<<16 {
		return 0, errTooManyNames
	}
	if in.index == nil {
		in.index = make(map[string]uint32)
	}
	n := uint32(len(in.names)) //nolint:gosec // below 1<<16, checked above
	s = strings.Clone(s)       // not a slice of the event file being parsed
	in.names = append(in.names, s)
	in.index[s] = n
	return n, nil
}

// appendRecord appends a's record to buf:
//
//	uvarint length of the rest | uvarint type | uvarint value length | value |
//	uvarint category | flags | uuid (16 bytes, or uvarint length and text) |
//	timestamp, first seen, last seen (each when flagged: varint seconds, uvarint nanoseconds) |
//	tags (when flagged: uvarint count, uvarint each) | extra (when flagged: uvarint length, JSON)
//
// The type and value come first, so building the index reads only them.
func appendRecord(buf []byte, in *interner, a *intel.Attribute) ([]byte, error) {
	typ, err := in.id(a.Type)
	if err != nil {
		return buf, err
	}
	cat, err := in.id(a.Category)
	if err != nil {
		return buf, err
	}
	var body []byte
	body = binary.AppendUvarint(body, uint64(typ))
	body = appendString(body, a.Value)
	body = binary.AppendUvarint(body, uint64(cat))
	var flags byte
	if a.ToIDS {
		flags |= flagToIDS
	}
	uuid16, ok := packUUID(a.UUID)
	switch {
	case ok:
		flags |= flagUUID16
	case a.UUID != "":
		flags |= flagUUIDText
	}
	for i, t := range []time.Time{a.Timestamp, a.FirstSeen, a.LastSeen} {
		if !t.IsZero() {
			flags |= flagTimestamp << i
		}
	}
	if len(a.Tags) > 0 {
		flags |= flagTags
	}
	x := extra{Comment: a.Comment, Warnings: a.Warnings, Decay: a.Decay}
	if a.Object.Name != "" || a.Object.Relation != "" || a.Object.Members != nil {
		x.Object = &a.Object
	}
	if !isZeroSightings(&a.Sightings) {
		x.Sightings = &a.Sightings
	}
	if x.Comment != "" || x.Object != nil || x.Warnings != nil || x.Decay != nil || x.Sightings != nil {
		flags |= flagExtra
	}
	body = append(body, flags)
	switch {
	case flags&flagUUID16 != 0:
		body = append(body, uuid16[:]...)
	case flags&flagUUIDText != 0:
		body = appendString(body, a.UUID)
	}
	for _, t := range []time.Time{a.Timestamp, a.FirstSeen, a.LastSeen} {
		if !t.IsZero() {
			body = binary.AppendVarint(body, t.Unix())
			body = binary.AppendUvarint(body, uint64(t.Nanosecond())) //nolint:gosec // 0 to 999,999,999
		}
	}
	if flags&flagTags != 0 {
		body = binary.AppendUvarint(body, uint64(len(a.Tags)))
		for _, tag := range a.Tags {
			n, err := in.id(tag)
			if err != nil {
				return buf, err
			}
			body = binary.AppendUvarint(body, uint64(n))
		}
	}
	if flags&flagExtra != 0 {
		j, err := json.Marshal(x)
		if err != nil {
			return buf, err
		}
		body = appendString(body, string(j))
	}
	buf = binary.AppendUvarint(buf, uint64(len(body)))
	return append(buf, body...), nil
}

func isZeroSightings(s *intel.Sightings) bool {
	return s.Seen == 0 && s.FalsePositive == 0 && s.Expiration == 0 && s.First.IsZero() &&
		s.Last.IsZero() && len(s.Sources) == 0 && s.Expires.IsZero()
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// packUUID packs a canonical lower-case UUID into 16 bytes; other spellings are kept as text,
// so what is answered is always what the feed said.
func packUUID(s string) (u [16]byte, ok bool) {
	if !intel.CanonicalUUID(s) || strings.ToLower(s) != s {
		return u, false
	}
	hexits := strings.ReplaceAll(s, "-", "")
	if _, err := hex.Decode(u[:], []byte(hexits)); err != nil {
		return u, false
	}
	return u, true
}

// reader walks a record; records are written by appendRecord only, so a short read means a
// bug, reported by ok.
type reader struct {
	b  []byte
	ok bool
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.ok, r.b = false, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.ok, r.b = false, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(n uint64) []byte {
	if uint64(len(r.b)) < n {
		r.ok, r.b = false, nil
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) name(names []string) string {
	n := r.uvarint()
	if n >= uint64(len(names)) {
		r.ok = false
		return ""
	}
	return names[n]
}

// head reads the record at b: its type and value (not copied: valid while b is), and the
// offset of the next record.
func head(b []byte, names []string) (typ string, value []byte, next int, ok bool) {
	r := reader{b: b, ok: true}
	size := r.uvarint()
	start := len(b) - len(r.b)
	typ = r.name(names)
	value = r.bytes(r.uvarint())
	rest := len(b) - start
	if !r.ok || size > uint64(rest) { //nolint:gosec // a length: not negative
		return "", nil, 0, false
	}
	return typ, value, start + int(size), true //nolint:gosec // at most rest, checked above
}

// decode reads the whole record at b.
func decode(b []byte, names []string) (intel.Attribute, bool) {
	r := reader{b: b, ok: true}
	r.uvarint() // size
	var a intel.Attribute
	a.Type = r.name(names)
	value := r.bytes(r.uvarint())
	a.Category = r.name(names)
	flags := r.bytes(1)
	if !r.ok {
		return a, false
	}
	f := flags[0]
	a.ToIDS = f&flagToIDS != 0
	// The value and the UUID share one allocation: a lookup's cost is mostly allocations.
	var sb strings.Builder
	sb.Grow(len(value) + 36)
	sb.Write(value)
	switch {
	case f&flagUUID16 != 0:
		if u := r.bytes(16); r.ok {
			intel.WriteUUID(&sb, u)
		}
	case f&flagUUIDText != 0:
		sb.Write(r.bytes(r.uvarint()))
	}
	both := sb.String()
	a.Value, a.UUID = both[:len(value)], both[len(value):]
	for i, t := range []*time.Time{&a.Timestamp, &a.FirstSeen, &a.LastSeen} {
		if f&(flagTimestamp<<i) != 0 {
			sec := r.varint()
			*t = time.Unix(sec, int64(r.uvarint())).UTC() //nolint:gosec // written from Nanosecond(): below 1e9
		}
	}
	if f&flagTags != 0 {
		n := r.uvarint()
		if n > uint64(len(r.b)) {
			return a, false
		}
		a.Tags = make([]string, 0, n)
		for range n {
			a.Tags = append(a.Tags, r.name(names))
		}
	}
	if f&flagExtra != 0 {
		var x extra
		if err := json.Unmarshal(r.bytes(r.uvarint()), &x); err != nil {
			return a, false
		}
		a.Comment, a.Warnings, a.Decay = x.Comment, x.Warnings, x.Decay
		if x.Object != nil {
			a.Object = *x.Object
		}
		if x.Sightings != nil {
			a.Sightings = *x.Sightings
		}
	}
	return a, r.ok
}

// newSnapshot indexes events (which it sorts into result order) for lookups.
func newSnapshot(events []stored, names []string, seed maphash.Seed) *snapshot {
	slices.SortFunc(events, func(a, b stored) int {
		if c := strings.Compare(b.meta.Date, a.meta.Date); c != 0 {
			return c
		}
		return strings.Compare(strings.ToLower(a.meta.UUID), strings.ToLower(b.meta.UUID))
	})
	sn := &snapshot{events: events, names: names, seed: seed}
	// Count the entries first: the array is the biggest part of the index, and growing it
	// by append would leave up to a quarter of it unused.
	n := 0
	for i := range events {
		recs := events[i].recs
		for off := 0; off < len(recs); {
			typ, value, next, ok := head(recs[off:], names)
			if !ok {
				break
			}
			n += len(valueKeys(typ, string(value)))
			off += next
		}
	}
	sn.entries = make([]entry, 0, n)
	for ei := range events {
		recs := events[ei].recs
		for off := 0; off < len(recs); {
			typ, value, next, ok := head(recs[off:], names)
			if !ok {
				break // cannot happen: records are the relay's own
			}
			sn.values++
			var last uint64
			for i, k := range valueKeys(typ, string(value)) {
				h := maphash.String(seed, k)
				if i > 0 && h == last {
					continue // "x|x": one attribute matches once
				}
				last = h
				sn.entries = append(sn.entries, entry{hash: h, ev: uint32(ei), off: uint32(off)})
			}
			off += next
		}
	}
	slices.SortFunc(sn.entries, func(a, b entry) int {
		switch {
		case a.hash != b.hash:
			return cmpU64(a.hash, b.hash)
		case a.ev != b.ev:
			return cmpU64(uint64(a.ev), uint64(b.ev))
		}
		return cmpU64(uint64(a.off), uint64(b.off))
	})
	sn.buildBuckets()
	return sn
}

// buildBuckets builds the prefix table over sn.entries, sorted.
func (sn *snapshot) buildBuckets() {
	// About two entries per bucket: 2 bytes of prefix table per value.
	width := max(1, bits.Len(uint(len(sn.entries)))-1)
	sn.shift = uint(64 - width)
	sn.buckets = make([]uint32, 1<<width+1)
	i := 0
	for p := range sn.buckets {
		for i < len(sn.entries) && sn.entries[i].hash>>sn.shift < uint64(p) {
			i++
		}
		sn.buckets[p] = uint32(i)
	}
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// search answers one query from the snapshot, as Store.Search does from a Store: the events
// holding an attribute whose value (or either half of a composite) has q.Value's match key,
// of one of q.Types, newest first, each with only its matching attributes, at most q.Limit.
func (sn *snapshot) search(ctx context.Context, q intel.Query) ([]intel.Event, error) {
	key := matchKey(q.Value)
	if key == "" || len(sn.entries) == 0 {
		return nil, nil
	}
	h := maphash.String(sn.seed, key)
	p := h >> sn.shift
	i, end := int(sn.buckets[p]), int(sn.buckets[p+1])
	for i < end && sn.entries[i].hash < h {
		i++
	}
	var out []intel.Event
	last := -1
	for n := 0; i < end && sn.entries[i].hash == h; i, n = i+1, n+1 {
		if n%1024 == 1023 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		e := sn.entries[i]
		ev := &sn.events[e.ev]
		rec := ev.recs[e.off:]
		typ, value, _, ok := head(rec, sn.names)
		if !ok || (len(q.Types) > 0 && !slices.Contains(q.Types, typ)) || !holds(typ, value, key) {
			continue // another type, or another value whose key hashes alike
		}
		a, ok := decode(rec, sn.names)
		if !ok {
			continue
		}
		if int(e.ev) != last {
			if q.Limit > 0 && len(out) == q.Limit {
				break
			}
			m := ev.meta
			m.Tags = slices.Clone(m.Tags)
			out = append(out, m)
			last = int(e.ev)
		}
		out[len(out)-1].Attributes = append(out[len(out)-1].Attributes, a)
	}
	return out, nil
}

// holds tells whether an attribute of type typ with value holds key (a match key): as
// slices.Contains(valueKeys(typ, value), key), without allocating in the common case.
func holds(typ string, value []byte, key string) bool {
	if composite(typ) {
		if i := bytesIndexByte(value, '|'); i >= 0 {
			return keyIs(value[:i], key) || keyIs(value[i+1:], key)
		}
	}
	return keyIs(value, key)
}

// keyIs tells whether matchKey(v) == key.
func keyIs(v []byte, key string) bool {
	for len(v) > 0 && v[len(v)-1] == ' ' {
		v = v[:len(v)-1]
	}
	if len(v) != len(key) {
		// Only an IPv6 address or a non-ASCII value can fold to a key of another length.
		for _, c := range v {
			if c >= 0x80 || c == ':' {
				return matchKey(string(v)) == key
			}
		}
		return false
	}
	for i := range len(v) {
		c := v[i]
		if c >= 0x80 || c == ':' {
			return matchKey(string(v)) == key
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != key[i] {
			return false
		}
	}
	return true
}

func bytesIndexByte(b []byte, c byte) int {
	for i := range b {
		if b[i] == c {
			return i
		}
	}
	return -1
}
