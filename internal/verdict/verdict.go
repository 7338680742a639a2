// Package verdict is the relay's judgement policy: what one MISP attribute, in its event, says
// about an observable, and which of an observable's judgements its verdict follows.
//
// MISP's threat level alone is a poor verdict: it is set once per event, for the event's
// worst content, while an event also mentions resolvers, sinkholes and victims. The policy
// therefore weighs, per matched attribute and in this order, warninglists, benign tags,
// sightings (false positives, expiration), MISP's decay score, malicious and suspicious tags,
// and only then the event's threat level, and caps the result by the IDS flag and the
// creator organisation's trust. Every judgement carries one sentence saying what decided it.
//
// The package is pure: no I/O, no clock (the caller passes Now), no CTIM types. The README's
// "Verdicts" section is the policy's table; verdict_test.go checks each row.
package verdict

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/misp-relay/misp-relay/internal/intel"
)

// Disposition is CTIM's disposition number.
type Disposition int

// CTIM's dispositions.
const (
	Clean      Disposition = 1
	Malicious  Disposition = 2
	Suspicious Disposition = 3
	Common     Disposition = 4
	Unknown    Disposition = 5
)

// String is CTIM's disposition_name.
func (d Disposition) String() string {
	switch d {
	case Clean:
		return "Clean"
	case Malicious:
		return "Malicious"
	case Suspicious:
		return "Suspicious"
	case Common:
		return "Common"
	}
	return "Unknown"
}

// rank orders dispositions for a verdict, most severe first: Malicious, Suspicious, Common,
// Clean, Unknown. Common and Clean are both statements about the value and beat Unknown,
// which says nothing.
func rank(d Disposition) int {
	switch d {
	case Malicious:
		return 0
	case Suspicious:
		return 1
	case Common:
		return 2
	case Clean:
		return 3
	}
	return 4
}

// Severity is CTIM's severity name.
type Severity string

// Confidence is CTIM's confidence name.
type Confidence string

// The values the policy gives.
const (
	SeverityHigh    Severity = "High"
	SeverityMedium  Severity = "Medium"
	SeverityLow     Severity = "Low"
	SeverityNone    Severity = "None"
	SeverityUnknown Severity = "Unknown"

	ConfidenceHigh    Confidence = "High"
	ConfidenceMedium  Confidence = "Medium"
	ConfidenceLow     Confidence = "Low"
	ConfidenceUnknown Confidence = "Unknown"
)

// Rule is the rule of the policy that decided a disposition.
type Rule int

// The rules, in the order they are tried.
const (
	RuleWarninglist    Rule = iota + 1 // 1: the value is on a warninglist → Common
	RuleBenignTag                      // 2: a BENIGN_TAGS tag on the attribute → Clean
	RuleFalsePositives                 // 3: more false positives than sightings → Common
	RuleExpired                        // 3: an expiration sighting in the past → Unknown
	RuleDecayed                        // 4: MISP's decay model says decayed → Unknown
	RuleTag                            // 5: a MALICIOUS_TAGS / SUSPICIOUS_TAGS tag
	RuleThreatLevel                    // 5: the event's threat level
)

// Tags is a tag setting: tag names, and prefixes (a name ending in '*'). Matching ignores
// case, as MISP's tag names do.
type Tags struct {
	names    map[string]struct{}
	prefixes []string
}

// ParseTags reads a comma-separated list of tag names; a trailing '*' makes a prefix
// (misp-galaxy:threat-actor=*). Blank items are ignored. A lone '*' is refused: it would
// match every tag, which is surely a mistake.
func ParseTags(s string) (Tags, error) {
	var t Tags
	for item := range strings.SplitSeq(s, ",") {
		item = strings.ToLower(strings.TrimSpace(item))
		switch {
		case item == "":
		case item == "*":
			return Tags{}, errors.New("a lone * would match every tag; name tags or prefixes (misp-galaxy:threat-actor=*)")
		case strings.HasSuffix(item, "*"):
			t.prefixes = append(t.prefixes, strings.TrimSuffix(item, "*"))
		default:
			if t.names == nil {
				t.names = map[string]struct{}{}
			}
			t.names[item] = struct{}{}
		}
	}
	return t, nil
}

// MustTags is ParseTags for settings known to be valid (tests, defaults).
func MustTags(s string) Tags {
	t, err := ParseTags(s)
	if err != nil {
		panic(err)
	}
	return t
}

