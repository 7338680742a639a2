package app

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

// TestMaxInFlightPerTenant: MAX_IN_FLIGHT_PER_TENANT defaults to a quarter of MAX_IN_FLIGHT (at
// least 1), may be at most MAX_IN_FLIGHT, and a malformed value names the variable.
func TestMaxInFlightPerTenant(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want int
	}{
		{"default", nil, 64},
		{"a quarter of MAX_IN_FLIGHT", map[string]string{"MAX_IN_FLIGHT": "10"}, 2},
		{"at least 1", map[string]string{"MAX_IN_FLIGHT": "3"}, 1},
		{"set", map[string]string{"MAX_IN_FLIGHT_PER_TENANT": " 5 "}, 5},
		{"all of MAX_IN_FLIGHT", map[string]string{"MAX_IN_FLIGHT": "10", "MAX_IN_FLIGHT_PER_TENANT": "10"}, 10},
	} {
		cfg, err := loadConfig(testkit.Env(tc.env))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if cfg.maxInFlightPerTenant != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, cfg.maxInFlightPerTenant, tc.want)
		}
	}
	for _, tc := range []struct {
		env  map[string]string
		want string // in the message, besides the variable's name
	}{
		{map[string]string{"MAX_IN_FLIGHT_PER_TENANT": "0"}, `"0"`},
		{map[string]string{"MAX_IN_FLIGHT_PER_TENANT": "-2"}, `"-2"`},
		{map[string]string{"MAX_IN_FLIGHT_PER_TENANT": "a few"}, `"a few"`},
		{map[string]string{"MAX_IN_FLIGHT_PER_TENANT": "257"}, "at most MAX_IN_FLIGHT (256)"},
		{map[string]string{"MAX_IN_FLIGHT": "10", "MAX_IN_FLIGHT_PER_TENANT": "11"}, "at most MAX_IN_FLIGHT (10)"},
	} {
		_, err := loadConfig(testkit.Env(tc.env))
		if err == nil || !strings.Contains(err.Error(), "MAX_IN_FLIGHT_PER_TENANT") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want one naming MAX_IN_FLIGHT_PER_TENANT and %s", tc.env, err, tc.want)
		}
	}
}

// TestPerTenantShareServed: the relay New builds applies MAX_IN_FLIGHT_PER_TENANT: with one of
// a tenant's lookups held by a stalled MISP, its next request is refused at once, where
// MAX_IN_FLIGHT's default share (2 of 8) would have let it in.
func TestPerTenantShareServed(t *testing.T) {
	const secret, key = "share-test-secret", "ShareMispKey0123456789abcdefghijABCDEFGHI"
	m := misptest.New(t, key)
	gate := make(chan struct{})
	m.Always("/attributes/restSearch", misptest.Answer{Wait: gate})
	a, err := New(testkit.Env(map[string]string{
		"SECRET_KEY": secret, "API_URL": m.URL, "MAX_IN_FLIGHT": "8", "MAX_IN_FLIGHT_PER_TENANT": "1",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	srv := httptest.NewServer(a.Handler)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(gate) }) // runs first: the held request ends, the server can close
	authorization := "Bearer " + testkit.JWT(t, secret, auth.Claims{Key: key})
	observe := func(ctx context.Context) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/observe/observables", strings.NewReader(`[{"type":"ip","value":"198.51.100.7"}]`))
		if err != nil {
			return "", err
		}
		req.Header.Set("Authorization", authorization)
		resp, err := srv.Client().Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return string(body), err
	}
	go func() { _, _ = observe(context.Background()) }()
	ctx := testkit.Context(t)
	if err := m.WaitRequests(ctx, "/attributes/restSearch", 1); err != nil {
		t.Fatal(err)
	}
	got, err := observe(ctx) // a failure bound only: a request let in would wait for the gate
	if err != nil || !strings.Contains(got, "too many of your requests are in flight") {
		t.Errorf("the tenant's second request: %v %s", err, got)
	}
}
