package httpapi

import (
	"errors"
	"testing"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/service"
)

// idOf is a tenant id for claims: the relay's core names its tenants (service.Tenant).
func idOf(t *testing.T, c auth.Claims) service.TenantID {
	t.Helper()
	core, err := service.New(service.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return core.Tenant(c).ID()
}

// TestInFlightCounts: the share is checked before the relay's slots, refusals take nothing,
// and a tenant's entry goes when its last request leaves.
func TestInFlightCounts(t *testing.T) {
	f := newInFlight(3, 2)
	a, b, c := idOf(t, auth.Claims{Key: "a"}), idOf(t, auth.Claims{Key: "b"}), idOf(t, auth.Claims{Key: "c"})
	for i, step := range []struct {
		enter, leave *service.TenantID
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
	core, err := service.New(service.Config{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := newAPI(core, Config{MaxInFlight: 8})
	if err != nil {
		t.Fatal(err)
	}
	if a.cfg.MaxInFlightPerTenant != 2 || a.inFlight.perTenant != 2 {
		t.Errorf("share of MaxInFlight 8: %d (counted with %d), want 2", a.cfg.MaxInFlightPerTenant, a.inFlight.perTenant)
	}
	if _, err := newAPI(core, Config{MaxInFlight: 8, MaxInFlightPerTenant: 9}); err == nil {
		t.Error("a share larger than MaxInFlight was accepted")
	}
	if _, err := newAPI(core, Config{MaxInFlight: 8, MaxInFlightPerTenant: 8}); err != nil {
		t.Errorf("a share of all of MaxInFlight: %v", err)
	}
}
