package loadbench

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

// fakeMISP is the MISP the relay under test talks to. It speaks MISP 2.5's wire format for the
// calls the relay makes on the observe path, POST /attributes/restSearch (one per
// observable), POST /warninglists/checkValue (one per request) and GET /servers/getVersion, so the relay's real MISP client (HTTP, streaming decoder, paging) is
// part of what is measured. It holds no dataset: every value is known, and its answer is
// synthesized from the value, so fresh random values cost the same as repeated ones and a
// 20,000-attribute answer costs no memory to hold. It is safe for concurrent use.
type fakeMISP struct {
	key string
	// latency is how long every call takes before answering, like a MISP busy with its
	// database; a caller that gives up (its context ends) stops the wait.
	latency time.Duration
	// events is the number of events each value is found in; attrs the matching attributes
	// per event (at least 1). An answer lists events × attrs attributes, event by event.
	events, attrs uint64
	// ignorePaging makes the answer hold every attribute whatever limit and page the relay
	// asks for, as an old MISP or a misbehaving proxy does: the relay's client must stop
	// reading by itself. Otherwise limit and page are honoured as MISP does.
	ignorePaging bool

	searches atomic.Int64 // restSearch calls received with the right key
	versions atomic.Int64 // getVersion calls received with the right key
	checks   atomic.Int64 // warninglists/checkValue calls received with the right key
	conns    atomic.Int64 // TCP connections the relay opened (set up by startFakeMISP)
}

// Fixed values of the synthesized answers, and the fake's bounds. An attribute is realistic in
// size and shape (about 900 bytes): the attribute and event fields MISP sends with
// includeContext and includeEventTags, most of which the relay skips.
const (
	fakeTimestamp = "1700000000"
	fakeDate      = "2024-01-15"
	fakeOrg       = "relaybench CERT"
	fakeVersion   = "2.5.1"
	// maxSearchBody bounds what the fake reads of a restSearch request; the relay's are
	// a few hundred bytes.
	maxSearchBody = 64 << 10
	// bigAnswer is the number of attributes from which an answer is written through a larger
	// buffer: net/http's own 4 KiB buffer would cost one write syscall per 4 attributes, and
	// the fake shares the CPUs with the relay it measures.
	bigAnswer = 64
)

