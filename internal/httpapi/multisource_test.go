package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/service"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

// The keys of the tenant's two MISPs: each must reach its own MISP only, and no answer.
const (
	keyOne = "KeyOne0123456789abcdefghijABCDEFGHIJ0123"
	keyTwo = "KeyTwo0123456789abcdefghijABCDEFGHIJ0123"
)

// mispSource is a source on a fake MISP at url (running or not) with key.
func mispSource(t *testing.T, name, url, key string) intel.Source {
	t.Helper()
	client, err := misp.New(misp.Config{BaseURL: url, Timeout: 5 * time.Second, UserAgent: "misp-relay-test"})
	if err != nil {
		t.Fatal(err)
	}
	return intel.Source{Name: name, Backend: client, Key: key, UI: url}
}

// downURL is the address of a MISP that is down (nothing listens there any more).
func downURL(t *testing.T) string {
	m := misptest.New(t, keyTwo)
	u := m.URL
	m.Close()
	return u
}

func sampleFeed(t *testing.T) intel.Source {
	t.Helper()
	store, err := feed.Load("../../sample/feed")
	if err != nil {
		t.Fatal(err)
	}
	return intel.Source{Name: "MISP feed sample", Backend: store}
}

// serveSources puts a service whose every tenant asks srcs, in order, behind h.
func (h *harness) serveSources(srcs ...intel.Source) {
	h.t.Helper()
	h.serve(service.Config{Now: func() time.Time { return fixedNow }, Sources: func(auth.Claims) ([]intel.Source, error) {
		return append([]intel.Source(nil), srcs...), nil
	}})
}

func (h *harness) noKeys() {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	testkit.NoSecrets(h.t, strings.Join(h.bodies, "\n")+h.logs.String(), keyOne, keyTwo)
}

// entities are the docs of one entity list of an enrich answer.
func entities(body map[string]any, kind string) []map[string]any {
	data, _ := body["data"].(map[string]any)
	return docs(data, kind)
}

// TestSourcesAskedTogether: a tenant's two MISPs and a feed are all asked; every judgement
// and sighting names its source (in source and in the reason) and links into that source's
// UI (a feed has none); each MISP is asked with its own key; the verdict follows the policy
// over every source's judgements.
func TestSourcesAskedTogether(t *testing.T) {
	h := newHarness(t, allEvents())
	one := misptest.New(t, keyOne, eventLow)
	two := misptest.New(t, keyTwo, eventHigh)
	h.serveSources(mispSource(t, "MISP one.example", one.URL, keyOne), mispSource(t, "MISP two.example", two.URL, keyTwo), sampleFeed(t))

	_, got := h.post("/observe/observables", `[{"type":"domain","value":"evil.example"},{"type":"ip","value":"198.51.100.23"}]`)
	if _, ok := got["errors"]; ok {
		t.Fatalf("errors: %v", got["errors"])
	}
	bySource := map[string]int{}
	for _, j := range entities(got, "judgements") {
		src := j["source"].(string)
		bySource[src]++
		if !strings.HasPrefix(j["reason"].(string), src+": ") {
			t.Errorf("reason %q does not name its source %q", j["reason"], src)
		}
		uri, _ := j["source_uri"].(string)
		switch src {
		case "MISP one.example":
			if !strings.HasPrefix(uri, one.URL+"/events/view/"+uuidLow) {
				t.Errorf("source_uri %q of MISP one", uri)
			}
		case "MISP two.example":
			if !strings.HasPrefix(uri, two.URL+"/events/view/"+uuidHigh) {
				t.Errorf("source_uri %q of MISP two", uri)
			}
		case "MISP feed sample":
			if uri != "" {
				t.Errorf("a feed's judgement links to %q", uri)
			}
		default:
			t.Errorf("judgement source %q", src)
		}
	}
	if bySource["MISP one.example"] != 1 || bySource["MISP two.example"] != 1 || bySource["MISP feed sample"] == 0 {
		t.Errorf("judgements by source: %v", bySource)
	}
	for _, s := range entities(got, "sightings") {
		if src := s["source"].(string); !strings.HasPrefix(src, "MISP ") || src == "MISP" {
			t.Errorf("sighting source %q", src)
		}
	}
	for _, v := range entities(got, "verdicts") {
		if obs := v["observable"].(map[string]any); obs["value"] == "evil.example" && v["disposition_name"] != "Malicious" {
			t.Errorf("verdict of evil.example %v: the high event of MISP two must decide", v["disposition_name"])
		}
	}
	for _, m := range []struct {
		srv *misptest.Server
		key string
	}{{one, keyOne}, {two, keyTwo}} {
		reqs := m.srv.Requests()
		if len(reqs) == 0 {
			t.Errorf("a MISP was not asked")
		}
		for _, r := range reqs {
			if r.Header.Get("Authorization") != m.key {
				t.Errorf("a MISP was asked with another source's key")
			}
		}
	}

	_, got = h.post("/deliberate/observables", `[{"type":"domain","value":"evil.example"}]`)
	if v := entities(got, "verdicts"); len(v) != 1 || v[0]["disposition_name"] != "Malicious" {
		t.Errorf("deliberate: %v", got)
	}

	// Refer links into every source with a UI, one id each.
	_, got = h.post("/refer/observables", `[{"type":"ip","value":"198.51.100.7"}]`)
	links, _ := got["data"].([]any)
	if len(links) != 2 {
		t.Fatalf("refer: %v", got)
	}
	ids := map[string]bool{}
	for i, l := range links {
		l := l.(map[string]any)
		ids[l["id"].(string)] = true
		if base := []string{one.URL, two.URL}[i]; !strings.HasPrefix(l["url"].(string), base+"/events/index/") {
			t.Errorf("link %d: %v", i, l["url"])
		}
	}
	if len(ids) != 2 {
		t.Errorf("refer ids repeat: %v", ids)
	}
	h.noKeys()
}

