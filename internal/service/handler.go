package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"
	nethttpmw "github.com/oapi-codegen/nethttp-middleware"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/gen"
	"github.com/misp-relay/misp-relay/internal/reqlog"
)

// Texts of the two answers that are not business errors (Flask's wording).
const (
	msgNotFound         = "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again."
	msgMethodNotAllowed = "The method is not allowed for the requested URL."
)

// requestState carries what the middleware learns about a request to the handlers: the
// verified claims (set by admit, before the body is read) and the raw body (kept so a
// rejected body can be explained in the contract's words).
type requestState struct {
	claims      auth.Claims
	tenant      *tenant // resolved from claims by admit
	body        []byte
	observables int // how many the body held, for the log line
}

type stateKey struct{}

func stateFrom(ctx context.Context) *requestState {
	if st, ok := ctx.Value(stateKey{}).(*requestState); ok {
		return st
	}
	return &requestState{}
}

func claimsFrom(ctx context.Context) auth.Claims { return stateFrom(ctx).claims }

// NewHandler wires the HTTP API: chi, the middleware (authentication from the headers, then
// the in-flight bounds, and only then the body: see admit), the kin-openapi validator and the
// generated strict handler.
func NewHandler(s *Service) (http.Handler, error) {
	spec, err := gen.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("load embedded spec: %w", err)
	}
	spec.Servers = nil // the routers would otherwise match the Host header against servers
	api := routesOf(spec)
	bodyRoutes := api.withBody
	methodNotAllowed := methodNotAllowedFor(api.allow)
	router, err := gorillamux.NewRouter(spec)
	if err != nil {
		return nil, fmt.Errorf("route the embedded spec: %w", err)
	}
	// The validator's copy: the same spec without what admit checks before it: security, and
	// the observable list's length (MaxObservables, counted before the body is parsed: the one
	// place it is enforced; the spec's maxItems is the default's).
	vspec, err := gen.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("load embedded spec: %w", err)
	}
	vspec.Servers = nil
	withoutSecurity(vspec)
	if list := vspec.Components.Schemas["ObservableList"]; list != nil && list.Value != nil {
		list.Value.MaxItems = nil
	}

	r := chi.NewRouter()
	r.Use(s.logRequests, s.recoverer, trimTrailingSlash, oneHealthCheck, s.admit(router, observableListRoutes(spec)))
	r.Use(nethttpmw.OapiRequestValidatorWithOptions(vspec, &nethttpmw.Options{
		Options: openapi3filter.Options{
			// Error details would echo schemas and rejected values (which may be secrets).
			SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.DisableSchemaErrorDetails()},
		},
		ErrorHandlerWithOpts: s.rejected(methodNotAllowed),
	}))
	r.Use(singleJSONValue(bodyRoutes))
	r.NotFound(notFound)
	r.MethodNotAllowed(methodNotAllowed)
	strict := gen.NewStrictHandlerWithOptions(s, nil, gen.StrictHTTPServerOptions{
		RequestErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, _ error) {
			// The validator accepted the body, so this cannot happen; answer as a bad body.
			writeEnvelope(w, r, payloadError(schemaProblem()))
		},
		ResponseErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			logUnexpected(s.log, r, err)
			writeEnvelope(w, r, err)
		},
	})
	return gen.HandlerWithOptions(strict, gen.ChiServerOptions{
		BaseRouter: r,
		// A parameter the validator let through but the generated binding refuses would
		// otherwise get oapi-codegen's plain-text 400, which the spec does not allow.
		ErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			writeEnvelope(w, r, &invalidArgument{"Invalid request: " + firstLine(err.Error())})
		},
	}), nil
}

// rejected answers a request the validator refused, in the contract's shapes.
func (s *Service) rejected(methodNotAllowed http.HandlerFunc) nethttpmw.ErrorHandlerWithOpts {
	return func(ctx context.Context, err error, w http.ResponseWriter, r *http.Request, opts nethttpmw.ErrorHandlerOpts) {
		if errors.Is(err, routers.ErrMethodNotAllowed) {
			methodNotAllowed(w, r)
			return
		}
		if opts.MatchedRoute == nil {
			notFound(w, r)
			return
		}
		var re *openapi3filter.RequestError
		switch {
		case errors.As(err, &re) && re.RequestBody != nil:
			writeEnvelope(w, r, bodyError(opts.MatchedRoute.Route.Path, stateFrom(ctx).body, re))
		case errors.As(err, &re):
			writeEnvelope(w, r, &invalidArgument{"Invalid request: " + firstLine(re.Error())})
		default:
			s.log.ErrorContext(ctx, "request validation failed", "err", err)
			writeEnvelope(w, r, err)
		}
	}
}

