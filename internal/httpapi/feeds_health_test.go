package httpapi_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/service"
)

// TestHealthSaysWhereFeedsStand: with public feeds, /health says where each stands (and the
// answer passes the spec); a failing feed does not fail the check.
func TestHealthSaysWhereFeedsStand(t *testing.T) {
	h := newHarness(t, options{feedDir: "../../sample/feed"})
	store, err := feed.Load("../../sample/feed")
	if err != nil {
		t.Fatal(err)
	}
	updated := time.Date(2026, 12, 7, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	h.serve(service.Config{Backend: store, FeedStates: func() []service.FeedState {
		return []service.FeedState{
			{Source: "MISP feed circl", State: "loaded", Events: 1500, Values: 400000, Skipped: 2, Updated: updated},
			{Source: "MISP feed botvrij", State: "loading"},
			{Source: "MISP feed broken", State: "failing"},
		}
	}})
	_, got := h.post("/health", ``)
	want := mustJSON(t, `{"data":{"status":"ok","feeds":[
		{"source":"MISP feed circl","state":"loaded","events":1500,"values":400000,"skipped":2,"updated":"2026-12-07T09:00:00Z"},
		{"source":"MISP feed botvrij","state":"loading","events":0,"values":0,"skipped":0},
		{"source":"MISP feed broken","state":"failing","events":0,"values":0,"skipped":0}]}}`)
	if diff := cmp.Diff(want, any(got)); diff != "" {
		t.Errorf("health (-want +got):\n%s", diff)
	}

	// No feeds: the answer is as it always was.
	h.serve(service.Config{Backend: store, FeedStates: func() []service.FeedState { return nil }})
	_, got = h.post("/health", ``)
	if diff := cmp.Diff(mustJSON(t, `{"data":{"status":"ok"}}`), any(got)); diff != "" {
		t.Errorf("health without feeds (-want +got):\n%s", diff)
	}
}
