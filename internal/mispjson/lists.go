package mispjson

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/misp-relay/misp-relay/internal/intel"
)

// MISP's lists are read into what the relay keeps, never into one element per element sent:
// the byte caps of the MISP client bound what it reads, not what that decodes to, and a
// 1 MiB list of empty objects ([{},{},...]) is 350,000 elements. Tags, warninglist hits and
// decay scores keep their first elements, in MISP's order, up to these caps and skip the
// rest unread; sightings are counted one at a time into a summary (see Sightings).
const (
	// MaxTags bounds the tags kept of one Tag list (an attribute's, inherited ones
	// included, or an event's). Real events carry a few dozen tags, galaxies included; a
	// thousand is a broken or hostile MISP, and nothing reads past the first few hundred.
	MaxTags = 256
	// MaxWarnings bounds the warninglist hits kept of one attribute. MISP ships about a
	// hundred lists and a value is on a few; the verdict and its reasons name those.
	MaxWarnings = 64
	// MaxDecayScores bounds the decay scores kept of one attribute: one per decaying model,
	// and an instance enables a few.
	MaxDecayScores = 32
)

// List is one of MISP's lists of which the relay keeps the first elements, up to MaxTags,
// MaxWarnings or MaxDecayScores for its element type. A value of another kind than a list
// (null aside) reads as an empty list, and a kept element of another kind than an object as
// an empty element in its place; either is remembered for Err, as String does.
type List[T listElement] struct {
	items []T
	err   error
}

// listElement is what a List holds; each element type has its cap (see listCap).
type listElement interface {
	Tag | Warning | DecayScore
}

// listCap is the cap of a List of T.
func listCap[T listElement]() int {
	switch any((*T)(nil)).(type) {
	case *Tag:
		return MaxTags
	case *Warning:
		return MaxWarnings
	}
	return MaxDecayScores
}

// All returns the kept elements, in MISP's order; nil when none.
func (l *List[T]) All() []T { return l.items }

// Err says what was wrong with the list or one of its kept elements' kinds, or nil. The
// elements' own fields have their own Err.
func (l *List[T]) Err() error { return l.err }

// UnmarshalJSON never fails: see List.
func (l *List[T]) UnmarshalJSON(b []byte) error {
	l.items, l.err = ReadList[T](b, listCap[T]())
	return nil
}

// ReadList decodes the first limit elements of the JSON list b into a slice and leaves the
// others unread, so that what it allocates depends on limit, not on the length of the list.
// null gives no elements. Another value than a list, or an element that does not fit T
// (decoded as T's zero value in its place), gives the elements read and an error. b must be
// valid JSON, as encoding/json hands it to an UnmarshalJSON method: the elements past limit
// are not checked.
func ReadList[T any](b []byte, limit int) ([]T, error) {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		return nil, nil
	case len(b) == 0 || b[0] != '[':
		return nil, kindError("a list", cut(b))
	case limit <= 0, len(bytes.TrimSpace(b[1:len(b)-1])) == 0: // [], MISP's usual list
		return nil, nil
	}
	// Fewer commas than limit, in strings or not, is at most limit elements: no need to
	// find where the limit-th ends (counting bytes is much faster than scanning JSON).
	if bytes.Count(b, comma) >= limit {
		end := 1 // past the '['
		for range limit {
			_, e, ok := nextElement(b, end)
			if !ok {
				break
			}
			end = e
		}
		if _, _, more := nextElement(b, end); more {
			// The kept elements, closed: a copy (the three-index slice makes append
			// copy), so the caller's bytes are never written to.
			b = append(b[:end:end], ']')
		}
	}
	var items []T
	err := json.Unmarshal(b, &items)
	if _, typeErr := errors.AsType[*json.UnmarshalTypeError](err); err != nil && !typeErr {
		return nil, err // not JSON: never so for what encoding/json hands an UnmarshalJSON
	}
	return items, err
}

// nextElement finds the element of the JSON list b that comes after offset i (1 for the
// first one, the offset of the previous element's end for the others): its bounds, and
// false past the last element. It allocates nothing. b must be valid JSON.
func nextElement(b []byte, i int) (start, end int, ok bool) {
	for i < len(b) && (b[i] == ',' || isSpace(b[i])) {
		i++
	}
	if i >= len(b) || b[i] == ']' {
		return 0, 0, false
	}
	start, depth := i, 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case '[', '{':
			depth++
		case ']', '}':
			if depth == 0 { // the list's own end
				return start, trimEnd(b, start, i), true
			}
			depth--
		case ',':
			if depth == 0 {
				return start, trimEnd(b, start, i), true
			}
		}
	}
	return start, len(b), true
}

// trimEnd returns end less the whitespace that precedes it in b[start:end].
func trimEnd(b []byte, start, end int) int {
	for end > start && isSpace(b[end-1]) {
		end--
	}
	return end
}

