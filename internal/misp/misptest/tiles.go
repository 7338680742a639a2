package misptest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The calls of the dashboard tiles, as MISP 2.5.1 answers them (checked byte for byte on a
// real one, but for database ids and the instance's organisation):
//
//   - attributes/restSearch and events/restSearch with returnFormat "count": the bare number
//     as text/plain, with X-Result-Count;
//   - events/restSearch with metadata: {"response": [{"Event":{...}}, ...]}, the events
//     without attributes but with attribute_count, Org, Orgc and Tag, in id order, paged by
//     limit and page;
//   - sightings/restSearch: {"response": [{"Sighting":{...}}, ...]}, filtered by from, to
//     (inclusive epoch seconds; without either, the last 30 days) and type. MISP ignores
//     limit and page there, has no count format, and says X-Result-Count: 0 whatever it lists.
//
// Their filters: timestamp as [from, to] (both ends included) or one number (from it on),
// to_ids and type (attributes). Events restSearch without metadata is not emulated (it
// answers 501), nor are other forms of timestamp ("7d").

// timeFilter is a parsed timestamp filter.
type timeFilter struct {
	set      bool
	from, to int64 // inclusive; to is MaxInt64 when open
}

func parseTimeFilter(raw json.RawMessage) timeFilter {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return timeFilter{}
	}
	var pair []json.RawMessage
	if json.Unmarshal(raw, &pair) == nil && len(pair) == 2 {
		from, _ := strconv.ParseInt(scalar(pair[0]), 10, 64)
		to, _ := strconv.ParseInt(scalar(pair[1]), 10, 64)
		return timeFilter{set: true, from: from, to: to}
	}
	if from, err := strconv.ParseInt(scalar(raw), 10, 64); err == nil {
		return timeFilter{set: true, from: from, to: 1<<63 - 1}
	}
	return timeFilter{}
}

func (f timeFilter) match(ts string) bool {
	if !f.set {
		return true
	}
	n, _ := strconv.ParseInt(ts, 10, 64)
	return n >= f.from && n <= f.to
}

// restParams reads a restSearch body as search does; ok is false when an error was written.
func restParams(w http.ResponseWriter, r *http.Request, body []byte) (map[string]json.RawMessage, bool) {
	if r.Method == http.MethodGet {
		writeError(w, r, http.StatusBadRequest, msgGetSearch)
		return nil, false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		writeError(w, r, http.StatusBadRequest, msgNoBody)
		return nil, false
	}
	p := map[string]json.RawMessage{}
	if isJSON(r) {
		var ok bool
		if p, ok = params(body, "request"); !ok {
			writeError(w, r, http.StatusMethodNotAllowed, msgBadJSON)
			return nil, false
		}
	}
	return p, true
}

// writeCount answers a returnFormat "count" search.
func writeCount(w http.ResponseWriter, n int, list string) {
	w.Header().Set("X-Result-Count", strconv.Itoa(n))
	w.Header().Set("X-Export-Module-Used", "count")
	w.Header().Set("X-Response-Format", "txt")
	w.Header().Set("X-Skipped-Elements-Count", "0")
	if list != "" {
		w.Header().Set("Content-Disposition", `attachment; filename="misp.`+list+`.list.txt"`)
	}
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(strconv.Itoa(n)))
}

// writeResponseList answers {"response": [...]} with MISP's spacing and final newline.
func writeResponseList(w http.ResponseWriter, count int, disposition string, items [][]byte) {
	w.Header().Set("X-Result-Count", strconv.Itoa(count))
	w.Header().Set("X-Export-Module-Used", "json")
	w.Header().Set("X-Response-Format", "json")
	w.Header().Set("X-Skipped-Elements-Count", "0")
	if disposition != "" {
		w.Header().Set("Content-Disposition", `attachment; filename="`+disposition+`"`)
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(`{"response": [`))
	_, _ = w.Write(bytes.Join(items, []byte(",")))
	_, _ = w.Write([]byte("]}\n")) // MISP ends these answers with a newline
}

