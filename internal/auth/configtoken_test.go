package auth_test

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

const (
	kid1     = "02B1174234C29F8EFB69911438F597FF3FFEE6B7"
	kid2     = "rotated-key"
	audience = "https://relay.example.com"
	mispHost = "https://misp.example.org"
	authKey  = "misp-auth-key-for-tests"
)

// fakeClock is a settable clock shared by the verifier's JWKS cache and token checks.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is a verifier trusting one JWKS server, on a fake clock.
type fixture struct {
	jwks  *testkit.JWKS
	clock *fakeClock
	v     *auth.Verifier
}

func newFixture(t *testing.T, edit ...func(*auth.Config)) *fixture {
	t.Helper()
	a, _ := testkit.RSAKeys()
	f := &fixture{jwks: testkit.NewJWKS(t, kid1, &a.PublicKey), clock: newClock()}
	cfg := auth.Config{
		Secret:     secret,
		JWKSHosts:  []string{f.jwks.Host},
		HTTPClient: f.jwks.Client(),
		Now:        f.clock.Now,
	}
	for _, e := range edit {
		e(&cfg)
	}
	f.v = auth.New(cfg)
	return f
}

// claims are a valid configuration token's payload for f's JWKS host.
func (f *fixture) claims() jwt.MapClaims {
	return jwt.MapClaims{"AuthKey": authKey, "HOST": mispHost, "jwks_host": f.jwks.Host, "aud": audience}
}

func bearerRequest(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, audience+"/health", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

func checkReason(t *testing.T, err error, reason string) {
	t.Helper()
	var ae *auth.Error
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want *auth.Error %q", err, reason)
	}
	if ae.Reason != reason {
		t.Errorf("reason = %q, want %q", ae.Reason, reason)
	}
	if strings.Contains(err.Error(), authKey) || strings.Contains(err.Error(), secret) {
		t.Errorf("error leaks a secret: %q", err)
	}
}

