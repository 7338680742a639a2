package auth_test

import (
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

// TestVerifiedTokensExpire: a token the verifier remembers is still refused once its exp has
// passed, and, past a minute, checked again (a configuration token then meets a JWKS whose
// key was withdrawn).
func TestVerifiedTokensExpire(t *testing.T) {
	f := newFixture(t)
	hs := sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"key": authKey, "exp": f.clock.Now().Add(30 * time.Second).Unix()})
	for range 2 { // the second answer comes from memory
		if c, err := f.v.Verify("Bearer " + hs); err != nil || c.Key != authKey {
			t.Fatalf("a valid token: %+v, %v", c, err)
		}
	}
	f.clock.Advance(31 * time.Second)
	_, err := f.v.Verify("Bearer " + hs)
	checkReason(t, err, auth.ReasonExpired)

	a, _ := testkit.RSAKeys()
	config := testkit.SignRS256(t, a, kid1, f.claims())
	f.jwks.Set(func(s *testkit.JWKS) { s.CacheControl = "max-age=60" }) // the JWKS's shortest keep
	for range 2 {
		if _, err := f.v.FromRequest(bearerRequest(config)); err != nil {
			t.Fatalf("a valid configuration token: %v", err)
		}
	}
	f.jwks.Set(func(s *testkit.JWKS) { s.Keys = map[string]*rsa.PublicKey{} }) // the key is withdrawn
	if _, err := f.v.FromRequest(bearerRequest(config)); err != nil {
		t.Errorf("within the minute, the token is remembered: %v", err)
	}
	f.clock.Advance(2 * time.Minute) // past the minute, and the key set's max-age
	if _, err := f.v.FromRequest(bearerRequest(config)); err == nil {
		t.Error("a token signed with a withdrawn key was still accepted after the minute")
	}
}

// TestVerifiedTokensAreTheirOwn: what is remembered is a token's exact text for the audience
// it was checked for: another audience checks it again, and another token, however close,
// is verified on its own.
func TestVerifiedTokensAreTheirOwn(t *testing.T) {
	f := newFixture(t)
	a, _ := testkit.RSAKeys()
	config := testkit.SignRS256(t, a, kid1, f.claims())
	if _, err := f.v.FromRequest(bearerRequest(config)); err != nil {
		t.Fatal(err)
	}
	other := httptest.NewRequest(http.MethodPost, "https://other-relay.example.com/health", nil)
	other.Header.Set("Authorization", "Bearer "+config)
	_, err := f.v.FromRequest(other)
	checkReason(t, err, auth.ReasonAudience)

	hs := sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"key": authKey})
	if _, err := f.v.Verify("Bearer " + hs); err != nil {
		t.Fatal(err)
	}
	forged := hs[:len(hs)-2] + "AA"
	if forged == hs {
		forged = hs[:len(hs)-2] + "BA"
	}
	if _, err := f.v.Verify("Bearer " + forged); err == nil {
		t.Error("a token with another signature was accepted")
	}
}
