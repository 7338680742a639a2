package testkit

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/misp-relay/misp-relay/internal/auth"
)

// JWT is the relay's HS256 token for claims, signed with secret, as `relay jwt` makes them.
func JWT(tb testing.TB, secret string, claims auth.Claims) string {
	tb.Helper()
	tok, err := auth.Sign(secret, claims)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// RSAKeys returns two 2048-bit RSA keys, generated once per test binary: generating them is
// slow, above all under the race detector.
var RSAKeys = sync.OnceValues(func() (*rsa.PrivateKey, *rsa.PrivateKey) {
	a, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	b, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return a, b
})

// SignRS256 signs claims with key under kid ("" leaves the kid header out), as XDR signs its
// configuration tokens.
func SignRS256(tb testing.TB, key *rsa.PrivateKey, kid string, claims jwt.MapClaims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// JWK is pub as a JSON Web Key entry of a JWKS, as XDR publishes them.
func JWK(kid string, pub *rsa.PublicKey) string {
	n := base64.RawURLEncoding.EncodeToString(pub.N.Bytes())
	e := base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())
	return fmt.Sprintf(`{"kty":"RSA","use":"sig","alg":"RS256","kid":%q,"n":%q,"e":%q}`, kid, n, e)
}

// JWKS is XDR's JWKS endpoint (GET /.well-known/jwks) on a loopback TLS server, counting its
// requests. Change what it serves with Set. It is also an http.Handler, for in-memory
// transports (see HandlerTransport).
type JWKS struct {
	*httptest.Server
	Host string       // host:port, as a jwks_host claim names it
	Hits atomic.Int64 // requests received

	mu           sync.Mutex
	Keys         map[string]*rsa.PublicKey // served by kid
	Extra        []string                  // raw JWK entries served before Keys
	Status       int                       // 200 unless set
	Body         string                    // served instead of the key set when set
	Redirect     string                    // redirects there when set
	CacheControl string                    // the Cache-Control header, when set
	Gate         chan struct{}             // when set, requests wait until it is closed (or the client gives up)
}

// NewJWKS starts a JWKS serving pub under kid, closed when tb ends.
func NewJWKS(tb testing.TB, kid string, pub *rsa.PublicKey) *JWKS {
	tb.Helper()
	s := &JWKS{Keys: map[string]*rsa.PublicKey{kid: pub}, Status: http.StatusOK}
	s.Server = httptest.NewTLSServer(s)
	tb.Cleanup(s.Close)
	s.Host = strings.TrimPrefix(s.URL, "https://")
	return s
}

// Set changes what the server serves, under its lock.
func (s *JWKS) Set(f func(s *JWKS)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// ServeHTTP answers as XDR's JWKS endpoint, or as Set made it misbehave.
func (s *JWKS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.Hits.Add(1)
	s.mu.Lock()
	gate, status, body, cc, redirect := s.Gate, s.Status, s.Body, s.CacheControl, s.Redirect
	entries := append([]string(nil), s.Extra...)
	for kid, pub := range s.Keys {
		entries = append(entries, JWK(kid, pub))
	}
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	if redirect != "" {
		http.Redirect(w, r, redirect, http.StatusFound)
		return
	}
	if r.URL.Path != "/.well-known/jwks" {
		http.NotFound(w, r)
		return
	}
	if body == "" {
		body = `{"keys":[` + strings.Join(entries, ",") + `]}`
	}
	if cc != "" {
		w.Header().Set("Cache-Control", cc)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