// bodyError explains a body the spec rejected in the marshmallow dialect of the contract.
func bodyError(path string, body []byte, re *openapi3filter.RequestError) error {
	var dict string
	switch {
	case path == "/respond/trigger":
		dict = triggerProblems(body)
	case strings.HasPrefix(path, "/tiles/"):
		dict = tileProblems(path, body)
	default:
		dict = observableListProblems(body)
	}
	if dict == "" {
		// The spec refused something the contract's rules allow (e.g. a size limit): say what.
		reason := "request body"
		if re.Err != nil {
			reason = firstLine(re.Err.Error())
		}
		dict = "{'_schema': [" + pyRepr(reason) + "]}"
	}
	return payloadError(dict)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusNotFound, gen.HTTPError{Code: gen.HTTPNotFound, Message: msgNotFound})
}

// methodNotAllowedFor answers a known path's wrong method, with the Allow header RFC 9110
// asks for (and Flask sent): allow maps each path to its methods (routes.allow).
func methodNotAllowedFor(allow map[string]string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if methods := allow[r.URL.Path]; methods != "" {
			w.Header().Set("Allow", methods)
		}
		writeJSON(w, http.StatusMethodNotAllowed, gen.HTTPError{Code: gen.HTTPMethodNotAllowed, Message: msgMethodNotAllowed})
	}
}

// trimTrailingSlash makes /health/ behave like /health, as the Python relays' routes did, and
// answers HEAD like GET (net/http drops the body), as Flask did for GET /watchdog.
func trimTrailingSlash(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			r = r.WithContext(r.Context()) // a copy: the server still knows the request was HEAD
			r.Method = http.MethodGet
		}
		if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") {
			r.URL.Path = strings.TrimRight(p, "/")
			if r.URL.Path == "" {
				r.URL.Path = "/"
			}
			r.URL.RawPath = ""
		}
		next.ServeHTTP(w, r)
	})
}

// singleJSONValue refuses a body with data after its JSON value (`[...] garbage`), which the
// validator's decoder reads past: the contract answers it as a body that is not JSON.
// bodyRoutes are the paths whose body is a JSON document (routes.withBody).
func singleJSONValue(bodyRoutes map[string]bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if st := stateFrom(r.Context()); bodyRoutes[r.URL.Path] && len(st.body) > 0 {
				if !json.Valid(st.body) { // one JSON value, nothing after it; no allocation
					writeEnvelope(w, r, payloadError(schemaProblem()))
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// logRequests starts the request's state and counters, and writes one line per request when
// it is done. It never logs headers or bodies: they hold JWTs and API keys.
func (s *Service) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestID(r.Header.Get("X-Request-Id"))
		w.Header().Set("X-Request-Id", id)
		st := &requestState{}
		ctx, counters := reqlog.New(context.WithValue(r.Context(), stateKey{}, st))
		ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		defer cancel()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r.WithContext(ctx))
		elapsed := time.Since(start)
		outcome := counters.Outcome()
		if ww.Status() != http.StatusOK {
			outcome = strconv.Itoa(ww.Status())
		}
		s.cfg.ObserveRequest(r.URL.Path, outcome, elapsed)
		s.log.LogAttrs(ctx, slog.LevelInfo, "request",
			slog.String("request_id", id),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", ww.Status()),
			slog.String("outcome", outcome),
			slog.Duration("duration", elapsed),
			slog.Int("observables", st.observables),
			slog.Int64("upstream_calls", counters.Upstream()),
			slog.Int64("cache_hits", counters.CacheHits()))
	})
}

// requestID keeps a caller's X-Request-Id when it is a sane token (so logs can be joined with
// a load balancer's), else makes one.
func requestID(in string) string {
	if len(in) > 0 && len(in) <= 64 && strings.Trim(in, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:") == "" {
		return in
	}
	return uuid.NewString()
}

// recoverer turns a panic into the error envelope (and a log line with the stack) instead of
// a dropped connection.
func (s *Service) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v) // net/http's way to abort a response; it handles it itself
				}
				s.log.ErrorContext(r.Context(), "panic", "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				writeEnvelope(w, r, errors.New("panic"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// oneHealthCheck keeps the first of several Health-Check headers, as Flask read it: the
// generated binding refuses a repeated header (the validator reads only the first).
func oneHealthCheck(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.Header.Values("Health-Check"); len(v) > 1 {
			r = r.Clone(r.Context())
			r.Header.Set("Health-Check", v[0])
		}
		next.ServeHTTP(w, r)
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
// A request to a secured route is authenticated first (from its headers alone: it needs no
// slot), then takes one of its tenant's share and one of the relay's slots (inFlight) for as
// long as it is served, body reading included, so a tenant's slow bodies or stalled MISP fill
// its own share only.
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
				st.tenant = s.tenantFor(claims)
				id := st.tenant.id
				if err := s.inFlight.enter(id); err != nil {
					writeEnvelope(w, r, err)
					return
				}
				defer s.inFlight.leave(id)
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
