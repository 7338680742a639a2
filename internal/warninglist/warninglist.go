// Package warninglist loads MISP warninglists (the format and directory layout of the public
// MISP/misp-warninglists repository) and tells which of them a value is on.
//
// MISP itself annotates only attributes flagged for IDS, and a MISP feed carries no
// warninglist at all; the relay's own lists cover every backend and every attribute, so that
// 8.8.8.8 in a High-threat event is recognised as a public DNS resolver wherever it comes from.
//
// A Set is built once at start-up (a list that does not parse stops the relay) and is then
// read-only, safe for concurrent use. Every entry of every list goes into one index per list
// type, so a lookup costs a few map probes whatever the number of lists and entries; substring
// and regex lists, which cannot be indexed, are scanned.
package warninglist

import (
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// The five list types of misp-warninglists.
const (
	TypeString    = "string"    // the value, exactly (case is ignored)
	TypeSubstring = "substring" // the value contains the entry
	TypeHostname  = "hostname"  // the value (or a URL's host) is the entry or one of its subdomains
	TypeCIDR      = "cidr"      // the value is an address (or a prefix) inside the entry's IPv4 or IPv6 prefix
	TypeRegex     = "regex"     // the value matches the entry, a PCRE pattern as MISP writes it
)

// List describes one loaded warninglist.
type List struct {
	Name     string // the list's "name", as MISP shows it
	Dir      string // the directory it was read from (lists/<Dir>/list.json)
	Type     string
	Category string // "false-positive" or "known" when the file says; "" otherwise
	Entries  int    // entries indexed (skipped ones left out)
	// types is matching_attributes: the attribute types the list applies to; nil means all.
	types map[string]struct{}
}

// Set is a loaded collection of warninglists.
type Set struct {
	lists    []List
	warnings []string

	exact    map[string]refs       // string lists, by lower-cased entry
	hosts    map[string]refs       // hostname lists, by lower-cased name without a trailing dot
	v4       map[uint64]refs       // cidr lists' IPv4 prefixes, by v4key
	v6       map[netip.Prefix]refs // cidr lists' IPv6 prefixes, masked
	bits4    []int                 // IPv4 prefix lengths present, longest first
	bits6    []int                 // IPv6 prefix lengths present, longest first
	substrs  []substringEntry      // substring lists
	patterns []regexEntry          // regex lists
	// kinds says, per list type, which attribute types at least one list of that type
	// applies to, so a lookup skips whole indexes that cannot hit.
	kinds map[string]*typeSet
}

// typeSet is a set of attribute types, or every type.
type typeSet struct {
	all   bool
	types map[string]struct{}
}

func (t *typeSet) has(typ string) bool {
	if t == nil {
		return false
	}
	if t.all || typ == "" {
		return true
	}
	_, ok := t.types[typ]
	return ok
}

// ref is one entry of one list: lists[list], written as text.
type ref struct {
	list int
	text string
}

// refs holds the entries sharing one index key (the same value in several lists) without a
// slice per key: almost every key has one entry.
type refs struct {
	first ref
	more  []ref
}

func (r *refs) add(x ref) {
	if r.first.text == "" {
		r.first = x
		return
	}
	r.more = append(r.more, x)
}

// v4key packs an IPv4 prefix into a map key cheaper to hash than a netip.Prefix.
func v4key(a netip.Addr, bits int) uint64 {
	b := a.As4()
	return uint64(b[0])<<40 | uint64(b[1])<<32 | uint64(b[2])<<24 | uint64(b[3])<<16 | uint64(bits) //nolint:gosec // bits is 0..32
}

type substringEntry struct {
	ref
	needle string // lower-cased
}

type regexEntry struct {
	ref
	re *regexp.Regexp
}

// parsePrefix reads "192.0.2.0/24", "2001:db8::/32" or a bare address (a /32 or /128), and
// masks it: misp-warninglists has entries such as "10.0.0.1/8". It keeps the address's
// family: an IPv4-mapped entry such as ::ffff:0:0/96 (the mapped range, in lists of special
// IPv6 ranges) stays an IPv6 prefix, so it never covers IPv4 values; turned into 0.0.0.0/0,
// it would put every IPv4 address on the list. A value is looked up in both forms (see
// Set.lookup).
func parsePrefix(s string) (netip.Prefix, bool) {
	if !mayBeAddr(s) {
		return netip.Prefix{}, false // and no error value to allocate, on the lookup path
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		return netip.PrefixFrom(p.Addr().WithZone(""), p.Bits()).Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	a = a.WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), true
}

// mayBeAddr rules out, cheaply, values that cannot be an address or prefix: those with a
// character no address has before its zone, or with neither '.' nor ':'.
func mayBeAddr(s string) bool {
	if i := strings.IndexByte(s, '%'); i >= 0 {
		s = s[:i] // a zone (fe80::1%eth0) may hold anything
	}
	sep := false
	for i := range len(s) {
		switch c := s[i]; {
		case c == '.' || c == ':':
			sep = true
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F', c == '/':
		default:
			return false
		}
	}
	return sep
}

// unmap turns an IPv4-mapped value ::ffff:a.b.c.d/n (n ≥ 96) into a.b.c.d/(n-96): the IPv4
// address it is, which IPv4 entries cover. ok is false for any other prefix.
func unmap(p netip.Prefix) (netip.Prefix, bool) {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96), true
	}
	return p, false
}

// hostKey folds a hostname, or a URL's host, for comparison as MISP does (lower case, no
// leading or trailing dot: MISP trims entries such as ".duckdns.org" to duckdns.org), and
// finds the host as a browser would, so that a URL cannot borrow a listed name: the scheme
// is one only when what precedes "://" is a scheme name (in
// "evil.example/login?next=https://accounts.google.com/" the host is evil.example); without
// one, the host ends at the first '/', as MISP takes it (www.google.com/search); a backslash
// ends it too (browsers read http://evil.example\@google.com/ as evil.example); user
// information and the port are not part of it; an [IPv6] host is an address, not a name ("").
func hostKey(v string) string {
	v = strings.TrimSpace(v)
	if scheme, rest, ok := strings.Cut(v, "://"); ok && isScheme(scheme) {
		v = rest
	} else {
		v = strings.TrimPrefix(v, "//") // a scheme-relative URL
	}
	if i := strings.IndexAny(v, "/\\?#"); i >= 0 {
		v = v[:i]
	}
	if i := strings.LastIndexByte(v, '@'); i >= 0 {
		v = v[i+1:]
	}
	if strings.HasPrefix(v, "[") {
		return ""
	}
	if i := strings.LastIndexByte(v, ':'); i >= 0 {
		v = v[:i]
	}
	return strings.ToLower(strings.Trim(v, "."))
}

// isScheme tells whether s is a URL scheme name: a letter, then letters, digits, '+', '-'
// or '.' (RFC 3986, 3.1).
func isScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i] | 0x20 // lower case, for letters
		switch {
		case c >= 'a' && c <= 'z':
		case i > 0 && (s[i] >= '0' && s[i] <= '9' || s[i] == '+' || s[i] == '-' || s[i] == '.'):
		default:
			return false
		}
	}
	return true
}

// Lists returns the loaded lists, in load order.
func (s *Set) Lists() []List { return slices.Clone(s.lists) }

// Warnings returns one message per skipped entry (or group of unreadable cidr entries).
func (s *Set) Warnings() []string { return slices.Clone(s.warnings) }

// Entries returns the number of entries indexed across all lists.
func (s *Set) Entries() int {
	n := 0
	for _, l := range s.lists {
		n += l.Entries
	}
	return n
}
