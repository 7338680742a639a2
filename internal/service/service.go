// Package service is the relay's enrichment core: observables in, CTIM out. It filters the
// observables XDR sends, looks them up in every source of the tenant at once (tenant.go,
// fanout.go: its MISPs, then the feeds, each an intel.Source), maps what they know to CTIM
// (ctim.go: judgements and verdicts; ctimentities.go: sightings, indicators, relationships;
// ctimfields.go: TLP, times, text), and runs the response actions.
//
// It knows nothing of HTTP: package httpapi (the adapter) checks the token, resolves the
// Tenant, reads and validates the body, calls the core and writes its answer; failures come
// back as values (errors.go) that the adapter alone turns into the contract's envelope. The
// CTIM entities are the spec's models (package gen), the one definition of CTIM; the core
// never sees a request, a response or a handler. It must not know which kind of backend it
// talks to (MISP server, feed, cache), nor read settings from the environment: everything it
// needs comes in Config.
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
	DefaultEntitiesLimit = 100
	sightingSource       = "XDR"
)

// Config holds everything the service is built from. A request asks its tenant's sources
// (Sources: its MISPs, then the feeds), concurrently; without Sources, its one source is
// Backend with the token's key, and a configuration token naming a HOST is refused.
type Config struct {
	Version string // the relay's semver, for /version

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
}

// FeedState is where one public feed stands, as /health says it.
type FeedState struct {
	Source                  string // the feed's source name, "MISP feed circl"
	State                   string // "loading", "loaded" or "failing"
	Events, Values, Skipped int
	Updated                 time.Time // when the data served last changed; zero before
}

// Service is the enrichment core. Safe for concurrent use.
type Service struct {
	cfg Config
	log *slog.Logger // cfg.Log
}

// errOutOfTime is the answer for lookups a request had no time left to make.
var errOutOfTime = &upstream.Error{
	Summary: "MISP search failed", Op: "search", Kind: upstream.ErrUnavailable,
	Detail: "the request ran out of time (MISP is slow or the request has many observables); the remaining lookups were not made",
}

// errNoBackend is returned when neither a MISP server nor a feed is configured.
var errNoBackend = ConfigError("The relay has no MISP to ask: set API_URL to your MISP base URL (or to a MISP feed directory).")

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
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, log: cfg.Log}, nil
}

// lookup is the answer for one observable.
type lookup struct {
	events []intel.Event
	err    error
}

