package service

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/verdict"
	"github.com/misp-relay/misp-relay/internal/warninglist"
)

// BenchmarkObserveHandlerPolicy is BenchmarkObserveHandler/known with what the verdict
// policy adds at its most expensive: the sample warninglists (62,754 entries) looked up for
// every matched attribute type, and tag settings matched against every tag.
func BenchmarkObserveHandlerPolicy(b *testing.B) {
	lists, err := warninglist.Load("../../sample/warninglists")
	if err != nil {
		b.Fatal(err)
	}
	svc, err := New(Config{
		Version: "1.0.0", Secret: benchSecret, Backend: stubMISP(benchEvents(0, 3, 3)), UIURL: benchUIURL, Now: benchNow,
		Warninglists: lists,
		Policy: verdict.Policy{
			Benign:      verdict.MustTags("known-good:*"),
			Malicious:   verdict.MustTags("misp-galaxy:threat-actor=*"),
			Suspicious:  verdict.MustTags("type:osint"),
			TrustedOrgs: []string{"Example CERT"},
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	h, err := NewHandler(svc)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := auth.Sign(benchSecret, auth.Claims{Key: benchMISPKey})
	if err != nil {
		b.Fatal(err)
	}
	body := observeBody(50)
	serve := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/observe/observables", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := serve(); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "malicious tag") {
		b.Fatalf("HTTP %d: %.300s", rec.Code, rec.Body.String())
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		serve()
	}
}
