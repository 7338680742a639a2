package loadbench

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"time"
)

const (
	// maxRequestsPerClient bounds every client's loop by count as well as by time, so a
	// scenario cannot run away (nor its latency slice grow without bound) if the clock or
	// the relay misbehaves.
	maxRequestsPerClient = 1 << 20
	// heapSampleEvery is how often the peak heap is sampled during a scenario.
	heapSampleEvery = 10 * time.Millisecond
	// requestTimeout bounds one request; the relay's own MISP timeout is 25s.
	requestTimeout = 30 * time.Second
)

// request is one request a client sends.
type request struct {
	body []byte
	// tagged requests get their own percentiles besides the overall ones (the cache
	// scenario tags the requests whose every observable comes from the hot set).
	tagged bool
}

// loadSpec is a closed-loop load: each client sends a request, waits for the whole answer and
// sends the next, until the duration is over. Closed loop means the latency it measures is
// what one XDR user waits, and its throughput is what the relay sustains at that concurrency.
type loadSpec struct {
	url string // the relay's /observe/observables URL
	// urls, when set, are several relays' URLs: client i sends to urls[i % len(urls)].
	urls     []string
	token    string
	clients  int
	duration time.Duration
	// next makes a client's next request; rng is the client's own, so requests are
	// reproducible and clients do not contend on a shared generator.
	next func(client int, rng *rand.Rand) request
	// check validates one answer of the warm-up (the first request of client 0), so that a
	// scenario measures real answers, not error envelopes.
	check func(body []byte) error
	// beforeRun runs after the warm-up, just before the timed window, and afterRun just
	// after it, before the CPU window (to read counters around the timed window).
	beforeRun, afterRun func()
}

// loadResult is what a load measured over its timed window.
type loadResult struct {
	latencies  []time.Duration // every successful request, sorted
	tagged     []time.Duration // the tagged ones, sorted
	requests   int             // successful requests
	errors     int
	firstError string
	elapsed    time.Duration
	peakHeap   uint64 // bytes
	// cpu is the process's CPU over the timed window and, from the CPU window, how it
	// splits between the relay, the fake MISP and the clients.
	cpu cpuUse
}

// runLoad warms up (one request per client, which also opens the keep-alive connections),
// collects garbage, then runs the timed window while sampling the heap and reading the
// process's CPU time. Then it runs the same load again for as long, the CPU window, under
// a CPU profile that tells the relay's CPU from the fake MISP's and the clients' (see cpu.go):
// the profiler's buffers (about 2 MiB of heap) and its signals stay out of the timed window's
// heap, latency and throughput. The clients' goroutines are labelled partClients.
func runLoad(ctx context.Context, s loadSpec) (out loadResult, err error) {
	withPart(ctx, partClients, func(ctx context.Context) { out, err = runLabelledLoad(ctx, s) })
	return out, err
}

func runLabelledLoad(ctx context.Context, s loadSpec) (loadResult, error) {
	tr := &http.Transport{
		Proxy:               nil, // loopback only: never through HTTP_PROXY
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * s.clients,
		MaxIdleConnsPerHost: 2 * s.clients,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: requestTimeout}

	rngs := make([]*rand.Rand, s.clients)
	for i := range rngs {
		rngs[i] = rand.New(rand.NewPCG(uint64(i)+1, 0x5eed)) //nolint:gosec // load generation, not security
	}

	// Warm-up, all clients at once.
	warm := make([]error, s.clients)
	var wg sync.WaitGroup
	for i := range s.clients {
		wg.Go(func() {
			var buf bytes.Buffer
			warm[i] = send(ctx, hc, s.target(i), s.token, s.next(i, rngs[i]).body, &buf)
			if warm[i] == nil && i == 0 && s.check != nil {
				warm[i] = s.check(buf.Bytes())
			}
		})
	}
	wg.Wait()
	for i, err := range warm {
		if err != nil { // the first is enough: the others usually say the same
			return loadResult{}, fmt.Errorf("warm-up of client %d: %w", i, err)
		}
	}
	if s.beforeRun != nil {
		s.beforeRun()
	}

	runtime.GC()
	heap := startHeapSampler()
	cpu0, timed := processCPU()
	start := time.Now()
	results := drive(ctx, hc, s, rngs, start.Add(s.duration))
	out := loadResult{elapsed: time.Since(start)}
	cpu1, _ := processCPU()
	out.peakHeap = heap()
	if timed {
		out.cpu.total = cpu1 - cpu0
	}
	if s.afterRun != nil {
		s.afterRun()
	}

	stop, err := startCPUSplit()
	if err != nil {
		out.cpu.why = err.Error()
	} else {
		results = append(results, drive(ctx, hc, s, rngs, time.Now().Add(s.duration))...)
		out.cpu.shares, out.cpu.samples, out.cpu.why = stop()
	}

	for k, r := range results {
		if k < s.clients { // the timed window's
			out.latencies = append(out.latencies, r.all...)
			out.tagged = append(out.tagged, r.tagged...)
		}
		out.errors += r.errors
		if r.firstError != nil && out.firstError == "" {
			out.firstError = r.firstError.Error()
		}
	}
	slices.Sort(out.latencies)
	slices.Sort(out.tagged)
	out.requests = len(out.latencies)
	return out, ctx.Err()
}