// searchAll looks the observables up in one Lookup of src (one restSearch for a MISP,
// however many observables) and returns the answers in input order. One failure does not
// fail the others. warnings asks a MISP for its warninglist hits on the matched attributes
// (intel.Query.Warnings).
func (s *Service) searchAll(ctx context.Context, src intel.Source, obs []observable, limit int, warnings bool) (out []lookup) {
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
		qs[i] = intel.Query{Value: o.Value, Types: o.kind.mispTypes, Limit: limit, Warnings: warnings}
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

// Health checks that the tenant's MISPs accept their keys: every MISP source is pinged, at
// once (a feed, loading or not, is not a failure: Feeds says how it stands). ok is false when
// the tenant has no source to ask or every one pinged failed; errs names the failures.
func (s *Service) Health(ctx context.Context, t *Tenant) (ok bool, errs []error) {
	if err := t.failed(); err != nil {
		return false, []error{err}
	}
	var pinged []int
	for i, src := range t.sources {
		if src.Backend == nil || src.Backend.Writable() { // a feed has nothing to check: /health says how it stands
			pinged = append(pinged, i)
		}
	}
	errs = make([]error, len(pinged))
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
	errs = slices.DeleteFunc(errs, func(err error) bool { return err == nil })
	return len(errs) == 0 || len(errs) < len(pinged), errs
}

// Feeds says where the public feeds stand; nil when there are none.
func (s *Service) Feeds() []FeedState {
	if s.cfg.FeedStates == nil {
		return nil
	}
	return s.cfg.FeedStates()
}

// Version is the relay's version.
func (s *Service) Version() string { return s.cfg.Version }

// Enrichment is the core's answer to /observe and /deliberate.
type Enrichment struct {
	Data *gen.EnrichData // nil when the tenant has no source to ask
	Errs []error         // what failed: the tenant, or a source's lookups (named)
	// Answered says some source answered all its lookups: an answer with errors keeps its
	// (maybe empty) data then.
	Answered bool
}

// Enrich asks every source of the tenant at once and maps what they all said: the verdict
// follows the policy over every source's judgements, and each entity names its source. One
// source failing leaves the others' answer, plus an error naming it; every source failing
// leaves the errors alone. observe adds every entity to the verdicts (/observe); without it,
// verdicts and judgements only (/deliberate).
func (s *Service) Enrich(ctx context.Context, t *Tenant, in []gen.ObservableInput, observe bool) Enrichment {
	obs := supported(in)
	if err := t.failed(); err != nil {
		return Enrichment{Errs: []error{err}}
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
	events := 0
	for _, a := range answers {
		for _, r := range a.results {
			events += len(r.events)
		}
	}
	b.reserve(len(obs), events, observe)
	var errs []error
	for i := range obs {
		found, failed := mergeAnswers(t, answers, i)
		errs = append(errs, failed...)
		if len(failed) == len(answers) {
			continue // no source answered
		}
		if len(found.events) == 0 && m.lists == nil && len(m.checked[obs[i].checked()]) == 0 {
			continue // nothing known of the value: no event, and no warninglist to ask
		}
		if observe {
			m.observe(&b, obs[i], found.events, found.from)
		} else {
			m.verdictOnly(&b, obs[i], found.events)
		}
	}
	return Enrichment{Data: b.data(), Errs: errs, Answered: answered}
}

// Refer links each supported observable to the events that hold it, in every
// source of the tenant with a UI (its MISPs; a feed has none), in the sources' order. A value
// without a slash needs no MISP call: MISP's event index filters on it exactly (see
// searchLink). A value with one (a URL) cannot be put in such a link, so it is looked up (the
// same cached search as /observe) and linked to the events found by their UUIDs; a value a
// MISP holds in no event gets no link into it.
func (s *Service) Refer(ctx context.Context, t *Tenant, in []gen.ObservableInput) ([]gen.ReferenceLink, []error) {
	obs := supported(in) // a MISP search link for a value MISP misreads would mislead
	if err := t.failed(); err != nil {
		return nil, []error{err}
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
	return links, errs
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

// Actions lists the actions available: reporting to MISP for observables a
// writable source of the tenant (a MISP; a feed cannot be written to) holds, and a
// urlscan.io scan for URLs and domains when a urlscan.io key is available.
func (s *Service) Actions(ctx context.Context, t *Tenant, in []gen.ObservableInput) ([]gen.RespondAction, []error) {
	all := candidates(in)
	if err := t.failed(); err != nil {
		return nil, []error{err}
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
	canScan := s.cfg.Scanner != nil && s.urlscanKey(t.claims) != ""
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
	return actions, errs
}

// writable keeps the sources that can be reported to: MISPs, not feeds.
func writable(src intel.Source) bool { return src.Backend != nil && src.Backend.Writable() }

func (s *Service) urlscanKey(c auth.Claims) string {
	if c.URLScanKey != "" {
		return c.URLScanKey
	}
	return s.cfg.URLScanKey
}

// Trigger runs one action; ok says whether it was done (somewhere), errs what failed. A
// report to MISP goes to every writable source of the tenant that holds the value: it
// succeeds when one took it, the others' failures in errs.
func (s *Service) Trigger(ctx context.Context, t *Tenant, body gen.TriggerRequest) (ok bool, errs []error) {
	ok, errs = s.trigger(ctx, t, body)
	for _, err := range errs {
		s.log.InfoContext(ctx, "respond action failed", "action", body.ActionId, "err", err)
	}
	return ok, errs
}

func (s *Service) trigger(ctx context.Context, t *Tenant, body gen.TriggerRequest) (ok bool, errs []error) {
	switch gen.RespondActionId(body.ActionId) {
	case gen.MispAddSighting, gen.MispAddFalsePositive:
		if err := t.failed(); err != nil {
			return false, []error{err}
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
			return false, []error{Invalidf("urlscan.io scans URLs and domains, not %s %s.",
				PyRepr(body.ObservableType), PyRepr(body.ObservableValue))}
		}
		o := obs[0]
		key := s.urlscanKey(t.claims)
		if s.cfg.Scanner == nil || key == "" {
			return false, []error{&upstream.Error{Summary: "no usable urlscan.io API key", Op: "scan", Kind: upstream.ErrPermission, Detail: "add urlscan_key to the JWT or set URLSCAN_API_KEY"}}
		}
		if _, err := s.cfg.Scanner.Scan(ctx, key, o.Value); err != nil {
			return false, []error{err}
		}
		return true, nil
	}
	return false, []error{Invalidf("Unknown action-id %s.", PyRepr(body.ActionId))}
}

// report adds a sighting (or false positive) of o to the tenant's MISPs. A tenant of one
// source reports to it (a feed says it cannot be written to). With several, those writable
// sources that hold o take it, all at once; when none holds it (or it could not be asked),
// every writable source is asked to, and says why not.
func (s *Service) report(ctx context.Context, t *Tenant, o observable, typ intel.SightingType) (bool, []error) {
	if len(t.sources) == 0 {
		return false, []error{errNoBackend}
	}
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
func triggerObservable(body gen.TriggerRequest) (observable, error) {
	obs := supported([]gen.ObservableInput{{Type: body.ObservableType, Value: body.ObservableValue}})
	if len(obs) == 0 {
		return observable{}, Invalidf("The observable %s %s is not supported or cannot be matched exactly by MISP.",
			PyRepr(body.ObservableType), PyRepr(body.ObservableValue))
	}
	return obs[0], nil
}
