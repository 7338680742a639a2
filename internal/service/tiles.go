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
// package tiles. A tile's data comes from the tenant's backend (the token's MISP, or
// API_URL's MISP or feed), asked with the tenant's key, inside the request's tenant share
// and deadline like a lookup, plus the public feeds (Config.TileFeeds); Config.Tiles caches
// the answers per tenant.

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
	t, err := s.tenantOf(ctx)
	switch {
	case err != nil:
		return fail(err)
	case t.backend == nil:
		return fail(errNoBackend)
	}
	src := tileSource(t.backend)
	if src != nil && len(s.cfg.TileFeeds) > 0 {
		src = tiles.Combine(append([]tiles.Source{src}, s.cfg.TileFeeds...)...)
	}
	id := tenantIDOf(claimsFrom(ctx))
	d, err := s.cfg.Tiles.Data(ctx, tiles.Request{
		Tenant: hex.EncodeToString(id[:]), Key: t.key, Source: src, UI: t.ui,
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
