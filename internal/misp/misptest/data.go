package misptest

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/mispjson"
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
	firstSeen, lastSeen              *string
	objectID                         string // "0" when not in an object
	objectRelation                   *string
	objectDistribution               string
	tags                             []tag
	event                            *event
	sightings                        []json.RawMessage // as given, sent with includeSightings
	decay                            json.RawMessage   // as given, sent with includeDecayScore
}

// passthrough is what the fake sends as a seed event gave it, byte for byte: sightings and
// decay scores, which the relay reads (with mispjson) and the fake must not normalise. It is
// read beside the mispjson.Event, attribute for attribute in the same order.
type passthrough struct {
	Sighting   []json.RawMessage `json:"Sighting"`
	DecayScore json.RawMessage   `json:"decay_score"`
}

type passthroughEvent struct {
	Attribute []passthrough `json:"Attribute"`
	Object    []struct {
		Attribute []passthrough `json:"Attribute"`
	} `json:"Object"`
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
		Event *mispjson.Event `json:"Event"`
	}
	if err := json.Unmarshal(raw, &wrapped); err != nil {
		return err
	}
	fe := wrapped.Event
	if fe == nil {
		fe = new(mispjson.Event)
		if err := json.Unmarshal(raw, fe); err != nil {
			return err
		}
	}
	var pass struct {
		Event *passthroughEvent `json:"Event"`
	}
	if err := json.Unmarshal(raw, &pass); err != nil {
		return err
	}
	pe := pass.Event
	if pe == nil {
		pe = new(passthroughEvent)
		if err := json.Unmarshal(raw, pe); err != nil {
			return err
		}
	}
	// Seed events are a test's own data: a field of the wrong kind is a mistake in the test,
	// refused as the feed loader refuses it.
	if err := fe.Check(); err != nil {
		return err
	}
	if fe.UUID.Text() == "" {
		return errors.New("the event has no uuid")
	}
	ev := &event{
		ID:               strconv.Itoa(len(b.events) + 1),
		Date:             fe.Date.Text(),
		ThreatLevelID:    orDefault(fe.ThreatLevelID.Text(), "4"),
		Info:             fe.Info.Text(),
		UUID:             fe.UUID.Text(),
		Analysis:         orDefault(fe.Analysis.Text(), "0"),
		Timestamp:        orDefault(fe.Timestamp.Text(), "0"),
		PublishTimestamp: orDefault(fe.PublishTimestamp.Text(), "0"),
		Distribution:     orDefault(fe.Distribution.Text(), "3"),
		Published:        fe.Published.Value(),
		Orgc:             wireOrg{Name: fe.Orgc.Name.Text(), UUID: fe.Orgc.UUID.Text()},
		Tags:             b.tags(fe.Tag.All()),
	}
	ev.Orgc.ID = b.orgID(ev.Orgc.Name)
	ev.OrgcID = ev.Orgc.ID
	b.events = append(b.events, ev)

	at := func(list []passthrough, i int) passthrough {
		if i < len(list) {
			return list[i]
		}
		return passthrough{}
	}
	for i := range fe.Attribute {
		b.addAttribute(ev, &fe.Attribute[i], at(pe.Attribute, i), "0", "")
	}
	for j, obj := range fe.Object {
		b.objects++
		id := strconv.Itoa(b.objects)
		var objPass []passthrough
		if j < len(pe.Object) {
			objPass = pe.Object[j].Attribute
		}
		for i := range obj.Attribute {
			b.addAttribute(ev, &obj.Attribute[i], at(objPass, i), id, orDefault(obj.Distribution.Text(), "5"))
		}
	}
	return nil
}

func (b *builder) addAttribute(ev *event, fa *mispjson.Attribute, pt passthrough, objectID, objectDist string) {
	a := &attribute{
		id:                 strconv.Itoa(len(b.attrs) + 1),
		uuid:               fa.UUID.Text(),
		typ:                fa.Type.Text(),
		category:           fa.Category.Text(),
		comment:            fa.Comment.Text(),
		value:              fa.Value.Text(),
		value1:             fa.Value.Text(),
		timestamp:          orDefault(fa.Timestamp.Text(), "0"),
		distribution:       orDefault(fa.Distribution.Text(), "5"),
		toIDS:              fa.ToIDS.Value(),
		deleted:            fa.Deleted.Value(),
		disableCorr:        fa.DisableCorrelation.Value(),
		firstSeen:          nullable(fa.FirstSeen.Text()),
		lastSeen:           nullable(fa.LastSeen.Text()),
		objectID:           objectID,
		objectRelation:     nullable(fa.ObjectRelation.Text()),
		objectDistribution: objectDist,
		tags:               b.tags(fa.Tag.All()),
		event:              ev,
		sightings:          pt.Sighting,
		decay:              pt.DecayScore,
	}
	if a.uuid == "" {
		a.uuid = newUUID()
	}
	// MISP splits composite types ("domain|ip", "filename|md5", malware-sample) into value1
	// and value2.
	if v1, v2, ok := intel.Halves(a.typ, a.value); ok {
		a.value1, a.value2 = v1, v2
	}
	b.attrs = append(b.attrs, a)
}

func (b *builder) tags(in []mispjson.Tag) []tag {
	var out []tag
	for _, t := range in {
		name := t.Name.Text()
		id, ok := b.tagIDs[name]
		if !ok {
			id = strconv.Itoa(len(b.tagIDs) + 1)
			b.tagIDs[name] = id
		}
		// MISP's defaults for a tag created on import.
		out = append(out, tag{ID: id, Name: name, Colour: orDefault(t.Colour.Text(), "#0088cc"), Exportable: !t.Exportable.Set() || t.Exportable.Value()})
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

// nullable is s, or nil (JSON null) when s is empty: MISP sends null for an unset
// first_seen, last_seen or object_relation.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
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
	FirstSeen          *string           `json:"first_seen"`
	LastSeen           *string           `json:"last_seen"`
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
