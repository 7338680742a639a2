// Package auth verifies the relay's bearer tokens. Two kinds are accepted, told apart by the
// token's "alg" header:
//
//   - HS256 JWTs signed with SECRET_KEY (the generic relay module: `relay jwt` makes them),
//     whose payload carries the caller's MISP API key and optionally a urlscan.io key;
//   - RS256 "configuration tokens" that XDR signs itself for a module defined by a
//     module_type.json, whose payload carries the module's configuration (MISP URL, API key,
//     entities limit) and whose keys XDR publishes at https://<jwks_host>/.well-known/jwks.
//
// The messages are those of Cisco's XDR relays, so XDR shows analysts what they are used to.
// It only verifies and extracts claims: it must not decide which MISP a tenant may reach (the
// app's host policy does) nor put a token or key in an error or a log line.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenBytes bounds the token the relay will parse. Real tokens are a few hundred bytes;
// anything far larger is refused before any base64 or JSON work is done.
const MaxTokenBytes = 16 << 10

// Claims are what a verified token grants.
type Claims struct {
	Key        string // MISP API key (claim "key"; "AuthKey" in configuration tokens)
	URLScanKey string // urlscan.io API key (claim "urlscan_key"; "URLSCAN_KEY" in configuration tokens), "" when absent
	// Host is the MISP base URL the module was configured with (claim "HOST" of a
	// configuration token). It is "" for HS256 tokens: the relay's API_URL applies then.
	Host string
	// EntitiesLimit is the module's CTR_ENTITIES_LIMIT claim, or 0 when it is absent or not a
	// positive integer (the relay's own default applies then). See entitiesLimit for the rules.
	EntitiesLimit int
	// OtherMISPs are the MISPs the token names besides {Host, Key}, in order: a
	// configuration token's HOST_2/AuthKey_2 … HOST_5/AuthKey_5 (gaps skipped), or an HS256
	// token's "misps" entries; nil for none. Which hosts may be called is the app's policy,
	// not checked here. See MISPs.
	OtherMISPs []MISP
}

// MISPs returns every MISP the claims name, in order, at most MaxMISPs: {Host, Key} first
// (Host "" for an HS256 token: the relay's API_URL), then OtherMISPs.
func (c Claims) MISPs() []MISP {
	return append([]MISP{{Host: c.Host, Key: c.Key}}, c.OtherMISPs...)
}

// MISP is one MISP a token names and the tenant's API key for it.
type MISP struct {
	Host string // base URL or host name as the token says; "" means API_URL's
	Key  string
}

// MaxMISPs bounds the MISPs one token may name: each is asked for every observable.
const MaxMISPs = 5

// Error is an authentication failure. Reason is the contract's text after
// "Authorization failed: ".
type Error struct{ Reason string }

func (e *Error) Error() string { return "Authorization failed: " + e.Reason }

// The reasons of the XDR relay contract, plus clear ones for expiry and not-before.
const (
	ReasonMissing   = "Authorization header is missing"
	ReasonType      = "Wrong authorization type"
	ReasonStructure = "Wrong JWT structure"
	ReasonSignature = "Failed to decode JWT with provided key"
	ReasonPayload   = "Wrong JWT payload structure"
	ReasonNoSecret  = "<SECRET_KEY> is missing" //nolint:gosec // a message, not a credential
	ReasonExpired   = "The JWT has expired"
	ReasonNotYet    = "The JWT is not valid yet"

	// Configuration tokens (RS256 + JWKS), with the MISP relay's texts.
	ReasonJWKSHostMissing = "jwks_host is missing in JWT payload. Make sure custom_jwks_host field is present in module_type"
	ReasonKIDNotFound     = "kid from JWT header not found in API response"
	ReasonRegion          = "Failed to decode JWT with provided key. Make sure domain in custom_jwks_host corresponds to your SecureX instance region."
	ReasonAudience        = "Wrong configuration-token-audience"

	reasonTooLarge = "The JWT is too large"
)

// Claim names and algorithms.
const (
	claimKey           = "key"
	claimURLScanKey    = "urlscan_key"
	claimEntitiesLimit = "CTR_ENTITIES_LIMIT"
	claimJWKSHost      = "jwks_host"
	claimAuthKey       = "AuthKey"
	claimHost          = "HOST"
	claimConfigURLScan = "URLSCAN_KEY"
	claimAudience      = "aud"
	claimMISPs         = "misps" // HS256: [{"host": ..., "key": ...}], the MISPs after API_URL's
	algHS256           = "HS256"
	algRS256           = "RS256"
)

