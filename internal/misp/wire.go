package misp

import (
	"strconv"
	"strings"
	"time"
)

// Readers of MISP's loosely typed fields, shared by the REST client and the feed loader: the
// same event can arrive from either, and must map to the same CTIM.

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
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
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
