package misp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/misp-relay/misp-relay/internal/mispjson"
	"github.com/misp-relay/misp-relay/internal/tiles"
)

// The dashboard tiles' calls (tiles.Source), each checked against MISP 2.5.1:
//
//   - events/restSearch {"returnFormat":"count","timestamp":[from,to]} answers a bare number
//     (text/plain): the events whose timestamp is in [from, to], both ends included;
//   - attributes/restSearch {"returnFormat":"count","timestamp":[from,to],"to_ids":1,
//     "type":[...]}: the same for attributes (deleted ones left out, as in every search);
//   - sightings/restSearch {"from":f,"to":t,"type":"0"}: the sightings dated in [f, t] as a
//     list. It has no count format (it answers 404 "Invalid output format.") and ignores
//     limit and page, so the list is counted as it streams, within MISP_MAX_ANSWER_BYTES;
//   - events/restSearch {"metadata":true,"timestamp":[from,to],"limit":n,"page":p}: events
//     without attributes but with attribute_count, Orgc and Tag, page by page.
//
// Windows are half-open ([From, To)); MISP's ranges include both ends, so To-1 is sent.

var _ tiles.Source = (*Client)(nil)

// rangeOf is w as MISP's inclusive [from, to] in epoch seconds.
func rangeOf(w tiles.Window) [2]int64 { return [2]int64{w.From.Unix(), w.To.Unix() - 1} }

// CountEvents counts the events whose timestamp is in w.
func (c *Client) CountEvents(ctx context.Context, key string, w tiles.Window) (int, error) {
	return c.count(ctx, "events count", key, "/events/restSearch", map[string]any{
		"returnFormat": "count", "timestamp": rangeOf(w),
	})
}

// CountAttributes counts the attributes f selects.
func (c *Client) CountAttributes(ctx context.Context, key string, f tiles.AttributeFilter) (int, error) {
	body := map[string]any{"returnFormat": "count", "timestamp": rangeOf(f.Window)}
	if f.IDSOnly {
		body["to_ids"] = 1
	}
	if f.Types != nil {
		if len(f.Types) == 0 {
			return 0, nil // MISP ignores an empty type list: it would count every type
		}
		body["type"] = f.Types
	}
	return c.count(ctx, "attributes count", key, "/attributes/restSearch", body)
}

// count makes one returnFormat "count" search and reads its bare number.
func (c *Client) count(ctx context.Context, op, key, path string, filters map[string]any) (_ int, err error) {
	defer func() { err = c.scrub(err) }()
	if err := checkKey(op, key); err != nil {
		return 0, err
	}
	ctx, done, err := c.begin(ctx, op, key)
	if err != nil {
		return 0, err
	}
	defer done()
	body, err := encodeJSON(filters)
	if err != nil {
		return 0, c.fail(op, 0, ErrUnexpected, "cannot encode the search: "+err.Error(), key)
	}
	resp, err := c.doIdempotent(ctx, op, key, http.MethodPost, path, body)
	if err != nil {
		return 0, err
	}
	defer closeBody(resp)
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64)) // a number; more is not MISP's count
	if err != nil {
		return 0, c.readError(ctx, op, key, resp.StatusCode, err)
	}
	b := bytes.TrimSpace(raw)
	n, perr := strconv.Atoi(string(b))
	switch {
	case perr == nil && n >= 0:
		return n, nil
	case len(b) > 0 && b[0] == '<':
		return 0, c.fail(op, resp.StatusCode, ErrUnexpected, htmlDetail(b), key)
	case len(b) == 0:
		return 0, c.fail(op, resp.StatusCode, ErrUnexpected, "MISP sent an empty answer", key)
	}
	return 0, c.fail(op, resp.StatusCode, ErrUnexpected, "MISP's answer to a count is not a number; MISP 2.4.120 or later answers returnFormat \"count\"", key)
}

// sightingsRequest is the sightings/restSearch body: type "0" keeps false positives and
// expirations out; from and to are inclusive epoch seconds.
type sightingsRequest struct {
	ReturnFormat string `json:"returnFormat"`
	From         int64  `json:"from"`
	To           int64  `json:"to"`
	Type         string `json:"type"`
}

// CountSightings counts the sightings (type 0) dated in w. MISP lists them (no count
// format, no paging), so the answer is read as a stream, one sighting at a time, within
// MISP_MAX_ANSWER_BYTES: a period with more sightings than that fails rather than be cut.
func (c *Client) CountSightings(ctx context.Context, key string, w tiles.Window) (_ int, err error) {
	const op = "sightings count"
	defer func() { err = c.scrub(err) }()
	if err := checkKey(op, key); err != nil {
		return 0, err
	}
	ctx, done, err := c.begin(ctx, op, key)
	if err != nil {
		return 0, err
	}
	defer done()
	r := rangeOf(w)
	body, err := encodeJSON(sightingsRequest{ReturnFormat: "json", From: r[0], To: r[1], Type: "0"})
	if err != nil {
		return 0, c.fail(op, 0, ErrUnexpected, "cannot encode the search: "+err.Error(), key)
	}
	n := 0
	err = c.readList(ctx, op, key, "/sightings/restSearch", body, func(dec *json.Decoder) error {
		n++
		return skipValue(dec)
	})
	return n, err
}