func with(m jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func without(m jwt.MapClaims, keys ...string) jwt.MapClaims {
	out := with(m)
	for _, k := range keys {
		delete(out, k)
	}
	return out
}

func TestConfigToken(t *testing.T) {
	key, other := testkit.RSAKeys()
	f := newFixture(t)
	good := f.claims()
	future := f.clock.Now().Add(time.Hour).Unix()
	past := f.clock.Now().Add(-time.Hour).Unix()
	valid := testkit.SignRS256(t, key, kid1, good)
	parts := strings.Split(valid, ".")
	tamperedPayload, _ := json.Marshal(with(good, "HOST", "https://attacker.example"))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(tamperedPayload) + "." + parts[2]
	rs512, err := jwt.NewWithClaims(jwt.SigningMethodRS512, good).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	wantOK := auth.Claims{Key: authKey, Host: mispHost}

	tests := []struct {
		name   string
		token  string
		want   auth.Claims
		reason string
	}{
		{"valid", valid, wantOK, ""},
		{
			"urlscan key and limit", testkit.SignRS256(t, key, kid1, with(good, "URLSCAN_KEY", "us-key", "CTR_ENTITIES_LIMIT", "50")),
			auth.Claims{Key: authKey, Host: mispHost, URLScanKey: "us-key", EntitiesLimit: 50},
			"",
		},
		{"aud list containing it", testkit.SignRS256(t, key, kid1, with(good, "aud", []string{"https://other.example", audience})), wantOK, ""},
		{"valid exp and nbf", testkit.SignRS256(t, key, kid1, with(good, "exp", future, "nbf", past)), wantOK, ""},
		{"HOST trimmed", testkit.SignRS256(t, key, kid1, with(good, "HOST", " "+mispHost+" ")), wantOK, ""},
		{
			"several MISPs", testkit.SignRS256(t, key, kid1, with(good, "HOST_2", " misp2.example ", "AuthKey_2", "k2", "HOST_4", "https://misp4.example", "AuthKey_4", "k4", "HOST_3", "", "AuthKey_3", "")),
			auth.Claims{Key: authKey, Host: mispHost, OtherMISPs: []auth.MISP{{Host: "misp2.example", Key: "k2"}, {Host: "https://misp4.example", Key: "k4"}}},
			"",
		},
		{"HOST_2 null", testkit.SignRS256(t, key, kid1, with(good, "HOST_2", nil, "AuthKey_2", nil)), wantOK, ""},
		{"HOST_6 ignored", testkit.SignRS256(t, key, kid1, with(good, "HOST_6", "misp6.example", "AuthKey_6", "k6")), wantOK, ""},
		{"HOST_2 without its key", testkit.SignRS256(t, key, kid1, with(good, "HOST_2", "misp2.example")), auth.Claims{}, "HOST_2 and AuthKey_2 go together: set both or neither"},
		{"AuthKey_5 without its host", testkit.SignRS256(t, key, kid1, with(good, "AuthKey_5", "k5", "HOST_5", " ")), auth.Claims{}, "HOST_5 and AuthKey_5 go together: set both or neither"},
		{"HOST_3 not a string", testkit.SignRS256(t, key, kid1, with(good, "HOST_3", 3, "AuthKey_3", "k3")), auth.Claims{}, auth.ReasonPayload},

		{"jwks_host absent", testkit.SignRS256(t, key, kid1, without(good, "jwks_host")), auth.Claims{}, auth.ReasonJWKSHostMissing},
		{"jwks_host empty", testkit.SignRS256(t, key, kid1, with(good, "jwks_host", "")), auth.Claims{}, auth.ReasonJWKSHostMissing},
		{"jwks_host not a string", testkit.SignRS256(t, key, kid1, with(good, "jwks_host", 42)), auth.Claims{}, auth.ReasonJWKSHostMissing},
		{
			"jwks_host not allowed", testkit.SignRS256(t, key, kid1, with(good, "jwks_host", "evil.example")),
			auth.Claims{},
			"jwks_host evil.example is not allowed: set JWKS_HOSTS to trust it",
		},
		{
			"jwks_host with control characters", testkit.SignRS256(t, key, kid1, with(good, "jwks_host", "a\nb")),
			auth.Claims{},
			"jwks_host a?b is not allowed: set JWKS_HOSTS to trust it",
		},
		{
			"jwks_host with a scheme", testkit.SignRS256(t, key, kid1, with(good, "jwks_host", "https://"+f.jwks.Host)),
			auth.Claims{},
			"jwks_host https://" + f.jwks.Host + " is not allowed: set JWKS_HOSTS to trust it",
		},
		{"kid absent", testkit.SignRS256(t, key, "", good), auth.Claims{}, auth.ReasonKIDNotFound},
		{"kid unknown", testkit.SignRS256(t, key, "no-such-kid", good), auth.Claims{}, auth.ReasonKIDNotFound},
		{"signed by another key", testkit.SignRS256(t, other, kid1, good), auth.Claims{}, auth.ReasonRegion},
		{"tampered payload", tampered, auth.Claims{}, auth.ReasonRegion},
		{"garbage signature", parts[0] + "." + parts[1] + ".AAAA", auth.Claims{}, auth.ReasonRegion},
		{"aud mismatch", testkit.SignRS256(t, key, kid1, with(good, "aud", "https://other.example")), auth.Claims{}, auth.ReasonAudience},
		{"aud with a trailing slash", testkit.SignRS256(t, key, kid1, with(good, "aud", audience+"/")), auth.Claims{}, auth.ReasonAudience},
		{"aud list without it", testkit.SignRS256(t, key, kid1, with(good, "aud", []string{"https://other.example"})), auth.Claims{}, auth.ReasonAudience},
		{"aud not a string", testkit.SignRS256(t, key, kid1, with(good, "aud", 7)), auth.Claims{}, auth.ReasonAudience},
		{"aud absent", testkit.SignRS256(t, key, kid1, without(good, "aud")), auth.Claims{}, auth.ReasonPayload},
		{"aud null", testkit.SignRS256(t, key, kid1, with(good, "aud", nil)), auth.Claims{}, auth.ReasonPayload},
		{"AuthKey absent", testkit.SignRS256(t, key, kid1, without(good, "AuthKey")), auth.Claims{}, auth.ReasonPayload},
		{"AuthKey empty", testkit.SignRS256(t, key, kid1, with(good, "AuthKey", "")), auth.Claims{}, auth.ReasonPayload},
		{"AuthKey not a string", testkit.SignRS256(t, key, kid1, with(good, "AuthKey", 1)), auth.Claims{}, auth.ReasonPayload},
		{"HOST absent", testkit.SignRS256(t, key, kid1, without(good, "HOST")), auth.Claims{}, auth.ReasonPayload},
		{"HOST blank", testkit.SignRS256(t, key, kid1, with(good, "HOST", "  ")), auth.Claims{}, auth.ReasonPayload},
		{"URLSCAN_KEY not a string", testkit.SignRS256(t, key, kid1, with(good, "URLSCAN_KEY", []int{1})), auth.Claims{}, auth.ReasonPayload},
		{"HS256 claim names only", testkit.SignRS256(t, key, kid1, without(with(good, "key", "k"), "AuthKey")), auth.Claims{}, auth.ReasonPayload},
		{"expired", testkit.SignRS256(t, key, kid1, with(good, "exp", past)), auth.Claims{}, auth.ReasonExpired},
		{"not yet valid", testkit.SignRS256(t, key, kid1, with(good, "nbf", future)), auth.Claims{}, auth.ReasonNotYet},
		{"exp of the wrong type", testkit.SignRS256(t, key, kid1, with(good, "exp", "tomorrow")), auth.Claims{}, auth.ReasonPayload},
		// Any other algorithm takes the HS256 path, which refuses it.
		{"RS512", rs512, auth.Claims{}, auth.ReasonSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.v.FromRequest(bearerRequest(tt.token))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("FromRequest: %v", err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("claims (-want +got):\n%s", diff)
				}
				return
			}
			checkReason(t, err, tt.reason)
			if want := "Authorization failed: " + tt.reason; err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
		})
	}
	if n := f.jwks.Hits.Load(); n != 1 {
		t.Errorf("the JWKS was fetched %d times for the whole table, want 1 (cache)", n)
	}
}