// Defaults of Config.
const (
	DefaultFetchTimeout    = 5 * time.Second
	DefaultRefreshInterval = 30 * time.Second
)

// DefaultJWKSHosts returns the XDR regions' JWKS hosts (US, EU, APJC): the only hosts whose
// keys are trusted unless Config.JWKSHosts says otherwise.
func DefaultJWKSHosts() []string {
	return []string{"visibility.amp.cisco.com", "visibility.eu.amp.cisco.com", "visibility.apjc.amp.cisco.com"}
}

// Config configures a Verifier. Only Secret matters for HS256 tokens; the rest is for
// configuration tokens.
type Config struct {
	// Secret is SECRET_KEY, the HS256 key. Empty is allowed so that the relay can still start
	// and tell every HS256 caller "<SECRET_KEY> is missing" instead of failing silently.
	Secret string
	// JWKSHosts are the jwks_host values (host or host:port, compared exactly as written)
	// whose keys are trusted. The claim comes from a token that is not verified yet, so a
	// host outside this list is refused without any request to it: otherwise anyone could
	// make the relay fetch from, and trust keys of, a host of their choosing. Nil means
	// DefaultJWKSHosts; an empty, non-nil list (ParseHosts("none")) trusts no host, which
	// turns configuration tokens off for a relay that serves only the generic module.
	JWKSHosts []string
	// Audience is the "aud" a configuration token must carry (RELAY_AUDIENCE): the module's
	// configuration-token-audience. Empty means the request's own scheme://host (see
	// RequestAudience), as the Python relays did.
	Audience string
	// HTTPClient fetches the JWKS. Nil means a client with the default transport (which
	// honours HTTPS_PROXY).
	HTTPClient *http.Client
	// FetchTimeout bounds one JWKS fetch (default DefaultFetchTimeout).
	FetchTimeout time.Duration
	// RefreshInterval is the least time between two fetches of one host's JWKS caused by
	// unknown kids (default DefaultRefreshInterval), so that tokens with random kids cannot
	// make the relay hammer the JWKS host.
	RefreshInterval time.Duration
	// UserAgent is sent with JWKS fetches (default "misp-relay").
	UserAgent string
	// Log receives JWKS fetch failures in detail (the caller's message stays short). Nil
	// discards.
	Log *slog.Logger
	// Now is the clock for token expiry and the JWKS cache; nil means time.Now.
	Now func() time.Time
}

// Verifier checks tokens. It is safe for concurrent use; the JWKS cache it holds is shared by
// every request, so make one Verifier per process.
type Verifier struct {
	secret     []byte
	hs256      *jwt.Parser
	rs256      *jwt.Parser
	unverified *jwt.Parser
	hosts      map[string]bool
	audience   string
	keys       *keyCache
	verified   *verifiedTokens
}

// NewVerifier returns a Verifier for secret with the default configuration-token settings.
func NewVerifier(secret string) *Verifier {
	return New(Config{Secret: secret})
}

