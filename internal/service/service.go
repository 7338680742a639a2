// Package service implements the relay's API (the strict server interface generated from
// api/openapi.yaml): it filters the observables XDR sends, looks them up in every source of
// the tenant at once (tenant.go, fanout.go: its MISPs, then the feeds, each an intel.Source),
// maps what they know to CTIM, and runs the response actions. errors.go is the
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
	"slices"
	"strconv"
	"strings"
	"sync"
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

// Config holds everything the service is built from. A request asks its tenant's sources
// (Sources: its MISPs, then the feeds), concurrently; without Sources, its one source is
// Backend with the token's key, and a configuration token naming a HOST is refused.
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
	// Sources gives what a request with the given verified claims asks, in order (the app's
	// App.Sources: the token's MISPs, then the feeds), each named for answers and errors; an
	// error (an *auth.Error for a host refused) fails every call that needs a source. It is
	// called once per request, where the token is checked. nil: Backend and UIURL are the
	// one source.
	Sources func(auth.Claims) ([]intel.Source, error)

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
	// take every slot. A tenant is what its token asks: its sources and its keys for them.
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
	// nothing.
	Tiles *tiles.Board

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

// lookup is the answer for one observable.
type lookup struct {
	events []intel.Event
	err    error
}

// searchAll looks the observables up in one Lookup of src (one restSearch for a MISP,
// however many observables) and returns the answers in input order. One failure does not
// fail the others.
func (s *Service) searchAll(ctx context.Context, src intel.Source, obs []observable, limit int) (out []lookup) {
	out = make([]lookup, len(obs))
	if len(obs) == 0 {
		return out
	}
	if src.Backend == nil {
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
			s.log.ErrorContext(ctx, "panic in a lookup", "source", src.Name, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
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
	for i, r := range src.Backend.Lookup(ctx, src.Key, qs) {
		out[i] = lookup{events: r.Events, err: r.Err}
		if ctx.Err() != nil && errors.Is(r.Err, ctx.Err()) {
			out[i].err = errOutOfTime // a lookup the request stopped waiting for
		}
	}
	return out
}

// Health checks the JWT (done by admit) and that the tenant's MISPs accept their keys: every
// MISP source is pinged, at once (a feed, loading or not, is not a failure: data.feeds says
// how it stands). One failing is named in errors beside the status; all failing is the
// errors alone.
func (s *Service) Health(ctx context.Context, _ gen.HealthRequestObject) (gen.HealthResponseObject, error) {
	t := s.tenantOf(ctx)
	if t.err != nil {
		return gen.Health200JSONResponse{Errors: errorsOf(ctx, t.err)}, nil
	}
	var pinged []int
	for i, src := range t.sources {
		if src.Backend == nil || src.Backend.Writable() { // a feed has nothing to check: /health says how it stands
			pinged = append(pinged, i)
		}
	}
	errs := make([]error, len(pinged))
	var wg sync.WaitGroup
	for k, i := range pinged {
		src := t.sources[i]
		wg.Go(func() {
			if src.Backend == nil {
				errs[k] = errNoBackend
				return
			}
			errs[k] = t.named(src, src.Backend.Ping(ctx, src.Key))
		})
	}
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
		}
	}
	if failed > 0 && failed == len(pinged) {
		return gen.Health200JSONResponse{Errors: errorsOf(ctx, errs...)}, nil
	}
	return gen.Health200JSONResponse{Data: &struct {
		Feeds  *[]gen.FeedStatus          `json:"feeds,omitempty"`
		Status gen.HealthResultDataStatus `json:"status"`
	}{Status: gen.Ok, Feeds: s.feedStates()}, Errors: errorsOf(ctx, errs...)}, nil
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

// observables returns the request's candidates (see candidates; safeOnly keeps those MISP may
// be asked about). Their number is bounded before the body is parsed (admit: MaxObservables).
func (s *Service) observables(ctx context.Context, in []gen.ObservableInput) []observable {
	stateFrom(ctx).observables = len(in)
	return candidates(in)
}

// enrich asks every source of the tenant at once and maps what they all said: the verdict
// follows the policy over every source's judgements, and each entity names its source. One
// source failing leaves the others' answer, plus an error naming it; every source failing
// leaves the errors alone.
func (s *Service) enrich(ctx context.Context, in []gen.ObservableInput, observe bool) gen.EnrichResult {
	obs := safeOnly(s.observables(ctx, in))
	t := s.tenantOf(ctx)
	if t.err != nil {
		return gen.EnrichResult{Errors: errorsOf(ctx, t.err)}
	}
	// One warninglist check per MISP source, for all the values, while the searches run.
	answers := s.askAll(ctx, t, obs, t.limit, true, nil)
	m := newMapper(s.cfg.Now(), "")
	m.policy, m.lists = &s.cfg.Policy, s.cfg.Warninglists
	m.checked, m.listedBy = mergeChecked(t, answers)
	m.sources = t.sources
	answered := false
	for _, a := range answers {
		answered = answered || a.ok()
	}
	var b bundle
	var errs []error
	for i := range obs {
		found, failed := mergeAnswers(t, answers, i)
		errs = append(errs, failed...)
		if len(failed) == len(answers) {
			continue // no source answered
		}
		if len(found.events) == 0 && m.lists == nil && len(m.checked[obs[i].Value]) == 0 {
			continue // nothing known of the value: no event, and no warninglist to ask
		}
		if observe {
			m.observe(&b, obs[i], found.events, found.from)
		} else {
			m.verdictOnly(&b, obs[i], found.events)
		}
	}
	return enrichResult(ctx, b.data(), errs, answered)
}

// enrichResult puts found data and failures together, as the contract allows: data is left
// out only when there are errors, nothing was found and no source answered all its lookups.
func enrichResult(ctx context.Context, d *gen.EnrichData, errs []error, answered bool) gen.EnrichResult {
	res := gen.EnrichResult{Errors: errorsOf(ctx, errs...)}
	if res.Errors == nil || answered || *d != (gen.EnrichData{}) {
		res.Data = d
	}
	return res
}

// ReferObservables links each supported observable to the events that hold it, in every
// source of the tenant with a UI (its MISPs; a feed has none), in the sources' order. A value
// without a slash needs no MISP call: MISP's event index filters on it exactly (see
// searchLink). A value with one (a URL) cannot be put in such a link, so it is looked up (the
// same cached search as /observe) and linked to the events found by their UUIDs; a value a
// MISP holds in no event gets no link into it.
func (s *Service) ReferObservables(ctx context.Context, req gen.ReferObservablesRequestObject) (gen.ReferObservablesResponseObject, error) {
	obs := safeOnly(s.observables(ctx, *req.Body)) // a MISP search link for a value MISP misreads would mislead
	t := s.tenantOf(ctx)
	if t.err != nil {
		return gen.ReferObservables200JSONResponse{Errors: errorsOf(ctx, t.err)}, nil
	}
	links := []gen.ReferenceLink{}
	withUI := func(src intel.Source) bool { return newMapper(time.Time{}, src.UI).uiURL != "" }
	var slashed []observable
	for _, o := range obs {
		if strings.Contains(o.Value, "/") {
			slashed = append(slashed, o)
		}
	}
	var errs []error
	found := map[int]map[[2]string][]intel.Event{} // by source, then type and value
	if len(slashed) > 0 {
		for _, a := range s.askAll(ctx, t, slashed, t.limit, false, withUI) {
			found[a.at] = map[[2]string][]intel.Event{}
			for i, r := range a.results {
				if r.err != nil {
					errs = append(errs, t.named(t.sources[a.at], r.err))
				}
				found[a.at][[2]string{slashed[i].Type, slashed[i].Value}] = r.events
			}
		}
	}
	for at, src := range t.sources {
		ui := newMapper(time.Time{}, src.UI).uiURL
		if ui == "" {
			continue
		}
		for _, o := range obs {
			var link string
			if strings.Contains(o.Value, "/") {
				link = eventsLink(ui, found[at][[2]string{o.Type, o.Value}])
			} else {
				link = searchLink(ui, o)
			}
			if link == "" || len(link) > maxURI {
				continue // no event holds it, or CTIM caps URIs (a browser would not take it either)
			}
			id := "ref-misp-search-" + o.Type + "-" + o.Value
			if at > 0 {
				id += "-" + strconv.Itoa(at+1) // one id per link: the sources' places tell them apart
			}
			links = append(links, gen.ReferenceLink{
				Id:          id,
				Title:       "Search events with this " + o.kind.human,
				Description: "Lookup events with this " + o.kind.human + " on " + src.Name,
				Url:         link,
				Categories:  []string{"Search", "MISP"},
			})
		}
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

// RespondObservables lists the actions available: reporting to MISP for observables a
// writable source of the tenant (a MISP; a feed cannot be written to) holds, and a
// urlscan.io scan for URLs and domains when a urlscan.io key is available.
func (s *Service) RespondObservables(ctx context.Context, req gen.RespondObservablesRequestObject) (gen.RespondObservablesResponseObject, error) {
	claims := claimsFrom(ctx)
	all := s.observables(ctx, *req.Body)
	t := s.tenantOf(ctx)
	if t.err != nil {
		return gen.RespondObservables200JSONResponse{Errors: errorsOf(ctx, t.err)}, nil
	}
	// One event is enough to know a MISP has the observable.
	var safe []observable
	var at []int
	for i, o := range all {
		if o.safe {
			safe, at = append(safe, o), append(at, i)
		}
	}
	held := map[int]bool{}   // by index in all: some writable source holds it
	looked := map[int]bool{} // by index in all: some writable source was asked
	var errs []error
	for _, a := range s.askAll(ctx, t, safe, 1, false, writable) {
		for j, r := range a.results {
			looked[at[j]] = true
			if r.err != nil {
				errs = append(errs, t.named(t.sources[a.at], r.err))
				continue
			}
			held[at[j]] = held[at[j]] || len(r.events) > 0
		}
	}
	canScan := s.cfg.Scanner != nil && s.urlscanKey(claims) != ""
	actions := []gen.RespondAction{}
	for i, o := range all {
		params := struct {
			ObservableType  string `json:"observable_type"`
			ObservableValue string `json:"observable_value"`
		}{o.Type, o.Value}
		if looked[i] && held[i] {
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

// writable keeps the sources that can be reported to: MISPs, not feeds.
func writable(src intel.Source) bool { return src.Backend != nil && src.Backend.Writable() }

func (s *Service) urlscanKey(c auth.Claims) string {
	if c.URLScanKey != "" {
		return c.URLScanKey
	}
	return s.cfg.URLScanKey
}

// RespondTrigger runs one action. A report to MISP goes to every writable source of the
// tenant that holds the value: it succeeds when one took it, the others' failures in errors.
func (s *Service) RespondTrigger(ctx context.Context, req gen.RespondTriggerRequestObject) (gen.RespondTriggerResponseObject, error) {
	ok, errs := s.trigger(ctx, req.Body)
	status := gen.Success
	if !ok {
		status = gen.Failure
	}
	for _, err := range errs {
		s.log.InfoContext(ctx, "respond action failed", "action", req.Body.ActionId, "err", err)
	}
	return gen.RespondTrigger200JSONResponse{
		Data: &struct {
			Status gen.TriggerResultDataStatus `json:"status"`
		}{Status: status},
		Errors: errorsOf(ctx, errs...),
	}, nil
}

// trigger runs the action; ok says whether it was done (somewhere), errs what failed.
func (s *Service) trigger(ctx context.Context, body *gen.TriggerRequest) (ok bool, errs []error) {
	claims := claimsFrom(ctx)
	switch gen.RespondActionId(body.ActionId) {
	case gen.MispAddSighting, gen.MispAddFalsePositive:
		t := s.tenantOf(ctx)
		if t.err != nil {
			return false, []error{t.err}
		}
		o, err := triggerObservable(body)
		if err != nil {
			return false, []error{err}
		}
		typ := intel.Sighting
		if body.ActionId == string(gen.MispAddFalsePositive) {
			typ = intel.FalsePositive
		}
		return s.report(ctx, t, o, typ)
	case gen.UrlscanScan:
		obs := candidates([]gen.ObservableInput{{Type: body.ObservableType, Value: body.ObservableValue}})
		if len(obs) == 0 || !obs[0].scannable() {
			return false, []error{&invalidArgument{fmt.Sprintf("urlscan.io scans URLs and domains, not %s %s.",
				pyRepr(body.ObservableType), pyRepr(body.ObservableValue))}}
		}
		o := obs[0]
		key := s.urlscanKey(claims)
		if s.cfg.Scanner == nil || key == "" {
			return false, []error{&upstream.Error{Summary: "no usable urlscan.io API key", Op: "scan", Kind: upstream.ErrPermission, Detail: "add urlscan_key to the JWT or set URLSCAN_API_KEY"}}
		}
		if _, err := s.cfg.Scanner.Scan(ctx, key, o.Value); err != nil {
			return false, []error{err}
		}
		return true, nil
	}
	return false, []error{&invalidArgument{"Unknown action-id " + pyRepr(body.ActionId) + "."}}
}

// report adds a sighting (or false positive) of o to the tenant's MISPs. A tenant of one
// source reports to it (a feed says it cannot be written to). With several, those writable
// sources that hold o take it, all at once; when none holds it (or it could not be asked),
// every writable source is asked to, and says why not.
func (s *Service) report(ctx context.Context, t *tenant, o observable, typ intel.SightingType) (bool, []error) {
	if !t.multi() {
		src := t.sources[0]
		if src.Backend == nil {
			return false, []error{errNoBackend}
		}
		if err := src.Backend.AddSighting(ctx, src.Key, o.Value, typ, sightingSource); err != nil {
			return false, []error{err}
		}
		return true, nil
	}
	var targets []int
	for _, a := range s.askAll(ctx, t, []observable{o}, 1, false, writable) {
		if r := a.results[0]; r.err == nil && len(r.events) > 0 {
			targets = append(targets, a.at)
		}
	}
	if len(targets) == 0 {
		for i, src := range t.sources {
			if writable(src) {
				targets = append(targets, i)
			}
		}
	}
	if len(targets) == 0 {
		return false, []error{intel.ErrReadOnly}
	}
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for k, i := range targets {
		src := t.sources[i]
		wg.Go(func() { errs[k] = t.named(src, src.Backend.AddSighting(ctx, src.Key, o.Value, typ, sightingSource)) })
	}
	wg.Wait()
	ok := slices.Contains(errs, nil)
	return ok, slices.DeleteFunc(errs, func(err error) bool { return err == nil })
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
