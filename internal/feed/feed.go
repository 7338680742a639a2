// Package feed answers observable lookups from a MISP feed directory instead of a MISP server.
//
// A feed directory holds manifest.json and one <event uuid>.json per event, the format MISP's
// feed export, PyMISP's feed generator and the CIRCL OSINT feed publish. Pointing the relay at
// such a directory lets it run where no MISP instance is reachable (demos, air-gapped sites,
// tests) while giving the same answers MISP's restSearch would give for the same data.
//
// Two kinds of feed are served. A Store (API_URL naming a feed directory) is read and indexed
// once, at start-up, so that a broken feed stops the relay with an error naming the bad file
// instead of degrading every later lookup; after Load it is read-only and does no I/O. A Source
// (FEEDS) is a public feed the relay consults beside a tenant's MISP: loaded in the background
// over HTTPS or from a directory, refreshed with conditional requests, capped against hostile
// feeds, and held in a compact index (index.go). Both are intel.Backends, safe for concurrent
// use, give the same answers for the same feed, and read MISP's JSON only through package
// mispjson.
package feed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/mispjson"
)

// Store is an in-memory index of a MISP feed, an intel.Backend. Build it with Load.
type Store struct {
	dir string
	// events are kept in result order (date descending, then uuid), so that walking a posting
	// list front to back yields events already sorted and Search never has to sort.
	events []event
	// index maps a match key (see matchKey) of every value, and of each half of a composite
	// value, to the attributes holding it, in (event, attribute) order.
	index map[string][]ref
}

// event is one loaded event: its metadata as returned to callers and its attributes.
type event struct {
	meta  intel.Event // Attributes is always nil here; Search fills in the matched ones
	attrs []intel.Attribute
}

// ref points at one attribute: s.events[event].attrs[attr].
type ref struct {
	event, attr int
}

var _ intel.Backend = (*Store)(nil)

// Len returns the number of events loaded.
func (s *Store) Len() int { return len(s.events) }

// Dir returns the feed directory as given to Load, for start-up logs and health output.
func (s *Store) Dir() string { return s.dir }

// Load reads dir/manifest.json and every event file it lists, and indexes the attributes,
// including those inside objects. Event files not listed in the manifest are ignored, as MISP
// ignores them when it pulls a feed.
//
// Any defect fails the whole load with an error naming the file: an unreadable or invalid
// manifest, a manifest key that is not a UUID (keys become file names, so this also rules out
// path traversal), a listed event file that is missing or not valid JSON, or an event whose
// uuid differs from its manifest key. Files are opened through an os.Root, so a symlink cannot
// lead the relay outside dir either. Unreadable timestamps are not defects: they load as zero
// times, as intel.Event documents.
func Load(dir string) (*Store, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fileError(dir, err)
	}
	// Only reads happen through root, so a failing Close loses nothing.
	defer func() { _ = root.Close() }()

	keys, err := readManifest(root, dir)
	if err != nil {
		return nil, err
	}

	events := make([]event, 0, len(keys))
	for _, key := range keys {
		ev, err := readEvent(root, dir, key)
		if err != nil {
			return nil, err
		}
		events = append(events, ev)
	}
	// Result order mirrors what an analyst expects from MISP (newest first) and is total,
	// because uuids are unique, so answers never depend on map or file-system order.
	slices.SortFunc(events, func(a, b event) int {
		if c := strings.Compare(b.meta.Date, a.meta.Date); c != 0 {
			return c
		}
		return strings.Compare(strings.ToLower(a.meta.UUID), strings.ToLower(b.meta.UUID))
	})

	s := &Store{dir: dir, events: events, index: make(map[string][]ref)}
	for ei := range s.events {
		for ai, a := range s.events[ei].attrs {
			r := ref{event: ei, attr: ai}
			for _, key := range valueKeys(a.Type, a.Value) {
				list := s.index[key]
				// "x|x" yields the same key twice; one attribute must match once.
				if n := len(list); n > 0 && list[n-1] == r {
					continue
				}
				s.index[key] = append(list, r)
			}
		}
	}
	return s, nil
}

