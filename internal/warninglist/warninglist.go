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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/misp-relay/misp-relay/internal/intel"
)

// The five list types of misp-warninglists.
const (
	TypeString    = "string"    // the value, exactly (case is ignored)
	TypeSubstring = "substring" // the value contains the entry
	TypeHostname  = "hostname"  // the value (or a URL's host) is the entry or one of its subdomains
	TypeCIDR      = "cidr"      // the value is an address (or a prefix) inside the entry's IPv4 or IPv6 prefix
	TypeRegex     = "regex"     // the value matches the entry, a PCRE pattern as MISP writes it
)

// maxListBytes bounds one list.json: the largest upstream list is a few MB.
const maxListBytes = 64 << 20

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

// listFile is list.json (misp-warninglists' schema.json).
type listFile struct {
	Name               string          `json:"name"`
	Description        string          `json:"description"`
	Version            json.RawMessage `json:"version"`
	Type               string          `json:"type"`
	Category           string          `json:"category"`
	List               []string        `json:"list"`
	MatchingAttributes []string        `json:"matching_attributes"`
}

// Load reads every <dir>/lists/<name>/list.json (or <dir>/<name>/list.json when dir is the
// lists directory itself), in name order. A file that is not a valid warninglist fails the
// whole load with an error naming it; so does a directory holding no list at all, which is
// surely a wrong path. Entries that cannot be used (a regex RE2 cannot express, a cidr entry
// that is no address) are skipped, each with a message in Warnings.
func Load(dir string) (*Set, error) {
	root := filepath.Join(dir, "lists")
	if info, err := os.Stat(root); err != nil || !info.IsDir() {
		root = dir
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("warninglists: %w", pathless(root, err))
	}
	type loaded struct {
		dir, path string
		f         *listFile
	}
	var files []loaded
	sizes := map[string]int{}
	for _, e := range entries {
		if !e.IsDir() {
			// A symbolic link to a list directory counts (os.Stat follows it).
			info, err := os.Stat(filepath.Join(root, e.Name()))
			if err != nil || !info.IsDir() {
				continue
			}
		}
		path := filepath.Join(root, e.Name(), "list.json")
		f, err := readList(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // not a list directory (upstream keeps a few helpers beside the lists)
		}
		if err != nil {
			return nil, err
		}
		files = append(files, loaded{e.Name(), path, f})
		sizes[f.Type] += len(f.List)
	}
	// Maps sized once: growing a 60,000-entry map step by step costs more than filling it.
	s := &Set{
		exact: make(map[string]refs, sizes[TypeString]),
		hosts: make(map[string]refs, sizes[TypeHostname]),
		v4:    make(map[uint64]refs, sizes[TypeCIDR]),
		v6:    map[netip.Prefix]refs{},
		kinds: map[string]*typeSet{},
	}
	for _, l := range files {
		if err := s.add(l.dir, l.path, l.f); err != nil {
			return nil, err
		}
	}
	if len(s.lists) == 0 {
		return nil, fmt.Errorf("warninglists: %s holds no warninglist (want lists/<name>/list.json, the layout of MISP/misp-warninglists)", dir)
	}
	s.finish()
	return s, nil
}

// pathless turns a *fs.PathError into "path: reason" without repeating the operation.
func pathless(path string, err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		err = pe.Err
	}
	return fmt.Errorf("%s: %w", path, err)
}

func readList(path string) (*listFile, error) {
	fh, err := os.Open(path) //nolint:gosec // the operator's WARNINGLISTS_DIR
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("warninglists: %w", pathless(path, err))
	}
	defer func() { _ = fh.Close() }() // read only
	raw, err := io.ReadAll(io.LimitReader(fh, maxListBytes+1))
	if err != nil {
		return nil, fmt.Errorf("warninglists: %w", pathless(path, err))
	}
	if len(raw) > maxListBytes {
		return nil, fmt.Errorf("warninglists: %s: larger than %d MiB", path, maxListBytes>>20)
	}
	var f listFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("warninglists: %s: not a MISP warninglist: %w", path, err)
	}
	switch {
	case strings.TrimSpace(f.Name) == "":
		return nil, fmt.Errorf("warninglists: %s: the list has no name", path)
	case f.List == nil:
		return nil, fmt.Errorf("warninglists: %s: the list has no \"list\" of entries", path)
	}
	return &f, nil
}

