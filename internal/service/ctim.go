package service

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/misp-relay/misp-relay/internal/gen"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/verdict"
)

// CTIM constants of the MISP relay.
const (
	schemaVersion     = "1.1.5"
	ctimSource        = "MISP"
	judgementPriority = 85
	// relevance is how long a non-hash judgement holds: MISP knowledge about IPs, domains and
	// URLs goes stale, hashes do not.
	relevance           = 7 * 24 * time.Hour
	sightingOf          = "sighting-of"
	elementOf           = "element-of"
	maxTitle            = 1024
	maxReason           = 1024
	maxShortDescription = 2048
	maxDescription      = 5000
	maxTag              = 1024
	maxURI              = 2048
	transientPrefix     = "transient:"
)

// endOfTime is CTIM's "never expires" (the largest time the schema allows).
var endOfTime = time.Date(2525, 1, 1, 0, 0, 0, 0, time.UTC)

// threat is what a MISP threat level means in CTIM.
type threat struct {
	disposition gen.Disposition
	name        gen.DispositionName
	severity    gen.Severity
	label       string
}

// threatOf maps MISP's threat_level_id: 1 High, 2 Medium, 3 Low, 4 Undefined; anything else is
// treated as Undefined rather than failing the request (the Python relay answered 500).
func threatOf(level int) threat {
	switch level {
	case 1:
		return threat{gen.DispositionMalicious, gen.DispositionNameMalicious, gen.SeverityHigh, "High"}
	case 2:
		return threat{gen.DispositionSuspicious, gen.DispositionNameSuspicious, gen.SeverityMedium, "Medium"}
	case 3:
		return threat{gen.DispositionCommon, gen.DispositionNameCommon, gen.SeverityLow, "Low"}
	default:
		return threat{gen.DispositionUnknown, gen.DispositionNameUnknown, gen.SeverityUnknown, "Undefined"}
	}
}

// severityRank orders events most severe first; unknown levels sort with Undefined.
func severityRank(level int) int {
	if level < 1 || level > 4 {
		return 4
	}
	return level
}

// bundle collects the CTIM entities of one response.
type bundle struct {
	verdicts      []gen.Verdict
	judgements    []gen.Judgement
	sightings     []gen.Sighting
	indicators    []gen.Indicator
	relationships []gen.Relationship
	// indicatorAt indexes indicators by id: an event's indicator is emitted once per
	// response, and later observables hitting it add their attributes' tags to it.
	indicatorAt map[string]int
	// refs are the external references of each event (by UUID), made once per response.
	refs map[string]*gen.ExternalReferences
}

// data renders the bundle as the response's data: only non-empty lists appear.
func (b *bundle) data() *gen.EnrichData {
	d := &gen.EnrichData{}
	if n := len(b.verdicts); n > 0 {
		d.Verdicts = &gen.VerdictList{Count: n, Docs: b.verdicts}
	}
	if n := len(b.judgements); n > 0 {
		d.Judgements = &gen.JudgementList{Count: n, Docs: b.judgements}
	}
	if n := len(b.sightings); n > 0 {
		d.Sightings = &gen.SightingList{Count: n, Docs: b.sightings}
	}
	if n := len(b.indicators); n > 0 {
		d.Indicators = &gen.IndicatorList{Count: n, Docs: b.indicators}
	}
	if n := len(b.relationships); n > 0 {
		d.Relationships = &gen.RelationshipList{Count: n, Docs: b.relationships}
	}
	return d
}

// mapper turns MISP events into CTIM for one response.
type mapper struct {
	now   time.Time // UTC, whole seconds: one instant for the whole response
	uiURL string    // base of links for people; "" means no source_uri
	// policy judges each matched attribute; nil means the zero policy (no tag settings,
	// every organisation trusted).
	policy *verdict.Policy
	// lists are the relay's own warninglists (nil: none), checked gives MISP's
	// warninglists/checkValue answer for this request's values (nil: none).
	lists   Warninglists
	checked map[string][]intel.WarninglistHit
}

func newMapper(now time.Time, uiURL string) mapper {
	return mapper{now: now.UTC().Truncate(time.Second), uiURL: strings.TrimRight(uiURL, "/")}
}

func transientID(kind string) string { return transientPrefix + kind + "-" + uuid.NewString() }

// sortBySeverity orders events most severe first by threat level, keeping MISP's order among
// equals: the order judgements are listed in (the verdict follows the policy, see judge).
func sortBySeverity(events []intel.Event) {
	slices.SortStableFunc(events, func(a, b intel.Event) int {
		return cmp.Compare(severityRank(a.ThreatLevel), severityRank(b.ThreatLevel))
	})
}

func (m mapper) validTime(o observable) verdict.Interval {
	end := m.now.Add(relevance)
	if o.kind.hash {
		end = endOfTime
	}
	return verdict.Interval{Start: m.now, End: end}
}

