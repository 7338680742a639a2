package verdict_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/verdict"
)

var (
	now      = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	weekOn   = now.Add(7 * 24 * time.Hour)
	defValid = verdict.Interval{Start: now, End: weekOn}
	dnsList  = intel.WarninglistHit{List: "List of known IPv4 public DNS resolvers", Match: "8.8.8.8/32"}
	relayDNS = intel.WarninglistHit{Source: intel.ListRelay, List: "List of known IPv4 public DNS resolvers", Match: "8.8.8.8/32"}
	awsList  = intel.WarninglistHit{Source: intel.ListRelay, List: "List of known Amazon AWS IP address ranges", Match: "3.0.0.0/9"}
)

const (
	orgUUID   = "55f6ea5e-2c60-40e5-964f-47a8950d210f"
	modelName = "NIDS Simple Decaying Model"
)

// event is a published, fully analysed High-threat event of a trusted organisation; tests
// change what they are about.
func event(mod ...func(*intel.Event)) *intel.Event {
	e := &intel.Event{ThreatLevel: 1, Org: "CIRCL", OrgUUID: orgUUID, Published: true, Analysis: intel.AnalysisComplete, Tags: []string{"tlp:green"}}
	for _, m := range mod {
		m(e)
	}
	return e
}

// attr is a plain IDS attribute.
func attr(mod ...func(*intel.Attribute)) *intel.Attribute {
	a := &intel.Attribute{Type: "ip-dst", Value: "198.51.100.7", ToIDS: true}
	for _, m := range mod {
		m(a)
	}
	return a
}

func policy(mod ...func(*verdict.Policy)) *verdict.Policy {
	p := &verdict.Policy{
		Benign:     verdict.MustTags("misp:benign,known-good:*"),
		Malicious:  verdict.MustTags("misp-galaxy:threat-actor=*,relay:malicious"),
		Suspicious: verdict.MustTags("relay:suspicious"),
	}
	for _, m := range mod {
		m(p)
	}
	return p
}

