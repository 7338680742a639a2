package misptest

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func (s *Server) addSighting(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Method != http.MethodPost {
		writeError(w, r, http.StatusMethodNotAllowed, "This action is only accessible via POST request.")
		return
	}
	p := map[string]json.RawMessage{}
	if isJSON(r) && len(bytes.TrimSpace(body)) > 0 {
		var ok bool
		if p, ok = params(body, "request", "Sighting"); !ok {
			writeError(w, r, http.StatusMethodNotAllowed, msgBadJSON)
			return
		}
	}
	var values []string
	if raw, ok := p["values"]; ok {
		if err := json.Unmarshal(raw, &values); err != nil {
			if v := scalar(raw); v != "" {
				values = []string{v}
			}
		}
	} else if v := scalar(p["value"]); v != "" {
		values = []string{v}
	}
	typ := "0"
	if raw, ok := p["type"]; ok && string(raw) != "null" {
		typ = scalar(raw)
	}
	source := strings.TrimSpace(scalar(p["source"]))
	when := time.Now().Unix()
	if ts, err := strconv.ParseInt(scalar(p["timestamp"]), 10, 64); err == nil && ts > 0 {
		when = ts
	}

	if len(values) == 0 {
		writeJSON(w, http.StatusOK, map[string]string{"message": msgNoValues})
		return
	}
	if typ != "0" && typ != "1" && typ != "2" {
		writeJSON(w, http.StatusOK, map[string]string{"message": msgBadType})
		return
	}
	var hits []*attribute
	for _, a := range s.attrs {
		if a.deleted {
			continue
		}
		for _, v := range values {
			if strings.EqualFold(v, a.value1) || (a.value2 != "" && strings.EqualFold(v, a.value2)) {
				hits = append(hits, a)
				break
			}
		}
	}
	if len(hits) == 0 {
		writeJSON(w, http.StatusOK, map[string]string{"message": msgNoMatch})
		return
	}
	// Each hit gets a sighting of the fake's own organisation, shown by later searches with
	// includeSightings; MISP answers with the last one it created.
	s.mu.Lock()
	var last wireSighting
	for _, a := range hits {
		s.sightingID++
		last = wireSighting{
			ID:           strconv.Itoa(s.sightingID),
			AttributeID:  a.id,
			EventID:      a.event.ID,
			OrgID:        "1",
			DateSighting: strconv.FormatInt(when, 10),
			UUID:         newUUID(),
			Source:       source,
			Type:         typ,
		}
		stored := storedSighting{wireSighting: last, AttributeUUID: a.uuid, Organisation: s.org}
		raw, err := json.Marshal(stored)
		if err != nil {
			panic(err) // a struct of strings always marshals
		}
		a.sightings = append(a.sightings, raw)
	}
	s.sightings = append(s.sightings, SightingAdd{Values: values, Type: typ, Source: source})
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"Sighting": last})
}

// Organisation names the fake instance's own organisation, which the sightings it records
// are from: MISP's default is "ORGNAME", as a fresh install names it.
func (s *Server) Organisation(name, uuid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.org = wireSightingOrg{ID: "1", Name: name, UUID: uuid}
}

// storedSighting is a sighting as restSearch's includeSightings shows it.
type storedSighting struct {
	wireSighting
	AttributeUUID string          `json:"attribute_uuid"`
	Organisation  wireSightingOrg `json:"Organisation"`
}

// wireSightingOrg is the organisation of a sighting (the fake's own: id 1).
type wireSightingOrg struct {
	ID   string `json:"id"`
	UUID string `json:"uuid"`
	Name string `json:"name"`
}

type wireSighting struct {
	ID           string `json:"id"`
	AttributeID  string `json:"attribute_id"`
	EventID      string `json:"event_id"`
	OrgID        string `json:"org_id"`
	DateSighting string `json:"date_sighting"`
	UUID         string `json:"uuid"`
	Source       string `json:"source"`
	Type         string `json:"type"`
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