// clientResult is what one client measured in one window.
type clientResult struct {
	all, tagged []time.Duration
	errors      int
	firstError  error
}

// drive runs the clients, each in a closed loop, until deadline, and returns their results.
func drive(ctx context.Context, hc *http.Client, s loadSpec, rngs []*rand.Rand, deadline time.Time) []clientResult {
	results := make([]clientResult, s.clients)
	var wg sync.WaitGroup
	for i := range s.clients {
		wg.Go(func() {
			r := &results[i]
			var buf bytes.Buffer
			for n := 0; n < maxRequestsPerClient && ctx.Err() == nil; n++ {
				// The deadline is checked before a request is made, so that every request
				// made is sent (the cache scenario counts the distinct values asked).
				if !time.Now().Before(deadline) {
					return
				}
				req := s.next(i, rngs[i])
				t0 := time.Now()
				err := send(ctx, hc, s.target(i), s.token, req.body, &buf)
				d := time.Since(t0)
				if err != nil {
					r.errors++
					if r.firstError == nil {
						r.firstError = err
					}
					continue
				}
				r.all = append(r.all, d)
				if req.tagged {
					r.tagged = append(r.tagged, d)
				}
			}
		})
	}
	wg.Wait()
	return results
}

// target is the URL client i sends to.
func (s loadSpec) target(client int) string {
	if len(s.urls) > 0 {
		return s.urls[client%len(s.urls)]
	}
	return s.url
}

// send posts body to url and reads the whole answer into buf. Only HTTP 200 without an
// "errors" list is a success: the relay answers business errors (MISP down, bad JWT) with
// HTTP 200 and an errors list, and a benchmark of failures would measure nothing.
func send(ctx context.Context, hc *http.Client, url, token string, body []byte, buf *bytes.Buffer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	buf.Reset()
	_, err = buf.ReadFrom(resp.Body)
	_ = resp.Body.Close()
	switch {
	case err != nil:
		return fmt.Errorf("read the answer: %w", err)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, buf.Bytes())
	case bytes.Contains(buf.Bytes(), []byte(`"errors"`)):
		return fmt.Errorf("the relay answered errors: %.300s", buf.Bytes())
	}
	return nil
}

// startHeapSampler samples the in-use heap every heapSampleEvery until the returned function
// is called, which stops it and returns the largest sample. It reads runtime/metrics' heap
// objects + heap unused bytes, which is exactly MemStats.HeapInuse (both are the runtime's
// in-heap span bytes), because runtime.ReadMemStats stops the world on every call: sampling
// it every 10 ms would add pauses to the very latencies being measured.
func startHeapSampler() func() uint64 {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
	}
	read := func() uint64 {
		metrics.Read(samples)
		var sum uint64
		for _, s := range samples {
			if s.Value.Kind() == metrics.KindUint64 {
				sum += s.Value.Uint64()
			}
		}
		return sum
	}
	stop := make(chan struct{})
	done := make(chan uint64)
	go func() {
		peak := read()
		t := time.NewTicker(heapSampleEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				peak = max(peak, read())
			case <-stop:
				done <- max(peak, read())
				return
			}
		}
	}()
	return func() uint64 {
		close(stop)
		return <-done
	}
}

// percentile is the nearest-rank q-quantile (0 < q <= 1) of sorted latencies; 0 when empty.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