func TestJudgeRules(t *testing.T) {
	tests := []struct {
		name    string
		policy  *verdict.Policy
		event   *intel.Event
		attr    *intel.Attribute
		hits    []intel.WarninglistHit
		want    verdict.Disposition
		rule    verdict.Rule
		capped  bool
		reasons []string // each must be in the reason
		absent  []string // none may be
	}{
		// Rule 5: the threat level, as the original relay.
		{
			name: "High → Malicious", want: verdict.Malicious, rule: verdict.RuleThreatLevel,
			reasons: []string{"Malicious: MISP event threat level High", "flagged for IDS"},
		},
		{
			name: "Medium → Suspicious", event: event(func(e *intel.Event) { e.ThreatLevel = 2 }), want: verdict.Suspicious, rule: verdict.RuleThreatLevel,
			reasons: []string{"threat level Medium"},
		},
		{
			name: "Low, IDS → Suspicious, never Common", event: event(func(e *intel.Event) { e.ThreatLevel = 3 }), want: verdict.Suspicious, rule: verdict.RuleThreatLevel,
			reasons: []string{"Suspicious: MISP event threat level Low, flagged for IDS: weak evidence"}, absent: []string{"; flagged for IDS"},
		},
		{
			name: "Undefined, IDS → Suspicious", event: event(func(e *intel.Event) { e.ThreatLevel = 4 }), want: verdict.Suspicious, rule: verdict.RuleThreatLevel,
			reasons: []string{"threat level Undefined, flagged for IDS: weak evidence"},
		},
		{
			name: "Undefined, not IDS → Unknown", event: event(func(e *intel.Event) { e.ThreatLevel = 4 }), attr: attr(func(a *intel.Attribute) { a.ToIDS = false }),
			want: verdict.Unknown, rule: verdict.RuleThreatLevel, reasons: []string{"threat level Undefined, not flagged for IDS: mentioned, not accused"},
		},
		{name: "out-of-range level, IDS → as Undefined", event: event(func(e *intel.Event) { e.ThreatLevel = 0 }), want: verdict.Suspicious, rule: verdict.RuleThreatLevel},

		// Rule 1: warninglists beat everything, and are named.
		{
			name: "attribute warning", attr: attr(func(a *intel.Attribute) { a.Warnings = []intel.WarninglistHit{dnsList} }),
			want: verdict.Common, rule: verdict.RuleWarninglist,
			reasons: []string{`Common: on MISP warninglist "List of known IPv4 public DNS resolvers"`, "MISP event threat level High", "flagged for IDS"},
		},
		{
			name: "value-level hit on a non-IDS attribute", attr: attr(func(a *intel.Attribute) { a.ToIDS = false }), hits: []intel.WarninglistHit{dnsList},
			want: verdict.Common, rule: verdict.RuleWarninglist, reasons: []string{"not flagged for IDS"}, absent: []string{"capped"},
		},
		{
			name: "two lists, named once each", hits: []intel.WarninglistHit{dnsList, {List: "List of RFC 5735 CIDR blocks"}},
			attr: attr(func(a *intel.Attribute) { a.Warnings = []intel.WarninglistHit{dnsList} }),
			want: verdict.Common, rule: verdict.RuleWarninglist,
			reasons: []string{`on MISP warninglists "List of known IPv4 public DNS resolvers" and "List of RFC 5735 CIDR blocks"`},
		},
		{
			name: "warninglist beats a benign tag and a malicious tag",
			attr: attr(func(a *intel.Attribute) { a.Tags = []string{"misp:benign", "relay:malicious"} }), hits: []intel.WarninglistHit{dnsList},
			want: verdict.Common, rule: verdict.RuleWarninglist,
			reasons: []string{`attribute tag "misp:benign" is a benign tag`, `attribute tag "relay:malicious" is a malicious tag`},
		},
		{
			name: "warninglist beats false positives and decay",
			attr: attr(func(a *intel.Attribute) {
				a.Sightings = intel.Sightings{FalsePositive: 3}
				a.Decay = []intel.DecayScore{{Model: modelName, Score: 3, Decayed: true}}
			}), hits: []intel.WarninglistHit{dnsList},
			want: verdict.Common, rule: verdict.RuleWarninglist,
			reasons: []string{"no sightings, 3 false positives", `decayed in MISP (model "NIDS Simple Decaying Model", score 3.0)`},
		},
		{name: "a hit without a list name is no hit", hits: []intel.WarninglistHit{{Match: "x"}}, want: verdict.Malicious, rule: verdict.RuleThreatLevel},

		// Rule 2: a benign tag on the attribute.
		{
			name: "benign tag", attr: attr(func(a *intel.Attribute) { a.Tags = []string{"Known-Good:CDN"} }),
			want: verdict.Clean, rule: verdict.RuleBenignTag,
			reasons: []string{`Clean: attribute tag "Known-Good:CDN" is a benign tag`, "MISP event threat level High"},
		},
		{
			name: "benign tag on the event only does not count", event: event(func(e *intel.Event) { e.Tags = []string{"misp:benign"} }),
			want: verdict.Malicious, rule: verdict.RuleThreatLevel,
		},
		{
			name: "benign beats false positives and a malicious tag",
			attr: attr(func(a *intel.Attribute) {
				a.Tags = []string{"relay:malicious", "misp:benign"}
				a.Sightings = intel.Sightings{FalsePositive: 1}
			}),
			want: verdict.Clean, rule: verdict.RuleBenignTag, reasons: []string{"malicious tag", "no sightings, 1 false positive"},
		},

		// Rule 3: sightings.
		{
			name: "more false positives than sightings", attr: attr(func(a *intel.Attribute) { a.Sightings = intel.Sightings{Seen: 1, FalsePositive: 2} }),
			want: verdict.Common, rule: verdict.RuleFalsePositives,
			reasons: []string{"Common: more false-positive reports than sightings in MISP (1 sighting, 2 false positives)", "MISP event threat level High"},
		},
		{
			name: "as many false positives as sightings: not decided by them", attr: attr(func(a *intel.Attribute) { a.Sightings = intel.Sightings{Seen: 2, FalsePositive: 2} }),
			want: verdict.Malicious, rule: verdict.RuleThreatLevel, reasons: []string{"2 sightings, 2 false positives"},
		},
		{name: "false positives beat expiration and decay", attr: attr(func(a *intel.Attribute) {
			a.Sightings = intel.Sightings{FalsePositive: 1, Expiration: 1, Expires: now.Add(-time.Hour)}
			a.Decay = []intel.DecayScore{{Model: modelName, Score: 1, Decayed: true}}
		}), want: verdict.Common, rule: verdict.RuleFalsePositives, reasons: []string{"expired in MISP on 2025-12-31", "decayed in MISP"}},
		{
			name: "expired", attr: attr(func(a *intel.Attribute) {
				a.Sightings = intel.Sightings{Seen: 5, Expiration: 1, Expires: now.Add(-48 * time.Hour)}
			}), want: verdict.Unknown, rule: verdict.RuleExpired,
			reasons: []string{"Unknown: expired in MISP on 2025-12-30 (an expiration sighting)", "5 sightings, no false positives"},
		},
		{name: "expires later: threat level decides", attr: attr(func(a *intel.Attribute) {
			a.Sightings = intel.Sightings{Expiration: 1, Expires: now.Add(72 * time.Hour)}
		}), want: verdict.Malicious, rule: verdict.RuleThreatLevel, reasons: []string{"expires on 2026-01-04 (an expiration sighting)"}},
		{name: "expired beats decay", attr: attr(func(a *intel.Attribute) {
			a.Sightings = intel.Sightings{Expiration: 1, Expires: now}
			a.Decay = []intel.DecayScore{{Model: modelName, Score: 1, Decayed: true}}
		}), want: verdict.Unknown, rule: verdict.RuleExpired},

		// Rule 4: decay.
		{
			name: "decayed", attr: attr(func(a *intel.Attribute) {
				a.Decay = []intel.DecayScore{{Model: "Other", Score: 80}, {Model: modelName, Score: 12.34, Decayed: true}}
			}), want: verdict.Unknown, rule: verdict.RuleDecayed,
			reasons: []string{`Unknown: decayed in MISP (model "NIDS Simple Decaying Model", score 12.3)`}, absent: []string{`"Other"`},
		},
		{name: "not decayed: score shown", attr: attr(func(a *intel.Attribute) {
			a.Decay = []intel.DecayScore{{Model: modelName, Score: 75}}
		}), want: verdict.Malicious, rule: verdict.RuleThreatLevel, reasons: []string{`decay model "NIDS Simple Decaying Model", score 75.0`}},
		{name: "decay beats tags", attr: attr(func(a *intel.Attribute) {
			a.Tags = []string{"relay:malicious"}
			a.Decay = []intel.DecayScore{{Model: modelName, Score: 5, Decayed: true}}
		}), want: verdict.Unknown, rule: verdict.RuleDecayed, reasons: []string{"malicious tag"}},

		// Rule 5: tags.
		{
			name: "malicious attribute tag on a Low event", event: event(func(e *intel.Event) { e.ThreatLevel = 3 }),
			attr: attr(func(a *intel.Attribute) { a.Tags = []string{`misp-galaxy:threat-actor="Sofacy"`} }),
			want: verdict.Malicious, rule: verdict.RuleTag,
			reasons: []string{`Malicious: attribute tag "misp-galaxy:threat-actor=\"Sofacy\"" is a malicious tag`, "MISP event threat level Low"},
		},
		{
			name:  "suspicious attribute tag beats a malicious event tag",
			event: event(func(e *intel.Event) { e.Tags = []string{"relay:malicious"} }),
			attr:  attr(func(a *intel.Attribute) { a.Tags = []string{"relay:suspicious"} }),
			want:  verdict.Suspicious, rule: verdict.RuleTag, reasons: []string{`attribute tag "relay:suspicious" is a suspicious tag`},
		},
		{
			name: "malicious beats suspicious on the same level",
			attr: attr(func(a *intel.Attribute) { a.Tags = []string{"relay:suspicious", "relay:malicious"} }),
			want: verdict.Malicious, rule: verdict.RuleTag, reasons: []string{"malicious tag"},
		},
		{
			name: "event tag on an Undefined event", event: event(func(e *intel.Event) { e.ThreatLevel = 4; e.Tags = []string{"RELAY:SUSPICIOUS"} }),
			want: verdict.Suspicious, rule: verdict.RuleTag, reasons: []string{`event tag "RELAY:SUSPICIOUS" is a suspicious tag`, "threat level Undefined"},
		},
		{
			name: "no tag settings: tags ignored", policy: &verdict.Policy{},
			attr: attr(func(a *intel.Attribute) { a.Tags = []string{"misp:benign", "relay:malicious"} }),
			want: verdict.Malicious, rule: verdict.RuleThreatLevel, absent: []string{"tag"},
		},

		// Rule 6: caps.
		{
			name: "not for IDS: at most Suspicious", attr: attr(func(a *intel.Attribute) { a.ToIDS = false }),
			want: verdict.Suspicious, rule: verdict.RuleThreatLevel, capped: true,
			reasons: []string{"Suspicious: MISP event threat level High, capped at Suspicious: not flagged for IDS (to_ids false)"},
		},
		{
			name: "not for IDS, Medium: not lowered further", event: event(func(e *intel.Event) { e.ThreatLevel = 2 }),
			attr: attr(func(a *intel.Attribute) { a.ToIDS = false }), want: verdict.Suspicious, rule: verdict.RuleThreatLevel,
			reasons: []string{"not flagged for IDS"}, absent: []string{"capped"},
		},
		{
			name: "not for IDS, malicious tag: capped too", attr: attr(func(a *intel.Attribute) { a.ToIDS = false; a.Tags = []string{"relay:malicious"} }),
			want: verdict.Suspicious, rule: verdict.RuleTag, capped: true, reasons: []string{"malicious tag, capped at Suspicious: not flagged for IDS"},
		},
		{
			name: "untrusted organisation", policy: policy(func(p *verdict.Policy) { p.TrustedOrgs = []string{"Example CERT"} }),
			want: verdict.Suspicious, rule: verdict.RuleThreatLevel, capped: true,
			reasons: []string{`capped at Suspicious: event created by "CIRCL", not a trusted organisation`},
		},
		{
			name: "trusted by name, any case", policy: policy(func(p *verdict.Policy) { p.TrustedOrgs = []string{"circl"} }),
			want: verdict.Malicious, rule: verdict.RuleThreatLevel, reasons: []string{`created by trusted organisation "CIRCL"`},
		},
		{
			name: "trusted by UUID", policy: policy(func(p *verdict.Policy) { p.TrustedOrgs = []string{"Other", strings.ToUpper(orgUUID)} }),
			want: verdict.Malicious, rule: verdict.RuleThreatLevel,
		},
		{
			name: "no creator, trust required", policy: policy(func(p *verdict.Policy) { p.TrustedOrgs = []string{"CIRCL"} }),
			event: event(func(e *intel.Event) { e.Org, e.OrgUUID = "", "" }),
			want:  verdict.Suspicious, rule: verdict.RuleThreatLevel, capped: true, reasons: []string{"an unnamed organisation"},
		},
		{
			name: "both caps", policy: policy(func(p *verdict.Policy) { p.TrustedOrgs = []string{"Example CERT"} }),
			attr: attr(func(a *intel.Attribute) { a.ToIDS = false }), want: verdict.Suspicious, capped: true, rule: verdict.RuleThreatLevel,
			reasons: []string{`not flagged for IDS (to_ids false) and event created by "CIRCL", not a trusted organisation`},
		},
		{
			name: "untrusted, not Malicious: said, not capped", policy: policy(func(p *verdict.Policy) { p.TrustedOrgs = []string{"Example CERT"} }),
			event: event(func(e *intel.Event) { e.ThreatLevel = 3 }), want: verdict.Suspicious, rule: verdict.RuleThreatLevel,
			reasons: []string{`created by "CIRCL", not a trusted organisation`}, absent: []string{"capped"},
		},

		// Whose list, advisory lists, the author's words.
		{
			name: "the relay's own list is named as the relay's", hits: []intel.WarninglistHit{relayDNS},
			want: verdict.Common, rule: verdict.RuleWarninglist,
			reasons: []string{`Common: on the relay's warninglist "List of known IPv4 public DNS resolvers"`}, absent: []string{"MISP warninglist"},
		},
		{
			name: "MISP's and the relay's lists, each named as whose", hits: []intel.WarninglistHit{relayDNS, {List: "List of RFC 5735 CIDR blocks"}},
			want: verdict.Common, rule: verdict.RuleWarninglist,
			reasons: []string{`Common: on MISP warninglist "List of RFC 5735 CIDR blocks" and on the relay's warninglist "List of known IPv4 public DNS resolvers"`},
		},
		{
			name: "a list both name is MISP's", hits: []intel.WarninglistHit{relayDNS, dnsList},
			want: verdict.Common, rule: verdict.RuleWarninglist,
			reasons: []string{`Common: on MISP warninglist "List of known IPv4 public DNS resolvers";`}, absent: []string{"relay's"},
		},
		{
			name: "an advisory list does not decide, and is named", policy: policy(func(p *verdict.Policy) { p.Advisory = []string{"list of known amazon aws ip address ranges"} }),
			hits: []intel.WarninglistHit{awsList},
			want: verdict.Malicious, rule: verdict.RuleThreatLevel,
			reasons: []string{`advisory: on the relay's warninglist "List of known Amazon AWS IP address ranges"`}, absent: []string{"Common"},
		},
		{
			name: "advisory beside a list that decides", policy: policy(func(p *verdict.Policy) { p.Advisory = []string{awsList.List} }),
			hits: []intel.WarninglistHit{awsList, dnsList},
			want: verdict.Common, rule: verdict.RuleWarninglist,
			reasons: []string{`Common: on MISP warninglist "List of known IPv4 public DNS resolvers";`, `advisory: on the relay's warninglist "List of known Amazon AWS IP address ranges"`},
		},
		{
			name: "MISP's own list can be advisory too", policy: policy(func(p *verdict.Policy) { p.Advisory = []string{dnsList.List} }),
			attr: attr(func(a *intel.Attribute) { a.Warnings = []intel.WarninglistHit{dnsList} }),
			want: verdict.Malicious, rule: verdict.RuleThreatLevel, reasons: []string{`advisory: on MISP warninglist "List of known IPv4 public DNS resolvers"`},
		},
		{
			name: "the author's comment", attr: attr(func(a *intel.Attribute) { a.Comment = "Potential false-positive but included in the OSINT report" }),
			event: event(func(e *intel.Event) { e.ThreatLevel = 3 }), want: verdict.Suspicious, rule: verdict.RuleThreatLevel,
			reasons: []string{`; comment: "Potential false-positive but included in the OSINT report".`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.policy
			if p == nil {
				p = policy()
			}
			ev, a := tt.event, tt.attr
			if ev == nil {
				ev = event()
			}
			if a == nil {
				a = attr()
			}
			j := p.Judge(verdict.Input{Event: ev, Attribute: a, Warnings: tt.hits, Now: now, Valid: defValid})
			if j.Disposition != tt.want || j.Rule != tt.rule || j.Capped != tt.capped {
				t.Errorf("got %v by rule %d (capped %v), want %v by rule %d (capped %v); reason %q",
					j.Disposition, j.Rule, j.Capped, tt.want, tt.rule, tt.capped, j.Reason)
			}
			if !strings.HasPrefix(j.Reason, tt.want.String()+": ") || !strings.HasSuffix(j.Reason, ".") || strings.Contains(j.Reason, ". ") {
				t.Errorf("reason %q is not one sentence starting with the disposition", j.Reason)
			}
			for _, r := range tt.reasons {
				if !strings.Contains(j.Reason, r) {
					t.Errorf("reason %q lacks %q", j.Reason, r)
				}
			}
			for _, r := range tt.absent {
				if strings.Contains(j.Reason, r) {
					t.Errorf("reason %q has %q", j.Reason, r)
				}
			}
		})
	}
}

