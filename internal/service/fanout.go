package service

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/misp-relay/misp-relay/internal/intel"
)

// SourceError is one source's failure in the answer of a tenant with several: its message
// names the source (never its key), its kind is the failure's.
type SourceError struct {
	Source string
	Err    error
}

func (e *SourceError) Error() string { return e.Source + ": " + e.Err.Error() }
func (e *SourceError) Unwrap() error { return e.Err }

// named is err as the tenant's answers say it: naming src when the tenant has several sources.
func (t *Tenant) named(src intel.Source, err error) error {
	if err == nil || !t.multi() {
		return err
	}
	return &SourceError{Source: src.Name, Err: err}
}

// answer is what one source said for a request's observables.
type answer struct {
	at      int      // the source's place in the tenant's sources
	results []lookup // in the observables' order
	// checked is the source's MISP warninglist check of the values, by the spelling each was
	// asked about (observable.checked; nil: none).
	checked map[string][]intel.WarninglistHit
}

// ok tells whether the source answered every lookup.
func (a answer) ok() bool {
	for _, r := range a.results {
		if r.err != nil {
			return false
		}
	}
	return true
}

// askAll asks the tenant's sources that pass keep, all at once, each once for all of obs
// (searchAll), with MISP's warninglist check beside the search when warnings is set. The
// answers are in the sources' order.
func (s *Service) askAll(ctx context.Context, t *Tenant, obs []observable, limit int, warnings bool, keep func(intel.Source) bool) []answer {
	var out []answer
	for i, src := range t.sources {
		if keep == nil || keep(src) {
			out = append(out, answer{at: i})
		}
	}
	var wg sync.WaitGroup
	for k := range out {
		a := &out[k]
		src := t.sources[a.at]
		ask := func() {
			if !warnings {
				a.results = s.searchAll(ctx, src, obs, limit, false)
				return
			}
			checked := s.checkWarninglists(ctx, src, obs)
			a.results = s.searchAll(ctx, src, obs, limit, false)
			var ok bool
			if a.checked, ok = checked(); !ok {
				s.searchWarnings(ctx, src, obs, limit, a.results)
			}
		}
		if len(out) == 1 {
			ask() // no goroutine for a tenant of one source
			continue
		}
		wg.Go(ask)
	}
	wg.Wait()
	return out
}

// searchWarnings asks src again, with MISP's warninglist hits (intel.Query.Warnings), about
// the observables it found events for, when its warninglist check failed: the search does
// not ask for the hits of the attributes it matches, as the check answers for every value,
// so without this a value that is on a warninglist and in an event would lose the list's
// word. results are replaced where the second answer succeeds.
func (s *Service) searchWarnings(ctx context.Context, src intel.Source, obs []observable, limit int, results []lookup) {
	var again []observable
	var at []int
	for i, r := range results {
		if r.err == nil && len(r.events) > 0 {
			again, at = append(again, obs[i]), append(at, i)
		}
	}
	if len(again) == 0 {
		return
	}
	var failed error
	for k, r := range s.searchAll(ctx, src, again, limit, true) {
		if r.err == nil {
			results[at[k]] = r
		} else if failed == nil {
			failed = r.err
		}
	}
	if failed != nil {
		s.log.WarnContext(ctx, "MISP's search for the warninglist hits failed; the verdicts of the values it did not answer rest on the relay's own warninglists only",
			"source", src.Name, "err", failed)
	}
}

// merged is what every source said of one observable: the events, most severe first, each
// with the place of the source it came from.
type merged struct {
	events []intel.Event
	from   []int
}

// mergeAnswers gathers the answers for observable i, sorted by severity (sources' order, and
// each source's own order, kept among equals), and the failures, named for the tenant.
func mergeAnswers(t *Tenant, answers []answer, i int) (m merged, errs []error) {
	type tagged struct {
		e    intel.Event
		from int
	}
	var all []tagged
	for _, a := range answers {
		r := a.results[i]
		if r.err != nil {
			errs = append(errs, t.named(t.sources[a.at], r.err))
			continue
		}
		for _, e := range r.events {
			all = append(all, tagged{e, a.at})
		}
	}
	slices.SortStableFunc(all, func(x, y tagged) int {
		return cmp.Compare(severityRank(x.e.ThreatLevel), severityRank(y.e.ThreatLevel))
	})
	if len(all) > 0 {
		m.events, m.from = make([]intel.Event, len(all)), make([]int, len(all))
		for k, x := range all {
			m.events[k], m.from[k] = x.e, x.from
		}
	}
	return m, errs
}

// mergeChecked puts the sources' MISP warninglist answers together, each hit once, and, for a
// tenant of several sources, names for each value the first MISP whose lists hold it: the
// source of a judgement its lists alone decide.
func mergeChecked(t *Tenant, answers []answer) (checked map[string][]intel.WarninglistHit, by map[string]string) {
	for _, a := range answers {
		for v, hits := range a.checked {
			if checked == nil {
				if len(answers) == 1 && !t.multi() {
					return a.checked, nil
				}
				checked, by = map[string][]intel.WarninglistHit{}, map[string]string{}
			}
			if _, ok := by[v]; !ok && len(hits) > 0 {
				by[v] = t.sources[a.at].Name
			}
			for _, h := range hits {
				if !slices.Contains(checked[v], h) {
					checked[v] = append(checked[v], h)
				}
			}
		}
	}
	return checked, by
}
