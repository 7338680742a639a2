package misptest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// warninglist is an enabled MISP warninglist of the fake: exact entries, compared ignoring
// case, for every attribute type.
type warninglist struct {
	id, name string
	entries  map[string]string // lower-cased entry -> entry as given
}

// Warninglist enables a warninglist named name holding entries (exact values, compared
// ignoring case; MISP's other list types are not emulated). Lists get ids "1", "2", ... in
// the order they are added.
func (s *Server) Warninglist(name string, entries ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := warninglist{id: strconv.Itoa(len(s.lists) + 1), name: name, entries: map[string]string{}}
	for _, e := range entries {
		l.entries[strings.ToLower(e)] = e
	}
	s.lists = append(s.lists, l)
}

// WarningForAll is MISP's MISP.warning_for_all setting: restSearch then annotates attributes
// not flagged for IDS too.
func (s *Server) WarningForAll(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.warnAll = on
}

// hitsFor returns the lists holding v, with the entry that matched.
func (s *Server) hitsFor(v string) []wireWarning {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []wireWarning
	for _, l := range s.lists {
		if e, ok := l.entries[strings.ToLower(strings.TrimSpace(v))]; ok {
			out = append(out, wireWarning{Match: e, Value: v, ID: l.id, Name: l.name, Category: "false_positive"})
		}
	}
	return out
}

// wireOptions are the include* options of one restSearch.
type wireOptions struct {
	eventTags, sightings, warnings, decay bool
}

// annotate adds what the include* options ask for to one answer attribute.
func (s *Server) annotate(w *wireAttribute, a *attribute, o wireOptions) {
	if o.sightings {
		w.Sighting = a.sightings
		if w.Sighting == nil {
			w.Sighting = []json.RawMessage{}
		}
	}
	if o.decay && len(a.decay) > 0 {
		w.DecayScore = a.decay
	}
	s.mu.Lock()
	all := s.warnAll
	s.mu.Unlock()
	// Warninglist::attachWarninglistToAttributes: only attributes flagged for IDS, unless
	// MISP.warning_for_all; a composite value is checked half by half.
	if o.warnings && (a.toIDS || all) {
		w.Warnings = s.hitsFor(a.value1)
		if a.value2 != "" {
			w.Warnings = append(w.Warnings, s.hitsFor(a.value2)...)
		}
	}
}

// checkHit is one element of a checkValue answer.
type checkHit struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Matched string `json:"matched"`
}

// checkValue answers POST /warninglists/checkValue: a JSON array of values (or one string,
// or {"Warninglist": [...]}) in, {"<value>": [{id, name, matched}]} out, values without hits
// left out, and [] (a PHP empty array) when nothing matches.
func (s *Server) checkValue(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Method != http.MethodPost {
		writeError(w, r, http.StatusMethodNotAllowed, "This action is only accessible via POST request.")
		return
	}
	var values []string
	body = bytes.TrimSpace(body)
	if json.Unmarshal(body, &values) != nil {
		var one string
		var wrapped struct {
			Warninglist []string `json:"Warninglist"`
		}
		switch {
		case json.Unmarshal(body, &one) == nil && one != "":
			values = []string{one}
		case json.Unmarshal(body, &wrapped) == nil:
			values = wrapped.Warninglist
		}
	}
	if len(values) == 0 {
		writeError(w, r, http.StatusNotFound, "No valid data received.")
		return
	}
	out := map[string][]checkHit{}
	for _, v := range values {
		v = strings.TrimSpace(v)
		for _, h := range s.hitsFor(v) {
			out[v] = append(out[v], checkHit{ID: h.ID, Name: h.Name, Matched: h.Match})
		}
	}
	if len(out) == 0 {
		writeJSON(w, http.StatusOK, []any{})
		return
	}
	writeJSON(w, http.StatusOK, out)
}
