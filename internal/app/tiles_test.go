package app

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

// TestTilesWithFeeds: the relay's tiles add FEEDS' feeds to the tenant's source: while a
// feed's first load runs they answer service unavailable (not figures of part of it), then
// figures.
func TestTilesWithFeeds(t *testing.T) {
	gate := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/osint/")
		if name == "manifest.json" {
			<-gate
		}
		http.ServeFile(w, r, filepath.Join(sampleFeedDir, filepath.Base(name)))
	}))
	defer srv.Close()
	defer func() {
		select {
		case <-gate:
		default:
			close(gate)
		}
	}()
	cfg, err := loadConfig(testkit.Env(map[string]string{"FEEDS": "circl=" + srv.URL + "/osint/", "API_URL": sampleFeedDir, "SECRET_KEY": "tiles-secret"}))
	if err != nil {
		t.Fatal(err)
	}
	cfg.feedHTTP = srv.Client()
	a, err := build(cfg, newLogger(cfg, &testkit.SyncBuffer{}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Close() }()
	tok, err := auth.Sign("tiles-secret", auth.Claims{Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	tileData := func() string {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/tiles/tile-data", strings.NewReader(`{"tile_id":"misp-summary","period":"last_7_days"}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		a.Handler.ServeHTTP(rec, req)
		return rec.Body.String()
	}
	if got := tileData(); !strings.Contains(got, `"code":"service unavailable"`) || !strings.Contains(got, "still loading") {
		t.Errorf("while the feed loads: %s", got)
	}
	close(gate)
	if !testkit.Poll(testkit.WaitTimeout, func() bool { return a.FeedStatus()[0].State == feed.Loaded }) {
		t.Fatalf("the feed never loaded: %+v", a.FeedStatus())
	}
	// The first answer failed, so nothing was cached: the figures come now.
	if got := tileData(); !strings.Contains(got, `"label":"Events"`) || strings.Contains(got, `"errors"`) {
		t.Errorf("once loaded: %s", got)
	}
}
