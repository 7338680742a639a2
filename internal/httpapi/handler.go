package httpapi

import (
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
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"
	nethttpmw "github.com/oapi-codegen/nethttp-middleware"

	"github.com/misp-relay/misp-relay/internal/gen"
	"github.com/misp-relay/misp-relay/internal/reqlog"
	"github.com/misp-relay/misp-relay/internal/service"
)

// Texts of the two answers that are not business errors (Flask's wording).
const (
	msgNotFound         = "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again."
	msgMethodNotAllowed = "The method is not allowed for the requested URL."
)

// requestState is what admit learns about a request, for the handler: the tenant (resolved
// from the verified token before the body is read) and the body, read once and decoded once
// (the raw bytes are kept to explain a rejected body in the contract's words). It lives in
// the request's context from admit down to the handler; nothing below the adapter sees it.
type requestState struct {
	tenant *service.Tenant
	body   []byte
	value  any // the body as decoded and validated against the spec; nil without a body
	// observables is how many observables the body held, for the log line.
	observables int
}

type stateKey struct{}

func stateFrom(ctx context.Context) *requestState {
	if st, ok := ctx.Value(stateKey{}).(*requestState); ok {
		return st
	}
	return &requestState{}
}

// NewHandler wires the HTTP API in front of core: chi, the middleware (authentication from
// the headers, then the in-flight bounds, and only then the body, read, decoded and validated
// once: see admit), the kin-openapi validator for routes and parameters, and the generated
// strict handler.
func NewHandler(core *service.Service, cfg Config) (http.Handler, error) {
	a, err := newAPI(core, cfg)
	if err != nil {
		return nil, err
	}
	return a.handler()
}

func (a *api) handler() (http.Handler, error) {
	spec, err := gen.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("load embedded spec: %w", err)
	}
	spec.Servers = nil // the routers would otherwise match the Host header against servers
	// The spec as admit and the validator use it, without what admit checks first: security
	// (admit authenticates), and the observable list's length (MaxObservables, counted before
	// the body is parsed: the one place it is enforced; the spec's maxItems is the default's).
	api := routesOf(spec) // before withoutSecurity: admit needs to know the secured routes
	withoutSecurity(spec)
	if list := spec.Components.Schemas["ObservableList"]; list != nil && list.Value != nil {
		list.Value.MaxItems = nil
	}
	methodNotAllowed := methodNotAllowedFor(api.allow)

	r := chi.NewRouter()
	r.Use(a.logRequests, a.recoverer, trimTrailingSlash, oneHealthCheck, a.admit(api.ops))
	r.Use(nethttpmw.OapiRequestValidatorWithOptions(spec, &nethttpmw.Options{
		Options: openapi3filter.Options{
			// admit has validated the body already, against the same spec.
			ExcludeRequestBody: true,
			// Error details would echo schemas and rejected values (which may be secrets).
			SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.DisableSchemaErrorDetails()},
		},
		ErrorHandlerWithOpts: a.rejected(methodNotAllowed),
	}))
	r.NotFound(notFound)
	r.MethodNotAllowed(methodNotAllowed)
	strict := gen.NewStrictHandlerWithOptions(a, nil, gen.StrictHTTPServerOptions{
		RequestErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, _ error) {
			// Only routes without a body get here (see typedBodies), so this cannot happen.
			writeEnvelope(w, r, payloadError(schemaProblem()))
		},
		ResponseErrorHandlerFunc: a.failed,
	})
	return gen.HandlerWithOptions(typedBodies{ServerInterface: strict, api: a}, gen.ChiServerOptions{
		BaseRouter: r,
		// A parameter the validator let through but the generated binding refuses would
		// otherwise get oapi-codegen's plain-text 400, which the spec does not allow.
		ErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			writeEnvelope(w, r, service.Invalidf("Invalid request: %s", firstLine(err.Error())))
		},
	}), nil
}

// failed answers a handler's unexpected error (logged when it has no mapping) as the envelope.
func (a *api) failed(w http.ResponseWriter, r *http.Request, err error) {
	logUnexpected(a.log, r, err)
	writeEnvelope(w, r, err)
}

// rejected answers a request the validator refused, in the contract's shapes.
func (a *api) rejected(methodNotAllowed http.HandlerFunc) nethttpmw.ErrorHandlerWithOpts {
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
		if errors.As(err, &re) {
			writeEnvelope(w, r, service.Invalidf("Invalid request: %s", firstLine(re.Error())))
			return
		}
		a.log.ErrorContext(ctx, "request validation failed", "err", err)
		writeEnvelope(w, r, err)
	}
}

