package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/cache"
	"github.com/misp-relay/misp-relay/internal/cache/rediscache"
	"github.com/misp-relay/misp-relay/internal/cache/rediscache/redistest"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

// The fleet tests run relay instances wired as `relay serve` wires them, sharing one real
// redis-server, in front of one fake MISP that knows fleetValues.
const (
	fleetSecret  = "fleet-test-secret"
	fleetMISPKey = "FleetMispKey0123456789abcdefghijABCDEFGHI"
	// The Redis password is accepted by a server without one (its default user is nopass);
	// it is here to show that it never reaches a log line.
	fleetRedisPassword = "s3cret-redis-pass"
)

var fleetValues = func() []string {
	v := make([]string, 16)
	for i := range v {
		v[i] = "198.51.100." + strconv.Itoa(i+1)
	}
	return v
}()

// fleetEvent is one MISP event holding every fleet value.
func fleetEvent() []byte {
	var attrs []string
	for i, v := range fleetValues {
		attrs = append(attrs, fmt.Sprintf(`{"uuid":"7b1f5a2e-0000-4000-8000-%012d","type":"ip-dst","category":"Network activity","value":%q,"to_ids":true,"timestamp":"1767312001"}`, i+1, v))
	}
	return []byte(`{"Event":{"uuid":"7b1f5a2e-3c1b-4d2e-9f00-0123456789ab","info":"Fleet test campaign",
	  "date":"2026-01-02","timestamp":"1767312000","threat_level_id":"1","analysis":"2","published":true,
	  "Orgc":{"name":"CIRCL","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d210f"},
	  "Attribute":[` + strings.Join(attrs, ",") + `]}}`)
}

// fakeClock is the breaker's clock, moved by the test.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *fakeClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) add(d time.Duration) { c.ns.Add(int64(d)) }

// fleetRelay is one relay instance on a loopback listener.
type fleetRelay struct {
	srv  *httptest.Server
	app  *App
	logs *testkit.SyncBuffer
}

