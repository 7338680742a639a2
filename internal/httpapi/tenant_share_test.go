package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/httpapi"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/intel/inteltest"
	"github.com/misp-relay/misp-relay/internal/service"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

// The two busy answers: the tenant's own share is used up, or the whole relay is.
const (
	msgOwnShareBusy = "The relay is busy: too many of your requests are in flight. Try again in a moment."
	msgRelayBusy    = "The relay is busy: too many requests are in flight. Try again in a moment."
)

// Bodies of one lookup: stalledLookup waits in the stalling MISP until released, quickLookup
// is answered at once.
const (
	stalledLookup = `[{"type":"ip","value":"192.0.2.1"}]`
	quickLookup   = `[{"type":"ip","value":"192.0.2.2"}]`
)

// stallingMISP is a backend that tells each lookup's key on entered and holds the lookups of
// 192.0.2.1 until release (or until their request ends): a tenant's MISP that stalls.
type stallingMISP struct {
	entered chan string
	release chan struct{}
	once    sync.Once
}

// newStallingMISP makes one whose entered channel holds up to n lookups, released when the
// test ends (also when it fails early, so the server can close).
func newStallingMISP(t *testing.T, n int) *stallingMISP {
	m := &stallingMISP{entered: make(chan string, n), release: make(chan struct{})}
	t.Cleanup(m.unblock)
	return m
}

func (m *stallingMISP) unblock() { m.once.Do(func() { close(m.release) }) }

func (m *stallingMISP) backend() intel.Backend {
	return &inteltest.Backend{SearchFn: func(ctx context.Context, key string, q intel.Query) ([]intel.Event, error) {
		m.entered <- key
		if q.Value == "192.0.2.1" {
			select {
			case <-m.release:
			case <-ctx.Done():
			}
		}
		return nil, nil
	}}
}

// noneEntered fails the test if a lookup reached the backend: refused requests must not.
func (m *stallingMISP) noneEntered(t *testing.T, after string) {
	t.Helper()
	if n := len(m.entered); n > 0 {
		t.Errorf("%s: %d lookups reached MISP, want none", after, n)
	}
}

// observeAs posts an observe request with the given Authorization header (checked against the
// spec by h.do) and returns its body.
func (h *harness) observeAs(authorization, body string) map[string]any {
	h.t.Helper()
	_, got := h.do(http.MethodPost, "/observe/observables", http.Header{"Authorization": {authorization}}, body)
	return got
}

// hs256 is the Authorization header of an HS256 token for MISP key (the relay's API_URL).
func hs256(t *testing.T, key string) string {
	return "Bearer " + token(t, auth.Claims{Key: key})
}

func wantBusy(t *testing.T, what string, got map[string]any, want string) {
	t.Helper()
	if code, msg := errorOf(t, got); code != "service unavailable" || msg != want {
		t.Errorf("%s: %q %q, want service unavailable %q", what, code, msg, want)
	}
}

func wantServed(t *testing.T, what string, got map[string]any) {
	t.Helper()
	if got["errors"] != nil || got["data"] == nil {
		t.Errorf("%s: %v, want data and no errors", what, got)
	}
}

// TestOneTenantCannotTakeEverySlot (found by review): a tenant whose MISP stalls holds its
// requests open. Before per-tenant shares its requests took every MAX_IN_FLIGHT slot and every
// other tenant was told the relay was busy; now past its share (MAX_IN_FLIGHT_PER_TENANT, by
// default a quarter of MAX_IN_FLIGHT and at least 1) its own requests are refused at once,
// and another tenant is served.
func TestOneTenantCannotTakeEverySlot(t *testing.T) {
	h := newHarness(t, allEvents())
	m := newStallingMISP(t, 8)
	h.serve(service.Config{Backend: m.backend()}, httpapi.Config{MaxInFlight: 2})
	a, b := hs256(t, "tenant-A-key"), hs256(t, "tenant-B-key")

	done := make(chan struct{})
	go func() {
		defer close(done)
		h.observeAs(a, stalledLookup)
	}()
	<-m.entered
	for i := range 3 {
		wantBusy(t, fmt.Sprintf("tenant A's request %d past its share", i+2), h.observeAs(a, quickLookup), msgOwnShareBusy)
	}
	m.noneEntered(t, "tenant A past its share")
	wantServed(t, "tenant B while A's MISP stalls", h.observeAs(b, quickLookup))
	m.unblock()
	<-done
}

