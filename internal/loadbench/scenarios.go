package loadbench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/misp-relay/misp-relay/internal/service"
)

// options are the command's settings that scenarios use.
type options struct {
	duration time.Duration // timed window of each load scenario
	relayBin string        // the relay binary for the startup scenario; "" is self[0]
	self     []string      // the command line of `relaybench`, to run children
	// concurrency is the relay's MISP_CONCURRENCY (lookups per request, and MISP calls in
	// flight over all requests); 0 means the relay's default.
	concurrency int
	// redisTimeout is the fleet scenario's REDIS_TIMEOUT; 0 means the relay's default.
	redisTimeout time.Duration
	// isolate runs each scenario in a child process (see runChild).
	isolate bool
	// build wires the relay as `relay serve` does.
	build Build
}

// mispConcurrency is the MISP_CONCURRENCY the relay runs with.
func (o options) mispConcurrency() int {
	if o.concurrency > 0 {
		return o.concurrency
	}
	return service.DefaultConcurrency
}

// scenario is one line (or, for startup, a few lines) of the report.
type scenario struct {
	name string
	run  func(ctx context.Context, o options) []result
}

// allScenarios lists the scenarios in report order. The numbers of the issue are their
// positions (1 to 5), startup is 6, fleet (fleet.go) 7.
func allScenarios() []scenario {
	return []scenario{
		{"fan-out", fanOut},
		{"throughput", throughput},
		{"cache", cacheScenario},
		{"large", largeResponse},
		{"overhead", overhead},
		{"startup", startup},
		{"fleet", fleet},
	}
}

// relayLoad is a scenario that drives an in-process relay in front of its own fake MISP.
type relayLoad struct {
	name, what string
	fake       *fakeMISP
	relay      relayConfig // mispURL is filled in
	clients    int
	// perRequest is the number of distinct observables in every request, so lookups =
	// requests × perRequest.
	perRequest int
	next       func(client int, rng *rand.Rand) request
	check      func(body []byte) error
}

// run starts the fake MISP and the relay, runs the load and fills in everything but the
// scenario's targets. Counters are read around the timed window only.
func (l relayLoad) run(ctx context.Context, o options) result {
	res := result{Name: l.name, Kind: kindLoad, What: l.what, Clients: l.clients}
	fake := startFakeMISP(l.fake)
	defer fake.Close()
	rc := l.relay
	rc.mispURL = fake.URL
	rc.concurrency = o.concurrency
	r, err := startRelay(o.build, rc)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer r.close()

	var searches0, conns0, hits0, misses0 int64
	lr, err := runLoad(ctx, loadSpec{
		url:      r.srv.URL + "/observe/observables",
		token:    r.token,
		clients:  l.clients,
		duration: o.duration,
		next:     l.next,
		check:    l.check,
		beforeRun: func() {
			searches0, conns0 = l.fake.searches.Load(), l.fake.conns.Load()
			hits0, misses0 = r.cacheStats()
		},
	})
	if err != nil {
		res.Error = err.Error()
		return res
	}
	hits, misses := r.cacheStats()
	res.Requests = lr.requests
	res.Errors = lr.errors
	if lr.errors > 0 {
		res.Error = fmt.Sprintf("%d failed requests, the first: %s", lr.errors, lr.firstError)
	}
	res.Seconds = lr.elapsed.Seconds()
	res.RPS = float64(lr.requests) / lr.elapsed.Seconds()
	res.P50 = millis(percentile(lr.latencies, 0.50))
	res.P95 = millis(percentile(lr.latencies, 0.95))
	res.P99 = millis(percentile(lr.latencies, 0.99))
	res.Upstream = l.fake.searches.Load() - searches0
	res.Lookups = int64(lr.requests * l.perRequest)
	res.Hits, res.Misses = hits-hits0, misses-misses0
	if n := res.Hits + res.Misses; n > 0 {
		ratio := float64(res.Hits) / float64(n)
		res.HitRatio = &ratio
	}
	res.PeakHeap = lr.peakHeap
	res.tagged = lr.tagged
	if res.Upstream > 0 {
		conns := l.fake.conns.Load() - conns0
		res.note("after the warm-up, the relay opened %d new connections to MISP for %d MISP calls (%.1f%%)", conns, res.Upstream, 100*float64(conns)/float64(res.Upstream))
	}
	return res
}

