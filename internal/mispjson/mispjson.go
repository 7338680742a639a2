// Package mispjson reads MISP's JSON: events and attributes as MISP's REST API, its feed
// export and PyMISP write them. It is the one reader of MISP's loosely typed fields, shared by
// the MISP client (restSearch answers), the feed loader (feed files) and the fake MISP of the
// tests, so the same event maps to the same intel.Event whichever way it arrives.
//
// MISP sends most numbers as strings (some versions and exporters as numbers), booleans as
// true/false, 0/1 or "0"/"1", and PHP empty arrays ([]) where it means an empty object. The
// scalar types here accept all of those, read a value of any other kind as empty and remember
// it, so a strict caller (the feed loader) can refuse the file (see Event.Check) while a
// tolerant one (the REST client) carries on with what it could read.
//
// It does no I/O and knows nothing of HTTP or of how answers are paged.
package mispjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/misp-relay/misp-relay/internal/intel"
)

// String is one of MISP's loosely typed scalars: a JSON string, a number's literal text, or
// null (read as ""). A value of another kind reads as "" and is kept (cut short) for Err.
type String struct {
	s   string
	bad string
}

// S returns a String holding s, for code that builds MISP JSON (the fake MISP, tests).
func S(s string) String { return String{s: s} }

// Text returns the value's text; "" for null, absent, or a value of another kind.
func (f String) Text() string { return f.s }

// Err says what was wrong with the value, or nil.
func (f String) Err() error { return kindError("a string or a number", f.bad) }

// MarshalJSON writes the text as a JSON string.
func (f String) MarshalJSON() ([]byte, error) { return json.Marshal(f.s) }

// UnmarshalJSON never fails: see String.
func (f *String) UnmarshalJSON(b []byte) error {
	*f = String{}
	switch {
	case len(b) == 0:
	case b[0] == '"':
		// Most MISP strings have no escapes: take the bytes as they are (the decoder has
		// checked the syntax) rather than decoding them a second time.
		if inner := b[1 : len(b)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
			f.s = string(inner)
			return nil
		}
		var s string
		if json.Unmarshal(b, &s) != nil {
			f.bad = cut(b)
			return nil
		}
		f.s = s
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		f.s = string(b)
	case string(b) == "null":
	default:
		f.bad = cut(b)
	}
	return nil
}

// Bool is one of MISP's booleans: true/false, 0/1, "0"/"1" or "true"/"false"; null is false.
// A value of another kind reads as false and is kept (cut short) for Err.
type Bool struct {
	v   bool
	set bool
	bad string
}

// B returns a Bool holding v.
func B(v bool) Bool { return Bool{v: v, set: true} }

// Value returns the boolean.
func (f Bool) Value() bool { return f.v }

// Set reports whether the JSON gave the field a boolean (null or a value of another kind
// count as not set), for fields whose absence means MISP's default rather than false, such as
// a tag's exportable.
func (f Bool) Set() bool { return f.set }

// Err says what was wrong with the value, or nil.
func (f Bool) Err() error { return kindError("a boolean", f.bad) }

// MarshalJSON writes a JSON boolean.
func (f Bool) MarshalJSON() ([]byte, error) { return json.Marshal(f.v) }

// UnmarshalJSON never fails: see Bool.
func (f *Bool) UnmarshalJSON(b []byte) error {
	*f = Bool{}
	switch strings.ToLower(string(bytes.TrimSpace(b))) {
	case "true", "1", `"1"`, `"true"`:
		f.v, f.set = true, true
	case "false", "0", `"0"`, `"false"`, `""`:
		f.set = true
	case "null":
	default:
		f.bad = cut(b)
	}
	return nil
}

// cut keeps enough of a value of the wrong kind to find it in a file: encoding/json does not
// add the field's path to what an UnmarshalJSON method reports.
func cut(b []byte) string {
	const limit = 40
	if len(b) > limit {
		return string(b[:limit]) + "..."
	}
	return string(b)
}

func kindError(want, bad string) error {
	if bad == "" {
		return nil
	}
	return fmt.Errorf("want %s, got %s", want, bad)
}

