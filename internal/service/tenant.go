package service

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"io"
	"slices"
	"strings"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/intel"
)

// Tenant is who a request is for, resolved once from its verified token (Service.Tenant,
// called by the HTTP adapter where it checks the token): the sources it asks (its MISPs, then
// the feeds), its entities limit, its claims and its identity for the in-flight shares. Every
// call of the core takes this value; none resolves the token again.
type Tenant struct {
	id      TenantID
	claims  auth.Claims
	sources []intel.Source // in order; each one's Name is what answers say ("MISP" when alone)
	limit   int            // events per observable
	// err is why the token's sources cannot be asked (a host refused, one MISP named twice,
	// nothing to ask): every call that needs a source answers it.
	err error
}

// TenantID names a tenant (see tenantIDOf) by a hash, so what counts tenants keeps no API key.
type TenantID [sha256.Size]byte

// Tenant resolves verified claims into the request's tenant (Config.Sources, or the one
// source of Config.Backend when it is nil). A tenant whose sources cannot be resolved is
// still returned: every call that needs a source answers its error.
func (s *Service) Tenant(c auth.Claims) *Tenant {
	t := &Tenant{limit: s.cfg.EntitiesLimit, claims: c}
	if c.EntitiesLimit > 0 {
		t.limit = c.EntitiesLimit // the module's own Entities Limit, for this request only
	}
	if s.cfg.Sources != nil {
		t.sources, t.err = s.cfg.Sources(c)
	} else {
		t.sources, t.err = s.ownSource(c)
	}
	if t.err != nil {
		t.sources = nil
	}
	t.sources = slices.Clone(t.sources) // the request's own: it renames them
	t.id = tenantIDOf(c, t.sources)
	if len(t.sources) == 1 {
		// A tenant with one source answers as a single-MISP relay always has.
		t.sources[0].Name = ctimSource
	}
	return t
}

// ownSource is the one source of a service built without Config.Sources: Config.Backend (nil
// when the relay has none: its lookups answer errNoBackend) with the token's key.
func (s *Service) ownSource(c auth.Claims) ([]intel.Source, error) {
	if c.Host != "" {
		return nil, ConfigError("This relay does not call the MISP a configuration token names: it serves its own API_URL.")
	}
	return []intel.Source{{Name: ctimSource, Backend: s.cfg.Backend, Key: c.Key, UI: s.cfg.UIURL}}, nil
}

// tenantIDOf names a tenant by a hash of its token's key and what it asks: each source's
// name, link base and key
// (names and bases come out of intel.MISPBase, so every spelling of one MISP is one tenant),
// each prefixed with its length so that no two lists give the same input. A token whose
// sources could not be resolved is named by its claims' MISPs, normalised the same way.
func tenantIDOf(c auth.Claims, sources []intel.Source) TenantID {
	h := sha256.New()
	// The token's own key first: tenants of a relay of feeds alone ask the same sources with
	// no key, and are still one tenant per key.
	writeLenPrefixed(h, c.Key)
	if len(sources) > 0 {
		for _, src := range sources {
			for _, part := range []string{src.Name, src.UI, src.Key} {
				writeLenPrefixed(h, part)
			}
		}
	} else {
		writeLenPrefixed(h, "\x00unresolved")
		for _, m := range c.MISPs() {
			host := strings.ToLower(strings.TrimSpace(m.Host))
			if base, _, err := intel.MISPBase(m.Host); err == nil && m.Host != "" {
				host = base
			}
			writeLenPrefixed(h, host)
			writeLenPrefixed(h, m.Key)
		}
	}
	var id TenantID
	h.Sum(id[:0])
	return id
}

func writeLenPrefixed(h hash.Hash, s string) {
	var n [binary.MaxVarintLen64]byte
	_, _ = h.Write(binary.AppendUvarint(n[:0], uint64(len(s)))) // a hash.Hash never fails
	_, _ = io.WriteString(h, s)
}

// errNoTenant is a call of the core without the tenant the adapter resolves (a wiring
// mistake): answered as a failure, never a nil dereference.
var errNoTenant = errors.New("service: no tenant resolved for the request")

// failed is why the tenant's sources cannot be asked, or nil.
func (t *Tenant) failed() error {
	if t == nil {
		return errNoTenant
	}
	return t.err
}

// ID names the tenant, for bounds per tenant.
func (t *Tenant) ID() TenantID { return t.id }

// multi tells whether the tenant has several sources, so answers and errors name them.
func (t *Tenant) multi() bool { return len(t.sources) > 1 }
