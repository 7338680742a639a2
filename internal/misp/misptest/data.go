package misptest

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// event is an event as the fake stores it, with MISP's string ids assigned.
type event struct {
	ID, OrgcID                                string
	Date, ThreatLevelID, Info, UUID, Analysis string
	Timestamp, Distribution, PublishTimestamp string
	Published                                 bool
	Orgc                                      wireOrg
	Tags                                      []tag
}

type tag struct {
	ID, Name, Colour string
	Exportable       bool
}

// attribute is an attribute as the fake stores it.
type attribute struct {
	id, uuid, typ, category, comment string
	value, value1, value2            string
	timestamp, distribution          string
	toIDS, deleted, disableCorr      bool
	firstSeen, lastSeen              json.RawMessage
	objectID                         string // "0" when not in an object
	objectRelation                   *string
	objectDistribution               string
	tags                             []tag
	event                            *event
	sightings                        []json.RawMessage // as given, sent with includeSightings
	decay                            json.RawMessage   // as given, sent with includeDecayScore
}

// feed* are the parts of MISP's feed / event JSON the fake reads. Scalars MISP sends as
// either strings or numbers are kept raw.
type feedEvent struct {
	UUID             string          `json:"uuid"`
	Info             string          `json:"info"`
	Date             string          `json:"date"`
	Timestamp        json.RawMessage `json:"timestamp"`
	PublishTimestamp json.RawMessage `json:"publish_timestamp"`
	ThreatLevelID    json.RawMessage `json:"threat_level_id"`
	Analysis         json.RawMessage `json:"analysis"`
	Distribution     json.RawMessage `json:"distribution"`
	Published        json.RawMessage `json:"published"`
	Orgc             struct {
		Name string `json:"name"`
		UUID string `json:"uuid"`
	} `json:"Orgc"`
	Tag       []feedTag       `json:"Tag"`
	Attribute []feedAttribute `json:"Attribute"`
	Object    []struct {
		Distribution json.RawMessage `json:"distribution"`
		Attribute    []feedAttribute `json:"Attribute"`
	} `json:"Object"`
}

type feedTag struct {
	Name       string          `json:"name"`
	Colour     string          `json:"colour"`
	Exportable json.RawMessage `json:"exportable"`
}

type feedAttribute struct {
	UUID               string          `json:"uuid"`
	Type               string          `json:"type"`
	Category           string          `json:"category"`
	Value              string          `json:"value"`
	Comment            string          `json:"comment"`
	ToIDS              json.RawMessage `json:"to_ids"`
	Timestamp          json.RawMessage `json:"timestamp"`
	Distribution       json.RawMessage `json:"distribution"`
	Deleted            json.RawMessage `json:"deleted"`
	DisableCorrelation json.RawMessage `json:"disable_correlation"`
	FirstSeen          json.RawMessage `json:"first_seen"`
	LastSeen           json.RawMessage `json:"last_seen"`
	ObjectRelation     *string         `json:"object_relation"`
	Tag                []feedTag       `json:"Tag"`
	// Sighting and decay_score are passed through as given: events exported from MISP carry
	// sightings, and tests give decay scores to attributes (a feed has none).
	Sighting   []json.RawMessage `json:"Sighting"`
	DecayScore json.RawMessage   `json:"decay_score"`
}

// builder turns feed events into stored events, numbering them like a MISP database would.
type builder struct {
	events  []*event
	attrs   []*attribute
	objects int
	tagIDs  map[string]string
	orgIDs  map[string]string
}

func (b *builder) addEvent(raw []byte) error {
	var wrapped struct {
		Event *feedEvent `json:"Event"`
	}
	if err := json.Unmarshal(raw, &wrapped); err != nil {
		return err
	}
	fe := wrapped.Event
	if fe == nil {
		fe = new(feedEvent)
		if err := json.Unmarshal(raw, fe); err != nil {
			return err
		}
	}
	if fe.UUID == "" {
		return errors.New("the event has no uuid")
	}
	ev := &event{
		ID:               strconv.Itoa(len(b.events) + 1),
		Date:             fe.Date,
		ThreatLevelID:    orDefault(scalar(fe.ThreatLevelID), "4"),
		Info:             fe.Info,
		UUID:             fe.UUID,
		Analysis:         orDefault(scalar(fe.Analysis), "0"),
		Timestamp:        orDefault(scalar(fe.Timestamp), "0"),
		PublishTimestamp: orDefault(scalar(fe.PublishTimestamp), "0"),
		Distribution:     orDefault(scalar(fe.Distribution), "3"),
		Published:        truthy(fe.Published),
		Orgc:             wireOrg{Name: fe.Orgc.Name, UUID: fe.Orgc.UUID},
		Tags:             b.tags(fe.Tag),
	}
	ev.Orgc.ID = b.orgID(fe.Orgc.Name)
	ev.OrgcID = ev.Orgc.ID
	b.events = append(b.events, ev)

	for _, fa := range fe.Attribute {
		b.addAttribute(ev, fa, "0", "")
	}
	for _, obj := range fe.Object {
		b.objects++
		id := strconv.Itoa(b.objects)
		for _, fa := range obj.Attribute {
			b.addAttribute(ev, fa, id, orDefault(scalar(obj.Distribution), "5"))
		}
	}
	return nil
}