func ctimValid(v verdict.Interval) gen.ValidTime {
	start, end := clampTime(v.Start), clampTime(v.End)
	out := gen.ValidTime{}
	if !start.IsZero() {
		out.StartTime = &start
	}
	if !end.IsZero() {
		out.EndTime = &end
	}
	return out
}

// verdictOnly adds the observable's verdict (deliberate): the same judgements as observe,
// without the entities. events must be non-empty.
func (m mapper) verdictOnly(b *bundle, o observable, events []intel.Event) {
	js, _ := m.judge(o, events)
	v := js[verdict.Verdict(js)]
	d, name := dispositionOf(v.Disposition)
	b.verdicts = append(b.verdicts, gen.Verdict{
		Type:            gen.VerdictTypeVerdict,
		Disposition:     d,
		DispositionName: &name,
		Observable:      o.ctim(),
		ValidTime:       ctimValid(v.Valid),
	})
}

// observe adds everything observe returns for one observable: per event a judgement, a
// "found in MISP event" sighting, a sighting per matched attribute MISP holds sightings of,
// the event's indicator (once per response) and the relationships to it; and the verdict,
// pointing at the judgement it follows. events must be sorted by severity and non-empty.
func (m mapper) observe(b *bundle, o observable, events []intel.Event) {
	if b.indicatorAt == nil {
		b.indicatorAt = map[string]int{}
		b.refs = map[string]*gen.ExternalReferences{}
	}
	js, attrs := m.judge(o, events)
	chosen := verdict.Verdict(js)
	defValid := m.validTime(o)
	sharedValid := ctimValid(defValid) // most judgements keep it: one copy per observable
	var verdictOf gen.Verdict
	for i := range events {
		e := &events[i]
		jd := &js[i]
		a := attrs[i]
		sourceURI := m.eventURI(*e)
		tlp := tlpOf(a.Tags)
		if tlp == nil {
			tlp = tlpOf(e.Tags)
		}
		indicatorID := transientPrefix + "indicator-" + e.UUID
		ids := externalIDs(e.UUID, a.UUID)
		refs := b.refs[e.UUID]
		if refs == nil {
			refs = m.externalRefs(*e, sourceURI)
			b.refs[e.UUID] = refs
		}
		valid := sharedValid
		if jd.Valid != defValid {
			valid = ctimValid(jd.Valid)
		}

		disp, name := dispositionOf(jd.Disposition)
		j := gen.Judgement{
			Id:                 transientID("judgement"),
			Type:               gen.JudgementTypeJudgement,
			SchemaVersion:      schemaVersion,
			Observable:         o.ctim(),
			Disposition:        disp,
			DispositionName:    name,
			Priority:           judgementPriority,
			Confidence:         gen.Confidence(jd.Confidence),
			Severity:           gen.Severity(jd.Severity),
			ValidTime:          valid,
			Source:             ctimSource,
			SourceUri:          sourceURI,
			Reason:             ptr(clip(jd.Reason, maxReason)),
			ReasonUri:          sourceURI,
			ExternalIds:        &ids.ids,
			ExternalReferences: refs,
			Tlp:                tlp,
		}
		b.judgements = append(b.judgements, j)
		if i == chosen {
			verdictOf = gen.Verdict{
				Type:            gen.VerdictTypeVerdict,
				Disposition:     disp,
				DispositionName: &name,
				Observable:      o.ctim(),
				ValidTime:       j.ValidTime,
				JudgementId:     &j.Id,
			}
		}

		s := m.sighting(o, *e, sourceURI, tlp)
		s.ExternalIds, s.ExternalReferences = &ids.ids, refs
		b.sightings = append(b.sightings, s)
		b.relationships = append(b.relationships,
			relationship(sightingOf, s.Id, indicatorID),
			relationship(elementOf, j.Id, indicatorID))
		for k := range e.Attributes {
			if seen := &e.Attributes[k]; seen.Sightings.Seen > 0 {
				ms := m.mispSighting(o, *e, seen, sourceURI, tlp, refs)
				b.sightings = append(b.sightings, ms)
				b.relationships = append(b.relationships, relationship(sightingOf, ms.Id, indicatorID))
			}
		}

		if at, seen := b.indicatorAt[indicatorID]; seen {
			mergeIndicator(&b.indicators[at], *e)
		} else {
			b.indicatorAt[indicatorID] = len(b.indicators)
			b.indicators = append(b.indicators, m.indicator(*e, indicatorID, sourceURI, &ids.eventOnly, refs))
		}
	}
	b.verdicts = append(b.verdicts, verdictOf)
}