func TestConfigTokenWithoutSecret(t *testing.T) {
	key, _ := testkit.RSAKeys()
	f := newFixture(t, func(c *auth.Config) { c.Secret = "" })
	got, err := f.v.FromRequest(bearerRequest(testkit.SignRS256(t, key, kid1, f.claims())))
	if err != nil {
		t.Fatalf("a configuration token needs no SECRET_KEY: %v", err)
	}
	if got.Key != authKey {
		t.Errorf("Key = %q", got.Key)
	}
	hs := sign(t, jwt.SigningMethodHS256, []byte("x"), jwt.MapClaims{"key": "k"})
	_, err = f.v.FromRequest(bearerRequest(hs))
	checkReason(t, err, auth.ReasonNoSecret)
}

func TestForeignJWKSHostGetsNoRequest(t *testing.T) {
	key, _ := testkit.RSAKeys()
	f := newFixture(t)
	foreign := testkit.NewJWKS(t, kid1, &key.PublicKey) // serves the right key, but is not allowed
	tok := testkit.SignRS256(t, key, kid1, with(f.claims(), "jwks_host", foreign.Host))
	for range 5 {
		_, err := f.v.FromRequest(bearerRequest(tok))
		checkReason(t, err, "jwks_host "+foreign.Host+" is not allowed: set JWKS_HOSTS to trust it")
	}
	if n := foreign.Hits.Load(); n != 0 {
		t.Errorf("the foreign JWKS host got %d requests, want none", n)
	}
	// JWKS_HOSTS=none trusts no host at all.
	_, err := auth.New(auth.Config{JWKSHosts: auth.ParseHosts("none"), HTTPClient: foreign.Client()}).FromRequest(bearerRequest(
		testkit.SignRS256(t, key, kid1, with(f.claims(), "jwks_host", "visibility.amp.cisco.com"))))
	checkReason(t, err, "jwks_host visibility.amp.cisco.com is not allowed: set JWKS_HOSTS to trust it")
	// The default allow-list trusts XDR's hosts only.
	_, err = auth.New(auth.Config{HTTPClient: foreign.Client()}).FromRequest(bearerRequest(tok))
	checkReason(t, err, "jwks_host "+foreign.Host+" is not allowed: set JWKS_HOSTS to trust it")
	if n := foreign.Hits.Load(); n != 0 {
		t.Errorf("the foreign JWKS host got %d requests, want none", n)
	}
}