// New returns a Verifier for cfg, filling in defaults.
func New(cfg Config) *Verifier {
	if cfg.JWKSHosts == nil {
		cfg.JWKSHosts = DefaultJWKSHosts()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = DefaultFetchTimeout
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = DefaultRefreshInterval
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "misp-relay"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	hosts := make(map[string]bool, len(cfg.JWKSHosts))
	for _, h := range cfg.JWKSHosts {
		hosts[h] = true
	}
	return &Verifier{
		secret: []byte(cfg.Secret),
		// Each path accepts its one algorithm: "none" and every other algorithm are refused,
		// whatever the header says. Strict decoding refuses base64 with non-zero padding
		// bits: otherwise several spellings of one signature verify (a malleable token, which
		// defeats any deduplication or revocation list keyed by the token's text).
		hs256:      jwt.NewParser(jwt.WithValidMethods([]string{algHS256}), jwt.WithTimeFunc(cfg.Now), jwt.WithStrictDecoding()),
		rs256:      jwt.NewParser(jwt.WithValidMethods([]string{algRS256}), jwt.WithTimeFunc(cfg.Now), jwt.WithStrictDecoding()),
		unverified: jwt.NewParser(jwt.WithStrictDecoding()),
		hosts:      hosts,
		audience:   cfg.Audience,
		keys:       newKeyCache(cfg),
		verified:   newVerifiedTokens(cfg.Now),
	}
}

// ParseHosts reads a JWKS_HOSTS value for Config.JWKSHosts: comma-separated host[:port]
// entries, spaces around them ignored, empty entries and duplicates dropped. The entries are
// kept exactly as written (no scheme, no path), because the allow-list is compared with the
// jwks_host claim as is. A blank value gives nil (the default hosts); "none" gives an empty
// list (no host trusted: configuration tokens off).
func ParseHosts(s string) []string {
	if strings.EqualFold(strings.TrimSpace(s), "none") {
		return []string{}
	}
	var out []string
	seen := map[string]bool{}
	for _, h := range strings.Split(s, ",") {
		h = strings.TrimSpace(h)
		if h == "" || seen[h] {
			continue
		}
		seen[h] = true
		out = append(out, h)
	}
	return out
}

// RequestAudience is the audience a configuration token sent with r is expected to carry when
// Config.Audience is empty: scheme://host of the request as the client addressed it, without
// a trailing slash. X-Forwarded-Proto and X-Forwarded-Host (their first value) win, because
// the relay usually runs behind a TLS-terminating load balancer, API Gateway or a Lambda
// Function URL. Those headers are set by whoever calls, so a deployment that wants the check
// to mean something sets Config.Audience.
func RequestAudience(r *http.Request) string {
	scheme := "http"
	switch {
	case r.TLS != nil:
		scheme = "https"
	case r.URL != nil && r.URL.Scheme != "":
		// Requests built from Lambda events carry an absolute URL.
		scheme = strings.ToLower(r.URL.Scheme)
	}
	if p := firstValue(r.Header.Get("X-Forwarded-Proto")); p != "" {
		scheme = strings.ToLower(p)
	}
	host := r.Host
	if h := firstValue(r.Header.Get("X-Forwarded-Host")); h != "" {
		host = h
	}
	return scheme + "://" + host
}

// firstValue is the first entry of a comma-separated header value (proxies append theirs).
func firstValue(v string) string {
	first, _, _ := strings.Cut(v, ",")
	return strings.TrimSpace(first)
}

// FromRequest verifies the request's Authorization header. Configuration tokens are checked
// against Config.Audience, or the request's audience (RequestAudience) when that is empty.
func (v *Verifier) FromRequest(r *http.Request) (Claims, error) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return Claims{}, &Error{ReasonMissing}
	}
	audience := v.audience
	if audience == "" {
		audience = RequestAudience(r)
	}
	return v.verify(r.Context(), values[0], audience)
}

// Verify checks an Authorization header value ("Bearer <jwt>") outside of a request.
// Configuration tokens need an audience: they are checked against Config.Audience, and
// refused with ReasonAudience when it is empty.
func (v *Verifier) Verify(header string) (Claims, error) {
	return v.verify(context.Background(), header, v.audience)
}

func (v *Verifier) verify(ctx context.Context, header, audience string) (Claims, error) {
	parts := strings.Fields(header)
	// The Python relays answered HTTP 500 for "Bearer" alone or extra parts; here it is the
	// same authorization error as any other malformed header.
	if len(parts) != 2 || !strings.EqualFold(parts[0], "bearer") {
		return Claims{}, &Error{ReasonType}
	}
	token := parts[1]
	if len(token) > MaxTokenBytes {
		return Claims{}, &Error{reasonTooLarge}
	}
	if c, ok := v.verified.get(audience, token); ok {
		return c, nil
	}
	unverified := jwt.MapClaims{}
	parsed, _, err := v.unverified.ParseUnverified(token, unverified)
	if err != nil {
		return Claims{}, &Error{ReasonStructure}
	}
	var c Claims
	if alg, _ := parsed.Header["alg"].(string); alg == algRS256 {
		c, err = v.verifyConfigToken(ctx, token, parsed.Header, unverified, audience)
	} else {
		c, err = v.verifyHS256(token)
	}
	if err != nil {
		return Claims{}, err
	}
	var exp time.Time
	if e, err := unverified.GetExpirationTime(); err == nil && e != nil {
		exp = e.Time // verified now, with the signature: the claims parsed unverified are its own
	}
	v.verified.add(audience, token, c, exp)
	return c, nil
}