// add indexes one list file.
func (s *Set) add(dir, path string, f *listFile) error {
	l := List{Name: strings.TrimSpace(f.Name), Dir: dir, Type: f.Type, Category: f.Category}
	if len(f.MatchingAttributes) > 0 {
		l.types = make(map[string]struct{}, len(f.MatchingAttributes))
		for _, t := range f.MatchingAttributes {
			l.types[strings.TrimSpace(t)] = struct{}{}
		}
		if _, all := l.types["ALL"]; all { // MISP's spelling of "every type"
			l.types = nil
		}
	}
	idx := len(s.lists)
	k := s.kinds[f.Type]
	if k == nil {
		k = &typeSet{types: map[string]struct{}{}}
		s.kinds[f.Type] = k
	}
	if l.types == nil {
		k.all = true
	}
	for t := range l.types {
		k.types[t] = struct{}{}
	}
	var badCIDR []string
	for _, raw := range f.List {
		entry := strings.TrimSpace(raw)
		if entry == "" {
			continue
		}
		r := ref{list: idx, text: entry}
		switch f.Type {
		case TypeString:
			key := strings.ToLower(entry)
			e := s.exact[key]
			e.add(r)
			s.exact[key] = e
		case TypeHostname:
			key := hostKey(entry)
			if key == "" {
				continue
			}
			e := s.hosts[key]
			e.add(r)
			s.hosts[key] = e
		case TypeSubstring:
			s.substrs = append(s.substrs, substringEntry{ref: r, needle: strings.ToLower(entry)})
		case TypeCIDR:
			p, ok := parsePrefix(entry)
			if !ok {
				badCIDR = append(badCIDR, entry)
				continue
			}
			if p.Addr().Is4() {
				key := v4key(p.Addr(), p.Bits())
				e := s.v4[key]
				e.add(r)
				s.v4[key] = e
			} else {
				e := s.v6[p]
				e.add(r)
				s.v6[p] = e
			}
		case TypeRegex:
			pattern, err := TranslatePCRE(entry)
			var re *regexp.Regexp
			if err == nil {
				re, err = regexp.Compile(pattern)
			}
			if err != nil {
				s.warnings = append(s.warnings, fmt.Sprintf("%s: regex entry %q skipped: %v", path, entry, err))
				continue
			}
			s.patterns = append(s.patterns, regexEntry{ref: r, re: re})
		default:
			return fmt.Errorf("warninglists: %s: unknown list type %q (want string, substring, hostname, cidr or regex)", path, f.Type)
		}
		l.Entries++
	}
	if len(badCIDR) > 0 {
		s.warnings = append(s.warnings, fmt.Sprintf("%s: %d entries that are not IP addresses or prefixes skipped, e.g. %q", path, len(badCIDR), badCIDR[0]))
	}
	s.lists = append(s.lists, l)
	return nil
}

// finish records the prefix lengths present, so a lookup probes only those.
func (s *Set) finish() {
	seen4, seen6 := map[int]bool{}, map[int]bool{}
	for k := range s.v4 {
		seen4[int(k&0xff)] = true
	}
	for p := range s.v6 {
		seen6[p.Bits()] = true
	}
	for b := range seen4 {
		s.bits4 = append(s.bits4, b)
	}
	for b := range seen6 {
		s.bits6 = append(s.bits6, b)
	}
	slices.SortFunc(s.bits4, func(a, b int) int { return b - a })
	slices.SortFunc(s.bits6, func(a, b int) int { return b - a })
}

// parsePrefix reads "192.0.2.0/24", "2001:db8::/32" or a bare address (a /32 or /128), and
// masks it: misp-warninglists has entries such as "10.0.0.1/8".
func parsePrefix(s string) (netip.Prefix, bool) {
	if !mayBeAddr(s) {
		return netip.Prefix{}, false // and no error value to allocate, on the lookup path
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		return unmap(p).Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	a = a.Unmap().WithZone("")
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

// unmap turns ::ffff:a.b.c.d/n (n ≥ 96) into a.b.c.d/(n-96), so IPv4-mapped entries match
// IPv4 values.
func unmap(p netip.Prefix) netip.Prefix {
	a := p.Addr().WithZone("")
	if a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return netip.PrefixFrom(a, p.Bits())
}

// hostKey folds a hostname (or a URL's host) for comparison: lower case, no trailing dot, no
// port, no user information.
func hostKey(v string) string {
	v = strings.TrimSpace(v)
	if _, rest, ok := strings.Cut(v, "://"); ok {
		v = rest
		if i := strings.IndexAny(v, "/?#"); i >= 0 {
			v = v[:i]
		}
		if i := strings.LastIndexByte(v, '@'); i >= 0 {
			v = v[i+1:]
		}
		if strings.HasPrefix(v, "[") { // [v6]:port is an address, not a hostname
			return ""
		}
		if i := strings.LastIndexByte(v, ':'); i >= 0 {
			v = v[:i]
		}
	}
	return strings.ToLower(strings.TrimSuffix(v, "."))
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
	if strings.Contains(attrType, "|") || attrType == "malware-sample" {
		if a, b, ok := strings.Cut(value, "|"); ok {
			hits = s.lookup(hits, attrType, a)
			return s.lookup(hits, attrType, b)
		}
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
		if a := addr.Addr(); a.Is4() {
			for _, b := range s.bits4 {
				if b > addr.Bits() {
					continue // the value is a wider prefix than this entry
				}
				q, _ := a.Prefix(b) // b is a valid IPv4 prefix length
				if e, ok := s.v4[v4key(q.Addr(), b)]; ok {
					hits = s.collect(hits, attrType, e)
				}
			}
		} else {
			for _, b := range s.bits6 {
				if b > addr.Bits() {
					continue
				}
				q, _ := a.Prefix(b)
				if e, ok := s.v6[q]; ok {
					hits = s.collect(hits, attrType, e)
				}
			}
		}
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
	return append(hits, intel.WarninglistHit{List: l.Name, Match: r.text, Category: l.Category})
}
