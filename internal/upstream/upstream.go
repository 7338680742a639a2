// Package upstream is what the relay's HTTP clients (MISP, urlscan.io) share: the one error
// shape they return, the classification of transport failures, the redaction of secrets from
// what a server sent, the HTTP client settings every upstream call needs, and the CA roots
// an operator adds for an internal CA (MISP's, and the shared cache's Redis).
//
// It knows nothing of MISP or urlscan.io in particular and nothing of the XDR error envelope:
// the clients word their own details, and the service maps Kind to the envelope's code in one
// place.
package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Kinds of failure. Every error an upstream client returns is an *Error whose Kind is one of
// these, so callers map failures with errors.Is without knowing HTTP details.
var (
	ErrBadRequest  = errors.New("bad request")         // 400 the server means: this input is refused
	ErrPermission  = errors.New("permission denied")   // 401, 403, or no usable key (no request is made)
	ErrNotFound    = errors.New("not found")           // 404: usually a wrong base URL
	ErrRateLimited = errors.New("too many requests")   // 429
	ErrServer      = errors.New("internal error")      // 500
	ErrUnavailable = errors.New("service unavailable") // 502, 503, 504, timeouts, refused connections
	ErrUnexpected  = errors.New("unexpected response") // anything else: wrong shape, TLS failure, redirects
)

// Error is a failed upstream call. Its text is written for a SOC analyst reading it in XDR and
// never holds a key or token: the clients build Detail with Clean.
type Error struct {
	// Summary says in plain words what failed, e.g. "MISP search failed" or "urlscan.io
	// refused the scan".
	Summary string
	// Op is what the relay was doing ("search", "version check", "add sighting", "scan").
	Op string
	// Status is the HTTP status of the answer; 0 when there was no HTTP answer.
	Status int
	// Detail is the server's own message when it sent one, or what went wrong on the way.
	Detail string
	// RetryAfter is how long the server asked the relay to wait (429); 0 when it did not say.
	RetryAfter time.Duration
	// Kind is one of the Err* sentinels.
	Kind error
	// Final marks a failure not worth retrying even when its kind usually is (a circuit
	// breaker failing fast).
	Final bool
}

// Error renders "<summary> (HTTP <status>): <detail>; try again in <d>", leaving out the parts
// that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Summary)
	if e.Summary == "" {
		b.WriteString(e.Op + " failed")
	}
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

// KindOfStatus maps a non-2xx HTTP status to the kind most servers mean by it. Clients refine
// it where their server says more (MISP's 405, urlscan's "invalid API key" 400).
func KindOfStatus(status int) error {
	switch status {
	case http.StatusBadRequest:
		return ErrBadRequest
	case http.StatusUnauthorized, http.StatusForbidden:
		return ErrPermission
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusTooManyRequests:
		return ErrRateLimited
	case http.StatusInternalServerError:
		return ErrServer
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return ErrUnavailable
	}
	return ErrUnexpected
}

// Failure is a transport failure (no usable HTTP answer), classified once for every client.
type Failure int

// Classes of transport failure, in the order Classify tests them.
const (
	FailOther       Failure = iota // anything else
	FailCertificate                // the server's TLS certificate was not accepted
	FailTLS                        // the TLS handshake failed (or plain HTTP answered TLS)
	FailTimeout                    // a deadline passed (ours or the caller's)
	FailCanceled                   // the caller gave up
	FailDNS                        // the host name did not resolve
	FailConnection                 // refused, reset, or closed early
)

// Classify tells what kind of transport failure err is; ctx is the context of the call.
func Classify(ctx context.Context, err error) Failure {
	var (
		netErr    net.Error
		dnsErr    *net.DNSError
		opErr     *net.OpError
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
		verifyErr *tls.CertificateVerificationError
		recordErr tls.RecordHeaderError
		alertErr  tls.AlertError
	)
	switch {
	case errors.As(err, &verifyErr), errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &invalid):
		return FailCertificate
	case errors.As(err, &recordErr), errors.As(err, &alertErr), strings.Contains(Inner(err), "HTTP response to HTTPS client"):
		return FailTLS
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return FailTimeout
	case errors.Is(ctx.Err(), context.Canceled), errors.Is(err, context.Canceled):
		return FailCanceled
	case errors.As(err, &dnsErr):
		return FailDNS
	case errors.As(err, &netErr) && netErr.Timeout():
		return FailTimeout
	case errors.As(err, &opErr), errors.Is(err, errEOF), errors.Is(err, errUnexpectedEOF):
		return FailConnection
	}
	return FailOther
}

