package misptest

// This file is the second way to get a fake MISP: Generated holds no dataset and synthesizes
// every answer from the value asked for. Server (misptest.go) answers from real events and
// emulates MISP's quirks, for correctness tests; Generated answers any value, with any number
// of events and attributes and a chosen latency, as cheaply as possible, for load tests (the
// relay's load benchmark, internal/loadbench, runs it in the process it measures). It needs
// no testing.TB, so a command can serve it.

import (
	"bufio"
	"context"
	"encoding/json"
	"hash/fnv"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

// Fixed values of Generated's answers.
const (
	// GeneratedVersion is the MISP version /servers/getVersion answers.
	GeneratedVersion = "2.5.1"
	// GeneratedOrg is the creator organisation of every generated event.
	GeneratedOrg = "relaybench CERT"
	// GeneratedDate is the date of every generated event.
	GeneratedDate = "2024-01-15"
	// GeneratedTimestamp is the timestamp (Unix seconds) of every generated event and attribute.
	GeneratedTimestamp = "1700000000"
)

const (
	// genMaxSearchBody bounds what Generated reads of a restSearch request; the relay's are a
	// few hundred bytes.
	genMaxSearchBody = 64 << 10
	// genBigAnswer is the number of attributes from which an answer is written through a
	// larger buffer: net/http's own 4 KiB buffer would cost one write syscall per 4
	// attributes, and the fake shares the CPUs with the relay it measures.
	genBigAnswer = 64
	// genAuthFailed is MISP's answer to a missing or wrong key on an API call.
	genAuthFailed = "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header."
)

// GeneratedOptions is what a Generated MISP answers.
type GeneratedOptions struct {
	// Key is the API key accepted in the Authorization header, compared as is; any other
	// (or none) is answered 403 as MISP does. An empty Key refuses every call, as Server's.
	Key string
	// Latency is how long every call takes before answering, like a MISP busy with its
	// database; a caller that gives up (its context ends) stops the wait.
	Latency time.Duration
	// Events is the number of events every value is found in, and Attributes the matching
	// attributes per event (0 means 1). An answer lists Events × Attributes attributes, event
	// by event.
	Events, Attributes uint64
	// IgnorePaging makes the answer hold every attribute whatever limit and page the caller
	// asks for, as an old MISP or a misbehaving proxy does: the relay's client must stop
	// reading by itself. Otherwise limit and page are honoured as MISP does.
	IgnorePaging bool
}

// Generated is a fake MISP without a dataset, an http.Handler to serve (e.g. with
// httptest.NewServer). It speaks MISP 2.5's wire format for the calls the relay makes on the
// observe path, POST /attributes/restSearch (one per observable), POST
// /warninglists/checkValue (one per request; no value is on a list) and GET
// /servers/getVersion, so the relay's
// real MISP client (HTTP, streaming decoder, paging) is exercised. Every value is known: its
// answer is synthesized from the value, so fresh values cost the same as repeated ones, and
// an answer of 20,000 attributes is streamed one attribute at a time and never held in
// memory. Ids and UUIDs derive from the value, so a value always gets the same events and
// different values get different ones.
//
// Other restSearch filters, other endpoints and MISP's quirks (see Server) are not emulated.
// It is safe for concurrent use.
type Generated struct {
	opts     GeneratedOptions
	searches atomic.Int64
	searched atomic.Int64
	versions atomic.Int64
	checks   atomic.Int64
	checked  atomic.Int64
}

// NewGenerated returns a Generated MISP answering as o says.
func NewGenerated(o GeneratedOptions) *Generated {
	o.Attributes = max(o.Attributes, 1)
	return &Generated{opts: o}
}

// Searches is the number of restSearch calls received with the right key.
func (g *Generated) Searches() int64 { return g.searches.Load() }

// Searched is the number of values those restSearch calls asked about, over all calls (a call
// for a request's batch asks about several).
func (g *Generated) Searched() int64 { return g.searched.Load() }

// Versions is the number of getVersion calls received with the right key.
func (g *Generated) Versions() int64 { return g.versions.Load() }

// Checks is the number of warninglists/checkValue calls received with the right key.
func (g *Generated) Checks() int64 { return g.checks.Load() }

// Checked is the number of values those checkValue calls asked about, over all calls.
func (g *Generated) Checked() int64 { return g.checked.Load() }

// ServeHTTP answers the MISP endpoints the relay calls, and MISP's 404 otherwise.
func (g *Generated) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != g.opts.Key || g.opts.Key == "" {
		genError(w, r, http.StatusForbidden, genAuthFailed)
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/attributes/restSearch":
		g.searches.Add(1)
		// The body is read before the wait: net/http notices a caller that hangs up (and
		// ends r.Context()) only once the request body has been consumed.
		raw, err := io.ReadAll(io.LimitReader(r.Body, genMaxSearchBody))
		if err != nil || !genWait(r.Context(), g.opts.Latency) {
			return
		}
		g.restSearch(w, r, raw)
	case r.Method == http.MethodPost && r.URL.Path == "/warninglists/checkValue":
		// The relay's one warninglist check per request: no value is on a list ([], MISP's
		// empty answer), so verdicts follow the generated threat levels.
		g.checks.Add(1)
		raw, err := io.ReadAll(io.LimitReader(r.Body, genMaxSearchBody))
		var values []string
		if err != nil || json.Unmarshal(raw, &values) != nil {
			genError(w, r, http.StatusBadRequest, "Invalid value list")
			return
		}
		g.checked.Add(int64(len(values)))
		if !genWait(r.Context(), g.opts.Latency) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `[]`)
	case r.Method == http.MethodGet && r.URL.Path == "/servers/getVersion":
		g.versions.Add(1)
		if !genWait(r.Context(), g.opts.Latency) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"version":"`+GeneratedVersion+`","pymisp_recommended_version":"`+GeneratedVersion+`","perm_sync":false,"perm_sighting":true,"perm_galaxy_editor":false,"request_encoding":["gzip","br"],"filter_sightings":true}`)
	default:
		genError(w, r, http.StatusNotFound, "Not Found")
	}
}

// AnswerSize is the size in bytes of the whole restSearch answer for value when paging is not
// applied (every attribute in one answer), computed attribute by attribute without holding it.
func (g *Generated) AnswerSize(value string) uint64 {
	size := uint64(len(`{"response":{"Attribute":[]}}`))
	seed := genSeed(value)
	buf := make([]byte, 0, 1536)
	for i := range g.opts.Events * g.opts.Attributes {
		buf = g.appendAttribute(buf[:0], seed, value, "ip-dst", i)
		size += uint64(len(buf))
		if i > 0 {
			size++ // the comma
		}
	}
	return size
}

// genWait sleeps d unless ctx ends first; it reports whether the caller is still there.
func genWait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// genError answers MISP's error shape, {"name","message","url"}. Errors are rare, so this one
// marshals.
func genError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	body, _ := json.Marshal(struct {
		Name    string `json:"name"`
		Message string `json:"message"`
		URL     string `json:"url"`
	}{msg, msg, r.URL.Path})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// genFilters are the restSearch filters Generated reads. MISP accepts type as a string or a
// list; the relay sends a list.
type genFilters struct {
	ReturnFormat string          `json:"returnFormat"`
	Value        json.RawMessage `json:"value"` // a string, or a list of them (a request's batch)
	Type         json.RawMessage `json:"type"`
	Limit        uint64          `json:"limit"`
	Page         uint64          `json:"page"`
}

// restSearch answers the filters in raw with {"response":{"Attribute":[...]}}, streaming one
// attribute at a time so that a huge answer never exists in memory (the relay's peak heap is
// measured in the same process) and stopping as soon as the caller hangs up.
func (g *Generated) restSearch(w http.ResponseWriter, r *http.Request, raw []byte) {
	var q genFilters
	var values []string
	if err := json.Unmarshal(raw, &q); err == nil {
		values = genValues(q.Value)
	}
	if len(values) == 0 {
		// MISP would drop a missing value filter and answer everything; the relay never
		// sends one, so the fake refuses it loudly instead.
		genError(w, r, http.StatusBadRequest, "misptest.Generated: restSearch without a value filter")
		return
	}
	g.searched.Add(int64(len(values)))
	typ := genAttributeType(q.Type)

	// Each value's attributes, value after value, as MISP lists a batch's (ordered by id).
	per := g.opts.Events * g.opts.Attributes
	total := per * uint64(len(values))
	from, to := uint64(0), total
	if !g.opts.IgnorePaging && q.Limit > 0 {
		page := max(q.Page, 1)
		from = min((page-1)*q.Limit, total)
		to = min(from+q.Limit, total)
	}

	w.Header().Set("Content-Type", "application/json")
	var out io.Writer = w
	if to-from > genBigAnswer {
		bw := bufio.NewWriterSize(w, 64<<10)
		defer func() { _ = bw.Flush() }() // a failed flush means the caller hung up: nothing to do
		out = bw
	}
	if _, err := io.WriteString(out, `{"response":{"Attribute":[`); err != nil {
		return
	}
	seeds := make([]uint64, len(values))
	for k, v := range values {
		seeds[k] = genSeed(v)
	}
	buf := make([]byte, 0, 1536)
	for i := from; i < to; i++ {
		if i%256 == 0 && r.Context().Err() != nil {
			return
		}
		buf = buf[:0]
		if i > from {
			buf = append(buf, ',')
		}
		k := i / per
		buf = g.appendAttribute(buf, seeds[k], values[k], typ, i%per)
		if _, err := out.Write(buf); err != nil {
			return // the caller stopped reading (the relay's event cap was reached)
		}
	}
	_, _ = io.WriteString(out, `]}}`)
}

// genValues reads a value filter: a string, or a list of strings; nil for anything else or
// for an empty value.
func genValues(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		if one == "" {
			return nil
		}
		return []string{one}
	}
	var list []string
	if json.Unmarshal(raw, &list) != nil || slices.Contains(list, "") {
		return nil
	}
	return list
}

// genSeed is the hash every id and UUID of a value's answer derives from.
func genSeed(value string) uint64 {
	h := fnv.New64a()
	_, _ = io.WriteString(h, value)
	return h.Sum64()
}

// genAttributeType picks the type of the synthesized attributes among those searched: ip-dst
// when asked for (load tests look up IPs), else the first type asked for.
func genAttributeType(raw json.RawMessage) string {
	var types []string
	if json.Unmarshal(raw, &types) != nil {
		var one string
		if json.Unmarshal(raw, &one) == nil && one != "" {
			types = []string{one}
		}
	}
	if len(types) == 0 || slices.Contains(types, "ip-dst") {
		return "ip-dst"
	}
	return types[0]
}

// appendAttribute appends attribute i of the answer for value: attribute i belongs to event
// i / Attributes. An attribute is realistic in size and shape (about 900 bytes): the
// attribute and event fields MISP sends with includeContext and includeEventTags, most of
// which the relay skips. It is appended, not marshalled: the fake shares the CPUs with the
// relay it measures.
func (g *Generated) appendAttribute(b []byte, seed uint64, value, typ string, i uint64) []byte {
	ev := i / g.opts.Attributes
	eventID := strconv.FormatUint(1+(seed%100000)*100000+ev, 10)
	b = append(b, `{"id":"`...)
	b = strconv.AppendUint(b, 1+seed%1000000*1000000+i, 10)
	b = append(b, `","event_id":"`...)
	b = append(b, eventID...)
	b = append(b, `","object_id":"0","object_relation":null,"category":"Network activity","type":`...)
	b = genAppendString(b, typ)
	b = append(b, `,"to_ids":true,"uuid":"`...)
	b = genAppendUUID(b, seed^0xa77, i)
	b = append(b, `","timestamp":"`+GeneratedTimestamp+`","distribution":"5","sharing_group_id":"0","comment":"","deleted":false,"disable_correlation":false,"first_seen":null,"last_seen":null,"value":`...)
	b = genAppendString(b, value)
	b = append(b, `,"Event":{"org_id":"1","distribution":"1","id":"`...)
	b = append(b, eventID...)
	b = append(b, `","info":"relaybench synthetic event `...)
	b = strconv.AppendUint(b, ev, 10)
	b = append(b, `: phishing wave with a loader","orgc_id":"1","uuid":"`...)
	b = genAppendUUID(b, seed, ev)
	b = append(b, `","date":"`+GeneratedDate+`","published":true,"analysis":"2","threat_level_id":"`...)
	b = strconv.AppendUint(b, 1+ev%4, 10) // every threat level, so the relay sorts for real
	b = append(b, `","timestamp":"`+GeneratedTimestamp+`","Orgc":{"id":"1","name":"`+GeneratedOrg+`","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d2100"},"Tag":[{"id":"1","name":"tlp:amber","colour":"#FFC000","exportable":true},{"id":"7","name":"relaybench:synthetic","colour":"#0088cc","exportable":true}]}}`...)
	return b
}

// genAppendUUID appends a UUID-shaped id (8-4-4-4-12 hex digits) made of hi and lo.
func genAppendUUID(b []byte, hi, lo uint64) []byte {
	const hexDigits = "0123456789abcdef"
	var d [32]byte
	for k := range 16 {
		d[k] = hexDigits[hi>>(60-4*k)&0xf]
		d[16+k] = hexDigits[lo>>(60-4*k)&0xf]
	}
	d[12] = '4' // version 4 and the RFC 4122 variant, so the id reads as a MISP UUID
	d[16] = '8'
	for k, c := range d {
		if k == 8 || k == 12 || k == 16 || k == 20 {
			b = append(b, '-')
		}
		b = append(b, c)
	}
	return b
}

// genAppendString appends s as a JSON string. The values come from the caller's request
// (valid UTF-8, as Go's JSON decoder produced them), so only quotes, backslashes and control
// characters need escaping.
func genAppendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
