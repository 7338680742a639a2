package mispjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/misp-relay/misp-relay/internal/intel"
)

// String is one of MISP's loosely typed scalars: a JSON string, a number's literal text, or
// null (read as ""). A value of another kind reads as "" and is kept (cut short) for Err.
type String struct {
	s   string
	bad string
}

// S returns a String holding s, for code that builds MISP JSON (the fake MISP, tests).
func S(s string) String { return String{s: s} }

// Text returns the value's text; "" for null, absent, or a value of another kind.
func (f String) Text() string { return f.s }

// Err says what was wrong with the value, or nil.
func (f String) Err() error { return kindError("a string or a number", f.bad) }

// MarshalJSON writes the text as a JSON string.
func (f String) MarshalJSON() ([]byte, error) { return json.Marshal(f.s) }

// UnmarshalJSON never fails: see String.
func (f *String) UnmarshalJSON(b []byte) error {
	*f = String{}
	switch {
	case len(b) == 0:
	case b[0] == '"':
		// Most MISP strings have no escapes: take the bytes as they are (the decoder has
		// checked the syntax) rather than decoding them a second time.
		if inner := b[1 : len(b)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
			f.s = string(inner)
			return nil
		}
		var s string
		if json.Unmarshal(b, &s) != nil {
			f.bad = cut(b)
			return nil
		}
		f.s = s
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		f.s = string(b)
	case string(b) == "null":
	default:
		f.bad = cut(b)
	}
	return nil
}

// Bool is one of MISP's booleans: true/false, 0/1, "0"/"1" or "true"/"false"; null is false.
// A value of another kind reads as false and is kept (cut short) for Err.
type Bool struct {
	v   bool
	set bool
	bad string
}

// B returns a Bool holding v.
func B(v bool) Bool { return Bool{v: v, set: true} }

// Value returns the boolean.
func (f Bool) Value() bool { return f.v }

// Set reports whether the JSON gave the field a boolean (null or a value of another kind
// count as not set), for fields whose absence means MISP's default rather than false, such as
// a tag's exportable.
func (f Bool) Set() bool { return f.set }

// Err says what was wrong with the value, or nil.
func (f Bool) Err() error { return kindError("a boolean", f.bad) }

// MarshalJSON writes a JSON boolean.
func (f Bool) MarshalJSON() ([]byte, error) { return json.Marshal(f.v) }

// UnmarshalJSON never fails: see Bool.
func (f *Bool) UnmarshalJSON(b []byte) error {
	*f = Bool{}
	switch strings.ToLower(string(bytes.TrimSpace(b))) {
	case "true", "1", `"1"`, `"true"`:
		f.v, f.set = true, true
	case "false", "0", `"0"`, `"false"`, `""`:
		f.set = true
	case "null":
	default:
		f.bad = cut(b)
	}
	return nil
}

// cut keeps enough of a value of the wrong kind to find it in a file: encoding/json does not
// add the field's path to what an UnmarshalJSON method reports.
func cut(b []byte) string {
	const limit = 40
	if len(b) > limit {
		return string(b[:limit]) + "..."
	}
	return string(b)
}

func kindError(want, bad string) error {
	if bad == "" {
		return nil
	}
	return fmt.Errorf("want %s, got %s", want, bad)
}

// ThreatLevel maps threat_level_id ("1".."4") to 1..4, and anything else to 0, so a malformed
// record can never pose as a severity it does not state.
func ThreatLevel(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > 4 {
		return 0
	}
	return n
}

// EpochSeconds reads MISP's timestamp fields (seconds since the epoch, sent as a string). "0"
// and unreadable values give the zero time ("absent or unreadable").
func EpochSeconds(s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{} // without asking ParseInt, whose error is an allocation
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.Unix(n, 0).UTC()
}

// SeenTime reads first_seen/last_seen: MISP stores them as microseconds since the epoch (and
// sends that number as a string), while exports and feeds written by PyMISP carry ISO-8601
// text. "", "null" and unreadable values give the zero time (unset).
func SeenTime(s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 {
			return time.Time{}
		}
		return time.UnixMicro(n).UTC()
	}
	// PyMISP writes ISO-8601 with a colon offset and microseconds; other tools drop the colon,
	// the offset or the time of day.
	for _, layout := range [...]string{
		time.RFC3339Nano,
		"2006-01-02T15:04:05.999999999Z0700",
		"2006-01-02T15:04:05.999999999",
		"2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999",
		"2006-01-02",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// AnalysisLevel maps MISP's analysis ("0" initial, "1" ongoing, "2" complete).
func AnalysisLevel(s string) intel.Analysis {
	switch strings.TrimSpace(s) {
	case "0":
		return intel.AnalysisInitial
	case "1":
		return intel.AnalysisOngoing
	case "2":
		return intel.AnalysisComplete
	}
	return intel.AnalysisUnknown
}
