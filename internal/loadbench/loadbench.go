// Package loadbench is the body of cmd/relaybench: it measures the relay at scale ("Speed at scale"): it starts the relay
// in-process, wired as internal/app wires it, in front of a fake MISP on loopback
// (misptest.Generated: any value is known, with a chosen latency and answer size), drives it
// with concurrent keep-alive clients for a fixed time per scenario, and prints one line per
// scenario: requests, requests/s, latency percentiles, MISP calls (and calls per lookup or
// per distinct value), cache hit ratio, CPU per request (the process's, and the relay's own
// part of it) and peak heap, with the targets marked met or MISSED, then a line per scenario
// naming the ceiling its configuration sets (MISP_CONCURRENCY over MISP's latency). It also
// times the real relay binary from process start to its first successful /health, against
// `relay version` as a baseline.
//
// The targets are those that hold on any machine: ratios to the fake MISP's latency, the
// relay's CPU per request, MISP calls per value, peak heap. Throughput and latency under many
// clients depend on the machine's CPUs and are reported without a target; nothing is marked
// MISSED that the configuration forbids (the ceiling line says what it allows).
//
//	relaybench [-duration 5s] [-scenarios all|fan-out,throughput,...|1,2,...] [-json]
//	                        [-misp-concurrency n] [-redis-timeout d] [-fleet-clients n] [-isolate=false] [-relay-bin path] [-base-bin path] [-cpuprofile file]
//
// Scenarios: 1 fan-out, 2 throughput, 3 cache, 4 large, 5 overhead, 6 startup, 7 fleet (several
// relays sharing a real redis-server, which must be installed). Everything listens on and
// connects to 127.0.0.1 only.
//
// Each scenario runs in a fresh child process of the command (-isolate=false runs them all
// in one), so that its heap and CPU are its own. A load scenario runs its load twice: the
// timed window (requests, latency, heap, the process's CPU time), then as long again under a
// CPU profile whose goroutine labels split that CPU between the relay, the fake MISP and the
// clients (cpu.go), so that the profiler's cost stays out of the timed figures.
//
// A missed target is a result, not a failure: the command exits 0 and prints the table. It
// exits 1 when a scenario could not be measured (setup failed, or the relay answered errors),
// because such numbers would be meaningless.
package loadbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Run is the whole command; it returns the exit code. self is the command line that runs it
// again (the relay binary and "bench"), for the child processes and the startup scenario;
// build wires the relay under test.
func Run(ctx context.Context, self []string, build Build, args []string, stdout, stderr io.Writer) int {
	// say writes a progress or error line on stderr; a failed write there leaves nothing
	// better to do.
	say := func(format string, args ...any) {
		_, _ = fmt.Fprintf(stderr, "relaybench: "+format+"\n", args...)
	}
	fs := flag.NewFlagSet("relaybench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := options{self: self, build: build}
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "timed window of each load scenario (each then runs as long again under a CPU profile, to tell the relay's CPU from the fake MISP's and the clients')")
	list := fs.String("scenarios", "all", "comma-separated scenarios, by name or number: 1 fan-out, 2 throughput, 3 cache, 4 large, 5 overhead, 6 startup, 7 fleet (needs redis-server), 8 versus (needs -base-bin)")
	asJSON := fs.Bool("json", false, "print the results as JSON instead of a table")
	fs.StringVar(&o.relayBin, "relay-bin", "", "relay binary for the startup and versus scenarios (default: the relay next to this binary)")
	fs.StringVar(&o.baseBin, "base-bin", "", "another relay binary (an older commit's) for the versus scenario, which compares the relay's CPU per request of the two (make bench BASE=<rev>)")
	fs.IntVar(&o.concurrency, "misp-concurrency", 0, "the relay's MISP_CONCURRENCY (default: the relay's default, 32)")
	fs.DurationVar(&o.redisTimeout, "redis-timeout", 0, "the fleet scenario's REDIS_TIMEOUT (default: the relay's default, 50ms)")
	fs.IntVar(&o.fleetClients, "fleet-clients", DefaultFleetClients, "the fleet scenario's clients, spread over its 4 relays")
	fs.BoolVar(&o.isolate, "isolate", true, "run each scenario in a fresh child process, so that one scenario's garbage, caches and goroutines do not weigh on the next one's heap and CPU")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run (relay, fake MISP and clients, told apart by the relaybench label) to this file, for go tool pprof; implies -isolate=false, and the relay CPU/req column stays empty (the profiler is taken)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.duration <= 0 || o.duration > 10*time.Minute {
		say("-duration must be more than 0 and at most 10m")
		return 2
	}
	if o.concurrency < 0 || o.concurrency > 4096 {
		say("-misp-concurrency must be between 0 (the relay's default) and 4096")
		return 2
	}
	if o.fleetClients < 1 || o.fleetClients > 1024 {
		say("-fleet-clients must be between 1 and 1024")
		return 2
	}
	chosen, err := selectScenarios(*list)
	if err != nil {
		say("%v", err)
		return 2
	}
	if strings.TrimSpace(*list) == "all" && o.baseBin == "" {
		chosen = slices.DeleteFunc(chosen, func(s scenario) bool { return s.name == "versus" })
	}
	if *cpuProfile != "" {
		o.isolate = false // the profile is of this process
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			say("%v", err)
			return 1
		}
		defer func() {
			if err := stop(); err != nil {
				say("write the CPU profile: %v", err)
			}
		}()
	}

	var results []result
	for _, s := range chosen {
		if ctx.Err() != nil {
			break
		}
		if !*asJSON {
			say("running %s...", s.name)
		}
		if o.isolate {
			results = append(results, runChild(ctx, o, s.name, stderr)...)
		} else {
			results = append(results, s.run(ctx, o)...)
		}
	}
	if *asJSON {
		err = printJSON(stdout, results)
	} else {
		err = printTable(stdout, o, results)
	}
	if err != nil {
		say("%v", err)
		return 1
	}
	for _, r := range results {
		if r.Error != "" {
			return 1
		}
	}
	if ctx.Err() != nil {
		return 1
	}
	return 0
}

