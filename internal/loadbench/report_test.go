package loadbench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestThousands(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999.4: "999", 1280: "1,280", 6400: "6,400", 1234567: "1,234,567", -1280: "-1,280"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestStatus(t *testing.T) {
	base := millis(5 * time.Millisecond)
	for _, tc := range []struct {
		name string
		r    result
		want string
	}{
		{"met", result{Targets: []check{{Target: "a", Met: true}}}, "ok"},
		{"missed", result{Targets: []check{{Target: "a", Met: true}, {Target: "b"}, {Target: "c"}}}, "MISSED b; c"},
		{"error wins", result{Error: "x", Targets: []check{{Target: "b"}}}, "ERROR"},
		{"no target", result{}, "(no target)"},
		{"startup", result{P50: millis(30 * time.Millisecond), BaselineP50: &base}, "(no target) p50 6.0 × baseline"},
	} {
		if got := tc.r.status(); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// A missing measurement (no CPU profile) is not a missed target.
func TestUnmeasuredIsNotMissed(t *testing.T) {
	r := result{Requests: 10}
	r.cpu(cpuUse{total: 20 * time.Millisecond, why: "the CPU profiler was busy"}, time.Second)
	r.checkRelayCPU(time.Nanosecond)
	r.checkCallsPerValue()
	if len(r.Targets) != 0 || r.CPUPerRequest == nil || *r.CPUPerRequest != millis(2*time.Millisecond) {
		t.Errorf("%+v", r)
	}
	if !strings.Contains(strings.Join(r.Notes, "\n"), "the CPU profiler was busy") {
		t.Errorf("notes %q do not say why the relay's CPU is missing", r.Notes)
	}
}

func TestCallsPerValue(t *testing.T) {
	for _, tc := range []struct {
		per  float64
		want bool
	}{{1, true}, {1.004, true}, {1.01, false}, {0.5, false}, {2, false}} {
		r := result{CallsPerValue: &tc.per, CallsPer: "lookup"}
		r.checkCallsPerValue()
		if len(r.Targets) != 1 || r.Targets[0].Met != tc.want || r.Targets[0].Target != "MISP calls per lookup = 1.00" {
			t.Errorf("%v: %+v", tc.per, r.Targets)
		}
	}
}

// The table names each configured ceiling on a line of its own, and relabels nothing as the
// relay's that is not.
func TestPrintTable(t *testing.T) {
	rps, calls, share := 500.0, 1.0, 0.4
	p99 := 2.5
	cpu, relay := millis(3*time.Millisecond), millis(1200*time.Microsecond)
	above50, above99 := millis(time.Millisecond), millis(9*time.Millisecond)
	base := millis(4 * time.Millisecond)
	results := []result{
		{
			Name: "throughput", Kind: kindLoad, What: "w", Clients: 64, Requests: 2500, RPS: rps,
			P50: millis(6 * time.Millisecond), P99: millis(14 * time.Millisecond), P99OverMISP: &p99,
			Upstream: 12500, CallsPerValue: &calls, CallsPer: "lookup", CPUPerRequest: &cpu, RelayCPUPerRequest: &relay,
			CPUShares: map[string]float64{partRelay: share}, AboveP50: &above50, AboveP99: &above99, PeakHeap: 20 << 20,
			Ceiling: "MISP_CONCURRENCY 32 / MISP latency 5ms = 6,400 MISP calls/s: at most 1,280 req/s",
			Targets: []check{{Target: "relay CPU/req < 2.00ms", Got: "1.20ms", Met: true}},
		},
		{Name: "startup-feed", Kind: kindStartup, Clients: 1, Requests: 10, P50: millis(20 * time.Millisecond), BaselineP50: &base},
	}
	var out bytes.Buffer
	if err := printTable(&out, options{duration: time.Second}, results); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"above MISP p50/p99", "relay CPU/req", "calls/value",
		"1.00/lookup", "3.00ms", "1.20ms", "1.00ms / 9.00ms",
		"\n  throughput: MISP_CONCURRENCY 32 / MISP latency 5ms = 6,400 MISP calls/s: at most 1,280 req/s\n",
		"(no target) p50 5.0 × baseline",
		"target relay CPU/req < 2.00ms: met (1.20ms)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}
	if strings.Contains(got, "relay-added") || strings.Contains(got, "MISSED") {
		t.Errorf("old label or a missed target in\n%s", got)
	}
}
