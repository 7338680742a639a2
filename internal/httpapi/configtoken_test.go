package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/httpapi"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/service"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

// TestConfigurationTokens: an RS256 configuration token (as XDR signs them) names its own
// MISP in HOST and its own entities limit; the relay calls that MISP with the token's
// AuthKey, and refuses a HOST the resolver does not allow.
func TestConfigurationTokens(t *testing.T) {
	key, _ := testkit.RSAKeys()
	const kid = "test-kid"
	jwks := testkit.NewJWKS(t, kid, &key.PublicKey)
	jwksHost := jwks.Host

	tenantMISP := misptest.New(t, "tenant-key", eventHigh, eventLow)
	tenantClient, err := misp.New(misp.Config{BaseURL: tenantMISP.URL})
	if err != nil {
		t.Fatal(err)
	}
	const audience = "https://relay.example"
	h := newHarness(t, allEvents()) // the relay's own API_URL MISP, which these tokens must not reach
	h.serve(service.Config{
		Backend: nil,
		UIURL:   "https://should-not-be-used.example",
		Sources: hostSources(nil, "https://should-not-be-used.example", func(host string) (intel.Backend, string, error) {
			if host != tenantMISP.URL {
				return nil, "", &auth.Error{Reason: "HOST " + host + " is not allowed: set MISP_ALLOWED_HOSTS to trust it"}
			}
			return tenantClient, tenantMISP.URL, nil
		}),
	}, httpapi.Config{Verifier: auth.New(auth.Config{
		Secret: testSecret, JWKSHosts: []string{jwksHost}, Audience: audience, HTTPClient: jwks.Client(),
	})})
	sign := func(claims jwt.MapClaims) string { return "Bearer " + testkit.SignRS256(t, key, kid, claims) }
	claims := func(host string, limit any) jwt.MapClaims {
		c := jwt.MapClaims{"AuthKey": "tenant-key", "HOST": host, "jwks_host": jwksHost, "aud": audience}
		if limit != nil {
			c["CTR_ENTITIES_LIMIT"] = limit
		}
		return c
	}

	_, got := h.do(http.MethodPost, "/observe/observables", http.Header{"Authorization": {sign(claims(tenantMISP.URL, nil))}},
		`[{"type":"domain","value":"evil.example"}]`)
	data := got["data"].(map[string]any)
	if n := data["judgements"].(map[string]any)["count"]; n != 2.0 {
		t.Errorf("%v judgements from the tenant's MISP, want 2", n)
	}
	j := data["judgements"].(map[string]any)["docs"].([]any)[0].(map[string]any)
	if uri := j["source_uri"].(string); !strings.HasPrefix(uri, tenantMISP.URL+"/events/view/") {
		t.Errorf("source_uri %q does not link into the token's MISP", uri)
	}
	if len(tenantMISP.Requests()) == 0 || len(h.misp.Requests()) != 0 {
		t.Errorf("tenant MISP got %d calls, API_URL's MISP %d; want the tenant's only", len(tenantMISP.Requests()), len(h.misp.Requests()))
	}
	if got := tenantMISP.Requests()[0].Header.Get("Authorization"); got != "tenant-key" {
		t.Errorf("the tenant's MISP was called with another key")
	}

	// The token's CTR_ENTITIES_LIMIT applies to this request only.
	_, got = h.do(http.MethodPost, "/observe/observables", http.Header{"Authorization": {sign(claims(tenantMISP.URL, "1"))}},
		`[{"type":"domain","value":"evil.example"}]`)
	if n := got["data"].(map[string]any)["judgements"].(map[string]any)["count"]; n != 1.0 {
		t.Errorf("%v judgements with CTR_ENTITIES_LIMIT 1, want 1", n)
	}

	// A HOST the relay may not call is an authorization error, and nothing is called.
	before := len(tenantMISP.Requests())
	_, got = h.do(http.MethodPost, "/observe/observables", http.Header{"Authorization": {sign(claims("https://internal.example:8443", nil))}},
		`[{"type":"domain","value":"evil.example"}]`)
	if code, msg := errorOf(t, got); code != "authorization error" || !strings.Contains(msg, "MISP_ALLOWED_HOSTS") {
		t.Errorf("got %q %q", code, msg)
	}
	if len(tenantMISP.Requests()) != before {
		t.Error("a refused HOST still caused a MISP call")
	}

	// Refer links into the token's MISP.
	_, got = h.do(http.MethodPost, "/refer/observables", http.Header{"Authorization": {sign(claims(tenantMISP.URL, nil))}},
		`[{"type":"ip","value":"198.51.100.7"}]`)
	link := got["data"].([]any)[0].(map[string]any)["url"].(string)
	if u, _ := url.Parse(link); u == nil || !strings.HasPrefix(link, tenantMISP.URL) {
		t.Errorf("refer link %q", link)
	}
}