// startCPUProfile profiles the whole process into path; stop ends the profile and closes
// the file.
func startCPUProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path) //nolint:gosec // the path the user asked for with -cpuprofile
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// runChild runs one scenario in a fresh process of this command and reads back its results.
// A process per scenario is what makes the peak heap a scenario's own: the relay's cache
// keeps its entries (and a cleanup goroutine) alive after the scenario that filled it, and
// garbage left by a heavy scenario would count in the next one.
func runChild(ctx context.Context, o options, name string, stderr io.Writer) []result {
	fail := func(err error) []result { return []result{{Name: name, Kind: kindLoad, Error: err.Error()}} }
	// Bounded: a load scenario takes its duration plus a warm-up; startup takes seconds.
	ctx, cancel := context.WithTimeout(ctx, 3*o.duration+2*time.Minute)
	defer cancel()
	args := []string{
		"-isolate=false", "-json", "-scenarios", name,
		"-duration", o.duration.String(), "-misp-concurrency", strconv.Itoa(o.concurrency),
		"-redis-timeout", o.redisTimeout.String(), "-fleet-clients", strconv.Itoa(o.fleetClients),
	}
	if o.baseBin != "" {
		args = append(args, "-base-bin", o.baseBin)
	}
	if o.relayBin != "" {
		args = append(args, "-relay-bin", o.relayBin)
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, o.self[0], append(slices.Clone(o.self[1:]), args...)...) //nolint:gosec // this very command, with flags it made
	cmd.Stdout = &out
	cmd.Stderr = stderr
	// The child exits 1 when its scenario failed, and still prints the results that say why.
	runErr := cmd.Run()
	var results []result
	if err := json.Unmarshal(out.Bytes(), &results); err != nil || len(results) == 0 {
		return fail(fmt.Errorf("the child process of %s printed no results: %w", name, errors.Join(err, runErr)))
	}
	return results
}

// selectScenarios parses -scenarios.
func selectScenarios(list string) ([]scenario, error) {
	all := allScenarios()
	if strings.TrimSpace(list) == "all" {
		return all, nil
	}
	var out []scenario
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		i := slices.IndexFunc(all, func(s scenario) bool { return s.name == item })
		if n, err := strconv.Atoi(item); err == nil && n >= 1 && n <= len(all) {
			i = n - 1
		}
		if i < 0 {
			names := make([]string, len(all))
			for k, s := range all {
				names[k] = s.name
			}
			return nil, fmt.Errorf("unknown scenario %q (want all, or some of %s, or 1 to %d)", item, strings.Join(names, ", "), len(all))
		}
		if !slices.ContainsFunc(out, func(s scenario) bool { return s.name == all[i].name }) {
			out = append(out, all[i])
		}
	}
	return out, nil
}