func TestSeverity(t *testing.T) {
	for d, want := range map[verdict.Disposition]verdict.Severity{
		verdict.Malicious: verdict.SeverityHigh, verdict.Suspicious: verdict.SeverityMedium,
		verdict.Common: verdict.SeverityLow, verdict.Clean: verdict.SeverityNone, verdict.Unknown: verdict.SeverityUnknown,
	} {
		var ev *intel.Event
		a := attr()
		switch d {
		case verdict.Malicious:
			ev = event()
		case verdict.Suspicious:
			ev = event(func(e *intel.Event) { e.ThreatLevel = 2 })
		case verdict.Common:
			ev, a = event(), attr(func(a *intel.Attribute) { a.Sightings = intel.Sightings{FalsePositive: 1} })
		case verdict.Clean:
			ev, a = event(), attr(func(a *intel.Attribute) { a.Tags = []string{"misp:benign"} })
		case verdict.Unknown:
			ev, a = event(func(e *intel.Event) { e.ThreatLevel = 4 }), attr(func(a *intel.Attribute) { a.ToIDS = false })
		}
		j := policy().Judge(verdict.Input{Event: ev, Attribute: a, Now: now, Valid: defValid})
		if j.Disposition != d || j.Severity != want {
			t.Errorf("%v: severity %q, want %q", j.Disposition, j.Severity, want)
		}
	}
	// A capped Malicious is a Medium.
	j := policy().Judge(verdict.Input{Event: event(), Attribute: attr(func(a *intel.Attribute) { a.ToIDS = false }), Now: now})
	if j.Severity != verdict.SeverityMedium {
		t.Errorf("capped severity %q, want Medium", j.Severity)
	}
}

