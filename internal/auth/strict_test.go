package auth_test

import (
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

// malleate returns tok with its signature spelled differently: the last base64url character
// changed so that only the padding bits (which decode to nothing) differ. A lax decoder reads
// the same signature bytes from both.
func malleate(t *testing.T, tok string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.LastIndexByte(tok, '.')
	sig := tok[i+1:]
	last := strings.IndexByte(alphabet, sig[len(sig)-1])
	// Unused low bits of the last character: 2 when len%4 == 3, 4 when len%4 == 2.
	var unused int
	switch len(sig) % 4 {
	case 2:
		unused = 4
	case 3:
		unused = 2
	default:
		t.Fatalf("signature length %d has no padding bits", len(sig))
	}
	if last&(1<<unused-1) != 0 {
		t.Fatalf("the signature is already non-canonical")
	}
	return tok[:i+1] + sig[:len(sig)-1] + string(alphabet[last|1])
}

func TestNonCanonicalSignatureRefused(t *testing.T) {
	t.Run("HS256", func(t *testing.T) {
		good := sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"key": "misp-key"})
		v := auth.NewVerifier(secret)
		if _, err := v.Verify("Bearer " + good); err != nil {
			t.Fatalf("the canonical token: %v", err)
		}
		_, err := v.Verify("Bearer " + malleate(t, good))
		checkReason(t, err, auth.ReasonStructure)
	})
	t.Run("RS256 configuration token", func(t *testing.T) {
		f := newFixture(t)
		key, _ := testkit.RSAKeys()
		good := testkit.SignRS256(t, key, kid1, f.claims())
		if _, err := f.v.FromRequest(bearerRequest(good)); err != nil {
			t.Fatalf("the canonical token: %v", err)
		}
		_, err := f.v.FromRequest(bearerRequest(malleate(t, good)))
		checkReason(t, err, auth.ReasonStructure)
	})
}
