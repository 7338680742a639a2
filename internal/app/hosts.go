package app

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
)

// maxMISPHosts bounds the MISP instances one relay keeps clients (connections, caches,
// breakers) for. Configuration tokens are signed by XDR, so each host is a real module's
// configuration; a relay serving more tenants than this should be split.
const maxMISPHosts = 64

// mispPool keeps one MISP (client, cache, breaker, metrics) per MISP base URL: API_URL's, and
// those configuration tokens name in their HOST claim, which MISP_ALLOWED_HOSTS restricts.
type mispPool struct {
	allowed []string // host[:port] entries; "*" allows any host
	// build makes the MISP at base; named says it comes from a token's HOST rather than from
	// the operator's API_URL.
	build func(base string, named bool) (intel.Backend, error)

	mu      sync.Mutex
	clients map[string]intel.Backend
}

func newMISPPool(allowed []string, build func(base string, named bool) (intel.Backend, error)) *mispPool {
	return &mispPool{allowed: allowed, build: build, clients: map[string]intel.Backend{}}
}

// get returns the MISP at host (a configuration token's HOST: a base URL, or a bare host name
// meaning https) and the base URL for links into it. It is service.Config.BackendForHost.
func (p *mispPool) get(host string) (intel.Backend, string, error) {
	base, hostport, err := mispBase(host)
	if err != nil {
		return nil, "", &auth.Error{Reason: err.Error()}
	}
	listed := slices.Contains(p.allowed, hostport)
	switch {
	case !listed && !slices.Contains(p.allowed, "*"):
		// HOST comes from a token XDR signed, but whoever configures a module chooses it:
		// without this list, the relay would call any host on their say-so.
		return nil, "", &auth.Error{Reason: fmt.Sprintf("HOST %s is not allowed: set MISP_ALLOWED_HOSTS to trust it", hostport)}
	case strings.Count(base, "/") > 2: // scheme://host/path
		// One client per MISP: paths would let one host take every slot of the pool.
		return nil, "", &auth.Error{Reason: fmt.Sprintf("HOST %s must be a MISP base URL without a path", host)}
	case strings.HasPrefix(base, "http://") && !listed:
		// The MISP API key would travel in clear text.
		return nil, "", &auth.Error{Reason: fmt.Sprintf("HOST %s must use https (or be listed in MISP_ALLOWED_HOSTS)", hostport)}
	}
	m, err := p.add(base, true)
	return m, base, err
}

// add returns the MISP at base, building it on first use.
func (p *mispPool) add(base string, named bool) (intel.Backend, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m, ok := p.clients[base]; ok {
		return m, nil
	}
	if len(p.clients) >= maxMISPHosts {
		return nil, &misp.Error{
			Summary: "MISP connection failed", Op: "connection", Kind: misp.ErrUnavailable,
			Detail: fmt.Sprintf("the relay already serves %d MISP instances, its limit; ask its operator", maxMISPHosts),
		}
	}
	m, err := p.build(base, named)
	if err != nil {
		return nil, err
	}
	p.clients[base] = m
	return m, nil
}

// allowedHosts reads MISP_ALLOWED_HOSTS into host[:port] entries (a scheme or path given by
// mistake is dropped). Unset, configuration tokens may name only API_URL's MISP, or any https
// MISP when the relay has no API_URL (a relay dedicated to configuration-token modules).
func allowedHosts(env, apiURL string) ([]string, error) {
	var out []string
	for _, h := range auth.ParseHosts(env) {
		if h == "*" {
			out = append(out, h)
			continue
		}
		_, hostport, err := mispBase(h)
		if err != nil {
			return nil, fmt.Errorf("MISP_ALLOWED_HOSTS: %q is not a host[:port]", h)
		}
		out = append(out, hostport)
	}
	if len(out) > 0 {
		return out, nil
	}
	if _, hostport, err := mispBase(apiURL); err == nil && strings.Contains(apiURL, "://") {
		return []string{hostport}, nil
	}
	return []string{"*"}, nil
}

// mispBase normalises a MISP address to scheme://host[:port][/path] (https when no scheme is
// given, as in a module's "MISP Host" field) and returns it with its host[:port].
func mispBase(raw string) (base, hostport string, err error) {
	raw = strings.TrimSpace(raw)
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("HOST %q is not a MISP base URL (https://misp.example)", raw)
	}
	hostport = strings.ToLower(u.Host)
	return u.Scheme + "://" + hostport + strings.TrimRight(u.EscapedPath(), "/"), hostport, nil
}
