package loadbench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Kinds of result lines.
const (
	kindLoad    = "load"    // a load scenario against the in-process relay
	kindStartup = "startup" // starts of the relay binary: no load columns
	kindVersus  = "versus"  // the relay binary against a base binary: no load columns
)

// result is one line of the report. It is also what a child process (see runChild) hands
// back, so everything the table shows is in the JSON.
type result struct {
	Name     string  `json:"name"`
	Kind     string  `json:"kind"`
	What     string  `json:"what"`
	Clients  int     `json:"clients"`
	Requests int     `json:"requests"` // startup: successful starts
	Errors   int     `json:"errors"`
	Seconds  float64 `json:"seconds,omitempty"`
	RPS      float64 `json:"requests_per_second,omitempty"`
	P50      millis  `json:"p50_ms"`
	P95      millis  `json:"p95_ms"`
	P99      millis  `json:"p99_ms"`
	Upstream int64   `json:"upstream_calls"` // restSearch calls the fake MISP received
	Lookups  int64   `json:"lookups"`        // observables looked up (requests × observables)
	Hits     int64   `json:"cache_hits"`
	Misses   int64   `json:"cache_misses"`
	// HitRatio is hits / (hits + misses) from the relay's cache metrics; nil when there was no lookup.
	HitRatio *float64 `json:"cache_hit_ratio,omitempty"`
	PeakHeap uint64   `json:"peak_heap_inuse_bytes,omitempty"`
	// MISPLatency is the fake MISP's latency, and P99OverMISP the p99 as a multiple of it
	// (nil when the latency is 0, or with several clients, whose latency is queueing).
	MISPLatency millis   `json:"misp_latency_ms"`
	P99OverMISP *float64 `json:"p99_over_misp_latency,omitempty"`
	// CallsPerValue is the MISP calls per lookup (cache off: every lookup is a call) or, with
	// CallsPer "distinct value", per distinct value asked over the whole run (cache on).
	CallsPerValue *float64 `json:"misp_calls_per_value,omitempty"`
	CallsPer      string   `json:"misp_calls_per,omitempty"`
	// CPUPerRequest is the process's CPU (relay, fake MISP and clients) per request over the
	// timed window; RelayCPUPerRequest the share of it spent in the relay's goroutines (see
	// cpu.go); CPUShares the split of the profiled CPU by part.
	CPUPerRequest      *millis            `json:"cpu_per_request_ms,omitempty"`
	RelayCPUPerRequest *millis            `json:"relay_cpu_per_request_ms,omitempty"`
	CPUShares          map[string]float64 `json:"cpu_shares,omitempty"`
	CPUSamples         int64              `json:"cpu_profile_samples,omitempty"`
	// AboveP50 and AboveP99 are the latency above MISP's: request latency minus the MISP
	// time every request waits at least (MISP latency × the waves MISP_CONCURRENCY makes of
	// its lookups). That is queueing (for the CPUs, for MISP_CONCURRENCY slots) plus the
	// relay's work, plus the fake MISP's and the client's own.
	AboveP50 *millis `json:"above_misp_p50_ms,omitempty"`
	// VersusCPU and BaseCPU are the relay process's CPU per request of this binary and of
	// the base one (scenario versus), and VersusRatio the first over the second.
	VersusCPU   *millis  `json:"versus_cpu_per_request_ms,omitempty"`
	BaseCPU     *millis  `json:"base_cpu_per_request_ms,omitempty"`
	VersusRatio *float64 `json:"versus_ratio,omitempty"`
	AboveP99    *millis  `json:"above_misp_p99_ms,omitempty"`
	// Ceiling names what the configuration caps the scenario at (MISP_CONCURRENCY over
	// MISP's latency), whatever the machine; "" when no setting caps it.
	Ceiling string `json:"ceiling,omitempty"`
	// BaselineP50 is, for startup, the p50 of the trivial baseline (relay version: exec,
	// Go runtime and package initialisation, exit).
	BaselineP50 *millis  `json:"baseline_p50_ms,omitempty"`
	Targets     []check  `json:"targets,omitempty"`
	Notes       []string `json:"notes,omitempty"`
	Error       string   `json:"error,omitempty"`

	tagged []time.Duration // latencies of the tagged requests, for the scenario's notes
}

// check is one target of the issue and how the run did against it.
type check struct {
	Target string `json:"target"`
	Got    string `json:"got"`
	Met    bool   `json:"met"`
}

func (r *result) check(target string, met bool, got string) {
	r.Targets = append(r.Targets, check{Target: target, Got: got, Met: met})
}

