// Package verdict is the relay's judgement policy: what one MISP attribute, in its event, says
// about an observable, and which of an observable's judgements its verdict follows.
//
// MISP's threat level alone is a poor verdict: it is set once per event, for the event's
// worst content, while an event also mentions resolvers, sinkholes and victims. The policy
// therefore judges only the attributes that are indicators (not the links, comments and file
// names that give context: Judged), and weighs, per matched attribute and in this order,
// warninglists, benign tags, sightings (false positives, expiration), MISP's decay score,
// malicious and suspicious tags, and only then the event's threat level with the IDS flag,
// and caps the result by the IDS flag and the creator organisation's trust. Common and Clean
// come only from evidence about the value (a warninglist, a benign tag, false-positive
// reports), never from a threat level: "Low" says how much the event's author worries, not
// that a C2 address it lists is harmless. Every judgement carries one sentence saying what
// decided it.
//
// The package is pure: no I/O, no clock (the caller passes Now), no CTIM types. The README's
// "Verdicts" section is the policy's table; verdict_test.go and table_test.go check each row.
package verdict

import (
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
// which says nothing. Among equal dispositions the higher severity comes first (severityRank).
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

// severityRank orders severities, highest first.
func severityRank(s Severity) int {
	switch s {
	case SeverityHigh:
		return 0
	case SeverityMedium:
		return 1
	case SeverityLow:
		return 2
	case SeverityNone:
		return 3
	}
	return 4
}

// before reports whether a judgement of disposition d and severity s goes before one of e
// and t in a verdict: more severe disposition, then higher severity.
func before(d Disposition, s Severity, e Disposition, t Severity) bool {
	if rank(d) != rank(e) {
		return rank(d) < rank(e)
	}
	return severityRank(s) < severityRank(t)
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
	RuleThreatLevel                    // 5: the event's threat level and the IDS flag
)

// Interval is a validity: Start to End.
type Interval struct{ Start, End time.Time }

// Input is the evidence about one matched attribute.
type Input struct {
	Event     *intel.Event     // the attribute's event (its Attributes are not read)
	Attribute *intel.Attribute // the matched attribute
	// Value is the observable's value the attribute was found by (which half of a composite
	// attribute it is about); "" judges the attribute as a whole.
	Value string
	// Warnings are the warninglists the observable's value is on, whoever said so (MISP's
	// checkValue, another attribute's warnings, the relay's own lists); the attribute's own
	// Warnings count too, but those about one half of a composite attribute do not (they may
	// be about the other half: the caller, which knows the observable, adds them to Warnings
	// when they are about it).
	Warnings []intel.WarninglistHit
	Now      time.Time
	Valid    Interval // the validity the judgement has unless an expiration sighting ends it
}

// Judgement is what the policy concludes about one attribute. Its zero value (Rule 0) is no
// judgement: Verdict skips it.
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
	// ByMISP is true when a warninglist decided (RuleWarninglist) and MISP named one of the
	// lists that decide; false when only the relay's own lists did, or no list decided.
	ByMISP bool
}

// decision is what the rules conclude, before any sentence is written: deciding is cheap,
// explaining is not, and an event's judgement explains only its decisive attribute.
type decision struct {
	disp           Disposition
	sev            Severity
	rule           Rule
	weak           bool   // decided by a Low or Undefined threat level: weak evidence
	listed         bool   // on a warninglist that decides (not an advisory one)
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
	d.listed = p.decisive(in.Warnings) || p.decisive(a.WarningsAbout(a.Value))
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
		d.disp, d.sev, d.weak = threatRow(ev.ThreatLevel, a.ToIDS)
		d.rule = RuleThreatLevel
	}
	// Caps, last: a value MISP says is not for detection, or an event of an organisation not
	// trusted, can be Suspicious at most.
	d.trusted, d.orgKnown = p.trusted(ev)
	d.idsCap = !a.ToIDS && d.disp == Malicious
	d.orgCap = !d.trusted && d.disp == Malicious
	if d.idsCap || d.orgCap {
		d.disp, d.sev = Suspicious, SeverityMedium
	}
	if d.sev == "" {
		d.sev = severityOf(d.disp)
	}
	return d
}

// threatRow is the policy's table for an attribute no other evidence decides: the event's
// threat level and the attribute's IDS flag (rows T1 to T8 of the README's policy, checked by
// TestThreatLevelTable; publication sets the confidence, see confidence). weak marks the rows
// whose evidence is only a Low or Undefined event.
func threatRow(level int, ids bool) (d Disposition, s Severity, weak bool) {
	switch {
	case level == 1: // Malicious; capped at Suspicious (Medium) when not for IDS
		return Malicious, SeverityHigh, false
	case level == 2 && ids:
		return Suspicious, SeverityMedium, false
	case level == 2:
		return Suspicious, SeverityLow, false
	case ids: // Low, Undefined, or a level MISP does not define
		return Suspicious, SeverityLow, true
	}
	return Unknown, SeverityUnknown, true
}