func TestConfidence(t *testing.T) {
	tests := []struct {
		name  string
		event *intel.Event
		attr  *intel.Attribute
		want  verdict.Confidence
	}{
		{"published, analysis complete", event(), attr(), verdict.ConfidenceHigh},
		{"published, ongoing", event(func(e *intel.Event) { e.Analysis = intel.AnalysisOngoing }), attr(), verdict.ConfidenceMedium},
		{"published, analysis unknown", event(func(e *intel.Event) { e.Analysis = intel.AnalysisUnknown }), attr(), verdict.ConfidenceMedium},
		{"published, initial", event(func(e *intel.Event) { e.Analysis = intel.AnalysisInitial }), attr(), verdict.ConfidenceLow},
		{"unpublished, complete", event(func(e *intel.Event) { e.Published = false }), attr(), verdict.ConfidenceLow},
		{"decay 70", event(func(e *intel.Event) { e.Published = false }), attr(func(a *intel.Attribute) { a.Decay = []intel.DecayScore{{Score: 70}} }), verdict.ConfidenceHigh},
		{"decay 69.9", event(), attr(func(a *intel.Attribute) { a.Decay = []intel.DecayScore{{Score: 69.9}} }), verdict.ConfidenceMedium},
		{"decay 40", event(), attr(func(a *intel.Attribute) { a.Decay = []intel.DecayScore{{Score: 40}} }), verdict.ConfidenceMedium},
		{"decay 39", event(), attr(func(a *intel.Attribute) { a.Decay = []intel.DecayScore{{Score: 39}} }), verdict.ConfidenceLow},
		{"best of two decay models", event(), attr(func(a *intel.Attribute) { a.Decay = []intel.DecayScore{{Score: 10}, {Score: 90}} }), verdict.ConfidenceHigh},
		{
			"event confidence tag beats decay", event(func(e *intel.Event) { e.Tags = []string{`misp:confidence-level="fairly-confident"`} }),
			attr(func(a *intel.Attribute) { a.Decay = []intel.DecayScore{{Score: 90}} }), verdict.ConfidenceMedium,
		},
		{
			"attribute confidence tag beats event's", event(func(e *intel.Event) { e.Tags = []string{`misp:confidence-level="completely-confident"`} }),
			attr(func(a *intel.Attribute) { a.Tags = []string{`misp:confidence-level="rarely-confident"`} }), verdict.ConfidenceLow,
		},
		{"usually", event(func(e *intel.Event) {
			e.Published = false
			e.Tags = []string{`misp:confidence-level="usually-confident"`}
		}), attr(), verdict.ConfidenceHigh},
		{"unconfident", event(func(e *intel.Event) { e.Tags = []string{`misp:confidence-level="unconfident"`} }), attr(), verdict.ConfidenceLow},
		{"cannot be evaluated", event(func(e *intel.Event) { e.Tags = []string{`misp:confidence-level="confidence-cannot-be-evalued"`} }), attr(), verdict.ConfidenceUnknown},
		{"unknown value ignored", event(func(e *intel.Event) { e.Tags = []string{`misp:confidence-level="very"`} }), attr(), verdict.ConfidenceHigh},
	}
	for _, tt := range tests {
		j := policy().Judge(verdict.Input{Event: tt.event, Attribute: tt.attr, Now: now, Valid: defValid})
		if j.Confidence != tt.want {
			t.Errorf("%s: confidence %q, want %q", tt.name, j.Confidence, tt.want)
		}
	}
}

