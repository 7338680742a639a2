package app

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/testkit"
	"github.com/misp-relay/misp-relay/internal/upstream"
)

const sampleFeedDir = "../../sample/feed"

func TestFeedsConfig(t *testing.T) {
	for _, tc := range []struct {
		feeds, refresh, want string
	}{
		{"circl", "", `FEEDS: "circl" is not name=location`},
		{"=https://x.example/", "", "FEEDS: "},
		{"circl=", "", "FEEDS: "},
		{"a b=https://x.example/", "", `FEEDS: feed name "a b"`},
		{strings.Repeat("n", 33) + "=https://x.example/", "", "FEEDS: feed name"},
		{"c=https://a.example/,C=https://b.example/", "", `FEEDS: feed name "C" is used twice`},
		{"c=ftp://user:secret@a.example/", "", `FEEDS: feed c: "ftp://xxx@a.example/" is neither`},
		{"c=https://a.example/", "1s", "FEED_REFRESH must be at least 1m0s"},
		{"c=https://a.example/", "often", "FEED_REFRESH must be a positive Go duration"},
		{strings.Repeat("c=https://a.example/,", 1) + "d=/no/such/feed/dir", "", "FEEDS: feed d: "},
		{"c=https://a.example/?key=x", "", "FEEDS: feed c: "},
	} {
		env := map[string]string{"FEEDS": tc.feeds, "FEED_REFRESH": tc.refresh, "PORT": "0"}
		_, err := New(testkit.Env(env), &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("FEEDS=%q FEED_REFRESH=%q: %v, want an error containing %q", tc.feeds, tc.refresh, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("the error shows a password: %v", err)
		}
	}
	cfg, err := loadConfig(testkit.Env(map[string]string{"FEEDS": " circl=https://www.circl.lu/doc/misp/feed-osint/ , local=file:///srv/feed,,", "FEED_REFRESH": "15m"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []feedSpec{{"circl", "https://www.circl.lu/doc/misp/feed-osint/"}, {"local", "file:///srv/feed"}}
	if len(cfg.feeds) != 2 || cfg.feeds[0] != want[0] || cfg.feeds[1] != want[1] || cfg.feedRefresh.Minutes() != 15 {
		t.Errorf("parsed %+v every %s", cfg.feeds, cfg.feedRefresh)
	}
	if cfg, _ := loadConfig(testkit.Env(nil)); cfg.feeds != nil || cfg.feedRefresh != feed.DefaultRefresh {
		t.Errorf("defaults: %+v every %s", cfg.feeds, cfg.feedRefresh)
	}
}

// TestFeedsServeWhileLoading: a relay with FEEDS is built (and would serve) while its feed,
// published over HTTPS, is still loading; then the feed is a source of every tenant, after
// its MISP, and Close stops its refreshes.
func TestFeedsServeWhileLoading(t *testing.T) {
	gate := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/osint/")
		if name == "manifest.json" {
			<-gate
		}
		http.ServeFile(w, r, filepath.Join(sampleFeedDir, filepath.Base(name)))
	}))
	defer srv.Close()
	cfg, err := loadConfig(testkit.Env(map[string]string{"FEEDS": "circl=" + srv.URL + "/osint/", "API_URL": sampleFeedDir, "SECRET_KEY": "feeds-secret"}))
	if err != nil {
		t.Fatal(err)
	}
	cfg.feedHTTP = srv.Client()
	var logs testkit.SyncBuffer
	cfg.logFormat = "json"
	a, err := build(cfg, newLogger(cfg, &logs))
	if err != nil {
		t.Fatal(err)
	}
	st := a.FeedStatus()
	if len(st) != 1 || st[0].State != feed.Loading || st[0].Name != "MISP feed circl" {
		t.Fatalf("while the manifest is held: %+v", st)
	}
	tok, err := auth.Sign("feeds-secret", auth.Claims{Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	health := func() string {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/health", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		a.Handler.ServeHTTP(rec, req)
		return rec.Body.String()
	}
	if got, want := health(), `{"data":{"feeds":[{"events":0,"skipped":0,"source":"MISP feed circl","state":"loading","values":0}],"status":"ok"}}`; strings.TrimSpace(got) != want {
		t.Errorf("/health while loading: %s, want %s", got, want)
	}
	srcs, err := a.Sources(auth.Claims{Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 2 || srcs[0].Name != "MISP feed" || srcs[1].Name != "MISP feed circl" || srcs[1].Key != "" {
		t.Fatalf("sources %+v", srcs)
	}
	if evs, err := lookup(t.Context(), srcs[1].Backend, "", intel.Query{Value: "198.51.100.23"}); err != nil || len(evs) != 0 {
		t.Fatalf("a loading feed answered %d events, %v", len(evs), err)
	}
	close(gate)
	if !testkit.Poll(testkit.WaitTimeout, func() bool { return a.FeedStatus()[0].State == feed.Loaded }) {
		t.Fatalf("the feed never loaded: %+v", a.FeedStatus())
	}
	events := sampleFeedEvents(t)
	if st := a.FeedStatus()[0]; st.Events != events || st.Values == 0 {
		t.Errorf("loaded %+v", st)
	}
	if got := health(); !strings.Contains(got, `"events":`+strconv.Itoa(events)+`,`) || !strings.Contains(got, `"state":"loaded","updated":"`) {
		t.Errorf("/health once loaded: %s", got)
	}
	evs, err := lookup(t.Context(), srcs[1].Backend, "", intel.Query{Value: "198.51.100.23"})
	if err != nil || len(evs) == 0 {
		t.Errorf("the loaded feed answered %d events, %v", len(evs), err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{`"msg":"feed loading","feed":"circl","location":"` + srv.URL + `/osint/","refresh":"1h0m0s"`, `"msg":"feed loaded","feed":"circl","events":` + strconv.Itoa(events)} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("no log line with %s in:\n%s", line, logs.String())
		}
	}
}

// TestSourcesOfAToken: a configuration token naming two MISPs gets both as sources, each
// its own client with its own key (one of them down fails its lookups only), then the feeds;
// each host passes MISP_ALLOWED_HOSTS; the same MISP named twice is refused.
func TestSourcesOfAToken(t *testing.T) {
	event, err := os.ReadFile(filepath.Join(sampleFeedDir, "8106141a-c75c-4628-8b96-77b5a60640cd.json"))
	if err != nil {
		t.Fatal(err)
	}
	up := misptest.New(t, poolMISPKey, event)
	down := misptest.New(t, "Other"+poolMISPKey[5:])
	downURL := down.URL
	down.Close()
	dir := t.TempDir()
	for _, f := range []string{"manifest.json", "8106141a-c75c-4628-8b96-77b5a60640cd.json"} {
		b, err := os.ReadFile(filepath.Join(sampleFeedDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "manifest.json" {
			b = []byte(`{"8106141a-c75c-4628-8b96-77b5a60640cd":{"timestamp":"1"}}`)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a := buildApp(t, map[string]string{
		"MISP_ALLOWED_HOSTS": hostport(up.URL) + "," + hostport(downURL), "CACHE_TTL": "60s",
		"FEEDS": "local=" + dir,
	})
	t.Cleanup(func() { _ = a.Close() })
	c := auth.Claims{Host: up.URL, Key: poolMISPKey, OtherMISPs: []auth.MISP{{Host: downURL, Key: "Other" + poolMISPKey[5:]}}}
	srcs, err := a.Sources(c)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range srcs {
		names = append(names, s.Name)
	}
	want := []string{"MISP " + hostport(up.URL), "MISP " + hostport(downURL), "MISP feed local"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("sources %v, want %v", names, want)
	}
	q := intel.Query{Value: "203.0.113.200", Types: []string{"ip-src"}}
	ctx := context.Background()
	evs, err := lookup(ctx, srcs[0].Backend, srcs[0].Key, q)
	if err != nil || len(evs) != 1 {
		t.Errorf("the MISP that is up: %d events, %v", len(evs), err)
	}
	if _, err := lookup(ctx, srcs[1].Backend, srcs[1].Key, q); !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("the MISP that is down: %v", err)
	}
	// Its failure is its own: the first MISP (and its cache) still answers.
	if evs, err := lookup(ctx, srcs[0].Backend, srcs[0].Key, q); err != nil || len(evs) != 1 {
		t.Errorf("the MISP that is up, again: %d events, %v", len(evs), err)
	}
	if srcs[0].Backend == srcs[1].Backend || srcs[0].UI != strings.TrimRight(up.URL, "/") {
		t.Errorf("two MISPs share a backend, or the UI base is %q", srcs[0].UI)
	}

	for _, tc := range []struct {
		others []auth.MISP
		reason string
	}{
		{[]auth.MISP{{Host: "https://not-listed.example", Key: "k"}}, "HOST not-listed.example is not allowed"},
		{[]auth.MISP{{Host: downURL, Key: "k"}, {Host: strings.ToUpper(up.URL) + "/", Key: "k3"}}, "HOST_3 names the same MISP as HOST"},
	} {
		_, err := a.Sources(auth.Claims{Host: up.URL, Key: poolMISPKey, OtherMISPs: tc.others})
		var ae *auth.Error
		if !errors.As(err, &ae) || !strings.Contains(ae.Reason, tc.reason) {
			t.Errorf("%+v: %v, want %q", tc.others, err, tc.reason)
		}
	}
	// An HS256 token on a relay without API_URL: the feeds (a relay of public feeds needs
	// no MISP), and the MISPs its misps claim names.
	srcs, err = a.Sources(auth.Claims{Key: "unused", OtherMISPs: []auth.MISP{{Host: up.URL, Key: poolMISPKey}}})
	if err != nil || len(srcs) != 2 || srcs[0].Name != "MISP "+hostport(up.URL) || srcs[1].Name != "MISP feed local" {
		t.Errorf("HS256 without API_URL: %+v, %v", srcs, err)
	}
	if _, err := buildApp(t, map[string]string{}).Sources(auth.Claims{Key: "k"}); !errors.Is(err, errNoSources) {
		t.Errorf("nothing to ask: %v", err)
	}
}

// TestFeedsTrustMISPCAFile: a feed served with a certificate of the internal CA MISP_CA_FILE
// names loads; without it, the same feed fails on its certificate.
func TestFeedsTrustMISPCAFile(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(sampleFeedDir, filepath.Base(r.URL.Path)))
	}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env  map[string]string
		want feed.State
	}{
		{map[string]string{"FEEDS": "internal=" + srv.URL + "/feed/", "MISP_CA_FILE": caFile}, feed.Loaded},
		{map[string]string{"FEEDS": "internal=" + srv.URL + "/feed/"}, feed.Failing},
	} {
		a := buildApp(t, tc.env)
		if !testkit.Poll(testkit.WaitTimeout, func() bool { return a.FeedStatus()[0].State != feed.Loading }) {
			t.Fatal("the feed never finished its first load")
		}
		if st := a.FeedStatus()[0]; st.State != tc.want {
			t.Errorf("%v: %+v, want %s", tc.env, st, tc.want)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// lookup asks b one query.
func lookup(ctx context.Context, b intel.Backend, key string, q intel.Query) ([]intel.Event, error) {
	r := b.Lookup(ctx, key, []intel.Query{q})[0]
	return r.Events, r.Err
}

// sampleFeedEvents is the number of events sample/feed's manifest lists.
func sampleFeedEvents(t *testing.T) int {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(sampleFeedDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var manifest map[string]json.RawMessage
	if err := json.Unmarshal(raw, &manifest); err != nil {
		t.Fatal(err)
	}
	return len(manifest)
}
