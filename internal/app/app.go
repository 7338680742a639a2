// Package app wires the relay: it reads the configuration from the environment, builds every
// part (the token verifier, the MISP clients and their caches, API_URL's feed, the public
// feeds of FEEDS loading in the background, urlscan.io, the service and its HTTP handler,
// metrics), applies the policy on which MISP hosts a tenant may name (each of a token's up to
// five), lists a tenant's sources (Sources), and derives every server timeout from the
// settings in one place.
//
// It is the only package that knows all the others. It holds no request logic: a request goes
// from the handler to package service, which sees one intel.Backend per tenant. Both ways of
// serving (an HTTP listener and AWS Lambda) use the same constructor, New.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/cache"
	"github.com/misp-relay/misp-relay/internal/cache/rediscache"
	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/httpapi"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/metrics"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/service"
	"github.com/misp-relay/misp-relay/internal/tiles"
	"github.com/misp-relay/misp-relay/internal/upstream"
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
	closers  []func() error // what Close releases
	// own is API_URL's MISP or feed (Backend nil without API_URL), ownBase its base URL
	// (the directory for a feed); feeds are FEEDS'. See Sources.
	own     intel.Source
	ownBase string
	feeds   []*feed.Source
}

// Close releases what the relay holds besides its listeners (the Redis connections).
func (a *App) Close() error {
	var errs []error
	for _, c := range a.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
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

// Run is `relay serve`: it builds the relay from the environment and serves until ctx ends,
// then drains in-flight requests. Under AWS Lambda (AWS_LAMBDA_RUNTIME_API set) it answers
// Lambda invocations instead of listening.
func Run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	a, err := New(getenv, stdout)
	if err != nil {
		return err
	}
	defer func() { _ = a.Close() }()
	if getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		return serveLambda(ctx, a.Handler, a.Log)
	}
	return a.listenAndServe(ctx)
}