func TestJWKSCacheControl(t *testing.T) {
	tests := []struct {
		cacheControl string
		advance      time.Duration
		wantHits     int64
	}{
		{"", 9 * time.Minute, 1}, // default 10 minutes
		{"", 11 * time.Minute, 2},
		{"public, max-age=120", 119 * time.Second, 1},
		{"public, max-age=120", 121 * time.Second, 2},
		{"max-age=5", 30 * time.Second, 1}, // at least a minute
		{"max-age=5", 61 * time.Second, 2},
		{"no-cache", 30 * time.Second, 1},
		{"max-age=999999999", 23 * time.Hour, 1}, // at most a day
		{"max-age=999999999", 25 * time.Hour, 2},
		{"max-age=oops", 9 * time.Minute, 1},
	}
	key, _ := testkit.RSAKeys()
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s", tt.cacheControl, tt.advance), func(t *testing.T) {
			f := newFixture(t)
			f.jwks.Set(func(s *testkit.JWKS) { s.CacheControl = tt.cacheControl })
			tok := testkit.SignRS256(t, key, kid1, f.claims())
			for range 3 {
				if _, err := f.v.FromRequest(bearerRequest(tok)); err != nil {
					t.Fatal(err)
				}
			}
			f.clock.Advance(tt.advance)
			for range 3 {
				if _, err := f.v.FromRequest(bearerRequest(tok)); err != nil {
					t.Fatal(err)
				}
			}
			if n := f.jwks.Hits.Load(); n != tt.wantHits {
				t.Errorf("JWKS fetched %d times, want %d", n, tt.wantHits)
			}
		})
	}
}

func TestUnknownKidRefreshIsBounded(t *testing.T) {
	key, rotated := testkit.RSAKeys()
	f := newFixture(t)
	if _, err := f.v.FromRequest(bearerRequest(testkit.SignRS256(t, key, kid1, f.claims()))); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		_, err := f.v.FromRequest(bearerRequest(testkit.SignRS256(t, key, fmt.Sprintf("random-%d", i), f.claims())))
		checkReason(t, err, auth.ReasonKIDNotFound)
	}
	if n := f.jwks.Hits.Load(); n != 1 {
		t.Fatalf("random kids caused %d fetches within the refresh interval, want 1", n)
	}

	// XDR rotates its key: the new kid is found by the first refresh the interval allows.
	f.jwks.Set(func(s *testkit.JWKS) { s.Keys[kid2] = &rotated.PublicKey })
	newTok := testkit.SignRS256(t, rotated, kid2, f.claims())
	_, err := f.v.FromRequest(bearerRequest(newTok))
	checkReason(t, err, auth.ReasonKIDNotFound)
	f.clock.Advance(auth.DefaultRefreshInterval + time.Second)
	if _, err := f.v.FromRequest(bearerRequest(newTok)); err != nil {
		t.Fatalf("rotated key not picked up: %v", err)
	}
	for i := range 20 {
		_, err := f.v.FromRequest(bearerRequest(testkit.SignRS256(t, key, fmt.Sprintf("again-%d", i), f.claims())))
		checkReason(t, err, auth.ReasonKIDNotFound)
	}
	if n := f.jwks.Hits.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times, want 2", n)
	}
}

// TestConcurrentMissesFetchOnce runs in a synctest bubble, the verifier fetching the JWKS
// through an in-memory transport: synctest.Wait tells when every caller has piled up behind
// the one fetch, which the JWKS holds until then.
func TestConcurrentMissesFetchOnce(t *testing.T) {
	key, _ := testkit.RSAKeys()
	f := newFixture(t) // outside the bubble: its JWKS listens on a real socket
	tok := testkit.SignRS256(t, key, kid1, f.claims())
	unknown := testkit.SignRS256(t, key, "unknown", f.claims())
	synctest.Test(t, func(t *testing.T) {
		v := auth.New(auth.Config{
			Secret:     secret,
			JWKSHosts:  []string{f.jwks.Host},
			HTTPClient: &http.Client{Transport: testkit.HandlerTransport(f.jwks)},
			Now:        f.clock.Now,
		})
		gate := make(chan struct{})
		f.jwks.Set(func(s *testkit.JWKS) { s.Gate = gate })

		const callers = 32
		errs := make(chan error, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				tk := tok
				if i%4 == 0 {
					tk = unknown
				}
				_, err := v.FromRequest(bearerRequest(tk))
				if tk == unknown {
					var ae *auth.Error
					if errors.As(err, &ae) && ae.Reason == auth.ReasonKIDNotFound {
						err = nil
					}
				}
				errs <- err
			})
		}
		synctest.Wait() // every caller waits: on the fetch, or behind it
		if n := f.jwks.Hits.Load(); n != 1 {
			t.Errorf("%d fetches under way, want 1", n)
		}
		close(gate)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if n := f.jwks.Hits.Load(); n != 1 {
			t.Errorf("%d concurrent misses caused %d fetches, want 1", callers, n)
		}
	})
}

