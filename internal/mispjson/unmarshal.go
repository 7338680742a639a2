//go:build go1.27 && goexperiment.jsonv2

// The go.mod go directive (1.26) makes encoding/json/v2 and jsontext unavailable to a file
// without this constraint; every build of the project uses go1.27 (see the Makefile).

package mispjson

import (
	"encoding/json"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
)

// strict is encoding/json's v1 behaviour (field names matched without regard to case,
// duplicate names and invalid UTF-8 accepted, null a no-op, ...) less its way of reporting
// errors: a value of the wrong kind for a Go type stops the decoding instead of being
// skipped and reported at the end. That way costs encoding/json a validation pass over each
// value before it decodes it (the whole attribute, then again each list given to the v1
// Unmarshal of UnmarshalJSON), and where nothing is of the wrong kind both ways decode the
// same.
var strict = jsonv2.JoinOptions(json.DefaultOptionsV1(), json.ReportErrorsWithLegacySemantics(false))

// Unmarshal decodes the JSON value b into v exactly as json.Unmarshal decodes it into a zero
// T, result and error alike, at less cost for MISP's usual JSON: it decodes b strictly (see
// strict) and, only if that fails on a value of the wrong kind, zeroes v and decodes b again
// with json.Unmarshal, which reads around such values.
func Unmarshal[T any](b []byte, v *T) error {
	*v = *new(T)
	if jsonv2.Unmarshal(b, v, strict) == nil {
		return nil
	}
	*v = *new(T) // the strict pass may have decoded part of it
	return json.Unmarshal(b, v)
}

// legacy reports whether dec decodes with encoding/json's v1 error semantics: json.Unmarshal
// (and Decoder.Decode) do; Unmarshal's strict pass does not.
func legacy(dec *jsontext.Decoder) bool {
	v, _ := jsonv2.GetOption(dec.Options(), json.ReportErrorsWithLegacySemantics)
	return v
}

// UnmarshalJSONFrom is UnmarshalJSON without its copy of the list for a second decoder, for
// a strict decoding (see Unmarshal): the kept elements are decoded where they are and the
// others skipped, and an element of the wrong kind is an error, on which Unmarshal decodes
// again the v1 way. Under v1 error semantics, and for what is not a list, it is
// UnmarshalJSON on the value.
func (l *List[T]) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if legacy(dec) || dec.PeekKind() != '[' {
		b, err := dec.ReadValue()
		if err != nil {
			return err
		}
		return l.UnmarshalJSON(b)
	}
	l.items, l.err = nil, nil
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	limit := listCap[T]()
	for dec.PeekKind() != ']' {
		if len(l.items) == limit {
			if err := dec.SkipValue(); err != nil {
				return err
			}
			continue
		}
		l.items = append(l.items, *new(T))
		if err := jsonv2.UnmarshalDecode(dec, &l.items[len(l.items)-1]); err != nil {
			return err
		}
	}
	_, err := dec.ReadToken()
	return err
}

// UnmarshalJSONFrom is UnmarshalJSON without its copies of the list for a second decoder,
// for a strict decoding (see Unmarshal): each sighting is decoded where it is into the same
// element, and a field of the wrong kind is an error, on which Unmarshal decodes again the
// v1 way. Under v1 error semantics, and for what is not a list, it is UnmarshalJSON on the
// value.
func (s *Sightings) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if legacy(dec) || dec.PeekKind() != '[' {
		b, err := dec.ReadValue()
		if err != nil {
			return err
		}
		return s.UnmarshalJSON(b)
	}
	*s = Sightings{}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	var one Sighting
	for {
		switch dec.PeekKind() {
		case ']':
			_, err := dec.ReadToken()
			return err
		case '{':
			one = Sighting{}
			if err := jsonv2.UnmarshalDecode(dec, &one); err != nil {
				return err
			}
			if s.err == nil {
				s.err = one.check()
			}
			addSighting(&s.summary, &one)
		default:
			elem, err := dec.ReadValue()
			if err != nil {
				return err
			}
			s.notObject(elem)
		}
	}
}
