package misptest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// warninglist is an enabled MISP warninglist of the fake, for every attribute type: exact
// entries and CIDR blocks.
type warninglist struct {
	id, name string
	entries  map[string]bool
	blocks   []netip.Prefix
}

// Warninglist enables a warninglist named name holding entries: CIDR blocks ("10.0.0.0/8",
// "8.8.8.8/32"), which hold the addresses in them as MISP's cidr lists do, and exact values,
// which hold a value spelled exactly so, letter case included, as MISP's string lists do
// (and its hostname lists, which lower-case their entries but not the value checked: give
// such entries in lower case). MISP's substring and regex lists, and a hostname list's
// subdomains, are not emulated. Lists get ids "1", "2", ... in the order they are added.
func (s *Server) Warninglist(name string, entries ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := warninglist{id: strconv.Itoa(len(s.lists) + 1), name: name, entries: map[string]bool{}}
	for _, e := range entries {
		if p, err := netip.ParsePrefix(e); err == nil {
			l.blocks = append(l.blocks, p)
			continue
		}
		l.entries[e] = true
	}
	s.lists = append(s.lists, l)
}

// match returns the entry of l that holds v, as MISP reports it in "matched".
func (l warninglist) match(v string) (string, bool) {
	if l.entries[v] {
		return v, true
	}
	if a, err := netip.ParseAddr(v); err == nil {
		for _, p := range l.blocks {
			if p.Contains(a.Unmap()) {
				return p.String(), true
			}
		}
	}
	return "", false
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
		if e, ok := l.match(strings.TrimSpace(v)); ok {
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
		s.mu.Lock()
		w.Sighting = append([]json.RawMessage{}, a.sightings...)
		s.mu.Unlock()
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
