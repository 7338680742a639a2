package app

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
)

// BenchmarkObserveWired is the versus scenario of cmd/relaybench in process, for a CPU
// profile of the relay users run (`relay serve`'s wiring, JSON request log included): a
// 5-observable observe, each value in one event of a fake MISP on loopback, with the cache
// off (every request asks MISP) and with every value cached.
func BenchmarkObserveWired(b *testing.B) {
	const key, secret = "WiredBenchMispKey0123456789abcdefghijABCD", "wired-bench-secret-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH"
	fake := httptest.NewServer(misptest.NewGenerated(misptest.GeneratedOptions{Key: key, Events: 1, Attributes: 1}))
	defer fake.Close()
	tok, err := auth.Sign(secret, auth.Claims{Key: key})
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`[{"type":"ip","value":"198.51.100.1"},{"type":"ip","value":"198.51.100.2"},{"type":"ip","value":"198.51.100.3"},{"type":"ip","value":"198.51.100.4"},{"type":"ip","value":"198.51.100.5"}]`)
	for _, tc := range []struct{ name, ttl string }{{"lookups", "0"}, {"cached", "1h"}} {
		b.Run(tc.name, func(b *testing.B) {
			env := map[string]string{"API_URL": fake.URL, "SECRET_KEY": secret, "CACHE_TTL": tc.ttl, "LOG_FORMAT": "json"}
			a, err := New(func(k string) string { return env[k] }, io.Discard)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = a.Close() }()
			request := func() *http.Request {
				req := httptest.NewRequest(http.MethodPost, "/observe/observables", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", "application/json")
				return req
			}
			rec := httptest.NewRecorder()
			a.Handler.ServeHTTP(rec, request())
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"judgements"`) {
				b.Fatalf("HTTP %d: %.300s", rec.Code, rec.Body.String())
			}
			b.ReportAllocs()
			for b.Loop() {
				a.Handler.ServeHTTP(discard{header: http.Header{}}, request())
			}
		})
	}
}

// discard is a ResponseWriter that keeps nothing, as a server's writes to its connection's
// buffer keep nothing of the answer: a recorder's growing buffer would count as the relay's.
type discard struct{ header http.Header }

func (d discard) Header() http.Header       { return d.header }
func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) WriteHeader(int)             {}
