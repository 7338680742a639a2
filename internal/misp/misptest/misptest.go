// Package misptest is a fake MISP server for tests. It speaks MISP 2.5's real wire format
// for the calls the relay makes (attribute restSearch, getVersion, sightings), including
// MISP's quirks: string ids, errors as {"name","message","url"}, a failed sighting answered
// with HTTP 200, filters ignored without Content-Type: application/json, and a redirect to
// the login page for non-API requests without a valid key.
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
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a fake MISP. It is safe for concurrent use.
type Server struct {
	*httptest.Server

	key   string
	attrs []*attribute // every attribute, in id order; immutable after New

	mu         sync.Mutex
	lists      []warninglist
	warnAll    bool
	fails      map[string]failure
	delays     map[string]time.Duration
	requests   []Request
	sightings  []SightingAdd
	sightingID int
}

// Request is a request the server received.
type Request struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// SightingAdd is a successful POST /sightings/add.
type SightingAdd struct {
	Values       []string
	Type, Source string
}

type failure struct {
	status int
	header http.Header
	body   string
}

// New starts a fake MISP that accepts only the API key key and knows the given events. Each
// event is raw JSON in MISP feed / event format, {"Event": {uuid, info, date, timestamp,
// threat_level_id, Orgc{name,uuid}, Tag[{name}], Attribute[...], Object[{Attribute[...]}]}},
// like the CIRCL OSINT feed files; the "Event" wrapper may be left out. Events and attributes
// get string ids ("1", "2", ...) in the order given. The server is closed by tb.Cleanup.
//
// The key is compared as is (MISP itself only accepts 40 alphanumeric characters; the fake
// accepts any non-empty key so tests can use readable ones).
func New(tb testing.TB, key string, events ...[]byte) *Server {
	tb.Helper()
	s := &Server{
		key:    key,
		fails:  map[string]failure{},
		delays: map[string]time.Duration{},
	}
	b := &builder{tagIDs: map[string]string{}, orgIDs: map[string]string{}}
	for i, raw := range events {
		if err := b.addEvent(raw); err != nil {
			tb.Fatalf("misptest: event #%d: %v", i, err)
			return nil
		}
	}
	s.attrs = b.attrs
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.Close)
	return s
}

// Fail makes path (e.g. "/attributes/restSearch") answer status and body from now on,
// whatever the request, with Content-Type application/json, or text/html when body starts
// with '<'. A 429 also carries MISP's X-Rate-Limit-Limit/-Remaining/-Reset headers (reset
// 60 seconds), and a 3xx carries Location: /users/login. Fail(path, 0, "") clears it.
func (s *Server) Fail(path string, status int, body string) {
	h := http.Header{}
	switch {
	case status == http.StatusTooManyRequests:
		h.Set("X-Rate-Limit-Limit", "10")
		h.Set("X-Rate-Limit-Remaining", "0")
		h.Set("X-Rate-Limit-Reset", "60")
	case status >= 300 && status < 400:
		h.Set("Location", "/users/login")
	}
	s.FailHeader(path, status, h, body)
}

// FailHeader is Fail with the given extra response headers instead of the default ones.
func (s *Server) FailHeader(path string, status int, header http.Header, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status == 0 {
		delete(s.fails, path)
		return
	}
	s.fails[path] = failure{status: status, header: header.Clone(), body: body}
}

// Delay makes path answer only after d (or when the client gives up), to test timeouts.
// Delay(path, 0) clears it.
func (s *Server) Delay(path string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.delays, path)
		return
	}
	s.delays[path] = d
}

// Requests returns every request received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = Request{Method: r.Method, Path: r.Path, Header: r.Header.Clone(), Body: bytes.Clone(r.Body)}
	}
	return out
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

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	fail, failing := s.fails[r.URL.Path]
	delay := s.delays[r.URL.Path]
	s.mu.Unlock()

	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if failing {
		for k, v := range fail.header {
			w.Header()[k] = v
		}
		ct := "application/json"
		if strings.HasPrefix(strings.TrimSpace(fail.body), "<") {
			ct = "text/html; charset=UTF-8"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(fail.status)
		_, _ = io.WriteString(w, fail.body)
		return
	}

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
	writeJSON(w, status, map[string]string{"name": msg, "message": msg, "url": r.URL.Path})
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