// ServeHTTP routes the MISP endpoints the relay calls.
func (f *fakeMISP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != f.key {
		// MISP's answer to a missing or wrong key on an API call.
		mispError(w, r, http.StatusForbidden, "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header.")
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/attributes/restSearch":
		f.searches.Add(1)
		// The body is read before the wait: net/http notices a caller that hangs up (and
		// ends r.Context()) only once the request body has been consumed.
		raw, err := io.ReadAll(io.LimitReader(r.Body, maxSearchBody))
		if err != nil || !wait(r.Context(), f.latency) {
			return
		}
		f.restSearch(w, r, raw)
	case r.Method == http.MethodPost && r.URL.Path == "/warninglists/checkValue":
		// The relay's one warninglist check per request: no value is on a list ([], MISP's
		// empty answer), so verdicts are decided as the scenario's threat levels say.
		f.checks.Add(1)
		if _, err := io.Copy(io.Discard, io.LimitReader(r.Body, maxSearchBody)); err != nil || !wait(r.Context(), f.latency) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `[]`)
	case r.Method == http.MethodGet && r.URL.Path == "/servers/getVersion":
		f.versions.Add(1)
		if !wait(r.Context(), f.latency) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"version":"`+fakeVersion+`","pymisp_recommended_version":"`+fakeVersion+`","perm_sync":false,"perm_sighting":true,"perm_galaxy_editor":false,"request_encoding":["gzip","br"],"filter_sightings":true}`)
	default:
		mispError(w, r, http.StatusNotFound, "Not Found")
	}
}

// wait sleeps d unless ctx ends first; it reports whether the caller is still there.
func wait(ctx context.Context, d time.Duration) bool {
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

// mispError answers MISP's error shape, {"name","message","url"}.
func mispError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	body, _ := json.Marshal(struct {
		Name    string `json:"name"`
		Message string `json:"message"`
		URL     string `json:"url"`
	}{msg, msg, r.URL.Path})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// searchFilters are the restSearch filters the fake reads. MISP accepts type as a string or
// a list; the relay sends a list.
type searchFilters struct {
	ReturnFormat string          `json:"returnFormat"`
	Value        string          `json:"value"`
	Type         json.RawMessage `json:"type"`
	Limit        uint64          `json:"limit"`
	Page         uint64          `json:"page"`
}

// restSearch answers the filters in raw with {"response":{"Attribute":[...]}}, streaming one attribute at a time so
// that a huge answer never exists in memory (the relay's peak heap is measured in the same
// process) and stopping as soon as the relay hangs up.
func (f *fakeMISP) restSearch(w http.ResponseWriter, r *http.Request, raw []byte) {
	var q searchFilters
	if err := json.Unmarshal(raw, &q); err != nil || q.Value == "" {
		// MISP would drop a missing value filter and answer everything; the relay never
		// sends one, so the fake refuses it loudly instead.
		mispError(w, r, http.StatusBadRequest, "relaybench fake MISP: restSearch without a value filter")
		return
	}
	typ := attributeType(q.Type)

	total := f.events * f.attrs
	from, to := uint64(0), total
	if !f.ignorePaging && q.Limit > 0 {
		page := max(q.Page, 1)
		from = min((page-1)*q.Limit, total)
		to = min(from+q.Limit, total)
	}

	w.Header().Set("Content-Type", "application/json")
	var out io.Writer = w
	if to-from > bigAnswer {
		bw := bufio.NewWriterSize(w, 64<<10)
		defer func() { _ = bw.Flush() }() // a failed flush means the relay hung up: nothing to do
		out = bw
	}
	if _, err := io.WriteString(out, `{"response":{"Attribute":[`); err != nil {
		return
	}
	seed := fnvSeed(q.Value)
	buf := make([]byte, 0, 1536)
	for i := from; i < to; i++ {
		if i%256 == 0 && r.Context().Err() != nil {
			return
		}
		buf = buf[:0]
		if i > from {
			buf = append(buf, ',')
		}
		buf = f.appendAttribute(buf, seed, q.Value, typ, i)
		if _, err := out.Write(buf); err != nil {
			return // the relay stopped reading: its event cap was reached
		}
	}
	_, _ = io.WriteString(out, `]}}`)
}

// fnvSeed is the hash every id and UUID of a value's answer derives from.
func fnvSeed(value string) uint64 {
	h := fnv.New64a()
	_, _ = io.WriteString(h, value)
	return h.Sum64()
}

// attributeType picks the type of the synthesized attributes among those searched: ip-dst
// when asked for (the scenarios look up IPs), else the first type asked for.
func attributeType(raw json.RawMessage) string {
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
// i / attrs. Ids and UUIDs derive from the value's hash and the position, so the same value
// always gets the same events and different values get different ones.
func (f *fakeMISP) appendAttribute(b []byte, seed uint64, value, typ string, i uint64) []byte {
	ev := i / max(f.attrs, 1)
	eventID := strconv.FormatUint(1+(seed%100000)*100000+ev, 10)
	b = append(b, `{"id":"`...)
	b = strconv.AppendUint(b, 1+seed%1000000*1000000+i, 10)
	b = append(b, `","event_id":"`...)
	b = append(b, eventID...)
	b = append(b, `","object_id":"0","object_relation":null,"category":"Network activity","type":`...)
	b = appendJSONString(b, typ)
	b = append(b, `,"to_ids":true,"uuid":"`...)
	b = appendUUID(b, seed^0xa77, i)
	b = append(b, `","timestamp":"`+fakeTimestamp+`","distribution":"5","sharing_group_id":"0","comment":"","deleted":false,"disable_correlation":false,"first_seen":null,"last_seen":null,"value":`...)
	b = appendJSONString(b, value)
	b = append(b, `,"Event":{"org_id":"1","distribution":"1","id":"`...)
	b = append(b, eventID...)
	b = append(b, `","info":"relaybench synthetic event `...)
	b = strconv.AppendUint(b, ev, 10)
	b = append(b, `: phishing wave with a loader","orgc_id":"1","uuid":"`...)
	b = appendUUID(b, seed, ev)
	b = append(b, `","date":"`+fakeDate+`","published":true,"analysis":"2","threat_level_id":"`...)
	b = strconv.AppendUint(b, 1+ev%4, 10) // every threat level, so the relay sorts for real
	b = append(b, `","timestamp":"`+fakeTimestamp+`","Orgc":{"id":"1","name":"`+fakeOrg+`","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d2100"},"Tag":[{"id":"1","name":"tlp:amber","colour":"#FFC000","exportable":true},{"id":"7","name":"relaybench:synthetic","colour":"#0088cc","exportable":true}]}}`...)
	return b
}

// appendUUID appends a UUID-shaped id (8-4-4-4-12 hex digits) made of hi and lo.
func appendUUID(b []byte, hi, lo uint64) []byte {
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

// appendJSONString appends s as a JSON string. The values come from the relay's request
// (valid UTF-8, as Go's JSON decoder produced them), so only quotes, backslashes and control
// characters need escaping.
func appendJSONString(b []byte, s string) []byte {
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
