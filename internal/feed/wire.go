package feed

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// This file holds the on-disk shape of a MISP feed. Only the fields a lookup needs are decoded;
// everything else in the files (comments, distribution, galaxies, references...) is ignored.

// eventFile is one <uuid>.json file of a feed.
type eventFile struct {
	Event *wireEvent `json:"Event"`
}

type wireEvent struct {
	UUID        string     `json:"uuid"`
	Info        flexString `json:"info"`
	Date        flexString `json:"date"`
	ThreatLevel flexString `json:"threat_level_id"`
	Timestamp   flexString `json:"timestamp"`
	Orgc        struct {
		Name flexString `json:"name"`
	} `json:"Orgc"`
	Tag       []wireTag       `json:"Tag"`
	Attribute []wireAttribute `json:"Attribute"`
	Object    []wireObject    `json:"Object"`
}

type wireTag struct {
	Name flexString `json:"name"`
}

type wireObject struct {
	Deleted   flexBool        `json:"deleted"`
	Attribute []wireAttribute `json:"Attribute"`
}

type wireAttribute struct {
	Type      string     `json:"type"`
	Category  flexString `json:"category"`
	Value     flexString `json:"value"`
	ToIDS     flexBool   `json:"to_ids"`
	Deleted   flexBool   `json:"deleted"`
	Timestamp flexString `json:"timestamp"`
	FirstSeen flexString `json:"first_seen"`
	LastSeen  flexString `json:"last_seen"`
}

// flexString decodes a JSON string, number or null into its text. MISP itself sends integer
// columns as strings, but manifests written by PyMISP's feed generator and other exporters use
// real JSON numbers for the same fields, and a feed must load whichever tool produced it.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')):
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*f = flexString(n.String())
		return nil
	}
	return typeError("a string or a number", b)
}

// typeError reports a JSON value of the wrong kind. encoding/json does not add the field path
// to errors from UnmarshalJSON methods, so the value itself is quoted to help find it.
func typeError(want string, b []byte) error {
	const limit = 40
	if len(b) > limit {
		b = append(b[:limit:limit], "..."...)
	}
	return fmt.Errorf("want %s, got %s", want, b)
}

// flexBool decodes the booleans MISP sends as JSON booleans (tinyint(1) columns) and also the
// "0"/"1" and 0/1 forms older exports and hand-made feeds use. null is false.
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	var s flexString
	switch b = bytes.TrimSpace(b); string(b) {
	case "true":
		*f = true
		return nil
	case "false", "null":
		*f = false
		return nil
	}
	if err := s.UnmarshalJSON(b); err != nil {
		return typeError("a boolean", b)
	}
	switch strings.ToLower(strings.TrimSpace(string(s))) {
	case "1", "true":
		*f = true
	case "", "0", "false":
		*f = false
	default:
		return typeError("a boolean", b)
	}
	return nil
}

// isUUID reports whether s has the canonical 8-4-4-4-12 hex form. Manifest keys become file
// names, so anything else (".." or "/" in particular) must never reach the file system.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
