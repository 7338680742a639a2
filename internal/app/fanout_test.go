package app

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

const fanoutSecret = "fanout-secret-0123456789abcdefghijklmnopqrstuvwxyz"

// observeAs posts body to /observe/observables with c's HS256 token and returns the answer.
func observeAs(t *testing.T, a *App, c auth.Claims, body string) map[string]any {
	t.Helper()
	tok, err := auth.Sign(fanoutSecret, c)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/observe/observables", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	a.Handler.ServeHTTP(rec, req)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%v: %s", err, rec.Body.String())
	}
	return out
}

// judgementSources counts an answer's judgements by source.
func judgementSources(t *testing.T, got map[string]any) map[string]int {
	t.Helper()
	out := map[string]int{}
	data, _ := got["data"].(map[string]any)
	list, _ := data["judgements"].(map[string]any)
	if list == nil {
		return out
	}
	for _, d := range list["docs"].([]any) {
		j := d.(map[string]any)
		src := j["source"].(string)
		out[src]++
		if src != "MISP" && !strings.HasPrefix(j["reason"].(string), src+": ") {
			t.Errorf("reason %q does not name %q", j["reason"], src)
		}
	}
	return out
}

// TestAnswersFromMISPAndFeeds: a relay with API_URL's MISP and FEEDS answers every tenant
// from both, each judgement naming its source.
func TestAnswersFromMISPAndFeeds(t *testing.T) {
	event, err := os.ReadFile(filepath.Join(sampleFeedDir, "8106141a-c75c-4628-8b96-77b5a60640cd.json"))
	if err != nil {
		t.Fatal(err)
	}
	m := misptest.New(t, poolMISPKey, event)
	a := buildApp(t, map[string]string{"API_URL": m.URL, "FEEDS": "local=" + sampleFeedDir, "SECRET_KEY": fanoutSecret})
	t.Cleanup(func() { _ = a.Close() })
	if !testkit.Poll(testkit.WaitTimeout, func() bool { return a.FeedStatus()[0].State == feed.Loaded }) {
		t.Fatalf("the feed never loaded: %+v", a.FeedStatus())
	}
	got := observeAs(t, a, auth.Claims{Key: poolMISPKey}, `[{"type":"ip","value":"203.0.113.200"},{"type":"ip","value":"198.51.100.23"}]`)
	if got["errors"] != nil {
		t.Fatalf("errors: %v", got["errors"])
	}
	bySource := judgementSources(t, got)
	mispName := "MISP " + hostport(m.URL)
	if bySource[mispName] != 1 || bySource["MISP feed local"] < 2 || len(bySource) != 2 {
		t.Errorf("judgements by source: %v, want %s's and the feed's", bySource, mispName)
	}
}

// TestSourcesNeverShareCacheEntries: two MISPs asked with the same key each answer from their
// own cache: what one holds (cached by an earlier request) is never served as the other's.
func TestSourcesNeverShareCacheEntries(t *testing.T) {
	event, err := os.ReadFile(filepath.Join(sampleFeedDir, "8106141a-c75c-4628-8b96-77b5a60640cd.json"))
	if err != nil {
		t.Fatal(err)
	}
	holds := misptest.New(t, poolMISPKey, event)
	empty := misptest.New(t, poolMISPKey)
	a := buildApp(t, map[string]string{
		"API_URL": holds.URL, "MISP_ALLOWED_HOSTS": hostport(holds.URL) + "," + hostport(empty.URL),
		"CACHE_TTL": "60s", "SECRET_KEY": fanoutSecret,
	})
	t.Cleanup(func() { _ = a.Close() })
	body := `[{"type":"ip","value":"203.0.113.200"}]`
	if got := judgementSources(t, observeAs(t, a, auth.Claims{Key: poolMISPKey}, body)); got["MISP"] != 1 {
		t.Fatalf("API_URL's MISP alone: %v", got)
	}
	for range 2 { // the second time, both answers come from the caches
		got := observeAs(t, a, auth.Claims{Key: poolMISPKey, OtherMISPs: []auth.MISP{{Host: empty.URL, Key: poolMISPKey}}}, body)
		if by := judgementSources(t, got); by["MISP "+hostport(holds.URL)] != 1 || len(by) != 1 {
			t.Errorf("judgements by source: %v, want one from the MISP holding the value only", by)
		}
	}
	searched := 0
	for _, r := range empty.Requests() {
		if strings.Contains(r.Path, "restSearch") {
			searched++
		}
	}
	if searched != 1 {
		t.Errorf("the empty MISP was searched %d times, want once (then its own cache)", searched)
	}
}
