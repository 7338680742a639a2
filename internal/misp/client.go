package misp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sony/gobreaker/v2"

	"github.com/misp-relay/misp-relay/internal/reqlog"
)

// Defaults of Config.
const (
	DefaultTimeout  = 25 * time.Second // the Cisco Python relay's MISP_TIMEOUT_SEC
	DefaultPageSize = 200
	DefaultMaxPages = 50 // with 200 per page: 10,000 matching attributes at most per lookup

	DefaultMaxConcurrent   = 32
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = 30 * time.Second
	// maxRetryWait is the longest a lookup waits before its one retry: MISP's 429 reset
	// beyond it is answered as too many requests rather than held.
	maxRetryWait = 2 * time.Second
)

const (
	// maxDetail bounds what the client copies from a MISP answer into Error.Detail: enough for
	// MISP's own messages, short enough that a proxy's HTML page does not flood a log line.
	maxDetail = 200
	// maxErrorBody and maxSmallBody bound how much of an error answer, and of the getVersion
	// and sightings answers, is read at all. Those answers are a few hundred bytes.
	maxErrorBody = 64 << 10
	maxSmallBody = 1 << 20
	// maxIdlePerHost keeps enough idle connections for the relay's concurrent lookups (32 by
	// default) to reuse them instead of doing a TLS handshake per lookup.
	maxIdlePerHost = 64
)

// Config configures a Client.
type Config struct {
	BaseURL string // e.g. https://misp.example (API_URL); a trailing slash is tolerated
	// Timeout bounds one client call (all pages of a Search). Default 25s when 0.
	Timeout            time.Duration
	InsecureSkipVerify bool   // MISP_VERIFY_CERT=false: for labs with self-signed certificates
	CAFile             string // extra PEM CA bundle to trust (MISP_CA_FILE), added to the system roots
	UserAgent          string // e.g. "misp-relay/1.0.0 (+XDR relay)"; "misp-relay" when empty
	PageSize           int    // attributes per restSearch page; default 200
	MaxPages           int    // pages per lookup at most; default 10

	// MaxConcurrent bounds the calls in flight to this MISP (MISP_CONCURRENCY), whatever the
	// number of relay requests, so a burst of XDR pivots cannot flood the instance. Default 32.
	MaxConcurrent int
	// BreakerFailures consecutive failures (no answer, or a 5xx) open the circuit breaker:
	// calls then fail at once with ErrUnavailable for BreakerCooldown instead of piling up
	// timeouts against a MISP that is down. Defaults 5 and 30s.
	BreakerFailures int
	BreakerCooldown time.Duration
	// OnCall, when set, observes every HTTP call (for metrics): status is 0 when MISP gave
	// no HTTP answer.
	OnCall func(op string, status int, d time.Duration)
	// HideAnswers keeps what the server sent (error messages, page titles) out of errors,
	// which then say only what happened (HTTP status, timeout). For servers named by a
	// caller rather than by the operator: their answers must not become a way to read
	// internal services through the relay.
	HideAnswers bool
}

// Client calls one MISP server. It is safe for concurrent use. The API key is an argument of
// every call rather than part of the Client because the relay gets it from each XDR request.
type Client struct {
	base      string // scheme://host[/path], without a trailing slash
	http      *http.Client
	timeout   time.Duration
	userAgent string
	pageSize  int
	maxPages  int
	sem       chan struct{} // one slot per call in flight
	breaker   *gobreaker.CircuitBreaker[*http.Response]
	cooldown  time.Duration
	onCall    func(op string, status int, d time.Duration)
	hide      bool
}

