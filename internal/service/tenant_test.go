package service

import (
	"testing"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/intel"
)

// idOf is the tenant id of claims on a relay whose Sources are as the app's: API_URL's MISP
// (api.example) or the token's host, named after intel.MISPBase.
func idOf(c auth.Claims) TenantID {
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
	return s.Tenant(c).ID()
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
