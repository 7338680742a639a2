package service

import (
	"cmp"
	"crypto/rand"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/misp-relay/misp-relay/internal/gen"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/verdict"
)

// CTIM constants of the MISP relay.
const (
	schemaVersion = "1.1.5"
	ctimSource    = "MISP"
	// relayListsSource is the source of a judgement made by the relay's own warninglists
	// (WARNINGLISTS_DIR) alone, so that it is not taken for MISP's.
	relayListsSource  = "misp-relay warninglists"
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

// reserve sizes the bundle's lists for the entities of observables observables found in
// events events (an upper bound but for warninglist-only values), so that mapping a request
// grows each list once rather than by doubling.
func (b *bundle) reserve(observables, events int, observe bool) {
	b.verdicts = make([]gen.Verdict, 0, observables)
	b.judgements = make([]gen.Judgement, 0, events)
	if observe {
		b.sightings = make([]gen.Sighting, 0, events)
		b.indicators = make([]gen.Indicator, 0, events)
		b.relationships = make([]gen.Relationship, 0, 2*events)
	}
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
	// source names where the events mapped come from, in every entity's source
	// (ctimSource, "MISP", for a tenant of one source); sources are the tenant's, when
	// events come from several (see at).
	source  string
	sources []intel.Source
	// policy judges each matched attribute; nil means the zero policy (no tag settings,
	// every organisation trusted).
	policy *verdict.Policy
	// lists are the relay's own warninglists (nil: none), checked gives MISP's
	// warninglists/checkValue answer for this request's values (nil: none), by the spelling
	// each was asked about (observable.checked).
	lists   Warninglists
	checked map[string][]intel.WarninglistHit
	// listedBy names, for a tenant of several sources, the MISP whose warninglists hold each
	// value of checked (nil otherwise).
	listedBy map[string]string
}

func newMapper(now time.Time, uiURL string) mapper {
	return mapper{now: now.UTC().Truncate(time.Second), uiURL: strings.TrimRight(uiURL, "/"), source: ctimSource}
}

// at is m for the events of the tenant's source i: its name and its UI's links.
func (m mapper) at(i int) mapper {
	if i < 0 || i >= len(m.sources) {
		return m
	}
	m.source, m.uiURL = m.sources[i].Name, strings.TrimRight(m.sources[i].UI, "/")
	return m
}

// reason is a judgement's reason as the tenant reads it: naming its source when there are
// several.
func (m mapper) reason(r string) string {
	if len(m.sources) > 1 {
		r = m.source + ": " + r
	}
	return clip(r, maxReason)
}

// transientID is a CTIM transient ID, "transient:<kind>-<random UUID>" (version 4, from
// crypto/rand), written with one allocation: an answer holds a few per observable, and
// uuid.NewString's three made a tenth of a cached observe's allocations.
func transientID(kind string) string {
	var u [16]byte
	_, _ = rand.Read(u[:])  // never fails: crypto/rand crashes the program rather than return an error
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // the variant of RFC 9562
	var b strings.Builder
	b.Grow(len(transientPrefix) + len(kind) + 1 + 36)
	b.WriteString(transientPrefix)
	b.WriteString(kind)
	b.WriteByte('-')
	intel.WriteUUID(&b, u[:])
	return b.String()
}

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
// without the entities. events may be empty: a value on a warninglist has a verdict anyway.
func (m mapper) verdictOnly(b *bundle, o observable, events []intel.Event) {
	js, _, hits := m.judge(o, events)
	var v verdict.Judgement
	if i := verdict.Verdict(js); i >= 0 {
		v = js[i]
	} else if l, ok := m.listed(o, hits); ok {
		v = l
	} else {
		return
	}
	d, name := dispositionOf(v.Disposition)
	b.verdicts = append(b.verdicts, gen.Verdict{
		Type:            gen.VerdictTypeVerdict,
		Disposition:     d,
		DispositionName: &name,
		Observable:      o.ctim(),
		ValidTime:       ctimValid(v.Valid),
	})
}

// observe adds everything observe returns for one observable: per event a "found in MISP
// event" sighting (with what MISP links to the observable), a judgement when the event holds
// the observable as an indicator (not only as context), a sighting per matched attribute MISP
// holds sightings of, the event's indicator (once per response) and the relationships to
// it; and the verdict, pointing at the judgement it follows. A value no event judges gets
// the judgement of the warninglists it is on, if any (listedOnly). events must be sorted by
// severity; from gives the place of each one's source in m.sources (nil: all from one).
func (m mapper) observe(b *bundle, o observable, events []intel.Event, from []int) {
	if b.indicatorAt == nil {
		b.indicatorAt = map[string]int{}
		b.refs = map[string]*gen.ExternalReferences{}
	}
	js, attrs, hits := m.judge(o, events)
	chosen := verdict.Verdict(js)
	defValid := m.validTime(o)
	sharedValid := ctimValid(defValid) // most judgements keep it: one copy per observable
	var verdictOf gen.Verdict
	for i := range events {
		e := &events[i]
		jd := &js[i]
		em, place := m, 0
		if from != nil {
			em, place = m.at(from[i]), from[i]
		}
		a := attrs[i] // nil: the event mentions o only as context
		shown := a
		if shown == nil && len(e.Attributes) > 0 {
			shown = &e.Attributes[0]
		}
		sourceURI := em.eventURI(*e)
		var tlp *gen.TLP
		if shown != nil {
			tlp = tlpOf(shown.Tags)
		}
		if tlp == nil {
			tlp = tlpOf(e.Tags)
		}
		indicatorID := transientPrefix + "indicator-" + e.UUID
		refKey := e.UUID
		if place > 0 { // one event in two sources is two indicators, each with its links
			indicatorID += "-" + strconv.Itoa(place+1)
			refKey += "\x00" + strconv.Itoa(place)
		}
		attrUUID := ""
		if shown != nil {
			attrUUID = shown.UUID
		}
		ids := externalIDs(e.UUID, attrUUID)
		refs := b.refs[refKey]
		if refs == nil {
			refs = em.externalRefs(*e, sourceURI)
			b.refs[refKey] = refs
		}

		judgementID := ""
		if a != nil {
			valid := sharedValid
			if jd.Valid != defValid {
				valid = ctimValid(jd.Valid)
			}
			j := judgementOf(o, jd, em.source, valid, em.reason(jd.Reason))
			j.SourceUri, j.ReasonUri = sourceURI, sourceURI
			j.ExternalIds, j.ExternalReferences, j.Tlp = &ids.ids, refs, tlp
			b.judgements = append(b.judgements, j)
			judgementID = j.Id
			if i == chosen {
				verdictOf = verdictFor(o, &j)
			}
		}

		s := em.sighting(o, *e, a, sourceURI, tlp)
		s.ExternalIds, s.ExternalReferences = &ids.ids, refs
		b.sightings = append(b.sightings, s)
		b.relationships = append(b.relationships, relationship(sightingOf, s.Id, indicatorID))
		if judgementID != "" {
			b.relationships = append(b.relationships, relationship(elementOf, judgementID, indicatorID))
		}
		for k := range e.Attributes {
			if seen := &e.Attributes[k]; seen.Sightings.Seen > 0 {
				ms := em.mispSighting(o, *e, seen, sourceURI, tlp, refs)
				b.sightings = append(b.sightings, ms)
				b.relationships = append(b.relationships, relationship(sightingOf, ms.Id, indicatorID))
			}
		}

		if at, seen := b.indicatorAt[indicatorID]; seen {
			mergeIndicator(&b.indicators[at], *e)
		} else {
			b.indicatorAt[indicatorID] = len(b.indicators)
			b.indicators = append(b.indicators, em.indicator(*e, indicatorID, sourceURI, &ids.eventOnly, refs))
		}
	}
	if chosen >= 0 {
		b.verdicts = append(b.verdicts, verdictOf)
		return
	}
	m.listedOnly(b, o, hits)
}

// listedOnly adds the judgement and verdict of a value no event judges but a warninglist
// names (mapper.listed): a public resolver, an RFC 1918 address or the empty file's hash is
// worth telling the analyst even when no event mentions it. Its source says whose list
// decided: MISP's, or the relay's own; it has no event to link to.
func (m mapper) listedOnly(b *bundle, o observable, hits []intel.WarninglistHit) {
	jd, ok := m.listed(o, hits)
	if !ok {
		return
	}
	source := relayListsSource
	if jd.ByMISP {
		source = cmp.Or(m.listedBy[o.checked()], ctimSource)
	}
	j := judgementOf(o, &jd, source, ctimValid(jd.Valid), clip(jd.Reason, maxReason))
	b.judgements = append(b.judgements, j)
	b.verdicts = append(b.verdicts, verdictFor(o, &j))
}

// judgementOf is the CTIM judgement of o that jd decides, said by source for reason and valid
// for valid. The caller adds the links, ids and TLP it has.
func judgementOf(o observable, jd *verdict.Judgement, source string, valid gen.ValidTime, reason string) gen.Judgement {
	disp, name := dispositionOf(jd.Disposition)
	j := gen.Judgement{
		Id:              transientID("judgement"),
		Type:            gen.JudgementTypeJudgement,
		SchemaVersion:   schemaVersion,
		Observable:      o.ctim(),
		Disposition:     disp,
		DispositionName: name,
		Priority:        judgementPriority,
		Confidence:      gen.Confidence(jd.Confidence),
		Severity:        gen.Severity(jd.Severity),
		ValidTime:       valid,
		Source:          source,
		Reason:          ptr(reason),
	}
	return j
}

// verdictFor is o's verdict, following the judgement j the policy picked.
func verdictFor(o observable, j *gen.Judgement) gen.Verdict {
	name := j.DispositionName
	return gen.Verdict{
		Type:            gen.VerdictTypeVerdict,
		Disposition:     j.Disposition,
		DispositionName: &name,
		Observable:      o.ctim(),
		ValidTime:       j.ValidTime,
		JudgementId:     &j.Id,
	}
}