func startFleetRelay(t *testing.T, extra map[string]string, clock *fakeClock) *fleetRelay {
	t.Helper()
	vars := map[string]string{"SECRET_KEY": fleetSecret, "CACHE_TTL": "60s", "LOG_FORMAT": "json"}
	for k, v := range extra {
		vars[k] = v
	}
	cfg, err := loadConfig(testkit.Env(vars))
	if err != nil {
		t.Fatal(err)
	}
	if clock != nil {
		cfg.redisClock = clock.now
	}
	logs := &testkit.SyncBuffer{}
	a, err := build(cfg, newLogger(cfg, logs))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler)
	t.Cleanup(func() {
		srv.Close()
		if err := a.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &fleetRelay{srv: srv, app: a, logs: logs}
}

func fleetToken(t *testing.T, mispKey string) string {
	t.Helper()
	tok, err := auth.Sign(fleetSecret, auth.Claims{Key: mispKey})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// observeAnswer is what the fleet tests read of an observe answer.
type observeAnswer struct {
	Data struct {
		Verdicts struct {
			Count int `json:"count"`
		} `json:"verdicts"`
		Judgements struct {
			Count int `json:"count"`
		} `json:"judgements"`
	} `json:"data"`
	Errors []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

// observe asks the relay about IP values and returns its answer and how long it took.
func (r *fleetRelay) observe(t *testing.T, tok string, values ...string) (observeAnswer, time.Duration) {
	t.Helper()
	obs := make([]string, len(values))
	for i, v := range values {
		obs[i] = fmt.Sprintf(`{"type":"ip","value":%q}`, v)
	}
	req, err := http.NewRequest(http.MethodPost, r.srv.URL+"/observe/observables", strings.NewReader("["+strings.Join(obs, ",")+"]"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("observe: %d %s %v", resp.StatusCode, body, err)
	}
	var a observeAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("observe answer %s: %v", body, err)
	}
	return a, took
}

// metric reads one unlabelled metric of the relay.
func (r *fleetRelay) metric(t *testing.T, name string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	r.app.Metrics.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// searchesPerValue counts the restSearch calls MISP received, by value.
func searchesPerValue(t *testing.T, m *misptest.Server) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range m.Requests() {
		if r.Path != "/attributes/restSearch" {
			continue
		}
		values := misptest.SearchValues(&r)
		if len(values) == 0 {
			t.Fatalf("restSearch body %s: no value", r.Body)
		}
		for _, v := range values {
			out[v]++
		}
	}
	return out
}

// checkedPerValue counts how many warninglists/checkValue calls MISP received for each value.
func checkedPerValue(t *testing.T, m *misptest.Server) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range m.Requests() {
		if r.Path != "/warninglists/checkValue" {
			continue
		}
		var values []string
		if err := json.Unmarshal(r.Body, &values); err != nil {
			t.Fatalf("checkValue body %s: %v", r.Body, err)
		}
		for _, v := range values {
			out[v]++
		}
	}
	return out
}

func wantData(t *testing.T, who string, a observeAnswer, values int) {
	t.Helper()
	if a.Data.Verdicts.Count != values || len(a.Errors) != 0 {
		t.Errorf("%s: %d verdicts and errors %v, want %d verdicts and no error", who, a.Data.Verdicts.Count, a.Errors, values)
	}
}

// TestFleetSharesOneRedis is the fleet's whole story against a real redis-server: two relay
// instances ask MISP once per value between them; another API key never gets those
// answers; with Redis killed every request still answers with data, in time; with Redis
// back, hits resume.
func TestFleetSharesOneRedis(t *testing.T) {
	redis := redistest.Start(t)
	mispSrv := misptest.New(t, fleetMISPKey, fleetEvent())
	const mispLatency = 20 * time.Millisecond
	mispSrv.Delay("/attributes/restSearch", mispLatency)
	clock := newFakeClock()
	redisURL := "redis://default:" + fleetRedisPassword + "@" + redis.Addr + "/0"
	// A Redis operation of a loaded machine (make test runs packages in parallel, under the
	// race detector) can take longer than the default 50 ms, and would then count as a miss:
	// this test is about the fleet, TestHungRedisCostsAtMostItsTimeout about the bound.
	const redisTimeout = 2 * time.Second
	vars := map[string]string{"API_URL": mispSrv.URL, "REDIS_URL": redisURL, "REDIS_TIMEOUT": redisTimeout.String()}
	a := startFleetRelay(t, vars, clock)
	b := startFleetRelay(t, vars, clock)
	tok := fleetToken(t, fleetMISPKey)

	// 1. Each value reaches MISP once for both instances.
	first, second := fleetValues[0:3], fleetValues[3:6]
	ans, _ := a.observe(t, tok, first...)
	wantData(t, "a", ans, 3)
	ans, _ = b.observe(t, tok, first...)
	wantData(t, "b", ans, 3)
	ans, _ = b.observe(t, tok, second...)
	wantData(t, "b", ans, 3)
	ans, _ = a.observe(t, tok, second...)
	wantData(t, "a", ans, 3)
	calls, checks := searchesPerValue(t, mispSrv), checkedPerValue(t, mispSrv)
	for _, v := range append(first, second...) {
		if calls[v] != 1 || checks[v] != 1 {
			t.Errorf("%s reached MISP in %d searches and %d warninglist checks for two instances, want once each", v, calls[v], checks[v])
		}
	}
	if hits := a.metric(t, "relay_redis_hits_total") + b.metric(t, "relay_redis_hits_total"); hits != 12 {
		t.Errorf("%v Redis hits, want 12 (6 searches, 6 warninglist checks)", hits)
	}

	// 2. Another API key never receives the first key's answer: MISP is asked with that key
	// (and refuses it, the fake knowing only the first key).
	ans, _ = b.observe(t, fleetToken(t, "AnotherTenantKey0123456789abcdefghijABCD"), first[0])
	if ans.Data.Verdicts.Count != 0 || len(ans.Errors) == 0 || ans.Errors[0].Code != "permission denied" {
		t.Errorf("another key got %+v, want MISP's refusal", ans)
	}
	if n := searchesPerValue(t, mispSrv)[first[0]]; n != 2 {
		t.Errorf("%s reached MISP %d times, want 2 (once more, with the other key)", first[0], n)
	}

	// 3. Redis killed mid-run: every request answers with data, none taking longer than
	// Redis's timeout (twice: before and after MISP) plus the MISP call, plus a slack for a
	// busy machine; without the bound, a lookup would wait until the request's deadline
	// (MISP_TIMEOUT + 20 s).
	// Six fresh values per instance: the breaker opens at the fifth failure, a second after
	// the first.
	redis.Stop()
	const bound = 2*redisTimeout + mispLatency + 2*time.Second
	for i, v := range fleetValues[6:12] {
		for _, r := range []*fleetRelay{a, b} {
			ans, took := r.observe(t, tok, v, first[i%len(first)])
			wantData(t, "Redis down", ans, 2)
			if took > bound {
				t.Errorf("with Redis down, a request took %v, want at most %v", took, bound)
			}
		}
		if i == 0 {
			clock.add(time.Second)
		}
	}
	for name, r := range map[string]*fleetRelay{"a": a, "b": b} {
		if st := r.metric(t, "relay_redis_breaker_state"); st != 2 {
			t.Errorf("%s: breaker state %v with Redis down, want 2 (open)", name, st)
		}
		// A request's search and warninglist check read Redis at the same time: the one
		// that goes with the fifth failure may fail too before the breaker opens.
		if fb, errs := r.metric(t, "relay_redis_fallbacks_total"), r.metric(t, "relay_redis_errors_total"); fb != 12 || errs < cache.DefaultFailures || errs > cache.DefaultFailures+1 {
			t.Errorf("%s: %v fallbacks and %v errors, want 12 (every fresh search and check) and %d or %d (then the breaker opened)",
				name, fb, errs, cache.DefaultFailures, cache.DefaultFailures+1)
		}
		if n := strings.Count(r.logs.String(), "shared cache unavailable"); n != 1 {
			t.Errorf("%s: the outage was logged %d times, want once:\n%s", name, n, r.logs.String())
		}
	}

	// 4. Redis back (empty, on the same port): after the breaker's pause, one instance's MISP
	// answer is the other's hit again.
	if err := redis.Restart(); err != nil {
		t.Fatal(err)
	}
	clock.add(cache.DefaultOpenFor)
	// One request each lets the breakers probe Redis (a request's search and warninglist
	// check read it at once; while half-open, the breaker lets one of them through).
	for i, r := range []*fleetRelay{a, b} {
		ans, _ := r.observe(t, tok, fleetValues[13+i])
		wantData(t, "the probe", ans, 1)
	}
	hitsBefore := b.metric(t, "relay_redis_hits_total")
	v := fleetValues[12]
	ans, _ = a.observe(t, tok, v)
	wantData(t, "a after Redis came back", ans, 1)
	ans, _ = b.observe(t, tok, v)
	wantData(t, "b after Redis came back", ans, 1)
	if hits := b.metric(t, "relay_redis_hits_total") - hitsBefore; hits != 2 {
		t.Errorf("b: %v Redis hits after Redis came back, want 2 (the search and the check)", hits)
	}
	if n := searchesPerValue(t, mispSrv)[v]; n != 1 {
		t.Errorf("%s reached MISP %d times after Redis came back, want once", v, n)
	}
	for name, r := range map[string]*fleetRelay{"a": a, "b": b} {
		if st := r.metric(t, "relay_redis_breaker_state"); st != 0 {
			t.Errorf("%s: breaker state %v after Redis came back, want 0 (closed)", name, st)
		}
		logs := r.logs.String()
		if n := strings.Count(logs, "shared cache available again"); n != 1 {
			t.Errorf("%s: the recovery was logged %d times, want once", name, n)
		}
		for _, secret := range []string{fleetRedisPassword, fleetMISPKey, tok} {
			if strings.Contains(logs, secret) {
				t.Errorf("%s: a log line shows a secret (%.12s...)", name, secret)
			}
		}
		if !strings.Contains(logs, `"redis":"redis://default:xxxxx@`+redis.Addr+`/0"`) || !strings.Contains(logs, `"timeout":"2s"`) {
			t.Errorf("%s: the start-up line does not name Redis (redacted):\n%.1000s", name, logs)
		}
	}
}

// TestHungRedisCostsAtMostItsTimeout: a Redis that accepts connections and never answers
// (the worst case: nothing is refused) delays a lookup by REDIS_TIMEOUT, never more, until
// the breaker stops asking it.
func TestHungRedisCostsAtMostItsTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		conns.Wait()
	})
	conns.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c) // held open, never answered
			mu.Unlock()
		}
	})
	mispSrv := misptest.New(t, fleetMISPKey, fleetEvent())
	clock := newFakeClock()
	r := startFleetRelay(t, map[string]string{
		"API_URL": mispSrv.URL, "REDIS_URL": "redis://" + ln.Addr().String(), "REDIS_TIMEOUT": "100ms",
	}, clock)
	tok := fleetToken(t, fleetMISPKey)
	for i, v := range fleetValues[:8] {
		ans, took := r.observe(t, tok, v)
		wantData(t, "hung Redis", ans, 1)
		// Without the bound, the lookup would wait for Redis until the request's own
		// deadline (MISP_TIMEOUT + 20 s).
		if took > 2*time.Second {
			t.Errorf("lookup %d took %v with a hung Redis and REDIS_TIMEOUT=100ms", i, took)
		}
		if i == 0 {
			clock.add(time.Second)
		}
	}
	if n := strings.Count(r.logs.String(), "shared cache not answering at start"); n != 1 {
		t.Errorf("the start-up did not say Redis does not answer:\n%s", r.logs.String())
	}
	if fb, errs := r.metric(t, "relay_redis_fallbacks_total"), r.metric(t, "relay_redis_errors_total"); fb != 16 || errs < cache.DefaultFailures || errs > cache.DefaultFailures+1 {
		t.Errorf("%v fallbacks and %v errors, want 16 (8 searches, 8 checks) and %d or %d (then the breaker opened)",
			fb, errs, cache.DefaultFailures, cache.DefaultFailures+1)
	}
}