// Tag is an event or attribute tag. On an attribute of a restSearch answer asked with
// includeEventTags (or includeDecayScore, which forces it), MISP adds the event's tags to the
// attribute's and marks them "inherited": 1. Exportable is a boolean in MISP (a tinyint(1)
// column); absent, MISP's default is true (see Bool.Set).
type Tag struct {
	Name       String `json:"name"`
	Colour     String `json:"colour"`
	Exportable Bool   `json:"exportable"`
	Inherited  Bool   `json:"inherited"`
}

// Sighting is one of an attribute's sightings (includeSightings; feeds may carry them too).
type Sighting struct {
	Type         String `json:"type"`          // "0" sighting, "1" false positive, "2" expiration
	DateSighting String `json:"date_sighting"` // epoch seconds
	Source       String `json:"source"`
	Organisation Org    `json:"Organisation"`
}

// Warning is a warninglist hit restSearch adds to an attribute (includeWarninglistHits).
type Warning struct {
	Value               String `json:"value"`
	Match               String `json:"match"`
	WarninglistID       String `json:"warninglist_id"`
	WarninglistName     String `json:"warninglist_name"`
	WarninglistCategory String `json:"warninglist_category"`
}

// DecayScore is one decaying model's score of an attribute (includeDecayScore). The score is
// a JSON number; String keeps its literal text.
type DecayScore struct {
	Score         String `json:"score"`
	Decayed       Bool   `json:"decayed"`
	DecayingModel struct {
		ID   String `json:"id"`
		Name String `json:"name"`
	} `json:"DecayingModel"`
}

// Org is an organisation block (Orgc, the creator).
type Org struct {
	Name String `json:"name"`
	UUID String `json:"uuid"`
}

// Event is a MISP event: a feed file's Event, or the Event block includeContext adds to a
// restSearch attribute (which has no Attribute or Object lists).
type Event struct {
	UUID             String      `json:"uuid"`
	Info             String      `json:"info"`
	Date             String      `json:"date"`
	Timestamp        String      `json:"timestamp"`
	PublishTimestamp String      `json:"publish_timestamp"`
	ThreatLevelID    String      `json:"threat_level_id"`
	Analysis         String      `json:"analysis"`
	Distribution     String      `json:"distribution"`
	Published        Bool        `json:"published"`
	Orgc             Org         `json:"Orgc"`
	Tag              []Tag       `json:"Tag"`
	Attribute        []Attribute `json:"Attribute"`
	Object           []Object    `json:"Object"`
}

// Object is a MISP object of a feed event: a group of attributes.
type Object struct {
	Distribution String      `json:"distribution"`
	Deleted      Bool        `json:"deleted"`
	Attribute    []Attribute `json:"Attribute"`
}

// Attribute is a MISP attribute. Event is set in restSearch answers asked with includeContext.
type Attribute struct {
	UUID               String       `json:"uuid"`
	Type               String       `json:"type"`
	Category           String       `json:"category"`
	Value              String       `json:"value"`
	Comment            String       `json:"comment"`
	ToIDS              Bool         `json:"to_ids"`
	Deleted            Bool         `json:"deleted"`
	DisableCorrelation Bool         `json:"disable_correlation"`
	Timestamp          String       `json:"timestamp"`
	Distribution       String       `json:"distribution"`
	FirstSeen          String       `json:"first_seen"`
	LastSeen           String       `json:"last_seen"`
	ObjectRelation     String       `json:"object_relation"`
	Tag                []Tag        `json:"Tag"`
	Sighting           []Sighting   `json:"Sighting"`
	Warnings           []Warning    `json:"warnings"`
	DecayScore         []DecayScore `json:"decay_score"`
	Event              Event        `json:"Event"`
}

