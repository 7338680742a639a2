package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/cache/rediscache/redistest"
)

// A short run of every load scenario through `relay bench`: it prints a section per scenario
// and succeeds, missed targets or not. (Nothing here checks how fast anything was.)
func TestBenchLoadScenarios(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-isolate=false", "-duration", "50ms", "-scenarios", "1,2,3,4,5"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, &stdout, &stderr)
	}
	for _, name := range []string{"fan-out", "throughput", "cache", "large", "overhead"} {
		if !strings.Contains(stdout.String(), "\n"+name+": ") {
			t.Errorf("no %s section in\n%s", name, &stdout)
		}
	}
}

// The fleet scenario against a real redis-server: both of its lines are there, and no request
// failed (Redis being slow on a busy machine may make the Redis-hit line say its measurement
// is not of Redis hits, never fail a request).
func TestBenchFleet(t *testing.T) {
	if _, err := redistest.Binary(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-isolate=false", "-duration", "100ms", "-scenarios", "fleet", "-json"}, &stdout, &stderr)
	var results []struct {
		Name     string
		Requests int
		Errors   int
		Upstream int64 `json:"upstream_calls"`
		Error    string
	}
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil {
		t.Fatalf("exit %d, %v: %s\n%s", code, err, &stdout, &stderr)
	}
	if len(results) != 2 || results[0].Name != "fleet" || results[1].Name != "fleet-hit" {
		t.Fatalf("results %+v, want fleet and fleet-hit", results)
	}
	for _, r := range results {
		if r.Requests == 0 || r.Errors != 0 {
			t.Errorf("%+v", r)
		}
	}
	if results[0].Error != "" || results[0].Upstream == 0 {
		t.Errorf("fleet: %+v", results[0])
	}
	if code != 0 && !strings.Contains(results[1].Error, "not of Redis hits") {
		t.Errorf("exit %d: %+v", code, results[1])
	}
}

func TestBenchJSONAndStartup(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the relay binary")
	}
	bin := filepath.Join(t.TempDir(), "relay")
	if out, err := exec.Command("go", "build", "-o", bin, "../relay").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-isolate=false", "-duration", "20ms", "-scenarios", "cache,startup", "-json", "-relay-bin", bin}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, &stdout, &stderr)
	}
	var results []struct {
		Name          string
		Requests      int
		Hits          int64    `json:"cache_hits"`
		CallsPerValue *float64 `json:"misp_calls_per_value"`
		CallsPer      string   `json:"misp_calls_per"`
		CPUPerRequest *float64 `json:"cpu_per_request_ms"`
		BaselineP50   *float64 `json:"baseline_p50_ms"`
		Targets       []struct {
			Target string
			Met    bool
		}
		Error string
	}
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil {
		t.Fatalf("%v: %s", err, &stdout)
	}
	var names []string
	for _, r := range results {
		names = append(names, r.Name)
		if r.Requests == 0 || r.Error != "" {
			t.Errorf("%+v", r)
		}
	}
	if diff := cmp.Diff([]string{"cache", "startup-misp", "startup-feed"}, names); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if len(results) != 3 {
		return
	}
	cache := results[0]
	if cache.Hits == 0 {
		t.Errorf("the cache scenario read no cache hits from the relay's metrics: %+v", cache)
	}
	// Within the TTL the relay calls MISP once per distinct value, however short the run.
	if cache.CallsPerValue == nil || *cache.CallsPerValue != 1 || cache.CallsPer != "distinct value" {
		t.Errorf("cache: MISP calls per value %v per %q, want exactly 1 per distinct value", cache.CallsPerValue, cache.CallsPer)
	}
	if cache.CPUPerRequest == nil || *cache.CPUPerRequest <= 0 {
		t.Errorf("cache: no CPU per request: %+v", cache)
	}
	for _, r := range results[1:] {
		if r.BaselineP50 == nil || *r.BaselineP50 <= 0 || len(r.Targets) != 0 {
			t.Errorf("%s: baseline %v, targets %+v; want a baseline and no target", r.Name, r.BaselineP50, r.Targets)
		}
	}
}
