//go:build misplive

package misplive

import (
	"crypto/md5"  //nolint:gosec // hashes of test values, as MISP stores them
	"crypto/sha1" //nolint:gosec // idem
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"strings"
	"testing"
)

// testFaults checks what the relay answers when the real MISP fails: each fault gets the
// envelope with a specific code and a message that says why, and no secret.
func testFaults(t *testing.T, bin string, r *relay, p *proxy, mispURL, key, readOnlyKey string) {
	secrets := []string{key, readOnlyKey}
	trigger := func(token, action, value string) map[string]any {
		return r.post(t, token, "/respond/trigger", map[string]string{
			"action-id": action, "observable_type": "domain", "observable_value": value,
		}, secrets...)
	}
	tests := []struct {
		name, code, message string
		call                func(t *testing.T) map[string]any
	}{
		{
			name: "wrong key", code: "permission denied", message: "Authentication failed",
			call: func(t *testing.T) map[string]any {
				return r.post(t, r.jwt(t, strings.Repeat("0", 40)), "/health", nil, secrets...)
			},
		},
		{
			name: "a user without the sighting permission", code: "permission denied", message: "You do not have permission",
			call: func(t *testing.T) map[string]any {
				return trigger(r.jwt(t, readOnlyKey), "misp-add-sighting", "respond.relay-test.example")
			},
		},
		{
			name: "a sighting of a value MISP does not hold", code: "not found", message: "holds no attribute with this value",
			call: func(t *testing.T) map[string]any {
				return trigger(r.jwt(t, key), "misp-add-false-positive", "nothing.relay-test.example")
			},
		},
		{
			name: "MISP stops while a request is in flight", code: "service unavailable", message: "MISP",
			call: func(t *testing.T) map[string]any {
				p.drop.Store(true)
				defer p.drop.Store(false)
				return r.post(t, r.jwt(t, key), "/observe/observables", []observable{{"domain", "c2.relay-test.example"}}, secrets...)
			},
		},
		{
			name: "a missing endpoint (API_URL with a path MISP does not serve)", code: "not found", message: "Not Found",
			call: func(t *testing.T) map[string]any {
				other := startRelay(t, bin, map[string]string{"API_URL": mispURL + "/no-such-misp"})
				answer := other.post(t, other.jwt(t, key), "/health", nil, secrets...)
				return answer
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.call(t)
			code, message := errorOf(got)
			if code != tt.code || !strings.Contains(message, tt.message) {
				t.Errorf("error %q %q, want %q saying %q", code, message, tt.code, tt.message)
			}
			if len(message) > 512 {
				t.Errorf("the message is %d bytes long", len(message))
			}
		})
	}
}

func md5Of(s string) string    { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }  //nolint:gosec // see the import
func sha1Of(s string) string   { h := sha1.Sum([]byte(s)); return hex.EncodeToString(h[:]) } //nolint:gosec // see the import
func sha256Of(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
func sha512Of(s string) string { h := sha512.Sum512([]byte(s)); return hex.EncodeToString(h[:]) }
