//go:build misplive

package misplive

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"
)

// costRuns is how many times each figure is measured; the median is reported.
const costRuns = 7

// measureCost prints what the real MISP costs the relay: the time of one restSearch for one
// value (the body the relay sends, straight to MISP), of an observe of 1, 10 and 50
// observables through the relay with its cache off, and the MISP calls each makes. These are
// figures for the README and the baseline of the batching work; nothing here is asserted
// but the calls per request, which are what the relay decides.
func measureCost(t *testing.T, api *mispAPI, r *relay, p *proxy, token string, seededObs []observable) {
	obs := slices.Clone(seededObs)
	for i := 0; len(obs) < 50; i++ {
		obs = append(obs, observable{"domain", "unknown-" + strconv.Itoa(i) + ".relay-test.example"})
	}
	one := map[string]any{
		"returnFormat": "json", "value": "c2.relay-test.example", "type": []string{"domain", "domain|ip", "hostname", "hostname|port"},
		"includeContext": 1, "includeEventTags": 1, "includeSightings": 1, "includeWarninglistHits": 1, "includeDecayScore": 1,
		"limit": 200, "page": 1,
	}
	search := median(t, func() { api.json(t, http.MethodPost, "/attributes/restSearch", one, nil) })
	report := fmt.Sprintf("misplive: one restSearch of one value: %v (median of %d)\n", search.Round(time.Millisecond), costRuns)
	// The parts of an observe of 50: one restSearch of the 50 values as a list (the union of
	// their types), and one checkValue of them, which the relay makes at the same time.
	var values []string
	var types []string
	for _, o := range obs[:50] {
		values = append(values, o.Value)
		for _, ty := range mispTypes[o.Type] {
			if !slices.Contains(types, ty) {
				types = append(types, ty)
			}
		}
	}
	fifty := maps.Clone(one)
	fifty["value"], fifty["type"] = values, types
	batch := median(t, func() { api.json(t, http.MethodPost, "/attributes/restSearch", fifty, nil) })
	check := median(t, func() { api.json(t, http.MethodPost, "/warninglists/checkValue", values, nil) })
	report += fmt.Sprintf("misplive: one restSearch of 50 values as a list: %v (%.1f × one value); one checkValue of them: %v (%.1f ×)\n",
		batch.Round(time.Millisecond), float64(batch)/float64(search), check.Round(time.Millisecond), float64(check)/float64(search))
	for _, n := range []int{1, 10, 50} {
		p.take()
		r.post(t, token, "/observe/observables", obs[:n], api.key)
		calls := p.take()
		d := median(t, func() { r.post(t, token, "/observe/observables", obs[:n], api.key) })
		searches, checks := calls["/attributes/restSearch"], calls["/warninglists/checkValue"]
		report += fmt.Sprintf("misplive: observe of %2d observables: %v (%.1f × one restSearch); MISP calls: %d restSearch + %d checkValue\n",
			n, d.Round(time.Millisecond), float64(d)/float64(search), searches, checks)
		if searches != 1 || checks != 1 {
			t.Errorf("observe of %d observables made %d restSearch and %d checkValue, want 1 and 1", n, searches, checks)
		}
	}
	fmt.Print(report)
	t.Log("\n" + report)
}

// median runs f costRuns times (after one warm-up) and returns the median duration.
func median(t *testing.T, f func()) time.Duration {
	t.Helper()
	f()
	ds := make([]time.Duration, costRuns)
	for i := range ds {
		start := time.Now()
		f()
		ds[i] = time.Since(start)
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}
