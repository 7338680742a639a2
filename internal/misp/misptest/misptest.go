// Package misptest is a fake MISP server for tests. It speaks MISP 2.5's real wire format
// for the calls the relay makes (attribute restSearch, getVersion, sightings), including
// MISP's quirks: string ids, errors as {"name","message","url"}, a failed sighting answered
// with HTTP 200, filters ignored without Content-Type: application/json, and a redirect to
// the login page for non-API requests without a valid key. It is seeded with events in MISP's
// feed / event format, read with package mispjson like the relay's own feed loader.
//
// It also misbehaves on demand, for tests of the relay's resilience: Always sets a standing
// Answer for a path, Script queues answers for its next requests, When picks one by what a
// request asks (SearchValue), and an Answer says what is sent instead of (or how to spoil)
// the fake's own answer: another status and body (byte for byte, for fuzzing; streamed, when
// too large to hold), a delay or a hold, a hang until the client gives up, truncated JSON, a
// stalled body or a reset connection. Its constructors give MISP's usual failures: Error,
// RateLimited (429 with X-Rate-Limit-Reset), LoginRedirect, BadGateway, Hang, Raw. Requests,
// WaitRequests and WaitAnswers let a test wait for what it caused instead of sleeping.
//
// NewServer has no dependency on package testing, so non-test code (a benchmark) can run it;
// New is the test helper around it. Server is also an http.Handler, so a test in a
// testing/synctest bubble, where real sockets do not work, can call it through an in-memory
// transport: create the Server outside the bubble, and keep to answers that do not wait (no
// Delay, Wait, Hang or Stall), since those wait on the server's own channels.
//
// Generated (generated.go) is the other fake: no dataset, answers synthesized per value, for
// the load benchmark.
//
// Warninglists are emulated as MISP 2.5 applies them (see Warninglist): restSearch's
// includeWarninglistHits annotates attributes flagged for IDS only, and
// POST /warninglists/checkValue answers {"<value>":[{id,name,matched}]} or []. Sightings
// (includeSightings) and decay scores (includeDecayScore) are sent as the events give them.
//
// Not emulated: events restSearch, users/view, and restSearch filters other than value,
// type, limit, page and the include* options above (others are ignored, as MISP ignores
// unknown keys).
package misptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server is a fake MISP listening on loopback. It is safe for concurrent use.
type Server struct {
	*httptest.Server

	key   string
	attrs []*attribute // every attribute, in id order; immutable after NewServer

	done      chan struct{} // closed by Close: ends every wait
	closeOnce sync.Once

	mu          sync.Mutex
	lists       []warninglist
	warnAll     bool
	standing    map[string]Answer   // by path; "" is every path
	scripts     map[string][]Answer // by path; "" is every path
	conditional []conditional       // in the order set
	requests    []*Request
	arrived     map[string]int  // requests arrived, by path and in all ("")
	answered    map[string]int  // requests answered, by path and in all ("")
	waiters     []chan struct{} // of WaitRequests and WaitAnswers, closed when a request arrives or is answered
	inFlight    int
	maxInFlight int
	sightings   []SightingAdd
	sightingID  int
}

// Request is a request the server received, and what became of it.
type Request struct {
	Method, Path string
	Header       http.Header
	Body         []byte

	// Answered is set once the server is done with the request: it sent its answer, or
	// stopped because the client went away or the server closed.
	Answered bool
	Status   int   // the status sent; 0 when none was
	Sent     int64 // body bytes the connection accepted
}

// SightingAdd is a successful POST /sightings/add.
type SightingAdd struct {
	Values       []string
	Type, Source string
}

type conditional struct {
	match func(*Request) bool
	a     Answer
}