func TestValidTime(t *testing.T) {
	tests := []struct {
		name    string
		expires time.Time
		valid   verdict.Interval
		want    verdict.Interval
	}{
		{"no expiration", time.Time{}, defValid, defValid},
		{"expires within the week", now.Add(48 * time.Hour), defValid, verdict.Interval{Start: now, End: now.Add(48 * time.Hour)}},
		{"expires after the week", now.Add(30 * 24 * time.Hour), defValid, defValid},
		{"expired: start moves back", now.Add(-24 * time.Hour), defValid, verdict.Interval{Start: now.Add(-24 * time.Hour), End: now.Add(-24 * time.Hour)}},
		{"open end (a hash)", now.Add(time.Hour), verdict.Interval{Start: now}, verdict.Interval{Start: now, End: now.Add(time.Hour)}},
	}
	for _, tt := range tests {
		a := attr(func(a *intel.Attribute) {
			if !tt.expires.IsZero() {
				a.Sightings = intel.Sightings{Expiration: 1, Expires: tt.expires}
			}
		})
		j := policy().Judge(verdict.Input{Event: event(), Attribute: a, Now: now, Valid: tt.valid})
		if diff := cmp.Diff(tt.want, j.Valid); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
		if !j.Valid.End.IsZero() && j.Valid.Start.After(j.Valid.End) {
			t.Errorf("%s: start after end", tt.name)
		}
	}
}