// listenAndServe serves the API on LISTEN_ADDR (:PORT by default) and metrics on
// METRICS_ADDR until ctx ends.
func (a *App) listenAndServe(ctx context.Context) error {
	log := a.Log
	// Both listeners are open before the relay says it listens, so whoever waits for that
	// line (a test, an orchestrator) can use either at once.
	ln, err := net.Listen("tcp", a.cfg.listenAddr)
	if err != nil {
		return fmt.Errorf("LISTEN_ADDR / PORT: listen on %s: %w", a.cfg.listenAddr, err)
	}
	var mln net.Listener
	if a.cfg.metricsAddr != "" {
		// A separate listener, so metrics are never exposed where XDR (or the internet) calls.
		if mln, err = net.Listen("tcp", a.cfg.metricsAddr); err != nil {
			_ = ln.Close()
			return fmt.Errorf("METRICS_ADDR: %w", err)
		}
		log.Info("metrics listening", "addr", mln.Addr().String())
	}
	srv := a.Server()
	errc := make(chan error, 2)
	servers := []*http.Server{srv}
	go func() { errc <- srv.Serve(ln) }()
	if mln != nil {
		msrv := &http.Server{Handler: a.Metrics, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, msrv)
		go func() { errc <- msrv.Serve(mln) }()
	}
	log.Info("relay listening", "addr", ln.Addr().String(), "version", Version)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), a.timeouts.shutdown)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(shutdownCtx); err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
	}
	for range servers {
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	return nil
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
func build(cfg config, log *slog.Logger) (_ *App, err error) {
	tm := deriveTimeouts(cfg)
	paths, err := httpapi.Routes()
	if err != nil {
		return nil, err
	}
	m := metrics.New(paths)
	userAgent := "misp-relay/" + Version + " (Cisco XDR relay)"
	var closers []func() error
	defer func() {
		if err != nil {
			for _, c := range closers {
				_ = c()
			}
		}
	}()
	shared, closeShared, err := sharedCache(cfg, tm, m, log)
	if err != nil {
		return nil, err
	}
	if closeShared != nil {
		closers = append(closers, closeShared)
	}
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
		// With REDIS_URL, a miss goes to the fleet's shared cache before MISP.
		c := cache.New(client, cache.Config{BaseURL: client.BaseURL(), TTL: cfg.cacheTTL, Size: cfg.cacheSize, Shared: shared})
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
		Version:       Version,
		UIURL:         cfg.uiURL,
		URLScanKey:    cfg.urlscanKey,
		EntitiesLimit: cfg.entitiesLimit,
		Policy:        cfg.policy,
		Log:           log,
		// Dashboard tiles, each answer served again to its tenant for tiles.DefaultTTL.
		Tiles: tiles.NewBoard(tiles.BoardConfig{}),
	}
	hc := httpapi.Config{
		Verifier: auth.New(auth.Config{
			Secret: cfg.secret, JWKSHosts: cfg.jwksHosts, Audience: cfg.audience, UserAgent: userAgent, Log: log,
		}),
		MaxBodyBytes:   cfg.maxBodyBytes,
		MaxObservables: cfg.maxObs,
		MaxInFlight:    cfg.maxInFlight,
		// MaxInFlight's share for one tenant (MISP host, API key).
		MaxInFlightPerTenant: cfg.maxInFlightPerTenant,
		RequestTimeout:       tm.request,
		Log:                  log,
		ObserveRequest:       m.ObserveRequest,
	}
	var lists *warninglist.Set
	if cfg.warninglistsDir != "" {
		var err error
		lists, err = warninglist.Load(cfg.warninglistsDir)
		if err != nil {
			return nil, fmt.Errorf("WARNINGLISTS_DIR: %w", err)
		}
		for _, w := range lists.Warnings() {
			log.Warn("warninglist entry skipped", "detail", w)
		}
		sc.Warninglists = lists
		log.Info("warninglists loaded", "dir", cfg.warninglistsDir, "lists", len(lists.Lists()), "entries", lists.Entries())
	}
	if len(cfg.advisory) > 0 {
		var loaded []warninglist.List
		if lists != nil {
			loaded = lists.Lists()
		}
		names, unknown := advisoryNames(cfg.advisory, loaded)
		sc.Policy.Advisory = names
		log.Info("advisory warninglists: named in reasons, never deciding", "lists", strings.Join(names, "; "))
		if len(unknown) > 0 {
			log.Warn("WARNINGLISTS_ADVISORY names lists WARNINGLISTS_DIR does not hold; they apply to MISP's lists of those names",
				"names", strings.Join(unknown, "; "))
		}
	}
	feeds, stopFeeds, err := startFeeds(cfg, userAgent, log)
	if err != nil {
		return nil, err
	}
	closers = append(closers, stopFeeds)
	if len(feeds) > 0 {
		sc.FeedStates = func() []service.FeedState { return feedStates(feeds) }
	}
	var own intel.Source
	var ownBase string
	switch dir, isFeed := feedDir(cfg.apiURL); {
	case cfg.apiURL == "":
		log.Warn("API_URL is not set: only configuration tokens naming a MISP HOST can be served", "allowed_hosts", strings.Join(cfg.allowedHosts, ","))
	case isFeed:
		store, err := feed.Load(dir)
		if err != nil {
			return nil, fmt.Errorf("API_URL: load MISP feed: %w", err)
		}
		sc.Backend = store
		own, ownBase = intel.Source{Name: "MISP feed", Backend: store, UI: cfg.uiURL}, dir
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
		_, hostport, _ := mispBase(base)
		own, ownBase = intel.Source{Name: "MISP " + hostport, Backend: client, UI: sc.UIURL}, base
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
	a := &App{Metrics: m.Handler(), Log: log, cfg: cfg, timeouts: tm, pool: pool, closers: closers, own: own, ownBase: ownBase, feeds: feeds}
	sc.Sources = a.Sources
	svc, err := service.New(sc)
	if err != nil {
		return nil, err
	}
	h, err := httpapi.NewHandler(svc, hc)
	if err != nil {
		return nil, err
	}
	a.Handler = h
	return a, nil
}

// warmTimeout bounds the start-up's wait for Redis.
const warmTimeout = time.Second

// sharedCache builds the second-level cache that relay instances share, when REDIS_URL is
// set: one Redis client and one breaker for every MISP's cache (entries are keyed per MISP
// and API key). closeFn releases the client. A Redis that is down does not stop the relay,
// whose lookups then go to MISP.
func sharedCache(cfg config, tm timeouts, m *metrics.Metrics, log *slog.Logger) (shared *cache.Shared, closeFn func() error, err error) {
	if cfg.redisURL == "" {
		return nil, nil, nil
	}
	rc := rediscache.Config{URL: cfg.redisURL, Cluster: cfg.redisCluster, Timeout: cfg.redisTimeout}
	if cfg.redisCAFile != "" {
		if rc.RootCAs, err = upstream.ExtraRoots(cfg.redisCAFile); err != nil {
			return nil, nil, fmt.Errorf("REDIS_CA_FILE: %w", err)
		}
	}
	store, err := rediscache.New(rc)
	if err != nil {
		return nil, nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	name := rediscache.Redact(cfg.redisURL)
	if cfg.cacheTTL == 0 {
		log.Warn("REDIS_URL is set but CACHE_TTL=0 turns caching off: the shared cache is not used", "redis", name)
		return nil, store.Close, nil
	}
	shared = cache.NewShared(store, cache.SharedConfig{
		Timeout: cfg.redisTimeout,
		// An instance asking MISP holds the lookup for as long as its call may take, up to
		// the cache's default lease: others wait for its answer rather than ask too.
		Lease: min(tm.misp, cache.DefaultLease),
		Name:  name,
		Log:   log,
		Now:   cfg.redisClock,
	})
	m.WatchSharedCache(func() metrics.SharedCacheStats {
		st := shared.Stats()
		return metrics.SharedCacheStats{
			Hits: st.Hits, Misses: st.Misses, Errors: st.Errors,
			Fallbacks: st.Fallbacks, Skipped: st.Skipped, Waits: st.Waits,
		}
	}, shared.BreakerState)
	// Connections opened now are ready for the first lookups (on Lambda, opened during the
	// function's initialisation). A Redis that does not answer is only logged: lookups go to
	// MISP until it does.
	ctx, cancel := context.WithTimeout(context.Background(), warmTimeout)
	defer cancel()
	if err := store.Warm(ctx); err != nil {
		log.Warn("shared cache not answering at start: lookups go to MISP until it does", "redis", name, "error", err)
	} else {
		log.Info("shared cache", "redis", name, "cluster", cfg.redisCluster, "timeout", cfg.redisTimeout.String())
	}
	return shared, store.Close, nil
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