func TestJWKSFailures(t *testing.T) {
	key, _ := testkit.RSAKeys()
	tests := []struct {
		name  string
		setup func(s *testkit.JWKS)
		cause string
	}{
		{"HTTP 500", func(s *testkit.JWKS) { s.Status = http.StatusInternalServerError }, "HTTP 500"},
		{"HTTP 404", func(s *testkit.JWKS) { s.Status = http.StatusNotFound }, "HTTP 404"},
		{"not JSON", func(s *testkit.JWKS) { s.Body = "<html>" }, "not a JWK set"},
		{"no keys list", func(s *testkit.JWKS) { s.Body = `{"kid":"x"}` }, "not a JWK set"},
		{"keys not a list", func(s *testkit.JWKS) { s.Body = `{"keys":{}}` }, "not a JWK set"},
		{"too large", func(s *testkit.JWKS) { s.Body = `{"keys":[],"pad":"` + strings.Repeat("x", 300<<10) + `"}` }, "answer too large"},
		{"timed out", func(s *testkit.JWKS) { s.Gate = make(chan struct{}) }, "timed out"},
		{"redirect to plain HTTP", func(s *testkit.JWKS) { s.Redirect = "http://127.0.0.1:1/.well-known/jwks" }, "unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *auth.Config) { c.FetchTimeout = 200 * time.Millisecond })
			f.jwks.Set(tt.setup)
			_, err := f.v.FromRequest(bearerRequest(testkit.SignRS256(t, key, kid1, f.claims())))
			checkReason(t, err, "Failed to fetch the JWKS from "+f.jwks.Host+": "+tt.cause)
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		f := newFixture(t)
		f.jwks.Close()
		_, err := f.v.FromRequest(bearerRequest(testkit.SignRS256(t, key, kid1, f.claims())))
		checkReason(t, err, "Failed to fetch the JWKS from "+f.jwks.Host+": unreachable")
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		f := newFixture(t, func(c *auth.Config) { c.HTTPClient = nil })
		_, err := f.v.FromRequest(bearerRequest(testkit.SignRS256(t, key, kid1, f.claims())))
		checkReason(t, err, "Failed to fetch the JWKS from "+f.jwks.Host+": unreachable")
	})
}

func TestJWKSFailureBackoffAndStaleKeys(t *testing.T) {
	key, _ := testkit.RSAKeys()
	f := newFixture(t)
	tok := testkit.SignRS256(t, key, kid1, f.claims())
	if _, err := f.v.FromRequest(bearerRequest(tok)); err != nil {
		t.Fatal(err)
	}
	// The JWKS host goes down after the set expired: the last keys keep working.
	f.jwks.Set(func(s *testkit.JWKS) { s.Status = http.StatusServiceUnavailable })
	f.clock.Advance(11 * time.Minute)
	for range 5 {
		if _, err := f.v.FromRequest(bearerRequest(tok)); err != nil {
			t.Fatalf("stale keys not used while the JWKS host is down: %v", err)
		}
	}
	if n := f.jwks.Hits.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times, want 2 (one failure, then backing off)", n)
	}
	// Until a day after their expiry.
	f.clock.Advance(25 * time.Hour)
	_, err := f.v.FromRequest(bearerRequest(tok))
	checkReason(t, err, "Failed to fetch the JWKS from "+f.jwks.Host+": HTTP 503")
	_, err = f.v.FromRequest(bearerRequest(tok))
	checkReason(t, err, "Failed to fetch the JWKS from "+f.jwks.Host+": HTTP 503")
	if n := f.jwks.Hits.Load(); n != 3 {
		t.Errorf("JWKS fetched %d times, want 3: a failed fetch is not retried at once", n)
	}
	f.jwks.Set(func(s *testkit.JWKS) { s.Status = http.StatusOK })
	f.clock.Advance(6 * time.Second)
	if _, err := f.v.FromRequest(bearerRequest(tok)); err != nil {
		t.Fatalf("not recovered after the backoff: %v", err)
	}
}