// New checks cfg and builds a Client. Its errors name the setting that is wrong, since they
// are shown to whoever deploys the relay.
func New(cfg Config) (*Client, error) {
	base, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("misp: Timeout must not be negative, got %v", cfg.Timeout)
	case cfg.PageSize < 0:
		return nil, fmt.Errorf("misp: PageSize must not be negative, got %d", cfg.PageSize)
	case cfg.MaxPages < 0:
		return nil, fmt.Errorf("misp: MaxPages must not be negative, got %d", cfg.MaxPages)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.MaxPages == 0 {
		cfg.MaxPages = DefaultMaxPages
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "misp-relay"
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.BreakerFailures <= 0 {
		cfg.BreakerFailures = DefaultBreakerFailures
	}
	if cfg.BreakerCooldown <= 0 {
		cfg.BreakerCooldown = DefaultBreakerCooldown
	}
	if cfg.OnCall == nil {
		cfg.OnCall = func(string, int, time.Duration) {}
	}

	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // opt-in via MISP_VERIFY_CERT=false
	if cfg.CAFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			// Without system roots (e.g. a scratch container) the CA file alone is trusted.
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("misp: cannot read the CA file (MISP_CA_FILE): %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("misp: the CA file (MISP_CA_FILE) %q holds no PEM certificate", cfg.CAFile)
		}
		tlsConf.RootCAs = pool
	}

	// One transport for the Client's life, so connections (and TLS sessions) to MISP are
	// reused across lookups. Cloning DefaultTransport keeps its dial and handshake timeouts.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyFromEnvironment
	tr.MaxIdleConnsPerHost = maxIdlePerHost
	if tr.MaxIdleConns < maxIdlePerHost {
		tr.MaxIdleConns = maxIdlePerHost
	}
	tr.TLSClientConfig = tlsConf

	return &Client{
		base: base,
		http: &http.Client{
			Transport: tr,
			// A redirect is never a valid MISP API answer: a redirect to /users/login means
			// MISP did not take the request as an API call, and following any redirect could
			// send the API key to another host. The 3xx is mapped to an error instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		timeout:   cfg.Timeout,
		userAgent: cfg.UserAgent,
		pageSize:  cfg.PageSize,
		maxPages:  cfg.MaxPages,
		sem:       make(chan struct{}, cfg.MaxConcurrent),
		breaker:   newBreaker(base, uint32(min(cfg.BreakerFailures, 1<<20)), cfg.BreakerCooldown), //nolint:gosec,bodyclose // bounded above; no request is made here
		cooldown:  cfg.BreakerCooldown,
		onCall:    cfg.OnCall,
		hide:      cfg.HideAnswers,
	}, nil
}

// errServerSide marks a 5xx answer as a failure for the circuit breaker while still handing
// the response on, so its status and body are mapped as usual.
var errServerSide = errors.New("MISP answered 5xx")

func newBreaker(name string, failures uint32, cooldown time.Duration) *gobreaker.CircuitBreaker[*http.Response] {
	return gobreaker.NewCircuitBreaker[*http.Response](gobreaker.Settings{ //nolint:bodyclose // passes responses through to do's caller, which closes them
		Name:        name,
		MaxRequests: 1, // one probe call when half-open
		Timeout:     cooldown,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		// A caller that gave up says nothing about MISP's health.
		IsSuccessful: func(err error) bool { return err == nil || errors.Is(err, context.Canceled) },
	})
}

// BreakerState is "closed", "half-open" or "open", for metrics and logs.
func (c *Client) BreakerState() string { return c.breaker.State().String() }

// parseBaseURL checks API_URL and returns it without a trailing slash. MISP may live under a
// path prefix (https://host/misp), so a path is kept.
func parseBaseURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", errors.New("misp: BaseURL (API_URL) is empty; set it to the MISP base URL, e.g. https://misp.example")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the input, which may hold credentials; keep only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("misp: BaseURL (API_URL) is not a valid URL: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("misp: BaseURL (API_URL) %q must start with https:// or http://", u.Redacted())
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("misp: BaseURL (API_URL) %q has no host", u.Redacted())
	case u.User != nil:
		return "", fmt.Errorf("misp: BaseURL (API_URL) %q must not contain credentials; the API key is sent per request", u.Redacted())
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "", fmt.Errorf("misp: BaseURL (API_URL) %q must not have a query or fragment", u.Redacted())
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// BaseURL returns the MISP base URL the client calls, without a trailing slash.
func (c *Client) BaseURL() string { return c.base }

// searchRequest is the restSearch body. Only these filters are sent: every extra filter is
// one more way for MISP's filter parsing to surprise (see SafeValue).
type searchRequest struct {
	ReturnFormat     string   `json:"returnFormat"`
	Value            string   `json:"value"`
	Type             []string `json:"type"`
	IncludeContext   int      `json:"includeContext"`
	IncludeEventTags int      `json:"includeEventTags"`
	Limit            int      `json:"limit"`
	Page             int      `json:"page"`
}

// Search finds the attributes matching q and returns them grouped by event, in the order MISP
// sent them, with at most q.Limit events (q.Limit <= 0: no event cap; the page bounds still
// apply). The answer is decoded as a stream and reading stops once the event cap is reached,
// so memory is bounded by the limits, not by what MISP sends.
func (c *Client) Search(ctx context.Context, key string, q Query) (_ []Event, err error) {
	const op = "search"
	defer func() { err = c.scrub(err) }()
	if err := checkKey(op, key); err != nil {
		return nil, err
	}
	if !SafeValue(q.Value) {
		// MISP would read such a value as a pattern or drop it and return everything.
		return nil, &Error{Op: op, Kind: ErrUnexpected, Detail: "refusing to search for a value MISP would not match exactly"}
	}
	release, err := c.acquire(ctx, op, key)
	if err != nil {
		return nil, err
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	types := q.Types
	if types == nil {
		types = []string{}
	}
	col := newCollector(q.Limit)
	for page := 1; page <= c.maxPages; page++ {
		body, err := encodeJSON(searchRequest{
			ReturnFormat: "json", Value: q.Value, Type: types,
			IncludeContext: 1, IncludeEventTags: 1,
			Limit: c.pageSize, Page: page,
		})
		if err != nil {
			return nil, &Error{Op: op, Kind: ErrUnexpected, Detail: "cannot encode the search: " + err.Error()}
		}
		res, err := c.searchPage(ctx, op, key, body, col)
		if err != nil {
			return nil, err
		}
		if res.stopped || res.overflow || res.attributes < c.pageSize || col.full() {
			break
		}
	}
	return col.events, nil
}

// pageResult says how reading one restSearch page ended.
type pageResult struct {
	attributes int  // attributes read from the page
	stopped    bool // the event cap was reached and an attribute of another event came
	overflow   bool // MISP sent more attributes than the page size: it ignores limit/page
}

// searchPage fetches one restSearch page and feeds its attributes to col.
func (c *Client) searchPage(ctx context.Context, op, key string, body []byte, col *collector) (pageResult, error) {
	resp, err := c.doIdempotent(ctx, op, key, http.MethodPost, "/attributes/restSearch", body)
	if err != nil {
		return pageResult{}, err
	}
	defer closeBody(resp)
	dec, err := c.jsonStart(ctx, op, key, resp)
	if err != nil {
		return pageResult{}, err
	}
	res, err := c.readAttributes(dec, col)
	if err != nil {
		return pageResult{}, c.readError(ctx, op, key, resp.StatusCode, err)
	}
	if !res.stopped && !res.overflow {
		// Finish a small remainder (the closing brackets) so the connection can be reused;
		// an early stop instead closes the body unread, which drops the connection.
		_, _ = io.Copy(io.Discard, io.LimitReader(dec.Buffered(), 1<<10))
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	}
	return res, nil
}

// shapeError is a restSearch answer that is valid JSON but not MISP's attributes shape.
type shapeError struct{ msg string }

func (e *shapeError) Error() string { return e.msg }

// readAttributes walks {"response":{"Attribute":[...]}} (or {"response":[]}) token by token
// and decodes one attribute at a time.
func (c *Client) readAttributes(dec *json.Decoder, col *collector) (pageResult, error) {
	var res pageResult
	if err := expectDelim(dec, '{', "the answer is not a JSON object"); err != nil {
		return res, err
	}
	for dec.More() {
		name, err := objectKey(dec)
		if err != nil {
			return res, err
		}
		if name != "response" {
			if err := skipValue(dec); err != nil {
				return res, err
			}
			continue
		}
		tok, err := dec.Token()
		if err != nil {
			return res, err
		}
		switch tok {
		case json.Delim('['):
			// {"response": []} is MISP's "no match" (a PHP empty array); a non-empty list is
			// the events scope, which the client did not ask for.
			if dec.More() {
				return res, &shapeError{"response is a list of events, not of attributes"}
			}
			_, err := dec.Token()
			return res, err
		case json.Delim('{'):
			for dec.More() {
				name, err := objectKey(dec)
				if err != nil {
					return res, err
				}
				if name != "Attribute" {
					if err := skipValue(dec); err != nil {
						return res, err
					}
					continue
				}
				if err := expectDelim(dec, '[', "response.Attribute is not a list"); err != nil {
					return res, err
				}
				for dec.More() {
					if res.attributes == c.pageSize {
						res.overflow = true
						return res, nil
					}
					a, err := decodeAttribute(dec)
					if err != nil {
						return res, err
					}
					res.attributes++
					if !col.add(a) {
						res.stopped = true
						return res, nil
					}
				}
				if _, err := dec.Token(); err != nil { // ]
					return res, err
				}
			}
			_, err := dec.Token() // }
			return res, err
		default:
			return res, &shapeError{"response is neither an object nor a list"}
		}
	}
	if _, err := dec.Token(); err != nil { // }
		return res, err
	}
	return res, &shapeError{`the answer has no "response"`}
}

// wireAttribute holds the attribute fields the relay uses. MISP sends most numbers as strings
// (some versions as numbers) and PHP empty arrays ([]) where an object is expected, so every
// field accepts whatever comes and reads what it can.
type wireAttribute struct {
	Type      flexString `json:"type"`
	Category  flexString `json:"category"`
	Value     flexString `json:"value"`
	ToIDS     flexBool   `json:"to_ids"`
	Timestamp flexString `json:"timestamp"`
	FirstSeen flexString `json:"first_seen"`
	LastSeen  flexString `json:"last_seen"`
	Event     wireEvent  `json:"Event"`
}

// wireEvent is the Event block includeContext adds to each attribute.
type wireEvent struct {
	UUID          flexString `json:"uuid"`
	Info          flexString `json:"info"`
	Date          flexString `json:"date"`
	Timestamp     flexString `json:"timestamp"`
	ThreatLevelID flexString `json:"threat_level_id"`
	Orgc          struct {
		Name flexString `json:"name"`
	} `json:"Orgc"`
	Tag []struct {
		Name flexString `json:"name"`
	} `json:"Tag"`
}

// flexString is a JSON string, or a number's literal text; anything else reads as "".
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) == 0:
		*f = ""
	case b[0] == '"':
		// Most MISP strings have no escapes: take the bytes as they are (the decoder has
		// checked the syntax) rather than decoding them a second time.
		if inner := b[1 : len(b)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
			*f = flexString(inner)
			return nil
		}
		var s string
		if json.Unmarshal(b, &s) != nil {
			*f = ""
			return nil
		}
		*f = flexString(s)
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		*f = flexString(b)
	default:
		*f = ""
	}
	return nil
}

