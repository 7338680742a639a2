package service

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/misp-relay/misp-relay/internal/gen"
	"github.com/misp-relay/misp-relay/internal/intel"
)

// sighting is the "Found in MISP event" sighting of o in e. judged is the attribute the
// event's judgement rests on, nil when the event mentions o only as context; the description
// gives its category (else the first matched attribute's), says when the mention is context
// only, and quotes the matched attributes' comments (each already bounded, see
// intel.CleanComment; at most maxComments of them). Its relations are what MISP links to o.
func (m mapper) sighting(o observable, e intel.Event, judged *intel.Attribute, sourceURI *string, tlp *gen.TLP) gen.Sighting {
	start, end := m.observedTime(e)
	shown := judged
	if shown == nil && len(e.Attributes) > 0 {
		shown = &e.Attributes[0]
	}
	category := "Unknown"
	if shown != nil && shown.Category != "" {
		category = shown.Category
	}
	var b strings.Builder
	b.Grow(64)
	b.WriteString("Category: ")
	b.WriteString(category)
	if judged == nil && shown != nil {
		b.WriteString("; reported as context, not judged (")
		b.WriteString(shown.Type)
		b.WriteString(")")
	}
	comments := 0
	for i := range e.Attributes {
		c := e.Attributes[i].Comment
		if c == "" || comments == maxComments || sameCommentBefore(e.Attributes[:i], c) {
			continue
		}
		comments++
		b.WriteString("; comment: ")
		b.WriteString(strconv.Quote(c))
	}
	sg := newSighting(o, start, end, m.source, sourceURI, tlp)
	sg.Count = max(len(e.Attributes), 1)
	sg.Title = ptr(clip("Found in MISP event: "+e.Info, maxTitle))
	sg.Description = ptr(clip(b.String(), maxDescription))
	sg.Timestamp = timePtr(e.Timestamp)
	sg.Relations = m.relations(o, &e, sourceURI)
	return sg
}

// maxComments bounds the comments a sighting quotes: a value matched by many attributes of
// one event (a hash in several file objects) would otherwise repeat their comments.
const maxComments = 3

// sameCommentBefore reports whether an attribute in prev has comment c.
func sameCommentBefore(prev []intel.Attribute, c string) bool {
	for i := range prev {
		if prev[i].Comment == c {
			return true
		}
	}
	return false
}

// newSighting holds what every CTIM sighting the relay makes has in common: o seen from start
// to end, as source (sourceURI) says, under tlp. The caller sets the count, title, description
// and timestamp.
func newSighting(o observable, start, end time.Time, source string, sourceURI *string, tlp *gen.TLP) gen.Sighting {
	observables := []gen.Observable{o.ctim()}
	return gen.Sighting{
		Id:            transientID("sighting"),
		Type:          gen.SightingTypeSighting,
		SchemaVersion: schemaVersion,
		ObservedTime:  gen.ObservedTime{StartTime: start, EndTime: &end},
		Confidence:    gen.ConfidenceHigh,
		Observables:   &observables,
		Source:        ptr(source),
		SourceUri:     sourceURI,
		Tlp:           tlp,
	}
}

// observedTime spans the matched attributes: first_seen (else the attribute's timestamp) to
// last_seen (else its timestamp). Without any attribute time it falls back to the event's
// date, then its timestamp, then now, because CTIM requires a start.
func (m mapper) observedTime(e intel.Event) (time.Time, time.Time) {
	var start, end time.Time
	for _, a := range e.Attributes {
		first := cmp.Or(a.FirstSeen, a.Timestamp)
		last := cmp.Or(a.LastSeen, a.Timestamp, first)
		if !first.IsZero() && (start.IsZero() || first.Before(start)) {
			start = first
		}
		if last.After(end) {
			end = last
		}
	}
	if start.IsZero() {
		start = cmp.Or(eventDate(e), e.Timestamp, m.now)
	}
	start = clampTime(start)
	end = clampTime(end)
	if end.Before(start) {
		end = start
	}
	return start, end
}

