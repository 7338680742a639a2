package service

import (
	"context"
	"encoding/hex"
	"errors"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/tiles"
)

// The dashboard tiles' data (/tiles/tile-data) comes from every source of the tenant (its
// MISPs, then the feeds: the sources lookups ask), each asked with its own key, inside the
// request's tenant share and deadline like a lookup, summed; Config.Tiles caches the answers
// per tenant.

// TileData draws one tile's data for a period. A mistake in the tile or period is answered
// without a MISP call.
func (s *Service) TileData(ctx context.Context, t *Tenant, tile, period string) (*tiles.Data, error) {
	if _, err := TileDefinition(tile); err != nil {
		return nil, err
	}
	if err := t.failed(); err != nil {
		return nil, err
	}
	// Every source of the tenant (its MISPs, then the feeds), each asked with its own key
	// and linking to its own MISP.
	var srcs []tiles.Source
	for _, src := range t.sources {
		if src.Backend == nil {
			return nil, errNoBackend
		}
		ts := tileSource(src.Backend)
		if ts == nil {
			return nil, tileError(tiles.ErrNoSource)
		}
		srcs = append(srcs, namedTiles{tiles.Keyed(ts, src.Key, src.UI), func(err error) error { return t.named(src, err) }})
	}
	if len(srcs) == 0 {
		return nil, errNoBackend
	}
	d, err := s.cfg.Tiles.Data(ctx, tiles.Request{
		Tenant: hex.EncodeToString(t.id[:]), Source: tiles.Combine(srcs...),
		Tile: tile, Period: tiles.Period(period), Now: s.cfg.Now(),
	})
	if err != nil {
		return nil, tileError(err)
	}
	return d, nil
}

// nexter is a backend in front of another (the cache): tiles ask the one behind, since
// the cache keeps lookups only.
type nexter interface{ Next() intel.Backend }

// tileSource finds what answers tiles behind b; nil when nothing does.
func tileSource(b intel.Backend) tiles.Source {
	for range 4 { // decorators do not nest deeper
		if src, ok := b.(tiles.Source); ok {
			return src
		}
		n, ok := b.(nexter)
		if !ok {
			return nil
		}
		b = n.Next()
	}
	return nil
}

// namedTiles is one source of a tenant whose failures name it when the tenant has several,
// as lookups' do.
type namedTiles struct {
	src   tiles.Source
	named func(error) error
}

func (n namedTiles) CountEvents(ctx context.Context, key string, w tiles.Window) (int, error) {
	c, err := n.src.CountEvents(ctx, key, w)
	return c, n.named(err)
}

func (n namedTiles) CountAttributes(ctx context.Context, key string, f tiles.AttributeFilter) (int, error) {
	c, err := n.src.CountAttributes(ctx, key, f)
	return c, n.named(err)
}

func (n namedTiles) CountSightings(ctx context.Context, key string, w tiles.Window) (int, error) {
	c, err := n.src.CountSightings(ctx, key, w)
	return c, n.named(err)
}

func (n namedTiles) Events(ctx context.Context, key string, w tiles.Window) ([]tiles.EventMeta, error) {
	events, err := n.src.Events(ctx, key, w)
	return events, n.named(err)
}

// tileError words the tiles package's failures as the core's.
func tileError(err error) error {
	var ae *tiles.ArgumentError
	switch {
	case errors.As(err, &ae):
		return &Error{Kind: KindInvalid, Msg: ae.Msg}
	case errors.Is(err, tiles.ErrNoSource):
		return ConfigError("This relay's MISP source cannot draw dashboard tiles.")
	}
	return err
}

// TileDefinition is the definition of one tile; an unknown id is KindInvalid.
func TileDefinition(id string) (tiles.Definition, error) {
	d, err := tiles.DefinitionOf(id)
	if err != nil {
		return d, tileError(err)
	}
	return d, nil
}
