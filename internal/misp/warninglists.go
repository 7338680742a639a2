package misp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/mispjson"
)

// maxCheckValues bounds the values of one warninglists/checkValue call (MAX_OBSERVABLES is
// 1,000 unless set): more are asked in several calls, one after the other.
const maxCheckValues = 10000

// CheckWarninglists asks MISP which of its enabled warninglists each value is on, in one
// POST /warninglists/checkValue (one per maxCheckValues values). The relay's search does not
// ask MISP for the warninglist hits of the attributes it matches: this call answers for every
// value, whatever the attributes' types and IDS flags. Values without a hit are absent from
// the answer. It is not retried: a request waits for it before answering, and when it fails
// the service asks the search for the hits instead.
func (c *Client) CheckWarninglists(ctx context.Context, key string, values []string) (map[string][]intel.WarninglistHit, error) {
	if len(values) <= maxCheckValues {
		return c.checkValues(ctx, key, values)
	}
	out := map[string][]intel.WarninglistHit{}
	for chunk := range slices.Chunk(values, maxCheckValues) {
		hits, err := c.checkValues(ctx, key, chunk)
		if err != nil {
			return nil, err
		}
		maps.Copy(out, hits)
	}
	return out, nil
}

// checkValues is one warninglists/checkValue call, for at most maxCheckValues values.
func (c *Client) checkValues(ctx context.Context, key string, values []string) (_ map[string][]intel.WarninglistHit, err error) {
	const op = "warninglist check"
	defer func() { err = c.scrub(err) }()
	if err := checkKey(op, key); err != nil {
		return nil, err
	}
	if len(values) == 0 {
		return nil, nil
	}
	body, err := encodeJSON(values)
	if err != nil {
		return nil, c.fail(op, 0, ErrUnexpected, "cannot encode the values: "+err.Error(), key)
	}
	ctx, done, err := c.begin(ctx, op, key)
	if err != nil {
		return nil, err
	}
	defer done()

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
	out, err := readHits(b, values)
	if err != nil {
		return nil, c.readError(ctx, op, key, resp.StatusCode, err)
	}
	return out, nil
}

// maxHitsPerValue bounds the warninglist hits kept of one value: MISP ships about 120 lists
// and a value is on a handful, while 1 MiB of [{},{},...] is 350,000 hits to hold.
const maxHitsPerValue = 64

// checkHit is one hit of a checkValue answer.
type checkHit struct {
	ID      mispjson.String `json:"id"`
	Name    mispjson.String `json:"name"`
	Matched mispjson.String `json:"matched"`
}

// readHits reads checkValue's {"value": [hit, ...], ...} one value at a time. Only the values
// asked about are kept (the first time each comes), with their first maxHitsPerValue hits;
// the rest is skipped unread, so what it holds depends on the request, not on what MISP sent.
// Tolerant like the search: a value whose hits are not a list, and a hit of another shape,
// are skipped, not fatal.
func readHits(b []byte, values []string) (map[string][]intel.WarninglistHit, error) {
	asked := make(map[string]bool, len(values))
	for _, v := range values {
		asked[v] = true
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := expectDelim(dec, '{', "the answer is neither an object nor an empty list"); err != nil {
		return nil, err
	}
	out := map[string][]intel.WarninglistHit{}
	var raw json.RawMessage // reused: a value's hits, or what is skipped
	for dec.More() {
		value, err := objectKey(dec)
		if err != nil {
			return nil, err
		}
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		if !asked[value] {
			continue
		}
		asked[value] = false // a repeated key is skipped too
		hits, _ := mispjson.ReadList[checkHit](raw, maxHitsPerValue)
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
	if _, err := dec.Token(); err != nil { // }
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &shapeError{"the answer goes on after its object"}
	}
	return out, nil
}