// flexBool reads to_ids: a JSON boolean in MISP 2.4+, 0/1 (string or number) in older dumps.
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	*f = flexBool(rawBool(b))
	return nil
}

// decodeAttribute reads one attribute object with a single decode into the fields the relay
// uses. The relay asks for no sightings or correlations, so an attribute is small; what it
// does not use is parsed but not kept.
func decodeAttribute(dec *json.Decoder) (wireAttribute, error) {
	var a wireAttribute
	if err := dec.Decode(&a); err != nil {
		var ute *json.UnmarshalTypeError
		switch {
		case errors.As(err, &ute) && ute.Field == "":
			return a, &shapeError{"an attribute is not a JSON object"}
		case errors.As(err, &ute):
			// A field of another kind than expected, typically a PHP empty array ([]) where
			// MISP means an empty object: the decoder skipped it and read the rest.
			return a, nil
		}
		return a, err
	}
	return a, nil
}

// collector groups attributes by event, keeping MISP's order, up to limit events.
type collector struct {
	limit  int
	events []Event
	index  map[string]int
}

func newCollector(limit int) *collector {
	return &collector{limit: limit, index: map[string]int{}}
}

func (c *collector) full() bool { return c.limit > 0 && len(c.events) >= c.limit }

// add files a under its event. It returns false when a belongs to a new event while the cap is
// already reached: the caller stops reading there.
func (c *collector) add(w wireAttribute) bool {
	ev := &w.Event
	uuid := string(ev.UUID)
	if !isUUID(uuid) {
		return true // cannot be grouped or linked (and would make an invalid CTIM id)
	}
	attr := Attribute{
		Type:      string(w.Type),
		Category:  string(w.Category),
		Value:     string(w.Value),
		ToIDS:     bool(w.ToIDS),
		Timestamp: EpochSeconds(string(w.Timestamp)),
		FirstSeen: SeenTime(string(w.FirstSeen)),
		LastSeen:  SeenTime(string(w.LastSeen)),
	}
	if i, ok := c.index[uuid]; ok {
		c.events[i].Attributes = append(c.events[i].Attributes, attr)
		return true
	}
	if c.full() {
		return false
	}
	c.index[uuid] = len(c.events)
	c.events = append(c.events, Event{
		UUID:        uuid,
		Info:        string(ev.Info),
		Date:        string(ev.Date),
		Timestamp:   EpochSeconds(string(ev.Timestamp)),
		ThreatLevel: ThreatLevel(string(ev.ThreatLevelID)),
		Org:         string(ev.Orgc.Name),
		Tags:        tagNames(ev),
		Attributes:  []Attribute{attr},
	})
	return true
}

