package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/cache"
	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/metrics"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/service"
	"github.com/misp-relay/misp-relay/internal/urlscan"
)

// config is every setting of `relay serve`, read from the environment once at start-up.
type config struct {
	port          string
	secret        string
	apiURL        string
	uiURL         string
	mispTimeout   time.Duration
	verifyCert    bool
	caFile        string
	entitiesLimit int
	concurrency   int
	maxBodyBytes  int64
	maxObs        int
	cacheTTL      time.Duration
	cacheSize     int
	urlscanKey    string
	urlscanURL    string
	urlscanVis    string
	logLevel      slog.Level
	logFormat     string
	metricsAddr   string
	jwksHosts     []string
	audience      string
	allowedHosts  []string
	// readHeaderTimeout is not an environment setting; tests shorten it.
	readHeaderTimeout time.Duration
}

// loadConfig reads the environment. Malformed settings fail start-up with the variable's name,
// except CTR_ENTITIES_LIMIT, which falls back to 100 as the original relay's did.
func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		port:          or(getenv("PORT"), "8080"),
		secret:        getenv("SECRET_KEY"),
		apiURL:        strings.TrimSpace(getenv("API_URL")),
		uiURL:         strings.TrimSpace(getenv("MISP_UI_URL")),
		caFile:        getenv("MISP_CA_FILE"),
		entitiesLimit: service.DefaultEntitiesLimit,
		urlscanKey:    getenv("URLSCAN_API_KEY"),
		urlscanURL:    getenv("URLSCAN_API_URL"),
		urlscanVis:    or(getenv("URLSCAN_VISIBILITY"), "unlisted"),
		logFormat:     or(getenv("LOG_FORMAT"), "auto"),
		metricsAddr:   strings.TrimSpace(getenv("METRICS_ADDR")),
		jwksHosts:     auth.ParseHosts(getenv("JWKS_HOSTS")),
		audience:      strings.TrimRight(strings.TrimSpace(getenv("RELAY_AUDIENCE")), "/"),

		readHeaderTimeout: 10 * time.Second,
	}
	var err error
	if c.mispTimeout, err = duration(getenv, "MISP_TIMEOUT", 25*time.Second); err != nil {
		return c, err
	}
	if c.allowedHosts, err = allowedHosts(getenv("MISP_ALLOWED_HOSTS"), c.apiURL); err != nil {
		return c, err
	}
	if c.cacheTTL, err = durationOrZero(getenv, "CACHE_TTL", cache.DefaultTTL); err != nil {
		return c, err
	}
	if c.cacheSize, err = positive(getenv, "CACHE_SIZE", cache.DefaultSize); err != nil {
		return c, err
	}
	if c.verifyCert, err = boolean(getenv, "MISP_VERIFY_CERT", true); err != nil {
		return c, err
	}
	if n, err := strconv.Atoi(strings.TrimSpace(getenv("CTR_ENTITIES_LIMIT"))); err == nil && n > 0 {
		c.entitiesLimit = n
	}
	if c.concurrency, err = positive(getenv, "MISP_CONCURRENCY", service.DefaultConcurrency); err != nil {
		return c, err
	}
	maxBody, err := positive(getenv, "MAX_BODY_BYTES", service.DefaultMaxBodyBytes)
	if err != nil {
		return c, err
	}
	c.maxBodyBytes = int64(maxBody)
	if c.maxObs, err = positive(getenv, "MAX_OBSERVABLES", service.DefaultMaxObservables); err != nil {
		return c, err
	}
	if err := c.logLevel.UnmarshalText([]byte(or(getenv("LOG_LEVEL"), "info"))); err != nil {
		return c, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	if c.logFormat != "json" && c.logFormat != "text" && c.logFormat != "auto" {
		return c, fmt.Errorf("LOG_FORMAT must be auto, json or text, not %q", c.logFormat)
	}
	return c, nil
}

// serve is `relay serve`: it builds everything from the environment and serves until ctx ends,
// then drains in-flight requests.
func serve(ctx context.Context, _ []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stdout)
	m := metrics.New()
	handler, err := newHandler(cfg, log, m)
	if err != nil {
		return err
	}
	if getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		return serveLambda(ctx, handler, log)
	}
	// Both listeners are open before the relay says it listens, so whoever waits for that
	// line (a test, an orchestrator) can use either at once.
	ln, err := net.Listen("tcp", ":"+cfg.port)
	if err != nil {
		return fmt.Errorf("listen on port %s: %w", cfg.port, err)
	}
	var mln net.Listener
	if cfg.metricsAddr != "" {
		// A separate listener, so metrics are never exposed where XDR (or the internet) calls.
		if mln, err = net.Listen("tcp", cfg.metricsAddr); err != nil {
			_ = ln.Close()
			return fmt.Errorf("METRICS_ADDR: %w", err)
		}
		log.Info("metrics listening", "addr", mln.Addr().String())
	}
	srv := newHTTPServer(cfg, handler, log)
	errc := make(chan error, 2)
	servers := []*http.Server{srv}
	go func() { errc <- srv.Serve(ln) }()
	if mln != nil {
		msrv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, msrv)
		go func() { errc <- msrv.Serve(mln) }()
	}
	log.Info("relay listening", "addr", ln.Addr().String(), "version", version)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.mispTimeout+5*time.Second)
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