func TestJWKSKeySelection(t *testing.T) {
	key, _ := testkit.RSAKeys()
	pub := key.PublicKey
	n := base64.RawURLEncoding.EncodeToString(pub.N.Bytes())
	short := make([]byte, 128) // a 1024-bit modulus
	short[0] = 0x80
	tests := []struct {
		name   string
		jwk    string
		reason string
	}{
		{"RSA, use and alg absent", fmt.Sprintf(`{"kty":"RSA","kid":%q,"n":%q,"e":"AQAB"}`, kid1, n), ""},
		{"padded base64", fmt.Sprintf(`{"kty":"RSA","kid":%q,"n":%q,"e":"AQAB"}`, kid1, base64.URLEncoding.EncodeToString(pub.N.Bytes())), ""},
		{"use enc", fmt.Sprintf(`{"kty":"RSA","use":"enc","kid":%q,"n":%q,"e":"AQAB"}`, kid1, n), auth.ReasonKIDNotFound},
		{"alg RS512", fmt.Sprintf(`{"kty":"RSA","alg":"RS512","kid":%q,"n":%q,"e":"AQAB"}`, kid1, n), auth.ReasonKIDNotFound},
		{"kty EC", fmt.Sprintf(`{"kty":"EC","kid":%q,"crv":"P-256","x":"AA","y":"AA"}`, kid1), auth.ReasonKIDNotFound},
		{"bad modulus", fmt.Sprintf(`{"kty":"RSA","kid":%q,"n":"!!","e":"AQAB"}`, kid1), auth.ReasonKIDNotFound},
		{"weak modulus", fmt.Sprintf(`{"kty":"RSA","kid":%q,"n":%q,"e":"AQAB"}`, kid1, base64.RawURLEncoding.EncodeToString(short)), auth.ReasonKIDNotFound},
		{"even exponent", fmt.Sprintf(`{"kty":"RSA","kid":%q,"n":%q,"e":"Ag"}`, kid1, n), auth.ReasonKIDNotFound},
		{"not an object", `"x"`, auth.ReasonKIDNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.jwks.Set(func(s *testkit.JWKS) {
				s.Keys = map[string]*rsa.PublicKey{}
				s.Extra = []string{tt.jwk}
			})
			_, err := f.v.FromRequest(bearerRequest(testkit.SignRS256(t, key, kid1, f.claims())))
			if tt.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			checkReason(t, err, tt.reason)
		})
	}
}

func TestConfigTokenAudience(t *testing.T) {
	key, _ := testkit.RSAKeys()
	tests := []struct {
		name     string
		audience string // Config.Audience
		url      string
		header   map[string]string
		aud      any
		ok       bool
	}{
		{"request over TLS", "", "https://relay.example.com/health", nil, "https://relay.example.com", true},
		{"request over TLS with port", "", "https://relay.example.com:8443/health", nil, "https://relay.example.com:8443", true},
		{"plain HTTP", "", "http://relay.example.com/health", nil, "http://relay.example.com", true},
		{"plain HTTP, https aud", "", "http://relay.example.com/health", nil, "https://relay.example.com", false},
		{
			"behind a load balancer", "", "http://10.0.0.5:8080/health",
			map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "relay.example.com"},
			"https://relay.example.com", true,
		},
		{
			"proxies appended values", "", "http://10.0.0.5:8080/health",
			map[string]string{"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "relay.example.com, 10.0.0.5"},
			"https://relay.example.com", true,
		},
		{"proto only", "", "http://relay.example.com/health", map[string]string{"X-Forwarded-Proto": "HTTPS"}, "https://relay.example.com", true},
		{"internal address", "", "http://10.0.0.5:8080/health", nil, "https://relay.example.com", false},
		{"configured audience", "https://xdr.example", "http://10.0.0.5:8080/health", nil, "https://xdr.example", true},
		{"configured audience wins over the request", "https://xdr.example", "https://relay.example.com/health", nil, "https://relay.example.com", false},
		{"configured audience in a list", "https://xdr.example", "https://relay.example.com/health", nil, []string{"a", "https://xdr.example"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *auth.Config) { c.Audience = tt.audience })
			r := httptest.NewRequest(http.MethodPost, tt.url, nil)
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			r.Header.Set("Authorization", "Bearer "+testkit.SignRS256(t, key, kid1, with(f.claims(), "aud", tt.aud)))
			_, err := f.v.FromRequest(r)
			if tt.ok {
				if err != nil {
					t.Fatalf("FromRequest: %v (request audience %q)", err, auth.RequestAudience(r))
				}
				return
			}
			checkReason(t, err, auth.ReasonAudience)
		})
	}
}