// Answer is what the server sends to a request instead of its own answer. The zero Answer is
// the server's own answer, sent at once.
type Answer struct {
	// Status, Header and Body are sent instead of the server's own answer when Status is not
	// 0. Body is sent byte for byte; its Content-Type is Header's, or else application/json
	// (text/html when Body starts with '<'). With Status 0, the server's own answer is sent,
	// with Header's fields added, and Cut, Stall and Reset spoil it.
	Status int
	Header http.Header
	Body   string
	// Message, when set and Body is empty, makes the body MISP's JSON error
	// {"name","message","url"} for the request's path.
	Message string
	// Stream, when set with Status, writes more of the body after Body, for answers too large
	// to hold in memory. It must return at the first write that fails: the client went away.
	Stream func(w io.Writer) error

	// Delay, then Wait (until it is closed), hold the answer back. A client that gives up
	// (or the server closing) ends the wait, and nothing is sent.
	Delay time.Duration
	Wait  <-chan struct{}

	// Cut > 0 sends only the first Cut bytes of the body, Cut < 0 leaves out its last -Cut
	// bytes, as a complete HTTP answer: truncated JSON.
	Cut int
	// Stall keeps the connection open after the head and the (cut) body, sending nothing
	// more until the client gives up. Reset resets the connection (TCP RST) there instead,
	// which a client sees as "connection reset by peer"; without a real connection (an
	// in-memory transport) the handler aborts with http.ErrAbortHandler.
	Stall, Reset bool
}

func (a *Answer) isZero() bool {
	return a.Status == 0 && a.Header == nil && a.Body == "" && a.Message == "" && a.Stream == nil && a.Delay == 0 &&
		a.Wait == nil && a.Cut == 0 && !a.Stall && !a.Reset
}

// Raw is status with body, sent byte for byte as contentType ("" for the default, see Answer).
func Raw(status int, contentType, body string) Answer {
	a := Answer{Status: status, Body: body}
	if contentType != "" {
		a.Header = http.Header{"Content-Type": {contentType}}
	}
	return a
}

// Error is status with MISP's JSON error body carrying message.
func Error(status int, message string) Answer { return Answer{Status: status, Message: message} }

// RateLimited is MISP's 429: the error "Rate limit exceeded." with X-Rate-Limit-Limit,
// X-Rate-Limit-Remaining 0 and X-Rate-Limit-Reset, the seconds until the limit resets.
func RateLimited(reset int) Answer {
	return Answer{
		Status: http.StatusTooManyRequests, Message: "Rate limit exceeded.",
		Header: http.Header{
			"X-Rate-Limit-Limit": {"10"}, "X-Rate-Limit-Remaining": {"0"}, "X-Rate-Limit-Reset": {strconv.Itoa(reset)},
		},
	}
}

// LoginRedirect is what MISP answers a request it does not take for an API call with a valid
// key: a 302 to /users/login, with the login page.
func LoginRedirect() Answer {
	return Answer{
		Status: http.StatusFound, Body: loginPage,
		Header: http.Header{"Location": {"/users/login"}, "Content-Type": {"text/html; charset=UTF-8"}},
	}
}

// BadGateway is the 502 page of an nginx in front of a MISP that is down.
func BadGateway() Answer {
	return Raw(http.StatusBadGateway, "text/html", "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n"+
		"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>")
}

// Hang sends nothing at all, until the client gives up.
func Hang() Answer { return Answer{Wait: make(chan struct{})} }

// NewServer starts a fake MISP on a loopback port that accepts only the API key key and knows
// the given events. Each event is raw JSON in MISP feed / event format, {"Event": {uuid,
// info, date, timestamp, threat_level_id, Orgc{name,uuid}, Tag[{name}], Attribute[...],
// Object[{Attribute[...]}]}}, like the CIRCL OSINT feed files; the "Event" wrapper may be
// left out. A field of the wrong kind is refused (see mispjson.Event.Check). Events and
// attributes get string ids ("1", "2", ...) in the order given. Close it when done.
//
// The key is compared as is (MISP itself only accepts 40 alphanumeric characters; the fake
// accepts any non-empty key so tests can use readable ones).
func NewServer(key string, events ...[]byte) (*Server, error) { return start(false, key, events) }

// NewTLSServer is NewServer serving HTTPS with a self-signed certificate (see
// httptest.Server.Certificate).
func NewTLSServer(key string, events ...[]byte) (*Server, error) { return start(true, key, events) }

func start(tls bool, key string, events [][]byte) (*Server, error) {
	s := &Server{
		key:      key,
		done:     make(chan struct{}),
		standing: map[string]Answer{},
		scripts:  map[string][]Answer{},
		arrived:  map[string]int{},
		answered: map[string]int{},
	}
	b := &builder{tagIDs: map[string]string{}, orgIDs: map[string]string{}}
	for i, raw := range events {
		if err := b.addEvent(raw); err != nil {
			return nil, fmt.Errorf("misptest: event #%d: %w", i, err)
		}
	}
	s.attrs = b.attrs
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		if ln, err = net.Listen("tcp6", "[::1]:0"); err != nil {
			return nil, fmt.Errorf("misptest: listen on loopback: %w", err)
		}
	}
	s.Server = &httptest.Server{Listener: ln, Config: &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		// The fake breaks connections on purpose; the server's complaints about it are noise.
		ErrorLog: log.New(io.Discard, "", 0),
	}}
	if tls {
		s.StartTLS()
	} else {
		s.Start()
	}
	return s, nil
}

