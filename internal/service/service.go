// Package service implements the relay's API (the strict server interface generated from
// api/openapi.yaml): it filters the observables XDR sends, looks them up in the tenant's
// intel.Backend, maps what MISP knows to CTIM, and runs the response actions. errors.go is the
// one place where a failure becomes the XDR error envelope.
//
// It owns the HTTP contract (handler.go: routing, validation, authentication first, limits,
// the request log line) and the CTIM mapping (ctim.go: judgements and verdicts;
// ctimentities.go: sightings, indicators, relationships; ctimfields.go: TLP, times, text). It
// must not know which kind of backend it talks to (MISP server, feed, cache), nor read
// settings from the environment: everything it needs comes in Config.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/gen"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/tiles"
	"github.com/misp-relay/misp-relay/internal/upstream"
	"github.com/misp-relay/misp-relay/internal/urlscan"
	"github.com/misp-relay/misp-relay/internal/verdict"
)

// Scanner submits URLs to urlscan.io.
type Scanner interface {
	Scan(ctx context.Context, apiKey, u string) (urlscan.Result, error)
}

// Defaults of Config.
const (
	DefaultEntitiesLimit  = 100
	DefaultMaxBodyBytes   = 1 << 20
	DefaultMaxObservables = 1000
	DefaultRequestTimeout = 50 * time.Second
	sightingSource        = "XDR"
)

// Config holds everything the service is built from. Backend answers requests whose token
// names no MISP (the relay's API_URL: a MISP server or a feed, behind the cache); requests
// with a configuration token naming a HOST use BackendForHost instead, and with neither a
// lookup answers that API_URL is not configured.
type Config struct {
	Version string // the relay's semver, for /version
	Secret  string // SECRET_KEY; "" makes every authenticated call fail with "<SECRET_KEY> is missing"
	// Verifier checks bearer tokens; nil means HS256 with Secret only. One per process: it
	// holds the JWKS cache of configuration tokens.
	Verifier *auth.Verifier

	Backend intel.Backend
	// UIURL is where analysts' browsers reach MISP: refer links and every source_uri start
	// with it. "" means no links (a feed without MISP_UI_URL).
	UIURL string
	// BackendForHost gives the MISP named by a configuration token's HOST claim (and the
	// base of its links); it refuses hosts the relay may not call. nil: such tokens are
	// refused.
	BackendForHost func(host string) (intel.Backend, string, error)

	Scanner    Scanner
	URLScanKey string // default urlscan.io key when the JWT has none

	EntitiesLimit int // events per observable (CTR_ENTITIES_LIMIT)
	// RequestTimeout bounds the MISP work of one request, so its answer (with what was found
	// in time) is written before the server's WriteTimeout drops the connection.
	RequestTimeout time.Duration
	MaxBodyBytes   int64 // largest request body read
	// MaxObservables bounds the observables of one request, so one request cannot fan out
	// into thousands of MISP lookups.
	MaxObservables int
	// MaxInFlight bounds the requests served at once (MAX_IN_FLIGHT); more are answered at
	// once with a "service unavailable" envelope. Default DefaultMaxInFlight.
	MaxInFlight int
	// MaxInFlightPerTenant bounds one tenant's requests served at once
	// (MAX_IN_FLIGHT_PER_TENANT), within MaxInFlight, so a tenant whose MISP stalls cannot
	// take every slot. A tenant is one (MISP host, API key) pair of the token's claims.
	// Default DefaultMaxInFlightPerTenant(MaxInFlight); more than MaxInFlight is an error.
	MaxInFlightPerTenant int

	// Policy is the verdict policy: BENIGN_TAGS, MALICIOUS_TAGS, SUSPICIOUS_TAGS and
	// TRUSTED_ORGS (the zero Policy has no tag settings and trusts every organisation).
	Policy verdict.Policy
	// Warninglists are the relay's own warninglists (WARNINGLISTS_DIR); nil for none.
	Warninglists Warninglists
	// FeedStates, when set, says where the public feeds (FEEDS) stand; /health shows it.
	FeedStates func() []FeedState
	// Tiles draws the dashboard tiles (tiles.go) and caches them per tenant; nil caches
	// nothing. TileFeeds are the public feeds (FEEDS) every tenant's tiles add to its MISP's.
	Tiles     *tiles.Board
	TileFeeds []tiles.Source

	Log *slog.Logger
	Now func() time.Time // the clock, replaceable in tests
	// ObserveRequest, when set, is told about every answered request (for metrics): its
	// path, its outcome ("ok", an error code, or the HTTP status when not 200) and duration.
	ObserveRequest func(path, outcome string, d time.Duration)
}

