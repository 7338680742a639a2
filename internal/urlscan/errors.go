package urlscan

import (
	"errors"

	"github.com/misp-relay/misp-relay/internal/upstream"
)

// Error is a failed scan submission: every error Scan returns is one. Its text is written for
// a SOC analyst reading it in XDR and never contains the API key, even when urlscan.io (or a
// proxy in front of it) echoes the key.
type Error = upstream.Error

// Sentinel kinds of failure, shared with the MISP client so that one mapping serves both.
var (
	ErrBadRequest  = upstream.ErrBadRequest  // 400: urlscan.io refused this URL (DNS, blacklist, invalid URL)
	ErrPermission  = upstream.ErrPermission  // 401, 403, or no usable API key (no request is made)
	ErrNotFound    = upstream.ErrNotFound    // 404: usually a wrong BaseURL
	ErrRateLimited = upstream.ErrRateLimited // 429: the scan quota for this visibility is used up
	ErrServer      = upstream.ErrServer      // 500
	ErrUnavailable = upstream.ErrUnavailable // 502, 503, 504, timeouts, refused connections
	ErrUnexpected  = upstream.ErrUnexpected  // anything else: non-JSON or id-less success, TLS failure, redirects
)

// summary says in plain words what went wrong, from the analyst's point of view.
func summary(e *Error) string {
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

// cleanDetail makes s fit for Error.Detail (see upstream.Clean): the key is removed before
// the text is cut, so truncation never leaves half a key behind.
func cleanDetail(s, apiKey string) string { return upstream.Clean(s, apiKey) }
