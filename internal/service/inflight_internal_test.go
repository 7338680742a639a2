package service

import (
	"errors"
	"testing"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/intel"
)

// idOf is the tenant id of claims on a relay whose Sources are as the app's: API_URL's MISP
// (api.example) or the token's host, named after intel.MISPBase.
func idOf(c auth.Claims) tenantID {
	s := &Service{cfg: Config{Sources: func(c auth.Claims) ([]intel.Source, error) {
		var out []intel.Source
		for _, m := range c.MISPs() {
			host := m.Host
			if host == "" {
				host = "https://api.example"
			}
			base, hostport, err := intel.MISPBase(host)
			if err != nil {
				return nil, err
			}
			out = append(out, intel.Source{Name: "MISP " + hostport, UI: base, Key: m.Key})
		}
		return out, nil
	}}}
	return s.tenantFor(c).id
}

// TestTenantIDs: a tenant is what it asks (its sources and keys) and nothing else: no part
// can be shifted into another, and the other claims do not make another tenant.
func TestTenantIDs(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b auth.Claims
		same bool
	}{
		{"the same pair", auth.Claims{Host: "https://m.example", Key: "k"}, auth.Claims{Host: "https://m.example", Key: "k"}, true},
		{"other claims", auth.Claims{Key: "k"}, auth.Claims{Key: "k", URLScanKey: "u", EntitiesLimit: 3}, true},
		{"another key", auth.Claims{Key: "k1"}, auth.Claims{Key: "k2"}, false},
		{"another host", auth.Claims{Host: "https://a.example", Key: "k"}, auth.Claims{Host: "https://b.example", Key: "k"}, false},
		{"API_URL or a named host", auth.Claims{Key: "k"}, auth.Claims{Host: "https://a.example", Key: "k"}, false},
		{"a byte moved across", auth.Claims{Host: "ab", Key: "c"}, auth.Claims{Host: "a", Key: "bc"}, false},
		{"key as host", auth.Claims{Key: "k"}, auth.Claims{Host: "k"}, false},
		{"the host spelt otherwise", auth.Claims{Host: "https://MISP.Example.org./", Key: "k"}, auth.Claims{Host: "misp.example.org", Key: "k"}, true},
		{"the key spelt otherwise", auth.Claims{Key: "K"}, auth.Claims{Key: "k"}, false},
		{"two MISPs or one", auth.Claims{Key: "k", OtherMISPs: []auth.MISP{{Host: "b.example", Key: "k"}}}, auth.Claims{Key: "k"}, false},
	} {
		if got := idOf(tc.a) == idOf(tc.b); got != tc.same {
			t.Errorf("%s: same tenant = %v, want %v", tc.name, got, tc.same)
		}
	}
}

// TestInFlightCounts: the share is checked before the relay's slots, refusals take nothing,
// and a tenant's entry goes when its last request leaves.
func TestInFlightCounts(t *testing.T) {
	f := newInFlight(3, 2)
	a, b, c := idOf(auth.Claims{Key: "a"}), idOf(auth.Claims{Key: "b"}), idOf(auth.Claims{Key: "c"})
	for i, step := range []struct {
		enter, leave *tenantID
		want         error
		tenants      int
	}{
		{enter: &a, tenants: 1},
		{enter: &a, tenants: 1},
		{enter: &a, want: errTenantBusy, tenants: 1},
		{enter: &b, tenants: 2},
		{enter: &c, want: errBusy, tenants: 2},       // the relay is full
		{enter: &a, want: errTenantBusy, tenants: 2}, // and A is over its share: said first
		{leave: &b, tenants: 1},
		{enter: &c, tenants: 2},
		{leave: &a, tenants: 2},
		{leave: &a, tenants: 1},
		{leave: &c, tenants: 0},
		{enter: &a, tenants: 1},
		{enter: &a, tenants: 1},
		{enter: &b, tenants: 2},
		{enter: &c, want: errBusy, tenants: 2},
	} {
		if step.leave != nil {
			f.leave(*step.leave)
		} else if err := f.enter(*step.enter); !errors.Is(err, step.want) {
			t.Errorf("step %d: enter = %v, want %v", i, err, step.want)
		}
		if n := f.tenants(); n != step.tenants {
			t.Errorf("step %d: %d tenants in flight, want %d", i, n, step.tenants)
		}
	}
}

// TestPerTenantSetting: the share defaults to a quarter of MaxInFlight, at least 1, and cannot
// exceed it.
func TestPerTenantSetting(t *testing.T) {
	for total, want := range map[int]int{1: 1, 3: 1, 4: 1, 10: 2, 256: 64} {
		if got := DefaultMaxInFlightPerTenant(total); got != want {
			t.Errorf("DefaultMaxInFlightPerTenant(%d) = %d, want %d", total, got, want)
		}
	}
	s, err := New(Config{MaxInFlight: 8})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.MaxInFlightPerTenant != 2 || s.inFlight.perTenant != 2 {
		t.Errorf("share of MaxInFlight 8: %d (counted with %d), want 2", s.cfg.MaxInFlightPerTenant, s.inFlight.perTenant)
	}
	if _, err := New(Config{MaxInFlight: 8, MaxInFlightPerTenant: 9}); err == nil {
		t.Error("a share larger than MaxInFlight was accepted")
	}
	if _, err := New(Config{MaxInFlight: 8, MaxInFlightPerTenant: 8}); err != nil {
		t.Errorf("a share of all of MaxInFlight: %v", err)
	}
}
