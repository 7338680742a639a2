package loadbench

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/cache"
	"github.com/misp-relay/misp-relay/internal/metrics"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/service"
	"github.com/misp-relay/misp-relay/internal/urlscan"
)

// The relay's credentials in every scenario. They are made up: nothing leaves loopback.
const (
	benchSecret  = "relaybench-secret-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ" //nolint:gosec // made up, for a loopback benchmark
	benchMISPKey = "RelayBenchMispKey0123456789abcdefghijABCD"
	benchVersion = "relaybench"
)

// relayConfig is what a scenario varies; everything else has `relay serve`'s defaults.
type relayConfig struct {
	mispURL       string
	cacheTTL      time.Duration // CACHE_TTL; 0 turns caching off
	entitiesLimit int           // CTR_ENTITIES_LIMIT; 0 means the default (100)
	concurrency   int           // MISP_CONCURRENCY; 0 means the default (32)
}

// relayUnderTest is one in-process relay on a loopback listener.
type relayUnderTest struct {
	srv   *httptest.Server
	cache *cache.Cache
	token string // a valid JWT for benchMISPKey, sent as "Authorization: Bearer <token>"
}

// startRelay builds the relay the way cmd/relay's newHandler does for a MISP server (that
// code is in package main, so it is repeated here rather than imported): misp.New with the
// Prometheus upstream observer, cache.New in front of it, service.New with the request
// observer, service.NewHandler; with the defaults of `relay serve` and its JSON request log at
// info level (written to io.Discard, but formatted, since the real relay pays for it), served
// with serve's timeouts on 127.0.0.1. The metrics are collected but never scraped.
func startRelay(rc relayConfig) (*relayUnderTest, error) {
	const userAgent = "misp-relay/" + benchVersion + " (Cisco XDR relay)"
	log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	concurrency := rc.concurrency
	if concurrency <= 0 {
		concurrency = service.DefaultConcurrency
	}
	m := metrics.New()
	host := strings.TrimPrefix(rc.mispURL, "http://") // the fake's URL is http://127.0.0.1:port
	client, err := misp.New(misp.Config{
		BaseURL:       rc.mispURL,
		Timeout:       misp.DefaultTimeout,
		UserAgent:     userAgent,
		MaxConcurrent: concurrency,
		OnCall:        m.UpstreamObserver(host),
	})
	if err != nil {
		return nil, fmt.Errorf("misp client: %w", err)
	}
	m.WatchBreaker(host, client.BreakerState)
	c := cache.New(client, cache.Config{BaseURL: client.BaseURL(), TTL: rc.cacheTTL, Size: cache.DefaultSize})
	m.WatchCache(func() (int64, int64) { st := c.Stats(); return st.Hits, st.Misses })
	scanner, err := urlscan.New(urlscan.Config{Visibility: "unlisted", Timeout: misp.DefaultTimeout, UserAgent: userAgent})
	if err != nil {
		return nil, fmt.Errorf("urlscan client: %w", err)
	}
	svc, err := service.New(service.Config{
		Version:        benchVersion,
		Secret:         benchSecret,
		MISP:           c,
		UIURL:          client.BaseURL(),
		Scanner:        scanner,
		EntitiesLimit:  rc.entitiesLimit,
		Concurrency:    concurrency,
		MaxBodyBytes:   service.DefaultMaxBodyBytes,
		MaxObservables: service.DefaultMaxObservables,
		Log:            log,
		ObserveRequest: m.ObserveRequest,
	})
	if err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	handler, err := service.NewHandler(svc)
	if err != nil {
		return nil, fmt.Errorf("handler: %w", err)
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
	return &relayUnderTest{srv: srv, cache: c, token: token}, nil
}

func (r *relayUnderTest) close() { r.srv.Close() }

// startFakeMISP serves f on 127.0.0.1, counting the connections the relay opens: a relay
// that cannot reuse its connections to MISP pays a TCP handshake (a TLS one in production)
// per lookup.
func startFakeMISP(f *fakeMISP) *httptest.Server {
	f.key = benchMISPKey
	srv := httptest.NewUnstartedServer(f)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	srv.Start()
	return srv
}