func (r *result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// aboveMISP sets the latency-above-MISP percentiles, for requests that all wait floor for
// MISP at least.
func (r *result) aboveMISP(floor time.Duration) {
	if r.Requests == 0 {
		return
	}
	p50, p99 := millis(r.P50.d()-floor), millis(r.P99.d()-floor)
	r.AboveP50, r.AboveP99 = &p50, &p99
}

// cpu fills in the CPU columns and notes: the process's CPU over the timed window, split by
// the CPU window's shares.
func (r *result) cpu(u cpuUse, window time.Duration) {
	if r.Requests == 0 || u.total <= 0 {
		r.note("CPU per request not measured: this platform does not report the process's CPU time")
		return
	}
	per := millis(u.total / time.Duration(r.Requests))
	r.CPUPerRequest = &per
	if r.Clients > 1 {
		// With enough clients to keep every CPU busy, the CPUs are what limits throughput.
		r.note("at %v of process CPU per request, these %d CPUs serve at most %s req/s (measured %s)",
			per, runtime.NumCPU(), thousands(float64(runtime.NumCPU())/per.d().Seconds()), thousands(r.RPS))
	}
	if u.shares == nil {
		r.note("CPU over the %v window: %v (%.2f CPUs busy); relay CPU not measured: %s",
			window.Round(time.Millisecond), u.total.Round(time.Millisecond), u.total.Seconds()/window.Seconds(), u.why)
		return
	}
	relay := millis(float64(u.total) * u.shares[partRelay] / float64(r.Requests))
	r.RelayCPUPerRequest = &relay
	r.CPUShares = u.shares
	r.CPUSamples = u.samples
	r.note("CPU over the %v window: %v (%.2f CPUs busy); split from the CPU window's %d profile samples: relay %.0f%%, fake MISP %.0f%%, clients %.0f%%, runtime (background GC, scheduler) %.0f%%",
		window.Round(time.Millisecond), u.total.Round(time.Millisecond), u.total.Seconds()/window.Seconds(), u.samples,
		100*u.shares[partRelay], 100*u.shares[partMISP], 100*u.shares[partClients], 100*u.shares[partUnlabled])
}

// checkRelayCPU is the throughput target that holds on any machine: the relay's own CPU per
// request, which does not depend on how many CPUs there are or who else uses them.
func (r *result) checkRelayCPU(limit time.Duration) {
	if r.RelayCPUPerRequest == nil {
		return // not measured: the notes say why
	}
	r.check("relay CPU/req < "+millis(limit).String(), r.RelayCPUPerRequest.d() < limit, r.RelayCPUPerRequest.String())
}

// checkCallsPerValue is the target that MISP is called once per lookup (cache off) or once
// per distinct value (cache on, within the TTL): no duplicate, retried or extra page call.
func (r *result) checkCallsPerValue() {
	if r.CallsPerValue == nil {
		return
	}
	r.check("MISP calls per "+r.CallsPer+" = 1.00", math.Abs(*r.CallsPerValue-1) < 0.005, fmt.Sprintf("%.3f", *r.CallsPerValue))
}

// thousands formats f rounded to an integer with thousands separators: 6,400.
func thousands(f float64) string {
	s := strconv.FormatInt(int64(math.Round(f)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}

// missed lists the targets not met, for the table's last column.
func (r *result) missed() []string {
	var out []string
	for _, c := range r.Targets {
		if !c.Met {
			out = append(out, c.Target)
		}
	}
	return out
}

// millis is a duration that reads as milliseconds: in JSON a number of milliseconds, in the
// table with the unit that keeps three significant digits.
type millis time.Duration

func (m millis) d() time.Duration { return time.Duration(m) }

func (m millis) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(m)/float64(time.Millisecond), 'f', 3, 64), nil
}

func (m *millis) UnmarshalJSON(b []byte) error {
	ms, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("milliseconds: %w", err)
	}
	*m = millis(math.Round(ms * float64(time.Millisecond)))
	return nil
}

