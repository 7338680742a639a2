package httpapi_test

import (
	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/intel"
)

// hostSources is a Config.Sources as the app's, for one MISP per token: API_URL's (own, with
// links to ui) for a token naming none, else the one forHost gives for the token's HOST.
func hostSources(own intel.Backend, ui string, forHost func(host string) (intel.Backend, string, error)) func(auth.Claims) ([]intel.Source, error) {
	return func(c auth.Claims) ([]intel.Source, error) {
		if c.Host == "" {
			return []intel.Source{{Name: "MISP api.example", Backend: own, Key: c.Key, UI: ui}}, nil
		}
		b, base, err := forHost(c.Host)
		if err != nil {
			return nil, err
		}
		_, hostport, err := intel.MISPBase(c.Host)
		if err != nil {
			return nil, &auth.Error{Reason: err.Error()}
		}
		return []intel.Source{{Name: "MISP " + hostport, Backend: b, Key: c.Key, UI: base}}, nil
	}
}
