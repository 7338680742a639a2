// Package urlscan submits URLs to urlscan.io for scanning. It backs the relay's "scan this URL"
// response action: one POST /api/v1/scan/ per trigger, never retried, with typed errors (see
// Error, an upstream.Error) that the relay maps the same way as the MISP client's. It knows
// nothing of XDR or MISP, and never sends the API key anywhere but urlscan.io's API host.
package urlscan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/misp-relay/misp-relay/internal/upstream"
)

// Defaults for the zero values of Config.
const (
	DefaultBaseURL    = "https://urlscan.io"
	DefaultVisibility = "unlisted"
	DefaultTimeout    = 25 * time.Second
	DefaultUserAgent  = "misp-relay (+https://github.com/misp-relay/misp-relay)"
)

// maxBody caps how much of an answer is read. A submit answer is a few hundred bytes; the cap
// only protects the relay from a misbehaving server or proxy.
const maxBody = 1 << 20

// Config configures a Client. The zero value is usable.
type Config struct {
	// BaseURL is scheme and host (optionally a path prefix) of the urlscan.io API, without
	// /api/v1. Default DefaultBaseURL; tests and proxies point it elsewhere.
	BaseURL string
	// Visibility of the scans: "public", "unlisted" or "private". Default "unlisted" because a
	// URL taken from an incident may carry personal data or tokens and must not show up on
	// urlscan.io's public front page (urlscan itself recommends unlisted for such cases).
	Visibility string
	// Timeout bounds each Scan call, from connecting to reading the answer. Default 25s, the
	// timeout the original Cisco relays used for their upstream calls.
	Timeout time.Duration
	// UserAgent identifies the relay to urlscan.io, which asks integrations to send their own.
	// Default DefaultUserAgent.
	UserAgent string
}

// Client submits scans. It is safe for concurrent use; create one and share it, so that
// connections to urlscan.io are reused across triggers.
type Client struct {
	endpoint   string // <BaseURL>/api/v1/scan/
	resultBase string // <BaseURL>/result/, for answers that lack "result"
	visibility string
	timeout    time.Duration
	userAgent  string
	hc         *http.Client
}

// Result identifies a submitted scan. The scan itself runs asynchronously at urlscan.io; its
// report appears at ResultURL after some seconds.
type Result struct {
	UUID      string
	ResultURL string // the human-readable report page
	// Visibility is what urlscan.io applied, which can differ from the requested one when the
	// account enforces another level; it is the requested one when the answer did not say.
	Visibility string
}

// New checks cfg and builds a Client. It fails on an unknown Visibility, a BaseURL that is not
// an absolute http(s) URL, a negative Timeout or a UserAgent that cannot be sent as a header,
// so configuration mistakes surface at start-up rather than on the first trigger.
func New(cfg Config) (*Client, error) {
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	bu, err := url.Parse(base)
	if err != nil || (bu.Scheme != "http" && bu.Scheme != "https") || bu.Host == "" ||
		bu.User != nil || bu.RawQuery != "" || bu.Fragment != "" {
		return nil, fmt.Errorf("urlscan: BaseURL %q must be an absolute http(s) URL without credentials, query or fragment", base)
	}
	base = strings.TrimRight(bu.String(), "/")

	vis := cfg.Visibility
	switch vis {
	case "":
		vis = DefaultVisibility
	case "public", "unlisted", "private":
	default:
		return nil, fmt.Errorf("urlscan: Visibility %q is not one of public, unlisted, private", cfg.Visibility)
	}

	timeout := cfg.Timeout
	switch {
	case timeout < 0:
		return nil, fmt.Errorf("urlscan: Timeout %s is negative", timeout)
	case timeout == 0:
		timeout = DefaultTimeout
	}

	ua := cfg.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	if !headerSafe(ua, true) {
		return nil, errors.New("urlscan: UserAgent contains characters that cannot be sent in an HTTP header")
	}

	return &Client{
		endpoint:   base + "/api/v1/scan/",
		resultBase: base + "/result/",
		visibility: vis,
		timeout:    timeout,
		userAgent:  ua,
		// Redirects are not followed (upstream.NewHTTPClient): Go forwards custom headers
		// such as API-Key to any host a redirect names, and a 307/308 would replay the POST
		// and start a second scan.
		hc: upstream.NewHTTPClient(nil, 0),
	}, nil
}

// scanRequest is the submit body. Only url and visibility are sent: tags, country and the like
// are account-specific and the relay has no use for them yet.
type scanRequest struct {
	URL        string `json:"url"`
	Visibility string `json:"visibility"`
}

// scanAnswer is the part of a successful submit answer the relay uses. urlscan warns that keys
// may be missing or added at any time, so everything but uuid is optional.
type scanAnswer struct {
	UUID       string `json:"uuid"`
	Result     string `json:"result"`
	Visibility string `json:"visibility"`
}

