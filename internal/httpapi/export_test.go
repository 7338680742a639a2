package httpapi

import (
	"net/http"

	"github.com/misp-relay/misp-relay/internal/service"
)

// NewHandlerInFlight is NewHandler, with a function that says how many tenants have a request
// in flight: the per-tenant counts must drop their entries when a tenant's last request ends,
// so tests check it returns to 0.
func NewHandlerInFlight(core *service.Service, cfg Config) (http.Handler, func() int, error) {
	a, err := newAPI(core, cfg)
	if err != nil {
		return nil, nil, err
	}
	h, err := a.handler()
	return h, a.inFlight.tenants, err
}

// Answer is answer, which writes a list route's answer (with goccy/go-json), for the tests
// that compare what it writes with encoding/json.
func Answer(w http.ResponseWriter, v any) error { return (&api{}).answer(w, v) }

// EnrichResult is enrichResult: the answer of observe and deliberate for what the core found.
var EnrichResult = enrichResult
