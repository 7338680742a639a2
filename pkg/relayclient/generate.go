// Package relayclient is a Go client for misp-relay, generated from api/openapi.yaml.
//
// Other tools import it to call a relay the way XDR does:
//
//	c, err := relayclient.NewClientWithResponses("https://relay.example", relayclient.WithRequestEditorFn(
//		func(ctx context.Context, req *http.Request) error {
//			req.Header.Set("Authorization", "Bearer "+jwt)
//			return nil
//		}))
//	resp, err := c.ObserveObservablesWithResponse(ctx, nil, relayclient.ObservableList{{Type: "ip", Value: "198.51.100.7"}})
package relayclient

//go:generate go tool oapi-codegen -config cfg.yaml ../../api/openapi.yaml
