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

// Interval is a validity: Start to End.
type Interval struct{ Start, End time.Time }

// Input is the evidence about one matched attribute.
type Input struct {
	Event     *intel.Event     // the attribute's event (its Attributes are not read)
	Attribute *intel.Attribute // the matched attribute
	// Warnings are the warninglists the observable's value is on, whoever said so (MISP's
	// checkValue, another attribute's warnings, the relay's own lists); the attribute's own
	// Warnings count too, but those about one half of a composite attribute do not (they may
	// be about the other half: the caller, which knows the observable, adds them to Warnings
	// when they are about it).
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
	d.listed = named(in.Warnings) || named(a.WarningsAbout(a.Value))
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