func TestRedisSettings(t *testing.T) {
	dir := t.TempDir()
	notPEM, caPEM := filepath.Join(dir, "not.pem"), redistest.StartTLS(t).CAFile
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"REDIS_URL": "http://cache:6379"}, "REDIS_URL"},
		{map[string]string{"REDIS_URL": "redis://user:s3cret@cache:port"}, "REDIS_URL"},
		{map[string]string{"REDIS_URL": "redis://cache:6379", "REDIS_TIMEOUT": "fast"}, "REDIS_TIMEOUT"},
		{map[string]string{"REDIS_URL": "redis://cache:6379", "REDIS_TIMEOUT": "0"}, "REDIS_TIMEOUT"},
		{map[string]string{"REDIS_URL": "redis://cache:6379", "REDIS_CLUSTER": "perhaps"}, "REDIS_CLUSTER"},
		{map[string]string{"REDIS_URL": "rediss://cache:6380", "REDIS_CA_FILE": "/no/such/ca.pem"}, "REDIS_CA_FILE"},
		{map[string]string{"REDIS_URL": "rediss://cache:6380", "REDIS_CA_FILE": notPEM}, "REDIS_CA_FILE"},
		{map[string]string{"REDIS_URL": "redis://user:s3cret@cache:6379", "REDIS_CA_FILE": caPEM}, "rediss://"},
	} {
		_, err := New(testkit.Env(tt.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err = %v, want one naming %s", tt.env, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%v: the error shows the password: %v", tt.env, err)
		}
	}
	cfg, err := loadConfig(testkit.Env(map[string]string{"REDIS_URL": " rediss://cache:6380 ", "REDIS_CLUSTER": "true", "REDIS_TIMEOUT": "20ms"}))
	if err != nil || cfg.redisURL != "rediss://cache:6380" || !cfg.redisCluster || cfg.redisTimeout != 20*time.Millisecond {
		t.Errorf("config = %q %v %v, %v", cfg.redisURL, cfg.redisCluster, cfg.redisTimeout, err)
	}
	if cfg, _ := loadConfig(testkit.Env(nil)); cfg.redisURL != "" || cfg.redisTimeout != rediscache.DefaultTimeout {
		t.Errorf("defaults: %q %v", cfg.redisURL, cfg.redisTimeout)
	}
}