// Version returns MISP's version from GET /servers/getVersion, the cheapest authenticated
// call: it proves the URL, the TLS setup and the key in one request.
func (c *Client) Version(ctx context.Context, key string) (_ string, err error) {
	const op = "version check"
	defer func() { err = c.scrub(err) }()
	if err := checkKey(op, key); err != nil {
		return "", err
	}
	release, err := c.acquire(ctx, op, key)
	if err != nil {
		return "", err
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var v struct {
		Version json.RawMessage `json:"version"`
	}
	status, err := c.call(ctx, op, key, http.MethodGet, "/servers/getVersion", nil, &v)
	if err != nil {
		return "", err
	}
	var s string
	if json.Unmarshal(v.Version, &s) != nil || s == "" {
		return "", &Error{Op: op, Status: status, Kind: ErrUnexpected, Detail: `MISP's answer has no "version"; check that API_URL points at the MISP base URL`}
	}
	return s, nil
}

// sightingRequest is the /sightings/add body.
type sightingRequest struct {
	Values []string     `json:"values"`
	Type   SightingType `json:"type"`
	Source string       `json:"source"`
}

// AddSighting records that value was seen (Sighting) or is a false positive (FalsePositive),
// on every attribute with that value the key's user can see. It is never retried: a retry
// after a lost answer would count the sighting twice.
func (c *Client) AddSighting(ctx context.Context, key, value string, typ SightingType, source string) (err error) {
	const op = "add sighting"
	defer func() { err = c.scrub(err) }()
	if err := checkKey(op, key); err != nil {
		return err
	}
	release, err := c.acquire(ctx, op, key)
	if err != nil {
		return err
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	body, err := encodeJSON(sightingRequest{Values: []string{value}, Type: typ, Source: source})
	if err != nil {
		return &Error{Op: op, Kind: ErrUnexpected, Detail: "cannot encode the sighting: " + err.Error()}
	}
	var r struct {
		Sighting json.RawMessage `json:"Sighting"`
		Message  json.RawMessage `json:"message"`
		Name     json.RawMessage `json:"name"`
	}
	status, err := c.call(ctx, op, key, http.MethodPost, "/sightings/add", body, &r)
	if err != nil {
		return err
	}
	if len(r.Sighting) > 0 && r.Sighting[0] == '{' {
		return nil
	}
	// MISP answers a failed sighting with HTTP 200 and only a message, e.g. "Could not add
	// the Sighting. Reason: No valid attributes found that match the criteria."
	detail := rawString(r.Message)
	if detail == "" {
		detail = rawString(r.Name)
	}
	if detail == "" {
		detail = `MISP's answer has no "Sighting"`
	}
	return &Error{Op: op, Status: status, Kind: ErrUnexpected, Detail: clean(detail, key)}
}

// checkKey refuses an empty key locally: MISP would answer 403, after a round trip.
func checkKey(op, key string) error {
	if strings.TrimSpace(key) == "" {
		return &Error{Op: op, Kind: ErrPermission, Detail: "no MISP API key was given"}
	}
	return nil
}

// call does one request whose JSON answer is small (a few hundred bytes) and decodes it into
// out, a pointer to a struct. It returns the HTTP status for errors about the body.
//
// It is never retried: a sighting whose answer was lost would be added twice, and a health
// probe costs one MISP call at most.
func (c *Client) call(ctx context.Context, op, key, method, path string, body []byte, out any) (int, error) {
	resp, err := c.do(ctx, op, key, method, path, body)
	if err != nil {
		return 0, err
	}
	defer closeBody(resp)
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxSmallBody))
	if err != nil {
		return resp.StatusCode, c.readError(ctx, op, key, resp.StatusCode, err)
	}
	b := bytes.TrimSpace(raw)
	switch {
	case len(b) == 0:
		err = &Error{Op: op, Status: resp.StatusCode, Kind: ErrUnexpected, Detail: "MISP sent an empty answer"}
	case b[0] == '<':
		err = &Error{Op: op, Status: resp.StatusCode, Kind: ErrUnexpected, Detail: htmlDetail(b, key)}
	case b[0] != '{':
		if !json.Valid(b) {
			err = c.readError(ctx, op, key, resp.StatusCode, json.Unmarshal(b, new(any)))
		} else {
			err = c.readError(ctx, op, key, resp.StatusCode, &shapeError{"the answer is not a JSON object"})
		}
	default:
		if uerr := json.Unmarshal(b, out); uerr != nil {
			err = c.readError(ctx, op, key, resp.StatusCode, uerr)
		}
	}
	if err != nil {
		return resp.StatusCode, err
	}
	return resp.StatusCode, nil
}