func (m mapper) sighting(o observable, e intel.Event, sourceURI *string, tlp *gen.TLP) gen.Sighting {
	start, end := m.observedTime(e)
	category := "Unknown"
	if len(e.Attributes) > 0 && e.Attributes[0].Category != "" {
		category = e.Attributes[0].Category
	}
	observables := []gen.Observable{o.ctim()}
	return gen.Sighting{
		Id:            transientID("sighting"),
		Type:          gen.SightingTypeSighting,
		SchemaVersion: schemaVersion,
		ObservedTime:  gen.ObservedTime{StartTime: start, EndTime: &end},
		Confidence:    gen.ConfidenceHigh,
		Count:         max(len(e.Attributes), 1),
		Observables:   &observables,
		Title:         ptr(clip("Found in MISP event: "+e.Info, maxTitle)),
		Description:   ptr(clip("Category: "+category, maxDescription)),
		Source:        ptr(ctimSource),
		SourceUri:     sourceURI,
		Tlp:           tlp,
		Timestamp:     timePtr(e.Timestamp),
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
		Source:             ptr(ctimSource),
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

// stricter returns the more restrictive of two TLP markings (nil is no marking).
func stricter(a, b *gen.TLP) *gen.TLP {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case tlpRank(*b) > tlpRank(*a):
		return b
	}
	return a
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
	b.arr[0] = gen.ExternalReference{SourceName: ctimSource, ExternalId: &b.id, Url: sourceURI}
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
	observables := []gen.Observable{o.ctim()}
	desc := count(s.Seen, "sighting", "sightings") + " of this " + a.Type + " reported to MISP"
	if len(s.Sources) > 0 {
		desc += " by " + strings.Join(s.Sources, ", ")
	}
	if s.FalsePositive > 0 {
		desc += "; " + count(s.FalsePositive, "false positive", "false positives") + " reported"
	}
	return gen.Sighting{
		Id:                 transientID("sighting"),
		Type:               gen.SightingTypeSighting,
		SchemaVersion:      schemaVersion,
		ObservedTime:       gen.ObservedTime{StartTime: start, EndTime: &end},
		Confidence:         gen.ConfidenceHigh,
		Count:              s.Seen,
		Observables:        &observables,
		Title:              ptr(clip("Sighted, as reported to MISP: "+e.Info, maxTitle)),
		Description:        ptr(clip(desc+".", maxDescription)),
		Source:             ptr(ctimSource),
		SourceUri:          sourceURI,
		ExternalIds:        &externalIDs(e.UUID, a.UUID).ids,
		ExternalReferences: refs,
		Tlp:                tlp,
		Timestamp:          timePtr(s.Last),
	}
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

// tlpOf reads the first tlp: tag. TLP 2.0's clear and amber+strict map to CTIM's white and
// amber, the closest markings CTIM 1.1 has.
func tlpOf(tags []string) *gen.TLP {
	for _, t := range tags {
		t = strings.TrimSpace(t)
		// Compared ignoring case without lower-casing a copy: this runs for every tag of
		// every matched attribute and event.
		if len(t) < 4 || !strings.EqualFold(t[:4], "tlp:") {
			continue
		}
		switch name := t[4:]; {
		case strings.EqualFold(name, "white"), strings.EqualFold(name, "clear"):
			return &tlpWhite
		case strings.EqualFold(name, "green"):
			return &tlpGreen
		case strings.EqualFold(name, "amber"), strings.EqualFold(name, "amber+strict"):
			return &tlpAmber
		case strings.EqualFold(name, "red"):
			return &tlpRed
		}
	}
	return nil
}

// The TLP markings tlpOf points at: shared, never written through.
var tlpWhite, tlpGreen, tlpAmber, tlpRed = gen.White, gen.Green, gen.Amber, gen.Red

// tlpRank orders markings from the least to the most restrictive.
func tlpRank(t gen.TLP) int {
	switch t {
	case gen.Green:
		return 1
	case gen.Amber:
		return 2
	case gen.Red:
		return 3
	}
	return 0
}

func eventDate(e intel.Event) time.Time {
	d, err := time.Parse(time.DateOnly, e.Date)
	if err != nil {
		return time.Time{}
	}
	return clampTime(d)
}

// clampTime keeps times inside CTIM's range [1970, 2525-01-01], so a MISP record with a
// silly date cannot make the whole response invalid.
func clampTime(t time.Time) time.Time {
	t = t.UTC().Truncate(time.Second)
	switch {
	case t.IsZero():
		return t
	case t.Before(time.Unix(0, 0)):
		return time.Unix(0, 0).UTC()
	case t.After(endOfTime):
		return endOfTime
	}
	return t
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = clampTime(t)
	return &t
}

func ptr[T any](v T) *T { return &v }

// clip shortens s to at most n runes, so long MISP text cannot break CTIM's length limits.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
