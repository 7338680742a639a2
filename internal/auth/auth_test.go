package auth_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/auth"
)

const secret = "s3cr3t-for-tests-only"

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestVerify(t *testing.T) {
	good := sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"key": "misp-key", "urlscan_key": "us-key"})
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"key":"misp-key","superuser":true}`)) + "." + parts[2]
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"key": "k"})
	hs512 := sign(t, jwt.SigningMethodHS512, []byte(secret), jwt.MapClaims{"key": "k"})
	future := time.Now().Add(time.Hour).Unix()
	past := time.Now().Add(-time.Hour).Unix()

	tests := []struct {
		name   string
		secret string
		header string
		want   auth.Claims
		reason string
	}{
		{"valid", secret, "Bearer " + good, auth.Claims{Key: "misp-key", URLScanKey: "us-key"}, ""},
		{"lower-case scheme", secret, "bearer " + good, auth.Claims{Key: "misp-key", URLScanKey: "us-key"}, ""},
		{"without urlscan key", secret, "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"key": "k"}), auth.Claims{Key: "k"}, ""},
		{"valid exp and nbf", secret, "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"key": "k", "exp": future, "nbf": past}), auth.Claims{Key: "k"}, ""},
		{"wrong type", secret, "wrong_type " + good, auth.Claims{}, auth.ReasonType},
		{"basic", secret, "Basic " + good, auth.Claims{}, auth.ReasonType},
		{"bearer alone", secret, "Bearer", auth.Claims{}, auth.ReasonType},
		{"extra parts", secret, "Bearer a b", auth.Claims{}, auth.ReasonType},
		{"empty", secret, "", auth.Claims{}, auth.ReasonType},
		{"not a jwt", secret, "Bearer wrong_jwt_structure", auth.Claims{}, auth.ReasonStructure},
		{"bad base64", secret, "Bearer a.b.c", auth.Claims{}, auth.ReasonStructure},
		{"payload not an object", secret, "Bearer " + parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`[1]`)) + "." + parts[2], auth.Claims{}, auth.ReasonStructure},
		{"tampered payload", secret, "Bearer " + tampered, auth.Claims{}, auth.ReasonSignature},
		{"other secret", "another-secret", "Bearer " + good, auth.Claims{}, auth.ReasonSignature},
		{"alg none", secret, "Bearer " + none, auth.Claims{}, auth.ReasonSignature},
		{"HS512", secret, "Bearer " + hs512, auth.Claims{}, auth.ReasonSignature},
		{"secret missing", "", "Bearer " + good, auth.Claims{}, auth.ReasonNoSecret},
		{"expired", secret, "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"key": "k", "exp": past}), auth.Claims{}, auth.ReasonExpired},
		{"not yet valid", secret, "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"key": "k", "nbf": future}), auth.Claims{}, auth.ReasonNotYet},
		{"exp of the wrong type", secret, "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"key": "k", "exp": "tomorrow"}), auth.Claims{}, auth.ReasonPayload},
		{"no key", secret, "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"not_key": "x"}), auth.Claims{}, auth.ReasonPayload},
		{"empty key", secret, "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"key": ""}), auth.Claims{}, auth.ReasonPayload},
		{"key not a string", secret, "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"key": 42}), auth.Claims{}, auth.ReasonPayload},
		{"urlscan key not a string", secret, "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"key": "k", "urlscan_key": []int{1}}), auth.Claims{}, auth.ReasonPayload},
		{"huge token", secret, "Bearer " + strings.Repeat("a", auth.MaxTokenBytes+1), auth.Claims{}, "The JWT is too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := auth.NewVerifier(tt.secret).Verify(tt.header)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("claims (-want +got):\n%s", diff)
				}
				return
			}
			var ae *auth.Error
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want *auth.Error", err)
			}
			if ae.Reason != tt.reason {
				t.Errorf("reason = %q, want %q", ae.Reason, tt.reason)
			}
			if want := "Authorization failed: " + tt.reason; err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "misp-key") {
				t.Errorf("error leaks a secret: %q", err)
			}
		})
	}
}

func TestFromRequestMissingHeader(t *testing.T) {
	r := httptest.NewRequest("POST", "/health", nil)
	_, err := auth.NewVerifier(secret).FromRequest(r)
	var ae *auth.Error
	if !errors.As(err, &ae) || ae.Reason != auth.ReasonMissing {
		t.Fatalf("err = %v, want %q", err, auth.ReasonMissing)
	}
}

func TestSignRoundTrip(t *testing.T) {
	tok, err := auth.Sign(secret, auth.Claims{Key: "k1", URLScanKey: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := auth.NewVerifier(secret).Verify("Bearer " + tok)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(auth.Claims{Key: "k1", URLScanKey: "u1"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	withLimit, err := auth.Sign(secret, auth.Claims{Key: "k1", EntitiesLimit: 20, Host: "https://ignored.example"})
	if err != nil {
		t.Fatal(err)
	}
	got, err = auth.NewVerifier(secret).Verify("Bearer " + withLimit)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(auth.Claims{Key: "k1", EntitiesLimit: 20}, got); diff != "" {
		t.Errorf("with a limit (-want +got):\n%s", diff)
	}
	if _, err := auth.Sign("", auth.Claims{Key: "k"}); err == nil {
		t.Error("Sign with an empty secret succeeded")
	}
	if _, err := auth.Sign(secret, auth.Claims{}); err == nil {
		t.Error("Sign without a key succeeded")
	}
}

// TestHS256SeveralMISPs: an HS256 token names the MISPs asked besides API_URL's in "misps";
// Sign writes it and the verifier reads it back, and a malformed list is a payload error.
func TestHS256SeveralMISPs(t *testing.T) {
	others := []auth.MISP{{Host: "https://misp2.example", Key: "k2"}, {Host: "misp3.example", Key: "k3"}}
	tok, err := auth.Sign(secret, auth.Claims{Key: "k1", OtherMISPs: others})
	if err != nil {
		t.Fatal(err)
	}
	got, err := auth.NewVerifier(secret).Verify("Bearer " + tok)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(auth.Claims{Key: "k1", OtherMISPs: others}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(append([]auth.MISP{{Key: "k1"}}, others...), got.MISPs()); diff != "" {
		t.Errorf("MISPs() (-want +got):\n%s", diff)
	}
	if _, err := auth.Sign(secret, auth.Claims{Key: "k1", OtherMISPs: make([]auth.MISP, 5)}); err == nil {
		t.Error("Sign with six MISPs succeeded")
	}
	if _, err := auth.Sign(secret, auth.Claims{Key: "k1", OtherMISPs: []auth.MISP{{Host: "h"}}}); err == nil {
		t.Error("Sign of a MISP without a key succeeded")
	}
	five := []any{}
	for i := range 5 {
		five = append(five, map[string]any{"host": fmt.Sprintf("m%d.example", i), "key": "k"})
	}
	for name, tc := range map[string]struct {
		misps  any
		reason string
	}{
		"not a list":      {"misp2.example", auth.ReasonPayload},
		"not objects":     {[]any{"misp2.example"}, auth.ReasonPayload},
		"no key":          {[]any{map[string]any{"host": "misp2.example"}}, auth.ReasonPayload},
		"blank host":      {[]any{map[string]any{"host": " ", "key": "k"}}, auth.ReasonPayload},
		"key not string":  {[]any{map[string]any{"host": "misp2.example", "key": 2}}, auth.ReasonPayload},
		"five besides us": {five, "misps names 5 MISPs: at most 4 besides the relay's own"},
	} {
		t.Run(name, func(t *testing.T) {
			tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"key": "k1", "misps": tc.misps}).SignedString([]byte(secret))
			if err != nil {
				t.Fatal(err)
			}
			_, err = auth.NewVerifier(secret).Verify("Bearer " + tok)
			var ae *auth.Error
			if !errors.As(err, &ae) || ae.Reason != tc.reason {
				t.Errorf("err = %v, want reason %q", err, tc.reason)
			}
		})
	}
}