// do sends one request and returns the response when MISP answered 2xx. Any other outcome
// is an *Error, with the response body already read and closed.
func (c *Client) do(ctx context.Context, op, key, method, path string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, &Error{Op: op, Kind: ErrUnexpected, Detail: clean("cannot build the request: "+unwrapURLError(err).Error(), key)}
	}
	req.Header.Set("Authorization", key)
	req.Header.Set("Accept", "application/json")
	// Sent on every call, GET included: without it MISP does not parse a JSON body, drops
	// every filter and returns the whole dataset (MISP issue #8841).
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", c.userAgent)

	start := time.Now()
	reqlog.From(ctx).AddUpstream()
	resp, err := c.breaker.Execute(func() (*http.Response, error) {
		resp, err := c.http.Do(req)
		if err == nil && resp.StatusCode >= 500 {
			return resp, errServerSide
		}
		return resp, err
	})
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	c.onCall(op, status, time.Since(start))
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return nil, &Error{Op: op, Kind: ErrUnavailable, breakerOpen: true, Detail: fmt.Sprintf(
			"MISP failed repeatedly; the relay stops calling it for %s and then tries again", c.cooldown)}
	case errors.Is(err, errServerSide):
		err = nil
	}
	if err != nil {
		return nil, transportError(ctx, op, key, 0, err, c.timeout)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer closeBody(resp)
	return nil, c.statusError(op, key, resp)
}

