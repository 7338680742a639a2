// Package app wires the relay: it reads the configuration from the environment, builds every
// part (the token verifier, the MISP clients and their caches, the feed, urlscan.io, the
// service and its HTTP handler, metrics), applies the policy on which MISP hosts a tenant may
// name, and derives every server timeout from the settings in one place.
//
// It is the only package that knows all the others. It holds no request logic: a request goes
// from the handler to package service, which sees one intel.Backend per tenant. Both ways of
// serving (an HTTP listener and AWS Lambda) use the same constructor, New.
package app

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/cache"
	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/metrics"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/service"
	"github.com/misp-relay/misp-relay/internal/urlscan"
	"github.com/misp-relay/misp-relay/internal/warninglist"
)

// Version is the relay's semver, answered by /version.
const Version = "1.0.0"

// App is a wired relay, ready to serve.
type App struct {
	// Handler is the relay's API.
	Handler http.Handler
	// Metrics serves Prometheus metrics (for METRICS_ADDR, never on the API port).
	Metrics http.Handler
	// Log is the relay's logger.
	Log *slog.Logger

	cfg      config
	timeouts timeouts
	pool     *mispPool
}

// New reads the configuration with getenv and builds the relay, logging to logOut. A
// malformed setting is an error naming the variable.
func New(getenv func(string) string, logOut io.Writer) (*App, error) {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return nil, err
	}
	return build(cfg, newLogger(cfg, logOut))
}

// timeouts are every time bound of the relay, derived from MISP_TIMEOUT here and nowhere
// else, so that they nest: a request's MISP work ends before the server would drop its
// connection, and shutdown waits for a request that is still allowed to finish.
type timeouts struct {
	misp       time.Duration // one MISP call, all pages and the retry included (MISP_TIMEOUT)
	request    time.Duration // one request's MISP work; lookups not done by then are "unavailable"
	write      time.Duration // the server's WriteTimeout: the answer must be written by then
	shutdown   time.Duration // how long SIGTERM waits for in-flight requests
	read       time.Duration // reading a request body
	readHeader time.Duration // reading the headers (slow-loris bound)
	idle       time.Duration // an idle keep-alive connection
}

func deriveTimeouts(cfg config) timeouts {
	return timeouts{
		misp: cfg.mispTimeout,
		// A lookup may take MISP_TIMEOUT after waiting for a concurrency slot; 20s more
		// leaves room for the queue, and 10s after that to write what was found.
		request:    cfg.mispTimeout + 20*time.Second,
		write:      cfg.mispTimeout + 30*time.Second,
		shutdown:   cfg.mispTimeout + 5*time.Second,
		read:       30 * time.Second,
		readHeader: cfg.readHeaderTimeout,
		idle:       120 * time.Second,
	}
}

