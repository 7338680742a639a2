package warninglist

import (
	"net/netip"
	"strings"

	"github.com/misp-relay/misp-relay/internal/intel"
)

// Lookup returns the lists value is on, one hit per list in a fixed order (exact entries,
// hostnames, prefixes, substrings, then regexes), considering only the
// lists whose matching_attributes include attrType ("" considers every list, as MISP's
// warninglists/checkValue does). As MISP does, a value of a composite type ("domain|ip",
// "filename|md5", malware-sample) is checked half by half. Nil when none.
func (s *Set) Lookup(attrType, value string) []intel.WarninglistHit {
	if s == nil {
		return nil
	}
	var hits []intel.WarninglistHit
	if a, b, ok := intel.Halves(attrType, value); ok {
		hits = s.lookup(hits, attrType, a)
		return s.lookup(hits, attrType, b)
	}
	return s.lookup(hits, attrType, value)
}

func (s *Set) lookup(hits []intel.WarninglistHit, attrType, value string) []intel.WarninglistHit {
	value = strings.TrimSpace(value)
	if value == "" {
		return hits
	}
	lower := strings.ToLower(value)
	if s.kinds[TypeString].has(attrType) {
		if e, ok := s.exact[lower]; ok {
			hits = s.collect(hits, attrType, e)
		}
	}

	addr, isAddr := parsePrefix(value)
	if isAddr && s.kinds[TypeCIDR].has(attrType) {
		// An IPv4-mapped value is the IPv4 address it maps, first: IPv4 entries cover it.
		if v4, ok := unmap(addr); ok {
			hits = s.lookupPrefix(hits, attrType, v4)
		}
		hits = s.lookupPrefix(hits, attrType, addr)
	}

	// An address is not a hostname: hostname lists hold names.
	if !isAddr && s.kinds[TypeHostname].has(attrType) {
		for h := hostKey(value); h != ""; {
			if e, ok := s.hosts[h]; ok {
				hits = s.collect(hits, attrType, e)
			}
			_, parent, ok := strings.Cut(h, ".")
			if !ok {
				break
			}
			h = parent
		}
	}

	if s.kinds[TypeSubstring].has(attrType) {
		for i := range s.substrs {
			if e := &s.substrs[i]; strings.Contains(lower, e.needle) && s.applies(e.list, attrType) {
				hits = s.hit(hits, e.ref)
			}
		}
	}
	if s.kinds[TypeRegex].has(attrType) {
		for i := range s.patterns {
			if e := &s.patterns[i]; s.applies(e.list, attrType) && e.re.MatchString(value) {
				hits = s.hit(hits, e.ref)
			}
		}
	}
	return hits
}

// lookupPrefix adds the cidr entries of addr's family that contain addr.
func (s *Set) lookupPrefix(hits []intel.WarninglistHit, attrType string, addr netip.Prefix) []intel.WarninglistHit {
	a := addr.Addr()
	if a.Is4() {
		for _, b := range s.bits4 {
			if b > addr.Bits() {
				continue // the value is a wider prefix than this entry
			}
			q, _ := a.Prefix(b) // b is a valid IPv4 prefix length
			if e, ok := s.v4[v4key(q.Addr(), b)]; ok {
				hits = s.collect(hits, attrType, e)
			}
		}
		return hits
	}
	for _, b := range s.bits6 {
		if b > addr.Bits() {
			continue
		}
		q, _ := a.Prefix(b)
		if e, ok := s.v6[q]; ok {
			hits = s.collect(hits, attrType, e)
		}
	}
	return hits
}

func (s *Set) collect(hits []intel.WarninglistHit, attrType string, e refs) []intel.WarninglistHit {
	if s.applies(e.first.list, attrType) {
		hits = s.hit(hits, e.first)
	}
	for _, r := range e.more {
		if s.applies(r.list, attrType) {
			hits = s.hit(hits, r)
		}
	}
	return hits
}

func (s *Set) applies(list int, attrType string) bool {
	types := s.lists[list].types
	if types == nil || attrType == "" {
		return true
	}
	_, ok := types[attrType]
	return ok
}

// hit adds r unless its list already has a hit: an analyst needs the list's name once.
func (s *Set) hit(hits []intel.WarninglistHit, r ref) []intel.WarninglistHit {
	l := &s.lists[r.list]
	for _, h := range hits {
		if h.List == l.Name {
			return hits
		}
	}
	return append(hits, intel.WarninglistHit{Source: intel.ListRelay, List: l.Name, Match: r.text, Category: l.Category})
}