// scrub drops what the server said from err when the Client hides answers (HideAnswers).
func (c *Client) scrub(err error) error {
	var e *Error
	if c.hide && errors.As(err, &e) && e.Status != 0 {
		e.Detail = ""
	}
	return err
}

// acquire waits for one of the MaxConcurrent slots towards this MISP. A slot is held for a
// whole operation (all pages of a search, the body read included), and the operation's
// Timeout starts only once it has one: time spent queueing behind other lookups is not
// charged to MISP, nor counted by the circuit breaker.
func (c *Client) acquire(ctx context.Context, op, key string) (release func(), err error) {
	select {
	case c.sem <- struct{}{}:
		return func() { <-c.sem }, nil
	case <-ctx.Done():
		return nil, transportError(ctx, op, key, 0, ctx.Err(), c.timeout)
	}
}

// doIdempotent is do with one retry, after a short random pause (or MISP's 429 reset when it
// is short), for answers that mean "try again": no answer, 502/503/504, or a rate limit. Only
// for calls that change nothing in MISP.
func (c *Client) doIdempotent(ctx context.Context, op, key, method, path string, body []byte) (*http.Response, error) {
	resp, err := c.do(ctx, op, key, method, path, body)
	wait, ok := retryWait(ctx, err)
	if !ok {
		return resp, err
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, err
	case <-t.C:
	}
	return c.do(ctx, op, key, method, path, body)
}

// retryWait says whether err is worth one retry and after how long.
func retryWait(ctx context.Context, err error) (time.Duration, bool) {
	var e *Error
	if err == nil || ctx.Err() != nil || !errors.As(err, &e) || e.breakerOpen {
		return 0, false
	}
	// Jitter spreads the retries of many concurrent lookups that failed together.
	jitter := 50*time.Millisecond + rand.N(200*time.Millisecond) //nolint:gosec // not security-sensitive
	switch {
	case errors.Is(e.Kind, ErrRateLimited) && e.RetryAfter <= maxRetryWait:
		return e.RetryAfter + jitter, true
	case errors.Is(e.Kind, ErrUnavailable):
		return jitter, true
	}
	return 0, false
}

// statusError maps a non-2xx answer to an *Error.
func (c *Client) statusError(op, key string, resp *http.Response) *Error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{Op: op, Status: resp.StatusCode, Detail: bodyDetail(raw, resp.Header.Get("Content-Type"), key)}
	switch code := resp.StatusCode; {
	case code == http.StatusUnauthorized, code == http.StatusForbidden,
		code == http.StatusMethodNotAllowed: // 405: MISP 2.4's "no permission" answer
		e.Kind = ErrPermission
	case code == http.StatusNotFound:
		e.Kind = ErrNotFound
		e.Detail = joinDetail(e.Detail, "check that API_URL points at the MISP base URL (e.g. https://misp.example)")
	case code == http.StatusTooManyRequests:
		e.Kind = ErrRateLimited
		e.RetryAfter = retryAfter(resp.Header)
	case code == http.StatusInternalServerError:
		e.Kind = ErrServer
	case code == http.StatusBadGateway, code == http.StatusServiceUnavailable, code == http.StatusGatewayTimeout:
		e.Kind = ErrUnavailable
	case code >= 300 && code < 400 && resp.Header.Get("Location") != "":
		loc := clean(resp.Header.Get("Location"), key)
		if strings.Contains(loc, "/users/login") {
			// MISP sends non-API requests it cannot authenticate to its login page.
			e.Kind = ErrPermission
			e.Detail = "MISP redirected to its login page: it did not accept the request as an API call with this API key; check the key and that its user may use the API"
		} else {
			e.Kind = ErrUnexpected
			e.Detail = "MISP redirected to " + strconv.Quote(loc) + "; set API_URL to the address MISP answers on (e.g. https:// rather than http://)"
		}
	default:
		e.Kind = ErrUnexpected
	}
	return e
}