// Intel returns what the relay keeps of the attribute.
func (a *Attribute) Intel() intel.Attribute {
	return intel.Attribute{
		UUID:      a.UUID.Text(),
		Type:      a.Type.Text(),
		Category:  a.Category.Text(),
		Value:     a.Value.Text(),
		ToIDS:     a.ToIDS.Value(),
		Timestamp: EpochSeconds(a.Timestamp.Text()),
		FirstSeen: SeenTime(a.FirstSeen.Text()),
		LastSeen:  SeenTime(a.LastSeen.Text()),
		Tags:      ownTagNames(a.Tag),
		Warnings:  warnings(a.Warnings),
		Sightings: Summarize(a.Sighting),
		Decay:     decayScores(a.DecayScore),
	}
}

// InheritedTagNames returns the names of the tags MISP copied from the event onto the
// attribute, for an Event block that lacks its own Tag list.
func (a *Attribute) InheritedTagNames() []string {
	var out []string
	for _, t := range a.Tag {
		if n := t.Name.Text(); n != "" && t.Inherited.Value() {
			out = append(out, n)
		}
	}
	return out
}

// Intel returns what the relay keeps of the event, without attributes.
func (e *Event) Intel() intel.Event {
	return intel.Event{
		UUID:        e.UUID.Text(),
		Info:        e.Info.Text(),
		Date:        strings.TrimSpace(e.Date.Text()),
		Timestamp:   EpochSeconds(e.Timestamp.Text()),
		ThreatLevel: ThreatLevel(e.ThreatLevelID.Text()),
		Org:         e.Orgc.Name.Text(),
		OrgUUID:     strings.TrimSpace(e.Orgc.UUID.Text()),
		Tags:        TagNames(e.Tag),
		Published:   e.Published.Value(),
		Analysis:    AnalysisLevel(e.Analysis.Text()),
	}
}

