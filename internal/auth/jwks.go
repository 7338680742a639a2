package auth

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// JWKS fetching and caching bounds.
const (
	jwksPath = "/.well-known/jwks"
	// maxJWKSBytes bounds a JWKS document: XDR's hold a handful of keys (a few KB).
	maxJWKSBytes = 256 << 10
	// A JWKS is kept for its Cache-Control max-age, within these bounds: at least a minute so
	// that "no-cache" cannot turn every request into a fetch, at most a day so that a revoked
	// key does not live for ever.
	defaultJWKSMaxAge = 10 * time.Minute
	minJWKSMaxAge     = time.Minute
	maxJWKSMaxAge     = 24 * time.Hour
	// maxStale is how long after its expiry a key set is still used when fetching a new one
	// fails: an outage of the JWKS host should not lock every analyst out at once.
	maxStale = 24 * time.Hour
	// failureBackoff is the least time between two fetches after a failed one (or
	// RefreshInterval when shorter), so that requests do not each wait for a dead host.
	failureBackoff = 5 * time.Second
	// minRSABits refuses weak keys: XDR's are 2048 bits.
	minRSABits = 2048
	maxRSABits = 8192
)

// keySet is one fetched JWKS: the usable RSA signing keys by kid.
type keySet struct {
	keys    map[string]*rsa.PublicKey
	fetched time.Time
	expires time.Time
}

// hostState is what the cache knows about one JWKS host.
type hostState struct {
	set     *keySet   // the last key set fetched, nil before the first success
	attempt time.Time // when the last fetch ended
	gen     uint64    // number of fetches so far, to tell whether another caller refreshed
	err     error     // the last fetch's error; nil when it succeeded
}

// keyCache holds the JWKS of each allowed host. Only allow-listed hosts ever get an entry,
// so the map is bounded by the configuration.
type keyCache struct {
	client    *http.Client
	timeout   time.Duration
	refresh   time.Duration
	userAgent string
	log       *slog.Logger
	now       func() time.Time
	group     singleflight.Group

	mu    sync.Mutex
	hosts map[string]hostState
}

func newKeyCache(cfg Config) *keyCache {
	client := *cfg.HTTPClient
	if client.CheckRedirect == nil {
		// The JWKS must stay on HTTPS: a redirect to http:// would let anyone on the path
		// substitute keys.
		client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "https" {
				return errors.New("redirect away from https refused")
			}
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			return nil
		}
	}
	return &keyCache{
		client:    &client,
		timeout:   cfg.FetchTimeout,
		refresh:   cfg.RefreshInterval,
		userAgent: cfg.UserAgent,
		log:       cfg.Log,
		now:       cfg.Now,
		hosts:     map[string]hostState{},
	}
}

// fetchError is a failed JWKS fetch: cause is short and safe to show the caller, err is
// logged.
type fetchError struct {
	host, cause string
	err         error
}

func (e *fetchError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("fetch the JWKS from %s: %s", e.host, e.cause)
	}
	return fmt.Sprintf("fetch the JWKS from %s: %s: %v", e.host, e.cause, e.err)
}

func (e *fetchError) Unwrap() error { return e.err }

func (e *fetchError) authError() *Error {
	return &Error{fmt.Sprintf("Failed to fetch the JWKS from %s: %s", e.host, e.cause)}
}

// key returns the signing key kid of host's JWKS, fetching the JWKS when it is not cached or
// has expired, and refetching it once per RefreshInterval for an unknown kid (keys rotate).
// Its errors are *Error.
func (c *keyCache) key(ctx context.Context, host, kid string) (*rsa.PublicKey, error) {
	now := c.now()
	c.mu.Lock()
	st := c.hosts[host]
	c.mu.Unlock()

	switch {
	case st.set != nil && now.Before(st.set.expires):
		if k := st.set.keys[kid]; k != nil {
			return k, nil
		}
		if now.Sub(st.attempt) < c.refresh {
			return nil, &Error{ReasonKIDNotFound}
		}
	case st.err != nil && now.Sub(st.attempt) < min(c.refresh, failureBackoff):
		return c.stale(st, kid, now, st.err)
	}

	st, err := c.fetchShared(ctx, host, st.gen)
	if err != nil {
		return c.stale(st, kid, now, err)
	}
	if k := st.set.keys[kid]; k != nil {
		return k, nil
	}
	return nil, &Error{ReasonKIDNotFound}
}

// stale answers from an expired key set when a fetch failed, within maxStale.
func (c *keyCache) stale(st hostState, kid string, now time.Time, err error) (*rsa.PublicKey, error) {
	if st.set != nil && now.Before(st.set.expires.Add(maxStale)) {
		if k := st.set.keys[kid]; k != nil {
			return k, nil
		}
	}
	var fe *fetchError
	if errors.As(err, &fe) {
		return nil, fe.authError()
	}
	return nil, &Error{"Failed to fetch the JWKS"}
}

