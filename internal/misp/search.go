package misp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/mispjson"
)

// searchRequest is the restSearch body. Only these filters are sent: every extra filter is
// one more way for MISP's filter parsing to surprise (see intel.SafeValue). The include*
// options add the evidence the verdict policy weighs: the event (context), its tags (marked
// inherited on each attribute), sightings and decay scores, and warninglist hits when the
// query asks for them (intel.Query.Warnings): MISP checks every matched attribute against
// its lists for that flag, which made a 50-value search of a real MISP 2.5.1 about 1.4 times
// slower, for the answer its warninglists/checkValue gives every value of the request anyway.
//
// enforceWarninglist and excludeDecayed are deliberately not sent: MISP drops such
// attributes after paging, so pages come back short and the paging loop below would stop
// early, losing events.
type searchRequest struct {
	ReturnFormat string `json:"returnFormat"`
	// Value is one value (a string) or several (a list): MISP matches each element of a list
	// exactly as it matches a string, but for the "&&" split, which safe values never hold.
	Value                  any      `json:"value"`
	Type                   []string `json:"type"`
	IncludeContext         int      `json:"includeContext"`
	IncludeEventTags       int      `json:"includeEventTags"`
	IncludeWarninglistHits int      `json:"includeWarninglistHits"`
	IncludeSightings       int      `json:"includeSightings"`
	IncludeDecayScore      int      `json:"includeDecayScore"`
	Limit                  int      `json:"limit"`
	Page                   int      `json:"page"`
}

// Search finds the attributes matching q and returns them grouped by event, in the order MISP
// sent them, with at most q.Limit events (q.Limit <= 0: no event cap; the page bounds still
// apply): Lookup of one query.
func (c *Client) Search(ctx context.Context, key string, q intel.Query) ([]intel.Event, error) {
	r := c.Lookup(ctx, key, []intel.Query{q})[0]
	return r.Events, r.Err
}

// searchOne asks MISP about one query alone (in its own slot). The answer is decoded as a
// stream and reading stops once the event cap is reached, so memory is bounded by the limits,
// not by what MISP sends.
func (c *Client) searchOne(ctx context.Context, key string, q intel.Query) (_ []intel.Event, err error) {
	const op = "search"
	defer func() { err = c.scrub(err) }()
	ctx, done, err := c.begin(ctx, op, key)
	if err != nil {
		return nil, err
	}
	defer done()
	col := newCollector(q.Limit)
	res, err := c.searchPages(ctx, op, key, q.Value, typesOf(q.Types), col, include{sightings: true, warnings: q.Warnings}, c.pageSize)
	if res.bigAttribute {
		// An attribute over MISP_MAX_ATTRIBUTE_BYTES: its sightings, which MISP lists one
		// by one (thousands on values sensors report), are the likely cause. Ask once more
		// without them: the verdicts lose the sighting counts, the lookup still answers.
		col = newCollector(q.Limit)
		_, err = c.searchPages(ctx, op, key, q.Value, typesOf(q.Types), col, include{warnings: q.Warnings}, c.pageSize)
	}
	if err != nil {
		return nil, err
	}
	return col.events, nil
}

// typesOf is the type filter as sent: an empty list, which MISP ignores, rather than null.
func typesOf(types []string) []string {
	if types == nil {
		return []string{}
	}
	return types
}

// sink takes the attributes of a search's pages: a collector for one query, a batch for
// several.
type sink interface {
	// add takes one attribute; false means nothing more is needed: stop reading.
	add(a *mispjson.Attribute) bool
	// enough is asked after each full page: true when no further page is needed.
	enough() bool
}

// pagesResult says how reading a search's pages ended.
type pagesResult struct {
	// exhausted: MaxPages full pages were read and more may follow.
	exhausted bool
	// bigAttribute: reading failed at an attribute over MISP_MAX_ATTRIBUTE_BYTES, and
	// bigAnswer at the lookup's MISP_MAX_ANSWER_BYTES.
	bigAttribute, bigAnswer bool
}

// include says which optional evidence a search asks MISP for.
type include struct {
	sightings bool // includeSightings; left out when an attribute's sightings overflowed
	warnings  bool // includeWarninglistHits (intel.Query.Warnings)
}

// flag is a boolean as restSearch takes it.
func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