// FeedState is where one public feed stands, as /health says it.
type FeedState struct {
	Source                  string // the feed's source name, "MISP feed circl"
	State                   string // "loading", "loaded" or "failing"
	Events, Values, Skipped int
	Updated                 time.Time // when the data served last changed; zero before
}

// Service implements gen.StrictServerInterface.
type Service struct {
	cfg      Config
	log      *slog.Logger // cfg.Log
	inFlight *inFlight    // the MaxInFlight and MaxInFlightPerTenant bounds (admit)
}

var _ gen.StrictServerInterface = (*Service)(nil)

// errOutOfTime is the answer for lookups a request had no time left to make.
var errOutOfTime = &upstream.Error{
	Summary: "MISP search failed", Op: "search", Kind: upstream.ErrUnavailable,
	Detail: "the request ran out of time (MISP is slow or the request has many observables); the remaining lookups were not made",
}

// errNoBackend is returned when neither a MISP server nor a feed is configured.
var errNoBackend = &configError{"The relay has no MISP to ask: set API_URL to your MISP base URL (or to a MISP feed directory)."}

// New checks cfg, fills in defaults and returns the service.
func New(cfg Config) (*Service, error) {
	if cfg.UIURL != "" {
		u, err := url.Parse(cfg.UIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("service: MISP UI URL %q is not an http(s) URL", cfg.UIURL)
		}
	}
	if cfg.EntitiesLimit <= 0 {
		cfg.EntitiesLimit = DefaultEntitiesLimit
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxObservables <= 0 {
		cfg.MaxObservables = DefaultMaxObservables
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.MaxInFlightPerTenant <= 0 {
		cfg.MaxInFlightPerTenant = DefaultMaxInFlightPerTenant(cfg.MaxInFlight)
	}
	if cfg.MaxInFlightPerTenant > cfg.MaxInFlight {
		return nil, fmt.Errorf("service: %d requests in flight per tenant is more than the %d in all", cfg.MaxInFlightPerTenant, cfg.MaxInFlight)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ObserveRequest == nil {
		cfg.ObserveRequest = func(string, string, time.Duration) {}
	}
	if cfg.Verifier == nil {
		cfg.Verifier = auth.NewVerifier(cfg.Secret)
	}
	return &Service{cfg: cfg, log: cfg.Log, inFlight: newInFlight(cfg.MaxInFlight, cfg.MaxInFlightPerTenant)}, nil
}

// tenant is what one request talks to: the relay's backend, or the MISP a configuration
// token names in its HOST claim, with that token's entities limit.
type tenant struct {
	backend intel.Backend // nil: the relay has none for this request
	ui      string        // base of links for people; "" for none
	limit   int
	key     string
}

// tenantOf resolves the request's MISP from its verified claims.
func (s *Service) tenantOf(ctx context.Context) (tenant, error) {
	c := claimsFrom(ctx)
	t := tenant{backend: s.cfg.Backend, ui: s.cfg.UIURL, limit: s.cfg.EntitiesLimit, key: c.Key}
	if c.EntitiesLimit > 0 {
		t.limit = c.EntitiesLimit // the module's own Entities Limit, for this request only
	}
	if c.Host == "" {
		return t, nil
	}
	if s.cfg.BackendForHost == nil {
		return t, &configError{"This relay does not call the MISP a configuration token names: it serves its own API_URL."}
	}
	b, ui, err := s.cfg.BackendForHost(c.Host)
	if err != nil {
		return t, err
	}
	t.backend, t.ui = b, ui
	return t, nil
}

// lookup is the answer for one observable.
type lookup struct {
	events []intel.Event
	err    error
}

// searchAll looks the observables up in one Lookup of the tenant's backend (one restSearch
// for a MISP, however many observables) and returns the answers in input order. One failure
// does not fail the others.
func (s *Service) searchAll(ctx context.Context, t tenant, obs []observable, limit int) (out []lookup) {
	out = make([]lookup, len(obs))
	if len(obs) == 0 {
		return out
	}
	if t.backend == nil {
		for i := range out {
			out[i].err = errNoBackend
		}
		return out
	}
	qs := make([]intel.Query, len(obs))
	for i, o := range obs {
		qs[i] = intel.Query{Value: o.Value, Types: o.kind.mispTypes, Limit: limit}
	}
	// A panic here would kill the process: the HTTP recoverer only guards the request's own
	// goroutine, and the backend may run parts of the lookup in others.
	defer func() {
		if v := recover(); v != nil {
			s.log.ErrorContext(ctx, "panic in a lookup", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			for i := range out {
				out[i] = lookup{err: fmt.Errorf("lookup panicked: %v", v)}
			}
		}
	}()
	if ctx.Err() != nil {
		for i := range out {
			out[i].err = errOutOfTime
		}
		return out
	}
	for i, r := range t.backend.Lookup(ctx, t.key, qs) {
		out[i] = lookup{events: r.Events, err: r.Err}
		if ctx.Err() != nil && errors.Is(r.Err, ctx.Err()) {
			out[i].err = errOutOfTime // a lookup the request stopped waiting for
		}
	}
	return out
}

// Health checks the JWT (done by the validator) and that MISP accepts the key.
func (s *Service) Health(ctx context.Context, _ gen.HealthRequestObject) (gen.HealthResponseObject, error) {
	t, err := s.tenantOf(ctx)
	switch {
	case err != nil:
	case t.backend == nil:
		err = errNoBackend
	default:
		err = t.backend.Ping(ctx, t.key)
	}
	if err != nil {
		return gen.Health200JSONResponse{Errors: errorsOf(ctx, err)}, nil
	}
	return gen.Health200JSONResponse{Data: &struct {
		Feeds  *[]gen.FeedStatus          `json:"feeds,omitempty"`
		Status gen.HealthResultDataStatus `json:"status"`
	}{Status: gen.Ok, Feeds: s.feedStates()}}, nil
}

// feedStates is what /health says of the public feeds; nil when there are none.
func (s *Service) feedStates() *[]gen.FeedStatus {
	if s.cfg.FeedStates == nil {
		return nil
	}
	states := s.cfg.FeedStates()
	if len(states) == 0 {
		return nil
	}
	out := make([]gen.FeedStatus, 0, len(states))
	for _, f := range states {
		st := gen.FeedStatus{
			Source: f.Source, State: gen.FeedStatusState(f.State), Events: f.Events, Values: f.Values,
			Skipped: ptr(f.Skipped),
		}
		if !f.Updated.IsZero() {
			st.Updated = ptr(f.Updated.UTC())
		}
		out = append(out, st)
	}
	return &out
}

// DeliberateObservables answers verdicts only.
func (s *Service) DeliberateObservables(ctx context.Context, req gen.DeliberateObservablesRequestObject) (gen.DeliberateObservablesResponseObject, error) {
	return gen.DeliberateObservables200JSONResponse(s.enrich(ctx, *req.Body, false)), nil
}

// ObserveObservables answers every entity the relay makes.
func (s *Service) ObserveObservables(ctx context.Context, req gen.ObserveObservablesRequestObject) (gen.ObserveObservablesResponseObject, error) {
	return gen.ObserveObservables200JSONResponse(s.enrich(ctx, *req.Body, true)), nil
}

// observables checks the request's observables against MaxObservables and returns its
// candidates (see candidates; safeOnly keeps those MISP may be asked about).
func (s *Service) observables(ctx context.Context, in []gen.ObservableInput) ([]observable, error) {
	stateFrom(ctx).observables = len(in)
	if len(in) > s.cfg.MaxObservables {
		return nil, tooManyObservables(s.cfg.MaxObservables, len(in))
	}
	return candidates(in), nil
}

func (s *Service) enrich(ctx context.Context, in []gen.ObservableInput, observe bool) gen.EnrichResult {
	all, err := s.observables(ctx, in)
	if err != nil {
		return gen.EnrichResult{Errors: errorsOf(ctx, err)}
	}
	obs := safeOnly(all)
	t, err := s.tenantOf(ctx)
	if err != nil {
		return gen.EnrichResult{Errors: errorsOf(ctx, err)}
	}
	// One warninglist check per request, for all its values, while the searches run.
	checked := s.checkWarninglists(ctx, t, obs)
	results := s.searchAll(ctx, t, obs, t.limit)
	m := newMapper(s.cfg.Now(), t.ui)
	m.policy, m.lists, m.checked = &s.cfg.Policy, s.cfg.Warninglists, checked()
	var b bundle
	var errs []error
	for i, r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		if len(r.events) == 0 && m.lists == nil && len(m.checked[obs[i].Value]) == 0 {
			continue // nothing known of the value: no event, and no warninglist to ask
		}
		sortBySeverity(r.events)
		if observe {
			m.observe(&b, obs[i], r.events)
		} else {
			m.verdictOnly(&b, obs[i], r.events)
		}
	}
	return enrichResult(ctx, b.data(), errs)
}

// enrichResult puts found data and failures together, as the contract allows: data is left
// out only when there are errors and nothing was found.
func enrichResult(ctx context.Context, d *gen.EnrichData, errs []error) gen.EnrichResult {
	res := gen.EnrichResult{Errors: errorsOf(ctx, errs...)}
	if res.Errors == nil || *d != (gen.EnrichData{}) {
		res.Data = d
	}
	return res
}

// ReferObservables links each supported observable to the MISP events that hold it. A value
// without a slash needs no MISP call: MISP's event index filters on it exactly (see
// searchLink). A value with one (a URL) cannot be put in such a link, so it is looked up (the
// same cached search as /observe) and linked to the events found by their UUIDs; a value MISP
// holds in no event gets no link.
func (s *Service) ReferObservables(ctx context.Context, req gen.ReferObservablesRequestObject) (gen.ReferObservablesResponseObject, error) {
	all, err := s.observables(ctx, *req.Body)
	if err != nil {
		return gen.ReferObservables200JSONResponse{Errors: errorsOf(ctx, err)}, nil
	}
	obs := safeOnly(all) // a MISP search link for a value MISP misreads would mislead
	t, err := s.tenantOf(ctx)
	if err != nil {
		return gen.ReferObservables200JSONResponse{Errors: errorsOf(ctx, err)}, nil
	}
	links := []gen.ReferenceLink{}
	ui := newMapper(s.cfg.Now(), t.ui).uiURL
	if ui == "" {
		return gen.ReferObservables200JSONResponse{Data: &links}, nil
	}
	var slashed []observable
	for _, o := range obs {
		if strings.Contains(o.Value, "/") {
			slashed = append(slashed, o)
		}
	}
	found := map[[2]string][]intel.Event{} // by type and value
	var errs []error
	if len(slashed) > 0 {
		if t.backend == nil {
			errs = append(errs, errNoBackend)
		} else {
			for i, r := range s.searchAll(ctx, t, slashed, t.limit) {
				if r.err != nil {
					errs = append(errs, r.err)
				}
				found[[2]string{slashed[i].Type, slashed[i].Value}] = r.events
			}
		}
	}
	for _, o := range obs {
		var link string
		if strings.Contains(o.Value, "/") {
			link = eventsLink(ui, found[[2]string{o.Type, o.Value}])
		} else {
			link = searchLink(ui, o)
		}
		if link == "" || len(link) > maxURI {
			continue // no event holds it, or CTIM caps URIs (a browser would not take it either)
		}
		links = append(links, gen.ReferenceLink{
			Id:          "ref-misp-search-" + o.Type + "-" + o.Value,
			Title:       "Search events with this " + o.kind.human,
			Description: "Lookup events with this " + o.kind.human + " on MISP",
			Url:         link,
			Categories:  []string{"Search", "MISP"},
		})
	}
	return gen.ReferObservables200JSONResponse{Data: &links, Errors: errorsOf(ctx, errs...)}, nil
}

// indexTail ends every event-index link. MISP's router takes a link ending in ".csv", ".json"
// or ".xml" as a request for that export format (a file named report.csv would download a
// CSV), so the filter is never last; newest events first is what an analyst wants anyway.
const indexTail = "/sort:timestamp/direction:desc"

// searchLink is MISP's event index filtered on events with an attribute whose value (either
// half of a composite) equals o's, as restSearch matches it: searchvalue, not searchall,
// which matches substrings of values, comments, tags and event titles. MISP reads the value
// from the path after decoding it once, where "+" would become a space, so "+" is escaped
// too; the index does not normalise IPv6 as restSearch does, so addresses are written in
// the canonical form MISP stores. The value must hold no "/": MISP splits the path on it
// after decoding, whatever the escaping.
func searchLink(ui string, o observable) string {
	v := o.Value
	if o.Type == "ip" || o.Type == "ipv6" {
		if a, err := netip.ParseAddr(v); err == nil {
			v = a.String()
		}
	}
	return ui + "/events/index/searchvalue:" + strings.ReplaceAll(url.PathEscape(v), "+", "%2B") + indexTail
}

// eventsLink is MISP's event index filtered on the given events, by UUID; "" for none.
func eventsLink(ui string, events []intel.Event) string {
	uuids := make([]string, 0, len(events))
	for _, e := range events {
		if intel.CanonicalUUID(e.UUID) { // nothing else may become a path segment
			uuids = append(uuids, e.UUID)
		}
	}
	if len(uuids) == 0 {
		return ""
	}
	return ui + "/events/index/searcheventid:" + strings.Join(uuids, "%7C") + indexTail
}

// Respond action titles and ids.
const (
	titleSighting      = "Report a sighting to MISP"
	titleFalsePositive = "Report a false positive to MISP"
	titleScan          = "Scan with urlscan.io"
)

// RespondObservables lists the actions available: reporting to MISP for observables MISP
// knows (not with a feed, which cannot be written to), and a urlscan.io scan for URLs and
// domains when a urlscan.io key is available.
func (s *Service) RespondObservables(ctx context.Context, req gen.RespondObservablesRequestObject) (gen.RespondObservablesResponseObject, error) {
	claims := claimsFrom(ctx)
	all, err := s.observables(ctx, *req.Body)
	if err != nil {
		return gen.RespondObservables200JSONResponse{Errors: errorsOf(ctx, err)}, nil
	}
	t, err := s.tenantOf(ctx)
	if err != nil {
		return gen.RespondObservables200JSONResponse{Errors: errorsOf(ctx, err)}, nil
	}
	lookups := map[int]lookup{} // by index in all
	if t.backend != nil && t.backend.Writable() {
		// One event is enough to know MISP has the observable. A feed cannot be written to.
		var safe []observable
		var at []int
		for i, o := range all {
			if o.safe {
				safe, at = append(safe, o), append(at, i)
			}
		}
		for j, r := range s.searchAll(ctx, t, safe, 1) {
			lookups[at[j]] = r
		}
	}
	canScan := s.cfg.Scanner != nil && s.urlscanKey(claims) != ""
	actions := []gen.RespondAction{}
	var errs []error
	for i, o := range all {
		params := struct {
			ObservableType  string `json:"observable_type"`
			ObservableValue string `json:"observable_value"`
		}{o.Type, o.Value}
		switch r, looked := lookups[i]; {
		case !looked:
		case r.err != nil:
			errs = append(errs, r.err)
		case len(r.events) > 0:
			actions = append(actions,
				gen.RespondAction{
					Id: gen.MispAddSighting, Title: titleSighting,
					Description: "Add a sighting of this " + o.kind.human + " to the MISP events that hold it",
					Categories:  []string{"MISP", "Sighting"}, QueryParams: params,
				},
				gen.RespondAction{
					Id: gen.MispAddFalsePositive, Title: titleFalsePositive,
					Description: "Report this " + o.kind.human + " to MISP as a false positive",
					Categories:  []string{"MISP", "False positive"}, QueryParams: params,
				})
		}
		if canScan && o.scannable() {
			actions = append(actions, gen.RespondAction{
				Id: gen.UrlscanScan, Title: titleScan,
				Description: "Submit this " + o.kind.human + " to urlscan.io for a scan",
				Categories:  []string{"urlscan.io", "Scan"}, QueryParams: params,
			})
		}
	}
	return gen.RespondObservables200JSONResponse{Data: &actions, Errors: errorsOf(ctx, errs...)}, nil
}

func (s *Service) urlscanKey(c auth.Claims) string {
	if c.URLScanKey != "" {
		return c.URLScanKey
	}
	return s.cfg.URLScanKey
}

// RespondTrigger runs one action.
func (s *Service) RespondTrigger(ctx context.Context, req gen.RespondTriggerRequestObject) (gen.RespondTriggerResponseObject, error) {
	err := s.trigger(ctx, req.Body)
	status := gen.Success
	if err != nil {
		status = gen.Failure
		s.log.InfoContext(ctx, "respond action failed", "action", req.Body.ActionId, "err", err)
	}
	return gen.RespondTrigger200JSONResponse{
		Data: &struct {
			Status gen.TriggerResultDataStatus `json:"status"`
		}{Status: status},
		Errors: errorsOf(ctx, err),
	}, nil
}

func (s *Service) trigger(ctx context.Context, body *gen.TriggerRequest) error {
	claims := claimsFrom(ctx)
	switch gen.RespondActionId(body.ActionId) {
	case gen.MispAddSighting, gen.MispAddFalsePositive:
		t, err := s.tenantOf(ctx)
		if err != nil {
			return err
		}
		if t.backend == nil {
			return errNoBackend
		}
		o, err := triggerObservable(body)
		if err != nil {
			return err
		}
		typ := intel.Sighting
		if body.ActionId == string(gen.MispAddFalsePositive) {
			typ = intel.FalsePositive
		}
		return t.backend.AddSighting(ctx, t.key, o.Value, typ, sightingSource)
	case gen.UrlscanScan:
		obs := candidates([]gen.ObservableInput{{Type: body.ObservableType, Value: body.ObservableValue}})
		if len(obs) == 0 || !obs[0].scannable() {
			return &invalidArgument{fmt.Sprintf("urlscan.io scans URLs and domains, not %s %s.",
				pyRepr(body.ObservableType), pyRepr(body.ObservableValue))}
		}
		o := obs[0]
		key := s.urlscanKey(claims)
		if s.cfg.Scanner == nil || key == "" {
			return &upstream.Error{Summary: "no usable urlscan.io API key", Op: "scan", Kind: upstream.ErrPermission, Detail: "add urlscan_key to the JWT or set URLSCAN_API_KEY"}
		}
		_, err := s.cfg.Scanner.Scan(ctx, key, o.Value)
		return err
	}
	return &invalidArgument{"Unknown action-id " + pyRepr(body.ActionId) + "."}
}

// triggerObservable applies the same rules as lookups to the observable of an action.
func triggerObservable(body *gen.TriggerRequest) (observable, error) {
	obs := supported([]gen.ObservableInput{{Type: body.ObservableType, Value: body.ObservableValue}})
	if len(obs) == 0 {
		return observable{}, &invalidArgument{fmt.Sprintf(
			"The observable %s %s is not supported or cannot be matched exactly by MISP.",
			pyRepr(body.ObservableType), pyRepr(body.ObservableValue))}
	}
	return obs[0], nil
}

// Version answers the relay's version.
func (s *Service) Version(context.Context, gen.VersionRequestObject) (gen.VersionResponseObject, error) {
	return gen.Version200JSONResponse{Version: s.cfg.Version}, nil
}

// Watchdog echoes the Health-Check header, as load balancers in front of XDR relays expect.
func (s *Service) Watchdog(ctx context.Context, req gen.WatchdogRequestObject) (gen.WatchdogResponseObject, error) {
	if req.Params.HealthCheck == nil {
		return gen.Watchdog200JSONResponse{Errors: errorsOf(ctx, errHealthCheck)}, nil
	}
	return gen.Watchdog200JSONResponse{Data: req.Params.HealthCheck}, nil
}
