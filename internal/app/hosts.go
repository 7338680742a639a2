package app

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/intel"
)

// maxMISPHosts bounds the MISP instances one relay keeps clients (connections, caches,
// breakers) for, besides API_URL's. Past it, the least recently used is dropped: any XDR
// tenant can register a module naming the host of its choice, so a fixed set of slots would
// let one tenant's junk hosts lock every later tenant out until a restart.
const maxMISPHosts = 64

// hostKind says how the relay came to call a MISP, which decides how it is called.
type hostKind int

const (
	// operatorHost is API_URL's MISP: the operator's choice, never evicted, its answers
	// quoted in errors, MISP_VERIFY_CERT applies.
	operatorHost hostKind = iota
	// listedHost is named by a configuration token and listed in MISP_ALLOWED_HOSTS: trusted
	// to be where it is (an internal address included), but its answers are not quoted.
	listedHost
	// publicHost is named by a configuration token under MISP_ALLOWED_HOSTS=*: only public
	// addresses may be connected to, checked after DNS resolution.
	publicHost
)

// pooledMISP is a MISP of the pool and how to let it go.
type pooledMISP struct {
	backend intel.Backend
	// release drops what the MISP holds once it leaves the pool (idle connections, metric
	// series). Requests using it finish normally: it is only garbage once they are done.
	release func()
}

// mispPool keeps one MISP (client, cache, breaker, metrics) per MISP base URL: API_URL's, and
// those configuration tokens name in their HOST claim, which MISP_ALLOWED_HOSTS restricts.
type mispPool struct {
	allowed []string // host[:port] entries; "*" allows any public host
	build   func(base string, kind hostKind) (pooledMISP, error)

	mu     sync.Mutex
	pinned map[string]pooledMISP // API_URL's: never evicted
	named  *simplelru.LRU[string, pooledMISP]
}

func newMISPPool(allowed []string, build func(base string, kind hostKind) (pooledMISP, error)) *mispPool {
	named, err := simplelru.NewLRU[string, pooledMISP](maxMISPHosts, func(_ string, m pooledMISP) {
		if m.release != nil {
			m.release()
		}
	})
	if err != nil {
		panic(err) // only for a size <= 0
	}
	return &mispPool{allowed: allowed, build: build, pinned: map[string]pooledMISP{}, named: named}
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
	kind := publicHost
	if listed {
		kind = listedHost
	}
	m, err := p.add(base, kind)
	return m, base, err
}

// add returns the MISP at base, building it on first use; the least recently used MISP a
// token named makes room when the pool is full. API_URL's (operatorHost) is never evicted,
// and a token naming it gets it as the operator configured it.
func (p *mispPool) add(base string, kind hostKind) (intel.Backend, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m, ok := p.pinned[base]; ok {
		return m.backend, nil
	}
	if m, ok := p.named.Get(base); ok {
		return m.backend, nil
	}
	m, err := p.build(base, kind)
	if err != nil {
		return nil, err
	}
	if kind == operatorHost {
		p.pinned[base] = m
	} else {
		p.named.Add(base, m) // may evict (and release) the least recently used
	}
	return m.backend, nil
}

// len is how many MISPs the pool holds, API_URL's included.
func (p *mispPool) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pinned) + p.named.Len()
}

// allowedHosts reads MISP_ALLOWED_HOSTS into host[:port] entries (a scheme or path given by
// mistake is dropped). Unset, configuration tokens may name only API_URL's MISP, or any
// public https MISP when the relay has no API_URL (a relay dedicated to configuration-token
// modules).
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

// mispBase is intel.MISPBase, the one normalisation of a MISP address (the service's tenant
// and the sources' names rest on it too).
func mispBase(raw string) (base, hostport string, err error) { return intel.MISPBase(raw) }