// TestOneSourceDown: a MISP that is down does not fail the request: the answer holds what the
// other sources said plus one error naming the MISP that failed (never its key), and passes
// the spec; only when every source fails is the answer an error alone.
func TestOneSourceDown(t *testing.T) {
	h := newHarness(t, allEvents())
	one := misptest.New(t, keyOne, eventHigh)
	h.serveSources(mispSource(t, "MISP one.example", one.URL, keyOne), mispSource(t, "MISP two.example", downURL(t), keyTwo))

	_, got := h.post("/observe/observables", `[{"type":"domain","value":"evil.example"},{"type":"ip","value":"192.0.2.200"}]`)
	if j := entities(got, "judgements"); len(j) != 1 || j[0]["source"] != "MISP one.example" {
		t.Errorf("judgements: %v", j)
	}
	errs, _ := got["errors"].([]any)
	if len(errs) != 1 {
		t.Fatalf("errors: %v", got["errors"])
	}
	if code, msg := errorOf(t, got); code != "service unavailable" || !strings.HasPrefix(msg, "MISP two.example: ") {
		t.Errorf("error %q %q, want the down MISP named", code, msg)
	}

	// Nothing found where the source answered: its empty answer, and the error.
	_, got = h.post("/observe/observables", `[{"type":"ip","value":"192.0.2.200"}]`)
	if d, ok := got["data"].(map[string]any); !ok || len(d) != 0 || got["errors"] == nil {
		t.Errorf("nothing found by the MISP that is up: %v", got)
	}

	// Health: the MISP that is down is named beside the status.
	_, got = h.post("/health", ``)
	if d, _ := got["data"].(map[string]any); d["status"] != "ok" {
		t.Errorf("health: %v", got)
	}
	if _, msg := errorOf(t, got); !strings.HasPrefix(msg, "MISP two.example: ") {
		t.Errorf("health error %q", msg)
	}

	// Every source down: errors alone.
	h.serveSources(mispSource(t, "MISP two.example", downURL(t), keyTwo), mispSource(t, "MISP three.example", downURL(t), keyOne))
	for _, path := range []string{"/observe/observables", "/deliberate/observables"} {
		_, got = h.post(path, `[{"type":"domain","value":"evil.example"}]`)
		if _, ok := got["data"]; ok || len(got["errors"].([]any)) != 2 {
			t.Errorf("%s, every source down: %v", path, got)
		}
	}
	_, got = h.post("/health", ``)
	if _, ok := got["data"]; ok || len(got["errors"].([]any)) != 2 {
		t.Errorf("health, every source down: %v", got)
	}
	h.noKeys()
}

