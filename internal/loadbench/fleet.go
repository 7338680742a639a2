package loadbench

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/misp-relay/misp-relay/internal/cache/rediscache/redistest"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
)

// The fleet scenario: several relay instances (Lambda instances, container replicas) in
// front of one MISP, sharing one real redis-server (REDIS_URL), as a fleet is deployed.
const (
	fleetInstances = 4
	// DefaultFleetClients is the fleet's default load: 4 clients per instance, about 2,000
	// requests a second on a 2-CPU machine, where the four relays, redis-server, the fake MISP
	// and the clients share the CPUs. Twice that saturates them: a Redis operation then waits
	// for a CPU past REDIS_TIMEOUT now and then, and its lookup asks MISP rather than wait (as
	// it should; -fleet-clients 32 shows it), which measures the machine rather than the sharing.
	DefaultFleetClients = 16
	fleetPerRequest     = 5
	fleetPool           = 2000 // distinct values the clients draw from
	fleetLatency        = 20 * time.Millisecond
	fleetHitValues      = 500 // values of the Redis-hit measurement (fewer for a -duration under 5s)
)

// fleet is scenario 7. Its first line is the fleet under load: clients spread over the
// instances ask values drawn from a common pool, so each value is asked by several instances,
// often at the same moment; the target is one MISP call per distinct value, whatever the
// number of instances. Its second line (fleet-hit) is the latency of a lookup answered by
// Redis: one client asks each instance, one request at a time, values another instance
// already asked, so that every lookup misses the instance's own cache and hits Redis.
func fleet(ctx context.Context, o options) []result {
	fleetClients := o.fleetClients
	if fleetClients <= 0 {
		fleetClients = DefaultFleetClients
	}
	res := result{
		Name: "fleet", Kind: kindLoad, Clients: fleetClients,
		What: fmt.Sprintf("%d relay instances sharing one redis-server, %d clients (%d per instance), %d observables per request drawn from %d values, MISP latency %v, cache on (60s); upstream and hit ratio count the whole run",
			fleetInstances, fleetClients, fleetClients/fleetInstances, fleetPerRequest, fleetPool, fleetLatency),
	}
	hitValues := min(max(int(o.duration/(10*time.Millisecond)), 20), fleetHitValues)
	hit := result{
		Name: "fleet-hit", Kind: kindLoad, Clients: 1,
		What: fmt.Sprintf("1 client, 1 observable per request, its search and warninglist check answered by Redis (stored by another instance, new to this one): %d values × %d instances", hitValues, fleetInstances-1),
	}
	fail := func(err error) []result {
		res.Error = err.Error()
		return []result{res}
	}
	if _, err := redistest.Binary(); err != nil {
		return fail(fmt.Errorf("the fleet scenario runs a real Redis: %w", err))
	}
	dir, err := os.MkdirTemp("", "relaybench-redis-")
	if err != nil {
		return fail(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	redis, err := redistest.Launch(dir)
	if err != nil {
		return fail(err)
	}
	defer redis.Stop()

	fake := startFakeMISP(misptest.GeneratedOptions{Latency: fleetLatency, Events: 3, Attributes: 2})
	defer fake.close()
	srv := fake.srv
	relays, stop, err := startFleet(o, srv.URL, redis.URL())
	if err != nil {
		return fail(err)
	}
	defer stop()
	urls := make([]string, len(relays))
	for i, r := range relays {
		urls[i] = r.srv.URL + "/observe/observables"
	}

	// Which values were asked, and by which instance (client c talks to instance c % 4): a
	// fleet without a shared cache asks MISP once per (instance, value) per TTL.
	var mu sync.Mutex
	asked := make([]bool, fleetPool)
	byInstance := make([][]bool, fleetInstances)
	for i := range byInstance {
		byInstance[i] = make([]bool, fleetPool)
	}
	var lookups atomic.Int64
	next := func(c int, rng *rand.Rand) request {
		picked := make([]int, 0, fleetPerRequest)
		for len(picked) < fleetPerRequest {
			if v := rng.IntN(fleetPool); !slices.Contains(picked, v) {
				picked = append(picked, v)
			}
		}
		values := make([]string, len(picked))
		mu.Lock()
		for k, v := range picked {
			asked[v], byInstance[c%fleetInstances][v] = true, true
			values[k] = fleetValue(10, v)
		}
		mu.Unlock()
		lookups.Add(fleetPerRequest)
		return request{body: observeBody(values...)}
	}
	lr, err := runLoad(ctx, loadSpec{
		urls: urls, token: relays[0].token, clients: fleetClients, duration: o.duration,
		next: next, check: expectCounts(fleetPerRequest, fleetPerRequest*3),
	})
	if err != nil {
		return fail(err)
	}
	res.Requests, res.Errors = lr.requests, lr.errors
	if lr.errors > 0 {
		res.Error = fmt.Sprintf("%d failed requests, the first: %s", lr.errors, lr.firstError)
	}
	res.Seconds = lr.elapsed.Seconds()
	res.RPS = float64(lr.requests) / lr.elapsed.Seconds()
	res.P50, res.P95, res.P99 = millis(percentile(lr.latencies, 0.50)), millis(percentile(lr.latencies, 0.95)), millis(percentile(lr.latencies, 0.99))
	res.PeakHeap = lr.peakHeap
	res.Upstream, res.Lookups = fake.Searches(), lookups.Load()
	if res.Lookups > 0 {
		ratio := 1 - float64(res.Upstream)/float64(res.Lookups)
		res.HitRatio = &ratio
	}
	mu.Lock()
	unique, pairs := count(asked), 0
	for _, seen := range byInstance {
		pairs += count(seen)
	}
	mu.Unlock()
	st := fleetStats(relays)
	res.Hits, res.Misses = st["relay_cache_hits_total"], st["relay_cache_misses_total"]
	perValue := float64(res.Upstream) / float64(max(unique, 1))
	res.check("MISP calls per unique value 1.0", perValue < 1.005, fmt.Sprintf("%.3f", perValue))
	res.note("%d lookups of %d distinct values on %d instances: %d MISP searches, %.3f per value; without the shared cache each instance would search each value it saw: %d searches, %.2f per value",
		res.Lookups, unique, fleetInstances, res.Upstream, perValue, pairs, float64(pairs)/float64(max(unique, 1)))
	res.note("MISP warninglist checks: %d calls for %d requests, asking about %d values, %.3f per distinct value (one call per request with values no instance had checked, for those values only; Redis holds each value's answer)",
		fake.Checks(), lr.requests+fleetClients, fake.Checked(), float64(fake.Checked())/float64(max(unique, 1)))
	timeout := "50ms (default)"
	if o.redisTimeout > 0 {
		timeout = o.redisTimeout.String()
	}
	res.note("in-process cache: %d hits, %d misses; Redis: %d hits (%d of them after waiting for another instance's MISP call), %d misses, %d errors (REDIS_TIMEOUT %s), %d fallbacks to MISP",
		res.Hits, res.Misses, st["relay_redis_hits_total"], st["relay_redis_waits_total"], st["relay_redis_misses_total"],
		st["relay_redis_errors_total"], timeout, st["relay_redis_fallbacks_total"])
	if st["relay_redis_errors_total"] > 0 {
		res.note("a lookup whose Redis operation fails (a timeout: the relays, the clients and MISP share one process and its CPUs) asks MISP rather than wait: a value may then be asked twice")
	}
	if size, n, err := entrySize(ctx, redis.Addr); err == nil && n > 0 {
		res.note("an entry in Redis takes %d bytes on average (%d sampled: 3 events of 2 attributes each, sealed); MISP's JSON answer for it is %d bytes",
			size, n, fake.AnswerSize(fleetValue(10, 0)))
	}
	if res.Error != "" {
		return []result{res}
	}
	// A fresh fleet on the same Redis and MISP: its caches and breakers owe nothing to the
	// load above.
	fresh, stopFresh, err := startFleet(o, srv.URL, redis.URL())
	if err != nil {
		hit.Error = err.Error()
		return []result{res, hit}
	}
	defer stopFresh()
	return []result{res, fleetHit(ctx, hit, fresh, fake, hitValues)}
}

// startFleet starts fleetInstances relays sharing the Redis at redisURL; stop closes them.
func startFleet(o options, mispURL, redisURL string) (relays []*relayUnderTest, stop func(), err error) {
	stop = func() {
		for _, r := range relays {
			r.close()
		}
	}
	env := map[string]string{"REDIS_URL": redisURL}
	if o.redisTimeout > 0 {
		env["REDIS_TIMEOUT"] = o.redisTimeout.String()
	}
	for range fleetInstances {
		r, err := startRelay(o.build, relayConfig{
			mispURL: mispURL, cacheTTL: time.Minute, concurrency: o.concurrency, env: env,
		})
		if err != nil {
			stop()
			return nil, nil, err
		}
		relays = append(relays, r)
	}
	return relays, stop, nil
}

// fleetHit measures lookups answered by Redis (see fleet), and for comparison the same
// requests answered by the instance's own cache.
func fleetHit(ctx context.Context, res result, relays []*relayUnderTest, fake *fakeMISP, n int) result {
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2, DisableCompression: true}, Timeout: requestTimeout}
	defer hc.CloseIdleConnections()
	var buf bytes.Buffer
	post := func(r *relayUnderTest, values ...string) error {
		if err := send(ctx, hc, r.srv.URL+"/observe/observables", r.token, observeBody(values...), &buf); err != nil {
			return err
		}
		return expectCounts(len(values), 3*len(values))(buf.Bytes())
	}
	values := make([]string, n)
	for i := range values {
		values[i] = fleetValue(11, i)
	}
	// Instance 0 asks MISP (50 values a request) and stores the answers in Redis.
	for batch := range slices.Chunk(values, 50) {
		if err := post(relays[0], batch...); err != nil {
			res.Error = "warm-up: " + err.Error()
			return res
		}
	}
	before := fleetStats(relays)
	calls := fake.Searches() + fake.Checks()
	var redisHits, localHits []time.Duration
	start := time.Now()
	for _, r := range relays[1:] {
		for _, v := range values {
			t0 := time.Now()
			if err := post(r, v); err != nil {
				res.Error = err.Error()
				return res
			}
			redisHits = append(redisHits, time.Since(t0))
		}
	}
	elapsed := time.Since(start)
	after := fleetStats(relays)
	for _, v := range values { // now in instance 1's own cache
		t0 := time.Now()
		if err := post(relays[1], v); err != nil {
			res.Error = err.Error()
			return res
		}
		localHits = append(localHits, time.Since(t0))
	}
	slices.Sort(redisHits)
	slices.Sort(localHits)
	res.Requests = len(redisHits)
	res.Seconds = elapsed.Seconds()
	res.RPS = float64(len(redisHits)) / elapsed.Seconds()
	res.P50, res.P95, res.P99 = millis(percentile(redisHits, 0.50)), millis(percentile(redisHits, 0.95)), millis(percentile(redisHits, 0.99))
	// Each request reads two entries: its value's search answer and its warninglist check.
	res.Lookups = int64(2 * len(redisHits))
	res.Upstream = fake.Searches() + fake.Checks() - calls
	res.Hits = after["relay_redis_hits_total"] - before["relay_redis_hits_total"]
	res.Misses = after["relay_redis_misses_total"] - before["relay_redis_misses_total"]
	ratio := float64(res.Hits) / float64(max(res.Lookups, 1))
	res.HitRatio = &ratio
	// A Redis operation that timed out (a starved CPU) sends its lookup to MISP: a few are
	// noted, more would make the figures those of something else.
	if missed := res.Lookups - res.Hits; missed > res.Lookups/100 {
		res.Error = fmt.Sprintf("%d of %d lookups were Redis hits and %d went to MISP: the measurement is not of Redis hits", res.Hits, res.Lookups, res.Upstream)
	} else if missed > 0 {
		res.note("%d of %d lookups were not Redis hits (%d MISP calls): a Redis operation over REDIS_TIMEOUT on a busy machine", missed, res.Lookups, res.Upstream)
	}
	res.check("Redis hit p50 < 1ms", res.P50.d() < time.Millisecond, res.P50.String())
	lp50, lp99 := percentile(localHits, 0.50), percentile(localHits, 0.99)
	res.note("the same requests answered by the instance's own cache: p50 %v, p99 %v; the Redis hits (a GET for the search, a pipelined GETRANGE for the warninglist check, opening and decoding both) add %v at p50",
		millis(lp50), millis(lp99), millis(res.P50.d()-lp50))
	res.note("hit ratio here is Redis hits / entries read (%d hits, %d misses; 2 entries a request)", res.Hits, res.Misses)
	return res
}