// Close ends every answer still waiting (Delay, Wait, Hang, Stall), then shuts the server
// down and waits for its handlers.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.done) })
	s.Server.Close()
}

// Always makes every request to path (e.g. "/attributes/restSearch"; "" is every path) get a
// from now on, unless a Script for it comes first. Always(path, Answer{}) clears it.
func (s *Server) Always(path string, a Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.isZero() {
		delete(s.standing, path)
		return
	}
	s.standing[path] = a
}

// Script queues answers for the next requests to path ("" is every path), one per request
// in order, after any still queued; an Answer{} in the list is the server's own answer. Once
// they are used up, Always's answer or the server's own applies again. A path's own script
// comes before the script for every path.
func (s *Server) Script(path string, answers ...Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[path] = append(s.scripts[path], answers...)
}

// When makes the requests match reports true for get a: the answer for requests that depend on
// what they ask (see SearchValue), checked after Script's answers and before Always's, in
// the order set. match runs under the server's lock: it must not call the Server.
func (s *Server) When(match func(r *Request) bool, a Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conditional = append(s.conditional, conditional{match, a})
}

// SearchValue is the value filter of a restSearch request when it is a JSON string ("" for
// anything else), for When's match functions.
func SearchValue(r *Request) string {
	var p struct {
		Value json.RawMessage `json:"value"`
	}
	if r.Path != "/attributes/restSearch" || json.Unmarshal(r.Body, &p) != nil || len(p.Value) == 0 || p.Value[0] != '"' {
		return ""
	}
	return scalar(p.Value)
}

// Fail is Always(path, ...) with status and body: Content-Type application/json, or
// text/html when body starts with '<'. A 429 also carries MISP's X-Rate-Limit-* headers
// (reset 60 seconds) and a 3xx Location: /users/login. Fail(path, 0, "") clears it.
func (s *Server) Fail(path string, status int, body string) {
	if status == 0 {
		s.Always(path, Answer{})
		return
	}
	a := Answer{Status: status, Body: body}
	switch {
	case status == http.StatusTooManyRequests:
		a.Header = RateLimited(60).Header
	case status >= 300 && status < 400:
		a.Header = http.Header{"Location": {"/users/login"}}
	}
	s.Always(path, a)
}

// Delay is Always(path, Answer{Delay: d}): the server's own answer, after d (or nothing, when
// the client gives up first). Delay(path, 0) clears it.
func (s *Server) Delay(path string, d time.Duration) { s.Always(path, Answer{Delay: d}) }

// Requests returns every request received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = *r
		out[i].Header = r.Header.Clone()
		out[i].Body = bytes.Clone(r.Body)
	}
	return out
}

// ForgetRequests drops the requests recorded so far, for long tests whose heap measurements
// the records would skew. WaitRequests and WaitAnswers still count them.
func (s *Server) ForgetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// WaitRequests blocks until n requests to path ("" for any path) have arrived since the
// server started, or ctx ends.
func (s *Server) WaitRequests(ctx context.Context, path string, n int) error {
	return s.waitFor(ctx, func() bool { return s.arrived[path] >= n })
}

// WaitAnswers blocks until the server is done with n requests to path ("" for any path), or
// ctx ends. See Request.Answered.
func (s *Server) WaitAnswers(ctx context.Context, path string, n int) error {
	return s.waitFor(ctx, func() bool { return s.answered[path] >= n })
}

// MaxInFlight returns the most requests the server was answering at the same time.
func (s *Server) MaxInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInFlight
}

// waitFor waits for cond (called with s.mu held). The channel it waits on is its own: the
// handler only closes channels, never makes them, so it may run in a synctest bubble while a
// test outside waits.
func (s *Server) waitFor(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		if cond() {
			s.mu.Unlock()
			return nil
		}
		ch := make(chan struct{})
		s.waiters = append(s.waiters, ch)
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("misptest: %w", ctx.Err())
		}
	}
}

