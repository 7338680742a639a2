// Package tiles is the XDR dashboard's view of a MISP: the tile definitions XDR lists
// (POST /tiles), the periods they cover, and each tile's data (POST /tiles/tile-data),
// computed from a Source, the small interface this package owns and that the MISP client
// and the feed implement. Board caches answers per tenant for a short time, because the
// dashboard asks again every few minutes and a MISP count is not free.
//
// "Added in the period" means: the event's or attribute's timestamp (MISP's last change) is
// in the period. MISP keeps no creation time; of the times it has, timestamp is the only one
// every event and attribute carries (publish_timestamp is 0 for unpublished events, the
// event date is a day the author chose, often the incident's), the only one with the second
// precision hourly bars need, and the one MISP filters events and attributes on alike. An
// event edited later moves to the later period: the tiles say "added or changed".
//
// It imports nothing of the relay, so the backends can implement Source without a cycle.
package tiles

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Period is a span of time a tile covers, ending now.
type Period string

// The periods of XDR's dashboard (Cisco's relays offer these five).
const (
	Last24Hours Period = "last_24_hours"
	Last7Days   Period = "last_7_days"
	Last30Days  Period = "last_30_days"
	Last60Days  Period = "last_60_days"
	Last90Days  Period = "last_90_days"
)

// Periods lists the periods in the order definitions give them.
var periodSpecs = []struct {
	p      Period
	span   time.Duration
	bucket time.Duration // one bar of the charts
	words  string        // "24 hours", for texts
}{
	{Last24Hours, 24 * time.Hour, time.Hour, "24 hours"},
	{Last7Days, 7 * 24 * time.Hour, 24 * time.Hour, "7 days"},
	{Last30Days, 30 * 24 * time.Hour, 24 * time.Hour, "30 days"},
	{Last60Days, 60 * 24 * time.Hour, 24 * time.Hour, "60 days"},
	{Last90Days, 90 * 24 * time.Hour, 24 * time.Hour, "90 days"},
}

// AllPeriods returns the five periods, shortest first.
func AllPeriods() []Period {
	out := make([]Period, len(periodSpecs))
	for i, s := range periodSpecs {
		out[i] = s.p
	}
	return out
}

// Window is the half-open span [From, To).
type Window struct{ From, To time.Time }

// Contains reports whether t is in w.
func (w Window) Contains(t time.Time) bool { return !t.Before(w.From) && t.Before(w.To) }

// span is what one period means at one moment: the window, the one before it (for
// comparisons) and the chart buckets.
type span struct {
	period   Period
	cur      Window
	prev     Window
	bucket   time.Duration
	words    string
	nBuckets int
}

// spanOf computes period's windows at now. The buckets are whole UTC hours (24 hours) or
// days (the others), so a bar is a calendar hour or day: the window ends at the end of the
// current bucket (the next full hour, or the next UTC midnight) and the last bar is the
// bucket in progress. The buckets partition the window exactly, so the bars add up to the
// period's count, and every answer of one bucket describes the same window.
func spanOf(p Period, now time.Time) (span, error) {
	for _, s := range periodSpecs {
		if s.p != p {
			continue
		}
		end := now.UTC().Truncate(s.bucket) // time.Truncate counts from UTC midnight of year 1
		if end.Before(now) {
			end = end.Add(s.bucket)
		}
		cur := Window{From: end.Add(-s.span), To: end}
		return span{
			period: p, cur: cur, prev: Window{From: cur.From.Add(-s.span), To: cur.From},
			bucket: s.bucket, words: s.words, nBuckets: int(s.span / s.bucket),
		}, nil
	}
	return span{}, &ArgumentError{fmt.Sprintf("Unknown period %q: the periods are last_24_hours, last_7_days, last_30_days, last_60_days and last_90_days.", string(p))}
}

// ArgumentError is a tile id or period this package does not know: the caller's mistake.
type ArgumentError struct{ Msg string }

func (e *ArgumentError) Error() string { return e.Msg }

// EventMeta is what tiles need of one event (MISP's metadata: no attributes).
type EventMeta struct {
	UUID, Info string
	Org        string    // the creator organisation's name
	Date       string    // the event's date, YYYY-MM-DD
	Timestamp  time.Time // last change: what places the event in a period
	// ThreatLevel is 1 (High) to 4 (Undefined); anything else counts as Undefined.
	ThreatLevel    int
	AttributeCount int
	Tags           []string // event tag names; galaxy clusters are "misp-galaxy:..." tags
	// UI is the base of links into the source holding the event, when Linked (set by
	// Keyed; "" then means no link); otherwise the Request's UI is.
	UI     string
	Linked bool
}

// AttributeFilter selects the attributes CountAttributes counts.
type AttributeFilter struct {
	Window  Window   // the attribute's timestamp is in it
	IDSOnly bool     // flagged for IDS only
	Types   []string // of these MISP types only; nil for any
}

// Source is what tiles ask of a MISP or a feed for one tenant (key: its credential). Every
// figure must be exact: a source pages through everything, and fails rather than sample.
type Source interface {
	// CountEvents counts the events whose timestamp is in w.
	CountEvents(ctx context.Context, key string, w Window) (int, error)
	// CountAttributes counts the (not deleted) attributes f selects.
	CountAttributes(ctx context.Context, key string, f AttributeFilter) (int, error)
	// CountSightings counts the sightings (type 0, "seen"; not false positives or
	// expirations) dated in w.
	CountSightings(ctx context.Context, key string, w Window) (int, error)
	// Events lists every event whose timestamp is in w, metadata only, in any order.
	Events(ctx context.Context, key string, w Window) ([]EventMeta, error)
}

// ErrNoSource is returned when the tenant's backend cannot answer tiles.
var ErrNoSource = errors.New("tiles: this source cannot answer dashboard tiles")