// readManifest returns the event uuids manifest.json lists, validated and sorted.
func readManifest(root *os.Root, dir string) ([]string, error) {
	const name = "manifest.json"
	path := filepath.Join(dir, name)
	b, err := root.ReadFile(name)
	if err != nil {
		return nil, fileError(path, err)
	}
	// Only the keys matter: the event files are authoritative for everything the manifest
	// repeats (info, date, threat level...), so the values are not decoded.
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		if _, ok := errors.AsType[*json.SyntaxError](err); ok {
			return nil, decodeError(path, err)
		}
		m = nil // wrong shape: reported just below, without Go type names
	}
	if m == nil {
		return nil, fmt.Errorf("feed: %s: not a MISP feed manifest: want a JSON object keyed by event UUID", path)
	}
	keys := make([]string, 0, len(m))
	seen := make(map[string]bool, len(m))
	for k := range m {
		if !intel.CanonicalUUID(k) {
			return nil, fmt.Errorf("feed: %s: key %q is not an event UUID", path, k)
		}
		// Two keys differing only in case name the same event (and, on a case-insensitive
		// file system, the same file).
		lk := strings.ToLower(k)
		if seen[lk] {
			return nil, fmt.Errorf("feed: %s: event %s is listed twice", path, lk)
		}
		seen[lk] = true
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, nil
}

// readEvent reads and converts <dir>/<key>.json.
func readEvent(root *os.Root, dir, key string) (event, error) {
	name := key + ".json"
	path := filepath.Join(dir, name)
	b, err := root.ReadFile(name)
	if err != nil {
		return event{}, fileError(path, err)
	}
	return parseEvent(b, path, key)
}