// notify wakes the waiters; s.mu must be held.
func (s *Server) notify() {
	for _, ch := range s.waiters {
		close(ch)
	}
	s.waiters = nil
}

// Sightings returns the successful /sightings/add calls, in order.
func (s *Server) Sightings() []SightingAdd {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SightingAdd, len(s.sightings))
	for i, a := range s.sightings {
		out[i] = SightingAdd{Values: append([]string(nil), a.Values...), Type: a.Type, Source: a.Source}
	}
	return out
}

// nextAnswer returns the answer for r; s.mu must be held.
func (s *Server) nextAnswer(r *Request) Answer {
	path := r.Path
	for _, p := range []string{path, ""} {
		if q := s.scripts[p]; len(q) > 0 {
			s.scripts[p] = q[1:]
			return q[0]
		}
	}
	for _, c := range s.conditional {
		if c.match(r) {
			return c.a
		}
	}
	for _, p := range []string{path, ""} {
		if a, ok := s.standing[p]; ok {
			return a
		}
	}
	return Answer{}
}

const (
	msgAuth      = "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header."
	msgRESTOnly  = "When user is authenticated by authkey, just REST request can be processed."
	msgBadJSON   = "Invalid JSON input. Make sure that the JSON input is a correctly formatted JSON string. This request has been blocked to avoid an unfiltered request."
	msgGetSearch = "Restsearch queries using GET and no parameters are not allowed. If you have passed parameters via a JSON body, make sure you use POST requests."
	msgNoBody    = "Either specify the search terms in the url, or POST a json with the filter parameters."
	msgNoMatch   = "Could not add the Sighting. Reason: No valid attributes found that match the criteria."
	msgNoValues  = "Could not add the Sighting. Reason: No valid attributes found."
	msgBadType   = "Could not add the Sighting. Reason: Invalid type, please change it before you POST 1000000 sightings."
	loginPage    = "<!DOCTYPE html>\n<html><head><title>Users - MISP</title></head><body><form action=\"/users/login\" method=\"post\"></form></body></html>\n"
	maxBody      = 10 << 20
)

// ServeHTTP answers one request: with the Answer Script or Always set for it, else as MISP
// would.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	rec := &Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	s.arrived[""]++
	s.arrived[r.URL.Path]++
	a := s.nextAnswer(rec)
	s.inFlight++
	s.maxInFlight = max(s.maxInFlight, s.inFlight)
	s.notify()
	s.mu.Unlock()

	cw := &countingWriter{ResponseWriter: w}
	defer func() {
		s.mu.Lock()
		s.inFlight--
		rec.Answered, rec.Status, rec.Sent = true, cw.status, cw.sent
		s.answered[""]++
		s.answered[r.URL.Path]++
		s.notify()
		s.mu.Unlock()
	}()
	if a.isZero() {
		s.answer(cw, r, body)
		return
	}
	s.misbehave(cw, r, body, &a)
}

// misbehave sends a instead of the server's own answer.
func (s *Server) misbehave(w *countingWriter, r *http.Request, body []byte, a *Answer) {
	if !s.hold(r.Context(), a) {
		return
	}
	header := http.Header{}
	var out []byte
	if a.Status == 0 {
		rec := httptest.NewRecorder()
		s.answer(rec, r, body)
		header, a.Status, out = rec.Header(), rec.Code, rec.Body.Bytes()
	} else {
		out = []byte(a.Body)
		if a.Body == "" && a.Message != "" {
			out = errorBody(r, a.Message)
		}
		ct := "application/json"
		if bytes.HasPrefix(bytes.TrimSpace(out), []byte("<")) {
			ct = "text/html; charset=UTF-8"
		}
		header.Set("Content-Type", ct)
	}
	for k, v := range a.Header {
		header[k] = v
	}
	switch {
	case a.Cut > 0:
		out = out[:min(a.Cut, len(out))]
	case a.Cut < 0:
		out = out[:max(len(out)+a.Cut, 0)]
	}
	for k, v := range header {
		w.Header()[k] = v
	}
	w.WriteHeader(a.Status)
	w.writeAll(out)
	if a.Stream != nil {
		_ = a.Stream(w)
	}
	switch {
	case a.Reset:
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		conn, _, err := rc.Hijack()
		if err != nil {
			panic(http.ErrAbortHandler) // no connection of its own: abort the exchange
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST instead of FIN
		}
		_ = conn.Close()
	case a.Stall:
		_ = http.NewResponseController(w).Flush()
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
	}
}

