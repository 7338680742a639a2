package service

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
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/intel/inteltest"
)

// The benchmarks of the request path ("Speed at scale"): what one request costs the relay's
// CPU, without the network. cmd/relaybench measures the same path end to end under load; these
// say where the time of one request goes. They run in package service so that the mapping and
// the marshmallow message builder can be measured alone.

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

// benchEvents makes n events (numbered from first, so that calls with different first make
// different events) with attrs matched attributes each, shaped like the events the MISP client
// returns: mixed threat levels (so sorting does work), tags with a TLP, an organisation and
// attribute times.
func benchEvents(first, n, attrs int) []intel.Event {
	events := make([]intel.Event, n)
	for k := range events {
		i := first + k
		ts := time.Unix(1_700_000_000+int64(i)*60, 0).UTC()
		e := intel.Event{
			UUID:        fmt.Sprintf("5f0e1a2b-%04x-4222-8333-%012x", i%0x10000, i),
			Info:        fmt.Sprintf("Benchmark campaign %d: phishing wave with a loader", i),
			Date:        "2024-01-15",
			Timestamp:   ts,
			ThreatLevel: 1 + i%4,
			Org:         "Example CERT",
			Tags:        []string{"tlp:amber", "misp-galaxy:threat-actor=\"Bench\"", "type:OSINT"},
		}
		for j := range attrs {
			e.Attributes = append(e.Attributes, intel.Attribute{
				Type:      "ip-dst",
				Category:  "Network activity",
				Value:     "198.51.100.7",
				ToIDS:     true,
				Timestamp: ts.Add(time.Duration(j) * time.Second),
			})
		}
		events[k] = e
	}
	return events
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
		{"known", benchEvents(0, 3, 3)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			body := observeBody(50)
			b.SetBytes(int64(len(body)))
			benchObserve(b, Config{Backend: stubMISP(tc.events), UIURL: benchUIURL, Now: benchNow}, body, "")
		})
	}
}

// benchObserve measures body sent as an authenticated POST /observe/observables through the
// full handler of the service cfg describes (Secret and Version default to the benchmarks').
// It first checks, outside the measurement, that the answer is a real one (HTTP 200, no error
// envelope) holding want, so that the benchmark measures the path it is named for rather than
// an error envelope.
func benchObserve(b *testing.B, cfg Config, body []byte, want string) {
	b.Helper()
	cfg.Secret = cmp.Or(cfg.Secret, benchSecret)
	cfg.Version = cmp.Or(cfg.Version, "1.0.0")
	svc, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	h, err := NewHandler(svc)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := auth.Sign(cfg.Secret, auth.Claims{Key: benchMISPKey})
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

// BenchmarkObservableListProblems builds the marshmallow message for a rejected 50-item body
// (every item wrong in one of the ways the contract words: blank, missing, null, not a string,
// unknown field, not an object). It runs on every rejected request, after kin-openapi.
func BenchmarkObservableListProblems(b *testing.B) {
	bad := []string{
		`{"type":"ip","value":""}`,
		`{"type":"ip"}`,
		`{"type":null,"value":"198.51.100.7"}`,
		`{"type":"ip","value":7}`,
		`{"type":"ip","value":"198.51.100.7","extra":1,"other":"x"}`,
		`"not an object"`,
	}
	items := make([]string, 50)
	for i := range items {
		items[i] = bad[i%len(bad)]
	}
	body := []byte("[" + strings.Join(items, ",") + "]")
	if observableListProblems(body) == "" {
		b.Fatal("the body was accepted")
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		_ = observableListProblems(body)
	}
}

// BenchmarkMapperObserve maps one MISP answer, 100 events of 3 attributes (the default
// CTR_ENTITIES_LIMIT, fully used), to CTIM for one observable.
func BenchmarkMapperObserve(b *testing.B) {
	events := benchEvents(0, 100, 3)
	sortBySeverity(events)
	m := newMapper(benchNow(), benchUIURL)
	o := supported([]gen.ObservableInput{{Type: "ip", Value: "198.51.100.7"}})[0]
	b.ReportAllocs()
	for b.Loop() {
		var bd bundle
		m.observe(&bd, o, events, nil)
	}
}

// BenchmarkEncodeObserveAnswer encodes a large observe answer (50 observables × 20 distinct
// events: 1,000 judgements, sightings and indicators, 2,000 relationships) the way the
// generated strict handler does: encoding/json into a fresh bytes.Buffer, then one write.
func BenchmarkEncodeObserveAnswer(b *testing.B) {
	m := newMapper(benchNow(), benchUIURL)
	var bd bundle
	for i := range 50 {
		events := benchEvents(i*20, 20, 3)
		sortBySeverity(events)
		o := supported([]gen.ObservableInput{{Type: "ip", Value: fmt.Sprintf("198.51.100.%d", i+1)}})[0]
		m.observe(&bd, o, events, nil)
	}
	res := gen.ObserveObservables200JSONResponse(enrichResult(context.Background(), bd.data(), nil, false))
	var size bytes.Buffer
	if err := json.NewEncoder(&size).Encode(res); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(size.Len()))
	b.ReportAllocs()
	for b.Loop() {
		var buf bytes.Buffer
		if err := json.NewEncoder(&buf).Encode(res); err != nil {
			b.Fatal(err)
		}
	}
}
