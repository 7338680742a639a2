// Package intel is the relay's domain: what it reasons about when it answers XDR. A Query asks
// about one observable value; an Event is a MISP event with the attributes of it that matched;
// a Backend is anything that answers queries for a tenant (a MISP server, a MISP feed loaded
// in memory, or a cache in front of either).
//
// It owns no I/O and imports nothing of the relay: the MISP client, the feed and the cache
// implement or decorate Backend, and the service consumes it without knowing which it has.
// Nothing here knows about HTTP, JSON, CTIM or XDR.
package intel

import (
	"context"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Query is one observable lookup.
type Query struct {
	// Value is the observable value, already trimmed and checked to be safe for MISP's
	// filter syntax (see SafeValue).
	Value string
	// Types are the MISP attribute types to search (composites such as "domain|ip" included).
	Types []string
	// Limit caps the number of distinct events returned (CTR_ENTITIES_LIMIT); <= 0: no cap.
	Limit int
	// Warnings asks a MISP to annotate the matched attributes with the warninglists they are
	// on (Attribute.Warnings). The relay asks only when MISP's warninglists/checkValue, which
	// answers for every value of a request at once, failed: MISP checks each matched
	// attribute against its lists for it, which costs more than the search itself.
	Warnings bool
}

// Event is a MISP event together with the attributes of it that matched a query.
type Event struct {
	UUID      string
	Info      string
	Date      string    // YYYY-MM-DD, as MISP sends it; "" when absent
	Timestamp time.Time // last change; zero when absent or unreadable
	// ThreatLevel is 1 (High) to 4 (Undefined); 0 when MISP sent anything else.
	ThreatLevel int
	Org         string   // Orgc.name, the creator organisation
	OrgUUID     string   // Orgc.uuid; "" when absent
	Tags        []string // event tag names, in MISP's order
	Published   bool
	// Analysis is MISP's analysis state: AnalysisInitial, AnalysisOngoing or
	// AnalysisComplete; AnalysisUnknown when MISP sent anything else.
	Analysis   Analysis
	Attributes []Attribute
}

// Analysis is how far the event's creator says the analysis has gone.
type Analysis int

// MISP's analysis levels ("0", "1", "2" on the wire); the zero value is AnalysisUnknown.
const (
	AnalysisUnknown Analysis = iota
	AnalysisInitial
	AnalysisOngoing
	AnalysisComplete
)

// Attribute is a matched MISP attribute.
type Attribute struct {
	Type      string
	Category  string
	Value     string // the full value; composites keep their "a|b" form
	ToIDS     bool
	Timestamp time.Time // zero when absent or unreadable
	FirstSeen time.Time // zero when unset
	LastSeen  time.Time // zero when unset
	UUID      string    // "" when absent
	// Comment is the author's comment on the attribute, cleaned by CleanComment (bounded, no
	// control characters); "" when none. Authors write there what the value is ("C2",
	// "Potential false-positive but included in the OSINT report"): the analyst reads it.
	Comment string
	// Object is the MISP object the attribute belongs to; its zero value when none.
	Object Object
	// Tags are the attribute's own tag names, in MISP's order. Tags MISP copies from the
	// event (includeEventTags marks them "inherited") are left out: they are Event.Tags.
	Tags []string
	// Warnings are the warninglists MISP says the value is on (includeWarninglistHits, sent
	// only for a Query with Warnings).
	// MISP checks only attributes flagged for IDS unless MISP.warning_for_all is set, and a
	// composite value half by half: see WarningsAbout.
	Warnings  []WarninglistHit
	Sightings Sightings
	// Decay holds one score per decaying model MISP applied (includeDecayScore).
	Decay []DecayScore
}

// Object is what a backend knows of the MISP object an attribute belongs to. MISP groups the
// attributes that describe one thing in an object (a "file" object: its name and hashes; a
// "url" object: the URL, its host and address), and the analyst wants to see them together.
type Object struct {
	// Name is the object's template name ("file", "url", "ip-port"); "" when not told: MISP's
	// attributes search gives an attribute's object_relation but not its object's name.
	Name string
	// Relation is the attribute's object_relation ("sha256", "ip", "dst-port").
	Relation string
	// Members are the object's attributes, the attribute itself included, in MISP's order, at
	// most MaxObjectMembers: what a backend holding whole events (a feed) knows; nil from a
	// backend that sees matched attributes only (MISP's attributes search). The attributes of
	// one object share the slice: it is never written once made.
	Members []ObjectMember
}

// ObjectMember is one attribute of an object, as relations need it.
type ObjectMember struct {
	Type, Relation, Value string
}

// MaxObjectMembers bounds Object.Members: real objects have a few attributes (a file
// object's name, size and hashes); a thousand is a broken or hostile event, and relations
// name a few.
const MaxObjectMembers = 32

// ListSource says whose warninglist a hit is on: analysts and operators act differently on
// MISP's lists (enabled in MISP, for every user) and on the relay's own (WARNINGLISTS_DIR).
type ListSource int

// The sources of warninglist hits; the zero value is MISP, which is where every hit the
// backends decode comes from.
const (
	ListMISP  ListSource = iota // MISP said so: restSearch's warnings or warninglists/checkValue
	ListRelay                   // one of the relay's own lists (WARNINGLISTS_DIR)
)

// WarninglistHit says that a value is on a warninglist: one of MISP's (from restSearch's
// warnings or warninglists/checkValue) or one of the relay's own (WARNINGLISTS_DIR).
type WarninglistHit struct {
	Source   ListSource
	List     string // the list's name, e.g. "List of known IPv4 public DNS resolvers"
	Match    string // the entry that matched, e.g. "8.8.8.8/32"; "" when not told
	Category string // "false_positive" or "known" when MISP says; "" otherwise
	// Value is the value MISP checked against the list: an attribute's value, or one half
	// of a composite attribute's ("104.16.1.1" of "c2.example|104.16.1.1"); "" when not told.
	Value string
}

// WarningsAbout returns the attribute's warnings that are about value. MISP checks a
// composite attribute (domain|ip, filename|md5, malware-sample) one half at a time, and a hit on one half
// says nothing of the other: a C2 domain recorded with the CDN address it resolved to is
// not on the CDN's list. So, for a composite attribute, only the hits whose Value is value
// (in any letter case, or as the same IP address) count, and a hit that does not say which
// half it is about counts for neither. For any other attribute, every hit is about its one
// value, which is the value it was found by.
func (a *Attribute) WarningsAbout(value string) []WarninglistHit {
	if !Composite(a.Type) || !strings.Contains(a.Value, "|") || len(a.Warnings) == 0 {
		return a.Warnings
	}
	var out []WarninglistHit
	for _, h := range a.Warnings {
		if h.Value != "" && SameValue(h.Value, value) {
			out = append(out, h)
		}
	}
	return out
}

// SameValue compares two spellings of a value as MISP matches them: letter case and
// surrounding spaces aside, or as the same IP address.
func SameValue(x, y string) bool {
	x, y = strings.TrimSpace(x), strings.TrimSpace(y)
	if strings.EqualFold(x, y) {
		return true
	}
	if !strings.ContainsAny(x, ".:") || !strings.ContainsAny(y, ".:") {
		return false // no address: spare the parsing (this runs per matched attribute)
	}
	a, errA := netip.ParseAddr(x)
	b, errB := netip.ParseAddr(y)
	return errA == nil && errB == nil && a.Unmap() == b.Unmap()
}

// Composite reports whether MISP stores values of type typ in two halves, value1 and value2,
// and matches a search against either: every type whose name holds a '|' (domain|ip,
// hostname|port, ip-dst|port, filename|<hash>, regkey|value, ...) and malware-sample, whose
// value is "<file name>|<md5>" (MISP's Attribute::getCompositeTypes).
func Composite(typ string) bool {
	return typ == "malware-sample" || strings.Contains(typ, "|")
}

// Halves splits a composite attribute's value at its first '|' into the two halves MISP
// stores; ok is false for a type that is not composite or a value without a '|' (MISP
// refuses such values; a feed may hold one, and it is then one value).
func Halves(typ, value string) (first, second string, ok bool) {
	if !Composite(typ) {
		return "", "", false
	}
	if first, second, ok = strings.Cut(value, "|"); !ok {
		return "", "", false
	}
	return first, second, true
}

// HalfTypes names the attribute types of a composite type's halves: "domain|ip" is a domain
// and an ip-dst, "filename|md5" a filename and an md5, malware-sample a filename and an md5,
// "ip-src|port" an ip-src and a port. ok is false for a type that is not composite.
func HalfTypes(typ string) (first, second string, ok bool) {
	switch typ {
	case "malware-sample":
		return "filename", "md5", true
	case "domain|ip":
		return "domain", "ip-dst", true
	}
	return strings.Cut(typ, "|")
}

// MaxComment bounds a cleaned comment, in characters: "no more than a short sentence's
// worth", as a judgement's reason and a sighting's description quote it beside the rest.
const MaxComment = 160

// CleanComment makes an author's comment fit to quote in an answer: invalid UTF-8, control
// and format characters (which could break a line or reorder the text an analyst reads) are
// dropped, white space runs become one space, and a comment longer than MaxComment
// characters is cut at a word boundary and ends with "…".
func CleanComment(s string) string {
	if s == "" {
		return ""
	}
	var b strings.Builder
	b.Grow(min(len(s), 4*MaxComment))
	n, space := 0, false
	for _, r := range s {
		switch {
		case r == utf8.RuneError, unicode.Is(unicode.Cf, r):
			continue
		case unicode.IsSpace(r), unicode.IsControl(r):
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		if n == MaxComment {
			return cutAtWord(b.String())
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// cutAtWord ends s, a comment cut at MaxComment characters, at its last space when one is in
// its second half (else where it was cut), with "…".
func cutAtWord(s string) string {
	s = strings.TrimRight(s, " ")
	if i := strings.LastIndexByte(s, ' '); i > len(s)/2 {
		s = strings.TrimRight(s[:i], " ,;:.")
	} else {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s + "…"
}

// Sightings summarises the sightings MISP holds for an attribute (includeSightings), by type.
type Sightings struct {
	Seen          int // type 0: the value was seen
	FalsePositive int // type 1: someone reported the value as a false positive
	Expiration    int // type 2: someone said the value stops being relevant
	// First and Last are the dates of the earliest and latest type 0 sightings; zero when
	// there are none or their dates are unreadable.
	First, Last time.Time
	// Sources are who reported the type 0 sightings (the sighting's source, else its
	// organisation), distinct, in MISP's order, at most MaxSightingSources.
	Sources []string
	// Expires is the earliest date of an expiration sighting; zero when there is none.
	Expires time.Time
}

// MaxSightingSources bounds Sightings.Sources: a popular value can have thousands of
// sightings, and an analyst reads a few names, not a census.
const MaxSightingSources = 10

// DecayScore is the score MISP's decaying model gives an attribute: 0 to 100, and whether it
// fell under the model's threshold.
type DecayScore struct {
	Model   string // the DecayingModel's name
	Score   float64
	Decayed bool
}

// SightingType is what a reported sighting says about a value (MISP's sighting type).
type SightingType string

// Sighting types MISP accepts.
const (
	Sighting      SightingType = "0"
	FalsePositive SightingType = "1"
)

// Backend answers the relay's questions about observables for one source of intelligence.
// The key is the tenant's credential for that source (the MISP API key of the request's JWT);
// a backend that needs none ignores it. Implementations are safe for concurrent use.
type Backend interface {
	// Lookup answers several queries at once, one Result per query in their order: for
	// each, the events holding attributes that match it, source order kept, at most its
	// Limit events (nothing found: no events, no error), exactly as if it were asked alone.
	// A backend asks its source as few times as it can: a MISP server, one restSearch for
	// all of them. One query's failure is its own Result's.
	Lookup(ctx context.Context, key string, qs []Query) []Result
	// Ping checks that the backend answers and accepts key, as cheaply as it can.
	Ping(ctx context.Context, key string) error
	// AddSighting reports that value was seen (Sighting) or is a false positive. A backend
	// that cannot be written to returns an error wrapping ErrReadOnly, and says so in
	// Writable.
	AddSighting(ctx context.Context, key, value string, typ SightingType, source string) error
	// Writable tells whether AddSighting can succeed, so that actions which would certainly
	// fail are not offered.
	Writable() bool
}

// Result is the answer to one Query of a Lookup.
type Result struct {
	Events []Event
	Err    error
}

// ErrReadOnly is the kind of AddSighting's error on a backend that cannot be written to.
var ErrReadOnly = errors.New("reporting to MISP is not available: this relay reads a MISP feed, not a MISP server")

// SafeValue reports whether MISP reads v as the exact value it is. MISP's restSearch drops an
// empty value filter (and then returns everything), treats "0" as empty, splits on "&&",
// negates a leading "!" and turns a leading or trailing "%" into a LIKE pattern; there is no
// escape syntax, so such values are never sent. v must already be trimmed.
func SafeValue(v string) bool {
	switch {
	case v == "", v == "0":
		return false
	case v[0] == '!', v[0] == '%', v[len(v)-1] == '%':
		return false
	case strings.Contains(v, "&&"):
		return false
	}
	return true
}

// WriteUUID writes the 16 bytes b as a canonical lower-case UUID (8-4-4-4-12 hexadecimal
// digits), without allocating: a feed's index keeps UUIDs as bytes, and the relay's transient
// IDs are random ones.
func WriteUUID(sb *strings.Builder, b []byte) {
	var buf [36]byte
	hex.Encode(buf[0:8], b[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], b[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], b[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], b[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:36], b[10:16])
	sb.Write(buf[:])
}

// CanonicalUUID reports whether s has the canonical 8-4-4-4-12 hexadecimal form of a MISP
// UUID. Only such values become file names (feed manifests) or path segments of links:
// anything else ("..", "/") must never reach a file system or a URL path.
func CanonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if ('0' > c || c > '9') && ('a' > c || c > 'f') && ('A' > c || c > 'F') {
				return false
			}
		}
	}
	return true
}
