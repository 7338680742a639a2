package service_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/intel/inteltest"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/service"
)

// faultyMISP misbehaves on command; mode "" answers like a healthy MISP with one match.
type faultyMISP struct {
	mode atomic.Value // string
	srv  *httptest.Server
}

const healthyAnswer = `{"response":{"Attribute":[{"id":"1","event_id":"1","type":"ip-dst","category":"Network activity",
 "value":"198.51.100.7","to_ids":true,"timestamp":"1700000000",
 "Event":{"uuid":"` + uuidHigh + `","info":"x","date":"2024-01-01","timestamp":"1700000000","threat_level_id":"1","Orgc":{"name":"ORG"}}}]}}`

func newFaultyMISP(t *testing.T) *faultyMISP {
	f := &faultyMISP{}
	f.mode.Store("")
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch f.mode.Load().(string) {
		case "hang":
			// Reading the body lets the server notice when the relay gives up.
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		case "reset":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(healthyAnswer[:60]))
			w.(http.Flusher).Flush()
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				if tc, ok := conn.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // RST instead of FIN
				}
				conn.Close()
			}
			return
		case "truncated":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(healthyAnswer[:len(healthyAnswer)-10]))
			return
		case "shape":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"response":{"Attribute":{"oops":true}}}`))
			return
		case "login":
			http.Redirect(w, r, "/users/login", http.StatusFound)
			return
		case "html502":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"))
			return
		case "429":
			w.Header().Set("X-Rate-Limit-Reset", "600")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"name":"Rate limit exceeded.","message":"Rate limit exceeded.","url":"/attributes/restSearch"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "getVersion") {
			_, _ = w.Write([]byte(`{"version":"2.5.1"}`))
			return
		}
		_, _ = w.Write([]byte(healthyAnswer))
	}))
	f.srv.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

// TestUpstreamFaults: whatever MISP does, the relay answers within its timeout with a clear
// envelope, and the next request (MISP healthy again) works.
func TestUpstreamFaults(t *testing.T) {
	f := newFaultyMISP(t)
	const timeout = 400 * time.Millisecond
	client, err := misp.New(misp.Config{BaseURL: f.srv.URL, Timeout: timeout, BreakerFailures: 1000})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, options{})
	h.serve(service.Config{Backend: client, UIURL: f.srv.URL})

	tests := []struct{ mode, code, msg string }{
		{"hang", "service unavailable", "MISP"},
		{"reset", "", ""}, // reported as unknown or unavailable; only clarity and timing are checked
		{"truncated", "unknown", "MISP"},
		{"shape", "unknown", "MISP"},
		{"login", "permission denied", "login"},
		{"html502", "service unavailable", "502"},
		{"429", "too many requests", "429"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			f.mode.Store(tt.mode)
			start := time.Now()
			_, got := h.post("/observe/observables", `[{"type":"ip","value":"198.51.100.7"}]`)
			if d := time.Since(start); d > 2*timeout+time.Second {
				t.Errorf("answered after %v, want within the MISP timeout", d)
			}
			code, msg := errorOf(t, got)
			if tt.code != "" && code != tt.code {
				t.Errorf("code %q (%s), want %q", code, msg, tt.code)
			}
			if tt.msg != "" && !strings.Contains(msg, tt.msg) {
				t.Errorf("message %q does not mention %q", msg, tt.msg)
			}
			f.mode.Store("")
			_, got = h.post("/observe/observables", `[{"type":"ip","value":"198.51.100.7"}]`)
			if _, ok := got["data"].(map[string]any)["verdicts"]; !ok {
				t.Errorf("the next request failed: %v", got)
			}
		})
	}
}

// TestPartialResults: one observable's failure does not throw the others away.
func TestPartialResults(t *testing.T) {
	h := newHarness(t, options{})
	h.serve(service.Config{Backend: failOn("192.0.2.66")})
	_, got := h.post("/observe/observables", `[{"type":"ip","value":"198.51.100.7"},{"type":"ip","value":"192.0.2.66"}]`)
	data, ok := got["data"].(map[string]any)
	if !ok || data["verdicts"].(map[string]any)["count"] != 1.0 {
		t.Errorf("data = %v, want the verdict of the observable that worked", got["data"])
	}
	if code, _ := errorOf(t, got); code != "service unavailable" {
		t.Errorf("code %q, want service unavailable", code)
	}
}

// failOn is a MISP that fails for one value and knows every other.
func failOn(value string) *inteltest.Backend {
	return &inteltest.Backend{SearchFn: func(_ context.Context, _ string, q intel.Query) ([]intel.Event, error) {
		if q.Value == value {
			return nil, &misp.Error{Op: "search", Kind: misp.ErrUnavailable, Detail: "MISP did not answer in time"}
		}
		return []intel.Event{{
			UUID: uuidHigh, Info: "x", ThreatLevel: 2, Org: "ORG", Date: "2024-01-01",
			Attributes: []intel.Attribute{{Type: "ip-dst", Category: "Network activity", Value: q.Value}},
		}}, nil
	}}
}