// fanOut is scenario 1: one request of 50 observables, each known to MISP, with a 50 ms MISP
// and no cache, so every request really makes 50 MISP calls.
func fanOut(ctx context.Context, o options) []result {
	const n, latency = 50, 50 * time.Millisecond
	values := make([]string, n)
	for i := range values {
		values[i] = "198.51.100." + strconv.Itoa(i+1)
	}
	body := observeBody(values...)
	res := relayLoad{
		name: "fan-out", what: "1 client, 50 observables per request, MISP latency 50ms, cache off",
		fake:    &fakeMISP{latency: latency, events: 3, attrs: 2},
		relay:   relayConfig{cacheTTL: 0},
		clients: 1, perRequest: n,
		next:  func(int, *rand.Rand) request { return request{body: body} },
		check: expectCounts(n, n*3),
	}.run(ctx, o)
	res.check("p99 < 200ms (4 × MISP latency)", res.P99.d() < 4*latency, res.P99.String())
	conc := o.mispConcurrency()
	waves := (n + conc - 1) / conc
	res.note("MISP_CONCURRENCY %d runs the %d lookups in %d waves: at least %v of MISP time per request",
		conc, n, waves, time.Duration(waves)*latency)
	return []result{res}
}

// throughput is scenario 2: 64 clients of 5 observables each, MISP latency 5 ms, no cache.
func throughput(ctx context.Context, o options) []result {
	const clients, perRequest, latency = 64, 5, 5 * time.Millisecond
	bodies := make([][]byte, clients)
	for c := range bodies {
		values := make([]string, perRequest)
		for k := range values {
			values[k] = fmt.Sprintf("10.2.%d.%d", c, k+1)
		}
		bodies[c] = observeBody(values...)
	}
	res := relayLoad{
		name: "throughput", what: "64 clients, 5 observables per request, MISP latency 5ms, cache off",
		fake:    &fakeMISP{latency: latency, events: 3, attrs: 2},
		relay:   relayConfig{cacheTTL: 0},
		clients: clients, perRequest: perRequest,
		next:  func(c int, _ *rand.Rand) request { return request{body: bodies[c]} },
		check: expectCounts(perRequest, perRequest*3),
	}.run(ctx, o)
	// The 5 lookups of a request run in parallel, so MISP accounts for one latency of it.
	res.relayAdded(latency)
	res.check("≥ 2,000 req/s", res.RPS >= 2000, fmt.Sprintf("%.0f req/s", res.RPS))
	if res.AddedP99 != nil {
		res.check("relay-added p99 < 5ms", res.AddedP99.d() < 5*time.Millisecond, res.AddedP99.String())
	}
	// The MISP client lets MISP_CONCURRENCY calls be in flight over all requests: each holds
	// its slot for at least the MISP latency.
	conc := o.mispConcurrency()
	res.note("MISP_CONCURRENCY %d calls in flight at %v each caps the relay at %d MISP calls/s = %d req/s of %d lookups",
		conc, latency, int(float64(conc)/latency.Seconds()), int(float64(conc)/latency.Seconds())/perRequest, perRequest)
	if res.RPS > 0 {
		// Little's law for a closed loop: clients = throughput × mean latency.
		res.note("closed loop: %d clients at %.0f req/s wait %v per request on average (Little's law), of which %v is MISP",
			clients, res.RPS, time.Duration(float64(clients)/res.RPS*float64(time.Second)).Round(10*time.Microsecond), latency)
	}
	return []result{res}
}

// cacheScenario is scenario 3: like throughput, but 80% of the observables come from a small
// hot set and 20% are fresh values never asked before, with caching on (60 s).
func cacheScenario(ctx context.Context, o options) []result {
	const clients, perRequest, hotSize, hotShare = 64, 5, 20, 0.8
	const latency = 5 * time.Millisecond
	hot := make([][]string, clients) // each client's own copy, shuffled as it picks
	for c := range hot {
		hot[c] = make([]string, hotSize)
		for i := range hotSize {
			hot[c][i] = "192.0.2." + strconv.Itoa(i+1)
		}
	}
	var fresh atomic.Uint32
	next := func(c int, rng *rand.Rand) request {
		values := make([]string, perRequest)
		picked, allHot := 0, true
		for k := range values {
			if rng.Float64() < hotShare {
				// A partial Fisher-Yates shuffle keeps a request's hot values distinct.
				j := picked + rng.IntN(hotSize-picked)
				hot[c][picked], hot[c][j] = hot[c][j], hot[c][picked]
				values[k] = hot[c][picked]
				picked++
				continue
			}
			allHot = false
			n := fresh.Add(1)
			values[k] = fmt.Sprintf("10.%d.%d.%d", 100+(n>>16)&0x7f, (n>>8)&0xff, n&0xff)
		}
		return request{body: observeBody(values...), tagged: allHot}
	}
	res := relayLoad{
		name: "cache", what: "64 clients, 5 observables (80% from 20 hot values, 20% fresh), MISP latency 5ms, cache on (60s)",
		fake:    &fakeMISP{latency: latency, events: 3, attrs: 2},
		relay:   relayConfig{cacheTTL: 60 * time.Second},
		clients: clients, perRequest: perRequest,
		next:  next,
		check: expectCounts(perRequest, perRequest*3),
	}.run(ctx, o)
	res.check("p50 < 1ms", res.P50.d() < time.Millisecond, res.P50.String())
	if res.Lookups > 0 && res.HitRatio != nil {
		res.note("lookups %d, upstream calls %d = %.1f%% of lookups; 1 − hit ratio = %.1f%%",
			res.Lookups, res.Upstream, 100*float64(res.Upstream)/float64(res.Lookups), 100*(1-*res.HitRatio))
	}
	res.note("%.0f%% of requests hold at least one fresh value (1 − 0.8^5 = 67%% expected) and wait for MISP; the requests whose 5 values are all hot (%d): p50 %v, p99 %v",
		100*(1-float64(len(res.tagged))/float64(max(res.Requests, 1))), len(res.tagged),
		millis(percentile(res.tagged, 0.5)), millis(percentile(res.tagged, 0.99)))
	return []result{res}
}