// TagNames returns the tags' names in order, leaving out empty ones; nil when none.
func TagNames(tags []Tag) []string {
	var out []string
	for _, t := range tags {
		if n := t.Name.Text(); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// ownTagNames is TagNames without the tags inherited from the event.
func ownTagNames(tags []Tag) []string {
	var out []string
	for _, t := range tags {
		if n := t.Name.Text(); n != "" && !t.Inherited.Value() {
			out = append(out, n)
		}
	}
	return out
}

func warnings(ws []Warning) []intel.WarninglistHit {
	var out []intel.WarninglistHit
	for _, w := range ws {
		name := strings.TrimSpace(w.WarninglistName.Text())
		if name == "" {
			name = "#" + strings.TrimSpace(w.WarninglistID.Text())
			if name == "#" {
				continue // a hit that names no list explains nothing
			}
		}
		out = append(out, intel.WarninglistHit{
			List:     name,
			Match:    w.Match.Text(),
			Category: w.WarninglistCategory.Text(),
		})
	}
	return out
}

func decayScores(ds []DecayScore) []intel.DecayScore {
	var out []intel.DecayScore
	for _, d := range ds {
		score, err := strconv.ParseFloat(strings.TrimSpace(d.Score.Text()), 64)
		if err != nil || math.IsNaN(score) || math.IsInf(score, 0) { // no score to reason about
			continue
		}
		out = append(out, intel.DecayScore{
			Model:   strings.TrimSpace(d.DecayingModel.Name.Text()),
			Score:   score,
			Decayed: d.Decayed.Value(),
		})
	}
	return out
}

// Summarize counts sightings by type and keeps the dates and sources the relay reports.
// Sightings of an unknown type are ignored.
func Summarize(ss []Sighting) intel.Sightings {
	var out intel.Sightings
	for _, s := range ss {
		when := EpochSeconds(s.DateSighting.Text())
		switch strings.TrimSpace(s.Type.Text()) {
		case "0", "":
			// MISP's default type is 0; older exports leave it out.
			out.Seen++
			if !when.IsZero() && (out.First.IsZero() || when.Before(out.First)) {
				out.First = when
			}
			if when.After(out.Last) {
				out.Last = when
			}
			src := strings.TrimSpace(s.Source.Text())
			if src == "" {
				src = strings.TrimSpace(s.Organisation.Name.Text())
			}
			if src != "" && len(out.Sources) < intel.MaxSightingSources && !slices.Contains(out.Sources, src) {
				out.Sources = append(out.Sources, src)
			}
		case "1":
			out.FalsePositive++
		case "2":
			out.Expiration++
			if !when.IsZero() && (out.Expires.IsZero() || when.Before(out.Expires)) {
				out.Expires = when
			}
		}
	}
	return out
}

// AnalysisLevel maps MISP's analysis ("0" initial, "1" ongoing, "2" complete).
func AnalysisLevel(s string) intel.Analysis {
	switch strings.TrimSpace(s) {
	case "0":
		return intel.AnalysisInitial
	case "1":
		return intel.AnalysisOngoing
	case "2":
		return intel.AnalysisComplete
	}
	return intel.AnalysisUnknown
}

// Check returns the first field of the event, its tags, attributes and objects that held a
// value of the wrong kind, for readers that refuse such data.
func (e *Event) Check() error {
	for _, f := range []String{e.UUID, e.Info, e.Date, e.Timestamp, e.ThreatLevelID, e.Analysis, e.Orgc.Name, e.Orgc.UUID} {
		if err := f.Err(); err != nil {
			return err
		}
	}
	if err := e.Published.Err(); err != nil {
		return err
	}
	if err := checkTags(e.Tag); err != nil {
		return err
	}
	for i := range e.Attribute {
		if err := e.Attribute[i].check(); err != nil {
			return err
		}
	}
	for _, o := range e.Object {
		if err := o.Deleted.Err(); err != nil {
			return err
		}
		for i := range o.Attribute {
			if err := o.Attribute[i].check(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *Attribute) check() error {
	for _, f := range []String{a.UUID, a.Type, a.Category, a.Value, a.Timestamp, a.FirstSeen, a.LastSeen} {
		if err := f.Err(); err != nil {
			return err
		}
	}
	for _, f := range []Bool{a.ToIDS, a.Deleted} {
		if err := f.Err(); err != nil {
			return err
		}
	}
	for _, s := range a.Sighting {
		for _, f := range []String{s.Type, s.DateSighting, s.Source, s.Organisation.Name} {
			if err := f.Err(); err != nil {
				return err
			}
		}
	}
	for _, w := range a.Warnings {
		for _, f := range []String{w.WarninglistName, w.Match, w.WarninglistCategory} {
			if err := f.Err(); err != nil {
				return err
			}
		}
	}
	for _, d := range a.DecayScore {
		for _, f := range []String{d.Score, d.DecayingModel.Name} {
			if err := f.Err(); err != nil {
				return err
			}
		}
		if err := d.Decayed.Err(); err != nil {
			return err
		}
	}
	return checkTags(a.Tag)
}

func checkTags(tags []Tag) error {
	for _, t := range tags {
		if err := t.Name.Err(); err != nil {
			return err
		}
		if err := t.Inherited.Err(); err != nil {
			return err
		}
	}
	return nil
}

// ThreatLevel maps threat_level_id ("1".."4") to 1..4, and anything else to 0, so a malformed
// record can never pose as a severity it does not state.
func ThreatLevel(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > 4 {
		return 0
	}
	return n
}

// EpochSeconds reads MISP's timestamp fields (seconds since the epoch, sent as a string). "0"
// and unreadable values give the zero time ("absent or unreadable").
func EpochSeconds(s string) time.Time {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.Unix(n, 0).UTC()
}

// SeenTime reads first_seen/last_seen: MISP stores them as microseconds since the epoch (and
// sends that number as a string), while exports and feeds written by PyMISP carry ISO-8601
// text. "", "null" and unreadable values give the zero time (unset).
func SeenTime(s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 {
			return time.Time{}
		}
		return time.UnixMicro(n).UTC()
	}
	// PyMISP writes ISO-8601 with a colon offset and microseconds; other tools drop the colon,
	// the offset or the time of day.
	for _, layout := range [...]string{
		time.RFC3339Nano,
		"2006-01-02T15:04:05.999999999Z0700",
		"2006-01-02T15:04:05.999999999",
		"2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999",
		"2006-01-02",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}
