package service

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
)

// DefaultMaxInFlight is Config.MaxInFlight's default (MAX_IN_FLIGHT).
const DefaultMaxInFlight = 256

// busyError answers a request over MaxInFlight.
type busyError struct{}

func (busyError) Error() string {
	return "The relay is busy: too many requests are in flight. Try again in a moment."
}

// limitInFlight answers at once, with the busy envelope, a request that would take the relay
// over MaxInFlight requests in flight: under a flood, memory and goroutines stay bounded and
// callers learn it immediately instead of queueing until a timeout.
func (s *Service) limitInFlight(next http.Handler) http.Handler {
	slots := make(chan struct{}, s.cfg.MaxInFlight)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
			next.ServeHTTP(w, r)
		default:
			writeEnvelope(w, r, busyError{})
		}
	})
}

// admit authenticates a request from its headers alone, and only then reads its body (up to
// MaxBodyBytes), so an unauthenticated client cannot make the relay hold its body: its request
// is answered without reading a byte of it, which also means no "100 Continue" is sent to an
// unauthenticated "Expect: 100-continue" (net/http sends it on the first read of the body, and
// closes the connection instead of reading a body the handler left unread). An observable
// list is counted before anything parses it, so a huge list is refused for its size alone.
//
// Requests for unknown paths or methods go on untouched: the validator answers 404 or 405.
//
// listRoutes are the paths whose body is an observable list (observableListRoutes).
func (s *Service) admit(router routers.Router, listRoutes map[string]bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			route, _, err := router.FindRoute(r)
			if err != nil {
				next.ServeHTTP(w, r)
				return
			}
			st := stateFrom(r.Context())
			if secured(route) {
				claims, err := s.cfg.Verifier.FromRequest(r)
				if err != nil {
					writeEnvelope(w, r, err)
					return
				}
				st.claims = claims
			}
			if route.Operation.RequestBody == nil {
				r.Body, r.ContentLength = http.NoBody, 0 // never read
				next.ServeHTTP(w, r)
				return
			}
			if problem := s.readBody(r, st); problem != "" {
				writeEnvelope(w, r, payloadError("{'_schema': ["+pyRepr(problem)+"]}"))
				return
			}
			if listRoutes[route.Path] {
				if n, ok := topLevelCount(st.body); ok && n > s.cfg.MaxObservables {
					st.observables = n
					writeEnvelope(w, r, tooManyObservables(s.cfg.MaxObservables, n))
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// secured tells whether route's operation needs a bearer token (its own security, else the
// spec's).
func secured(route *routers.Route) bool {
	sec := route.Operation.Security
	if sec == nil {
		sec = &route.Spec.Security
	}
	return len(*sec) > 0
}

// withoutSecurity returns spec with every security requirement removed: the validator's copy,
// since admit has authenticated already (kin-openapi would read the whole body again to
// offer it to an authentication hook).
func withoutSecurity(spec *openapi3.T) {
	spec.Security = nil
	for _, item := range spec.Paths.Map() {
		for _, op := range item.Operations() {
			op.Security = &openapi3.SecurityRequirements{}
		}
	}
}

// readBody reads the body once, up to MaxBodyBytes, keeps it in st for the validator and for
// error messages, and hands the validator a JSON body whatever Content-Type the client sent
// (the contract ignores it). It returns why the body cannot be taken, or "".
func (s *Service) readBody(r *http.Request, st *requestState) string {
	tooLarge := fmt.Sprintf("The request body is larger than %d bytes.", s.cfg.MaxBodyBytes)
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return tooLarge // said so up front: not a byte is read
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBodyBytes+1))
	_ = r.Body.Close()
	switch {
	case err != nil:
		return "The request body could not be read."
	case int64(len(body)) > s.cfg.MaxBodyBytes:
		return tooLarge // read no further
	}
	st.body = body
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Type", "application/json")
	return ""
}

// observableListRoutes are the paths of spec whose request body is an ObservableList.
func observableListRoutes(spec *openapi3.T) map[string]bool {
	out := map[string]bool{}
	list := spec.Components.Schemas["ObservableList"]
	if list == nil {
		return out
	}
	for path, item := range spec.Paths.Map() {
		for _, op := range item.Operations() {
			if op.RequestBody == nil || op.RequestBody.Value == nil {
				continue
			}
			if mt := op.RequestBody.Value.Content.Get("application/json"); mt != nil && mt.Schema != nil && mt.Schema.Value == list.Value {
				out[path] = true
			}
		}
	}
	return out
}

func tooManyObservables(limit, n int) error {
	return payloadError(fmt.Sprintf("{'_schema': ['At most %d observables are accepted in one request, got %d.']}", limit, n))
}

// topLevelCount counts the items of a JSON array without parsing them (no allocation), so a
// list too long to accept costs one pass over its bytes. ok is false when body is not a
// well-formed JSON array.
func topLevelCount(body []byte) (n int, ok bool) {
	i := 0
	for i < len(body) && isSpace(body[i]) {
		i++
	}
	if i == len(body) || body[i] != '[' || !json.Valid(body) {
		return 0, false
	}
	depth, inString, escaped, empty := 0, false, false, true
	for _, c := range body[i:] {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			if depth == 1 {
				continue
			}
		case c == ']' || c == '}':
			depth--
		case c == ',' && depth == 1:
			n++
		}
		if depth >= 1 && !isSpace(c) {
			empty = false
		}
	}
	if empty {
		return 0, true
	}
	return n + 1, true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