// hold waits out a's Delay and Wait; false means the client gave up or the server closed.
func (s *Server) hold(ctx context.Context, a *Answer) bool {
	if a.Delay > 0 {
		t := time.NewTimer(a.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return false
		case <-s.done:
			return false
		}
	}
	if a.Wait != nil {
		select {
		case <-a.Wait:
		case <-ctx.Done():
			return false
		case <-s.done:
			return false
		}
	}
	return true
}

// countingWriter records the status and the body bytes the connection accepted.
type countingWriter struct {
	http.ResponseWriter
	status int
	sent   int64
}

func (w *countingWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b) //nolint:gosec // a test fake: it writes the answers a test chose, MISP's own format
	w.sent += int64(n)
	return n, err
}

// writeAll writes b in pieces, so a client that stops reading stops the writes (and the count)
// about where it stopped, instead of after one huge write.
func (w *countingWriter) writeAll(b []byte) {
	const piece = 32 << 10
	for len(b) > 0 {
		n := min(piece, len(b))
		if _, err := w.Write(b[:n]); err != nil {
			return
		}
		b = b[n:]
	}
}

// Unwrap lets http.ResponseController reach the connection (Flush, Hijack).
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// answer is the server's own answer: MISP's.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, body []byte) {
	route := strings.TrimSuffix(r.URL.Path, ".json")
	api := route == "/attributes/restSearch" || route == "/events/restSearch"
	// MISP answers JSON only to "REST" requests: API routes, a JSON Accept header or a .json
	// suffix. Others are treated as browser requests.
	rest := api || strings.Contains(r.Header.Get("Accept"), "application/json") || strings.HasSuffix(r.URL.Path, ".json")
	switch {
	case !s.authorized(r) && rest:
		writeError(w, r, http.StatusForbidden, msgAuth)
		return
	case !s.authorized(r):
		w.Header().Set("Location", "/users/login")
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(http.StatusFound)
		_, _ = io.WriteString(w, loginPage)
		return
	case !rest:
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, "<!DOCTYPE html>\n<html><head><title>MISP</title></head><body><h2>"+msgRESTOnly+"</h2></body></html>\n")
		return
	}

	switch route {
	case "/servers/getVersion":
		writeJSON(w, http.StatusOK, map[string]any{ // key order is not significant to clients
			"version":                    "2.5.1",
			"pymisp_recommended_version": "2.5.1",
			"perm_sync":                  false,
			"perm_sighting":              true,
			"perm_galaxy_editor":         false,
			"request_encoding":           []string{"gzip", "br"},
			"filter_sightings":           true,
		})
	case "/attributes/restSearch":
		s.search(w, r, body)
	case "/sightings/add":
		s.addSighting(w, r, body)
	case "/warninglists/checkValue":
		s.checkValue(w, r, body)
	default:
		writeError(w, r, http.StatusNotFound, "Not Found")
	}
}

// authorized mirrors AppController::__loginByAuthKey: X-MISP-AUTH overrides Authorization,
// a "Basic ..." value counts as no key, and the value may list several comma-separated keys.
func (s *Server) authorized(r *http.Request) bool {
	v := r.Header.Get("X-MISP-AUTH")
	if v == "" {
		v = r.Header.Get("Authorization")
	}
	if s.key == "" || strings.HasPrefix(v, "Basic") {
		return false
	}
	for _, part := range strings.Split(v, ",") {
		if strings.TrimSpace(part) == s.key {
			return true
		}
	}
	return false
}

// isJSON reports whether the request declares a JSON body, without which MISP does not parse
// the body at all.
func isJSON(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// params parses a JSON request body the way MISP's _harvestParameters does: a body may be
// nested under "request" (or, for sightings, "Sighting").
func params(body []byte, wrappers ...string) (map[string]json.RawMessage, bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		if json.Valid(body) {
			return map[string]json.RawMessage{}, true // valid JSON but not an object: no filters
		}
		return nil, false
	}
	for _, w := range wrappers {
		if inner, ok := m[w]; ok {
			var n map[string]json.RawMessage
			if json.Unmarshal(inner, &n) == nil {
				return n, true
			}
		}
	}
	return m, true
}

