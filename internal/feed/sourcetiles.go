package feed

import (
	"context"
	"slices"
	"time"

	"github.com/misp-relay/misp-relay/internal/tiles"
	"github.com/misp-relay/misp-relay/internal/upstream"
)

// The dashboard tiles from a public feed (FEEDS): a Source answers them from its current
// snapshot, by the Store's rule (timestamp in the window; an attribute without one takes
// its event's; no dated sightings). While its first load runs it answers "unavailable"
// rather than figures of part of the feed.

var _ tiles.Source = (*Source)(nil)

// tileSnapshot is the snapshot tiles are drawn from, or why there is none to draw from.
func (s *Source) tileSnapshot(ctx context.Context) (*snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sn := s.snap.Load()
	if st := s.Status(); st.State == Loading || sn == nil {
		if err := s.notReady(); err != nil {
			return nil, err
		}
		return nil, &upstream.Error{
			Summary: st.Name + " is not available", Op: "tiles", Kind: upstream.ErrUnavailable,
			Detail: "the feed is still loading, and a tile would count part of it; ask again once /health says it is loaded",
		}
	}
	return sn, nil
}

// CountEvents counts the events whose timestamp is in w.
func (s *Source) CountEvents(ctx context.Context, _ string, w tiles.Window) (int, error) {
	sn, err := s.tileSnapshot(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range sn.events {
		if w.Contains(sn.events[i].meta.Timestamp) {
			n++
		}
	}
	return n, nil
}

// CountAttributes counts the attributes f selects, reading each record's head only.
func (s *Source) CountAttributes(ctx context.Context, _ string, f tiles.AttributeFilter) (int, error) {
	sn, err := s.tileSnapshot(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range sn.events {
		ev := &sn.events[i]
		for off := 0; off < len(ev.recs); {
			typ, ids, ts, next, ok := tileHead(ev.recs[off:], sn.names)
			if !ok {
				break // a bug in the writer; lookups say the same by finding nothing
			}
			off += next
			if ts.IsZero() {
				ts = ev.meta.Timestamp
			}
			if f.Window.Contains(ts) && (!f.IDSOnly || ids) && (f.Types == nil || slices.Contains(f.Types, typ)) {
				n++
			}
		}
	}
	return n, nil
}

// tileHead reads what tiles need of the record at b (see appendRecord): its type, IDS flag
// and timestamp, and the offset of the next record.
func tileHead(b []byte, names []string) (typ string, ids bool, ts time.Time, next int, ok bool) {
	typ, _, next, ok = head(b, names)
	if !ok {
		return "", false, time.Time{}, 0, false
	}
	r := reader{b: b, ok: true}
	r.uvarint() // size
	r.name(names)
	r.bytes(r.uvarint()) // value
	r.name(names)        // category
	flags := r.bytes(1)
	if !r.ok {
		return "", false, time.Time{}, 0, false
	}
	f := flags[0]
	switch {
	case f&flagUUID16 != 0:
		r.bytes(16)
	case f&flagUUIDText != 0:
		r.bytes(r.uvarint())
	}
	if f&flagTimestamp != 0 {
		sec := r.varint()
		ts = time.Unix(sec, int64(r.uvarint())).UTC() //nolint:gosec // written from Nanosecond(): below 1e9
	}
	return typ, f&flagToIDS != 0, ts, next, r.ok
}

// CountSightings is 0: a feed carries no dated sightings.
func (s *Source) CountSightings(ctx context.Context, _ string, _ tiles.Window) (int, error) {
	_, err := s.tileSnapshot(ctx)
	return 0, err
}

// Events lists the events whose timestamp is in w.
func (s *Source) Events(ctx context.Context, _ string, w tiles.Window) ([]tiles.EventMeta, error) {
	sn, err := s.tileSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	var out []tiles.EventMeta
	for i := range sn.events {
		m := &sn.events[i].meta
		if w.Contains(m.Timestamp) {
			out = append(out, tiles.EventMeta{
				UUID: m.UUID, Info: m.Info, Org: m.Org, Date: m.Date, Timestamp: m.Timestamp,
				ThreatLevel: m.ThreatLevel, AttributeCount: sn.events[i].n, Tags: slices.Clone(m.Tags),
			})
		}
	}
	return out, nil
}