// searchPages reads the pages of one search (value is a string or a list) into s, pageSize
// attributes a page.
func (c *Client) searchPages(ctx context.Context, op, key string, value any, types []string, s sink, with include, pageSize int) (pagesResult, error) {
	budget := c.maxAnswer // shared by the pages: it bounds what one search can hold
	for page := 1; page <= c.maxPages; page++ {
		body, err := encodeJSON(&searchRequest{ // a pointer: encoding a struct held in an interface copies it first
			ReturnFormat: "json", Value: value, Type: types,
			IncludeContext: 1, IncludeEventTags: 1,
			IncludeWarninglistHits: flag(with.warnings), IncludeSightings: flag(with.sightings), IncludeDecayScore: 1,
			Limit: pageSize, Page: page,
		})
		if err != nil {
			return pagesResult{}, c.fail(op, 0, ErrUnexpected, "cannot encode the search: "+err.Error(), key)
		}
		res, err := c.searchPage(ctx, op, key, body, s, &budget, pageSize)
		if err != nil {
			return pagesResult{bigAttribute: res.bigAttribute, bigAnswer: res.bigAnswer}, err
		}
		if res.stopped || res.overflow || res.attributes < pageSize || s.enough() {
			return pagesResult{}, nil
		}
	}
	return pagesResult{exhausted: true}, nil
}

// pageResult says how reading one restSearch page ended.
type pageResult struct {
	attributes int  // attributes read from the page
	stopped    bool // the sink needs nothing more (an event cap was reached and an attribute of another event came)
	overflow   bool // MISP sent more attributes than the page size: it ignores limit/page
	// bigAttribute: reading failed at an attribute over MISP_MAX_ATTRIBUTE_BYTES; bigAnswer:
	// at the search's MISP_MAX_ANSWER_BYTES.
	bigAttribute, bigAnswer bool
}

// searchPage fetches one restSearch page and feeds its attributes to col, reading at most
// *budget bytes of it (and taking what it read from the budget).
func (c *Client) searchPage(ctx context.Context, op, key string, body []byte, col sink, budget *int64, pageSize int) (pageResult, error) {
	resp, err := c.doIdempotent(ctx, op, key, http.MethodPost, "/attributes/restSearch", body)
	if err != nil {
		return pageResult{}, err
	}
	defer closeBody(resp)
	capped := &capReader{r: resp.Body, budget: budget, limit: c.maxAnswer, maxValue: c.maxValue}
	dec, err := c.jsonStart(ctx, op, key, resp.StatusCode, capped)
	if err != nil {
		return pageResult{}, err
	}
	res, err := c.readAttributes(dec, col, pageSize)
	if err != nil {
		var big *sizeError
		isBig := errors.As(err, &big)
		return pageResult{
			bigAttribute: isBig && big.setting == attributeTooLarge(c.maxValue).setting,
			bigAnswer:    isBig && big.setting == answerTooLarge(c.maxAnswer).setting,
		}, c.readError(ctx, op, key, resp.StatusCode, err)
	}
	if !res.stopped && !res.overflow {
		// Finish a small remainder (the closing brackets) so the connection can be reused;
		// an early stop instead closes the body unread, which drops the connection.
		_, _ = io.Copy(io.Discard, io.LimitReader(dec.Buffered(), 1<<10))
		_, _ = io.Copy(io.Discard, io.LimitReader(capped, 4<<10))
	}
	return res, nil
}

// readAttributes walks {"response":{"Attribute":[...]}} (or {"response":[]}) token by token
// and decodes one attribute at a time.
func (c *Client) readAttributes(dec *json.Decoder, col sink, pageSize int) (pageResult, error) {
	var res pageResult
	if err := expectDelim(dec, '{', "the answer is not a JSON object"); err != nil {
		return res, err
	}
	for dec.More() {
		name, err := objectKey(dec)
		if err != nil {
			return res, err
		}
		if name != "response" {
			if err := skipValue(dec); err != nil {
				return res, err
			}
			continue
		}
		tok, err := dec.Token()
		if err != nil {
			return res, err
		}
		switch tok {
		case json.Delim('['):
			// {"response": []} is MISP's "no match" (a PHP empty array); a non-empty list is
			// the events scope, which the client did not ask for.
			if dec.More() {
				return res, &shapeError{"response is a list of events, not of attributes"}
			}
			_, err := dec.Token()
			return res, err
		case json.Delim('{'):
			for dec.More() {
				name, err := objectKey(dec)
				if err != nil {
					return res, err
				}
				if name != "Attribute" {
					if err := skipValue(dec); err != nil {
						return res, err
					}
					continue
				}
				if err := expectDelim(dec, '[', "response.Attribute is not a list"); err != nil {
					return res, err
				}
				// One attribute value for the page, reused: the sink keeps none of it, and an
				// attribute per iteration would escape to the heap through the interface.
				a := new(mispjson.Attribute)
				var raw json.RawMessage // the attribute's JSON, its buffer reused likewise
				for dec.More() {
					if res.attributes == pageSize {
						res.overflow = true
						return res, nil
					}
					if err := decodeAttribute(dec, &raw, a); err != nil {
						return res, err
					}
					res.attributes++
					if !col.add(a) {
						res.stopped = true
						return res, nil
					}
				}
				if _, err := dec.Token(); err != nil { // ]
					return res, err
				}
			}
			_, err := dec.Token() // }
			return res, err
		default:
			return res, &shapeError{"response is neither an object nor a list"}
		}
	}
	if _, err := dec.Token(); err != nil { // }
		return res, err
	}
	return res, &shapeError{`the answer has no "response"`}
}