// verifyHS256 is the generic-module path: every algorithm but HS256 fails here.
func (v *Verifier) verifyHS256(token string) (Claims, error) {
	if len(v.secret) == 0 {
		return Claims{}, &Error{ReasonNoSecret}
	}
	claims := jwt.MapClaims{}
	_, err := v.hs256.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return v.secret, nil })
	if err != nil {
		return Claims{}, parseError(err, ReasonSignature)
	}
	return hs256Claims(claims)
}

// parseError maps a jwt parse error to the contract's reason; badKey is the reason for a
// signature that does not verify (or an algorithm that is not accepted).
func parseError(err error, badKey string) *Error {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return &Error{ReasonExpired}
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return &Error{ReasonNotYet}
	case errors.Is(err, jwt.ErrTokenMalformed):
		return &Error{ReasonStructure}
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		// A registered claim of the wrong type, e.g. "exp": "tomorrow".
		return &Error{ReasonPayload}
	default:
		return &Error{badKey}
	}
}

func hs256Claims(m jwt.MapClaims) (Claims, error) {
	key, ok := m[claimKey].(string)
	if !ok || strings.TrimSpace(key) == "" {
		return Claims{}, &Error{ReasonPayload}
	}
	c := Claims{Key: key, EntitiesLimit: entitiesLimit(m[claimEntitiesLimit])}
	var err error
	if c.URLScanKey, err = optionalString(m, claimURLScanKey); err != nil {
		return Claims{}, err
	}
	if c.OtherMISPs, err = mispList(m[claimMISPs]); err != nil {
		return Claims{}, err
	}
	return c, nil
}

// mispList reads an HS256 token's "misps" claim: absent, null, or a list of at most
// MaxMISPs-1 objects {"host": "https://misp2.example", "key": "..."}, both non-blank strings.
func mispList(raw any) ([]MISP, error) {
	if raw == nil {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, &Error{ReasonPayload}
	}
	if len(list) > MaxMISPs-1 {
		return nil, &Error{fmt.Sprintf("misps names %d MISPs: at most %d besides the relay's own", len(list), MaxMISPs-1)}
	}
	out := make([]MISP, 0, len(list))
	for _, e := range list {
		obj, ok := e.(map[string]any)
		if !ok {
			return nil, &Error{ReasonPayload}
		}
		host, _ := obj["host"].(string)
		key, _ := obj["key"].(string)
		if strings.TrimSpace(host) == "" || strings.TrimSpace(key) == "" {
			return nil, &Error{ReasonPayload}
		}
		out = append(out, MISP{Host: strings.TrimSpace(host), Key: key})
	}
	return out, nil
}

// optionalString reads a claim that may be absent or null, but must be a string otherwise.
func optionalString(m jwt.MapClaims, name string) (string, error) {
	raw, present := m[name]
	if !present || raw == nil {
		return "", nil
	}
	s, ok := raw.(string)
	if !ok {
		return "", &Error{ReasonPayload}
	}
	return s, nil
}

// Sign makes an HS256 token for c, as `relay jwt` prints it for the XDR module form. Host is
// not signed: a generic-module token always uses the relay's API_URL, and c.OtherMISPs (the
// MISPs asked besides it) are signed in the "misps" claim.
func Sign(secret string, c Claims) (string, error) {
	if secret == "" {
		return "", errors.New("SECRET_KEY is empty")
	}
	if c.Key == "" {
		return "", errors.New("the MISP API key is empty")
	}
	payload := jwt.MapClaims{claimKey: c.Key}
	if c.URLScanKey != "" {
		payload[claimURLScanKey] = c.URLScanKey
	}
	if c.EntitiesLimit > 0 {
		payload[claimEntitiesLimit] = c.EntitiesLimit
	}
	if len(c.OtherMISPs) > 0 {
		if len(c.OtherMISPs) > MaxMISPs-1 {
			return "", fmt.Errorf("a token names at most %d MISPs besides API_URL's, not %d", MaxMISPs-1, len(c.OtherMISPs))
		}
		var list []map[string]string
		for _, m := range c.OtherMISPs {
			if m.Host == "" || m.Key == "" {
				return "", errors.New("every MISP after the first needs a host and a key")
			}
			list = append(list, map[string]string{"host": m.Host, "key": m.Key})
		}
		payload[claimMISPs] = list
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, payload).SignedString([]byte(secret))
}