// Inner is err's text without the `Post "<url>": ` prefix net/http adds: the URL is known
// already, and it pushes the actual reason past the truncation point.
func Inner(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err.Error()
	}
	return err.Error()
}

// MaxDetail caps Error.Detail (in runes): enough for a server's own message, short enough that
// a proxy's HTML page does not flood the XDR error pane or a log line.
const MaxDetail = 200

// Redacted replaces a secret wherever it would otherwise appear in a text.
const Redacted = "[redacted]"

// Clean makes text from a server (or from an error) fit for Error.Detail: invalid UTF-8 and
// control characters are replaced, runs of white space become single spaces, every secret is
// removed whatever its letter case (a server may echo a key upper-cased) and however its
// white space or control characters were folded with the text's, and only then is the text
// cut to MaxDetail runes, so a cut never leaves part of a secret behind.
func Clean(s string, secrets ...string) string {
	s = fold(s)
	for _, k := range secrets {
		s = redact(s, fold(k))
	}
	return Truncate(s, MaxDetail)
}

// fold replaces invalid UTF-8, and turns runs of white space and control characters into
// single spaces, trimmed.
func fold(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
}

// redact removes every case-insensitive occurrence of secret from s.
func redact(s, secret string) string {
	if len(secret) < 2 {
		return s // a one-character "secret" would blank the text, and is no secret
	}
	var b strings.Builder
	for {
		i := indexFold(s, secret)
		if i < 0 {
			break
		}
		b.WriteString(s[:i])
		b.WriteString(Redacted)
		s = s[i+len(secret):]
	}
	if b.Len() == 0 {
		return s
	}
	b.WriteString(s)
	return b.String()
}

// indexFold is strings.Index ignoring ASCII and Unicode simple case. Keys are ASCII, so a
// match has the secret's length in bytes.
func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

// Truncate cuts s to at most n runes, marking the cut.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)[:n]
	return strings.TrimRight(string(r), " ") + "…"
}

// maxRetryAfter caps RetryAfter: a longer wait is a broken header, not advice worth passing on.
const maxRetryAfter = 24 * time.Hour

// RetryAfter reads the first of the named headers that holds a number of seconds (servers
// name their rate-limit reset differently; the standard Retry-After is the usual fallback),
// rounded up to whole seconds and capped at a day.
func RetryAfter(h http.Header, names ...string) time.Duration {
	for _, name := range names {
		v := strings.TrimSpace(h.Get(name))
		if v == "" {
			continue
		}
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(secs) || secs < 0 {
			continue
		}
		if secs > maxRetryAfter.Seconds() {
			return maxRetryAfter
		}
		return time.Duration(math.Ceil(secs)) * time.Second
	}
	return 0
}

// HTMLTitle returns the <title> of an HTML page, white space collapsed ("" when there is
// none): a proxy's "502 Bad Gateway" or a login page's name says more than the page.
func HTMLTitle(page []byte) string {
	lower := strings.ToLower(string(page))
	if len(lower) != len(page) { // not plain ASCII/UTF-8 of the same length: offsets would drift
		return ""
	}
	i := strings.Index(lower, "<title>")
	if i < 0 {
		return ""
	}
	i += len("<title>")
	j := strings.Index(lower[i:], "</title>")
	if j < 0 {
		return ""
	}
	return strings.Join(strings.Fields(string(page[i:i+j])), " ")
}

// NewHTTPClient builds the http.Client an upstream client keeps for its life, so connections
// and TLS sessions are reused: a clone of http.DefaultTransport (its dial and handshake
// timeouts, HTTP/2) that honours HTTP(S)_PROXY/NO_PROXY. Redirects are never followed: Go
// forwards custom headers (API keys) to any host a redirect names, and a 307/308 would replay
// a write. The 3xx answer is handed back for the client to map.
func NewHTTPClient(tlsConf *tls.Config, maxIdlePerHost int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyFromEnvironment
	if maxIdlePerHost > 0 {
		tr.MaxIdleConnsPerHost = maxIdlePerHost
		tr.MaxIdleConns = max(tr.MaxIdleConns, maxIdlePerHost)
	}
	if tlsConf != nil {
		tr.TLSClientConfig = tlsConf
	}
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// errEOF and errUnexpectedEOF are io's, named here so Classify reads as a table.
var (
	errEOF           = io.EOF
	errUnexpectedEOF = io.ErrUnexpectedEOF
)
