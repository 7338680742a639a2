package testkit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/misp-relay/misp-relay/internal/gen"
)

// Contract is api/openapi.yaml (as embedded in internal/gen), to validate the relay's answers
// against: every integration test's responses must match it.
type Contract struct {
	Spec   *openapi3.T
	Router routers.Router
}

var loadContract = sync.OnceValues(func() (*Contract, error) {
	// kin-openapi does not check format: uri by itself; CTIM requires absolute URIs.
	openapi3.DefineStringFormatValidator("uri", openapi3.NewCallbackValidator(func(s string) error {
		u, err := url.Parse(s)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("not an absolute URI: %q", s)
		}
		return nil
	}))
	spec, err := gen.GetSpec()
	if err != nil {
		return nil, err
	}
	spec.Servers = nil // match paths whatever the host
	router, err := gorillamux.NewRouter(spec)
	if err != nil {
		return nil, err
	}
	return &Contract{Spec: spec, Router: router}, nil
})

// LoadContract returns the contract, loaded once per test binary. It also makes kin-openapi
// check format: uri (absolute URIs, as CTIM requires), for the whole test binary.
func LoadContract(tb testing.TB) *Contract {
	tb.Helper()
	c, err := loadContract()
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// Check validates one answer against the spec: 404 and 405 bodies against HTTPError,
// everything else against the operation's declared response. It reports with Errorf only, so
// load tests may call it from many goroutines.
func (c *Contract) Check(tb testing.TB, method, path string, status int, header http.Header, raw []byte) {
	tb.Helper()
	if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			tb.Errorf("%d body is not JSON: %s", status, raw)
			return
		}
		if err := c.Spec.Components.Schemas["HTTPError"].Value.VisitJSON(v); err != nil {
			tb.Errorf("%s %s: %d body does not match HTTPError: %v", method, path, status, err)
		}
		return
	}
	req := httptest.NewRequest(method, strings.TrimRight(path, "/"), nil)
	route, params, err := c.Router.FindRoute(req)
	if err != nil {
		tb.Errorf("%s %s answered %d but is not in the spec: %v", method, path, status, err)
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(raw)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		tb.Errorf("%s %s: response does not match the spec: %v\nbody: %.3000s", method, path, err, raw)
	}
}