// readList posts body to path and calls item for each element of the answer's "response"
// list ({"response":[...]}), within the answer byte cap. item must consume the element.
func (c *Client) readList(ctx context.Context, op, key, path string, body []byte, item func(*json.Decoder) error) error {
	budget := c.maxAnswer
	_, err := c.readListPage(ctx, op, key, path, body, &budget, item)
	return err
}

// readListPage is readList sharing budget with other pages; it returns the elements read.
func (c *Client) readListPage(ctx context.Context, op, key, path string, body []byte, budget *int64, item func(*json.Decoder) error) (int, error) {
	resp, err := c.doIdempotent(ctx, op, key, http.MethodPost, path, body)
	if err != nil {
		return 0, err
	}
	defer closeBody(resp)
	capped := &capReader{r: resp.Body, budget: budget, limit: c.maxAnswer, maxValue: c.maxValue}
	dec, err := c.jsonStart(ctx, op, key, resp.StatusCode, capped)
	if err != nil {
		return 0, err
	}
	n, err := walkResponse(dec, item)
	if err != nil {
		return n, c.readError(ctx, op, key, resp.StatusCode, err)
	}
	return n, nil
}

// walkResponse walks {"response":[...]} (other members skipped) and hands each element
// to item.
func walkResponse(dec *json.Decoder, item func(*json.Decoder) error) (int, error) {
	if err := expectDelim(dec, '{', "the answer is not a JSON object"); err != nil {
		return 0, err
	}
	n, found := 0, false
	for dec.More() {
		k, err := objectKey(dec)
		if err != nil {
			return n, err
		}
		if k != "response" {
			if err := skipValue(dec); err != nil {
				return n, err
			}
			continue
		}
		found = true
		if err := expectDelim(dec, '[', `"response" is not a list`); err != nil {
			return n, err
		}
		for dec.More() {
			if err := item(dec); err != nil {
				return n, err
			}
			n++
		}
		if _, err := dec.Token(); err != nil { // ]
			return n, err
		}
	}
	if !found {
		return n, &shapeError{`the answer has no "response"`}
	}
	return n, nil
}

// eventsRequest is the events/restSearch body of Events.
type eventsRequest struct {
	ReturnFormat string   `json:"returnFormat"`
	Metadata     bool     `json:"metadata"`
	Timestamp    [2]int64 `json:"timestamp"`
	Limit        int      `json:"limit"`
	Page         int      `json:"page"`
}

// metaEvent is one element of a metadata events/restSearch answer.
type metaEvent struct {
	Event *struct {
		mispjson.EventHeader
		AttributeCount mispjson.String `json:"attribute_count"`
	} `json:"Event"`
}

// Events lists every event whose timestamp is in w, metadata only, page by page (the
// client's page size and page bound, all pages within MISP_MAX_ANSWER_BYTES). More events
// than that is an error: a tile's figures are exact or not given.
func (c *Client) Events(ctx context.Context, key string, w tiles.Window) (_ []tiles.EventMeta, err error) {
	const op = "events search"
	defer func() { err = c.scrub(err) }()
	if err := checkKey(op, key); err != nil {
		return nil, err
	}
	ctx, done, err := c.begin(ctx, op, key)
	if err != nil {
		return nil, err
	}
	defer done()
	budget := c.maxAnswer
	seen := map[string]bool{} // events changed while paging may move between pages
	var out []tiles.EventMeta
	for page := 1; page <= c.maxPages; page++ {
		body, err := encodeJSON(eventsRequest{ReturnFormat: "json", Metadata: true, Timestamp: rangeOf(w), Limit: c.pageSize, Page: page})
		if err != nil {
			return nil, c.fail(op, 0, ErrUnexpected, "cannot encode the search: "+err.Error(), key)
		}
		n, err := c.readListPage(ctx, op, key, "/events/restSearch", body, &budget, func(dec *json.Decoder) error {
			var m metaEvent
			if err := dec.Decode(&m); err != nil {
				return err
			}
			if m.Event == nil {
				return &shapeError{`an element of "response" has no "Event"`}
			}
			ie := m.Event.Intel()
			if ie.UUID != "" && seen[ie.UUID] {
				return nil
			}
			seen[ie.UUID] = true
			count, _ := strconv.Atoi(m.Event.AttributeCount.Text())
			out = append(out, tiles.EventMeta{
				UUID: ie.UUID, Info: ie.Info, Org: ie.Org, Date: ie.Date, Timestamp: ie.Timestamp,
				ThreatLevel: ie.ThreatLevel, AttributeCount: count, Tags: ie.Tags,
			})
			return nil
		})
		if err != nil {
			return nil, err
		}
		if n < c.pageSize {
			return out, nil
		}
	}
	return nil, c.fail(op, 0, ErrUnexpected, fmt.Sprintf(
		"the period holds more than %d events (%d pages of %d), and a tile is not drawn from part of them", c.pageSize*c.maxPages, c.maxPages, c.pageSize), key)
}
