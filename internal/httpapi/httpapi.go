// Package httpapi is the relay's HTTP adapter: the XDR relay contract over the enrichment
// core (package service). It owns everything HTTP: routing and the middleware (handler.go:
// the request log line, authentication first, the in-flight bounds, the body read once,
// decoded once and validated once against api/openapi.yaml), the contract's messages for
// rejected bodies (validate.go), the strict handlers generated from the spec (server.go) and
// the one place where a failure becomes the XDR error envelope (errors.go). It knows nothing
// of MISP: the core answers with data and failures as values.
package httpapi

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/gen"
	"github.com/misp-relay/misp-relay/internal/service"
)

// Defaults of Config.
const (
	DefaultMaxBodyBytes   = 1 << 20
	DefaultMaxObservables = 1000
	DefaultRequestTimeout = 50 * time.Second
)

// Config holds what the adapter needs besides the core.
type Config struct {
	Secret string // SECRET_KEY; "" makes every authenticated call fail with "<SECRET_KEY> is missing"
	// Verifier checks bearer tokens; nil means HS256 with Secret only. One per process: it
	// holds the JWKS cache of configuration tokens.
	Verifier *auth.Verifier

	// RequestTimeout bounds the MISP work of one request, so its answer (with what was found
	// in time) is written before the server's WriteTimeout drops the connection.
	RequestTimeout time.Duration
	MaxBodyBytes   int64 // largest request body read
	// MaxObservables bounds the observables of one request, so one request cannot fan out
	// into thousands of MISP lookups.
	MaxObservables int
	// MaxInFlight bounds the requests served at once (MAX_IN_FLIGHT); more are answered at
	// once with a "service unavailable" envelope. Default DefaultMaxInFlight.
	MaxInFlight int
	// MaxInFlightPerTenant bounds one tenant's requests served at once
	// (MAX_IN_FLIGHT_PER_TENANT), within MaxInFlight, so a tenant whose MISP stalls cannot
	// take every slot. A tenant is what its token asks: its sources and its keys for them.
	// Default DefaultMaxInFlightPerTenant(MaxInFlight); more than MaxInFlight is an error.
	MaxInFlightPerTenant int

	Log *slog.Logger
	// ObserveRequest, when set, is told about every answered request (for metrics): its
	// path, its outcome ("ok", an error code, or the HTTP status when not 200) and duration.
	ObserveRequest func(path, outcome string, d time.Duration)
}

// api implements gen.StrictServerInterface over the core.
type api struct {
	core     *service.Service
	cfg      Config
	log      *slog.Logger // cfg.Log
	inFlight *inFlight    // the MaxInFlight and MaxInFlightPerTenant bounds (admit)
	buffers  sync.Pool    // *bytes.Buffer for answers (answer)
}

var _ gen.StrictServerInterface = (*api)(nil)

func newAPI(core *service.Service, cfg Config) (*api, error) {
	if core == nil {
		return nil, fmt.Errorf("httpapi: no core")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxObservables <= 0 {
		cfg.MaxObservables = DefaultMaxObservables
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.MaxInFlightPerTenant <= 0 {
		cfg.MaxInFlightPerTenant = DefaultMaxInFlightPerTenant(cfg.MaxInFlight)
	}
	if cfg.MaxInFlightPerTenant > cfg.MaxInFlight {
		return nil, fmt.Errorf("httpapi: %d requests in flight per tenant is more than the %d in all", cfg.MaxInFlightPerTenant, cfg.MaxInFlight)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.ObserveRequest == nil {
		cfg.ObserveRequest = func(string, string, time.Duration) {}
	}
	if cfg.Verifier == nil {
		cfg.Verifier = auth.NewVerifier(cfg.Secret)
	}
	return &api{core: core, cfg: cfg, log: cfg.Log, inFlight: newInFlight(cfg.MaxInFlight, cfg.MaxInFlightPerTenant)}, nil
}
