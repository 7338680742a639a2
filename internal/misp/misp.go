// Package misp is the relay's client for the parts of the MISP REST API it uses: attribute
// search, the version probe, sightings and the warninglist check. A Client implements
// intel.Backend for one MISP server; the API key is an argument of every call because the
// relay gets it from each XDR request.
//
// It owns the HTTP side of MISP: connections, the per-server concurrency bound, the circuit
// breaker, the one retry of lookups, the streaming decode of restSearch answers and the
// mapping of every failure to an *upstream.Error. It must not know about XDR, CTIM or the
// relay's caches; MISP's JSON is read with package mispjson, shared with the feed.
//
// Files: misp.go (configuration and construction), transport.go (one HTTP call: slots,
// breaker, retry), batch.go (a request's values in one restSearch, each given its own answer),
// search.go (restSearch and its streaming decode), calls.go (version and
// sightings), warninglists.go (warninglists/checkValue), tiles.go (the dashboard tiles'
// counts and event lists), errors.go (mapping answers and transport failures to errors).
package misp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/upstream"
)

// Error is a failed MISP call: every error the client returns is one, with Kind one of the
// sentinels below. Its text is meant for a SOC analyst and never holds the API key.
type Error = upstream.Error

// Sentinel kinds of failure, shared with every upstream client so one mapping serves all.
var (
	ErrPermission  = upstream.ErrPermission  // 401, 403 (and 405 on old MISP)
	ErrNotFound    = upstream.ErrNotFound    // 404: usually a wrong API_URL
	ErrRateLimited = upstream.ErrRateLimited // 429
	ErrServer      = upstream.ErrServer      // 500
	ErrUnavailable = upstream.ErrUnavailable // 502, 503, 504, timeouts, refused connections
	ErrUnexpected  = upstream.ErrUnexpected  // anything else: non-JSON, wrong shape, TLS failure
)

// Defaults of Config.
const (
	DefaultTimeout  = 25 * time.Second // the Cisco Python relay's MISP_TIMEOUT_SEC
	DefaultPageSize = 200
	DefaultMaxPages = 50 // with 200 per page: 10,000 matching attributes at most per lookup

	DefaultMaxConcurrent   = 32
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = 30 * time.Second
	// maxRetryWait is the longest a lookup waits before its one retry: MISP's 429 reset
	// beyond it is answered as too many requests rather than held.
	maxRetryWait = 2 * time.Second
)

const (
	// maxErrorBody and maxSmallBody bound how much of an error answer, and of the getVersion
	// and sightings answers, is read at all. Those answers are a few hundred bytes.
	maxErrorBody = 64 << 10
	maxSmallBody = 1 << 20
	// maxIdlePerHost keeps enough idle connections for the relay's concurrent lookups (32 by
	// default) to reuse them instead of doing a TLS handshake per lookup.
	maxIdlePerHost = 64
)

// Config configures a Client.
type Config struct {
	BaseURL string // e.g. https://misp.example (API_URL); a trailing slash is tolerated
	// Timeout bounds one client call (all pages of a Search). Default 25s when 0.
	Timeout            time.Duration
	InsecureSkipVerify bool   // MISP_VERIFY_CERT=false: for labs with self-signed certificates
	CAFile             string // extra PEM CA bundle to trust (MISP_CA_FILE), added to the system roots
	UserAgent          string // e.g. "misp-relay/1.0.0 (+XDR relay)"; "misp-relay" when empty
	PageSize           int    // attributes per restSearch page; default 200
	MaxPages           int    // pages per lookup at most; default 50

	// MaxConcurrent bounds the calls in flight to this MISP (MISP_CONCURRENCY), whatever the
	// number of relay requests, so a burst of XDR pivots cannot flood the instance. Default 32.
	MaxConcurrent int
	// BreakerFailures consecutive failures (no answer, or a 5xx) open the circuit breaker:
	// calls then fail at once with ErrUnavailable for BreakerCooldown instead of piling up
	// timeouts against a MISP that is down. Defaults 5 and 30s.
	BreakerFailures int
	BreakerCooldown time.Duration
	// OnCall, when set, observes every HTTP call (for metrics): status is 0 when MISP gave
	// no HTTP answer.
	OnCall func(op string, status int, d time.Duration)
	// HideAnswers keeps what the server sent (error messages, page titles) out of errors,
	// which then say only what happened (HTTP status, timeout). For servers named by a
	// caller rather than by the operator: their answers must not become a way to read
	// internal services through the relay.
	HideAnswers bool
	// MaxAnswerBytes bounds the decompressed bytes one lookup reads (all its pages), and
	// MaxAttributeBytes one attribute of it (MISP_MAX_ANSWER_BYTES, MISP_MAX_ATTRIBUTE_BYTES):
	// a gzip answer of a few hundred KB can inflate to gigabytes. A lookup over either cap
	// fails with ErrUnexpected. Defaults DefaultMaxAnswerBytes and DefaultMaxAttributeBytes.
	MaxAnswerBytes    int64
	MaxAttributeBytes int64
	// Log receives what HideAnswers keeps out of errors: why a call to a MISP a caller
	// named failed (never the API key). Nil discards.
	Log *slog.Logger
	// PublicOnly refuses connections to loopback, private, link-local, unique-local,
	// multicast and cloud metadata addresses, checked after DNS resolution: for MISPs a
	// caller named under MISP_ALLOWED_HOSTS=*, so the relay cannot be used to reach its own
	// network. See upstream.PublicOnly.
	PublicOnly bool
	// Transport, when set, carries the HTTP calls instead of the client's own transport (the
	// one that applies InsecureSkipVerify, CAFile, PublicOnly and the proxy settings). For
	// tests: an in-memory transport lets the client run in a testing/synctest bubble, where
	// the breaker's cool-down and the retry pauses run on a fake clock.
	Transport http.RoundTripper
}

