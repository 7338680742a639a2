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
// Lists are read into what the relay keeps, not element by element (see List and
// Sightings): the caps on the bytes read from MISP do not bound what they decode to.
//
// It does no I/O and knows nothing of HTTP or of how answers are paged.
package mispjson

import (
	"math"
	"strconv"
	"strings"

	"github.com/misp-relay/misp-relay/internal/intel"
)

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

// Event is a MISP event of a feed file: its header and its attributes, loose and in objects.
type Event struct {
	EventHeader
	Attribute []Attribute `json:"Attribute"`
	Object    []Object    `json:"Object"`
}

// EventHeader is what MISP says of an event besides its attributes: the Event block
// includeContext adds to a restSearch attribute is one. That block has no attribute lists,
// and lists sent there anyway are skipped unread: one attribute's context must not cost
// what a whole event's attributes do.
type EventHeader struct {
	UUID             String    `json:"uuid"`
	Info             String    `json:"info"`
	Date             String    `json:"date"`
	Timestamp        String    `json:"timestamp"`
	PublishTimestamp String    `json:"publish_timestamp"`
	ThreatLevelID    String    `json:"threat_level_id"`
	Analysis         String    `json:"analysis"`
	Distribution     String    `json:"distribution"`
	Published        Bool      `json:"published"`
	Orgc             Org       `json:"Orgc"`
	Tag              List[Tag] `json:"Tag"`
}

// Object is a MISP object of a feed event: a group of attributes.
type Object struct {
	Name         String      `json:"name"`
	Distribution String      `json:"distribution"`
	Deleted      Bool        `json:"deleted"`
	Attribute    []Attribute `json:"Attribute"`
}

// Attribute is a MISP attribute. Event is set in restSearch answers asked with includeContext.
// Its lists keep what the relay uses (see List and Sightings), whatever their length.
type Attribute struct {
	UUID               String           `json:"uuid"`
	Type               String           `json:"type"`
	Category           String           `json:"category"`
	Value              String           `json:"value"`
	Comment            String           `json:"comment"`
	ToIDS              Bool             `json:"to_ids"`
	Deleted            Bool             `json:"deleted"`
	DisableCorrelation Bool             `json:"disable_correlation"`
	Timestamp          String           `json:"timestamp"`
	Distribution       String           `json:"distribution"`
	FirstSeen          String           `json:"first_seen"`
	LastSeen           String           `json:"last_seen"`
	ObjectRelation     String           `json:"object_relation"`
	Tag                List[Tag]        `json:"Tag"`
	Sighting           Sightings        `json:"Sighting"`
	Warnings           List[Warning]    `json:"warnings"`
	DecayScore         List[DecayScore] `json:"decay_score"`
	Event              EventHeader      `json:"Event"`
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
		Comment:   intel.CleanComment(a.Comment.Text()),
		Object:    intel.Object{Relation: strings.TrimSpace(a.ObjectRelation.Text())},
		Tags:      ownTagNames(a.Tag.All()),
		Warnings:  warnings(a.Warnings.All()),
		Sightings: a.Sighting.Summary(),
		Decay:     decayScores(a.DecayScore.All()),
	}
}

// InheritedTagNames returns the names of the tags MISP copied from the event onto the
// attribute, for an Event block that lacks its own Tag list.
func (a *Attribute) InheritedTagNames() []string {
	var out []string
	for _, t := range a.Tag.All() {
		if n := t.Name.Text(); n != "" && t.Inherited.Value() {
			out = append(out, n)
		}
	}
	return out
}

// Intel returns what the relay keeps of the event, without attributes.
func (e *EventHeader) Intel() intel.Event {
	return intel.Event{
		UUID:        e.UUID.Text(),
		Info:        e.Info.Text(),
		Date:        strings.TrimSpace(e.Date.Text()),
		Timestamp:   EpochSeconds(e.Timestamp.Text()),
		ThreatLevel: ThreatLevel(e.ThreatLevelID.Text()),
		Org:         e.Orgc.Name.Text(),
		OrgUUID:     strings.TrimSpace(e.Orgc.UUID.Text()),
		Tags:        TagNames(e.Tag.All()),
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
			Value:    w.Value.Text(),
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

// Check returns the first field of the event, its tags, attributes and objects that held a
// value of the wrong kind, for readers that refuse such data.
func (e *Event) Check() error {
	if err := e.check(); err != nil {
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
		if err := o.Name.Err(); err != nil {
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

func (e *EventHeader) check() error {
	for _, f := range []String{e.UUID, e.Info, e.Date, e.Timestamp, e.ThreatLevelID, e.Analysis, e.Orgc.Name, e.Orgc.UUID} {
		if err := f.Err(); err != nil {
			return err
		}
	}
	if err := e.Published.Err(); err != nil {
		return err
	}
	return checkTags(&e.Tag)
}

func (a *Attribute) check() error {
	for _, f := range []String{a.UUID, a.Type, a.Category, a.Value, a.Comment, a.ObjectRelation, a.Timestamp, a.FirstSeen, a.LastSeen} {
		if err := f.Err(); err != nil {
			return err
		}
	}
	for _, f := range []Bool{a.ToIDS, a.Deleted} {
		if err := f.Err(); err != nil {
			return err
		}
	}
	if err := a.Sighting.Err(); err != nil {
		return err
	}
	if err := a.Warnings.Err(); err != nil {
		return err
	}
	for _, w := range a.Warnings.All() {
		for _, f := range []String{w.WarninglistName, w.Match, w.WarninglistCategory, w.Value} {
			if err := f.Err(); err != nil {
				return err
			}
		}
	}
	if err := a.DecayScore.Err(); err != nil {
		return err
	}
	for _, d := range a.DecayScore.All() {
		for _, f := range []String{d.Score, d.DecayingModel.Name} {
			if err := f.Err(); err != nil {
				return err
			}
		}
		if err := d.Decayed.Err(); err != nil {
			return err
		}
	}
	return checkTags(&a.Tag)
}

// check returns the first of the sighting's fields that held a value of the wrong kind.
func (s *Sighting) check() error {
	for _, f := range []String{s.Type, s.DateSighting, s.Source, s.Organisation.Name} {
		if err := f.Err(); err != nil {
			return err
		}
	}
	return nil
}

func checkTags(tags *List[Tag]) error {
	if err := tags.Err(); err != nil {
		return err
	}
	for _, t := range tags.All() {
		if err := t.Name.Err(); err != nil {
			return err
		}
		if err := t.Inherited.Err(); err != nil {
			return err
		}
	}
	return nil
}
