package auth

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// maxEntitiesLimit caps CTR_ENTITIES_LIMIT: larger values (which Python's int would accept)
// mean "as many as MISP gives" anyway, and must not overflow an int anywhere downstream.
const maxEntitiesLimit = math.MaxInt32

// verifyConfigToken is the RS256 path (contract §4.3, MISP algorithm), with the jwks_host
// allow-list the Python relay lacked: it fetched keys from whatever host the unverified token
// named, which made it an open proxy and let anyone sign their own tokens.
func (v *Verifier) verifyConfigToken(ctx context.Context, token string, header map[string]any, unverified jwt.MapClaims, audience string) (Claims, error) {
	host, _ := unverified[claimJWKSHost].(string)
	if host == "" {
		return Claims{}, &Error{ReasonJWKSHostMissing}
	}
	if !v.hosts[host] {
		return Claims{}, &Error{fmt.Sprintf("jwks_host %s is not allowed: set JWKS_HOSTS to trust it", printable(host))}
	}
	// A missing kid is looked up as nothing, as PyJWKClient did: no request is needed for it.
	kid, _ := header["kid"].(string)
	if kid == "" {
		return Claims{}, &Error{ReasonKIDNotFound}
	}
	key, err := v.keys.key(ctx, host, kid)
	if err != nil {
		return Claims{}, err
	}
	claims := jwt.MapClaims{}
	if _, err := v.rs256.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return key, nil }); err != nil {
		return Claims{}, parseError(err, ReasonRegion)
	}
	if err := checkAudience(claims[claimAudience], audience); err != nil {
		return Claims{}, err
	}
	return configClaims(claims)
}

// checkAudience accepts aud as a string equal to want or a list containing it, exactly (no
// trailing-slash tolerance, contract §4.3 item 5). An absent aud is a payload error, as
// PyJWT's MissingRequiredClaimError was.
func checkAudience(aud any, want string) error {
	switch a := aud.(type) {
	case nil:
		return &Error{ReasonPayload}
	case string:
		if want != "" && a == want {
			return nil
		}
	case []any:
		for _, e := range a {
			if s, ok := e.(string); ok && want != "" && s == want {
				return nil
			}
		}
	}
	return &Error{ReasonAudience}
}

// configClaims reads the module's configuration from a verified configuration token.
func configClaims(m jwt.MapClaims) (Claims, error) {
	key, _ := m[claimAuthKey].(string)
	host, _ := m[claimHost].(string)
	// Both are required fields of the module; blank values would otherwise send the key to
	// the relay's default MISP or an empty URL.
	if strings.TrimSpace(key) == "" || strings.TrimSpace(host) == "" {
		return Claims{}, &Error{ReasonPayload}
	}
	c := Claims{Key: key, Host: strings.TrimSpace(host), EntitiesLimit: entitiesLimit(m[claimEntitiesLimit])}
	var err error
	if c.URLScanKey, err = optionalString(m, claimConfigURLScan); err != nil {
		return Claims{}, err
	}
	// HOST_2/AuthKey_2 … HOST_5/AuthKey_5: optional module fields, which XDR may send blank.
	for n := 2; n <= MaxMISPs; n++ {
		hostClaim, keyClaim := claimHost+"_"+strconv.Itoa(n), claimAuthKey+"_"+strconv.Itoa(n)
		h, err := optionalString(m, hostClaim)
		if err != nil {
			return Claims{}, err
		}
		k, err := optionalString(m, keyClaim)
		if err != nil {
			return Claims{}, err
		}
		h = strings.TrimSpace(h)
		switch {
		case h == "" && strings.TrimSpace(k) == "":
			continue
		case h == "" || strings.TrimSpace(k) == "":
			return Claims{}, &Error{fmt.Sprintf("%s and %s go together: set both or neither", hostClaim, keyClaim)}
		}
		c.OtherMISPs = append(c.OtherMISPs, MISP{Host: h, Key: k})
	}
	return c, nil
}

// entitiesLimit parses CTR_ENTITIES_LIMIT (a JSON value as encoding/json decodes it into
// any) as contract §4.4 does (int(value), then > 0), returning 0 ("use the relay's default") where Python fell back to its default:
//
//	50, "50", " 50 "           → 50
//	5.7                        → 5 (truncated, as Python's int)
//	"5.7", "abc", "", 0, -3    → 0
//	absent, null               → 0 (Python answered HTTP 500 for null)
//	true, false                → 0 (Python's int(True) is 1, an accident rather than a limit)
//	objects, lists             → 0
//
// Values above math.MaxInt32 are capped to it.
func entitiesLimit(raw any) int {
	switch x := raw.(type) {
	case float64:
		return limitFromFloat(x)
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		switch {
		case err == nil && n > 0:
			return min(n, maxEntitiesLimit)
		case errors.Is(err, strconv.ErrRange) && n > 0:
			return maxEntitiesLimit
		}
	}
	return 0
}

func limitFromFloat(f float64) int {
	switch {
	case math.IsNaN(f) || f < 1:
		return 0
	case f >= maxEntitiesLimit:
		return maxEntitiesLimit
	}
	return int(f)
}

// printable makes an untrusted claim safe to put in a message and a log line: at most 100
// runes, control characters replaced.
func printable(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == 100 {
			b.WriteString("…")
			break
		}
		n++
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}