func TestVerifyConfigTokenOutsideARequest(t *testing.T) {
	key, _ := testkit.RSAKeys()
	f := newFixture(t, func(c *auth.Config) { c.Audience = audience })
	if _, err := f.v.Verify("Bearer " + testkit.SignRS256(t, key, kid1, f.claims())); err != nil {
		t.Fatal(err)
	}
	g := newFixture(t)
	_, err := g.v.Verify("Bearer " + testkit.SignRS256(t, key, kid1, g.claims()))
	checkReason(t, err, auth.ReasonAudience)
}

func TestRequestAudience(t *testing.T) {
	tests := []struct {
		url    string
		header map[string]string
		want   string
	}{
		{"https://relay.example.com/health", nil, "https://relay.example.com"},
		{"http://relay.example.com:8080/x/y", nil, "http://relay.example.com:8080"},
		{"http://10.0.0.5/health", map[string]string{"X-Forwarded-Host": "relay.example.com"}, "http://relay.example.com"},
		{"http://10.0.0.5/health", map[string]string{"X-Forwarded-Proto": "https"}, "https://10.0.0.5"},
		{"http://10.0.0.5/health", map[string]string{"X-Forwarded-Proto": " ", "X-Forwarded-Host": ""}, "http://10.0.0.5"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodPost, tt.url, nil)
		for k, v := range tt.header {
			r.Header.Set(k, v)
		}
		if got := auth.RequestAudience(r); got != tt.want {
			t.Errorf("RequestAudience(%s %v) = %q, want %q", tt.url, tt.header, got, tt.want)
		}
	}
	// A request rebuilt from a Lambda event: an absolute URL, no TLS state.
	r, err := http.NewRequest(http.MethodPost, "https://abc.lambda-url.eu-west-1.on.aws/health", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := auth.RequestAudience(r), "https://abc.lambda-url.eu-west-1.on.aws"; got != want {
		t.Errorf("Lambda request audience = %q, want %q", got, want)
	}
}

func TestEntitiesLimit(t *testing.T) {
	tests := []struct {
		name  string
		value any // the claim's value; absent when "absent"
		want  int
	}{
		{"string", "50", 50},
		{"number", 50, 50},
		{"spaces", " 7 ", 7},
		{"not a number", "abc", 0},
		{"empty", "", 0},
		{"zero", 0, 0},
		{"negative", -3, 0},
		{"float truncated", 5.7, 5},
		{"float below one", 0.5, 0},
		{"float string", "5.7", 0},
		{"true", true, 0},
		{"false", false, 0},
		{"null", nil, 0},
		{"absent", "absent", 0},
		{"list", []int{5}, 0},
		{"huge number", 1e12, 1<<31 - 1},
		{"huge string", "99999999999999999999", 1<<31 - 1},
		{"huge negative string", "-99999999999999999999", 0},
	}
	key, _ := testkit.RSAKeys()
	f := newFixture(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := jwt.MapClaims{"key": "k"}
			rs := f.claims()
			if tt.value != "absent" {
				hs["CTR_ENTITIES_LIMIT"] = tt.value
				rs["CTR_ENTITIES_LIMIT"] = tt.value
			}
			for kind, header := range map[string]string{
				"HS256": "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(secret), hs),
				"RS256": "Bearer " + testkit.SignRS256(t, key, kid1, rs),
			} {
				r := bearerRequest("")
				r.Header.Set("Authorization", header)
				got, err := f.v.FromRequest(r)
				if err != nil {
					t.Fatalf("%s: %v", kind, err)
				}
				if got.EntitiesLimit != tt.want {
					t.Errorf("%s: EntitiesLimit = %d, want %d", kind, got.EntitiesLimit, tt.want)
				}
			}
		})
	}
}

func TestParseHosts(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" , ,", nil},
		{"visibility.amp.cisco.com", []string{"visibility.amp.cisco.com"}},
		{" a.example , b.example:8443,a.example,, ", []string{"a.example", "b.example:8443"}},
		{"Visibility.AMP.cisco.com", []string{"Visibility.AMP.cisco.com"}},
		{" None ", []string{}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, auth.ParseHosts(tt.in)); diff != "" {
			t.Errorf("ParseHosts(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
	if diff := cmp.Diff([]string{"visibility.amp.cisco.com", "visibility.eu.amp.cisco.com", "visibility.apjc.amp.cisco.com"}, auth.DefaultJWKSHosts()); diff != "" {
		t.Errorf("DefaultJWKSHosts (-want +got):\n%s", diff)
	}
}