// largeResponse is scenario 4: one observable whose MISP answer holds 20,000 attributes of
// 20,000 distinct events, from a MISP that ignores limit and page, with CTR_ENTITIES_LIMIT
// 100: the relay's memory must be bounded by the limit, not by what MISP sends.
func largeResponse(ctx context.Context, o options) []result {
	const attrs, limit = 20000, 100
	fake := &fakeMISP{events: attrs, attrs: 1, ignorePaging: true}
	body := observeBody("203.0.113.9")
	res := relayLoad{
		name: "large", what: "1 client, 1 observable, MISP answer of 20,000 attributes (20,000 events), CTR_ENTITIES_LIMIT 100",
		fake:    fake,
		relay:   relayConfig{cacheTTL: 0, entitiesLimit: limit},
		clients: 1, perRequest: 1,
		next:  func(int, *rand.Rand) request { return request{body: body} },
		check: expectCounts(1, limit),
	}.run(ctx, o)
	res.check("peak heap < 64 MiB", res.PeakHeap < 64<<20, mib(res.PeakHeap))
	res.note("MISP's answer is %s (streamed by the fake, never held in memory); the relay reads it only up to the 101st event, then hangs up",
		mib(answerSize(fake, "203.0.113.9")))
	return []result{res}
}

// overhead is scenario 5: one client, one observable, a MISP that answers at once: the whole
// request time is what the relay adds (its MISP call over loopback included).
func overhead(ctx context.Context, o options) []result {
	body := observeBody("203.0.113.7")
	res := relayLoad{
		name: "overhead", what: "1 client, 1 observable, MISP latency 0, cache off",
		fake:    &fakeMISP{events: 3, attrs: 2},
		relay:   relayConfig{cacheTTL: 0},
		clients: 1, perRequest: 1,
		next:  func(int, *rand.Rand) request { return request{body: body} },
		check: expectCounts(1, 3),
	}.run(ctx, o)
	res.relayAdded(0)
	return []result{res}
}

// observeBody is an /observe/observables body of IP observables.
func observeBody(values ...string) []byte {
	type observable struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	}
	in := make([]observable, len(values))
	for i, v := range values {
		in[i] = observable{"ip", v}
	}
	b, err := json.Marshal(in)
	if err != nil {
		panic(err) // plain strings always marshal
	}
	return b
}

// expectCounts checks an observe answer holds the expected numbers of verdicts and
// judgements: every observable known, every event mapped (up to the limit).
func expectCounts(verdicts, judgements int) func([]byte) error {
	return func(body []byte) error {
		var a struct {
			Data struct {
				Verdicts, Judgements struct{ Count int }
			}
		}
		if err := json.Unmarshal(body, &a); err != nil {
			return fmt.Errorf("the answer is not JSON: %w", err)
		}
		if a.Data.Verdicts.Count != verdicts || a.Data.Judgements.Count != judgements {
			return fmt.Errorf("the answer has %d verdicts and %d judgements, want %d and %d: %.300s",
				a.Data.Verdicts.Count, a.Data.Judgements.Count, verdicts, judgements, body)
		}
		return nil
	}
}

// answerSize is the size of the fake's full answer for value, computed attribute by
// attribute without holding it.
func answerSize(f *fakeMISP, value string) uint64 {
	size := uint64(len(`{"response":{"Attribute":[]}}`))
	seed := fnvSeed(value)
	buf := make([]byte, 0, 1536)
	for i := range f.events * f.attrs {
		buf = f.appendAttribute(buf[:0], seed, value, "ip-dst", i)
		size += uint64(len(buf))
		if i > 0 {
			size++ // the comma
		}
	}
	return size
}
