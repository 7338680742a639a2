package app

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/intel"
)

func TestMISPBase(t *testing.T) {
	tests := []struct{ in, base, host string }{
		{"https://misp.example.org", "https://misp.example.org", "misp.example.org"},
		{"https://MISP.example.org/", "https://misp.example.org", "misp.example.org"},
		{"misp.example.org", "https://misp.example.org", "misp.example.org"},
		{"http://10.0.0.5:8080/misp/", "http://10.0.0.5:8080/misp", "10.0.0.5:8080"},
	}
	for _, tt := range tests {
		base, host, err := mispBase(tt.in)
		if err != nil || base != tt.base || host != tt.host {
			t.Errorf("mispBase(%q) = %q, %q, %v; want %q, %q", tt.in, base, host, err, tt.base, tt.host)
		}
	}
	for _, bad := range []string{"", "ftp://misp.example", "https://user:pw@misp.example", "https://misp.example/?x=1", "https://"} {
		if _, _, err := mispBase(bad); err == nil {
			t.Errorf("mispBase(%q) accepted", bad)
		}
	}
}

func TestAllowedHosts(t *testing.T) {
	tests := []struct {
		env, apiURL string
		want        []string
	}{
		{"", "https://misp.example.org/", []string{"misp.example.org"}}, // API_URL's MISP only
		{"", "", []string{"*"}}, // a relay for configuration tokens only
		{"", "/srv/feed", []string{"*"}},
		{"misp1.example, https://MISP2.example:8443/", "https://misp.example.org", []string{"misp1.example", "misp2.example:8443"}},
		{"*", "https://misp.example.org", []string{"*"}},
	}
	for _, tt := range tests {
		got, err := allowedHosts(tt.env, tt.apiURL)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("allowedHosts(%q, %q) (-want +got):\n%s", tt.env, tt.apiURL, diff)
		}
	}
	if _, err := allowedHosts("ftp://x", ""); err == nil {
		t.Error("a malformed entry was accepted")
	}
}

type namedMISP struct {
	intel.Backend
	base  string
	named bool
}

func TestMISPPool(t *testing.T) {
	built := 0
	pool := newMISPPool([]string{"misp.example.org", "misp2.example.org:8443", "lab.example:8080"}, func(base string, kind hostKind) (pooledMISP, error) {
		built++
		return pooledMISP{backend: namedMISP{base: base, named: kind != operatorHost}}, nil
	})
	m, base, err := pool.get("misp.example.org")
	if err != nil || base != "https://misp.example.org" || m.(namedMISP).base != base || !m.(namedMISP).named {
		t.Fatalf("get = %v, %q, %v", m, base, err)
	}
	if _, _, err := pool.get("https://misp.example.org/"); err != nil || built != 1 {
		t.Errorf("the same MISP was built %d times (err %v), want once", built, err)
	}
	if _, _, err := pool.get("https://misp2.example.org:8443"); err != nil || built != 2 {
		t.Errorf("second allowed host: built %d, err %v", built, err)
	}
	if _, _, err := pool.get("http://lab.example:8080"); err != nil {
		t.Errorf("a listed http host: %v", err)
	}
	refused := []string{
		"https://169.254.169.254",     // not listed
		"https://misp2.example.org",   // listed with another port
		"https://misp.example.org/x1", // a path: one client per MISP
	}
	var ae *auth.Error
	for _, h := range refused {
		if _, _, err := pool.get(h); !errors.As(err, &ae) {
			t.Errorf("get(%q) = %v, want an authorization error", h, err)
		}
	}
	if built != 3 {
		t.Errorf("refused hosts were built: %d clients", built)
	}

	open := newMISPPool([]string{"*"}, func(base string, _ hostKind) (pooledMISP, error) {
		return pooledMISP{backend: namedMISP{base: base}}, nil
	})
	if _, _, err := open.get("http://anything.example"); !errors.As(err, &ae) {
		t.Errorf("an unlisted http host: %v, want refused (the key would travel in clear text)", err)
	}
	for i := range maxMISPHosts {
		if _, _, err := open.get(fmt.Sprintf("https://misp%d.example", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Past the bound, the least recently used MISP makes room (see hostile_pool_test.go).
	if _, _, err := open.get("https://one-too-many.example"); err != nil || open.len() != maxMISPHosts {
		t.Errorf("more than %d MISP hosts: %v, %d held", maxMISPHosts, err, open.len())
	}
}