func (s *Server) search(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Method == http.MethodGet {
		writeError(w, r, http.StatusBadRequest, msgGetSearch)
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		writeError(w, r, http.StatusBadRequest, msgNoBody)
		return
	}
	p := map[string]json.RawMessage{}
	if isJSON(r) {
		var ok bool
		if p, ok = params(body, "request"); !ok {
			writeError(w, r, http.StatusMethodNotAllowed, msgBadJSON)
			return
		}
	} // else: like MISP (issue #8841), the JSON is not parsed and every filter is dropped
	if f := scalar(p["returnFormat"]); f != "" && f != "json" {
		writeError(w, r, http.StatusNotFound, "Invalid output format.")
		return
	}
	values := parseFilter(p["value"], true)
	types := parseFilter(p["type"], false)
	withContext := truthy(p["includeContext"])
	opts := wireOptions{
		eventTags: truthy(p["includeEventTags"]) || truthy(p["includeDecayScore"]), // decay forces event tags
		sightings: truthy(p["includeSightings"]),
		warnings:  truthy(p["includeWarninglistHits"]),
		decay:     truthy(p["includeDecayScore"]),
	}

	var matched []*attribute
	for _, a := range s.attrs {
		if !a.deleted && values.match(a.value1, a.value2) && types.match(a.typ, "") {
			matched = append(matched, a)
		}
	}
	if limit, _ := strconv.Atoi(scalar(p["limit"])); limit > 0 {
		page, _ := strconv.Atoi(scalar(p["page"]))
		if page < 1 {
			page = 1
		}
		start := min((page-1)*limit, len(matched))
		matched = matched[start:min(start+limit, len(matched))]
	}

	out := make([]wireAttribute, 0, len(matched))
	for _, a := range matched {
		wa := a.wire(withContext, opts.eventTags)
		s.annotate(&wa, a, opts)
		out = append(out, wa)
	}
	w.Header().Set("X-Result-Count", strconv.Itoa(len(out)))
	w.Header().Set("X-Export-Module-Used", "json")
	w.Header().Set("X-Response-Format", "json")
	writeJSON(w, http.StatusOK, map[string]any{"response": map[string]any{"Attribute": out}})
}

func (s *Server) addSighting(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Method != http.MethodPost {
		writeError(w, r, http.StatusMethodNotAllowed, "This action is only accessible via POST request.")
		return
	}
	p := map[string]json.RawMessage{}
	if isJSON(r) && len(bytes.TrimSpace(body)) > 0 {
		var ok bool
		if p, ok = params(body, "request", "Sighting"); !ok {
			writeError(w, r, http.StatusMethodNotAllowed, msgBadJSON)
			return
		}
	}
	var values []string
	if raw, ok := p["values"]; ok {
		if err := json.Unmarshal(raw, &values); err != nil {
			if v := scalar(raw); v != "" {
				values = []string{v}
			}
		}
	} else if v := scalar(p["value"]); v != "" {
		values = []string{v}
	}
	typ := "0"
	if raw, ok := p["type"]; ok && string(raw) != "null" {
		typ = scalar(raw)
	}
	source := strings.TrimSpace(scalar(p["source"]))
	when := time.Now().Unix()
	if ts, err := strconv.ParseInt(scalar(p["timestamp"]), 10, 64); err == nil && ts > 0 {
		when = ts
	}

	if len(values) == 0 {
		writeJSON(w, http.StatusOK, map[string]string{"message": msgNoValues})
		return
	}
	if typ != "0" && typ != "1" && typ != "2" {
		writeJSON(w, http.StatusOK, map[string]string{"message": msgBadType})
		return
	}
	var hits []*attribute
	for _, a := range s.attrs {
		if a.deleted {
			continue
		}
		for _, v := range values {
			if strings.EqualFold(v, a.value1) || (a.value2 != "" && strings.EqualFold(v, a.value2)) {
				hits = append(hits, a)
				break
			}
		}
	}
	if len(hits) == 0 {
		writeJSON(w, http.StatusOK, map[string]string{"message": msgNoMatch})
		return
	}
	s.mu.Lock()
	s.sightingID += len(hits)
	id := s.sightingID
	s.sightings = append(s.sightings, SightingAdd{Values: values, Type: typ, Source: source})
	s.mu.Unlock()

	// MISP answers with the last sighting it created.
	last := hits[len(hits)-1]
	writeJSON(w, http.StatusOK, map[string]any{"Sighting": wireSighting{
		ID:           strconv.Itoa(id),
		AttributeID:  last.id,
		EventID:      last.event.ID,
		OrgID:        "1",
		DateSighting: strconv.FormatInt(when, 10),
		UUID:         newUUID(),
		Source:       source,
		Type:         typ,
	}})
}

