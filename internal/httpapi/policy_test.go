package httpapi_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/service"
	"github.com/misp-relay/misp-relay/internal/verdict"
	"github.com/misp-relay/misp-relay/internal/warninglist"
)

// The sample feed's OSINT-style Low event (sample/README.md) and sample/observables-policy.json:
// what the README's policy example shows, through the whole relay (every answer validated
// against api/openapi.yaml by the harness).
const (
	uuidLoader   = "55ea9e0c-8f26-4c8e-9ec5-cf25fb94fef9"
	loaderLink   = "https://blog.example.org/2024/02/loader-delivered-as-fake-updates/"
	loaderMD5    = "54f926d83872e882f4799f07b9d6b445" // filename|md5, conhost.exe
	secondMD5    = "8c7f832f085582128bd8866573378752" // malware-sample, runas.exe
	loaderC2     = "203.0.113.66"
	commentedIP  = "198.51.100.99"
	fpComment    = `comment: "Potential false-positive but included in the OSINT report"`
	emptyFileMD5 = "d41d8cd98f00b204e9800998ecf8427e"
)

// sampleWithLists serves the sample feed with the sample warninglists and the given policy.
func sampleWithLists(t *testing.T, p verdict.Policy) *harness {
	t.Helper()
	h := newHarness(t, options{feedDir: "../../sample/feed"})
	store, err := feed.Load("../../sample/feed")
	if err != nil {
		t.Fatal(err)
	}
	lists, err := warninglist.Load("../../sample/warninglists")
	if err != nil {
		t.Fatal(err)
	}
	h.serve(service.Config{Backend: store, Warninglists: lists, Policy: p, UIURL: "https://misp.example", Now: func() time.Time { return fixedNow }})
	return h
}

// sightingsOf returns value's sightings, by event UUID (the "found in MISP event" ones).
func sightingsOf(data map[string]any, value string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, s := range docs(data, "sightings") {
		obs := s["observables"].([]any)[0].(map[string]any)
		if obs["value"] == value && strings.HasPrefix(s["title"].(string), "Found in MISP event") {
			out[s["external_ids"].([]any)[0].(string)] = s
		}
	}
	return out
}

