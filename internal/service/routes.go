package service

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/misp-relay/misp-relay/internal/gen"
)

// routes is the relay's API as api/openapi.yaml declares it: the one list of paths, read from
// the embedded spec rather than written again by hand (for body handling and metrics labels).
type routes struct {
	paths    []string          // every path, sorted
	withBody map[string]bool   // paths with an operation that takes a JSON request body
	allow    map[string]string // the Allow header of a 405 for each path: "GET, HEAD", "POST"
}

func routesOf(spec *openapi3.T) routes {
	r := routes{withBody: map[string]bool{}, allow: map[string]string{}}
	for path, item := range spec.Paths.Map() {
		r.paths = append(r.paths, path)
		var methods []string
		for method, op := range item.Operations() {
			methods = append(methods, method)
			if method == http.MethodGet {
				methods = append(methods, http.MethodHead) // answered like GET
			}
			if op.RequestBody != nil {
				r.withBody[path] = true
			}
		}
		slices.Sort(methods)
		r.allow[path] = strings.Join(slices.Compact(methods), ", ")
	}
	slices.Sort(r.paths)
	return r
}

// Routes returns the relay's API paths, from the embedded spec: the label values metrics may
// use for paths.
func Routes() ([]string, error) {
	spec, err := gen.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("load embedded spec: %w", err)
	}
	return routesOf(spec).paths, nil
}
