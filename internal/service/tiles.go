package service

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/misp-relay/misp-relay/internal/gen"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/tiles"
)

// The dashboard endpoints (/tiles, /tiles/tile, /tiles/tile-data): thin handlers over
// package tiles. A tile's data comes from every source of the tenant (its MISPs, then the
// feeds: the sources lookups ask), each asked with its own key, inside the request's tenant
// share and deadline like a lookup, summed; Config.Tiles caches the answers per tenant.

// Tiles lists the tile definitions.
func (s *Service) Tiles(context.Context, gen.TilesRequestObject) (gen.TilesResponseObject, error) {
	defs := tiles.Definitions()
	out := make([]gen.TileDefinition, len(defs))
	for i, d := range defs {
		out[i] = genDefinition(d)
	}
	return gen.Tiles200JSONResponse{Data: &out}, nil
}

// Tile answers one definition.
func (s *Service) Tile(ctx context.Context, req gen.TileRequestObject) (gen.TileResponseObject, error) {
	d, err := tiles.DefinitionOf(req.Body.TileId)
	if err != nil {
		return gen.Tile200JSONResponse{Errors: errorsOf(ctx, tileError(err))}, nil
	}
	def := genDefinition(d)
	return gen.Tile200JSONResponse{Data: &def}, nil
}

// TileData answers one tile's data for a period.
func (s *Service) TileData(ctx context.Context, req gen.TileDataRequestObject) (gen.TileDataResponseObject, error) {
	fail := func(err error) (gen.TileDataResponseObject, error) {
		return gen.TileData200JSONResponse{Errors: errorsOf(ctx, tileError(err))}, nil
	}
	// The tile and period first: a mistake there is answered without a MISP call.
	if _, err := tiles.DefinitionOf(req.Body.TileId); err != nil {
		return fail(err)
	}
	t := s.tenantOf(ctx)
	if t.err != nil {
		return fail(t.err)
	}
	// Every source of the tenant (its MISPs, then the feeds), each asked with its own key
	// and linking to its own MISP.
	var srcs []tiles.Source
	for _, src := range t.sources {
		if src.Backend == nil {
			return fail(errNoBackend)
		}
		ts := tileSource(src.Backend)
		if ts == nil {
			return fail(tiles.ErrNoSource)
		}
		srcs = append(srcs, namedTiles{tiles.Keyed(ts, src.Key, src.UI), func(err error) error { return t.named(src, err) }})
	}
	if len(srcs) == 0 {
		return fail(errNoBackend)
	}
	d, err := s.cfg.Tiles.Data(ctx, tiles.Request{
		Tenant: hex.EncodeToString(t.id[:]), Source: tiles.Combine(srcs...),
		Tile: req.Body.TileId, Period: tiles.Period(req.Body.Period), Now: s.cfg.Now(),
	})
	if err != nil {
		return fail(err)
	}
	return tileDataResponse{d}, nil
}

// tileDataResponse writes tiles.Data as it is: its shape follows the tile's type (the
// spec's anyOf), which the generated union type would only make harder to build.
type tileDataResponse struct{ data *tiles.Data }

func (r tileDataResponse) VisitTileDataResponse(w http.ResponseWriter) error {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(struct {
		Data *tiles.Data `json:"data"`
	}{r.data}); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err := buf.WriteTo(w)
	return err
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

// tileError words the tiles package's failures for the envelope.
func tileError(err error) error {
	var ae *tiles.ArgumentError
	switch {
	case errors.As(err, &ae):
		return &invalidArgument{ae.Msg}
	case errors.Is(err, tiles.ErrNoSource):
		return &configError{"This relay's MISP source cannot draw dashboard tiles."}
	}
	return err
}

func genDefinition(d tiles.Definition) gen.TileDefinition {
	periods := make([]gen.TilePeriod, len(d.Periods))
	for i, p := range d.Periods {
		periods[i] = gen.TilePeriod(p)
	}
	return gen.TileDefinition{
		Id: gen.TileDefinitionId(d.ID), Type: gen.TileDefinitionType(d.Type), Title: d.Title,
		Description: d.Description, ShortDescription: d.ShortDescription,
		Periods: periods, DefaultPeriod: gen.TilePeriod(d.DefaultPeriod), Tags: d.Tags,
	}
}

// tileFieldMax is the spec's maxLength of tile_id and period (a test checks it).
const tileFieldMax = 128

// tileProblems returns the marshmallow dict for a /tiles/tile or /tiles/tile-data body, or
// "" when the contract's rules accept it: the fields in declaration order (period, then
// tile_id), then unknown ones, as the MISP-1.0.0 relay's schemas answered.
func tileProblems(path string, body []byte) string {
	v, ok := decodeBody(body)
	if !ok {
		return schemaProblem()
	}
	fields := []string{"tile_id"}
	if path == "/tiles/tile-data" {
		fields = []string{"period", "tile_id"}
	}
	fe := checkObject(v, fields, false)
	if obj, ok := v.(map[string]any); ok {
		for _, f := range fields {
			if s, ok := obj[f].(string); ok && utf8.RuneCountInString(s) > tileFieldMax {
				fe.add(f, fmt.Sprintf(msgTooLong, tileFieldMax))
			}
		}
	}
	if fe.empty() {
		return ""
	}
	var b strings.Builder
	fe.repr(&b)
	return b.String()
}
