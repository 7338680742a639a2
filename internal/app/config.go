package app

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/cache"
	"github.com/misp-relay/misp-relay/internal/cache/rediscache"
	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/httpapi"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/service"
	"github.com/misp-relay/misp-relay/internal/verdict"
	"github.com/misp-relay/misp-relay/internal/warninglist"
)

// config is every setting of `relay serve`, read from the environment once at start-up.
type config struct {
	port          string
	listenAddr    string
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
	redisURL      string
	redisCluster  bool
	redisCAFile   string
	redisTimeout  time.Duration
	urlscanKey    string
	urlscanURL    string
	urlscanVis    string
	logLevel      slog.Level
	logFormat     string
	metricsAddr   string
	jwksHosts     []string
	audience      string
	allowedHosts  []string
	maxInFlight   int
	// maxInFlightPerTenant is one tenant's (MISP host, API key) share of maxInFlight.
	maxInFlightPerTenant int
	// maxAnswerBytes and maxAttributeBytes cap what one MISP lookup, and one attribute of
	// it, may inflate to.
	maxAnswerBytes    int64
	maxAttributeBytes int64
	// policy is the verdict policy: BENIGN_TAGS, MALICIOUS_TAGS, SUSPICIOUS_TAGS and
	// TRUSTED_ORGS.
	policy verdict.Policy
	// warninglistsDir is WARNINGLISTS_DIR: the relay's own MISP warninglists; "" for none.
	warninglistsDir string
	// feeds are FEEDS: the public MISP feeds every tenant consults, in order.
	feeds []feedSpec
	// feedRefresh is FEED_REFRESH: how often each feed's manifest is asked again.
	feedRefresh time.Duration
	// feedHTTP fetches feeds; nil means the relay's usual upstream client. Not an
	// environment setting: tests trust their TLS server with it.
	feedHTTP *http.Client
	// advisory is WARNINGLISTS_ADVISORY: warninglists (a directory of WARNINGLISTS_DIR, or a
	// list's name, MISP's lists included) named in reasons but never deciding; resolved to
	// names once the lists are loaded (advisoryNames).
	advisory []string
	// readHeaderTimeout is not an environment setting; tests shorten it.
	readHeaderTimeout time.Duration
	// redisClock is the shared cache breaker's clock (nil: time.Now); tests drive it.
	redisClock func() time.Time
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

		warninglistsDir: strings.TrimSpace(getenv("WARNINGLISTS_DIR")),

		readHeaderTimeout: 10 * time.Second,
	}
	var err error
	if n, perr := strconv.Atoi(c.port); perr != nil || n < 0 || n > 65535 {
		return c, fmt.Errorf("PORT must be a TCP port number from 0 to 65535, not %q", c.port)
	}
	if c.uiURL != "" {
		if u, perr := url.Parse(c.uiURL); perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, fmt.Errorf("MISP_UI_URL must be an http(s) URL such as https://misp.example, not %q", c.uiURL)
		}
	}
	if c.metricsAddr != "" {
		if _, _, perr := net.SplitHostPort(c.metricsAddr); perr != nil {
			return c, fmt.Errorf("METRICS_ADDR must be host:port such as 127.0.0.1:9090, not %q", c.metricsAddr)
		}
	}
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
	// REDIS_URL itself is checked when the client is built (app.go), with its password hidden.
	c.redisURL = strings.TrimSpace(getenv("REDIS_URL"))
	if c.redisTimeout, err = duration(getenv, "REDIS_TIMEOUT", rediscache.DefaultTimeout); err != nil {
		return c, err
	}
	if c.redisCluster, err = boolean(getenv, "REDIS_CLUSTER", false); err != nil {
		return c, err
	}
	c.redisCAFile = strings.TrimSpace(getenv("REDIS_CA_FILE"))
	if c.verifyCert, err = boolean(getenv, "MISP_VERIFY_CERT", true); err != nil {
		return c, err
	}
	if n, err := strconv.Atoi(strings.TrimSpace(getenv("CTR_ENTITIES_LIMIT"))); err == nil && n > 0 {
		c.entitiesLimit = n
	}
	if c.concurrency, err = positive(getenv, "MISP_CONCURRENCY", misp.DefaultMaxConcurrent); err != nil {
		return c, err
	}
	maxBody, err := positive(getenv, "MAX_BODY_BYTES", httpapi.DefaultMaxBodyBytes)
	if err != nil {
		return c, err
	}
	c.maxBodyBytes = int64(maxBody)
	if c.maxObs, err = positive(getenv, "MAX_OBSERVABLES", httpapi.DefaultMaxObservables); err != nil {
		return c, err
	}
	if c.maxInFlight, err = positive(getenv, "MAX_IN_FLIGHT", httpapi.DefaultMaxInFlight); err != nil {
		return c, err
	}
	if c.maxInFlightPerTenant, err = positive(getenv, "MAX_IN_FLIGHT_PER_TENANT", httpapi.DefaultMaxInFlightPerTenant(c.maxInFlight)); err != nil {
		return c, err
	}
	if c.maxInFlightPerTenant > c.maxInFlight {
		return c, fmt.Errorf("MAX_IN_FLIGHT_PER_TENANT must be at most MAX_IN_FLIGHT (%d), not %d", c.maxInFlight, c.maxInFlightPerTenant)
	}
	if c.maxAnswerBytes, err = byteCount(getenv, "MISP_MAX_ANSWER_BYTES", misp.DefaultMaxAnswerBytes); err != nil {
		return c, err
	}
	if c.maxAttributeBytes, err = byteCount(getenv, "MISP_MAX_ATTRIBUTE_BYTES", misp.DefaultMaxAttributeBytes); err != nil {
		return c, err
	}
	c.listenAddr = strings.TrimSpace(getenv("LISTEN_ADDR"))
	if c.listenAddr == "" {
		c.listenAddr = ":" + c.port
	} else if _, _, err := net.SplitHostPort(c.listenAddr); err != nil {
		return c, fmt.Errorf("LISTEN_ADDR must be host:port (e.g. 127.0.0.1:8080 or [::]:8080), not %q", c.listenAddr)
	}
	if err := c.logLevel.UnmarshalText([]byte(or(getenv("LOG_LEVEL"), "info"))); err != nil {
		return c, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	if c.logFormat != "json" && c.logFormat != "text" && c.logFormat != "auto" {
		return c, fmt.Errorf("LOG_FORMAT must be auto, json or text, not %q", c.logFormat)
	}
	for _, t := range []struct {
		name string
		dst  *verdict.Tags
	}{{"BENIGN_TAGS", &c.policy.Benign}, {"MALICIOUS_TAGS", &c.policy.Malicious}, {"SUSPICIOUS_TAGS", &c.policy.Suspicious}} {
		if *t.dst, err = verdict.ParseTags(getenv(t.name)); err != nil {
			return c, fmt.Errorf("%s: %w", t.name, err)
		}
	}
	c.policy.TrustedOrgs = verdict.ParseOrgs(getenv("TRUSTED_ORGS"))
	c.advisory = verdict.ParseOrgs(getenv("WARNINGLISTS_ADVISORY")) // the same syntax: comma-separated names
	if c.feeds, err = parseFeeds(getenv("FEEDS")); err != nil {
		return c, err
	}
	if c.feedRefresh, err = duration(getenv, "FEED_REFRESH", feed.DefaultRefresh); err != nil {
		return c, err
	}
	if c.feedRefresh < minFeedRefresh {
		return c, fmt.Errorf("FEED_REFRESH must be at least %s (a feed's publisher is asked that often), not %q", minFeedRefresh, getenv("FEED_REFRESH"))
	}
	return c, nil
}