// TestReportToEverySourceHoldingIt: respond offers MISP actions for a value any writable
// source holds (a feed is never written to); the trigger reports to every MISP holding the
// value and succeeds when one took it, the others' failures named in errors.
func TestReportToEverySourceHoldingIt(t *testing.T) {
	h := newHarness(t, allEvents())
	one := misptest.New(t, keyOne, eventLow)
	two := misptest.New(t, keyTwo, eventHigh)
	three := misptest.New(t, keyOne, eventOdd)
	h.serveSources(sampleFeed(t), mispSource(t, "MISP one.example", one.URL, keyOne), mispSource(t, "MISP two.example", two.URL, keyTwo),
		mispSource(t, "MISP three.example", three.URL, keyOne))

	_, got := h.post("/respond/observables", `[{"type":"domain","value":"evil.example"},{"type":"ip","value":"198.51.100.23"},{"type":"md5","value":"`+md5v+`"}]`)
	offered := map[string]int{}
	for _, a := range got["data"].([]any) {
		a := a.(map[string]any)
		offered[a["query-params"].(map[string]any)["observable_value"].(string)]++
	}
	if offered["evil.example"] != 2 || offered[md5v] != 2 || offered["198.51.100.23"] != 0 {
		t.Errorf("actions offered: %v (the feed's value has none: it cannot be written to)", offered)
	}

	trigger := `{"action-id":"misp-add-sighting","observable_type":"domain","observable_value":"evil.example"}`
	_, got = h.post("/respond/trigger", trigger)
	if got["data"].(map[string]any)["status"] != "success" || got["errors"] != nil {
		t.Errorf("trigger: %v", got)
	}
	if len(one.Sightings()) != 1 || len(two.Sightings()) != 1 || len(three.Sightings()) != 0 {
		t.Errorf("sightings: %d, %d, %d; want the two MISPs holding the value only", len(one.Sightings()), len(two.Sightings()), len(three.Sightings()))
	}

	two.Fail("/sightings/add", http.StatusForbidden, `{"name":"Forbidden","message":"Forbidden","url":"/sightings/add"}`)
	_, got = h.post("/respond/trigger", trigger)
	if got["data"].(map[string]any)["status"] != "success" {
		t.Errorf("trigger with one MISP refusing: %v", got)
	}
	if _, msg := errorOf(t, got); !strings.HasPrefix(msg, "MISP two.example: ") {
		t.Errorf("trigger error %q", msg)
	}
	one.Fail("/sightings/add", http.StatusForbidden, `{"name":"Forbidden","message":"Forbidden","url":"/sightings/add"}`)
	_, got = h.post("/respond/trigger", trigger)
	if got["data"].(map[string]any)["status"] != "failure" || len(got["errors"].([]any)) != 2 {
		t.Errorf("trigger with every MISP refusing: %v", got)
	}
	h.noKeys()
}

// TestHealthLeavesFeedsOut: /health pings the tenant's MISPs only: a feed still loading is
// not a failure (and a lookup answers from what it has, nothing yet, without an error).
func TestHealthLeavesFeedsOut(t *testing.T) {
	h := newHarness(t, allEvents())
	one := misptest.New(t, keyOne, eventHigh)
	loading, err := feed.NewSource(feed.SourceConfig{Name: "circl", Location: "../../sample/feed"}) // never run: loading
	if err != nil {
		t.Fatal(err)
	}
	h.serveSources(mispSource(t, "MISP one.example", one.URL, keyOne), intel.Source{Name: loading.Name(), Backend: loading})
	_, got := h.post("/health", ``)
	if got["errors"] != nil || got["data"].(map[string]any)["status"] != "ok" {
		t.Errorf("health with a feed loading: %v", got)
	}
	_, got = h.post("/observe/observables", `[{"type":"domain","value":"evil.example"}]`)
	if got["errors"] != nil || len(entities(got, "judgements")) != 1 {
		t.Errorf("observe with a feed loading: %v", got)
	}
	h.noKeys()
}

// TestListedOnlyNamesTheMISP: a value no event holds but one MISP's warninglists hold gets its
// Common judgement from that MISP by name, not from "MISP" in general.
func TestListedOnlyNamesTheMISP(t *testing.T) {
	h := newHarness(t, allEvents())
	one := misptest.New(t, keyOne, eventLow)
	two := misptest.New(t, keyTwo, eventHigh)
	two.Warninglist("List of known IPv4 public DNS resolvers", "8.8.8.0/24")
	h.serveSources(mispSource(t, "MISP one.example", one.URL, keyOne), mispSource(t, "MISP two.example", two.URL, keyTwo))
	_, got := h.post("/observe/observables", `[{"type":"ip","value":"8.8.8.8"}]`)
	judgements := entities(got, "judgements")
	if len(judgements) != 1 || judgements[0]["source"] != "MISP two.example" || judgements[0]["disposition_name"] != "Common" {
		t.Errorf("judgements %v, want one Common from MISP two.example", judgements)
	}
}

// TestRelationsNameTheirSource: a sighting's relations say which source related the two
// observables (origin), as the sighting does.
func TestRelationsNameTheirSource(t *testing.T) {
	h := newHarness(t, allEvents())
	one := misptest.New(t, keyOne, eventLow)
	two := misptest.New(t, keyTwo, eventHigh) // evil.example|203.0.113.5, a domain|ip
	h.serveSources(mispSource(t, "MISP one.example", one.URL, keyOne), mispSource(t, "MISP two.example", two.URL, keyTwo))
	_, got := h.post("/observe/observables", `[{"type":"ip","value":"203.0.113.5"}]`)
	found := 0
	for _, sg := range entities(got, "sightings") {
		rels, _ := sg["relations"].([]any)
		for _, r := range rels {
			found++
			if origin := r.(map[string]any)["origin"]; origin != sg["source"] || origin != "MISP two.example" {
				t.Errorf("relation %v of a sighting from %v", r, sg["source"])
			}
		}
	}
	if found == 0 {
		t.Errorf("no relation in %v", entities(got, "sightings"))
	}
}