// build wires the relay from cfg: the token verifier, a MISP server or a feed directory behind
// API_URL, the MISPs configuration tokens name, urlscan.io, and the HTTP API.
func build(cfg config, log *slog.Logger) (*App, error) {
	tm := deriveTimeouts(cfg)
	paths, err := service.Routes()
	if err != nil {
		return nil, err
	}
	m := metrics.New(paths)
	userAgent := "misp-relay/" + Version + " (Cisco XDR relay)"
	// The caches' counters, summed; those of caches dropped with their MISP stay counted.
	var (
		caches                   = map[*cache.Cache]struct{}{}
		cachesMu                 sync.Mutex
		droppedHits, droppedMiss int64
	)
	m.WatchCache(func() (hits, misses int64) {
		cachesMu.Lock()
		defer cachesMu.Unlock()
		hits, misses = droppedHits, droppedMiss
		for c := range caches {
			st := c.Stats()
			hits, misses = hits+st.Hits, misses+st.Misses
		}
		return hits, misses
	})
	// One client per MISP: its connections, concurrency bound, circuit breaker, cache and
	// metrics belong to that MISP alone.
	pool := newMISPPool(cfg.allowedHosts, func(base string, kind hostKind) (pooledMISP, error) {
		named := kind != operatorHost
		// Calls still in flight when the MISP is dropped must not bring its series back.
		var dropped atomic.Bool
		observe := m.UpstreamObserver(base)
		client, err := misp.New(misp.Config{
			BaseURL: base,
			Timeout: tm.misp,
			// MISP_VERIFY_CERT=false is the operator's choice for API_URL's MISP, never for a
			// MISP a token names; nor is what such a MISP answers ever quoted back.
			InsecureSkipVerify: !cfg.verifyCert && !named,
			HideAnswers:        named,
			// MISP_ALLOWED_HOSTS=* means any public host: a token cannot make the relay
			// reach its own network (loopback, private ranges, cloud metadata).
			PublicOnly:        kind == publicHost,
			CAFile:            cfg.caFile,
			UserAgent:         userAgent,
			MaxConcurrent:     cfg.concurrency,
			MaxAnswerBytes:    cfg.maxAnswerBytes,
			MaxAttributeBytes: cfg.maxAttributeBytes,
			Log:               log,
			OnCall: func(op string, status int, d time.Duration) {
				if !dropped.Load() {
					observe(op, status, d)
				}
			},
		})
		if err != nil {
			return pooledMISP{}, err
		}
		m.WatchBreaker(base, client.BreakerState)
		// Repeated lookups (the same pivot from several analysts, or XDR asking deliberate
		// and observe for one observable) are answered once per CACHE_TTL.
		c := cache.New(client, cache.Config{BaseURL: client.BaseURL(), TTL: cfg.cacheTTL, Size: cfg.cacheSize})
		cachesMu.Lock()
		caches[c] = struct{}{}
		cachesMu.Unlock()
		release := func() {
			dropped.Store(true)
			client.CloseIdleConnections()
			m.ForgetHost(base)
			cachesMu.Lock()
			defer cachesMu.Unlock()
			st := c.Stats()
			droppedHits, droppedMiss = droppedHits+st.Hits, droppedMiss+st.Misses
			delete(caches, c)
		}
		return pooledMISP{backend: c, release: release}, nil
	})
	sc := service.Config{
		Version: Version,
		Verifier: auth.New(auth.Config{
			Secret: cfg.secret, JWKSHosts: cfg.jwksHosts, Audience: cfg.audience, UserAgent: userAgent, Log: log,
		}),
		UIURL:          cfg.uiURL,
		BackendForHost: pool.get,
		URLScanKey:     cfg.urlscanKey,
		EntitiesLimit:  cfg.entitiesLimit,
		Concurrency:    cfg.concurrency,
		MaxBodyBytes:   cfg.maxBodyBytes,
		MaxObservables: cfg.maxObs,
		MaxInFlight:    cfg.maxInFlight,
		RequestTimeout: tm.request,
		Policy:         cfg.policy,
		Log:            log,
		ObserveRequest: m.ObserveRequest,
	}
	if cfg.warninglistsDir != "" {
		lists, err := warninglist.Load(cfg.warninglistsDir)
		if err != nil {
			return nil, fmt.Errorf("WARNINGLISTS_DIR: %w", err)
		}
		for _, w := range lists.Warnings() {
			log.Warn("warninglist entry skipped", "detail", w)
		}
		sc.Warninglists = lists
		log.Info("warninglists loaded", "dir", cfg.warninglistsDir, "lists", len(lists.Lists()), "entries", lists.Entries())
	}
	switch dir, isFeed := feedDir(cfg.apiURL); {
	case cfg.apiURL == "":
		log.Warn("API_URL is not set: only configuration tokens naming a MISP HOST can be served", "allowed_hosts", strings.Join(cfg.allowedHosts, ","))
	case isFeed:
		store, err := feed.Load(dir)
		if err != nil {
			return nil, fmt.Errorf("API_URL: load MISP feed: %w", err)
		}
		sc.Backend = store
		log.Info("serving a MISP feed", "dir", dir, "events", store.Len(), "links", cfg.uiURL != "")
	default:
		base, _, err := mispBase(cfg.apiURL)
		if err != nil || !strings.Contains(cfg.apiURL, "://") {
			return nil, fmt.Errorf("API_URL %q is neither an http(s) URL nor a MISP feed directory", cfg.apiURL)
		}
		client, err := pool.add(base, operatorHost)
		if err != nil {
			return nil, fmt.Errorf("API_URL: %w", err)
		}
		sc.Backend = client
		if sc.UIURL == "" {
			sc.UIURL = base
		}
	}
	if !cfg.verifyCert {
		log.Warn("MISP_VERIFY_CERT=false: the relay does not check MISP's TLS certificate")
	}
	scanner, err := urlscan.New(urlscan.Config{
		BaseURL:    cfg.urlscanURL,
		Visibility: cfg.urlscanVis,
		Timeout:    tm.misp,
		UserAgent:  userAgent,
	})
	if err != nil {
		return nil, fmt.Errorf("URLSCAN_API_URL / URLSCAN_VISIBILITY: %w", err)
	}
	sc.Scanner = scanner
	svc, err := service.New(sc)
	if err != nil {
		return nil, err
	}
	h, err := service.NewHandler(svc)
	if err != nil {
		return nil, err
	}
	return &App{Handler: h, Metrics: m.Handler(), Log: log, cfg: cfg, timeouts: tm, pool: pool}, nil
}

// Server is the *http.Server for the API, its limits bounding what one client can hold: a
// slow-loris client that never finishes its headers is cut off after the header timeout, a
// slow body after the read timeout, and headers over 64 KiB (a 1 MB Authorization header,
// say) are refused with 431 before any handler runs.
func (a *App) Server() *http.Server {
	return &http.Server{
		Handler:           a.Handler,
		ReadHeaderTimeout: a.timeouts.readHeader,
		ReadTimeout:       a.timeouts.read,
		WriteTimeout:      a.timeouts.write,
		IdleTimeout:       a.timeouts.idle,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
	}
}