func (b *builder) addAttribute(ev *event, fa feedAttribute, objectID, objectDist string) {
	a := &attribute{
		id:                 strconv.Itoa(len(b.attrs) + 1),
		uuid:               fa.UUID,
		typ:                fa.Type,
		category:           fa.Category,
		comment:            fa.Comment,
		value:              fa.Value,
		value1:             fa.Value,
		timestamp:          orDefault(scalar(fa.Timestamp), "0"),
		distribution:       orDefault(scalar(fa.Distribution), "5"),
		toIDS:              truthy(fa.ToIDS),
		deleted:            truthy(fa.Deleted),
		disableCorr:        truthy(fa.DisableCorrelation),
		firstSeen:          rawOrNull(fa.FirstSeen),
		lastSeen:           rawOrNull(fa.LastSeen),
		objectID:           objectID,
		objectRelation:     fa.ObjectRelation,
		objectDistribution: objectDist,
		tags:               b.tags(fa.Tag),
		event:              ev,
		sightings:          fa.Sighting,
		decay:              fa.DecayScore,
	}
	if a.uuid == "" {
		a.uuid = newUUID()
	}
	// MISP splits composite types ("domain|ip", "filename|md5") into value1 and value2.
	if strings.Contains(a.typ, "|") {
		a.value1, a.value2, _ = strings.Cut(a.value, "|")
	}
	b.attrs = append(b.attrs, a)
}

func (b *builder) tags(in []feedTag) []tag {
	var out []tag
	for _, t := range in {
		id, ok := b.tagIDs[t.Name]
		if !ok {
			id = strconv.Itoa(len(b.tagIDs) + 1)
			b.tagIDs[t.Name] = id
		}
		colour := t.Colour
		if colour == "" {
			colour = "#0088cc"
		}
		out = append(out, tag{ID: id, Name: t.Name, Colour: colour, Exportable: len(t.Exportable) == 0 || truthy(t.Exportable)})
	}
	return out
}

// orgID numbers creator organisations from 2; 1 is the fake instance's own organisation.
func (b *builder) orgID(name string) string {
	id, ok := b.orgIDs[name]
	if !ok {
		id = strconv.Itoa(len(b.orgIDs) + 2)
		b.orgIDs[name] = id
	}
	return id
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func rawOrNull(raw json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 {
		return json.RawMessage("null")
	}
	return raw
}

// The wire* types are attributes restSearch output; field order follows MISP 2.5's.

type wireAttribute struct {
	ID                 string            `json:"id"`
	EventID            string            `json:"event_id"`
	ObjectID           string            `json:"object_id"`
	ObjectRelation     *string           `json:"object_relation"`
	Category           string            `json:"category"`
	Type               string            `json:"type"`
	ToIDS              bool              `json:"to_ids"`
	UUID               string            `json:"uuid"`
	Timestamp          string            `json:"timestamp"`
	Distribution       string            `json:"distribution"`
	SharingGroupID     string            `json:"sharing_group_id"`
	Comment            string            `json:"comment"`
	Deleted            bool              `json:"deleted"`
	DisableCorrelation bool              `json:"disable_correlation"`
	FirstSeen          json.RawMessage   `json:"first_seen"`
	LastSeen           json.RawMessage   `json:"last_seen"`
	Value              string            `json:"value"`
	Event              any               `json:"Event"`
	Object             *wireObjectRef    `json:"Object,omitempty"`
	Tag                []any             `json:"Tag,omitempty"`
	Sighting           []json.RawMessage `json:"Sighting,omitempty"`
	Warnings           []wireWarning     `json:"warnings,omitempty"`
	DecayScore         json.RawMessage   `json:"decay_score,omitempty"`
}

// wireWarning is a warninglist hit restSearch adds with includeWarninglistHits.
type wireWarning struct {
	Match    string `json:"match"`
	Value    string `json:"value"`
	ID       string `json:"warninglist_id"`
	Name     string `json:"warninglist_name"`
	Category string `json:"warninglist_category"`
}

type wireObjectRef struct {
	ID             string `json:"id"`
	Distribution   string `json:"distribution"`
	SharingGroupID string `json:"sharing_group_id"`
}

// wireShortEvent is the Event block without includeContext.
type wireShortEvent struct {
	OrgID        string `json:"org_id"`
	Distribution string `json:"distribution"`
	ID           string `json:"id"`
	Info         string `json:"info"`
	OrgcID       string `json:"orgc_id"`
	UUID         string `json:"uuid"`
}

// wireContextEvent is the Event block with includeContext.
type wireContextEvent struct {
	ID               string         `json:"id"`
	OrgcID           string         `json:"orgc_id"`
	OrgID            string         `json:"org_id"`
	Date             string         `json:"date"`
	ThreatLevelID    string         `json:"threat_level_id"`
	Info             string         `json:"info"`
	Published        bool           `json:"published"`
	UUID             string         `json:"uuid"`
	Analysis         string         `json:"analysis"`
	Timestamp        string         `json:"timestamp"`
	Distribution     string         `json:"distribution"`
	PublishTimestamp string         `json:"publish_timestamp"`
	SharingGroupID   string         `json:"sharing_group_id"`
	ExtendsUUID      string         `json:"extends_uuid"`
	Tag              []wireEventTag `json:"Tag"`
	Orgc             wireOrg        `json:"Orgc"`
}

type wireOrg struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	UUID  string `json:"uuid"`
	Local bool   `json:"local"`
}