// closeBody closes a response body. Closing before the end drops the connection instead of
// returning it to the pool, which is what an early stop wants; the error tells nothing more.
func closeBody(resp *http.Response) { _ = resp.Body.Close() }

// retryAfter reads MISP's X-Rate-Limit-Reset (seconds until the window resets), or the
// standard Retry-After seconds a proxy may send.
func retryAfter(h http.Header) time.Duration {
	for _, name := range []string{"X-Rate-Limit-Reset", "Retry-After"} {
		if s, err := strconv.ParseFloat(strings.TrimSpace(h.Get(name)), 64); err == nil && s > 0 && s < 1e6 {
			return time.Duration(s * float64(time.Second))
		}
	}
	return 0
}

// jsonStart checks that a 2xx body looks like JSON and returns a decoder on it. An HTML page
// (a login form, a proxy page) gets a clear message instead of a JSON syntax error.
func (c *Client) jsonStart(ctx context.Context, op, key string, resp *http.Response) (*json.Decoder, error) {
	br := bufio.NewReaderSize(resp.Body, 4<<10)
	for {
		b, err := br.Peek(1)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, &Error{Op: op, Status: resp.StatusCode, Kind: ErrUnexpected, Detail: "MISP sent an empty answer"}
			}
			return nil, c.readError(ctx, op, key, resp.StatusCode, err)
		}
		switch b[0] {
		case ' ', '\t', '\r', '\n':
			_, _ = br.ReadByte()
			continue
		case '<':
			page, _ := br.Peek(4 << 10) // enough for the <title>; fewer bytes at EOF is fine
			return nil, &Error{Op: op, Status: resp.StatusCode, Kind: ErrUnexpected, Detail: htmlDetail(page, key)}
		}
		return json.NewDecoder(br), nil
	}
}

// readError maps a failure while reading or decoding a 2xx body.
func (c *Client) readError(ctx context.Context, op, key string, status int, err error) *Error {
	var se *shapeError
	var syn *json.SyntaxError
	var ute *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return &Error{Op: op, Status: status, Kind: ErrUnexpected, Detail: "MISP's answer has an unexpected shape: " + se.msg}
	case errors.As(err, &syn) && syn.Error() == "unexpected end of JSON input" && ctx.Err() == nil:
		return &Error{Op: op, Status: status, Kind: ErrUnexpected, Detail: "MISP's answer ended early (truncated JSON)"}
	case errors.As(err, &syn), errors.As(err, &ute):
		return &Error{Op: op, Status: status, Kind: ErrUnexpected, Detail: clean("MISP's answer is not valid JSON: "+err.Error(), key)}
	case (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) && ctx.Err() == nil:
		return &Error{Op: op, Status: status, Kind: ErrUnexpected, Detail: "MISP's answer ended early (truncated JSON)"}
	}
	return transportError(ctx, op, key, status, err, c.timeout)
}

// transportError maps a failure to get (or finish reading) an answer.
func transportError(ctx context.Context, op, key string, status int, err error, timeout time.Duration) *Error {
	e := &Error{Op: op, Status: status, Kind: ErrUnavailable}
	inner := unwrapURLError(err)
	var (
		netErr    net.Error
		dnsErr    *net.DNSError
		opErr     *net.OpError
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
		verifyErr *tls.CertificateVerificationError
		recordErr tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &verifyErr), errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &invalid):
		e.Kind = ErrUnexpected
		e.Detail = "MISP's TLS certificate was not accepted (" + inner.Error() + "); trust its CA with MISP_CA_FILE, or set MISP_VERIFY_CERT=false only for a lab"
	case errors.As(err, &recordErr), strings.Contains(inner.Error(), "HTTP response to HTTPS client"):
		e.Kind = ErrUnexpected
		e.Detail = "TLS failed (" + inner.Error() + "); check http:// versus https:// in API_URL"
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		e.Detail = "MISP did not answer within " + timeout.String()
	case errors.Is(ctx.Err(), context.Canceled) || errors.Is(err, context.Canceled):
		e.Detail = "the request to MISP was canceled"
	case errors.As(err, &dnsErr):
		e.Detail = "cannot resolve MISP's host name (" + dnsErr.Error() + "); check API_URL"
	case errors.As(err, &netErr) && netErr.Timeout():
		e.Detail = "MISP did not answer in time (" + inner.Error() + ")"
	case errors.As(err, &opErr), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		e.Detail = "cannot reach MISP (" + inner.Error() + ")"
	default:
		e.Kind = ErrUnexpected
		e.Detail = "calling MISP failed (" + inner.Error() + ")"
	}
	e.Detail = clean(e.Detail, key)
	return e
}

