package service

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/misp-relay/misp-relay/internal/gen"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/verdict"
)

// Warninglists are the relay's own warninglists (WARNINGLISTS_DIR): the lists a value is on,
// for an attribute of type attrType. They are applied to every backend's answers, MISP's and
// a feed's alike, and to attributes MISP does not annotate (those not flagged for IDS).
type Warninglists interface {
	Lookup(attrType, value string) []intel.WarninglistHit
}

// warninglistChecker is the optional capability of a backend that can ask MISP's own
// warninglists about values (MISP's POST /warninglists/checkValue): the MISP client and
// the cache in front of it have it, a feed does not.
type warninglistChecker interface {
	CheckWarninglists(ctx context.Context, key string, values []string) (map[string][]intel.WarninglistHit, error)
}

// cachedWarninglists is the optional capability of a backend that remembers warninglist
// checks (the cache): the answer from memory, when it holds every value's.
type cachedWarninglists interface {
	CachedWarninglists(key string, values []string) (map[string][]intel.WarninglistHit, bool)
}

// checkWarninglists starts MISP's warninglist check of the request's values, concurrently
// with the searches, and returns a function that waits for its answer: the hits by the
// spelling each value is asked about (observable.checked), and whether MISP answered. A
// backend without the capability answers nothing (ok). A check that fails gives no hits and
// not ok: the failure is logged once for the request (MISP lacking the endpoint must not fail
// lookups), and askAll asks MISP for the hits of the matched attributes instead.
func (s *Service) checkWarninglists(ctx context.Context, src intel.Source, obs []observable) func() (map[string][]intel.WarninglistHit, bool) {
	wc, ok := src.Backend.(warninglistChecker)
	if !ok || len(obs) == 0 {
		return func() (map[string][]intel.WarninglistHit, bool) { return nil, true }
	}
	values := make([]string, 0, len(obs))
	seen := make(map[string]struct{}, len(obs))
	for _, o := range obs {
		v := o.checked()
		if _, dup := seen[v]; !dup {
			seen[v] = struct{}{}
			values = append(values, v)
		}
	}
	if cw, ok := src.Backend.(cachedWarninglists); ok {
		if hits, ok := cw.CachedWarninglists(src.Key, values); ok {
			return func() (map[string][]intel.WarninglistHit, bool) { return hits, true } // no goroutine to start
		}
	}
	var hits map[string][]intel.WarninglistHit
	failed := false
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if v := recover(); v != nil {
				s.log.ErrorContext(ctx, "panic in the warninglist check", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				hits, failed = nil, true
			}
		}()
		var err error
		hits, err = wc.CheckWarninglists(ctx, src.Key, values)
		if err != nil {
			s.log.WarnContext(ctx, "MISP warninglist check failed; the matched attributes' warninglist hits are asked of MISP with the search instead",
				"source", src.Name, "values", len(values), "err", err)
			hits, failed = nil, true
		}
	}()
	return func() (map[string][]intel.WarninglistHit, bool) {
		<-done
		return hits, !failed
	}
}

// judge applies the policy to each event: every matched attribute that is an indicator is
// judged and the event's judgement is its decisive attribute's, returned beside it; an event
// that mentions o only as context (a link, a sample's file name) has the zero judgement and a
// nil attribute. hits are the warninglists o's value is on. Deliberate and observe both call
// it, so they agree.
func (m mapper) judge(o observable, events []intel.Event) (js []verdict.Judgement, attrs []*intel.Attribute, hits []intel.WarninglistHit) {
	p := m.policy
	if p == nil {
		p = &verdict.Policy{}
	}
	hits = m.valueHits(o, events)
	valid := m.validTime(o)
	js = make([]verdict.Judgement, len(events))
	attrs = make([]*intel.Attribute, len(events))
	for i := range events {
		e := &events[i]
		if len(e.Attributes) == 0 {
			// No matched attribute at all (backends always give one): the event's threat
			// level alone, as for an attribute flagged for IDS.
			a := &intel.Attribute{ToIDS: true}
			js[i], attrs[i] = p.Judge(verdict.Input{Event: e, Attribute: a, Warnings: hits, Now: m.now, Valid: valid}), a
			continue
		}
		if j, k := p.JudgeEvent(e, o.Value, hits, m.now, valid); k >= 0 {
			js[i], attrs[i] = j, &e.Attributes[k]
		}
	}
	return js, attrs, hits
}

// listed is the judgement of a value no event judges, by the warninglists it is on alone
// (verdict.Policy.JudgeListed): hits are valueHits' (the request's MISP check, MISP's
// warnings, the relay's lists for the matched types), to which the relay's own lists for
// every attribute type o is searched among are added, as no matched attribute says which.
func (m mapper) listed(o observable, hits []intel.WarninglistHit) (verdict.Judgement, bool) {
	p := m.policy
	if p == nil {
		p = &verdict.Policy{}
	}
	if m.lists != nil {
		for _, t := range o.kind.mispTypes {
			for _, h := range m.lists.Lookup(t, o.Value) {
				if !hasList(hits, h) {
					hits = append(hits[:len(hits):len(hits)], h)
				}
			}
		}
	}
	return p.JudgeListed(hits, m.validTime(o))
}

// hasList reports whether hits already name h's list, said by the same source.
func hasList(hits []intel.WarninglistHit, h intel.WarninglistHit) bool {
	for _, x := range hits {
		if x.List == h.List && x.Source == h.Source {
			return true
		}
	}
	return false
}

// valueHits gathers every warninglist the observable's value is said to be on: MISP's
// checkValue answer, MISP's warnings about it on any matched attribute (not those about the
// other half of a composite attribute: intel.Attribute.WarningsAbout), and the relay's own lists for
// each matched attribute type. A hit is about the value, so it applies to every event.
func (m mapper) valueHits(o observable, events []intel.Event) []intel.WarninglistHit {
	hits := m.checked[o.checked()]
	var types []string
	for i := range events {
		for k := range events[i].Attributes {
			a := &events[i].Attributes[k]
			if about := a.WarningsAbout(o.Value); len(about) > 0 {
				hits = append(hits[:len(hits):len(hits)], about...)
			}
			if m.lists != nil && !contains(types, a.Type) {
				types = append(types, a.Type)
				if own := m.lists.Lookup(a.Type, o.Value); len(own) > 0 {
					hits = append(hits[:len(hits):len(hits)], own...)
				}
			}
		}
	}
	return hits
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// dispositionOf is CTIM's number and name of a disposition.
func dispositionOf(d verdict.Disposition) (gen.Disposition, gen.DispositionName) {
	return gen.Disposition(d), gen.DispositionName(d.String())
}
