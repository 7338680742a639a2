// Package misp is a small client for the parts of the MISP REST API the relay uses:
// attribute search, the version probe and sightings. It returns concrete types holding only
// the fields the CTIM mapping needs, and typed errors (see Error) that callers map once.
package misp

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Query is one observable lookup.
type Query struct {
	// Value is the observable value, already trimmed and checked to be safe for MISP's
	// filter syntax (see SafeValue).
	Value string
	// Types are the MISP attribute types to search (composites such as "domain|ip" included).
	Types []string
	// Limit caps the number of distinct events returned (CTR_ENTITIES_LIMIT).
	Limit int
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
	Tags        []string // event tag names, in MISP's order
	Attributes  []Attribute
}

// Attribute is a matched MISP attribute.
type Attribute struct {
	Type      string
	Category  string
	Value     string // the full value; composites keep their "a|b" form
	ToIDS     bool
	Timestamp time.Time // zero when absent or unreadable
	FirstSeen time.Time // zero when unset
	LastSeen  time.Time // zero when unset
}

// SightingType is the MISP sighting type sent to /sightings/add.
type SightingType string

// Sighting types MISP accepts.
const (
	Sighting      SightingType = "0"
	FalsePositive SightingType = "1"
)

// Sentinel kinds of failure. Every error the client returns is an *Error whose Kind is one of
// these, so callers can map failures with errors.Is without knowing HTTP details.
var (
	ErrPermission  = errors.New("permission denied")   // 401, 403 (and 405 on old MISP)
	ErrNotFound    = errors.New("not found")           // 404: usually a wrong API_URL
	ErrRateLimited = errors.New("too many requests")   // 429
	ErrServer      = errors.New("internal error")      // 500
	ErrUnavailable = errors.New("service unavailable") // 502, 503, 504, timeouts, refused connections
	ErrUnexpected  = errors.New("unexpected response") // anything else: non-JSON, wrong shape, TLS failure
)

// Error is a failed MISP call. Its text is meant for a SOC analyst and never holds the API key.
type Error struct {
	Op     string // what the relay was doing, e.g. "search", "version check", "add sighting"
	Status int    // HTTP status, 0 when MISP gave no HTTP answer
	// Detail is MISP's own message when it sent one, or what went wrong on the way.
	Detail string
	// RetryAfter is how long MISP asked the relay to wait (429 with X-Rate-Limit-Reset).
	RetryAfter time.Duration
	Kind       error

	breakerOpen bool // failed fast because the circuit breaker is open: not worth a retry
}

func (e *Error) Error() string {
	what := "MISP " + e.Op + " failed"
	switch {
	case e.Status != 0 && e.Detail != "":
		return fmt.Sprintf("%s: MISP answered HTTP %d: %s", what, e.Status, e.Detail)
	case e.Status != 0:
		return fmt.Sprintf("%s: MISP answered HTTP %d", what, e.Status)
	case e.Detail != "":
		return what + ": " + e.Detail
	default:
		return what
	}
}

// Unwrap lets errors.Is match the sentinel kind.
func (e *Error) Unwrap() error { return e.Kind }

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
