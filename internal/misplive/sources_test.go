//go:build misplive

package misplive

import (
	"net/url"
	"strings"
	"testing"

	"github.com/misp-relay/misp-relay/internal/service/servicetest"
)

// testSources runs a relay whose tenants have two sources: the real MISP (API_URL) and a feed
// of the real published events (FEEDS, a directory), which the MISP also holds (loaded by
// testRealEvents). An observe of values of both gets judgements from each, named by source
// and linked into the MISP for the MISP's, and the verdict over both; then, with the MISP cut
// off, the feed's answer comes with one error naming the MISP.
func testSources(t *testing.T, bin string, p *proxy, mispURL, key string) {
	u, err := url.Parse(p.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, bin, map[string]string{
		"API_URL": p.srv.URL, "MISP_UI_URL": mispURL, "CACHE_TTL": "0",
		"FEEDS": "realevents=" + servicetest.RealEventsDir(),
	})
	token := r.jwt(t, key)
	mispSource, feedSource := "MISP "+u.Host, "MISP feed realevents"
	// A C2 address of the ASERT event (in the feed and in the MISP) and the suite's own C2
	// domain (in the MISP only).
	obs := []observable{{"ip", "180.169.28.58"}, {"domain", "c2.relay-test.example"}}
	// The feed loads in the background, often before the relay listens.
	if loaded := `"msg":"feed loaded","feed":"realevents"`; !strings.Contains(r.proc.Output.String(), loaded) {
		r.proc.WaitLine(t, loaded)
	}
	answer := r.post(t, token, "/observe/observables", obs, key)
	got := bySource(answer)
	if got[mispSource] < 2 || got[feedSource] != 1 {
		t.Fatalf("judgements by source %v, want the MISP's for both values and the feed's for the address", got)
	}
	data := answer["data"].(map[string]any)
	for _, j := range docs(data, "judgements") {
		reason, _ := j["reason"].(string)
		if src := j["source"].(string); !strings.Contains(reason, src) {
			t.Errorf("judgement of %s: the reason %q does not name it", src, reason)
		}
		if j["source"] == mispSource && !strings.HasPrefix(j["source_uri"].(string), mispURL+"/events/view/") {
			t.Errorf("the MISP's judgement links to %v", j["source_uri"])
		}
	}
	p.drop.Store(true)
	defer p.drop.Store(false)
	partial := r.post(t, token, "/observe/observables", obs[:1], key)
	code, message := errorOf(partial)
	if code != "service unavailable" || !strings.Contains(message, mispSource) {
		t.Errorf("the MISP cut off: error %q %q, want one naming it", code, message)
	}
	if got := bySource(partial); got[feedSource] != 1 || got[mispSource] != 0 {
		t.Errorf("the MISP cut off: judgements by source %v, want the feed's", got)
	}
}

// bySource counts an observe answer's judgements by source.
func bySource(answer map[string]any) map[string]int {
	out := map[string]int{}
	data, _ := answer["data"].(map[string]any)
	for _, j := range docs(data, "judgements") {
		src, _ := j["source"].(string)
		out[src]++
	}
	return out
}