// errorBody is urlscan's error format (docs.urlscan.io error codes): message, optional
// description, and errors[] whose entries repeat them as title/detail (or description).
type errorBody struct {
	Message     string `json:"message"`
	Description string `json:"description"`
	Errors      []struct {
		Title       string `json:"title"`
		Detail      string `json:"detail"`
		Description string `json:"description"`
	} `json:"errors"`
}

// Scan submits u for scanning with the configured visibility. apiKey comes from the caller on
// every call (a JWT claim or the environment), because the relay serves several XDR tenants
// with their own urlscan.io accounts.
//
// Scan makes at most one request and never retries: a submission is not idempotent, it
// consumes quota, and a request that timed out may still have started a scan. An empty key, or
// one that cannot travel in an HTTP header, fails with ErrPermission before anything is sent.
// Every error is an *Error.
func (c *Client) Scan(ctx context.Context, apiKey, u string) (Result, error) {
	res, e := c.scan(ctx, apiKey, u)
	if e != nil {
		e.Op = "scan"
		e.Summary = summary(e)
		return Result{}, e
	}
	return res, nil
}

func (c *Client) scan(ctx context.Context, apiKey, u string) (Result, *Error) {
	switch {
	case apiKey == "":
		return Result{}, &Error{Kind: ErrPermission, Detail: "the API key is empty"}
	case !headerSafe(apiKey, false):
		// Sending it would fail in net/http anyway, or (CR/LF) be an attempt at header
		// injection; either way the analyst needs to fix the key, not urlscan.io.
		return Result{}, &Error{Kind: ErrPermission, Detail: "the API key contains characters that cannot be sent in an HTTP header"}
	case strings.TrimSpace(u) == "":
		return Result{}, &Error{Kind: ErrBadRequest, Detail: "there is no URL to scan"}
	}

	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false) // keep '&' in query strings readable in urlscan's logs
	if err := enc.Encode(scanRequest{URL: u, Visibility: c.visibility}); err != nil {
		return Result{}, &Error{Kind: ErrUnexpected, Detail: cleanDetail("could not encode the request: "+err.Error(), apiKey)}
	}

	callCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(callCtx, http.MethodPost, c.endpoint, &body)
	if err != nil {
		return Result{}, &Error{Kind: ErrUnexpected, Detail: cleanDetail("could not build the request: "+err.Error(), apiKey)}
	}
	req.Header.Set("API-Key", apiKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)

	resp, err := c.hc.Do(req)
	if err != nil {
		return Result{}, c.transportError(ctx, err, apiKey, false)
	}
	defer func() { _ = resp.Body.Close() }() // everything needed is read below
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return Result{}, c.transportError(ctx, err, apiKey, true)
	}

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return c.decodeSuccess(resp, raw, apiKey)
	}
	return Result{}, statusError(resp, raw, apiKey)
}

// decodeSuccess turns a 2xx answer into a Result. Without a uuid there is nothing to show the
// analyst, so that is an error even though urlscan.io said yes (the old relay treated an
// empty 200 the same way).
func (c *Client) decodeSuccess(resp *http.Response, raw []byte, apiKey string) (Result, *Error) {
	var a scanAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		ct := resp.Header.Get("Content-Type")
		if ct == "" {
			ct = "none"
		}
		return Result{}, &Error{
			Status: resp.StatusCode, Kind: ErrUnexpected,
			Detail: cleanDetail("the answer is not valid JSON (Content-Type "+ct+"); the scan may have been submitted", apiKey),
		}
	}
	if strings.TrimSpace(a.UUID) == "" {
		return Result{}, &Error{
			Status: resp.StatusCode, Kind: ErrUnexpected,
			Detail: "the answer has no scan id (uuid); the scan may have been submitted",
		}
	}
	res := Result{UUID: a.UUID, ResultURL: a.Result, Visibility: a.Visibility}
	if res.ResultURL == "" {
		res.ResultURL = c.resultBase + url.PathEscape(a.UUID) + "/"
	}
	if res.Visibility == "" {
		res.Visibility = c.visibility
	}
	return res, nil
}