// TestFleetOverTLS: two relays share a TLS-only Redis (rediss://, as ElastiCache with
// in-transit encryption) whose certificate is signed by an internal CA named in
// REDIS_CA_FILE: each value reaches MISP once for both.
func TestFleetOverTLS(t *testing.T) {
	redis := redistest.StartTLS(t)
	mispSrv := misptest.New(t, fleetMISPKey, fleetEvent())
	vars := map[string]string{
		"API_URL": mispSrv.URL, "REDIS_URL": redis.URL() + "/0", "REDIS_CA_FILE": redis.CAFile,
		"REDIS_TIMEOUT": "2s", // a TLS handshake on a loaded machine (see TestFleetSharesOneRedis)
	}
	a := startFleetRelay(t, vars, nil)
	b := startFleetRelay(t, vars, nil)
	if !strings.Contains(a.logs.String(), `"msg":"shared cache"`) {
		t.Errorf("the start-up did not reach Redis over TLS:\n%s", a.logs.String())
	}
	tok := fleetToken(t, fleetMISPKey)
	values := fleetValues[0:3]
	ans, _ := a.observe(t, tok, values...)
	wantData(t, "a", ans, 3)
	ans, _ = b.observe(t, tok, values...)
	wantData(t, "b", ans, 3)
	calls := searchesPerValue(t, mispSrv)
	for _, v := range values {
		if calls[v] != 1 {
			t.Errorf("%s reached MISP %d times for two instances over TLS, want once", v, calls[v])
		}
	}
	if hits := b.metric(t, "relay_redis_hits_total"); hits != 6 {
		t.Errorf("b: %v Redis hits, want 6 (3 searches, 3 warninglist checks)", hits)
	}
}

// TestFullRedisStillAnswers: a Redis out of memory refuses every write; lookups are answered
// by MISP all the same.
func TestFullRedisStillAnswers(t *testing.T) {
	redis := redistest.Start(t)
	admin := goredis.NewClient(&goredis.Options{Addr: redis.Addr})
	defer admin.Close()
	for _, kv := range [][2]string{{"maxmemory-policy", "noeviction"}, {"maxmemory", "1"}} {
		if err := admin.ConfigSet(context.Background(), kv[0], kv[1]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	mispSrv := misptest.New(t, fleetMISPKey, fleetEvent())
	r := startFleetRelay(t, map[string]string{"API_URL": mispSrv.URL, "REDIS_URL": redis.URL()}, nil)
	ans, _ := r.observe(t, fleetToken(t, fleetMISPKey), fleetValues[:4]...)
	wantData(t, "full Redis", ans, 4)
	if errs := r.metric(t, "relay_redis_errors_total"); errs == 0 {
		t.Error("no Redis error counted")
	}
}