var comma = []byte{','}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// Sightings is an attribute's Sighting list, read into the summary the relay keeps
// (intel.Sightings): MISP lists every sighting (thousands on values sensors report), and
// they are decoded a batch at a time into the same few elements, so their number costs no
// memory. The counts are exact. A value of another kind than a list (null aside) reads as no
// sighting, an element of another kind than an object as a sighting of MISP's default type
// (0) without a date, and a field of another kind as empty; one of them is remembered for
// Err.
type Sightings struct {
	summary intel.Sightings
	err     error
}

// Summary returns the counts by type, dates and sources of the sightings.
func (s *Sightings) Summary() intel.Sightings { return s.summary }

// Err says what was wrong with the list, one of its sightings or one of their fields, or nil.
func (s *Sightings) Err() error { return s.err }

// sightingsBatch is how many sightings one json.Unmarshal call decodes: enough to spread its
// fixed cost (a decoder, taken from a pool that the race detector keeps emptying) over many,
// few enough that a batch's elements, reused for the next batch, stay small.
const sightingsBatch = 128

// UnmarshalJSON never fails: see Sightings.
func (s *Sightings) UnmarshalJSON(b []byte) error {
	*s = Sightings{}
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		return nil
	case len(b) == 0 || b[0] != '[':
		s.err = kindError("a list", cut(b))
		return nil
	}
	var r sightingReader
	// The pending run of object elements, decoded together: b[first:last], n of them.
	first, last, n := 0, 0, 0
	whole := true // the run holds every element of the list so far
	for start, end, ok := nextElement(b, 1); ok; start, end, ok = nextElement(b, end) {
		if b[start] == '{' {
			if n == 0 {
				first = start
			}
			last, n = end, n+1
			if n == sightingsBatch {
				s.read(&r, r.run(b[first:last]))
				n, whole = 0, false
			}
			continue
		}
		// Not an object: not given to the decoder, whose error would cost an allocation.
		if n > 0 {
			s.read(&r, r.run(b[first:last]))
			n = 0
		}
		whole = false
		s.notObject(b[start:end])
	}
	switch {
	case n > 0 && whole:
		s.read(&r, b) // the common case: the list as it is, without a copy
	case n > 0:
		s.read(&r, r.run(b[first:last]))
	}
	return nil
}

// notObject counts elem, an element of the list that is not an object, as a sighting of
// MISP's default type without a date, and remembers it for Err unless it is null.
func (s *Sightings) notObject(elem []byte) {
	if s.err == nil && string(elem) != "null" {
		s.err = kindError("a sighting object", cut(elem))
	}
	addSighting(&s.summary, &Sighting{})
}

// sightingReader holds what decoding a Sighting list reuses from batch to batch.
type sightingReader struct {
	batch []Sighting
	list  []byte // a run of elements made a list
}

// run returns the elements of run, a part of a JSON list, as a list of their own.
func (r *sightingReader) run(run []byte) []byte {
	r.list = append(append(append(r.list[:0], '['), run...), ']')
	return r.list
}

// read decodes the JSON list of sightings list and adds them to the summary.
func (s *Sightings) read(r *sightingReader, list []byte) {
	clear(r.batch[:cap(r.batch)]) // encoding/json decodes into what the elements hold
	r.batch = r.batch[:0]
	err := json.Unmarshal(list, &r.batch)
	if _, typeErr := errors.AsType[*json.UnmarshalTypeError](err); err != nil && !typeErr {
		r.batch = r.batch[:0] // not JSON: never so for what encoding/json hands an UnmarshalJSON
	}
	for i := range r.batch {
		if s.err == nil {
			s.err = cmp.Or(err, r.batch[i].check())
		}
		addSighting(&s.summary, &r.batch[i])
	}
	if s.err == nil {
		s.err = err
	}
}

// addSighting counts one sighting into out. A sighting of an unknown type is ignored.
func addSighting(out *intel.Sightings, s *Sighting) {
	when := EpochSeconds(s.DateSighting.Text())
	switch strings.TrimSpace(s.Type.Text()) {
	case "0", "":
		// MISP's default type is 0; older exports leave it out.
		out.Seen++
		if !when.IsZero() && (out.First.IsZero() || when.Before(out.First)) {
			out.First = when
		}
		if when.After(out.Last) {
			out.Last = when
		}
		src := strings.TrimSpace(s.Source.Text())
		if src == "" {
			src = strings.TrimSpace(s.Organisation.Name.Text())
		}
		if src != "" && len(out.Sources) < intel.MaxSightingSources && !slices.Contains(out.Sources, src) {
			out.Sources = append(out.Sources, src)
		}
	case "1":
		out.FalsePositive++
	case "2":
		out.Expiration++
		if !when.IsZero() && (out.Expires.IsZero() || when.Before(out.Expires)) {
			out.Expires = when
		}
	}
}
