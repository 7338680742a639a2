package verdict

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/misp-relay/misp-relay/internal/intel"
)

// explain writes the judgement of decision d: its reason, severity, confidence and validity.
func (p *Policy) explain(in *Input, d decision) Judgement {
	ev, a := in.Event, in.Attribute
	s := a.Sightings
	j := Judgement{Disposition: d.disp, Rule: d.rule, Valid: in.Valid, Capped: d.idsCap || d.orgCap}
	var decayed []intel.DecayScore
	if d.decayed {
		decayed = decayedScores(a.Decay)
	}
	decidedLists, advisoryLists := p.listsOf(in.Warnings, a.WarningsAbout(a.Value))
	var r reason
	r.start(d.disp)
	switch d.rule {
	case RuleWarninglist:
		r.decided(decidedLists.phrase())
		j.ByMISP = len(decidedLists.misp) > 0
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
	case RuleThreatLevel:
		r.decided("MISP event threat level ", threatLabel(ev.ThreatLevel))
		if d.weak {
			if a.ToIDS {
				r.decided(", flagged for IDS: weak evidence")
			} else {
				r.decided(", not flagged for IDS: mentioned, not accused")
			}
		}
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
	if !d.idsCap && !d.weak {
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
	if !advisoryLists.empty() {
		r.also("advisory: ", advisoryLists.phrase())
	}
	if a.Comment != "" {
		r.also("comment: ", strconv.Quote(a.Comment))
	}
	j.Reason = r.sentence()
	j.Severity = d.sev
	j.Confidence = confidence(ev, a)
	if d.weak && d.rule == RuleThreatLevel {
		// A Low or Undefined event is weak evidence, however confident its author.
		j.Confidence = ConfidenceLow
	}

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

func orgName(ev *intel.Event) string {
	switch {
	case strings.TrimSpace(ev.Org) != "":
		return strconv.Quote(strings.TrimSpace(ev.Org))
	case ev.OrgUUID != "":
		return "organisation " + ev.OrgUUID
	}
	return "an unnamed organisation"
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

// lists are warninglist names by whose lists they are: a reason says "MISP warninglist"
// only when MISP said so (restSearch's warnings, checkValue), and names the relay's own
// (WARNINGLISTS_DIR) differently, so an operator knows where to look.
type lists struct{ misp, relay []string }

func (l lists) empty() bool { return len(l.misp) == 0 && len(l.relay) == 0 }

// phrase writes `on MISP warninglist "A" and on the relay's warninglists "B" and "C"`.
func (l lists) phrase() string {
	var parts []string
	if len(l.misp) > 0 {
		parts = append(parts, "on MISP warninglist"+plural(len(l.misp))+" "+quoteAll(l.misp))
	}
	if len(l.relay) > 0 {
		parts = append(parts, "on the relay's warninglist"+plural(len(l.relay))+" "+quoteAll(l.relay))
	}
	return strings.Join(parts, " and ")
}

// listsOf sorts the names of the hits' lists into those that decide and the advisory ones,
// each name once (under MISP when MISP named it too), in order.
func (p *Policy) listsOf(groups ...[]intel.WarninglistHit) (decided, advisory lists) {
	for _, g := range groups {
		for _, h := range g {
			n := strings.TrimSpace(h.List)
			if n == "" {
				continue
			}
			l := &decided
			if p.advisory(n) {
				l = &advisory
			}
			switch {
			case slices.Contains(l.misp, n):
			case h.Source == intel.ListRelay:
				if !slices.Contains(l.relay, n) {
					l.relay = append(l.relay, n)
				}
			default:
				l.misp = append(l.misp, n)
				l.relay = slices.DeleteFunc(l.relay, func(x string) bool { return x == n })
			}
		}
	}
	return decided, advisory
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