// statusError maps a non-2xx answer to an *Error, following the original relay's table
// (relay-contract §5.3) but keeping urlscan's own explanation, which is what tells the analyst
// whether the URL, the key or the quota is the problem.
func statusError(resp *http.Response, raw []byte, apiKey string) *Error {
	e := &Error{Status: resp.StatusCode, Detail: cleanDetail(jsonDetail(raw), apiKey)}
	switch s := resp.StatusCode; {
	case s == http.StatusBadRequest:
		e.Kind = ErrBadRequest
		// urlscan answers 400 "Invalid API key format" for a malformed key on every endpoint;
		// that is a credentials problem, and reporting it as a bad URL would mislead.
		if strings.Contains(strings.ToLower(e.Detail), "invalid api key") {
			e.Kind = ErrPermission
		}
	case s == http.StatusUnauthorized, s == http.StatusForbidden:
		e.Kind = ErrPermission
	case s == http.StatusNotFound:
		e.Kind = ErrNotFound
	case s == http.StatusTooManyRequests:
		e.Kind = ErrRateLimited
		e.RetryAfter = retryAfter(resp.Header)
	case s == http.StatusInternalServerError:
		e.Kind = ErrServer
	case s == http.StatusBadGateway, s == http.StatusServiceUnavailable, s == http.StatusGatewayTimeout:
		e.Kind = ErrUnavailable
	case s >= 300 && s < 400:
		e.Kind = ErrUnexpected
		if e.Detail == "" {
			e.Detail = "urlscan.io redirected the request, which is not followed; check BaseURL"
		}
	default:
		e.Kind = ErrUnexpected
	}
	if e.Detail == "" {
		// HTML or plain-text bodies (typical for 5xx from a load balancer) are not shown: they
		// are long, and the status text says as much.
		e.Detail = http.StatusText(resp.StatusCode)
	}
	if errors.Is(e.Kind, ErrRateLimited) {
		// The analyst needs to know which quota ran out: another visibility may still have room.
		if q := quotaName(resp.Header); q != "" {
			e.Detail = cleanDetail(e.Detail+" ("+q+")", apiKey)
		}
	}
	return e
}

// jsonDetail extracts "message: description" from an urlscan error body, falling back to the
// first errors[] entry. It returns "" for anything that is not such JSON.
func jsonDetail(raw []byte) string {
	var b errorBody
	if json.Unmarshal(raw, &b) != nil {
		return ""
	}
	msg, desc := strings.TrimSpace(b.Message), strings.TrimSpace(b.Description)
	if msg == "" && len(b.Errors) > 0 {
		e := b.Errors[0]
		msg = strings.TrimSpace(e.Title)
		desc = strings.TrimSpace(e.Detail)
		if desc == "" {
			desc = strings.TrimSpace(e.Description)
		}
	}
	switch {
	case desc == "" || desc == msg:
		return msg
	case msg == "":
		return desc
	default:
		// "Scan prevented ..." + description reads better without the dangling dots.
		return strings.TrimRight(msg, ". ") + ": " + desc
	}
}

// retryAfter reads urlscan's X-Rate-Limit-Reset-After (seconds until the exhausted window
// resets), falling back to a standard delta-seconds Retry-After.
func retryAfter(h http.Header) time.Duration {
	return upstream.RetryAfter(h, "X-Rate-Limit-Reset-After", "Retry-After")
}

// quotaName describes which quota ran out, e.g. "unlisted scans per day", from the
// X-Rate-Limit-Action and -Window headers; "" unless both are plain words.
func quotaName(h http.Header) string {
	action, window := h.Get("X-Rate-Limit-Action"), h.Get("X-Rate-Limit-Window")
	if !plainWord(action) || !plainWord(window) {
		return ""
	}
	return "limit on " + action + " scans per " + window + " reached"
}

func plainWord(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && r != '-' {
			return false
		}
	}
	return true
}

// transportError maps a failure without an HTTP status. TLS failures are ErrUnexpected because
// waiting will not help and someone has to look at certificates or an intercepting proxy;
// everything else on the network path (timeouts, refused connections, DNS, resets) is
// ErrUnavailable. parent is the caller's context, to tell our own Timeout from the caller's
// deadline; reading says the request was already sent, so the scan may exist.
func (c *Client) transportError(parent context.Context, err error, apiKey string, reading bool) *Error {
	unexpected := func(d string) *Error { return &Error{Kind: ErrUnexpected, Detail: cleanDetail(d, apiKey)} }
	unavailable := func(d string) *Error { return &Error{Kind: ErrUnavailable, Detail: cleanDetail(d, apiKey)} }
	const maybe = "; the scan may have been submitted"
	inner := upstream.Inner(err)
	switch upstream.Classify(parent, err) {
	case upstream.FailCertificate:
		return unexpected("unable to verify its TLS certificate: " + inner)
	case upstream.FailTLS:
		return unexpected("TLS handshake failed: " + inner)
	case upstream.FailTimeout:
		within := "in time"
		if parent.Err() == nil { // our Timeout fired, not the caller's deadline
			within = "within " + c.timeout.String()
		}
		if reading {
			return unavailable("the answer did not arrive completely " + within + maybe)
		}
		return unavailable("no answer " + within + maybe)
	case upstream.FailCanceled:
		return unavailable("the request was cancelled")
	}
	if reading {
		return unavailable("the connection broke while reading the answer: " + inner + maybe)
	}
	return unavailable(inner)
}

// headerSafe reports whether v can be sent as a header value unchanged. An API key must be
// visible ASCII only (no spaces): urlscan keys are UUIDs, and a stray space or newline is a
// copy-paste error the analyst should see as such. A User-Agent may contain spaces.
func headerSafe(v string, spaces bool) bool {
	for i := 0; i < len(v); i++ {
		b := v[i]
		if b == ' ' && spaces {
			continue
		}
		if b <= ' ' || b >= 0x7f {
			return false
		}
	}
	return true
}