// newHTTPServer bounds what one client can hold: a slow-loris client that never finishes its
// headers is cut off after readHeaderTimeout, a slow body after ReadTimeout, and headers over
// 64 KiB (a 1 MB Authorization header, say) are refused with 431 before any handler runs.
func newHTTPServer(cfg config, handler http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.readHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		// A request may wait for MISP for up to MISP_TIMEOUT, the one retry included.
		WriteTimeout:   cfg.mispTimeout + 30*time.Second,
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// newHandler wires the service from the configuration: the token verifier, a MISP server or
// a feed directory behind API_URL, the MISPs configuration tokens name, urlscan.io, and the
// HTTP API.
func newHandler(cfg config, log *slog.Logger, m *metrics.Metrics) (http.Handler, error) {
	userAgent := "misp-relay/" + version + " (Cisco XDR relay)"
	var caches []*cache.Cache
	var cachesMu sync.Mutex
	m.WatchCache(func() (hits, misses int64) {
		cachesMu.Lock()
		defer cachesMu.Unlock()
		for _, c := range caches {
			st := c.Stats()
			hits, misses = hits+st.Hits, misses+st.Misses
		}
		return hits, misses
	})
	// One client per MISP: its connections, concurrency bound, circuit breaker, cache and
	// metrics belong to that MISP alone.
	pool := newMISPPool(cfg.allowedHosts, func(base string, named bool) (service.MISP, error) {
		client, err := misp.New(misp.Config{
			BaseURL: base,
			Timeout: cfg.mispTimeout,
			// MISP_VERIFY_CERT=false is the operator's choice for API_URL's MISP, never for a
			// MISP a token names; nor is what such a MISP answers ever quoted back.
			InsecureSkipVerify: !cfg.verifyCert && !named,
			HideAnswers:        named,
			CAFile:             cfg.caFile,
			UserAgent:          userAgent,
			MaxConcurrent:      cfg.concurrency,
			OnCall:             m.UpstreamObserver(base),
		})
		if err != nil {
			return nil, err
		}
		m.WatchBreaker(base, client.BreakerState)
		// Repeated lookups (the same pivot from several analysts, or XDR asking deliberate
		// and observe for one observable) are answered once per CACHE_TTL.
		c := cache.New(client, cache.Config{BaseURL: client.BaseURL(), TTL: cfg.cacheTTL, Size: cfg.cacheSize})
		cachesMu.Lock()
		caches = append(caches, c)
		cachesMu.Unlock()
		return c, nil
	})
	sc := service.Config{
		Version: version,
		Verifier: auth.New(auth.Config{
			Secret: cfg.secret, JWKSHosts: cfg.jwksHosts, Audience: cfg.audience, UserAgent: userAgent, Log: log,
		}),
		UIURL:          cfg.uiURL,
		MISPForHost:    pool.get,
		URLScanKey:     cfg.urlscanKey,
		EntitiesLimit:  cfg.entitiesLimit,
		Concurrency:    cfg.concurrency,
		MaxBodyBytes:   cfg.maxBodyBytes,
		MaxObservables: cfg.maxObs,
		// Answer with what was found before the server's WriteTimeout (MISP_TIMEOUT + 30s).
		RequestTimeout: cfg.mispTimeout + 20*time.Second,
		Log:            log,
		ObserveRequest: m.ObserveRequest,
	}
	switch dir, isFeed := feedDir(cfg.apiURL); {
	case cfg.apiURL == "":
		log.Warn("API_URL is not set: only configuration tokens naming a MISP HOST can be served", "allowed_hosts", strings.Join(cfg.allowedHosts, ","))
	case isFeed:
		store, err := feed.Load(dir)
		if err != nil {
			return nil, fmt.Errorf("API_URL: load MISP feed: %w", err)
		}
		sc.Feed = store
		log.Info("serving a MISP feed", "dir", dir, "events", store.Len(), "links", cfg.uiURL != "")
	default:
		base, _, err := mispBase(cfg.apiURL)
		if err != nil || !strings.Contains(cfg.apiURL, "://") {
			return nil, fmt.Errorf("API_URL %q is neither an http(s) URL nor a MISP feed directory", cfg.apiURL)
		}
		client, err := pool.add(base, false)
		if err != nil {
			return nil, fmt.Errorf("API_URL: %w", err)
		}
		sc.MISP = client
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
		Timeout:    cfg.mispTimeout,
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
	return service.NewHandler(svc)
}

// feedDir tells whether API_URL names a local MISP feed directory (a path or a file:// URL)
// rather than a MISP server.
func feedDir(apiURL string) (string, bool) {
	if strings.HasPrefix(apiURL, "http://") || strings.HasPrefix(apiURL, "https://") || apiURL == "" {
		return "", false
	}
	dir := strings.TrimPrefix(apiURL, "file://")
	if info, err := os.Stat(dir); err == nil && info.IsDir() {
		abs, err := filepath.Abs(dir)
		if err == nil {
			dir = abs
		}
		return dir, true
	}
	return "", false
}

func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.logLevel}
	if cfg.logFormat == "text" || (cfg.logFormat == "auto" && isTerminal(w)) {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// isTerminal tells whether w is a terminal, where people read logs (text) rather than a log
// pipeline (JSON).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

func or(v, def string) string {
	if strings.TrimSpace(v) == "" {
		return def
	}
	return strings.TrimSpace(v)
}

func duration(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s must be a positive Go duration such as 25s or 1m, not %q", name, v)
	}
	return d, nil
}

// durationOrZero is duration that also accepts 0 (to turn a feature off).
func durationOrZero(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	if d, err := time.ParseDuration(strings.TrimSpace(getenv(name))); err == nil && d == 0 {
		return 0, nil
	}
	if strings.TrimSpace(getenv(name)) == "0" {
		return 0, nil
	}
	return duration(getenv, name, def)
}

func boolean(getenv func(string) string, name string, def bool) (bool, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s must be true or false, not %q", name, v)
	}
	return b, nil
}

func positive(getenv func(string) string, name string, def int) (int, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s must be a positive integer, not %q", name, v)
	}
	return n, nil
}