// entrySize is the mean size of up to 100 of the relay's entries in the Redis at addr.
func entrySize(ctx context.Context, addr string) (mean int64, n int, err error) {
	c := goredis.NewClient(&goredis.Options{Addr: addr, DisableIdentity: true})
	defer func() { _ = c.Close() }()
	keys, _, err := c.Scan(ctx, 0, "misp-relay:v4:search:*", 300).Result()
	if err != nil {
		return 0, 0, err
	}
	var total int64
	for _, k := range keys {
		if strings.HasSuffix(k, ":lock") || n == 100 {
			continue
		}
		size, err := c.StrLen(ctx, k).Result()
		if err != nil {
			return 0, 0, err
		}
		total += size
		n++
	}
	return total / int64(max(n, 1)), n, nil
}

// fleetValue is the IPv4 address number i of a scenario's block (10.block.x.y).
func fleetValue(block, i int) string {
	return "10." + strconv.Itoa(block) + "." + strconv.Itoa(i>>8) + "." + strconv.Itoa(i&0xff)
}

func count(seen []bool) int {
	n := 0
	for _, s := range seen {
		if s {
			n++
		}
	}
	return n
}

// fleetStats sums the cache metrics of the instances, read as an operator would.
func fleetStats(relays []*relayUnderTest) map[string]int64 {
	out := map[string]int64{}
	for _, r := range relays {
		rec := httptest.NewRecorder()
		r.metrics.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		for line := range strings.SplitSeq(rec.Body.String(), "\n") {
			name, value, ok := strings.Cut(line, " ")
			if !ok || !strings.HasPrefix(name, "relay_cache_") && !strings.HasPrefix(name, "relay_redis_") {
				continue
			}
			if n, err := strconv.ParseFloat(value, 64); err == nil {
				out[name] += int64(n)
			}
		}
	}
	return out
}