// fetchShared fetches host's JWKS once for every caller that asks at the same time, unless a
// fetch ended since the caller looked (seenGen), and records the outcome.
func (c *keyCache) fetchShared(ctx context.Context, host string, seenGen uint64) (hostState, error) {
	ch := c.group.DoChan(host, func() (any, error) {
		c.mu.Lock()
		st := c.hosts[host]
		c.mu.Unlock()
		if st.gen != seenGen {
			return st, st.err
		}
		// The fetch outlives a caller that gives up: others may be waiting for it.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		defer cancel()
		set, err := c.fetch(fctx, host)
		if err != nil {
			c.log.Warn("JWKS fetch failed", "jwks_host", host, "err", err)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		st = c.hosts[host]
		st.gen++
		st.attempt = c.now()
		st.err = err
		if err == nil {
			st.set = set
		}
		c.hosts[host] = st
		return st, err
	})
	select {
	case res := <-ch:
		st, _ := res.Val.(hostState)
		return st, res.Err
	case <-ctx.Done():
		c.mu.Lock()
		st := c.hosts[host]
		c.mu.Unlock()
		return st, &fetchError{host: host, cause: "the request was cancelled", err: ctx.Err()}
	}
}

// fetch GETs https://<host>/.well-known/jwks.
func (c *keyCache) fetch(ctx context.Context, host string) (*keySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+jwksPath, nil)
	if err != nil {
		return nil, &fetchError{host: host, cause: "invalid host", err: err}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.client.Do(req)
	if err != nil {
		cause := "unreachable"
		if errors.Is(err, context.DeadlineExceeded) {
			cause = "timed out"
		}
		return nil, &fetchError{host: host, cause: cause, err: err}
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, &fetchError{host: host, cause: "HTTP " + strconv.Itoa(resp.StatusCode)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		cause := "unreadable answer"
		if errors.Is(err, context.DeadlineExceeded) {
			cause = "timed out"
		}
		return nil, &fetchError{host: host, cause: cause, err: err}
	}
	if len(body) > maxJWKSBytes {
		return nil, &fetchError{host: host, cause: "answer too large"}
	}
	keys, skipped, err := parseJWKS(body)
	if err != nil {
		return nil, &fetchError{host: host, cause: "not a JWK set", err: err}
	}
	if skipped > 0 {
		c.log.Debug("JWKS keys skipped (not RSA signing keys, or malformed)", "jwks_host", host, "skipped", skipped)
	}
	now := c.now()
	return &keySet{keys: keys, fetched: now, expires: now.Add(maxAge(resp.Header.Values("Cache-Control")))}, nil
}

// jwk is the part of a JSON Web Key (RFC 7517/7518) an RS256 verifier needs.
type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// parseJWKS returns the usable keys of a JWKS document: RSA keys with a kid, for signatures
// (use "sig" or absent) and RS256 (alg absent or RS256). Other keys are skipped and counted;
// a document without a "keys" list is an error. The first key of a kid wins.
func parseJWKS(body []byte) (map[string]*rsa.PublicKey, int, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, 0, fmt.Errorf("decode JWKS: %w", err)
	}
	if doc.Keys == nil {
		return nil, 0, errors.New(`the JWKS has no "keys" list`)
	}
	keys := map[string]*rsa.PublicKey{}
	skipped := 0
	for _, raw := range doc.Keys {
		var k jwk
		if json.Unmarshal(raw, &k) != nil || k.Kty != "RSA" || k.Kid == "" ||
			(k.Use != "" && k.Use != "sig") || (k.Alg != "" && k.Alg != algRS256) {
			skipped++
			continue
		}
		pub, err := rsaPublicKey(k.N, k.E)
		if err != nil {
			skipped++
			continue
		}
		if _, dup := keys[k.Kid]; !dup {
			keys[k.Kid] = pub
		}
	}
	return keys, skipped, nil
}

// rsaPublicKey builds a key from the JWK's base64url modulus and exponent.
func rsaPublicKey(n64, e64 string) (*rsa.PublicKey, error) {
	nb, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(n64, "="))
	if err != nil {
		return nil, fmt.Errorf("modulus: %w", err)
	}
	eb, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(e64, "="))
	if err != nil {
		return nil, fmt.Errorf("exponent: %w", err)
	}
	n := new(big.Int).SetBytes(nb)
	if bits := n.BitLen(); bits < minRSABits || bits > maxRSABits {
		return nil, fmt.Errorf("modulus of %d bits", bits)
	}
	e := new(big.Int).SetBytes(eb)
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
		return nil, errors.New("bad exponent")
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

// maxAge is how long a JWKS answer may be kept, from its Cache-Control headers.
func maxAge(cacheControl []string) time.Duration {
	age := defaultJWKSMaxAge
	for _, value := range cacheControl {
		for _, directive := range strings.Split(value, ",") {
			name, arg, _ := strings.Cut(strings.TrimSpace(directive), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return minJWKSMaxAge
			case "max-age":
				secs, err := strconv.ParseInt(strings.Trim(arg, `"`), 10, 64)
				if err != nil || secs < 0 {
					continue
				}
				age = time.Duration(min(secs, int64(maxJWKSMaxAge/time.Second))) * time.Second
			}
		}
	}
	return min(max(age, minJWKSMaxAge), maxJWKSMaxAge)
}