// parseEvent converts the event file b, read from path (a file or a URL, for errors), which
// the manifest lists under key.
func parseEvent(b []byte, path, key string) (event, error) {
	var f struct {
		Event *mispjson.Event `json:"Event"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return event{}, decodeError(path, err)
	}
	w := f.Event
	if w == nil {
		return event{}, fmt.Errorf("feed: %s: no \"Event\" object", path)
	}
	// A feed is the operator's own data: a field of the wrong kind is a defect to fix, not
	// something to read around as the REST client does.
	if err := w.Check(); err != nil {
		return event{}, fmt.Errorf("feed: %s: not a MISP feed file: %w", path, err)
	}
	// A mismatch means a copied or renamed file: answering with it would attribute
	// indicators to the wrong event.
	if uuid := w.UUID.Text(); !strings.EqualFold(uuid, key) {
		return event{}, fmt.Errorf("feed: %s: event uuid %q does not match the manifest key %q", path, uuid, key)
	}

	ev := event{meta: w.Intel()}
	// add appends the attributes of as that restSearch would return: it leaves deleted
	// attributes out by default; feeds normally omit them, but a feed exported with them must
	// not resurrect them.
	add := func(as []mispjson.Attribute, object *intel.Object) {
		for i := range as {
			a := &as[i]
			if a.Deleted.Value() || a.Value.Text() == "" {
				continue
			}
			ia := a.Intel()
			if object != nil {
				ia.Object.Name, ia.Object.Members = object.Name, object.Members
			}
			ev.attrs = append(ev.attrs, ia)
		}
	}
	add(w.Attribute, nil)
	for i := range w.Object {
		o := &w.Object[i]
		if !o.Deleted.Value() {
			add(o.Attribute, objectOf(o))
		}
	}
	return ev, nil
}

// objectOf is what the relay keeps of a feed object: its name and its attributes (the first
// intel.MaxObjectMembers), shared by all of them, so that a sighting can relate a file's name
// to its hashes or a URL to its host. MISP's attributes search cannot tell this: only a feed,
// which holds whole events, gives it.
func objectOf(o *mispjson.Object) *intel.Object {
	obj := &intel.Object{Name: strings.TrimSpace(o.Name.Text())}
	for i := range o.Attribute {
		a := &o.Attribute[i]
		if a.Deleted.Value() || a.Value.Text() == "" {
			continue
		}
		if len(obj.Members) == intel.MaxObjectMembers {
			break
		}
		obj.Members = append(obj.Members, intel.ObjectMember{
			Type: a.Type.Text(), Relation: strings.TrimSpace(a.ObjectRelation.Text()), Value: a.Value.Text(),
		})
	}
	return obj
}

// fileError names the file in a load error while keeping the cause for errors.Is
// (fs.ErrNotExist, fs.ErrPermission), without the doubled path a raw *fs.PathError would add.
func fileError(path string, err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		err = pe.Err
	}
	return fmt.Errorf("feed: %s: %w", path, err)
}

// decodeError tells malformed JSON apart from well-formed JSON of the wrong shape, since the
// operator fixes them differently (a truncated download versus a foreign file format).
func decodeError(path string, err error) error {
	if _, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Errorf("feed: %s: invalid JSON: %w", path, err)
	}
	return fmt.Errorf("feed: %s: not a MISP feed file: %w", path, err)
}

// valueKeys returns the match keys an attribute is found under. MISP stores a composite value
// ("a|b" of a type such as domain|ip, filename|sha256 or malware-sample: intel.Composite)
// split on the first '|' into value1 and value2 and matches a search against either; every
// other value is only value1, even when it contains a '|'.
func valueKeys(typ, value string) []string {
	if v1, v2, ok := intel.Halves(typ, value); ok {
		return nonEmpty(matchKey(v1), matchKey(v2))
	}
	return nonEmpty(matchKey(value))
}

// composite tells whether a value of type typ is matched half by half (see valueKeys).
func composite(typ string) bool { return strings.Contains(typ, "|") }

func nonEmpty(keys ...string) []string {
	return slices.DeleteFunc(keys, func(k string) bool { return k == "" })
}

// matchKey folds a value the way MISP's database compares it: value1/value2 use a
// case-insensitive, PAD SPACE collation (so case and trailing spaces do not matter), and MISP
// normalises IPv6 addresses with inet_pton/inet_ntop, so "2001:DB8:0::1" finds "2001:db8::1".
func matchKey(v string) string {
	v = strings.ToLower(strings.TrimRight(v, " "))
	if strings.Contains(v, ":") {
		if a, err := netip.ParseAddr(v); err == nil && a.Is6() {
			return a.String()
		}
	}
	return v
}

// Lookup answers each query with Search: the feed is in memory, there is no round trip to
// save.
func (s *Store) Lookup(ctx context.Context, key string, qs []intel.Query) []intel.Result {
	out := make([]intel.Result, len(qs))
	for i, q := range qs {
		out[i].Events, out[i].Err = s.Search(ctx, key, q)
	}
	return out
}

// Search ignores the key (a feed has no users) and returns the events holding an attribute whose value, or either half of a composite
// value, equals q.Value ignoring case, and whose type is one of q.Types (any type when q.Types
// is empty): the answer MISP's events restSearch gives for a "value" filter. Each event carries
// only its matching attributes, in feed order (object attributes after the others). Events come
// newest date first, then by uuid, and at most q.Limit of them when q.Limit > 0.
//
// An empty value matches nothing. (MISP would drop the filter and return everything; the
// relay never sends such values, see intel.SafeValue.) The cost is proportional to the number
// of attributes holding the value, not to the size of the feed.
func (s *Store) Search(ctx context.Context, _ string, q intel.Query) ([]intel.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	key := matchKey(q.Value)
	if key == "" {
		return nil, nil
	}
	var out []intel.Event
	last := -1
	for i, r := range s.index[key] {
		// A very common value (a popular domain) can have a long posting list; checking the
		// context every so often keeps cancellation prompt without a per-attribute cost.
		if i%1024 == 1023 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		ev := &s.events[r.event]
		a := ev.attrs[r.attr]
		if len(q.Types) > 0 && !slices.Contains(q.Types, a.Type) {
			continue
		}
		if r.event != last {
			if q.Limit > 0 && len(out) == q.Limit {
				break
			}
			m := ev.meta
			// Callers get their own slices, so nothing they do can change the Store.
			m.Tags = slices.Clone(m.Tags)
			out = append(out, m)
			last = r.event
		}
		out[len(out)-1].Attributes = append(out[len(out)-1].Attributes, a)
	}
	return out, nil
}

// Ping is nil: the feed was loaded, and checked, before the relay started listening.
func (s *Store) Ping(context.Context, string) error { return nil }

// AddSighting fails with intel.ErrReadOnly: a feed is a published file, not a MISP to write to.
func (s *Store) AddSighting(context.Context, string, string, intel.SightingType, string) error {
	return intel.ErrReadOnly
}

// Writable is false: see AddSighting.
func (s *Store) Writable() bool { return false }
