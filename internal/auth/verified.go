package auth

import (
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Verified tokens are remembered: XDR sends a module's token with every call, and checking
// its signature again (and parsing its JSON twice) was a tenth of a cached observe's CPU. A
// token is remembered by its exact text and the audience it was checked for (the parsers
// decode base64 strictly, so one signature has one spelling), for verifiedTTL at most and
// never past its own exp, so an expired token is refused as before and a configuration token
// meets a rotated JWKS within verifiedTTL. Failures are not remembered.
const (
	verifiedTTL  = time.Minute
	verifiedSize = 4096 // tokens; a relay serves few modules, each with one token at a time
)

type verifiedToken struct {
	claims Claims
	until  time.Time
}

type verifiedTokens struct {
	now    func() time.Time
	tokens *lru.Cache[string, verifiedToken] // safe for concurrent use
}

func newVerifiedTokens(now func() time.Time) *verifiedTokens {
	tokens, err := lru.New[string, verifiedToken](verifiedSize)
	if err != nil {
		panic(err) // only for a size below 1
	}
	return &verifiedTokens{now: now, tokens: tokens}
}

func tokenKey(audience, token string) string { return audience + "\x00" + token }

// get returns the claims of a token verified for audience, while it may still be trusted.
func (t *verifiedTokens) get(audience, token string) (Claims, bool) {
	key := tokenKey(audience, token)
	e, ok := t.tokens.Get(key)
	if !ok {
		return Claims{}, false
	}
	if !t.now().Before(e.until) {
		t.tokens.Remove(key) // at worst a fresher entry added meanwhile: verified again
		return Claims{}, false
	}
	return e.claims, true
}

// add remembers a token that verified, until verifiedTTL from now or its expiry (exp;
// zero when it has none), whichever comes first.
func (t *verifiedTokens) add(audience, token string, c Claims, exp time.Time) {
	until := t.now().Add(verifiedTTL)
	if !exp.IsZero() && exp.Before(until) {
		until = exp
	}
	t.tokens.Add(tokenKey(audience, token), verifiedToken{claims: c, until: until})
}