// unwrapURLError drops the "Post <url>:" prefix net/http adds: the URL is known already.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// bodyDetail describes a MISP error answer: MISP's message from its {"name","message","url"}
// JSON, else a short plain description of what came.
func bodyDetail(raw []byte, contentType, key string) string {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 {
		return ""
	}
	if b[0] == '{' {
		var m struct {
			Name    json.RawMessage `json:"name"`
			Message json.RawMessage `json:"message"`
		}
		if json.Unmarshal(b, &m) == nil {
			if s := rawString(m.Message); s != "" {
				return clean(s, key)
			}
			if s := rawString(m.Name); s != "" {
				return clean(s, key)
			}
		}
	}
	if b[0] == '<' || strings.Contains(strings.ToLower(contentType), "html") {
		return htmlDetail(b, key)
	}
	return clean(string(b), key)
}

// htmlDetail says an HTML page came, with its title when there is one (e.g. "502 Bad
// Gateway" from a proxy, "Users - MISP" for the login page).
func htmlDetail(page []byte, key string) string {
	const d = "MISP sent an HTML page instead of JSON"
	// ASCII-only lowering keeps byte offsets equal to those in page.
	lower := bytes.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, page)
	if len(lower) != len(page) { // page was not valid UTF-8: Map replaced bytes
		return d
	}
	i := bytes.Index(lower, []byte("<title>"))
	if i < 0 {
		return d
	}
	i += len("<title>")
	j := bytes.Index(lower[i:], []byte("</title>"))
	if j < 0 {
		return d
	}
	rest := page[i:]
	title := strings.Join(strings.Fields(string(rest[:j])), " ")
	if title == "" {
		return d
	}
	return d + " (" + truncate(clean(title, key), 80) + ")"
}

// clean makes text from MISP (or from an error) fit for Error.Detail: the API key is removed
// first, then whitespace is collapsed and the text truncated, so a cut can never leave part
// of the key behind.
func clean(s, key string) string {
	if k := strings.TrimSpace(key); k != "" {
		s = strings.ReplaceAll(s, k, "[redacted]")
	}
	if key != "" {
		s = strings.ReplaceAll(s, key, "[redacted]")
	}
	s = strings.Join(strings.Fields(s), " ")
	return truncate(s, maxDetail)
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func joinDetail(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// encodeJSON encodes v without HTML escaping, so values like URLs with '&' go out verbatim.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// expectDelim reads the next token and checks it is the delimiter d.
func expectDelim(dec *json.Decoder, d json.Delim, msg string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != d {
		return &shapeError{msg}
	}
	return nil
}

// objectKey reads an object member name.
func objectKey(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", &shapeError{"expected an object key"}
	}
	return s, nil
}

// skipValue reads past the next value without keeping it.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// rawString returns a JSON string's value, or a number's literal text (MISP sends ids and
// timestamps as either); anything else is "".
func rawString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	case c == '-' || (c >= '0' && c <= '9'):
		var n json.Number
		if json.Unmarshal(raw, &n) == nil {
			return n.String()
		}
	}
	return ""
}

// rawBool reads to_ids: a JSON boolean in MISP 2.4+, 0/1 (string or number) in older dumps.
func rawBool(raw json.RawMessage) bool {
	switch strings.ToLower(strings.TrimSpace(string(raw))) {
	case "true", "1", `"1"`, `"true"`:
		return true
	}
	return false
}

// isUUID reports whether s can be an event UUID: MISP writes them as 36 hex digits and
// hyphens. Anything up to 64 visible ASCII characters is taken (test instances use short
// ids); longer values, spaces and control characters are not, since the UUID becomes part of
// CTIM ids and links.
func isUUID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := range len(s) {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// tagNames reads the names of Event.Tag, in order; nil when there are none.
func tagNames(ev *wireEvent) []string {
	var out []string
	for _, t := range ev.Tag {
		if t.Name != "" {
			out = append(out, string(t.Name))
		}
	}
	return out
}