// Empty reports whether the setting names no tag.
func (t Tags) Empty() bool { return len(t.names) == 0 && len(t.prefixes) == 0 }

// Match reports whether tag is one of the names or starts with one of the prefixes.
func (t Tags) Match(tag string) bool {
	if t.Empty() {
		return false
	}
	tag = strings.ToLower(strings.TrimSpace(tag))
	if _, ok := t.names[tag]; ok {
		return true
	}
	for _, p := range t.prefixes {
		if strings.HasPrefix(tag, p) {
			return true
		}
	}
	return false
}

// first returns the first of tags that matches, and whether one did.
func (t Tags) first(tags []string) (string, bool) {
	for _, tag := range tags {
		if t.Match(tag) {
			return tag, true
		}
	}
	return "", false
}

// Policy is the relay's settings for judging.
type Policy struct {
	Benign, Malicious, Suspicious Tags // BENIGN_TAGS, MALICIOUS_TAGS, SUSPICIOUS_TAGS
	// TrustedOrgs are creator organisations (names or UUIDs, compared ignoring case) whose
	// events may be Malicious; empty means every organisation is trusted (TRUSTED_ORGS).
	TrustedOrgs []string
}

// ParseOrgs reads TRUSTED_ORGS: comma-separated organisation names or UUIDs.
func ParseOrgs(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// Interval is a validity: Start to End.
type Interval struct{ Start, End time.Time }

// Input is the evidence about one matched attribute.
type Input struct {
	Event     *intel.Event     // the attribute's event (its Attributes are not read)
	Attribute *intel.Attribute // the matched attribute
	// Warnings are the warninglists the observable's value is on, whoever said so (MISP's
	// checkValue, another attribute's warnings, the relay's own lists); the attribute's own
	// Warnings count too.
	Warnings []intel.WarninglistHit
	Now      time.Time
	Valid    Interval // the validity the judgement has unless an expiration sighting ends it
}

// Judgement is what the policy concludes about one attribute.
type Judgement struct {
	Disposition Disposition
	Severity    Severity
	Confidence  Confidence
	Rule        Rule
	// Reason is one sentence: the disposition, what decided it, what capped it, and the
	// rest of the evidence.
	Reason string
	Valid  Interval
	// Capped is true when the IDS flag or the organisation's trust lowered the disposition.
	Capped bool
}

// decision is what the rules conclude, before any sentence is written: deciding is cheap,
// explaining is not, and an event's judgement explains only its decisive attribute.
type decision struct {
	disp           Disposition
	rule           Rule
	listed         bool   // on a warninglist
	benign         string // the benign tag, when there is one
	isBenign       bool
	expired        bool
	decayed        bool
	tagDisp        Disposition
	tag, tagWhere  string
	isTag          bool
	idsCap, orgCap bool
	trusted        bool
	orgKnown       bool
}

func (p *Policy) decide(in *Input) decision {
	ev, a := in.Event, in.Attribute
	s := a.Sightings
	var d decision
	d.listed = named(in.Warnings) || named(a.Warnings)
	d.benign, d.isBenign = p.Benign.first(a.Tags)
	d.expired = !s.Expires.IsZero() && !s.Expires.After(in.Now)
	for _, sc := range a.Decay {
		d.decayed = d.decayed || sc.Decayed
	}
	d.tagDisp, d.tag, d.tagWhere, d.isTag = p.tagVerdict(a.Tags, ev.Tags)
	switch {
	case d.listed:
		d.disp, d.rule = Common, RuleWarninglist
	case d.isBenign:
		d.disp, d.rule = Clean, RuleBenignTag
	case s.FalsePositive > s.Seen:
		d.disp, d.rule = Common, RuleFalsePositives
	case d.expired:
		d.disp, d.rule = Unknown, RuleExpired
	case d.decayed:
		d.disp, d.rule = Unknown, RuleDecayed
	case d.isTag:
		d.disp, d.rule = d.tagDisp, RuleTag
	default:
		d.disp, d.rule = threatDisposition(ev.ThreatLevel), RuleThreatLevel
	}
	// Caps, last: a value MISP says is not for detection, or an event of an organisation not
	// trusted, can be Suspicious at most.
	d.trusted, d.orgKnown = p.trusted(ev)
	d.idsCap = !a.ToIDS && d.disp == Malicious
	d.orgCap = !d.trusted && d.disp == Malicious
	if d.idsCap || d.orgCap {
		d.disp = Suspicious
	}
	return d
}

// named reports whether one of the hits names its list.
func named(hits []intel.WarninglistHit) bool {
	for _, h := range hits {
		if strings.TrimSpace(h.List) != "" {
			return true
		}
	}
	return false
}

// Judge applies the policy to one attribute.
func (p *Policy) Judge(in Input) Judgement {
	if in.Event == nil {
		in.Event = &intel.Event{}
	}
	if in.Attribute == nil {
		in.Attribute = &intel.Attribute{}
	}
	return p.explain(&in, p.decide(&in))
}

// JudgeEvent judges each of ev's attributes and returns the judgement of the decisive one
// (chosen as Verdict chooses) and its index; -1 and a zero Judgement when ev has none.
func (p *Policy) JudgeEvent(ev *intel.Event, warnings []intel.WarninglistHit, now time.Time, valid Interval) (Judgement, int) {
	best := -1
	var bestD decision
	for i := range ev.Attributes {
		in := Input{Event: ev, Attribute: &ev.Attributes[i], Warnings: warnings, Now: now, Valid: valid}
		d := p.decide(&in)
		if best < 0 || (d.rule == RuleWarninglist && bestD.rule != RuleWarninglist) ||
			(bestD.rule != RuleWarninglist && rank(d.disp) < rank(bestD.disp)) {
			best, bestD = i, d
		}
	}
	if best < 0 {
		return Judgement{}, -1
	}
	in := Input{Event: ev, Attribute: &ev.Attributes[best], Warnings: warnings, Now: now, Valid: valid}
	return p.explain(&in, bestD), best
}

// explain writes the judgement of decision d: its reason, severity, confidence and validity.
func (p *Policy) explain(in *Input, d decision) Judgement {
	ev, a := in.Event, in.Attribute
	s := a.Sightings
	j := Judgement{Disposition: d.disp, Rule: d.rule, Valid: in.Valid, Capped: d.idsCap || d.orgCap}
	var decayed []intel.DecayScore
	if d.decayed {
		decayed = decayedScores(a.Decay)
	}
	var r reason
	r.start(d.disp)
	switch d.rule {
	case RuleWarninglist:
		lists := listNames(in.Warnings, a.Warnings)
		r.decided("on MISP warninglist", plural(len(lists)), " ", quoteAll(lists))
	case RuleBenignTag:
		r.decided("attribute tag ", strconv.Quote(d.benign), " is a benign tag")
	case RuleFalsePositives:
		r.decided("more false-positive reports than sightings in MISP (", sightingCounts(s), ")")
	case RuleExpired:
		r.decided("expired in MISP on ", s.Expires.UTC().Format(time.DateOnly), " (an expiration sighting)")
	case RuleDecayed:
		r.decided("decayed in MISP (", decayPhrase(decayed), ")")
	case RuleTag:
		r.decided(d.tagWhere, " tag ", strconv.Quote(d.tag), " is a ", tagKind(d.tagDisp), " tag")
	default:
		r.decided("MISP event threat level ", threatLabel(ev.ThreatLevel))
	}
	if d.idsCap {
		r.capped("not flagged for IDS (to_ids false)")
	}
	if d.orgCap {
		r.capped("event created by ", orgName(ev), ", not a trusted organisation")
	}

	// The rest of the evidence.
	if d.rule != RuleThreatLevel {
		r.also("MISP event threat level ", threatLabel(ev.ThreatLevel))
	}
	if !d.idsCap {
		if a.ToIDS {
			r.also("flagged for IDS")
		} else {
			r.also("not flagged for IDS")
		}
	}
	if d.isBenign && d.rule != RuleBenignTag {
		r.also("attribute tag ", strconv.Quote(d.benign), " is a benign tag")
	}
	if d.isTag && d.rule != RuleTag {
		r.also(d.tagWhere, " tag ", strconv.Quote(d.tag), " is a ", tagKind(d.tagDisp), " tag")
	}
	if (s.Seen > 0 || s.FalsePositive > 0) && d.rule != RuleFalsePositives {
		r.also(sightingCounts(s))
	}
	if !s.Expires.IsZero() && d.rule != RuleExpired {
		if d.expired {
			r.also("expired in MISP on ", s.Expires.UTC().Format(time.DateOnly))
		} else {
			r.also("expires on ", s.Expires.UTC().Format(time.DateOnly), " (an expiration sighting)")
		}
	}
	if len(a.Decay) > 0 && d.rule != RuleDecayed {
		if d.decayed {
			r.also("decayed in MISP (", decayPhrase(decayed), ")")
		} else {
			r.also("decay ", decayPhrase(a.Decay))
		}
	}
	if len(p.TrustedOrgs) > 0 && !d.orgCap && d.orgKnown {
		if d.trusted {
			r.also("created by trusted organisation ", orgName(ev))
		} else {
			r.also("created by ", orgName(ev), ", not a trusted organisation")
		}
	}
	j.Reason = r.sentence()
	j.Severity = severityOf(j.Disposition)
	j.Confidence = confidence(ev, a)

	// An expiration sighting ends the judgement's validity; the start moves back with it
	// when that date has passed, so the interval stays valid.
	if !s.Expires.IsZero() && (j.Valid.End.IsZero() || s.Expires.Before(j.Valid.End)) {
		j.Valid.End = s.Expires.UTC()
		if j.Valid.Start.After(j.Valid.End) {
			j.Valid.Start = j.Valid.End
		}
	}
	return j
}

func tagKind(d Disposition) string {
	if d == Malicious {
		return "malicious"
	}
	return "suspicious"
}

// Verdict returns the index of the judgement an observable's verdict follows: the first one
// decided by a warninglist (it is about the value itself, whichever event mentions it), else
// the most severe, the first among equals. -1 when js is empty.
func Verdict(js []Judgement) int {
	best := -1
	for i, j := range js {
		if j.Rule == RuleWarninglist {
			return i
		}
		if best < 0 || rank(j.Disposition) < rank(js[best].Disposition) {
			best = i
		}
	}
	return best
}

// tagVerdict applies MALICIOUS_TAGS and SUSPICIOUS_TAGS: the attribute's own tags beat the
// event's, and at the same level a malicious tag beats a suspicious one. It returns the
// disposition, the tag and where it is ("attribute" or "event").
func (p *Policy) tagVerdict(attrTags, eventTags []string) (Disposition, string, string, bool) {
	if p.Malicious.Empty() && p.Suspicious.Empty() {
		return 0, "", "", false
	}
	if t, ok := p.Malicious.first(attrTags); ok {
		return Malicious, t, "attribute", true
	}
	if t, ok := p.Suspicious.first(attrTags); ok {
		return Suspicious, t, "attribute", true
	}
	if t, ok := p.Malicious.first(eventTags); ok {
		return Malicious, t, "event", true
	}
	if t, ok := p.Suspicious.first(eventTags); ok {
		return Suspicious, t, "event", true
	}
	return 0, "", "", false
}

// trusted says whether TRUSTED_ORGS lists the event's creator (true when it is not set), and
// whether the event names a creator at all.
func (p *Policy) trusted(ev *intel.Event) (trusted, known bool) {
	known = ev.Org != "" || ev.OrgUUID != ""
	if len(p.TrustedOrgs) == 0 {
		return true, known
	}
	for _, o := range p.TrustedOrgs {
		if (ev.Org != "" && strings.EqualFold(o, strings.TrimSpace(ev.Org))) ||
			(ev.OrgUUID != "" && strings.EqualFold(o, ev.OrgUUID)) {
			return true, known
		}
	}
	return false, known
}

func orgName(ev *intel.Event) string {
	switch {
	case strings.TrimSpace(ev.Org) != "":
		return strconv.Quote(strings.TrimSpace(ev.Org))
	case ev.OrgUUID != "":
		return "organisation " + ev.OrgUUID
	}
	return "an unnamed organisation"
}

// threatDisposition is the original relay's mapping: 1 High → Malicious, 2 Medium →
// Suspicious, 3 Low → Common, anything else → Unknown.
func threatDisposition(level int) Disposition {
	switch level {
	case 1:
		return Malicious
	case 2:
		return Suspicious
	case 3:
		return Common
	}
	return Unknown
}

func threatLabel(level int) string {
	switch level {
	case 1:
		return "High"
	case 2:
		return "Medium"
	case 3:
		return "Low"
	}
	return "Undefined"
}

func severityOf(d Disposition) Severity {
	switch d {
	case Malicious:
		return SeverityHigh
	case Suspicious:
		return SeverityMedium
	case Common:
		return SeverityLow
	case Clean:
		return SeverityNone
	}
	return SeverityUnknown
}

// confidence: the misp:confidence-level tag (the attribute's beats the event's), else the
// best decay score, else how far the event's creator went (published, analysis complete).
func confidence(ev *intel.Event, a *intel.Attribute) Confidence {
	for _, tags := range [][]string{a.Tags, ev.Tags} {
		for _, t := range tags {
			if c, ok := confidenceTag(t); ok {
				return c
			}
		}
	}
	if len(a.Decay) > 0 {
		best := a.Decay[0].Score
		for _, d := range a.Decay[1:] {
			best = max(best, d.Score)
		}
		switch {
		case best >= 70:
			return ConfidenceHigh
		case best >= 40:
			return ConfidenceMedium
		}
		return ConfidenceLow
	}
	switch {
	case ev.Published && ev.Analysis == intel.AnalysisComplete:
		return ConfidenceHigh
	case !ev.Published || ev.Analysis == intel.AnalysisInitial:
		return ConfidenceLow
	}
	return ConfidenceMedium
}

// confidenceTag reads the MISP taxonomy tag misp:confidence-level="<value>".
func confidenceTag(tag string) (Confidence, bool) {
	const prefix = "misp:confidence-level="
	tag = strings.TrimSpace(tag)
	if len(tag) < len(prefix) || !strings.EqualFold(tag[:len(prefix)], prefix) {
		return "", false
	}
	switch strings.ToLower(strings.Trim(tag[len(prefix):], `"' `)) {
	case "completely-confident", "usually-confident":
		return ConfidenceHigh, true
	case "fairly-confident":
		return ConfidenceMedium, true
	case "rarely-confident", "unconfident":
		return ConfidenceLow, true
	case "confidence-cannot-be-evalued", "confidence-cannot-be-evaluated":
		return ConfidenceUnknown, true
	}
	return "", false
}

// listNames merges the names of the lists, without repeats, in order.
func listNames(groups ...[]intel.WarninglistHit) []string {
	var out []string
	for _, g := range groups {
		for _, h := range g {
			if n := strings.TrimSpace(h.List); n != "" && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

func decayedScores(ds []intel.DecayScore) []intel.DecayScore {
	var out []intel.DecayScore
	for _, d := range ds {
		if d.Decayed {
			out = append(out, d)
		}
	}
	return out
}

// decayPhrase quotes each model and its score: model "NIDS Simple Decaying Model", score 12.3.
func decayPhrase(ds []intel.DecayScore) string {
	parts := make([]string, 0, len(ds))
	for _, d := range ds {
		model := d.Model
		if model == "" {
			model = "unnamed"
		}
		parts = append(parts, fmt.Sprintf("model %q, score %s", model, strconv.FormatFloat(d.Score, 'f', 1, 64)))
	}
	return strings.Join(parts, "; ")
}

func sightingCounts(s intel.Sightings) string {
	return count(s.Seen, "sighting", "sightings") + ", " + count(s.FalsePositive, "false positive", "false positives")
}

func count(n int, one, many string) string {
	switch n {
	case 0:
		return "no " + many
	case 1:
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func plural(n int) string {
	if n > 1 {
		return "s"
	}
	return ""
}

// quoteAll writes "A", "B" and "C".
func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}

// reason builds the judgement's sentence, "<Disposition>: <decided>, capped at Suspicious:
// <cap> and <cap>; <evidence>; <evidence>.", writing the parts straight into one buffer: a
// judgement is made for every event of every observable.
type reason struct {
	b         strings.Builder
	hasCapped bool
}

func (r *reason) start(d Disposition) {
	r.b.Grow(192)
	r.b.WriteString(d.String())
	r.b.WriteString(": ")
}

func (r *reason) write(parts []string) {
	for _, p := range parts {
		r.b.WriteString(p)
	}
}

func (r *reason) decided(parts ...string) { r.write(parts) }

func (r *reason) capped(parts ...string) {
	if r.hasCapped {
		r.b.WriteString(" and ")
	} else {
		r.b.WriteString(", capped at Suspicious: ")
		r.hasCapped = true
	}
	r.write(parts)
}

func (r *reason) also(parts ...string) {
	r.b.WriteString("; ")
	r.write(parts)
}

func (r *reason) sentence() string {
	r.b.WriteString(".")
	return r.b.String()
}