// countAttributes answers attributes/restSearch with returnFormat "count".
func (s *Server) countAttributes(w http.ResponseWriter, p map[string]json.RawMessage) {
	values := parseFilter(p["value"], true)
	types := parseFilter(p["type"], false)
	ts := parseTimeFilter(p["timestamp"])
	_, idsSet := p["to_ids"]
	ids := truthy(p["to_ids"])
	n := 0
	for _, a := range s.attrs {
		if !a.deleted && values.match(a.value1, a.value2) && types.match(a.typ, "") && ts.match(a.timestamp) && (!idsSet || a.toIDS == ids) {
			n++
		}
	}
	writeCount(w, n, "")
}

// searchEvents answers events/restSearch: a count, or the events' metadata.
func (s *Server) searchEvents(w http.ResponseWriter, r *http.Request, body []byte) {
	p, ok := restParams(w, r, body)
	if !ok {
		return
	}
	format := scalar(p["returnFormat"])
	if format != "" && format != "json" && format != "count" {
		writeError(w, r, http.StatusNotFound, "Invalid output format.")
		return
	}
	ts := parseTimeFilter(p["timestamp"])
	var matched []*event
	for _, e := range s.events {
		if ts.match(e.Timestamp) {
			matched = append(matched, e)
		}
	}
	if format == "count" {
		writeCount(w, len(matched), "event")
		return
	}
	if !truthy(p["metadata"]) {
		writeError(w, r, http.StatusNotImplemented, "misptest: events/restSearch is emulated with metadata only")
		return
	}
	if limit, _ := strconv.Atoi(scalar(p["limit"])); limit > 0 {
		page, _ := strconv.Atoi(scalar(p["page"]))
		page = max(page, 1)
		start := min((page-1)*limit, len(matched))
		matched = matched[start:min(start+limit, len(matched))]
	}
	counts := map[*event]int{}
	for _, a := range s.attrs {
		if !a.deleted {
			counts[a.event]++
		}
	}
	s.mu.Lock()
	org := s.org
	s.mu.Unlock()
	items := make([][]byte, 0, len(matched))
	for _, e := range matched {
		b, err := json.Marshal(map[string]any{"Event": e.wireMeta(counts[e], org)})
		if err != nil {
			panic(err) // strings, bools and slices of them always marshal
		}
		items = append(items, b)
	}
	writeResponseList(w, len(items), "misp.event.list.json", items)
}

// wireMetaEvent is an event of a metadata events/restSearch, fields in MISP 2.5.1's order.
type wireMetaEvent struct {
	ID                 string        `json:"id"`
	OrgcID             string        `json:"orgc_id"`
	OrgID              string        `json:"org_id"`
	Date               string        `json:"date"`
	ThreatLevelID      string        `json:"threat_level_id"`
	Info               string        `json:"info"`
	Published          bool          `json:"published"`
	UUID               string        `json:"uuid"`
	AttributeCount     string        `json:"attribute_count"`
	Analysis           string        `json:"analysis"`
	Timestamp          string        `json:"timestamp"`
	Distribution       string        `json:"distribution"`
	ProposalEmailLock  bool          `json:"proposal_email_lock"`
	Locked             bool          `json:"locked"`
	PublishTimestamp   string        `json:"publish_timestamp"`
	SharingGroupID     string        `json:"sharing_group_id"`
	DisableCorrelation bool          `json:"disable_correlation"`
	ExtendsUUID        string        `json:"extends_uuid"`
	Protected          *bool         `json:"protected"`
	EventCreatorEmail  string        `json:"event_creator_email"`
	Org                wireOrg       `json:"Org"`
	Orgc               wireOrg       `json:"Orgc"`
	RelatedEvent       []any         `json:"RelatedEvent"`
	Galaxy             []any         `json:"Galaxy"`
	CryptographicKey   []any         `json:"CryptographicKey"`
	Tag                []wireMetaTag `json:"Tag"`
}

// wireMetaTag is an event tag of a metadata events/restSearch.
type wireMetaTag struct {
	ID               string  `json:"id"`
	Name             string  `json:"name"`
	Colour           string  `json:"colour"`
	Exportable       bool    `json:"exportable"`
	UserID           string  `json:"user_id"`
	HideTag          bool    `json:"hide_tag"`
	NumericalValue   *int    `json:"numerical_value"`
	IsGalaxy         bool    `json:"is_galaxy"`
	IsCustomGalaxy   bool    `json:"is_custom_galaxy"`
	LocalOnly        bool    `json:"local_only"`
	Local            bool    `json:"local"`
	RelationshipType *string `json:"relationship_type"`
}

