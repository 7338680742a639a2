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
// The dashboard tiles' calls are emulated too (tiles.go): returnFormat "count" of attributes
// and events restSearch, events restSearch with metadata, sightings restSearch, and their
// timestamp, to_ids, from, to and type filters.
//
// Not emulated: events restSearch without metadata, users/view, and restSearch filters other
// than value, type, limit, page, the include* options above and the tiles' (others are
// ignored, as MISP ignores unknown keys).
package misptest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Server is a fake MISP listening on loopback. It is safe for concurrent use.
type Server struct {
	*httptest.Server

	key    string
	attrs  []*attribute // every attribute, in id order; immutable after NewServer
	events []*event     // every event, in id order; immutable after NewServer

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
	org         wireSightingOrg // the instance's own organisation, which makes the sightings
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
		org:      wireSightingOrg{ID: "1", Name: "ORGNAME", UUID: "55f6ea5e-2c60-40e5-964f-47a8950d210f"},
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
	s.attrs, s.events = b.attrs, b.events
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
		// As MISP 2.5.1 answers the key of a "User" role (no sync, so no instance UUID) on
		// a PHP with brotli; the perm_* flags and uuid follow the key's role.
		writeJSON(w, http.StatusOK, map[string]any{ // key order is not significant to clients
			"version":                    "2.5.1",
			"pymisp_recommended_version": "2.5.1",
			"perm_sync":                  false,
			"perm_sighting":              true,
			"perm_galaxy_editor":         false,
			"perm_analyst_data":          true,
			"uuid":                       "-",
			"request_encoding":           []string{"gzip", "br"},
			"filter_sightings":           true,
		})
	case "/attributes/restSearch":
		if p, ok := isTileCount(r, body); ok && r.Method != http.MethodGet {
			s.countAttributes(w, p)
			return
		}
		s.search(w, r, body)
	case "/events/restSearch":
		s.searchEvents(w, r, body)
	case "/sightings/restSearch":
		s.searchSightings(w, r, body)
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
