package misp

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/mispjson"
)

// maxCheckValues bounds the values of one warninglists/checkValue call, as MAX_OBSERVABLES
// bounds a request's.
const maxCheckValues = 10000

// CheckWarninglists asks MISP which of its enabled warninglists each value is on, in one
// POST /warninglists/checkValue. MISP annotates restSearch attributes with warninglist hits
// only when they are flagged for IDS (unless MISP.warning_for_all is set); this call covers
// the others. Values without a hit are absent from the answer. It is not retried: the check
// is optional evidence, and a request waits for it before answering.
func (c *Client) CheckWarninglists(ctx context.Context, key string, values []string) (_ map[string][]intel.WarninglistHit, err error) {
	const op = "warninglist check"
	defer func() { err = c.scrub(err) }()
	if err := checkKey(op, key); err != nil {
		return nil, err
	}
	if len(values) == 0 {
		return nil, nil
	}
	if len(values) > maxCheckValues {
		values = values[:maxCheckValues]
	}
	body, err := encodeJSON(values)
	if err != nil {
		return nil, c.fail(op, 0, ErrUnexpected, "cannot encode the values: "+err.Error(), key)
	}
	release, err := c.acquire(ctx, op, key)
	if err != nil {
		return nil, err
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	resp, err := c.do(ctx, op, key, http.MethodPost, "/warninglists/checkValue", body)
	if err != nil {
		return nil, err
	}
	defer closeBody(resp)
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxSmallBody+1))
	if err != nil {
		return nil, c.readError(ctx, op, key, resp.StatusCode, err)
	}
	if len(raw) > maxSmallBody {
		return nil, c.fail(op, resp.StatusCode, ErrUnexpected, "MISP's answer is larger than 1 MiB", key)
	}
	b := bytes.TrimSpace(raw)
	switch {
	case len(b) == 0:
		return nil, c.fail(op, resp.StatusCode, ErrUnexpected, "MISP sent an empty answer", key)
	case b[0] == '<':
		return nil, c.fail(op, resp.StatusCode, ErrUnexpected, htmlDetail(b), key)
	case b[0] == '[':
		// No hit at all is a PHP empty array. Anything else in a list is not MISP's answer.
		var list []json.RawMessage
		if json.Unmarshal(b, &list) != nil || len(list) > 0 {
			return nil, c.readError(ctx, op, key, resp.StatusCode, &shapeError{"the answer is neither an object nor an empty list"})
		}
		return nil, nil
	}
	var answer map[string]json.RawMessage
	if err := json.Unmarshal(b, &answer); err != nil {
		return nil, c.readError(ctx, op, key, resp.StatusCode, err)
	}
	out := make(map[string][]intel.WarninglistHit, len(answer))
	for value, rawHits := range answer {
		// Tolerant like the search: a hit of another shape is skipped, not fatal.
		var hits []struct {
			ID      mispjson.String `json:"id"`
			Name    mispjson.String `json:"name"`
			Matched mispjson.String `json:"matched"`
		}
		if json.Unmarshal(rawHits, &hits) != nil {
			continue
		}
		for _, h := range hits {
			name := strings.TrimSpace(h.Name.Text())
			if name == "" {
				if id := strings.TrimSpace(h.ID.Text()); id != "" {
					name = "#" + id
				} else {
					continue
				}
			}
			out[value] = append(out[value], intel.WarninglistHit{List: name, Match: h.Matched.Text()})
		}
	}
	return out, nil
}
