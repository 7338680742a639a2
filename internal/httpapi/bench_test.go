package httpapi_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/gen"
	"github.com/misp-relay/misp-relay/internal/httpapi"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/intel/inteltest"
	"github.com/misp-relay/misp-relay/internal/service"
)

// The benchmarks of the request path ("Speed at scale"): what one request costs the relay's
// CPU, without the network. cmd/relaybench measures the same path end to end under load; these
// say where the time of one request goes. Package service measures the mapping alone, and
// amplify_internal_test.go the marshmallow message builder.

const (
	benchSecret  = "bench-secret-key-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJK"
	benchMISPKey = "BenchMispKey0123456789abcdefghijABCDEFGHIJ"
	benchUIURL   = "https://misp.example"
)

// benchNow is a fixed clock, so every iteration maps the same instant.
func benchNow() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

// stubMISP answers every search with the same events (or none), so the handler benchmarks
// measure the relay and not a MISP round trip.
func stubMISP(events []intel.Event) *inteltest.Backend {
	return &inteltest.Backend{SearchFn: func(context.Context, string, intel.Query) ([]intel.Event, error) {
		// The service sorts the slice it gets, as it does with the cache's copies.
		return append([]intel.Event(nil), events...), nil
	}}
}

// observeBody is an /observe/observables body of n distinct IP observables.
func observeBody(n int) []byte {
	in := make([]gen.ObservableInput, n)
	for i := range in {
		in[i] = gen.ObservableInput{Type: "ip", Value: fmt.Sprintf("198.51.%d.%d", 100+i/250, 1+i%250)}
	}
	body, err := json.Marshal(in)
	if err != nil {
		panic(err) // a slice of plain structs always marshals
	}
	return body
}

// BenchmarkObserveHandler sends a 50-observable /observe/observables body, authenticated,
// through the full handler (routing, JWT check, kin-openapi validation, strict handler, JSON
// encoding) in front of an in-memory MISP. "unknown": MISP knows none of the observables, so
// the request path itself dominates; "known": each has 3 events of 3 attributes, adding the
// mapping and the encoding of a 150-judgement answer.
func BenchmarkObserveHandler(b *testing.B) {
	for _, tc := range []struct {
		name   string
		events []intel.Event
	}{
		{"unknown", nil},
		{"known", inteltest.Events(0, 3, 3)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			body := observeBody(50)
			b.SetBytes(int64(len(body)))
			benchObserve(b, service.Config{Backend: stubMISP(tc.events), UIURL: benchUIURL, Now: benchNow}, body, "")
		})
	}
}

// benchObserve measures body sent as an authenticated POST /observe/observables through the
// full handler of the core cfg describes (Version defaults to the benchmarks').
// It first checks, outside the measurement, that the answer is a real one (HTTP 200, no error
// envelope) holding want, so that the benchmark measures the path it is named for rather than
// an error envelope.
func benchObserve(b *testing.B, cfg service.Config, body []byte, want string) {
	b.Helper()
	cfg.Version = cmp.Or(cfg.Version, "1.0.0")
	svc, err := service.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	h, err := httpapi.NewHandler(svc, httpapi.Config{Secret: benchSecret})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := auth.Sign(benchSecret, auth.Claims{Key: benchMISPKey})
	if err != nil {
		b.Fatal(err)
	}
	serve := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/observe/observables", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := serve(); rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), `"errors"`) ||
		!strings.Contains(rec.Body.String(), want) {
		b.Fatalf("HTTP %d: %.300s", rec.Code, rec.Body.String())
	}
	b.ReportAllocs()
	for b.Loop() {
		serve()
	}
}
