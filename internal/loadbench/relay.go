package loadbench

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
)

// The relay's credentials in every scenario. They are made up: nothing leaves loopback.
const (
	benchSecret  = "relaybench-secret-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ" //nolint:gosec // made up, for a loopback benchmark
	benchMISPKey = "RelayBenchMispKey0123456789abcdefghijABCD"
)

// relayConfig is what a scenario varies; everything else has `relay serve`'s defaults.
type relayConfig struct {
	mispURL       string
	cacheTTL      time.Duration     // CACHE_TTL; 0 turns caching off
	entitiesLimit int               // CTR_ENTITIES_LIMIT; 0 means the default (100)
	concurrency   int               // MISP_CONCURRENCY; 0 means the default (32)
	env           map[string]string // more settings (the fleet's REDIS_URL)
}

// Build makes the relay's API handler and its metrics handler from environment variables,
// exactly as `relay serve` does (cmd/relaybench passes internal/app's wiring), so the benchmark measures
// the relay users run.
type Build func(env map[string]string) (api, metrics http.Handler, err error)

// relayUnderTest is one in-process relay on a loopback listener.
type relayUnderTest struct {
	srv     *httptest.Server
	metrics http.Handler
	token   string // a valid JWT for benchMISPKey, sent as "Authorization: Bearer <token>"
}

// startRelay builds the relay with `relay serve`'s wiring from the scenario's settings, and
// serves it with serve's timeouts on 127.0.0.1. Its JSON request log is formatted (the real
// relay pays for it) and discarded. The relay's goroutines are labelled partRelay.
func startRelay(build Build, rc relayConfig) (r *relayUnderTest, err error) {
	withPart(context.Background(), partRelay, func(context.Context) { r, err = startRelayLabelled(build, rc) })
	return r, err
}

func startRelayLabelled(build Build, rc relayConfig) (*relayUnderTest, error) {
	env := map[string]string{
		"API_URL":    rc.mispURL,
		"SECRET_KEY": benchSecret,
		"CACHE_TTL":  "0",
		"LOG_FORMAT": "json",
	}
	if rc.cacheTTL > 0 {
		env["CACHE_TTL"] = rc.cacheTTL.String()
	}
	if rc.entitiesLimit > 0 {
		env["CTR_ENTITIES_LIMIT"] = strconv.Itoa(rc.entitiesLimit)
	}
	if rc.concurrency > 0 {
		env["MISP_CONCURRENCY"] = strconv.Itoa(rc.concurrency)
	}
	maps.Copy(env, rc.env)
	handler, metricsHandler, err := build(env)
	if err != nil {
		return nil, fmt.Errorf("build the relay: %w", err)
	}
	token, err := auth.Sign(benchSecret, auth.Claims{Key: benchMISPKey})
	if err != nil {
		return nil, fmt.Errorf("sign the JWT: %w", err)
	}
	srv := httptest.NewUnstartedServer(handler) // listens on 127.0.0.1
	srv.Config.ReadHeaderTimeout = 10 * time.Second
	srv.Config.ReadTimeout = 30 * time.Second
	srv.Config.WriteTimeout = misp.DefaultTimeout + 30*time.Second
	srv.Config.IdleTimeout = 120 * time.Second
	srv.Config.MaxHeaderBytes = 64 << 10
	srv.Start()
	return &relayUnderTest{srv: srv, metrics: metricsHandler, token: token}, nil
}

// cacheStats reads the relay's cache counters from its Prometheus metrics, as an operator
// would.
func (r *relayUnderTest) cacheStats() (hits, misses int64) {
	rec := httptest.NewRecorder()
	r.metrics.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case "relay_cache_hits_total":
			hits = int64(n)
		case "relay_cache_misses_total":
			misses = int64(n)
		}
	}
	return hits, misses
}

func (r *relayUnderTest) close() { r.srv.Close() }

// fakeMISP is the MISP the relay under test talks to: misptest.Generated, served on
// 127.0.0.1, counting the connections the relay opens (a relay that cannot reuse its
// connections to MISP pays a TCP handshake, a TLS one in production, per lookup).
type fakeMISP struct {
	*misptest.Generated
	srv   *httptest.Server
	conns atomic.Int64
}

// startFakeMISP serves a Generated MISP answering as o says, with the relay's key. Its
// goroutines are labelled partMISP.
func startFakeMISP(o misptest.GeneratedOptions) *fakeMISP {
	o.Key = benchMISPKey
	f := &fakeMISP{Generated: misptest.NewGenerated(o)}
	f.srv = httptest.NewUnstartedServer(f.Generated)
	f.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	withPart(context.Background(), partMISP, func(context.Context) { f.srv.Start() })
	return f
}

func (f *fakeMISP) close() { f.srv.Close() }
