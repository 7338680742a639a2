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
	// AddedP50 and AddedP99 are the relay-added latency: request latency minus MISP's.
	AddedP50 *millis  `json:"relay_added_p50_ms,omitempty"`
	AddedP99 *millis  `json:"relay_added_p99_ms,omitempty"`
	Targets  []check  `json:"targets,omitempty"`
	Notes    []string `json:"notes,omitempty"`
	Error    string   `json:"error,omitempty"`

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

// relayAdded sets the relay-added percentiles, for a request whose lookups all run in
// parallel against a MISP that takes mispLatency.
func (r *result) relayAdded(mispLatency time.Duration) {
	if r.Requests == 0 {
		return
	}
	p50, p99 := millis(r.P50.d()-mispLatency), millis(r.P99.d()-mispLatency)
	r.AddedP50, r.AddedP99 = &p50, &p99
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
	printf(bw, "The relay, its fake MISP and the clients share %s and its CPUs; peak heap counts all three.\n\n", where)
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', tabwriter.AlignRight)
	printf(tw, "scenario\tclients\trequests\treq/s\tp50\tp95\tp99\tupstream\thit ratio\tpeak heap\trelay-added p50/p99\t result\t\n")
	for _, r := range results {
		cols := []string{r.Name, strconv.Itoa(r.Clients), strconv.Itoa(r.Requests), "-", r.P50.String(), r.P95.String(), r.P99.String(), "-", "-", "-", "-"}
		if r.Kind != kindStartup {
			cols[3] = fmt.Sprintf("%.1f", r.RPS)
			cols[7] = strconv.FormatInt(r.Upstream, 10)
			if r.HitRatio != nil {
				cols[8] = fmt.Sprintf("%.1f%%", 100**r.HitRatio)
			}
			cols[9] = mib(r.PeakHeap)
			if r.AddedP50 != nil {
				cols[10] = r.AddedP50.String() + " / " + r.AddedP99.String()
			}
		}
		status := "ok"
		switch missed := r.missed(); {
		case r.Error != "":
			status = "ERROR"
		case len(missed) > 0:
			status = "MISSED " + strings.Join(missed, "; ")
		case len(r.Targets) == 0:
			status = "(no target)"
		}
		printf(tw, "%s\t %s\t\n", strings.Join(cols, "\t"), status)
	}
	if err := tw.Flush(); err != nil {
		return err
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