func TestVerdict(t *testing.T) {
	j := func(d verdict.Disposition, r verdict.Rule) verdict.Judgement {
		return verdict.Judgement{Disposition: d, Rule: r}
	}
	const (
		lvl = verdict.RuleThreatLevel
		wl  = verdict.RuleWarninglist
	)
	tests := []struct {
		name string
		js   []verdict.Judgement
		want int
	}{
		{"none", nil, -1},
		{"one", []verdict.Judgement{j(verdict.Unknown, lvl)}, 0},
		{"most severe", []verdict.Judgement{j(verdict.Common, lvl), j(verdict.Malicious, lvl), j(verdict.Suspicious, lvl)}, 1},
		{"first among equals", []verdict.Judgement{j(verdict.Suspicious, lvl), j(verdict.Suspicious, lvl)}, 0},
		{"Common beats Clean beats Unknown", []verdict.Judgement{j(verdict.Unknown, lvl), j(verdict.Clean, verdict.RuleBenignTag), j(verdict.Common, lvl)}, 2},
		{"Clean beats Unknown", []verdict.Judgement{j(verdict.Unknown, lvl), j(verdict.Clean, verdict.RuleBenignTag)}, 1},
		{"a benign tag does not beat another event's Malicious", []verdict.Judgement{j(verdict.Clean, verdict.RuleBenignTag), j(verdict.Malicious, lvl)}, 1},
		{"a warninglist beats a Malicious", []verdict.Judgement{j(verdict.Malicious, lvl), j(verdict.Common, wl)}, 1},
		{"the first warninglist judgement", []verdict.Judgement{j(verdict.Common, lvl), j(verdict.Common, wl), j(verdict.Common, wl)}, 1},
	}
	for _, tt := range tests {
		if got := verdict.Verdict(tt.js); got != tt.want {
			t.Errorf("%s: Verdict = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestParseTags(t *testing.T) {
	tags, err := verdict.ParseTags(` tlp:red , misp-galaxy:threat-actor=*,, Kill-Chain:*  `)
	if err != nil {
		t.Fatal(err)
	}
	for tag, want := range map[string]bool{
		"tlp:red": true, "TLP:RED": true, "tlp:red ": true, "tlp:redder": false,
		`misp-galaxy:threat-actor="APT 28"`: true, "misp-galaxy:threat-actor": false,
		"kill-chain:Delivery": true, "": false,
	} {
		if got := tags.Match(tag); got != want {
			t.Errorf("Match(%q) = %v, want %v", tag, got, want)
		}
	}
	if empty, err := verdict.ParseTags(" , "); err != nil || !empty.Empty() || empty.Match("x") {
		t.Errorf("blank setting: %v %v", empty, err)
	}
	if _, err := verdict.ParseTags("a,*"); err == nil {
		t.Error("a lone * was accepted")
	}
	if got := verdict.ParseOrgs(" CIRCL, ,Example CERT "); !cmp.Equal(got, []string{"CIRCL", "Example CERT"}) {
		t.Errorf("ParseOrgs = %q", got)
	}
}

// TestNilEvidence: the policy never panics on missing evidence.
func TestNilEvidence(t *testing.T) {
	// An empty event is Undefined and an empty attribute not for IDS: Unknown, uncapped.
	j := policy().Judge(verdict.Input{Now: now})
	if j.Disposition != verdict.Unknown || j.Capped || j.Confidence != verdict.ConfidenceLow {
		t.Errorf("empty input: %v %q %q", j.Disposition, j.Reason, j.Confidence)
	}
}

func TestJudgeEvent(t *testing.T) {
	p := policy()
	ev := event(func(e *intel.Event) {
		e.Attributes = []intel.Attribute{
			*attr(func(a *intel.Attribute) { a.UUID = "benign"; a.Tags = []string{"misp:benign"} }),
			*attr(func(a *intel.Attribute) { a.UUID = "not-ids"; a.ToIDS = false }),
			*attr(func(a *intel.Attribute) { a.UUID = "ids" }),
		}
	})
	j, i := p.JudgeEvent(ev, "198.51.100.7", nil, now, defValid)
	if i != 2 || j.Disposition != verdict.Malicious || !strings.Contains(j.Reason, "flagged for IDS") {
		t.Errorf("decisive attribute %d, %v %q; want the IDS one, Malicious", i, j.Disposition, j.Reason)
	}
	// The same attributes judged one by one agree.
	var js []verdict.Judgement
	for k := range ev.Attributes {
		js = append(js, p.Judge(verdict.Input{Event: ev, Attribute: &ev.Attributes[k], Now: now, Valid: defValid}))
	}
	if got := verdict.Verdict(js); got != i || !cmp.Equal(js[got], j) {
		t.Errorf("Verdict over Judge = %d (%+v), JudgeEvent = %d (%+v)", got, js[got], i, j)
	}
	// A value-level warninglist hit makes the first attribute decisive.
	j, i = p.JudgeEvent(ev, "198.51.100.7", []intel.WarninglistHit{dnsList}, now, defValid)
	if i != 0 || j.Rule != verdict.RuleWarninglist {
		t.Errorf("with a hit: attribute %d, rule %d", i, j.Rule)
	}
	if _, i := p.JudgeEvent(event(), "198.51.100.7", nil, now, defValid); i != -1 {
		t.Errorf("no attributes: %d", i)
	}
}

// TestCompositeWarnings: the policy reads an attribute's own warnings only when they are
// about its whole value; a hit on one half of a composite attribute is the caller's to pass
// in Warnings when the observable is that half (intel.Attribute.WarningsAbout).
func TestCompositeWarnings(t *testing.T) {
	cdn := intel.WarninglistHit{List: "CDN", Value: "104.16.1.1"}
	a := attr(func(a *intel.Attribute) {
		a.Type, a.Value, a.Warnings = "domain|ip", "c2.example|104.16.1.1", []intel.WarninglistHit{cdn}
	})
	j := policy().Judge(verdict.Input{Event: event(), Attribute: a, Now: now, Valid: defValid})
	if j.Rule == verdict.RuleWarninglist || j.Disposition == verdict.Common || strings.Contains(j.Reason, "CDN") {
		t.Errorf("a hit on the other half decided %+v", j)
	}
	j = policy().Judge(verdict.Input{Event: event(), Attribute: a, Warnings: a.WarningsAbout("104.16.1.1"), Now: now, Valid: defValid})
	if j.Rule != verdict.RuleWarninglist || j.Disposition != verdict.Common || !strings.Contains(j.Reason, `"CDN"`) {
		t.Errorf("the listed half, passed in: %+v", j)
	}
}