// wireMeta renders e as metadata events/restSearch does. The fake's events are owned by its
// own organisation (org), as events a MISP pulls or is given are; the creator is e.Orgc.
// Galaxy is empty: the fake knows no galaxy's clusters (a real MISP lists there the
// clusters of its galaxies the tags name).
func (e *event) wireMeta(attributes int, org wireSightingOrg) wireMetaEvent {
	tags := make([]wireMetaTag, 0, len(e.Tags))
	for _, t := range e.Tags {
		tags = append(tags, wireMetaTag{ID: t.ID, Name: t.Name, Colour: t.Colour, Exportable: true, UserID: "0", IsGalaxy: isGalaxy(t.Name)})
	}
	return wireMetaEvent{
		ID: e.ID, OrgcID: e.OrgcID, OrgID: org.ID, Date: e.Date, ThreatLevelID: e.ThreatLevelID,
		Info: e.Info, Published: e.Published, UUID: e.UUID, AttributeCount: strconv.Itoa(attributes),
		Analysis: e.Analysis, Timestamp: e.Timestamp, Distribution: e.Distribution,
		PublishTimestamp: e.PublishTimestamp, SharingGroupID: "0", EventCreatorEmail: "admin@admin.test",
		Org:          wireOrg{ID: org.ID, Name: org.Name, UUID: org.UUID, Local: true},
		Orgc:         e.Orgc,
		RelatedEvent: []any{}, Galaxy: []any{}, CryptographicKey: []any{}, Tag: tags,
	}
}

// wireListedSighting is an element of sightings/restSearch: a sighting as sightings/add
// answers it, then the value and the organisation.
type wireListedSighting struct {
	wireSighting
	Value        string          `json:"value"`
	Organisation wireSightingOrg `json:"Organisation"`
}

// searchSightings answers sightings/restSearch.
func (s *Server) searchSightings(w http.ResponseWriter, r *http.Request, body []byte) {
	p, ok := restParams(w, r, body)
	if !ok {
		return
	}
	if f := scalar(p["returnFormat"]); f != "" && f != "json" {
		writeError(w, r, http.StatusNotFound, "Invalid output format.")
		return
	}
	tf := timeFilter{set: true, from: 0, to: 1<<63 - 1}
	if v, err := strconv.ParseInt(scalar(p["from"]), 10, 64); err == nil {
		tf.from = v
	}
	if v, err := strconv.ParseInt(scalar(p["to"]), 10, 64); err == nil {
		tf.to = v
	}
	if p["from"] == nil && p["to"] == nil && p["last"] == nil {
		tf.from = time.Now().Add(-30 * 24 * time.Hour).Unix() // MISP's default window
	}
	typ, typed := scalar(p["type"]), p["type"] != nil
	var items [][]byte
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.attrs {
		if a.deleted {
			continue
		}
		for _, raw := range a.sightings {
			var sg struct {
				wireSighting
				Organisation *wireSightingOrg `json:"Organisation"`
			}
			if json.Unmarshal(raw, &sg) != nil || !tf.match(sg.DateSighting) || (typed && orDefault(sg.Type, "0") != typ) {
				continue
			}
			org := s.org
			if sg.Organisation != nil {
				org = *sg.Organisation
			}
			b, err := json.Marshal(map[string]wireListedSighting{"Sighting": {
				wireSighting: wireSighting{
					ID: sg.ID, AttributeID: a.id, EventID: a.event.ID, OrgID: orDefault(sg.OrgID, org.ID),
					DateSighting: sg.DateSighting, UUID: sg.UUID, Source: sg.Source, Type: orDefault(sg.Type, "0"),
				},
				Value: a.value, Organisation: org,
			}})
			if err != nil {
				panic(err) // strings always marshal
			}
			items = append(items, b)
		}
	}
	// X-Result-Count: 0 whatever the list holds, as MISP 2.5.1 sends it.
	writeResponseList(w, 0, "", items)
}

// isTileCount says whether an attributes/restSearch body asks for a count.
func isTileCount(r *http.Request, body []byte) (map[string]json.RawMessage, bool) {
	if !isJSON(r) {
		return nil, false
	}
	p, ok := params(body, "request")
	return p, ok && strings.EqualFold(scalar(p["returnFormat"]), "count")
}
