package urlscan

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Sentinel kinds of failure. Every error Scan returns is an *Error whose Kind is one of these,
// so the relay maps failures with errors.Is without knowing HTTP details. The names and texts
// match the MISP client's sentinels so that one mapping table serves both upstreams.
var (
	ErrBadRequest  = errors.New("bad request")         // 400: urlscan.io refused this URL (DNS, blacklist, invalid URL)
	ErrPermission  = errors.New("permission denied")   // 401, 403, or no usable API key (no request is made)
	ErrNotFound    = errors.New("not found")           // 404: usually a wrong BaseURL
	ErrRateLimited = errors.New("too many requests")   // 429: the scan quota for this visibility is used up
	ErrServer      = errors.New("internal error")      // 500
	ErrUnavailable = errors.New("service unavailable") // 502, 503, 504, timeouts, refused connections
	ErrUnexpected  = errors.New("unexpected response") // anything else: non-JSON or id-less success, TLS failure, redirects
)

// maxDetail caps Error.Detail (in runes). urlscan's messages are one or two sentences; anything
// longer is not meant for an analyst and would swamp the XDR error pane.
const maxDetail = 200

// redacted replaces the API key wherever it would otherwise appear in an error text.
const redacted = "[redacted]"

// Error is a failed scan submission. Its text is written for a SOC analyst reading it in XDR and
// never contains the API key, even when urlscan.io (or a proxy in front of it) echoes the key.
type Error struct {
	// Status is the HTTP status urlscan.io answered with; 0 when there was no HTTP answer
	// (no usable key, timeout, connection or TLS failure).
	Status int
	// Detail is urlscan.io's own message and description when it sent JSON, or a short plain
	// description otherwise. At most about 200 characters, single line, key removed.
	Detail string
	// RetryAfter is how long urlscan.io asked the caller to wait (429, from
	// X-Rate-Limit-Reset-After); 0 when it did not say.
	RetryAfter time.Duration
	// Kind is one of the Err* sentinels.
	Kind error
}

// Error renders "<what happened> (HTTP <status>): <detail>; try again in <d>", leaving out the
// parts that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.summary())
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, "; try again in %s", e.RetryAfter)
	}
	return b.String()
}

// Unwrap lets errors.Is match the sentinel kind.
func (e *Error) Unwrap() error { return e.Kind }

// summary says in plain words what went wrong, from the analyst's point of view.
func (e *Error) summary() string {
	switch {
	case errors.Is(e.Kind, ErrBadRequest):
		return "urlscan.io refused the scan"
	case errors.Is(e.Kind, ErrPermission):
		switch e.Status {
		case 0:
			return "no usable urlscan.io API key"
		case 403:
			return "urlscan.io does not allow this scan with the configured API key"
		default:
			return "urlscan.io rejected the API key"
		}
	case errors.Is(e.Kind, ErrNotFound):
		return "urlscan.io has no scan API at the configured address"
	case errors.Is(e.Kind, ErrRateLimited):
		return "urlscan.io scan quota exceeded"
	case errors.Is(e.Kind, ErrServer):
		return "urlscan.io failed with an internal error"
	case errors.Is(e.Kind, ErrUnavailable):
		return "urlscan.io is unavailable"
	}
	if e.Status == 0 {
		return "the call to urlscan.io failed"
	}
	return "urlscan.io gave an unexpected answer"
}

// cleanDetail makes s fit for Error.Detail: invalid UTF-8 and control characters are replaced
// and runs of white space become single spaces (none of which can join two fragments into a
// key, since a usable key is visible ASCII only), then the API key is removed, and only then is
// the text cut to maxDetail runes, so truncation never leaves half a key behind.
func cleanDetail(s, apiKey string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
	if apiKey != "" {
		s = strings.ReplaceAll(s, apiKey, redacted)
	}
	if utf8.RuneCountInString(s) <= maxDetail {
		return s
	}
	r := []rune(s)[:maxDetail]
	return strings.TrimRight(string(r), " ") + "…"
}
