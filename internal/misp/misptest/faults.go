package misptest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"
)

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

// SearchValue is the value filter of a restSearch request when it is a JSON string, or the
// first of its values when it is a list (a batch of a request's values); "" for anything
// else. For When's match functions.
func SearchValue(r *Request) string {
	if vs := SearchValues(r); len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// SearchValues is every value of a restSearch request's value filter, a string or a list of
// strings; nil for anything else.
func SearchValues(r *Request) []string {
	var p struct {
		Value json.RawMessage `json:"value"`
	}
	if r.Path != "/attributes/restSearch" || json.Unmarshal(r.Body, &p) != nil || len(p.Value) == 0 {
		return nil
	}
	switch p.Value[0] {
	case '"':
		return []string{scalar(p.Value)}
	case '[':
		var list []string
		if json.Unmarshal(p.Value, &list) == nil {
			return list
		}
	}
	return nil
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
