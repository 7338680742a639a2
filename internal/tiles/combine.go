package tiles

import "context"

// Combine is a Source that sums sources: a tenant's MISP and the relay's public feeds
// (FEEDS). Counts add up and event lists are concatenated, so the bars still add up to the
// summary; an event both in the MISP and in a feed counts once in each, as each received it.
// The first failure fails the figure: a tile is exact or not given.
func Combine(sources ...Source) Source {
	if len(sources) == 1 {
		return sources[0]
	}
	return combined(sources)
}

type combined []Source

func (c combined) CountEvents(ctx context.Context, key string, w Window) (int, error) {
	return c.sum(func(s Source) (int, error) { return s.CountEvents(ctx, key, w) })
}

func (c combined) CountAttributes(ctx context.Context, key string, f AttributeFilter) (int, error) {
	return c.sum(func(s Source) (int, error) { return s.CountAttributes(ctx, key, f) })
}

func (c combined) CountSightings(ctx context.Context, key string, w Window) (int, error) {
	return c.sum(func(s Source) (int, error) { return s.CountSightings(ctx, key, w) })
}

func (c combined) Events(ctx context.Context, key string, w Window) ([]EventMeta, error) {
	var out []EventMeta
	for _, s := range c {
		events, err := s.Events(ctx, key, w)
		if err != nil {
			return nil, err
		}
		out = append(out, events...)
	}
	return out, nil
}

func (c combined) sum(f func(Source) (int, error)) (int, error) {
	total := 0
	for _, s := range c {
		n, err := f(s)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// Keyed is src asked with key whatever key its caller gives, its events linked under ui ("":
// no links): one source of a tenant of several, each with its own key and MISP.
func Keyed(src Source, key, ui string) Source { return keyed{src, key, ui} }

type keyed struct {
	src     Source
	key, ui string
}

func (k keyed) CountEvents(ctx context.Context, _ string, w Window) (int, error) {
	return k.src.CountEvents(ctx, k.key, w)
}

func (k keyed) CountAttributes(ctx context.Context, _ string, f AttributeFilter) (int, error) {
	return k.src.CountAttributes(ctx, k.key, f)
}

func (k keyed) CountSightings(ctx context.Context, _ string, w Window) (int, error) {
	return k.src.CountSightings(ctx, k.key, w)
}

func (k keyed) Events(ctx context.Context, _ string, w Window) ([]EventMeta, error) {
	events, err := k.src.Events(ctx, k.key, w)
	if err != nil {
		return nil, err
	}
	out := make([]EventMeta, len(events))
	for i, e := range events {
		e.UI, e.Linked = k.ui, true
		out[i] = e
	}
	return out, nil
}
