//go:build misplive

package misplive

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
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
	now := maps.Clone(one)
	now["includeWarninglistHits"] = 0
	searchNow := median(t, func() { api.json(t, http.MethodPost, "/attributes/restSearch", now, nil) })
	report := fmt.Sprintf("misplive: one restSearch of one value: %v (median of %d), as the relay sent it before the batching; %v as it sends it now, without includeWarninglistHits\n",
		search.Round(time.Millisecond), costRuns, searchNow.Round(time.Millisecond))
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
	var found struct {
		Response struct{ Attribute []json.RawMessage }
	}
	batch := median(t, func() { api.json(t, http.MethodPost, "/attributes/restSearch", fifty, &found) })
	check := median(t, func() { api.json(t, http.MethodPost, "/warninglists/checkValue", values, nil) })
	checkOne := median(t, func() { api.json(t, http.MethodPost, "/warninglists/checkValue", values[:1], nil) })
	report += fmt.Sprintf("misplive: one restSearch of 50 values as a list: %v (%.1f × one value, %d attributes); one checkValue of them: %v (%.1f ×), of one value: %v (%.1f ×)\n",
		batch.Round(time.Millisecond), float64(batch)/float64(search), len(found.Response.Attribute),
		check.Round(time.Millisecond), float64(check)/float64(search), checkOne.Round(time.Millisecond), float64(checkOne)/float64(search))
	// The two calls an observe of 50 makes now, the search without includeWarninglistHits,
	// alone and at the same time as the checkValue: MISP's own part of such an observe.
	fiftyNow := maps.Clone(fifty)
	fiftyNow["includeWarninglistHits"] = 0
	batchNow := median(t, func() { api.json(t, http.MethodPost, "/attributes/restSearch", fiftyNow, nil) })
	both := median(t, func() {
		var wg sync.WaitGroup
		wg.Go(func() { api.json(t, http.MethodPost, "/warninglists/checkValue", values, nil) })
		api.json(t, http.MethodPost, "/attributes/restSearch", fiftyNow, nil)
		wg.Wait()
	})
	report += fmt.Sprintf("misplive: the same without includeWarninglistHits, as the relay sends it now: %v (%.1f ×); with the checkValue at the same time, as an observe makes them: %v (%.1f ×)\n",
		batchNow.Round(time.Millisecond), float64(batchNow)/float64(search), both.Round(time.Millisecond), float64(both)/float64(search))
	// What MISP spends per attribute found: the same search without the include* flags the
	// relay needs (context, event tags, sightings, warninglist hits, decay scores).
	bare := maps.Clone(fifty)
	for _, f := range []string{"includeContext", "includeEventTags", "includeSightings", "includeWarninglistHits", "includeDecayScore"} {
		bare[f] = 0
	}
	plain := median(t, func() { api.json(t, http.MethodPost, "/attributes/restSearch", bare, nil) })
	report += fmt.Sprintf("misplive: the same 50-value restSearch without the include* flags: %v (%.1f × one value)\n",
		plain.Round(time.Millisecond), float64(plain)/float64(search))
	unknown := make([]observable, 50)
	for i := range unknown {
		unknown[i] = observable{"domain", "none-" + strconv.Itoa(i) + ".relay-test.example"}
	}
	for _, tc := range []struct {
		what string
		obs  []observable
	}{
		{"", obs[:1]},
		{"", obs[:10]},
		{"", obs[:50]},
		{" MISP holds none of", unknown},
	} {
		p.take()
		r.post(t, token, "/observe/observables", tc.obs, api.key)
		calls := p.take()
		d, one, ratio := paired(t,
			func() { r.post(t, token, "/observe/observables", tc.obs, api.key) },
			func() { api.json(t, http.MethodPost, "/attributes/restSearch", one, nil) })
		searches, checks := calls["/attributes/restSearch"], calls["/warninglists/checkValue"]
		report += fmt.Sprintf("misplive: observe of %2d observables%s: %v, %.1f × one restSearch (%v) made just before it (median of %d pairs); MISP calls: %d restSearch + %d checkValue\n",
			len(tc.obs), tc.what, d.Round(time.Millisecond), ratio, one.Round(time.Millisecond), costRuns, searches, checks)
		if searches != 1 || checks != 1 {
			t.Errorf("observe of %d observables made %d restSearch and %d checkValue, want 1 and 1", len(tc.obs), searches, checks)
		}
	}
	fmt.Print(report)
	t.Log("\n" + report)
}

// paired runs g then f costRuns times (after one warm-up of each) and returns the median
// durations of f and g, and the median of the ratios f/g of each pair: on a machine whose
// load changes, two calls made one after the other compare better than two medians taken
// minutes apart.
func paired(t *testing.T, f, g func()) (medF, medG time.Duration, ratio float64) {
	t.Helper()
	g()
	f()
	fs, gs := make([]time.Duration, costRuns), make([]time.Duration, costRuns)
	ratios := make([]float64, costRuns)
	for i := range costRuns {
		start := time.Now()
		g()
		gs[i] = time.Since(start)
		start = time.Now()
		f()
		fs[i] = time.Since(start)
		ratios[i] = float64(fs[i]) / float64(gs[i])
	}
	slices.Sort(fs)
	slices.Sort(gs)
	slices.Sort(ratios)
	return fs[costRuns/2], gs[costRuns/2], ratios[costRuns/2]
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