// TestTenantShares: a tenant is one (MISP host, API key) pair, as its token's claims give them
// (no host: the relay's API_URL). A tenant over its share is refused while other tenants,
// including the same key on another MISP and another key on the same MISP, are served; when
// the shares together fill MAX_IN_FLIGHT, the relay is busy for everyone new.
func TestTenantShares(t *testing.T) {
	key, _ := testkit.RSAKeys()
	const kid, audience = "test-kid", "https://relay.example"
	jwks := testkit.NewJWKS(t, kid, &key.PublicKey)
	h := newHarness(t, allEvents())
	m := newStallingMISP(t, 16)
	h.serve(service.Config{
		Backend: m.backend(),
		Sources: hostSources(m.backend(), "", func(string) (intel.Backend, string, error) { return m.backend(), "", nil }),
	}, httpapi.Config{
		MaxInFlight:          5,
		MaxInFlightPerTenant: 2,
		Verifier: auth.New(auth.Config{
			Secret: testSecret, JWKSHosts: []string{jwks.Host}, Audience: audience, HTTPClient: jwks.Client(),
		}),
	})
	configToken := func(host, mispKey string) string {
		return "Bearer " + testkit.SignRS256(t, key, kid, jwt.MapClaims{"AuthKey": mispKey, "HOST": host, "jwks_host": jwks.Host, "aud": audience})
	}
	tenantA := hs256(t, "key-A") // API_URL's MISP
	var held sync.WaitGroup
	hold := func(authorization string) {
		held.Go(func() { h.observeAs(authorization, stalledLookup) })
		<-m.entered
	}
	hold(tenantA)
	hold(tenantA)

	// A's share is used up, whichever token spells it and whatever it asks.
	wantBusy(t, "tenant A, third request", h.observeAs(tenantA, quickLookup), msgOwnShareBusy)
	wantBusy(t, "tenant A, another token for the same key", h.observeAs(hs256(t, "key-A"), quickLookup), msgOwnShareBusy)
	_, got := h.do(http.MethodPost, "/health", http.Header{"Authorization": {tenantA}}, "")
	wantBusy(t, "tenant A's health check", got, msgOwnShareBusy)
	m.noneEntered(t, "tenant A past its share")

	// Other tenants are served meanwhile.
	for _, tc := range []struct{ name, authorization string }{
		{"another key on API_URL's MISP", hs256(t, "key-B")},
		{"A's key on another MISP", configToken("https://misp-a.example", "key-A")},
		{"another key on that MISP", configToken("https://misp-a.example", "key-B")},
	} {
		wantServed(t, tc.name, h.observeAs(tc.authorization, quickLookup))
		if k := <-m.entered; k != "key-A" && k != "key-B" {
			t.Errorf("%s: MISP asked with %q", tc.name, k)
		}
	}

	// The shares together fill MAX_IN_FLIGHT (A 2, C 2, D 1): a new tenant is told the relay
	// is busy, and C, over its share, is told its own share is.
	tenantC := configToken("https://misp-c.example", "key-C")
	hold(tenantC)
	hold(tenantC)
	hold(hs256(t, "key-D"))
	wantBusy(t, "tenant E while the relay is full", h.observeAs(hs256(t, "key-E"), quickLookup), msgRelayBusy)
	wantBusy(t, "tenant C past its share while the relay is full", h.observeAs(tenantC, quickLookup), msgOwnShareBusy)
	m.noneEntered(t, "a full relay")

	m.unblock()
	held.Wait()
	wantServed(t, "tenant A after the load", h.observeAs(tenantA, quickLookup))
}

// TestTenantCountsEmptyAfterLoad: many tenants' requests at once, some refused by their share
// or by MAX_IN_FLIGHT, leave no count behind: the per-tenant map holds only tenants with a
// request in flight, so it cannot grow with the number of tenants ever seen.
func TestTenantCountsEmptyAfterLoad(t *testing.T) {
	const tenants, perTenant, maxInFlight, share = 6, 5, 8, 2
	h := newHarness(t, allEvents())
	m := newStallingMISP(t, tenants*perTenant)
	tenantsInFlight := h.serve(service.Config{Backend: m.backend()}, httpapi.Config{MaxInFlight: maxInFlight, MaxInFlightPerTenant: share})

	answered := make(chan map[string]any, tenants*perTenant)
	for i := range tenants {
		authorization := hs256(t, fmt.Sprintf("load-key-%d", i))
		for range perTenant {
			go func() { answered <- h.observeAs(authorization, stalledLookup) }()
		}
	}
	// Every request either reaches MISP (and stalls there) or is refused at once.
	inMISP := map[string]int{}
	refused := 0
	for range tenants * perTenant {
		select {
		case k := <-m.entered:
			inMISP[k]++
		case got := <-answered:
			if code, _ := errorOf(t, got); code != "service unavailable" {
				t.Errorf("a refused request: %v", got)
			}
			refused++
		}
	}
	total := 0
	for k, n := range inMISP {
		total += n
		if n > share {
			t.Errorf("%s had %d requests in flight, more than its share of %d", k, n, share)
		}
	}
	if total != maxInFlight {
		t.Errorf("%d requests in flight, want MAX_IN_FLIGHT (%d): the shares of %d tenants exceed it", total, maxInFlight, tenants)
	}
	if n := tenantsInFlight(); n != len(inMISP) {
		t.Errorf("%d tenants counted in flight, %d have requests in MISP", n, len(inMISP))
	}

	m.unblock()
	for range total {
		wantServed(t, "a released request", <-answered)
	}
	if n := tenantsInFlight(); n != 0 {
		t.Errorf("%d tenants still counted after every request ended, want 0", n)
	}
	wantServed(t, "after the load", h.observeAs(hs256(t, "load-key-0"), quickLookup))
	if n := tenantsInFlight(); n != 0 {
		t.Errorf("%d tenants counted after one more request, want 0", n)
	}
}