type wireSighting struct {
	ID           string `json:"id"`
	AttributeID  string `json:"attribute_id"`
	EventID      string `json:"event_id"`
	OrgID        string `json:"org_id"`
	DateSighting string `json:"date_sighting"`
	UUID         string `json:"uuid"`
	Source       string `json:"source"`
	Type         string `json:"type"`
}

// writeError writes MISP's error body for REST requests.
func writeError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(errorBody(r, msg)) //nolint:gosec // MISP repeats the path in its JSON errors; a test fake, served as application/json
}

// errorBody is MISP's JSON error for a REST request.
func errorBody(r *http.Request, msg string) []byte { return []byte(ErrorBody(msg, r.URL.Path)) }

// ErrorBody is MISP's JSON error body, {"name","message","url"}, for message and the path of
// the request, for tests that build MISP answers of their own.
func ErrorBody(message, path string) string {
	b, _ := json.Marshal(map[string]string{"name": message, "message": message, "url": path}) // cannot fail
	return string(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// filter is a parsed value or type filter of restSearch (AppModel::convert_filters).
type filter struct {
	set bool
	or  []string // any of these must match
	not []string // none of these may match
}

// parseFilter reads a string, a list or {"OR":[],"NOT":[]}. As in MISP, an "empty" filter
// ("", "0", [], null: PHP's empty()) is dropped, so the search returns everything; in a
// string, "&&" separates terms (split only when split is set), a leading "!" negates a term,
// and a leading or trailing "%" makes it a LIKE pattern.
func parseFilter(raw json.RawMessage, split bool) filter {
	var f filter
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return f
	}
	add := func(term string) {
		if rest, ok := strings.CutPrefix(term, "!"); ok {
			f.not = append(f.not, rest)
		} else {
			f.or = append(f.or, term)
		}
	}
	switch raw[0] {
	case '[':
		var list []json.RawMessage
		_ = json.Unmarshal(raw, &list)
		for _, e := range list {
			add(scalar(e))
		}
	case '{':
		var m map[string][]json.RawMessage
		_ = json.Unmarshal(raw, &m)
		for _, e := range m["OR"] {
			f.or = append(f.or, scalar(e))
		}
		for _, e := range m["NOT"] {
			f.not = append(f.not, scalar(e))
		}
	default:
		s := scalar(raw)
		if s == "" || s == "0" {
			return f
		}
		terms := []string{s}
		if split {
			terms = strings.Split(s, "&&")
		}
		for _, t := range terms {
			add(t)
		}
	}
	f.set = len(f.or) > 0 || len(f.not) > 0
	return f
}

// match reports whether an attribute with these two value halves passes the filter. For a
// non-composite attribute v2 is "", which is how MISP's value2 column looks.
func (f filter) match(v1, v2 string) bool {
	if !f.set {
		return true
	}
	for _, t := range f.not {
		if termMatch(t, v1) || termMatch(t, v2) {
			return false
		}
	}
	if len(f.or) == 0 {
		return true
	}
	for _, t := range f.or {
		if termMatch(t, v1) || termMatch(t, v2) {
			return true
		}
	}
	return false
}

// termMatch compares like MySQL with MISP's case-insensitive collation.
func termMatch(term, v string) bool {
	if strings.HasPrefix(term, "%") || strings.HasSuffix(term, "%") {
		return like(strings.ToLower(term), strings.ToLower(v))
	}
	return strings.EqualFold(term, v)
}

// like matches SQL LIKE with % wildcards (the _ wildcard is not emulated).
func like(pattern, s string) bool {
	parts := strings.Split(pattern, "%")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := len(parts) - 1
	for _, p := range parts[1:last] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[last])
}

// scalar returns a JSON string's value or a number's or boolean's literal text; "" otherwise.
func scalar(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	if raw[0] == '"' {
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	}
	switch s := string(raw); {
	case s == "true", s == "false":
		return s
	case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'):
		return s
	}
	return ""
}

// truthy reads MISP's boolean parameters: true, 1, "1", "true".
func truthy(raw json.RawMessage) bool {
	switch strings.ToLower(scalar(raw)) {
	case "true", "1":
		return true
	}
	return false
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
