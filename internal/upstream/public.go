package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"
)

// NotPublicError is a connection PublicOnly refused: the host named, or one of the addresses
// it resolved to, is not a public unicast address.
type NotPublicError struct {
	Host string
	Addr netip.Addr // the address refused; invalid when the host itself is not acceptable
}

func (e *NotPublicError) Error() string {
	if !e.Addr.IsValid() {
		return fmt.Sprintf("refusing to connect to %q: not a public host", e.Host)
	}
	return fmt.Sprintf("refusing to connect to %q: %s is not a public address", e.Host, e.Addr)
}

// Lookup resolves a host name to its addresses (net.DefaultResolver.LookupNetIP by default;
// tests map names in-process).
type Lookup func(ctx context.Context, host string) ([]netip.Addr, error)

// PublicOnly makes c (built by NewHTTPClient) connect only to public unicast addresses:
// loopback, private (RFC 1918, unique-local fc00::/7), link-local (cloud metadata at
// 169.254.169.254 included), CGNAT, multicast, unspecified, reserved and documentation
// addresses are refused, whatever the spelling of the host (IPv4-mapped IPv6, NAT64 and
// 6to4 forms of a refused IPv4 address too), before any packet is sent to them.
//
// The check is made at dial time on the addresses the connection will use: the host is
// resolved once, every address is checked (one refused address refuses the host, so a DNS
// answer mixing a public and an internal address does not get through), and only the checked
// addresses are dialled, so DNS rebinding between a check and the connection is impossible.
// A socket-level check (net.Dialer.Control) refuses anything else the dialer might try.
//
// Through an HTTP(S)_PROXY the proxy resolves and connects: the target host is then resolved
// and checked here before the request is handed to the proxy (a name that changes its answer
// between the two resolutions could still get through; do not proxy a relay that serves
// untrusted tenants through a proxy that reaches internal networks).
//
// lookup nil means net.DefaultResolver.
func PublicOnly(c *http.Client, lookup Lookup) {
	tr, ok := c.Transport.(*http.Transport)
	if !ok {
		panic("upstream.PublicOnly: the client's transport is not an *http.Transport (build it with NewHTTPClient)")
	}
	if lookup == nil {
		lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	g := newPublicGuard(lookup)
	if proxy := tr.Proxy; proxy != nil {
		tr.Proxy = func(req *http.Request) (*url.URL, error) {
			u, err := proxy(req)
			if u == nil || err != nil {
				return u, err
			}
			if _, err := g.resolve(req.Context(), req.URL.Hostname()); err != nil {
				return nil, err
			}
			g.proxies.Store(proxyAddr(u), true)
			return u, nil
		}
	}
	tr.DialContext = g.dial
	tr.DialTLSContext = nil // TLS runs over DialContext's connection
}

func newPublicGuard(lookup Lookup) *publicGuard {
	return &publicGuard{
		lookup: lookup,
		dialer: &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: publicControl},
		plain:  &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second},
	}
}

// contextDialer is net.Dialer's DialContext (tests record dials instead of making them).
type contextDialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

type publicGuard struct {
	lookup Lookup
	dialer contextDialer // a net.Dialer with publicControl
	plain  contextDialer // for the operator's proxy only
	// proxies are the host:port of the proxies the transport was told to use: the only
	// addresses dialled without the check (the target was checked instead).
	proxies sync.Map
}

// dial is the transport's DialContext.
func (g *publicGuard) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if _, ok := g.proxies.Load(addr); ok {
		return g.plain.DialContext(ctx, network, addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	addrs, err := g.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, a := range addrs {
		conn, err := g.dialer.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// resolve returns host's addresses when every one of them is public.
func (g *publicGuard) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if host == "" || strings.ContainsRune(host, '%') {
		return nil, &NotPublicError{Host: host} // no host, or an IPv6 zone: a local interface
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if !IsPublic(a) {
			return nil, &NotPublicError{Host: host, Addr: a}
		}
		return []netip.Addr{a}, nil
	}
	addrs, err := g.lookup(ctx, host)
	if err != nil {
		return nil, &net.DNSError{Err: Inner(err), Name: host, IsNotFound: isNotFound(err)}
	}
	if len(addrs) == 0 {
		return nil, &net.DNSError{Err: "no address", Name: host, IsNotFound: true}
	}
	for _, a := range addrs {
		if !IsPublic(a) {
			return nil, &NotPublicError{Host: host, Addr: a}
		}
	}
	return addrs, nil
}

func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// publicControl is the last check, on the socket's own address just before connect.
func publicControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &NotPublicError{Host: address}
	}
	if !IsPublic(ap.Addr()) {
		return &NotPublicError{Host: address, Addr: ap.Addr()}
	}
	return nil
}

// proxyAddr is the host:port the transport dials for proxy u (its canonical address).
func proxyAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case "https":
			port = "443"
		case "socks5", "socks5h":
			port = "1080"
		default:
			port = "80"
		}
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// notPublic are the IPv4 and IPv6 ranges that are not public unicast beyond what netip's
// predicates cover (IANA special-purpose registries).
var notPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),          // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),      // shared address space (CGNAT; Alibaba's metadata)
	netip.MustParsePrefix("192.0.0.0/24"),       // IETF protocol assignments (Oracle's metadata)
	netip.MustParsePrefix("192.0.2.0/24"),       // documentation
	netip.MustParsePrefix("198.18.0.0/15"),      // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"),    // documentation
	netip.MustParsePrefix("203.0.113.0/24"),     // documentation
	netip.MustParsePrefix("240.0.0.0/4"),        // reserved, and the broadcast address
	netip.MustParsePrefix("::/96"),              // IPv4-compatible (deprecated)
	netip.MustParsePrefix("64:ff9b:1::/48"),     // local-use NAT64
	netip.MustParsePrefix("100::/64"),           // discard-only
	netip.MustParsePrefix("2001::/23"),          // IETF protocol assignments, Teredo included
	netip.MustParsePrefix("2001:db8::/32"),      // documentation
	netip.MustParsePrefix("fec0::/10"),          // site-local (deprecated)
	netip.MustParsePrefix("fd00:ec2::254/128"),  // AWS metadata over IPv6 (unique-local anyway)
	netip.MustParsePrefix("3fff::/20"),          // documentation
	netip.MustParsePrefix("5f00::/16"),          // segment routing SIDs
	netip.MustParsePrefix("ff00::/8"),           // multicast
	netip.MustParsePrefix("169.254.0.0/16"),     // link-local, metadata services
	netip.MustParsePrefix("fe80::/10"),          // link-local
	netip.MustParsePrefix("255.255.255.255/32"), // broadcast
}

// embeddedV4 are IPv6 ranges that carry an IPv4 address a gateway will connect to, in the
// last 32 bits (NAT64) or bits 16-47 (6to4).
var (
	nat64 = netip.MustParsePrefix("64:ff9b::/96")
	sixTo = netip.MustParsePrefix("2002::/16")
)

// IsPublic reports whether a is a public unicast address: one the relay may connect to on a
// caller's say-so.
func IsPublic(a netip.Addr) bool {
	a = a.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsUnspecified() || a.IsMulticast() ||
		a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range notPublic {
		if p.Contains(a) {
			return false
		}
	}
	switch b := a.As16(); {
	case nat64.Contains(a):
		return IsPublic(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
	case sixTo.Contains(a):
		return IsPublic(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
	}
	return true
}