// bodyError explains a body the spec rejected (why: the schema's error) in the marshmallow
// dialect of the contract.
func bodyError(path string, body []byte, why error) error {
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
		dict = "{'_schema': [" + service.PyRepr(firstLine(why.Error())) + "]}"
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

// logRequests starts the request's state and counters, and writes one line per request when
// it is done. It never logs headers or bodies: they hold JWTs and API keys.
func (a *api) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestID(r.Header.Get("X-Request-Id"))
		w.Header().Set("X-Request-Id", id)
		st := &requestState{}
		ctx, counters := reqlog.New(context.WithValue(r.Context(), stateKey{}, st))
		ctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
		defer cancel()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r.WithContext(ctx))
		elapsed := time.Since(start)
		outcome := counters.Outcome()
		if ww.Status() != http.StatusOK {
			outcome = strconv.Itoa(ww.Status())
		}
		a.cfg.ObserveRequest(r.URL.Path, outcome, elapsed)
		a.log.LogAttrs(ctx, slog.LevelInfo, "request",
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
func (a *api) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v) // net/http's way to abort a response; it handles it itself
				}
				a.log.ErrorContext(r.Context(), "panic", "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
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
// Then the body is decoded once and validated once against the spec (body.go); the handler
// takes the decoded value.
//
// Requests for unknown paths or methods go on untouched: the validator answers 404 or 405.
//
// A request to a secured route is authenticated first (from its headers alone: it needs no
// slot), its tenant resolved, then it takes one of its tenant's share and one of the relay's
// slots (inFlight) for as long as it is served, body reading included, so a tenant's slow
// bodies or stalled MISP fill its own share only.
//
// ops are the spec's operations by method and path (routes.ops).
func (a *api) admit(ops map[string]operation) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The escaped path, as the validator and chi route it: /observe%2Fobservables is
			// not /observe/observables (a 404, answered by the validator).
			op, ok := ops[r.Method+" "+r.URL.EscapedPath()]
			if !ok {
				next.ServeHTTP(w, r)
				return
			}
			st := stateFrom(r.Context())
			if op.secured {
				claims, err := a.cfg.Verifier.FromRequest(r)
				if err != nil {
					writeEnvelope(w, r, err)
					return
				}
				st.tenant = a.core.Tenant(claims)
				id := st.tenant.ID()
				if err := a.inFlight.enter(id); err != nil {
					writeEnvelope(w, r, err)
					return
				}
				defer a.inFlight.leave(id)
			}
			if op.body == nil {
				r.Body, r.ContentLength = http.NoBody, 0 // never read
				next.ServeHTTP(w, r)
				return
			}
			if problem := a.readBody(r, st); problem != "" {
				writeEnvelope(w, r, payloadError("{'_schema': ["+service.PyRepr(problem)+"]}"))
				return
			}
			if op.list {
				if n := topLevelCount(st.body); n > a.cfg.MaxObservables && json.Valid(st.body) {
					st.observables = n
					writeEnvelope(w, r, tooManyObservables(a.cfg.MaxObservables, n))
					return
				}
			}
			if err := a.parseBody(op, st); err != nil {
				writeEnvelope(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
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

// readBody reads the body once, up to MaxBodyBytes, and keeps it in st. The contract ignores
// the Content-Type a client sends: the body is read as JSON whatever it says. It returns why
// the body cannot be taken, or "".
func (a *api) readBody(r *http.Request, st *requestState) string {
	limit := a.cfg.MaxBodyBytes
	tooLarge := fmt.Sprintf("The request body is larger than %d bytes.", limit)
	if r.ContentLength > limit {
		return tooLarge // said so up front: not a byte is read
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	_ = r.Body.Close()
	switch {
	case err != nil:
		return "The request body could not be read."
	case int64(len(body)) > limit:
		return tooLarge // read no further
	}
	st.body = body
	r.Body, r.ContentLength = http.NoBody, 0 // read: what follows takes st.value
	return ""
}

func tooManyObservables(limit, n int) error {
	return payloadError(fmt.Sprintf("{'_schema': ['At most %d observables are accepted in one request, got %d.']}", limit, n))
}

// topLevelCount counts the items of what looks like a JSON array without parsing them (no
// allocation), so a list too long to accept costs one pass over its bytes: 0 when body does
// not start as an array. It does not check the JSON: a body it counts too many items in is
// checked with json.Valid before it is refused for its size, and any other is parsed next.
func topLevelCount(body []byte) (n int) {
	i := 0
	for i < len(body) && isSpace(body[i]) {
		i++
	}
	if i == len(body) || body[i] != '[' {
		return 0
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
		return 0
	}
	return n + 1
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