func (m millis) String() string {
	d := time.Duration(m)
	switch {
	case d < 0:
		return "-" + millis(-d).String()
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// printTable writes the machine, then one line per result, then each result's targets and
// notes.
func printTable(w io.Writer, o options, results []result) error {
	bw := bufio.NewWriter(w)
	// The writes below go to bw (directly or through the tabwriter), which keeps the first
	// write error and returns it from Flush.
	printf := func(w io.Writer, format string, args ...any) { _, _ = fmt.Fprintf(w, format, args...) }
	printf(bw, "relaybench: %s, %d CPUs (GOMAXPROCS %d), %s %s/%s; %v per load scenario, MISP_CONCURRENCY %d\n",
		cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH, o.duration, o.mispConcurrency())
	where := "this process"
	if o.isolate {
		where = "one process (a fresh one per scenario)"
	}
	printf(bw, "The relay, its fake MISP and the clients share %s and its CPUs: peak heap counts all three, and so does CPU/req;\n", where)
	printf(bw, "relay CPU/req is the part of it spent in the relay's goroutines (labelled CPU profile, background GC excluded).\n\n")
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, c := range columns {
		printf(tw, "%s\t", c.header)
	}
	printf(tw, " result\t\n")
	for _, r := range results {
		for _, c := range columns {
			cell := "-"
			if c.startup || (r.Kind != kindStartup && r.Kind != kindVersus) {
				cell = c.cell(r)
			}
			printf(tw, "%s\t", cell)
		}
		printf(tw, " %s\t\n", r.status())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	first := true
	for _, r := range results {
		if r.Ceiling == "" {
			continue
		}
		if first {
			printf(bw, "\nCeilings set by the configuration (the same on any machine):\n")
			first = false
		}
		printf(bw, "  %s: %s\n", r.Name, r.Ceiling)
	}
	for _, r := range results {
		printf(bw, "\n%s: %s\n", r.Name, r.What)
		if r.Error != "" {
			printf(bw, "  ERROR: %s\n", r.Error)
		}
		for _, c := range r.Targets {
			verdict := "met"
			if !c.Met {
				verdict = "MISSED"
			}
			printf(bw, "  target %s: %s (%s)\n", c.Target, verdict, c.Got)
		}
		for _, n := range r.Notes {
			printf(bw, "  %s\n", n)
		}
	}
	return bw.Flush()
}

// column is one column of the table: its header and how a result reads in it. Startup
// results show only the columns marked startup ("-" elsewhere).
type column struct {
	header  string
	startup bool
	cell    func(r result) string
}

var columns = []column{
	{"scenario", true, func(r result) string { return r.Name }},
	{"clients", true, func(r result) string { return strconv.Itoa(r.Clients) }},
	{"requests", true, func(r result) string { return strconv.Itoa(r.Requests) }},
	{"req/s", false, func(r result) string { return fmt.Sprintf("%.1f", r.RPS) }},
	{"p50", true, func(r result) string { return r.P50.String() }},
	{"p95", true, func(r result) string { return r.P95.String() }},
	{"p99", true, func(r result) string { return r.P99.String() }},
	{"MISP calls", false, func(r result) string { return strconv.FormatInt(r.Upstream, 10) }},
	{"calls/value", false, func(r result) string {
		if r.CallsPerValue == nil {
			return "-"
		}
		per := "value"
		if r.CallsPer == "lookup" {
			per = "lookup"
		}
		return fmt.Sprintf("%.2f/%s", *r.CallsPerValue, per)
	}},
	{"hit ratio", false, func(r result) string {
		if r.HitRatio == nil {
			return "-"
		}
		return fmt.Sprintf("%.1f%%", 100**r.HitRatio)
	}},
	{"CPU/req", false, func(r result) string { return optional(r.CPUPerRequest) }},
	{"relay CPU/req", false, func(r result) string { return optional(r.RelayCPUPerRequest) }},
	{"peak heap", false, func(r result) string { return mib(r.PeakHeap) }},
	{"above MISP p50/p99", false, func(r result) string {
		if r.AboveP50 == nil {
			return "-"
		}
		return r.AboveP50.String() + " / " + r.AboveP99.String()
	}},
}

func optional(m *millis) string {
	if m == nil {
		return "-"
	}
	return m.String()
}

// status is the table's last column: ok, the targets missed, ERROR, or no target.
func (r *result) status() string {
	missed := r.missed()
	switch {
	case r.Error != "":
		return "ERROR"
	case len(missed) > 0:
		return "MISSED " + strings.Join(missed, "; ")
	case len(r.Targets) > 0:
		return "ok"
	case r.BaselineP50 != nil && *r.BaselineP50 > 0:
		return fmt.Sprintf("(no target) p50 %.1f × baseline", float64(r.P50)/float64(*r.BaselineP50))
	}
	return "(no target)"
}

// printJSON writes the results as one JSON array, for scripts.
func printJSON(w io.Writer, results []result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(results)
}

// cpuModel is the first "model name" of /proc/cpuinfo, or the architecture elsewhere.
func cpuModel() string {
	raw, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for line := range strings.SplitSeq(string(raw), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
			}
		}
	}
	return runtime.GOARCH
}
