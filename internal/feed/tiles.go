package feed

import (
	"context"
	"slices"

	"github.com/misp-relay/misp-relay/internal/tiles"
)

// The dashboard tiles from a feed directory (API_URL): the Store answers them from the
// events it holds, by the same rule as MISP (an event or attribute is in a period when its
// timestamp is; an attribute without one takes its event's). Feeds carry no sightings (MISP
// leaves them out of feed exports, and the Store keeps only their totals, undated), so a
// feed counts none.

var _ tiles.Source = (*Store)(nil)

// CountEvents counts the events whose timestamp is in w.
func (s *Store) CountEvents(ctx context.Context, _ string, w tiles.Window) (int, error) {
	n := 0
	for i := range s.events {
		if w.Contains(s.events[i].meta.Timestamp) {
			n++
		}
	}
	return n, ctx.Err()
}

// CountAttributes counts the attributes f selects.
func (s *Store) CountAttributes(ctx context.Context, _ string, f tiles.AttributeFilter) (int, error) {
	n := 0
	for i := range s.events {
		ev := &s.events[i]
		for j := range ev.attrs {
			a := &ev.attrs[j]
			ts := a.Timestamp
			if ts.IsZero() {
				ts = ev.meta.Timestamp
			}
			if f.Window.Contains(ts) && (!f.IDSOnly || a.ToIDS) && (f.Types == nil || slices.Contains(f.Types, a.Type)) {
				n++
			}
		}
	}
	return n, ctx.Err()
}

// CountSightings is 0: a feed carries no dated sightings.
func (s *Store) CountSightings(ctx context.Context, _ string, _ tiles.Window) (int, error) {
	return 0, ctx.Err()
}

// Events lists the events whose timestamp is in w.
func (s *Store) Events(ctx context.Context, _ string, w tiles.Window) ([]tiles.EventMeta, error) {
	var out []tiles.EventMeta
	for i := range s.events {
		m := &s.events[i].meta
		if !w.Contains(m.Timestamp) {
			continue
		}
		out = append(out, tiles.EventMeta{
			UUID: m.UUID, Info: m.Info, Org: m.Org, Date: m.Date, Timestamp: m.Timestamp,
			ThreatLevel: m.ThreatLevel, AttributeCount: len(s.events[i].attrs), Tags: slices.Clone(m.Tags),
		})
	}
	return out, ctx.Err()
}