func TestPolicySample(t *testing.T) {
	h := sampleWithLists(t, verdict.Policy{})
	body, err := os.ReadFile("../../sample/observables-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	data := answerOf(t, h, "/observe/observables", string(body))

	// Context: a report's link and a sample's file name give a sighting and the event's
	// indicator, no judgement and no verdict.
	for _, v := range []string{loaderLink, "conhost.exe"} {
		if js := judgementsFor(data, v); len(js) != 0 {
			t.Errorf("%s judged: %v", v, js)
		}
		for _, d := range docs(data, "verdicts") {
			if d["observable"].(map[string]any)["value"] == v {
				t.Errorf("%s has a verdict: %v", v, d)
			}
		}
		s := sightingsOf(data, v)[uuidLoader]
		if s == nil || !strings.Contains(s["description"].(string), "reported as context, not judged") {
			t.Errorf("%s: sighting %v", v, s)
		}
	}

	// An IDS-flagged indicator of a Low event: Suspicious, severity and confidence Low, the
	// author's comment in the reason and the sighting; the file name it ran under related.
	v, j := verdictFor(t, data, loaderMD5)
	if v["disposition_name"] != "Suspicious" || j["severity"] != "Low" || j["confidence"] != "Low" ||
		j["reason"] != `Suspicious: MISP event threat level Low, flagged for IDS: weak evidence; comment: "Loader, run as conhost.exe".` {
		t.Errorf("%s: verdict %v, judgement %v", loaderMD5, v, j)
	}
	s := sightingsOf(data, loaderMD5)[uuidLoader]
	if d := s["description"].(string); d != `Category: Payload delivery; comment: "Loader, run as conhost.exe"` {
		t.Errorf("sighting description %q", d)
	}
	wantRel := []any{map[string]any{
		"origin": "MISP", "origin_uri": "https://misp.example/events/view/" + uuidLoader, "relation": "File_Name_Of",
		"source":  map[string]any{"type": "file_name", "value": "conhost.exe"},
		"related": map[string]any{"type": "md5", "value": loaderMD5}, "relation_info": map[string]any{"misp_type": "filename|md5"},
	}}
	if diff := cmp.Diff(wantRel, s["relations"]); diff != "" {
		t.Errorf("relations (-want +got):\n%s", diff)
	}

	// A malware-sample is found by its md5.
	if v, _ := verdictFor(t, data, secondMD5); v["disposition_name"] != "Suspicious" {
		t.Errorf("malware-sample md5: %v", v)
	}
	if rel := sightingsOf(data, secondMD5)[uuidLoader]["relations"].([]any); len(rel) != 1 ||
		rel[0].(map[string]any)["source"].(map[string]any)["value"] != "runas.exe" {
		t.Errorf("malware-sample relations %v", rel)
	}

	// The C2 address: what MISP links to it, the domain|ip's name and its url object's URL
	// and host.
	var got []string
	for _, r := range sightingsOf(data, loaderC2)[uuidLoader]["relations"].([]any) {
		r := r.(map[string]any)
		src, rel := r["source"].(map[string]any), r["related"].(map[string]any)
		got = append(got, src["type"].(string)+":"+src["value"].(string)+" "+r["relation"].(string)+" "+rel["type"].(string)+":"+rel["value"].(string))
	}
	want := []string{
		"domain:update-check.example.net Resolved_To ip:" + loaderC2,
		"ip:" + loaderC2 + " Related_To url:https://update-check.example.net:8443/gate.php",
		"hostname:update-check.example.net Resolved_To ip:" + loaderC2,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s relations (-want +got):\n%s", loaderC2, diff)
	}

	// A non-IDS attribute of a Low event: Unknown, never Common; the author's doubt is said.
	v, j = verdictFor(t, data, commentedIP)
	if v["disposition_name"] != "Unknown" || !strings.Contains(j["reason"].(string), fpComment) ||
		!strings.Contains(sightingsOf(data, commentedIP)[uuidLoader]["description"].(string), fpComment) {
		t.Errorf("%s: verdict %v, judgement %v", commentedIP, v, j)
	}

	// Values no event mentions, on the relay's lists: Common by the list alone, the source
	// saying whose list; no sighting, no indicator.
	for value, list := range map[string]string{"10.0.0.5": "List of RFC 1918 CIDR blocks", emptyFileMD5: "List of known hashes for empty files"} {
		v, j := verdictFor(t, data, value)
		if v["disposition_name"] != "Common" || j == nil || j["source"] != "misp-relay warninglists" ||
			j["reason"] != `Common: on the relay's warninglist "`+list+`".` || j["external_ids"] != nil || j["source_uri"] != nil {
			t.Errorf("%s: verdict %v, judgement %v", value, v, j)
		}
		if len(sightingsOf(data, value)) != 0 {
			t.Errorf("%s: a sighting without an event", value)
		}
	}

	// Deliberate gives the same verdicts, for the same observables.
	obsVerdicts := map[string]any{}
	for _, v := range docs(data, "verdicts") {
		obsVerdicts[v["observable"].(map[string]any)["value"].(string)] = v["disposition_name"]
	}
	delVerdicts := map[string]any{}
	for _, v := range docs(answerOf(t, h, "/deliberate/observables", string(body)), "verdicts") {
		delVerdicts[v["observable"].(map[string]any)["value"].(string)] = v["disposition_name"]
	}
	if diff := cmp.Diff(obsVerdicts, delVerdicts); diff != "" || len(obsVerdicts) != 6 {
		t.Errorf("deliberate differs from observe (-observe +deliberate):\n%s (%d verdicts)", diff, len(obsVerdicts))
	}
}

// TestAdvisoryLists: an advisory list is named but decides nothing: 8.8.8.8 stays the High
// event's Malicious, and 1.1.1.1, on the list alone, gets no answer.
func TestAdvisoryLists(t *testing.T) {
	h := sampleWithLists(t, verdict.Policy{Advisory: []string{"List of known IPv4 public DNS resolvers"}})
	data := answerOf(t, h, "/observe/observables", `[{"type":"ip","value":"8.8.8.8"},{"type":"ip","value":"10.0.0.5"}]`)
	v, j := verdictFor(t, data, "8.8.8.8")
	if v["disposition_name"] != "Malicious" || !strings.Contains(j["reason"].(string), `advisory: on the relay's warninglist "List of known IPv4 public DNS resolvers"`) {
		t.Errorf("8.8.8.8: %v, %v", v, j["reason"])
	}
	if v, _ := verdictFor(t, data, "10.0.0.5"); v["disposition_name"] != "Common" {
		t.Errorf("10.0.0.5 (a list that decides): %v", v)
	}
	d := answerOf(t, h, "/observe/observables", `[{"type":"ip","value":"1.1.1.1"}]`)
	if len(d) != 0 {
		t.Errorf("1.1.1.1, on an advisory list only: %v", d)
	}
}

// TestListedByMISPWithoutEvent: a value no event mentions that MISP's checkValue puts on a
// list is Common, the judgement naming MISP's list, in observe and deliberate alike; with the
// relay's list too, MISP's name is given and the source is MISP.
func TestListedByMISPWithoutEvent(t *testing.T) {
	h := newHarness(t, options{events: [][]byte{dnsEvent(uuidDNS, true)}})
	h.misp.Warninglist(dnsListName, "1.1.1.1")
	data := answerOf(t, h, "/observe/observables", `[{"type":"ip","value":"1.1.1.1"}]`)
	v, j := verdictFor(t, data, "1.1.1.1")
	if v["disposition_name"] != "Common" || j["source"] != "MISP" || j["reason"] != "Common: "+dnsReason+"." || data["sightings"] != nil {
		t.Errorf("verdict %v, judgement %v, sightings %v", v, j, data["sightings"])
	}
	if d := docs(answerOf(t, h, "/deliberate/observables", `[{"type":"ip","value":"1.1.1.1"}]`), "verdicts"); len(d) != 1 || d[0]["disposition_name"] != "Common" {
		t.Errorf("deliberate %v", d)
	}
	lists, err := warninglist.Load("../../sample/warninglists")
	if err != nil {
		t.Fatal(err)
	}
	withMISPPolicy(t, h, verdict.Policy{}, lists)
	data = answerOf(t, h, "/observe/observables", `[{"type":"ip","value":"1.1.1.1"},{"type":"ip","value":"9.9.9.9"}]`)
	if _, j := verdictFor(t, data, "1.1.1.1"); j["source"] != "MISP" || j["reason"] != "Common: "+dnsReason+"." {
		t.Errorf("1.1.1.1 on both MISP's and the relay's list: %v", j)
	}
	if _, j := verdictFor(t, data, "9.9.9.9"); j["source"] != "misp-relay warninglists" || j["reason"] != "Common: "+relayDNSReason+"." {
		t.Errorf("9.9.9.9 on the relay's list only: %v", j)
	}
}

// TestRelationsThroughMISP: MISP's attributes search gives a composite attribute's halves,
// not its object's other attributes: through MISP, the C2 address of the sample event has the
// domain|ip relation only.
func TestRelationsThroughMISP(t *testing.T) {
	raw, err := os.ReadFile("../../sample/feed/" + uuidLoader + ".json")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, options{events: [][]byte{raw}})
	data := answerOf(t, h, "/observe/observables", `[{"type":"ip","value":"`+loaderC2+`"},{"type":"md5","value":"`+secondMD5+`"}]`)
	rels := sightingsOf(data, loaderC2)[uuidLoader]["relations"].([]any)
	if len(rels) != 1 || rels[0].(map[string]any)["relation"] != "Resolved_To" {
		b, _ := json.Marshal(rels)
		t.Errorf("relations through MISP: %s", b)
	}
	if v, _ := verdictFor(t, data, secondMD5); v["disposition_name"] != "Suspicious" {
		t.Errorf("malware-sample md5 through MISP: %v", v)
	}
}
