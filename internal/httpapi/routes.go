package httpapi

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
	paths []string             // every path, sorted
	ops   map[string]operation // by "METHOD /path" (the spec's paths have no parameters)
	allow map[string]string    // the Allow header of a 405 for each path: "GET, HEAD", "POST"
}

// operation is what admit needs to know of one operation of the spec.
type operation struct {
	path    string
	secured bool // it needs a bearer token (its own security, else the spec's)
	// body is the schema of its JSON request body; nil when it takes none.
	body *openapi3.Schema
	list bool // the body is an ObservableList
}

func routesOf(spec *openapi3.T) routes {
	r := routes{ops: map[string]operation{}, allow: map[string]string{}}
	var list *openapi3.Schema
	if ref := spec.Components.Schemas["ObservableList"]; ref != nil {
		list = ref.Value
	}
	for path, item := range spec.Paths.Map() {
		r.paths = append(r.paths, path)
		var methods []string
		for method, op := range item.Operations() {
			methods = append(methods, method)
			if method == http.MethodGet {
				methods = append(methods, http.MethodHead) // answered like GET (trimTrailingSlash)
			}
			sec := op.Security
			if sec == nil {
				sec = &spec.Security
			}
			o := operation{path: path, secured: len(*sec) > 0}
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				if mt := op.RequestBody.Value.Content.Get("application/json"); mt != nil && mt.Schema != nil {
					o.body, o.list = mt.Schema.Value, mt.Schema.Value == list
				}
			}
			r.ops[method+" "+path] = o
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
