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
)

// maxListBytes bounds one list.json: the largest upstream list is a few MB.
const maxListBytes = 64 << 20

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
