package httpapi_test

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/cache"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/service"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

// TestLoadWithFaults drives the relay through a real socket with many concurrent clients
// sending valid and hostile requests while MISP faults are switched on and off, checks that
// every answer is spec-valid and never a 5xx, and that goroutines and heap come back to their
// baseline afterwards (no leak per request, per fault or per client).
func TestLoadWithFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	h := newHarness(t, allEvents())
	f := h.misp
	client, err := misp.New(misp.Config{
		BaseURL: f.URL, Timeout: 300 * time.Millisecond,
		BreakerFailures: 20, BreakerCooldown: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.serve(service.Config{UIURL: f.URL, Backend: cache.New(client, cache.Config{BaseURL: f.URL, TTL: 50 * time.Millisecond})})
	// The client's timeout is only a failure bound: 48 clients against MISP faults on a busy
	// 2-core machine can wait several seconds for an answer.
	httpClient := &http.Client{Timeout: testkit.WaitTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	defer httpClient.CloseIdleConnections()

	requests := []struct{ method, path, body string }{
		{"POST", "/observe/observables", `[{"type":"ip","value":"198.51.100.7"},{"type":"domain","value":"evil.example"}]`},
		{"POST", "/deliberate/observables", `[{"type":"ip","value":"198.51.100.7"}]`},
		{"POST", "/refer/observables", `[{"type":"url","value":"http://evil.example/x"}]`},
		{"POST", "/respond/observables", `[{"type":"ip","value":"198.51.100.7"}]`},
		{"POST", "/health", ``},
		{"POST", "/observe/observables", `[{"type":"ip","value":""}]`},
		{"POST", "/observe/observables", strings.Repeat("[", 5000)},
		{"POST", "/observe/observables", "[{\"type\":\"ip\",\"value\":\"\xff\"}]"},
		{"POST", "/respond/trigger", `{"action-id":"nope","observable_type":"ip","observable_value":"1"}`},
		{"GET", "/observe/observables", ``},
		{"POST", "/nope", `[]`},
		{"GET", "/watchdog", ``},
	}
	// run sends requests from clients goroutines, each at most 10,000, until enough says so
	// (asked before each request), and calls answered with the count after each answer. The run
	// lasts as long as the events enough waits for take; WaitTimeout only bounds a run that never
	// gets there.
	run := func(clients int, enough func(answered int64) bool, answered func(n int64)) int64 {
		var n atomic.Int64
		deadline := time.Now().Add(testkit.WaitTimeout)
		var wg sync.WaitGroup
		for c := range clients {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(c), 1))
				for i := 0; i < 10000 && !enough(n.Load()) && time.Now().Before(deadline); i++ {
					r := requests[rng.IntN(len(requests))]
					req, _ := http.NewRequestWithContext(context.Background(), r.method, h.srv.URL+r.path, strings.NewReader(r.body))
					if rng.IntN(10) > 0 { // a tenth go without a token
						req.Header.Set("Authorization", h.bearer())
					}
					resp, err := httpClient.Do(req)
					if err != nil {
						t.Errorf("%s %s: %v", r.method, r.path, err)
						return
					}
					raw, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode >= 500 {
						t.Errorf("%s %s: HTTP %d", r.method, r.path, resp.StatusCode)
					}
					h.contract.Check(t, r.method, r.path, resp.StatusCode, resp.Header, raw)
					answered(n.Add(1))
				}
			})
		}
		wg.Wait()
		return n.Load()
	}

	run(16, func(n int64) bool { return n >= 64 }, func(int64) {}) // warm the connection pools
	baseGoroutines, baseHeap := settle()

	// The faults take turns, each for the next 10 answers, with healthy spells in between. The
	// load goes on until every fault has had its turn and 100 requests have been answered, not
	// for a set time: on a busy machine it takes longer, and the same requests are checked.
	faults := map[string]misptest.Answer{"": {}}
	for _, f := range mispFaults() {
		faults[f.name] = f.answer
	}
	modes := []string{"", "hang", "", "html502", "reset", "", "truncated", "429", "", "login", "shape"}
	var cycled atomic.Bool // every mode has had its turn
	total := run(48, func(n int64) bool { return cycled.Load() && n >= 100 }, func(n int64) {
		if n%10 != 0 {
			return
		}
		turn := int(n / 10)
		if turn == len(modes) {
			cycled.Store(true)
		}
		f.Always("", faults[modes[turn%len(modes)]])
	})
	f.Always("", misptest.Answer{})
	if !cycled.Load() {
		t.Errorf("the faults did not all take their turn within %v", testkit.WaitTimeout)
	}
	if total < 100 {
		t.Errorf("only %d requests answered", total)
	}

	// Back to normal: the relay answers once the breaker's cool-down is over (it may have
	// opened on the last fault), and resources return to their baseline.
	var got map[string]any
	if !testkit.Poll(testkit.WaitTimeout, func() bool {
		_, got = h.post("/observe/observables", `[{"type":"ip","value":"198.51.100.7"}]`)
		data, _ := got["data"].(map[string]any) // absent while the breaker is still open
		_, ok := data["verdicts"]
		return ok
	}) {
		t.Errorf("after the load: %v", got)
	}
	httpClient.CloseIdleConnections()
	f.ForgetRequests() // the fake's records are the test's memory, not the relay's
	var goroutines int
	var heap uint64
	// Connections and timers wind down on their own: wait until the goroutines are back to
	// their baseline, for up to a generous bound.
	testkit.Poll(testkit.WaitTimeout, func() bool {
		goroutines, heap = settle()
		return goroutines <= baseGoroutines+8
	})
	if goroutines > baseGoroutines+8 {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after the load, %d before:\n%s", goroutines, baseGoroutines, buf[:runtime.Stack(buf, true)])
	}
	if heap > baseHeap+16<<20 {
		t.Errorf("heap %d MiB after the load, %d MiB before", heap>>20, baseHeap>>20)
	}
	t.Logf("%d requests; goroutines %d -> %d; heap %d -> %d KiB", total, baseGoroutines, goroutines, baseHeap>>10, heap>>10)
}

// settle collects garbage and returns the goroutine count and the heap in use.
func settle() (int, uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapInuse
}
