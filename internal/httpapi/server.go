package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"

	"github.com/misp-relay/misp-relay/internal/gen"
	"github.com/misp-relay/misp-relay/internal/service"
	"github.com/misp-relay/misp-relay/internal/tiles"
)

// The strict handlers: each takes the typed request, asks the core with the tenant admit
// resolved, and turns the core's data and failures into the contract's answer (errorsOf).

// tenantOf is the request's tenant, resolved by admit from its verified token.
func tenantOf(ctx context.Context) *service.Tenant { return stateFrom(ctx).tenant }

// Health answers whether the tenant's MISPs accept their keys (the token was checked by
// admit), with where the public feeds stand.
func (a *api) Health(ctx context.Context, _ gen.HealthRequestObject) (gen.HealthResponseObject, error) {
	ok, errs := a.core.Health(ctx, tenantOf(ctx))
	res := gen.Health200JSONResponse{Errors: errorsOf(ctx, errs...)}
	if ok {
		res.Data = &struct {
			Feeds  *[]gen.FeedStatus          `json:"feeds,omitempty"`
			Status gen.HealthResultDataStatus `json:"status"`
		}{Status: gen.Ok, Feeds: feedStatuses(a.core.Feeds())}
	}
	return res, nil
}

// feedStatuses is what /health says of the public feeds; nil when there are none.
func feedStatuses(states []service.FeedState) *[]gen.FeedStatus {
	if len(states) == 0 {
		return nil
	}
	out := make([]gen.FeedStatus, 0, len(states))
	for _, f := range states {
		st := gen.FeedStatus{
			Source: f.Source, State: gen.FeedStatusState(f.State), Events: f.Events, Values: f.Values,
			Skipped: &f.Skipped,
		}
		if !f.Updated.IsZero() {
			u := f.Updated.UTC()
			st.Updated = &u
		}
		out = append(out, st)
	}
	return &out
}

// DeliberateObservables answers verdicts only.
func (a *api) DeliberateObservables(ctx context.Context, req gen.DeliberateObservablesRequestObject) (gen.DeliberateObservablesResponseObject, error) {
	return gen.DeliberateObservables200JSONResponse(enrichResult(ctx, a.core.Enrich(ctx, tenantOf(ctx), *req.Body, false))), nil
}

// ObserveObservables answers every entity the relay makes.
func (a *api) ObserveObservables(ctx context.Context, req gen.ObserveObservablesRequestObject) (gen.ObserveObservablesResponseObject, error) {
	return gen.ObserveObservables200JSONResponse(enrichResult(ctx, a.core.Enrich(ctx, tenantOf(ctx), *req.Body, true))), nil
}

// enrichResult puts found data and failures together, as the contract allows: data is left
// out only when there are errors, nothing was found and no source answered all its lookups.
func enrichResult(ctx context.Context, e service.Enrichment) gen.EnrichResult {
	res := gen.EnrichResult{Errors: errorsOf(ctx, e.Errs...)}
	if e.Data != nil && (res.Errors == nil || e.Answered || *e.Data != (gen.EnrichData{})) {
		res.Data = e.Data
	}
	return res
}

// ReferObservables links each supported observable to the events that hold it.
func (a *api) ReferObservables(ctx context.Context, req gen.ReferObservablesRequestObject) (gen.ReferObservablesResponseObject, error) {
	links, errs := a.core.Refer(ctx, tenantOf(ctx), *req.Body)
	res := gen.ReferObservables200JSONResponse{Errors: errorsOf(ctx, errs...)}
	if links != nil {
		res.Data = &links
	}
	return res, nil
}

// RespondObservables lists the actions available for each observable.
func (a *api) RespondObservables(ctx context.Context, req gen.RespondObservablesRequestObject) (gen.RespondObservablesResponseObject, error) {
	actions, errs := a.core.Actions(ctx, tenantOf(ctx), *req.Body)
	res := gen.RespondObservables200JSONResponse{Errors: errorsOf(ctx, errs...)}
	if actions != nil {
		res.Data = &actions
	}
	return res, nil
}

// RespondTrigger runs one action.
func (a *api) RespondTrigger(ctx context.Context, req gen.RespondTriggerRequestObject) (gen.RespondTriggerResponseObject, error) {
	ok, errs := a.core.Trigger(ctx, tenantOf(ctx), *req.Body)
	status := gen.Success
	if !ok {
		status = gen.Failure
	}
	return gen.RespondTrigger200JSONResponse{
		Data: &struct {
			Status gen.TriggerResultDataStatus `json:"status"`
		}{Status: status},
		Errors: errorsOf(ctx, errs...),
	}, nil
}

// Version answers the relay's version.
func (a *api) Version(context.Context, gen.VersionRequestObject) (gen.VersionResponseObject, error) {
	return gen.Version200JSONResponse{Version: a.core.Version()}, nil
}

// Watchdog echoes the Health-Check header, as load balancers in front of XDR relays expect.
func (a *api) Watchdog(ctx context.Context, req gen.WatchdogRequestObject) (gen.WatchdogResponseObject, error) {
	if req.Params.HealthCheck == nil {
		return gen.Watchdog200JSONResponse{Errors: errorsOf(ctx, errHealthCheck)}, nil
	}
	return gen.Watchdog200JSONResponse{Data: req.Params.HealthCheck}, nil
}

// Tiles lists the tile definitions.
func (a *api) Tiles(context.Context, gen.TilesRequestObject) (gen.TilesResponseObject, error) {
	defs := tiles.Definitions()
	out := make([]gen.TileDefinition, len(defs))
	for i, d := range defs {
		out[i] = genDefinition(d)
	}
	return gen.Tiles200JSONResponse{Data: &out}, nil
}

// Tile answers one definition.
func (a *api) Tile(ctx context.Context, req gen.TileRequestObject) (gen.TileResponseObject, error) {
	d, err := service.TileDefinition(req.Body.TileId)
	if err != nil {
		return gen.Tile200JSONResponse{Errors: errorsOf(ctx, err)}, nil
	}
	def := genDefinition(d)
	return gen.Tile200JSONResponse{Data: &def}, nil
}

// TileData answers one tile's data for a period.
func (a *api) TileData(ctx context.Context, req gen.TileDataRequestObject) (gen.TileDataResponseObject, error) {
	d, err := a.core.TileData(ctx, tenantOf(ctx), req.Body.TileId, req.Body.Period)
	if err != nil {
		return gen.TileData200JSONResponse{Errors: errorsOf(ctx, err)}, nil
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