// feedSpec is one FEEDS entry: name=location.
type feedSpec struct {
	name     string // "circl": the source is "MISP feed circl"
	location string // an http(s) URL, a file:// URL or a directory
}

// Bounds of FEEDS and FEED_REFRESH.
const (
	maxFeeds       = 16
	minFeedRefresh = time.Minute
)

// parseFeeds reads FEEDS: comma-separated name=location entries, where a name is 1 to 32
// letters, digits, '-', '_' or '.', and a location is an https:// (or http://) URL of a MISP
// feed, a file:// URL or a directory. Each location is checked further when its feed is
// built (feed.NewSource). Blank gives no feeds.
func parseFeeds(v string) ([]feedSpec, error) {
	const example = "circl=https://www.circl.lu/doc/misp/feed-osint/"
	var out []feedSpec
	seen := map[string]bool{}
	for entry := range strings.SplitSeq(v, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, loc, ok := strings.Cut(entry, "=")
		name, loc = strings.TrimSpace(name), strings.TrimSpace(loc)
		if !ok || name == "" || loc == "" {
			return nil, fmt.Errorf("FEEDS: %q is not name=location, such as %s", redactFeed(entry), example)
		}
		if !feedName(name) {
			return nil, fmt.Errorf("FEEDS: feed name %q: use 1 to 32 letters, digits, '-', '_' or '.'", name)
		}
		if seen[strings.ToLower(name)] {
			return nil, fmt.Errorf("FEEDS: feed name %q is used twice", name)
		}
		seen[strings.ToLower(name)] = true
		if scheme, _, found := strings.Cut(loc, "://"); found && scheme != "https" && scheme != "http" && scheme != "file" {
			return nil, fmt.Errorf("FEEDS: feed %s: %q is neither an https:// URL, a file:// URL nor a directory", name, redactFeed(loc))
		}
		out = append(out, feedSpec{name: name, location: loc})
	}
	if len(out) > maxFeeds {
		return nil, fmt.Errorf("FEEDS lists %d feeds: at most %d", len(out), maxFeeds)
	}
	return out, nil
}

func feedName(s string) bool {
	if len(s) > 32 {
		return false
	}
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '-', r == '_', r == '.':
		default:
			return false
		}
	}
	return s != ""
}

// redactFeed hides the user info of a URL in an error (a feed behind basic auth).
func redactFeed(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		u.User = url.User("xxx")
		return u.String()
	}
	return s
}

// advisoryNames resolves WARNINGLISTS_ADVISORY against the relay's loaded lists: an item that
// is a list's directory (lists/<dir>/list.json) or name (any case) becomes that list's name;
// any other item is kept as a name, for MISP's own lists, and returned in unknown so that
// start-up can say it matched none of the relay's.
func advisoryNames(items []string, lists []warninglist.List) (names, unknown []string) {
	for _, item := range items {
		name, found := item, false
		for _, l := range lists {
			if strings.EqualFold(l.Dir, item) || strings.EqualFold(l.Name, item) {
				name, found = l.Name, true
				break
			}
		}
		if !found {
			unknown = append(unknown, item)
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names, unknown
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

// byteCount reads a positive number of bytes, written as digits with an optional KiB, MiB or
// GiB suffix (64MiB).
func byteCount(getenv func(string) string, name string, def int64) (int64, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def, nil
	}
	digits, unit := v, int64(1)
	for suffix, mult := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if d, ok := strings.CutSuffix(v, suffix); ok {
			digits, unit = strings.TrimSpace(d), mult
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/unit {
		return 0, fmt.Errorf("%s must be a positive number of bytes such as 1048576 or 1MiB, not %q", name, v)
	}
	return n * unit, nil
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
