package upstream

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"testing"
)

// recordingDialer records the addresses it was asked to dial and never connects: the guard's
// tests must not send a packet anywhere but loopback, even when the guard is broken.
type recordingDialer struct {
	mu    sync.Mutex
	addrs []string
}

func (d *recordingDialer) DialContext(_ context.Context, _, addr string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addrs = append(d.addrs, addr)
	return nil, errors.New("recordingDialer never connects")
}

// fakeDNS maps names in-process: no DNS query leaves the test.
func fakeDNS(names map[string][]string) Lookup {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		list, ok := names[host]
		if !ok {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		var out []netip.Addr
		for _, s := range list {
			out = append(out, netip.MustParseAddr(s))
		}
		return out, nil
	}
}

// TestGuardRefusesBeforeDialling: metadata, private and mixed answers are refused before
// the dialer is asked for anything; only a name whose every address is public is dialled,
// at those addresses (not by name again, which a rebinding DNS could answer differently).
func TestGuardRefusesBeforeDialling(t *testing.T) {
	dns := fakeDNS(map[string][]string{
		"metadata.google.internal": {"169.254.169.254"},
		"metadata.azure.internal":  {"169.254.169.254"},
		"aws-v6.internal":          {"fd00:ec2::254"},
		"alibaba.internal":         {"100.100.100.200"},
		"rebind.example":           {"93.184.215.14", "127.0.0.1"}, // one public, one loopback
		"mapped.example":           {"::ffff:10.0.0.1"},
		"nat64.example":            {"64:ff9b::a9fe:a9fe"}, // 169.254.169.254 through NAT64
		"public.example":           {"93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"},
	})
	refused := []string{
		"169.254.169.254:80", "[fd00:ec2::254]:80", "metadata.google.internal:80", "metadata.azure.internal:80",
		"aws-v6.internal:80", "alibaba.internal:80", "rebind.example:443", "mapped.example:443",
		"nat64.example:443", "10.1.2.3:443", "[fe80::1%25eth0]:443", "[fe80::1%eth0]:443", "192.168.1.1:443",
		"0.0.0.0:443", "[::]:443", "224.0.0.1:443", "100.64.0.1:443", "192.0.0.192:80",
	}
	for _, addr := range refused {
		rec := &recordingDialer{}
		g := newPublicGuard(dns)
		g.dialer, g.plain = rec, rec
		_, err := g.dial(context.Background(), "tcp", addr)
		var npe *NotPublicError
		if !errors.As(err, &npe) {
			t.Errorf("dial %s: %v, want a NotPublicError", addr, err)
		}
		if len(rec.addrs) != 0 {
			t.Errorf("dial %s: the dialer was asked for %v", addr, rec.addrs)
		}
	}

	rec := &recordingDialer{}
	g := newPublicGuard(dns)
	g.dialer = rec
	_, _ = g.dial(context.Background(), "tcp", "public.example:443")
	want := []string{"93.184.215.14:443", "[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:443"}
	if len(rec.addrs) != 2 || rec.addrs[0] != want[0] || rec.addrs[1] != want[1] {
		t.Errorf("a public name dialled %v, want %v", rec.addrs, want)
	}
}

// TestPublicControl is the socket-level backstop: whatever address the dialer ends up with,
// a non-public one is refused before connect(2).
func TestPublicControl(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:80":            false,
		"[::1]:80":                false,
		"[::ffff:127.0.0.1]:80":   false,
		"169.254.169.254:80":      false,
		"[fd00:ec2::254]:80":      false,
		"10.0.0.1:80":             false,
		"93.184.215.14:443":       true,
		"[2606:4700::1111]:443":   true,
		"not an address":          false,
		"[fe80::1%eth0]:80":       false,
		"[64:ff9b::7f00:1]:80":    false, // 127.0.0.1 through NAT64
		"[2002:7f00:1::1]:80":     false, // 127.0.0.1 through 6to4
		"[64:ff9b::5db8:d70e]:80": true,  // 93.184.215.14 through NAT64
	} {
		err := publicControl("tcp", addr, nil)
		if (err == nil) != ok {
			t.Errorf("publicControl(%s) = %v, want allowed %v", addr, err, ok)
		}
	}
}

// TestProxyTargetChecked: through a proxy, the target is resolved and checked before the
// request is handed to the proxy, and only the proxy's own address is dialled unchecked.
func TestProxyTargetChecked(t *testing.T) {
	if got := proxyAddr(mustURL(t, "http://Proxy.Internal")); got != "proxy.internal:80" {
		t.Errorf("proxyAddr = %q", got)
	}
	if got := proxyAddr(mustURL(t, "https://10.0.0.8:3128")); got != "10.0.0.8:3128" {
		t.Errorf("proxyAddr = %q", got)
	}
	g := newPublicGuard(fakeDNS(map[string][]string{"metadata.google.internal": {"169.254.169.254"}}))
	if _, err := g.resolve(context.Background(), "metadata.google.internal"); err == nil {
		t.Error("a metadata name was accepted as a proxy target")
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
