package httpapi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/intel/inteltest"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/service"
)

// mispFault is a way MISP (or what stands in front of it) misbehaves, as the fake MISP plays it.
type mispFault struct {
	name   string
	answer misptest.Answer
}

// mispFaults are every fault the relay must get through.
func mispFaults() []mispFault {
	return []mispFault{
		{"hang", misptest.Hang()},
		{"reset", misptest.Answer{Cut: 60, Reset: true}}, // the start of the answer, then a TCP reset
		{"truncated", misptest.Answer{Cut: -10}},         // the answer without its end, as a complete HTTP answer
		{"shape", misptest.Raw(200, "application/json", `{"response":{"Attribute":{"oops":true}}}`)},
		{"login", misptest.LoginRedirect()},
		{"html502", misptest.BadGateway()},
		{"429", misptest.RateLimited(600)},
	}
}

// TestUpstreamFaults: whatever MISP does, the relay answers within its timeout with a clear
// envelope, and the next request (MISP healthy again) works.
func TestUpstreamFaults(t *testing.T) {
	h := newHarness(t, allEvents())
	const timeout = 400 * time.Millisecond
	client, err := misp.New(misp.Config{BaseURL: h.misp.URL, Timeout: timeout, BreakerFailures: 1000})
	if err != nil {
		t.Fatal(err)
	}
	h.serve(service.Config{Backend: client, UIURL: h.misp.URL})

	want := map[string]struct{ code, msg string }{
		"hang":      {"service unavailable", "MISP"},
		"reset":     {"", ""}, // reported as unknown or unavailable; only clarity and timing are checked
		"truncated": {"unknown", "MISP"},
		"shape":     {"unknown", "MISP"},
		"login":     {"permission denied", "login"},
		"html502":   {"service unavailable", "502"},
		"429":       {"too many requests", "429"},
	}
	for _, f := range mispFaults() {
		t.Run(f.name, func(t *testing.T) {
			tt := want[f.name]
			h.misp.Always("", f.answer)
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
			h.misp.Always("", misptest.Answer{})
			_, got = h.post("/observe/observables", `[{"type":"ip","value":"198.51.100.7"}]`)
			if data, _ := got["data"].(map[string]any); data["verdicts"] == nil {
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
