package service

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/misp-relay/misp-relay/internal/gen"
	"github.com/misp-relay/misp-relay/internal/intel"
)

// CTIM constants of the MISP relay.
const (
	schemaVersion     = "1.1.5"
	ctimSource        = "MISP"
	judgementPriority = 85
	// relevance is how long a non-hash judgement holds: MISP knowledge about IPs, domains and
	// URLs goes stale, hashes do not.
	relevance       = 7 * 24 * time.Hour
	sightingOf      = "sighting-of"
	elementOf       = "element-of"
	maxTitle        = 1024
	maxDescription  = 5000
	maxTag          = 1024
	maxURI          = 2048
	transientPrefix = "transient:"
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
	indicatorSeen map[string]struct{}
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
}

func newMapper(now time.Time, uiURL string) mapper {
	return mapper{now: now.UTC().Truncate(time.Second), uiURL: strings.TrimRight(uiURL, "/")}
}

func transientID(kind string) string { return transientPrefix + kind + "-" + uuid.NewString() }

// sortBySeverity orders events most severe first, keeping MISP's order among equals.
func sortBySeverity(events []intel.Event) {
	slices.SortStableFunc(events, func(a, b intel.Event) int {
		return cmp.Compare(severityRank(a.ThreatLevel), severityRank(b.ThreatLevel))
	})
}

func (m mapper) validTime(o observable) gen.ValidTime {
	start := m.now
	end := m.now.Add(relevance)
	if o.kind.hash {
		end = endOfTime
	}
	return gen.ValidTime{StartTime: &start, EndTime: &end}
}

// verdictOnly adds the observable's verdict from its most severe event (deliberate).
// events must be sorted by severity and non-empty.
func (m mapper) verdictOnly(b *bundle, o observable, events []intel.Event) {
	t := threatOf(events[0].ThreatLevel)
	b.verdicts = append(b.verdicts, gen.Verdict{
		Type:            gen.VerdictTypeVerdict,
		Disposition:     t.disposition,
		DispositionName: &t.name,
		Observable:      o.ctim(),
		ValidTime:       m.validTime(o),
	})
}

// observe adds everything observe returns for one observable: a judgement, a sighting, the
// event's indicator (once per response) and two relationships per event, and a verdict
// pointing at the most severe event's judgement. events must be sorted by severity.
func (m mapper) observe(b *bundle, o observable, events []intel.Event) {
	if b.indicatorSeen == nil {
		b.indicatorSeen = map[string]struct{}{}
	}
	valid := m.validTime(o)
	for i, e := range events {
		t := threatOf(e.ThreatLevel)
		sourceURI := m.eventURI(e)
		tlp := tlpOf(e.Tags)
		indicatorID := transientPrefix + "indicator-" + e.UUID

		j := gen.Judgement{
			Id:              transientID("judgement"),
			Type:            gen.JudgementTypeJudgement,
			SchemaVersion:   schemaVersion,
			Observable:      o.ctim(),
			Disposition:     t.disposition,
			DispositionName: t.name,
			Priority:        judgementPriority,
			Confidence:      gen.ConfidenceMedium,
			Severity:        t.severity,
			ValidTime:       valid,
			Source:          ctimSource,
			SourceUri:       sourceURI,
			Reason:          ptr("MISP event threat level: " + t.label),
			Tlp:             tlp,
		}
		b.judgements = append(b.judgements, j)
		if i == 0 {
			b.verdicts = append(b.verdicts, gen.Verdict{
				Type:            gen.VerdictTypeVerdict,
				Disposition:     t.disposition,
				DispositionName: &t.name,
				Observable:      o.ctim(),
				ValidTime:       valid,
				JudgementId:     &j.Id,
			})
		}

		s := m.sighting(o, e, sourceURI, tlp)
		b.sightings = append(b.sightings, s)

		if _, seen := b.indicatorSeen[indicatorID]; !seen {
			b.indicatorSeen[indicatorID] = struct{}{}
			b.indicators = append(b.indicators, m.indicator(e, indicatorID, sourceURI, tlp))
		}
		b.relationships = append(b.relationships,
			relationship(sightingOf, s.Id, indicatorID),
			relationship(elementOf, j.Id, indicatorID))
	}
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

func (m mapper) indicator(e intel.Event, id string, sourceURI *string, tlp *gen.TLP) gen.Indicator {
	valid := gen.ValidTime{}
	if d := eventDate(e); !d.IsZero() {
		valid.StartTime = &d
	}
	ind := gen.Indicator{
		Id:            id,
		Type:          gen.IndicatorTypeIndicator,
		SchemaVersion: schemaVersion,
		ValidTime:     valid,
		Producer:      clip(cmp.Or(strings.TrimSpace(e.Org), ctimSource), maxTitle),
		Confidence:    ptr(gen.ConfidenceHigh),
		Severity:      ptr(threatOf(e.ThreatLevel).severity),
		Source:        ptr(ctimSource),
		SourceUri:     sourceURI,
		Tlp:           tlp,
		Timestamp:     timePtr(e.Timestamp),
	}
	if e.Info != "" {
		ind.Title = ptr(clip(e.Info, maxTitle))
	}
	if len(e.Tags) > 0 {
		tags := make([]string, len(e.Tags))
		for i, t := range e.Tags {
			tags[i] = clip(t, maxTag)
		}
		ind.Tags = &tags
	}
	return ind
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
	if m.uiURL == "" || !canonicalUUID(e.UUID) {
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
		name, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(t)), "tlp:")
		if !ok {
			continue
		}
		switch name {
		case "white", "clear":
			return ptr(gen.White)
		case "green":
			return ptr(gen.Green)
		case "amber", "amber+strict":
			return ptr(gen.Amber)
		case "red":
			return ptr(gen.Red)
		}
	}
	return nil
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

// canonicalUUID reports whether s is 8-4-4-4-12 hexadecimal digits, the only form of a MISP
// event UUID the relay builds a link from.
func canonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !hexDigit(c) {
				return false
			}
		}
	}
	return true
}

func hexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
