package main

import (
	"errors"
	"testing"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/service"
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

type namedMISP struct {
	service.MISP
	base string
}

func TestMISPPool(t *testing.T) {
	built := 0
	pool := newMISPPool([]string{"misp.example.org", "misp2.example.org:8443"}, func(base string) (service.MISP, error) {
		built++
		return namedMISP{base: base}, nil
	})
	m, base, err := pool.get("misp.example.org")
	if err != nil || base != "https://misp.example.org" || m.(namedMISP).base != base {
		t.Fatalf("get = %v, %q, %v", m, base, err)
	}
	if _, _, err := pool.get("https://misp.example.org/"); err != nil || built != 1 {
		t.Errorf("the same MISP was built %d times (err %v), want once", built, err)
	}
	if _, _, err := pool.get("https://misp2.example.org:8443"); err != nil || built != 2 {
		t.Errorf("second allowed host: built %d, err %v", built, err)
	}
	var ae *auth.Error
	if _, _, err := pool.get("https://169.254.169.254"); !errors.As(err, &ae) || built != 2 {
		t.Errorf("a host outside MISP_ALLOWED_HOSTS: err %v, built %d", err, built)
	}
	if _, _, err := pool.get("https://misp2.example.org"); err == nil {
		t.Error("the allow-list compares host:port as written; another port must not pass")
	}

	open := newMISPPool(nil, func(base string) (service.MISP, error) { return namedMISP{base: base}, nil })
	for i := range maxMISPHosts {
		if _, err := open.add("https://misp" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ".example"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := open.add("https://one-too-many.example"); err == nil {
		t.Errorf("more than %d MISP hosts accepted", maxMISPHosts)
	}
}
