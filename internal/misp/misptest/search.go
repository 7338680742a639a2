package misptest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

func (s *Server) search(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Method == http.MethodGet {
		writeError(w, r, http.StatusBadRequest, msgGetSearch)
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		writeError(w, r, http.StatusBadRequest, msgNoBody)
		return
	}
	p := map[string]json.RawMessage{}
	if isJSON(r) {
		var ok bool
		if p, ok = params(body, "request"); !ok {
			writeError(w, r, http.StatusMethodNotAllowed, msgBadJSON)
			return
		}
	} // else: like MISP (issue #8841), the JSON is not parsed and every filter is dropped
	if f := scalar(p["returnFormat"]); f != "" && f != "json" {
		writeError(w, r, http.StatusNotFound, "Invalid output format.")
		return
	}
	values := parseFilter(p["value"], true)
	types := parseFilter(p["type"], false)
	withContext := truthy(p["includeContext"])
	opts := wireOptions{
		eventTags: truthy(p["includeEventTags"]) || truthy(p["includeDecayScore"]), // decay forces event tags
		sightings: truthy(p["includeSightings"]),
		warnings:  truthy(p["includeWarninglistHits"]),
		decay:     truthy(p["includeDecayScore"]),
	}

	var matched []*attribute
	for _, a := range s.attrs {
		if !a.deleted && values.match(a.value1, a.value2) && types.match(a.typ, "") {
			matched = append(matched, a)
		}
	}
	if limit, _ := strconv.Atoi(scalar(p["limit"])); limit > 0 {
		page, _ := strconv.Atoi(scalar(p["page"]))
		if page < 1 {
			page = 1
		}
		start := min((page-1)*limit, len(matched))
		matched = matched[start:min(start+limit, len(matched))]
	}

	out := make([]wireAttribute, 0, len(matched))
	for _, a := range matched {
		wa := a.wire(withContext, opts.eventTags)
		s.annotate(&wa, a, opts)
		out = append(out, wa)
	}
	w.Header().Set("X-Result-Count", strconv.Itoa(len(out)))
	w.Header().Set("X-Export-Module-Used", "json")
	w.Header().Set("X-Response-Format", "json")
	writeJSON(w, http.StatusOK, map[string]any{"response": map[string]any{"Attribute": out}})
}

// filter is a parsed value or type filter of restSearch (AppModel::convert_filters).
type filter struct {
	set bool
	or  []string // any of these must match
	not []string // none of these may match
}

// parseFilter reads a string, a list or {"OR":[],"NOT":[]}. As in MISP, an "empty" filter
// ("", "0", [], null: PHP's empty()) is dropped, so the search returns everything; in a
// string, "&&" separates terms (split only when split is set), a leading "!" negates a term,
// and a leading or trailing "%" makes it a LIKE pattern.
func parseFilter(raw json.RawMessage, split bool) filter {
	var f filter
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return f
	}
	add := func(term string) {
		if rest, ok := strings.CutPrefix(term, "!"); ok {
			f.not = append(f.not, rest)
		} else {
			f.or = append(f.or, term)
		}
	}
	switch raw[0] {
	case '[':
		var list []json.RawMessage
		_ = json.Unmarshal(raw, &list)
		for _, e := range list {
			add(scalar(e))
		}
	case '{':
		var m map[string][]json.RawMessage
		_ = json.Unmarshal(raw, &m)
		for _, e := range m["OR"] {
			f.or = append(f.or, scalar(e))
		}
		for _, e := range m["NOT"] {
			f.not = append(f.not, scalar(e))
		}
	default:
		s := scalar(raw)
		if s == "" || s == "0" {
			return f
		}
		terms := []string{s}
		if split {
			terms = strings.Split(s, "&&")
		}
		for _, t := range terms {
			add(t)
		}
	}
	f.set = len(f.or) > 0 || len(f.not) > 0
	return f
}

// match reports whether an attribute with these two value halves passes the filter. For a
// non-composite attribute v2 is "", which is how MISP's value2 column looks.
func (f filter) match(v1, v2 string) bool {
	if !f.set {
		return true
	}
	for _, t := range f.not {
		if termMatch(t, v1) || termMatch(t, v2) {
			return false
		}
	}
	if len(f.or) == 0 {
		return true
	}
	for _, t := range f.or {
		if termMatch(t, v1) || termMatch(t, v2) {
			return true
		}
	}
	return false
}

// termMatch compares like MySQL with MISP's case-insensitive collation, and an IPv6 address
// in any spelling as the address it is: MISP normalises IPv6 terms (inet_pton, inet_ntop) and
// stores IPv6 values normalised.
func termMatch(term, v string) bool {
	if strings.HasPrefix(term, "%") || strings.HasSuffix(term, "%") {
		return like(strings.ToLower(term), strings.ToLower(v))
	}
	if a, err := netip.ParseAddr(term); err == nil && a.Is6() {
		b, err := netip.ParseAddr(v)
		return err == nil && a == b
	}
	return strings.EqualFold(term, v)
}

// like matches SQL LIKE with % wildcards (the _ wildcard is not emulated).
func like(pattern, s string) bool {
	parts := strings.Split(pattern, "%")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := len(parts) - 1
	for _, p := range parts[1:last] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[last])
}

// scalar returns a JSON string's value or a number's or boolean's literal text; "" otherwise.
func scalar(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	if raw[0] == '"' {
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	}
	switch s := string(raw); {
	case s == "true", s == "false":
		return s
	case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'):
		return s
	}
	return ""
}

// truthy reads MISP's boolean parameters: true, 1, "1", "true".
func truthy(raw json.RawMessage) bool {
	switch strings.ToLower(scalar(raw)) {
	case "true", "1":
		return true
	}
	return false
}