// Client calls one MISP server. It is safe for concurrent use.
type Client struct {
	base      string // scheme://host[/path], without a trailing slash
	hc        *http.Client
	timeout   time.Duration
	userAgent string
	pageSize  int
	maxPages  int
	sem       chan struct{} // one slot per call in flight
	breaker   *gobreaker.CircuitBreaker[*http.Response]
	cooldown  time.Duration
	onCall    func(op string, status int, d time.Duration)
	hide      bool
	maxAnswer int64
	maxValue  int64
	log       *slog.Logger
}

var _ intel.Backend = (*Client)(nil)

// New checks cfg and builds a Client. Its errors name the setting that is wrong, since they
// are shown to whoever deploys the relay.
func New(cfg Config) (*Client, error) {
	base, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("misp: Timeout must not be negative, got %v", cfg.Timeout)
	case cfg.PageSize < 0:
		return nil, fmt.Errorf("misp: PageSize must not be negative, got %d", cfg.PageSize)
	case cfg.MaxPages < 0:
		return nil, fmt.Errorf("misp: MaxPages must not be negative, got %d", cfg.MaxPages)
	case cfg.MaxAnswerBytes < 0 || cfg.MaxAttributeBytes < 0:
		return nil, fmt.Errorf("misp: MaxAnswerBytes and MaxAttributeBytes must not be negative, got %d and %d", cfg.MaxAnswerBytes, cfg.MaxAttributeBytes)
	}
	if cfg.MaxAnswerBytes == 0 {
		cfg.MaxAnswerBytes = DefaultMaxAnswerBytes
	}
	if cfg.MaxAttributeBytes == 0 {
		cfg.MaxAttributeBytes = DefaultMaxAttributeBytes
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.MaxPages == 0 {
		cfg.MaxPages = DefaultMaxPages
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "misp-relay"
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.BreakerFailures <= 0 {
		cfg.BreakerFailures = DefaultBreakerFailures
	}
	if cfg.BreakerCooldown <= 0 {
		cfg.BreakerCooldown = DefaultBreakerCooldown
	}
	if cfg.OnCall == nil {
		cfg.OnCall = func(string, int, time.Duration) {}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}

	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // opt-in via MISP_VERIFY_CERT=false
	if cfg.CAFile != "" {
		pool, err := upstream.ExtraRoots(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("misp: MISP_CA_FILE: %w", err)
		}
		tlsConf.RootCAs = pool
	}

	// A redirect is never a valid MISP API answer: a redirect to /users/login means MISP did
	// not take the request as an API call, and following any redirect could send the API key
	// to another host. The 3xx is mapped to an error instead.
	hc := upstream.NewHTTPClient(tlsConf, maxIdlePerHost)
	if cfg.PublicOnly {
		upstream.PublicOnly(hc, nil)
	}
	if cfg.Transport != nil {
		hc.Transport = cfg.Transport
	}
	return &Client{
		base:      base,
		hc:        hc,
		timeout:   cfg.Timeout,
		userAgent: cfg.UserAgent,
		pageSize:  cfg.PageSize,
		maxPages:  cfg.MaxPages,
		sem:       make(chan struct{}, cfg.MaxConcurrent),
		breaker:   newBreaker(base, uint32(min(cfg.BreakerFailures, 1<<20)), cfg.BreakerCooldown), //nolint:gosec,bodyclose // bounded above; no request is made here
		cooldown:  cfg.BreakerCooldown,
		onCall:    cfg.OnCall,
		hide:      cfg.HideAnswers,
		maxAnswer: cfg.MaxAnswerBytes,
		maxValue:  cfg.MaxAttributeBytes,
		log:       cfg.Log,
	}, nil
}

// BaseURL returns the MISP base URL the client calls, without a trailing slash.
func (c *Client) BaseURL() string { return c.base }

// BreakerState is "closed", "half-open" or "open", for metrics and logs.
func (c *Client) BreakerState() string { return c.breaker.State().String() }

// CloseIdleConnections closes the client's idle connections; calls in flight finish
// normally. For a client dropped from the relay's pool of MISPs.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// Writable is true: a MISP server takes sightings (when the key's role allows it).
func (c *Client) Writable() bool { return true }

// parseBaseURL checks API_URL and returns it without a trailing slash. MISP may live under a
// path prefix (https://host/misp), so a path is kept.
func parseBaseURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", errors.New("misp: BaseURL (API_URL) is empty; set it to the MISP base URL, e.g. https://misp.example")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the input, which may hold credentials; keep only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("misp: BaseURL (API_URL) is not a valid URL: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("misp: BaseURL (API_URL) %q must start with https:// or http://", u.Redacted())
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("misp: BaseURL (API_URL) %q has no host", u.Redacted())
	case u.User != nil:
		return "", fmt.Errorf("misp: BaseURL (API_URL) %q must not contain credentials; the API key is sent per request", u.Redacted())
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "", fmt.Errorf("misp: BaseURL (API_URL) %q must not have a query or fragment", u.Redacted())
	}
	return strings.TrimRight(u.String(), "/"), nil
}