// decisive reports whether one of the hits names a list that decides: a named list that is
// not advisory.
func (p *Policy) decisive(hits []intel.WarninglistHit) bool {
	for _, h := range hits {
		if n := strings.TrimSpace(h.List); n != "" && !p.advisory(n) {
			return true
		}
	}
	return false
}

// Judge applies the policy to one attribute, as an indicator (see Judged).
func (p *Policy) Judge(in Input) Judgement {
	if in.Event == nil {
		in.Event = &intel.Event{}
	}
	if in.Attribute == nil {
		in.Attribute = &intel.Attribute{}
	}
	return p.explain(&in, p.decide(&in))
}

// JudgeEvent judges each of ev's attributes that is an indicator for value (Judged) and
// returns the judgement of the decisive one (chosen as Verdict chooses) and its index; -1 and
// a zero Judgement when none is: an event that mentions value only as context (a report's
// link, a sample's file name) gives the analyst a sighting, not a judgement.
func (p *Policy) JudgeEvent(ev *intel.Event, value string, warnings []intel.WarninglistHit, now time.Time, valid Interval) (Judgement, int) {
	best := -1
	var bestD decision
	for i := range ev.Attributes {
		a := &ev.Attributes[i]
		if !Judged(a, value) {
			continue
		}
		in := Input{Event: ev, Attribute: a, Value: value, Warnings: warnings, Now: now, Valid: valid}
		d := p.decide(&in)
		if best < 0 || (d.rule == RuleWarninglist && bestD.rule != RuleWarninglist) ||
			(bestD.rule != RuleWarninglist && before(d.disp, d.sev, bestD.disp, bestD.sev)) {
			best, bestD = i, d
		}
	}
	if best < 0 {
		return Judgement{}, -1
	}
	in := Input{Event: ev, Attribute: &ev.Attributes[best], Value: value, Warnings: warnings, Now: now, Valid: valid}
	return p.explain(&in, bestD), best
}

// JudgeListed judges a value by the warninglists it is on alone, for a value no event judges
// (none mentions it, or only as context): a public resolver, an RFC 1918 address or the
// empty file's hash is worth saying so even when no event lists it. ok is false when no list
// that decides names it (advisory lists never do).
func (p *Policy) JudgeListed(hits []intel.WarninglistHit, valid Interval) (Judgement, bool) {
	if !p.decisive(hits) {
		return Judgement{}, false
	}
	var r reason
	r.start(Common)
	decided, advisory := p.listsOf(hits)
	r.decided(decided.phrase())
	if !advisory.empty() {
		r.also("advisory: ", advisory.phrase())
	}
	return Judgement{
		Disposition: Common, Severity: SeverityLow, Confidence: ConfidenceHigh,
		Rule: RuleWarninglist, Reason: r.sentence(), Valid: valid, ByMISP: len(decided.misp) > 0,
	}, true
}

// Verdict returns the index of the judgement an observable's verdict follows: the first one
// decided by a warninglist (it is about the value itself, whichever event mentions it), else
// the most severe (disposition, then severity), the first among equals; zero judgements are
// skipped. -1 when there is none.
func Verdict(js []Judgement) int {
	best := -1
	for i, j := range js {
		switch {
		case j.Rule == 0:
		case j.Rule == RuleWarninglist:
			return i
		case best < 0 || before(j.Disposition, j.Severity, js[best].Disposition, js[best].Severity):
			best = i
		}
	}
	return best
}

// contextType reports whether attributes of type typ say where a value was reported or what
// it is about, not what to detect: a report's URL or a VirusTotal permalink (link), free text,
// an attached file. They give a sighting (the analyst sees the event), never a judgement.
func contextType(typ string) bool {
	switch typ {
	case "link", "comment", "text", "other", "attachment", "email-attachment":
		return true
	}
	return false
}

// Judged reports whether attribute a, found by value, is an indicator the policy judges, or
// context it only reports: context types (link, comment, text, other, attachments), the file
// name half of a filename|<hash> or malware-sample attribute (the name a sample ran under,
// conhost.exe or runas.exe, is not the sample), and a filename attribute not flagged for IDS.
// A filename attribute of its own, flagged for IDS, is judged: its author made it a detection.
func Judged(a *intel.Attribute, value string) bool {
	switch {
	case contextType(a.Type):
		return false
	case a.Type == "filename":
		return a.ToIDS
	}
	if name, hash, ok := intel.Halves(a.Type, a.Value); ok {
		if first, _, _ := intel.HalfTypes(a.Type); first == "filename" && value != "" {
			return !intel.SameValue(name, value) || intel.SameValue(hash, value)
		}
	}
	return true
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
