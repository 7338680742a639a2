// Package auth verifies the relay's bearer tokens: HS256 JWTs signed with SECRET_KEY whose
// payload carries the caller's MISP API key (and optionally a urlscan.io key). The messages
// are those of Cisco's XDR relays, so XDR shows analysts what they are used to.
package auth

import (
	"errors"
	"net/http"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenBytes bounds the token the relay will parse. Real tokens are a few hundred bytes;
// anything far larger is refused before any base64 or JSON work is done.
const MaxTokenBytes = 16 << 10

// Claims are what a verified token grants.
type Claims struct {
	Key        string // MISP API key (claim "key")
	URLScanKey string // urlscan.io API key (claim "urlscan_key"), "" when absent
}

// Error is an authentication failure. Reason is the contract's text after
// "Authorization failed: ".
type Error struct{ Reason string }

func (e *Error) Error() string { return "Authorization failed: " + e.Reason }

// The reasons of the XDR relay contract, plus clear ones for expiry and not-before.
const (
	ReasonMissing    = "Authorization header is missing"
	ReasonType       = "Wrong authorization type"
	ReasonStructure  = "Wrong JWT structure"
	ReasonSignature  = "Failed to decode JWT with provided key"
	ReasonPayload    = "Wrong JWT payload structure"
	ReasonNoSecret   = "<SECRET_KEY> is missing" //nolint:gosec // a message, not a credential
	ReasonExpired    = "The JWT has expired"
	ReasonNotYet     = "The JWT is not valid yet"
	reasonTooLarge   = "The JWT is too large"
	claimKey         = "key"
	claimURLScanKey  = "urlscan_key"
	signingAlgorithm = "HS256"
)

// Verifier checks tokens against one SECRET_KEY.
type Verifier struct {
	secret []byte
	parser *jwt.Parser
}

// NewVerifier returns a Verifier for secret. An empty secret is allowed so that the relay can
// still start and tell every caller "<SECRET_KEY> is missing" instead of failing silently.
func NewVerifier(secret string) *Verifier {
	return &Verifier{
		secret: []byte(secret),
		// Only HS256: "none" and every other algorithm are refused, whatever the header says.
		parser: jwt.NewParser(jwt.WithValidMethods([]string{signingAlgorithm})),
	}
}

// FromRequest verifies the request's Authorization header.
func (v *Verifier) FromRequest(r *http.Request) (Claims, error) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return Claims{}, &Error{ReasonMissing}
	}
	return v.Verify(values[0])
}

// Verify checks an Authorization header value ("Bearer <jwt>").
func (v *Verifier) Verify(header string) (Claims, error) {
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
	if _, _, err := v.parser.ParseUnverified(token, jwt.MapClaims{}); err != nil {
		return Claims{}, &Error{ReasonStructure}
	}
	if len(v.secret) == 0 {
		return Claims{}, &Error{ReasonNoSecret}
	}
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return v.secret, nil })
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return Claims{}, &Error{ReasonExpired}
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return Claims{}, &Error{ReasonNotYet}
	case errors.Is(err, jwt.ErrTokenMalformed):
		return Claims{}, &Error{ReasonStructure}
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		// A registered claim of the wrong type, e.g. "exp": "tomorrow".
		return Claims{}, &Error{ReasonPayload}
	default:
		return Claims{}, &Error{ReasonSignature}
	}
	return claimsOf(claims)
}

func claimsOf(m jwt.MapClaims) (Claims, error) {
	key, ok := m[claimKey].(string)
	if !ok || strings.TrimSpace(key) == "" {
		return Claims{}, &Error{ReasonPayload}
	}
	c := Claims{Key: key}
	if raw, present := m[claimURLScanKey]; present && raw != nil {
		s, ok := raw.(string)
		if !ok {
			return Claims{}, &Error{ReasonPayload}
		}
		c.URLScanKey = s
	}
	return c, nil
}

// Sign makes a token for c, as `relay jwt` prints it for the XDR module form.
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
	return jwt.NewWithClaims(jwt.SigningMethodHS256, payload).SignedString([]byte(secret))
}
