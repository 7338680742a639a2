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
	var r reason
	r.start(d.disp)
	switch d.rule {
	case RuleWarninglist:
		lists := listNames(in.Warnings, a.WarningsAbout(a.Value))
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
