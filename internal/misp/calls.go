package misp

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/misp-relay/misp-relay/internal/intel"
)

// Version returns MISP's version from GET /servers/getVersion, the cheapest authenticated
// call: it proves the URL, the TLS setup and the key in one request.
func (c *Client) Version(ctx context.Context, key string) (_ string, err error) {
	const op = "version check"
	defer func() { err = c.scrub(err) }()
	if err := checkKey(op, key); err != nil {
		return "", err
	}
	ctx, done, err := c.begin(ctx, op, key)
	if err != nil {
		return "", err
	}
	defer done()
	var v struct {
		Version json.RawMessage `json:"version"`
	}
	status, err := c.call(ctx, op, key, http.MethodGet, "/servers/getVersion", nil, &v)
	if err != nil {
		return "", err
	}
	var s string
	if json.Unmarshal(v.Version, &s) != nil || s == "" {
		return "", c.fail(op, status, ErrUnexpected, `MISP's answer has no "version"; check that API_URL points at the MISP base URL`, key)
	}
	return s, nil
}

// Ping is Version without the version: the health check of intel.Backend.
func (c *Client) Ping(ctx context.Context, key string) error {
	_, err := c.Version(ctx, key)
	return err
}

// sightingRequest is the /sightings/add body.
type sightingRequest struct {
	Values []string           `json:"values"`
	Type   intel.SightingType `json:"type"`
	Source string             `json:"source"`
}

// AddSighting records that value was seen (Sighting) or is a false positive (FalsePositive),
// on every attribute with that value the key's user can see. It is never retried: a retry
// after a lost answer would count the sighting twice.
func (c *Client) AddSighting(ctx context.Context, key, value string, typ intel.SightingType, source string) (err error) {
	const op = "add sighting"
	defer func() { err = c.scrub(err) }()
	if err := checkKey(op, key); err != nil {
		return err
	}
	ctx, done, err := c.begin(ctx, op, key)
	if err != nil {
		return err
	}
	defer done()
	body, err := encodeJSON(sightingRequest{Values: []string{value}, Type: typ, Source: source})
	if err != nil {
		return c.fail(op, 0, ErrUnexpected, "cannot encode the sighting: "+err.Error(), key)
	}
	var r struct {
		Sighting json.RawMessage `json:"Sighting"`
		Message  json.RawMessage `json:"message"`
		Name     json.RawMessage `json:"name"`
	}
	status, err := c.call(ctx, op, key, http.MethodPost, "/sightings/add", body, &r)
	if err != nil {
		return err
	}
	if len(r.Sighting) > 0 && r.Sighting[0] == '{' {
		return nil
	}
	// MISP answers a failed sighting with HTTP 200 and only a message, e.g. "Could not add
	// the Sighting. Reason: No valid attributes found that match the criteria." (checked on
	// MISP 2.5.1): the value is in no attribute the key's user can see.
	detail := rawString(r.Message)
	if strings.Contains(detail, "No valid attributes found") {
		return c.fail(op, status, ErrNotFound, msgNoAttribute, key)
	}
	if detail == "" {
		detail = rawString(r.Name)
	}
	if detail == "" {
		detail = `MISP's answer has no "Sighting"`
	}
	return c.fail(op, status, ErrUnexpected, detail, key)
}

// msgNoAttribute is the relay's own wording of MISP's "No valid attributes found": kept even
// when the client hides what servers say, since it quotes nothing of the answer.
const msgNoAttribute = "MISP holds no attribute with this value that this API key can see, so no sighting was added"

// checkKey refuses an empty key locally: MISP would answer 403, after a round trip.
func checkKey(op, key string) error {
	if strings.TrimSpace(key) == "" {
		return &Error{Summary: "MISP " + op + " failed", Op: op, Kind: ErrPermission, Detail: "no MISP API key was given"}
	}
	return nil
}