func (m mapper) indicator(e intel.Event, id string, sourceURI *string, ids *gen.ExternalIDs, refs *gen.ExternalReferences) gen.Indicator {
	valid := gen.ValidTime{}
	if d := eventDate(e); !d.IsZero() {
		valid.StartTime = &d
	}
	ind := gen.Indicator{
		Id:                 id,
		Type:               gen.IndicatorTypeIndicator,
		SchemaVersion:      schemaVersion,
		ValidTime:          valid,
		Producer:           clip(cmp.Or(strings.TrimSpace(e.Org), ctimSource), maxTitle),
		Confidence:         ptr(gen.ConfidenceHigh),
		Severity:           ptr(threatOf(e.ThreatLevel).severity),
		Source:             ptr(m.source),
		SourceUri:          sourceURI,
		ExternalIds:        ids,
		ExternalReferences: refs,
		Timestamp:          timePtr(e.Timestamp),
	}
	if e.Info != "" {
		ind.Title = ptr(clip(e.Info, maxTitle))
	}
	ind.ShortDescription = ptr(clip(shortDescription(e), maxShortDescription))
	mergeIndicator(&ind, e)
	return ind
}

// mergeIndicator adds the event's tags and its matched attributes' own tags (galaxy
// clusters are misp-galaxy: tags) to ind, each once, and sets its TLP: the most restrictive
// tlp: tag of a matched attribute, else the event's.
func mergeIndicator(ind *gen.Indicator, e intel.Event) {
	var tags []string
	if ind.Tags != nil {
		tags = *ind.Tags
	} else {
		n := len(e.Tags)
		for i := range e.Attributes {
			n += len(e.Attributes[i].Tags)
		}
		tags = make([]string, 0, n)
	}
	add := func(t string) {
		t = clip(t, maxTag)
		if !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	for _, t := range e.Tags {
		add(t)
	}
	var attrTLP *gen.TLP
	for i := range e.Attributes {
		for _, t := range e.Attributes[i].Tags {
			add(t)
		}
		attrTLP = stricter(attrTLP, tlpOf(e.Attributes[i].Tags))
	}
	if len(tags) > 0 {
		ind.Tags = &tags
	}
	switch {
	case attrTLP != nil:
		ind.Tlp = stricter(ind.Tlp, attrTLP)
	case ind.Tlp == nil:
		ind.Tlp = tlpOf(e.Tags)
	}
}

// shortDescription sums the event up in a line: who, how severe, and what matched.
func shortDescription(e intel.Event) string {
	var b strings.Builder
	b.Grow(96)
	b.WriteString("MISP event")
	if org := strings.TrimSpace(e.Org); org != "" {
		b.WriteString(" by ")
		b.WriteString(org)
	}
	b.WriteString(", threat level ")
	b.WriteString(threatOf(e.ThreatLevel).label)
	if !e.Published {
		b.WriteString(", unpublished")
	}
	// The matched attributes, each kind once: "matched ip-dst for IDS (Network activity)".
	written := 0
	for i, a := range e.Attributes {
		if sameKindBefore(e.Attributes[:i], a) {
			continue
		}
		if written == 3 {
			b.WriteString(" and more")
			break
		}
		if written == 0 {
			b.WriteString("; matched ")
		} else {
			b.WriteString(", ")
		}
		written++
		b.WriteString(a.Type)
		if a.ToIDS {
			b.WriteString(" for IDS")
		}
		if a.Category != "" {
			b.WriteString(" (")
			b.WriteString(a.Category)
			b.WriteString(")")
		}
	}
	return b.String()
}

// sameKindBefore reports whether an attribute of a's type, category and IDS flag is in prev.
func sameKindBefore(prev []intel.Attribute, a intel.Attribute) bool {
	for _, p := range prev {
		if p.Type == a.Type && p.Category == a.Category && p.ToIDS == a.ToIDS {
			return true
		}
	}
	return false
}

// idsBox holds an event's and attribute's external ids in one allocation: the judgement and
// sighting share ids, the event's indicator eventOnly.
type idsBox struct {
	ids, eventOnly gen.ExternalIDs
	arr            [2]string
}

// externalIDs are the MISP event UUID, then the attribute UUID when there is one.
func externalIDs(eventUUID, attrUUID string) *idsBox {
	b := &idsBox{arr: [2]string{eventUUID, attrUUID}}
	b.ids, b.eventOnly = b.arr[:1], b.arr[:1]
	if attrUUID != "" && isExternalID(attrUUID) {
		b.ids = b.arr[:2]
	}
	return b
}

// isExternalID keeps an attribute UUID only when it is short printable text, as an event
// UUID must be (the MISP client checks those).
func isExternalID(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := range len(s) {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// refBox holds an event's external reference and the id it points at in one allocation.
type refBox struct {
	refs gen.ExternalReferences
	arr  [1]gen.ExternalReference
	id   string
}

// externalRefs points at the MISP event: its UUID, and its link when the relay has a UI URL.
// (No description: the entities' titles already name the event, and every byte here is
// repeated on each judgement, sighting and indicator.)
func (m mapper) externalRefs(e intel.Event, sourceURI *string) *gen.ExternalReferences {
	b := &refBox{id: e.UUID}
	b.arr[0] = gen.ExternalReference{SourceName: m.source, ExternalId: &b.id, Url: sourceURI}
	b.refs = b.arr[:]
	return &b.refs
}

// mispSighting is the CTIM sighting of what MISP's users reported seeing (type 0
// sightings) of one matched attribute: their count, first and last dates, and sources.
func (m mapper) mispSighting(o observable, e intel.Event, a *intel.Attribute, sourceURI *string, tlp *gen.TLP, refs *gen.ExternalReferences) gen.Sighting {
	s := a.Sightings
	start := clampTime(cmp.Or(s.First, s.Last, eventDate(e), e.Timestamp, m.now))
	end := clampTime(cmp.Or(s.Last, start))
	if end.Before(start) {
		end = start
	}
	desc := count(s.Seen, "sighting", "sightings") + " of this " + a.Type + " reported to MISP"
	if len(s.Sources) > 0 {
		desc += " by " + strings.Join(s.Sources, ", ")
	}
	if s.FalsePositive > 0 {
		desc += "; " + count(s.FalsePositive, "false positive", "false positives") + " reported"
	}
	sg := newSighting(o, start, end, m.source, sourceURI, tlp)
	sg.Count = s.Seen
	sg.Title = ptr(clip("Sighted, as reported to MISP: "+e.Info, maxTitle))
	sg.Description = ptr(clip(desc+".", maxDescription))
	sg.ExternalIds = &externalIDs(e.UUID, a.UUID).ids
	sg.ExternalReferences = refs
	sg.Timestamp = timePtr(s.Last)
	return sg
}

func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func relationship(kind, from, to string) gen.Relationship {
	return gen.Relationship{
		Id:               transientID("relationship"),
		Type:             gen.RelationshipTypeRelationship,
		SchemaVersion:    schemaVersion,
		RelationshipType: kind,
		SourceRef:        from,
		TargetRef:        to,
	}
}

// eventURI links to the event in MISP's UI, or nil when the relay has no UI address or the
// event's UUID is not a canonical UUID: the UUID comes from MISP's answer, and "..", "a/b" or
// "%2e%2e" in a path would make the link point elsewhere in MISP (or off it).
func (m mapper) eventURI(e intel.Event) *string {
	if m.uiURL == "" || !intel.CanonicalUUID(e.UUID) {
		return nil
	}
	u := m.uiURL + "/events/view/" + e.UUID
	if len(u) > maxURI {
		return nil
	}
	return &u
}