type wireEventTag struct {
	Local          bool   `json:"local"`
	ID             string `json:"id"`
	Name           string `json:"name"`
	Colour         string `json:"colour"`
	NumericalValue *int   `json:"numerical_value"`
}

type wireAttributeTag struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	Colour         string `json:"colour"`
	NumericalValue *int   `json:"numerical_value"`
	Local          bool   `json:"local"`
}

type wireInheritedTag struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	Colour         string `json:"colour"`
	Exportable     bool   `json:"exportable"`
	OrgID          string `json:"org_id"`
	UserID         string `json:"user_id"`
	HideTag        bool   `json:"hide_tag"`
	NumericalValue *int   `json:"numerical_value"`
	IsGalaxy       bool   `json:"is_galaxy"`
	IsCustomGalaxy bool   `json:"is_custom_galaxy"`
	Inherited      int    `json:"inherited"`
}

// wire renders a as one element of response.Attribute.
func (a *attribute) wire(withContext, eventTags bool) wireAttribute {
	ev := a.event
	w := wireAttribute{
		ID:                 a.id,
		EventID:            ev.ID,
		ObjectID:           a.objectID,
		ObjectRelation:     a.objectRelation,
		Category:           a.category,
		Type:               a.typ,
		ToIDS:              a.toIDS,
		UUID:               a.uuid,
		Timestamp:          a.timestamp,
		Distribution:       a.distribution,
		SharingGroupID:     "0",
		Comment:            a.comment,
		Deleted:            a.deleted,
		DisableCorrelation: a.disableCorr,
		FirstSeen:          a.firstSeen,
		LastSeen:           a.lastSeen,
		Value:              a.value,
	}
	if withContext {
		tags := make([]wireEventTag, 0, len(ev.Tags))
		for _, t := range ev.Tags {
			tags = append(tags, wireEventTag{ID: t.ID, Name: t.Name, Colour: t.Colour})
		}
		w.Event = wireContextEvent{
			ID: ev.ID, OrgcID: ev.OrgcID, OrgID: "1", Date: ev.Date, ThreatLevelID: ev.ThreatLevelID,
			Info: ev.Info, Published: ev.Published, UUID: ev.UUID, Analysis: ev.Analysis,
			Timestamp: ev.Timestamp, Distribution: ev.Distribution, PublishTimestamp: ev.PublishTimestamp,
			SharingGroupID: "0", Tag: tags, Orgc: ev.Orgc,
		}
	} else {
		w.Event = wireShortEvent{OrgID: "1", Distribution: ev.Distribution, ID: ev.ID, Info: ev.Info, OrgcID: ev.OrgcID, UUID: ev.UUID}
	}
	if a.objectID != "0" {
		w.Object = &wireObjectRef{ID: a.objectID, Distribution: a.objectDistribution, SharingGroupID: "0"}
	}
	for _, t := range a.tags {
		w.Tag = append(w.Tag, wireAttributeTag{ID: t.ID, Name: t.Name, Colour: t.Colour})
	}
	if eventTags {
		for _, t := range ev.Tags {
			w.Tag = append(w.Tag, wireInheritedTag{
				ID: t.ID, Name: t.Name, Colour: t.Colour, Exportable: t.Exportable, OrgID: "0", UserID: "0",
				IsGalaxy: strings.HasPrefix(t.Name, "misp-galaxy:"), Inherited: 1,
			})
		}
	}
	return w
}