// decodeAttribute reads one attribute object into a, with a single decode. Fields of an
// unexpected kind read as empty (see mispjson), and so does a container of the wrong kind,
// typically a PHP empty array ([]) where MISP means an empty object: the decoder skips it and
// reads the rest.
//
// The attribute's JSON is taken whole into raw and decoded by mispjson.Unmarshal, which
// decodes as json.Unmarshal (and so dec.Decode(a)) would, with less work for MISP's usual
// answers.
func decodeAttribute(dec *json.Decoder, raw *json.RawMessage, a *mispjson.Attribute) error {
	if err := dec.Decode(raw); err != nil {
		return err
	}
	if err := mispjson.Unmarshal(*raw, a); err != nil {
		var ute *json.UnmarshalTypeError
		switch {
		case errors.As(err, &ute) && ute.Field == "":
			return &shapeError{"an attribute is not a JSON object"}
		case errors.As(err, &ute):
			return nil
		}
		return err
	}
	return nil
}

// collector groups attributes by event, keeping MISP's order, up to limit events.
type collector struct {
	limit  int
	events []intel.Event
	index  map[string]int
}

func newCollector(limit int) *collector {
	return &collector{limit: limit, index: map[string]int{}}
}

func (c *collector) full() bool { return c.limit > 0 && len(c.events) >= c.limit }

// enough: a full collector reads no further page.
func (c *collector) enough() bool { return c.full() }

// add files a under its event. It returns false when a belongs to a new event while the cap is
// already reached: the caller stops reading there.
func (c *collector) add(a *mispjson.Attribute) bool {
	uuid := a.Event.UUID.Text()
	if !isUUID(uuid) {
		return true // cannot be grouped or linked (and would make an invalid CTIM id)
	}
	attr := a.Intel()
	if i, ok := c.index[uuid]; ok {
		c.events[i].Attributes = append(c.events[i].Attributes, attr)
		return true
	}
	if c.full() {
		return false
	}
	c.index[uuid] = len(c.events)
	ev := a.Event.Intel()
	ev.Date = a.Event.Date.Text() // as MISP sent it
	if len(ev.Tags) == 0 {
		// An Event block without its Tag list: the tags MISP copied onto the attribute
		// (marked inherited) are the event's.
		ev.Tags = a.InheritedTagNames()
	}
	ev.Attributes = []intel.Attribute{attr}
	c.events = append(c.events, ev)
	return true
}

// isUUID reports whether s can be an event UUID: MISP writes them as 36 hex digits and
// hyphens. Up to 64 letters, digits, hyphens and underscores are taken (test instances use
// short ids); anything else is not, since the UUID becomes part of CTIM ids and links: "..",
// "/" or "%" must never become a path segment.
func isUUID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := range len(s) {
		if !idChar(s[i]) {
			return false
		}
	}
	return true
}

func idChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// jsonStart checks that a 2xx body looks like JSON and returns a decoder on it. An HTML page
// (a login form, a proxy page) gets a clear message instead of a JSON syntax error. It tells
// body how far the decoder has consumed, for its cap on one value.
func (c *Client) jsonStart(ctx context.Context, op, key string, status int, body *capReader) (*json.Decoder, error) {
	br := bufio.NewReaderSize(body, 4<<10)
	var skipped int64
	for {
		b, err := br.Peek(1)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, c.fail(op, status, ErrUnexpected, "MISP sent an empty answer", key)
			}
			return nil, c.readError(ctx, op, key, status, err)
		}
		switch b[0] {
		case ' ', '\t', '\r', '\n':
			_, _ = br.ReadByte()
			skipped++
			continue
		case '<':
			page, _ := br.Peek(4 << 10) // enough for the <title>; fewer bytes at EOF is fine
			return nil, c.fail(op, status, ErrUnexpected, htmlDetail(page), key)
		}
		dec := json.NewDecoder(br)
		body.consumed = func() int64 { return skipped + dec.InputOffset() }
		return dec, nil
	}
}

// expectDelim reads the next token and checks it is the delimiter d.
func expectDelim(dec *json.Decoder, d json.Delim, msg string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != d {
		return &shapeError{msg}
	}
	return nil
}

// objectKey reads an object member name.
func objectKey(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", &shapeError{"expected an object key"}
	}
	return s, nil
}

// skipValue reads past the next value without keeping it.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}
