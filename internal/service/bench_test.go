package service

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/gen"
	"github.com/misp-relay/misp-relay/internal/intel/inteltest"
)

// The benchmarks of the core's CPU work on one request: the mapping of one answer to CTIM, and
// the encoding of a large answer. Package httpapi's benchmarks measure the whole request path.

const benchUIURL = "https://misp.example"

// benchNow is a fixed clock, so every iteration maps the same instant.
func benchNow() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

// BenchmarkMapperObserve maps one MISP answer, 100 events of 3 attributes (the default
// CTR_ENTITIES_LIMIT, fully used), to CTIM for one observable.
func BenchmarkMapperObserve(b *testing.B) {
	events := inteltest.Events(0, 100, 3)
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
		events := inteltest.Events(i*20, 20, 3)
		sortBySeverity(events)
		o := supported([]gen.ObservableInput{{Type: "ip", Value: fmt.Sprintf("198.51.100.%d", i+1)}})[0]
		m.observe(&bd, o, events, nil)
	}
	res := gen.ObserveObservables200JSONResponse{Data: bd.data()}
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
