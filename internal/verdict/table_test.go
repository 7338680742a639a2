package verdict_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/verdict"
)

// TestThreatLevelTable is the README's "Threat level and IDS flag" table, row by row: an
// attribute no other evidence decides, in an event of each threat level, flagged for IDS or
// not, in each publication state (which sets the confidence of rows T1 to T4).
func TestThreatLevelTable(t *testing.T) {
	type pub struct {
		name      string
		published bool
		analysis  intel.Analysis
	}
	complete := pub{"published, analysis complete", true, intel.AnalysisComplete}
	ongoing := pub{"published, analysis ongoing", true, intel.AnalysisOngoing}
	draft := pub{"unpublished", false, intel.AnalysisComplete}
	tests := []struct {
		row     string
		level   int
		ids     bool
		want    verdict.Disposition
		sev     verdict.Severity
		conf    map[pub]verdict.Confidence
		reasons []string
	}{
		{
			"T1", 1, true, verdict.Malicious, verdict.SeverityHigh,
			map[pub]verdict.Confidence{complete: verdict.ConfidenceHigh, ongoing: verdict.ConfidenceMedium, draft: verdict.ConfidenceLow},
			[]string{"Malicious: MISP event threat level High; flagged for IDS"},
		},
		{
			"T2", 1, false, verdict.Suspicious, verdict.SeverityMedium,
			map[pub]verdict.Confidence{complete: verdict.ConfidenceHigh, ongoing: verdict.ConfidenceMedium, draft: verdict.ConfidenceLow},
			[]string{"Suspicious: MISP event threat level High, capped at Suspicious: not flagged for IDS (to_ids false)"},
		},
		{
			"T3", 2, true, verdict.Suspicious, verdict.SeverityMedium,
			map[pub]verdict.Confidence{complete: verdict.ConfidenceHigh, ongoing: verdict.ConfidenceMedium, draft: verdict.ConfidenceLow},
			[]string{"Suspicious: MISP event threat level Medium; flagged for IDS"},
		},
		{
			"T4", 2, false, verdict.Suspicious, verdict.SeverityLow,
			map[pub]verdict.Confidence{complete: verdict.ConfidenceHigh, ongoing: verdict.ConfidenceMedium, draft: verdict.ConfidenceLow},
			[]string{"Suspicious: MISP event threat level Medium; not flagged for IDS"},
		},
		{
			"T5", 3, true, verdict.Suspicious, verdict.SeverityLow,
			map[pub]verdict.Confidence{complete: verdict.ConfidenceLow, ongoing: verdict.ConfidenceLow, draft: verdict.ConfidenceLow},
			[]string{"Suspicious: MISP event threat level Low, flagged for IDS: weak evidence"},
		},
		{
			"T6", 3, false, verdict.Unknown, verdict.SeverityUnknown,
			map[pub]verdict.Confidence{complete: verdict.ConfidenceLow, ongoing: verdict.ConfidenceLow, draft: verdict.ConfidenceLow},
			[]string{"Unknown: MISP event threat level Low, not flagged for IDS: mentioned, not accused"},
		},
		{
			"T7", 4, true, verdict.Suspicious, verdict.SeverityLow,
			map[pub]verdict.Confidence{complete: verdict.ConfidenceLow, ongoing: verdict.ConfidenceLow, draft: verdict.ConfidenceLow},
			[]string{"Suspicious: MISP event threat level Undefined, flagged for IDS: weak evidence"},
		},
		{
			"T8", 4, false, verdict.Unknown, verdict.SeverityUnknown,
			map[pub]verdict.Confidence{complete: verdict.ConfidenceLow, ongoing: verdict.ConfidenceLow, draft: verdict.ConfidenceLow},
			[]string{"Unknown: MISP event threat level Undefined, not flagged for IDS: mentioned, not accused"},
		},
	}
	for _, tt := range tests {
		for p, conf := range tt.conf {
			t.Run(tt.row+"/"+p.name, func(t *testing.T) {
				ev := event(func(e *intel.Event) { e.ThreatLevel, e.Published, e.Analysis = tt.level, p.published, p.analysis })
				a := attr(func(a *intel.Attribute) { a.ToIDS = tt.ids })
				j := policy().Judge(verdict.Input{Event: ev, Attribute: a, Value: a.Value, Now: now, Valid: defValid})
				if j.Disposition != tt.want || j.Severity != tt.sev || j.Confidence != conf || j.Rule != verdict.RuleThreatLevel {
					t.Errorf("got %v, severity %s, confidence %s (rule %d); want %v, %s, %s; reason %q",
						j.Disposition, j.Severity, j.Confidence, j.Rule, tt.want, tt.sev, conf, j.Reason)
				}
				for _, r := range tt.reasons {
					if !strings.Contains(j.Reason, r) {
						t.Errorf("reason %q lacks %q", j.Reason, r)
					}
				}
			})
		}
	}
}

// TestNoCommonFromThreatLevel: whatever the threat level, the IDS flag and the publication,
// the threat level never makes a value Common or Clean; only evidence about the value does.
func TestNoCommonFromThreatLevel(t *testing.T) {
	for level := range 6 {
		for _, ids := range []bool{true, false} {
			for _, published := range []bool{true, false} {
				ev := event(func(e *intel.Event) { e.ThreatLevel, e.Published = level, published })
				j := policy().Judge(verdict.Input{Event: ev, Attribute: attr(func(a *intel.Attribute) { a.ToIDS = ids }), Now: now})
				if j.Disposition == verdict.Common || j.Disposition == verdict.Clean {
					t.Errorf("level %d, IDS %v, published %v: %v (%q)", level, ids, published, j.Disposition, j.Reason)
				}
				if ids && j.Disposition == verdict.Unknown {
					t.Errorf("level %d, published %v: an IDS-flagged indicator is Unknown", level, published)
				}
			}
		}
	}
}

// TestJudged: the README's "Judge indicators, report context" rows.
func TestJudged(t *testing.T) {
	const md5 = "0749bae92ca336a02c83d126e04ec628"
	tests := []struct {
		name, typ, value, by string
		ids                  bool
		want                 bool
	}{
		{"a report's URL", "link", "https://blog.example/report", "https://blog.example/report", false, false},
		{"a VirusTotal permalink, even for IDS", "link", "https://www.virustotal.com/file/x/analysis/1/", "https://www.virustotal.com/file/x/analysis/1/", true, false},
		{"a comment", "comment", "C2 rotates weekly", "C2 rotates weekly", false, false},
		{"text", "text", "Xorist", "Xorist", false, false},
		{"other", "other", "x", "x", false, false},
		{"an attachment", "attachment", "report.pdf", "report.pdf", false, false},
		{"an e-mail attachment's name", "email-attachment", "invoice.doc", "invoice.doc", true, false},
		{"a file name flagged for IDS", "filename", "uhfx.dat", "uhfx.dat", true, true},
		{"a file name not flagged for IDS", "filename", "yxsrhsxhxdbldkc.dat", "yxsrhsxhxdbldkc.dat", false, false},
		{"the name half of filename|md5", "filename|md5", "conhost.exe|" + md5, "conhost.exe", true, false},
		{"the name half, other letter case", "filename|sha256", "IEChecker.exe|7a20", "iechecker.EXE", true, false},
		{"the hash half of filename|md5", "filename|md5", "conhost.exe|" + md5, md5, true, true},
		{"the name half of a malware-sample", "malware-sample", "runas.exe|" + md5, "runas.exe", true, false},
		{"the hash half of a malware-sample", "malware-sample", "runas.exe|" + md5, strings.ToUpper(md5), true, true},
		{"both halves the same value", "filename|md5", md5 + "|" + md5, md5, true, true},
		{"the domain half of domain|ip", "domain|ip", "c2.example|198.51.100.7", "c2.example", true, true},
		{"the ip half of ip-dst|port", "ip-dst|port", "198.51.100.7|443", "198.51.100.7", false, true},
		{"an ip", "ip-dst", "198.51.100.7", "198.51.100.7", false, true},
		{"a url", "url", "http://c2.example/gate.php", "http://c2.example/gate.php", true, true},
		{"no value given: the whole attribute", "filename|md5", "conhost.exe|" + md5, "", true, true},
	}
	for _, tt := range tests {
		a := &intel.Attribute{Type: tt.typ, Value: tt.value, ToIDS: tt.ids}
		if got := verdict.Judged(a, tt.by); got != tt.want {
			t.Errorf("%s: Judged = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestJudgeEventContext: an event that mentions a value only as context gives no judgement;
// one that also has it as an indicator is judged by that attribute.
func TestJudgeEventContext(t *testing.T) {
	const url = "https://www.virustotal.com/file/cb7c/analysis/1510574305/"
	link := intel.Attribute{Type: "link", Category: "External analysis", Value: url}
	ev := event(func(e *intel.Event) { e.Attributes = []intel.Attribute{link} })
	if j, i := policy().JudgeEvent(ev, url, []intel.WarninglistHit{dnsList}, now, defValid); i != -1 || j.Rule != 0 {
		t.Errorf("a link alone: attribute %d, %+v; want no judgement, even with a warninglist hit", i, j)
	}
	asURL := intel.Attribute{Type: "url", Category: "Network activity", Value: url, ToIDS: true}
	ev.Attributes = append(ev.Attributes, asURL)
	if j, i := policy().JudgeEvent(ev, url, nil, now, defValid); i != 1 || j.Disposition != verdict.Malicious {
		t.Errorf("link and url: attribute %d, %v; want the url, Malicious", i, j.Disposition)
	}
	// The name half of a sample: no judgement by the name; the hash is judged.
	sample := intel.Attribute{Type: "malware-sample", Value: "runas.exe|0749bae92ca336a02c83d126e04ec628", ToIDS: true}
	ev = event(func(e *intel.Event) { e.ThreatLevel = 3; e.Attributes = []intel.Attribute{sample} })
	if _, i := policy().JudgeEvent(ev, "runas.exe", nil, now, defValid); i != -1 {
		t.Errorf("the sample's name was judged")
	}
	if j, i := policy().JudgeEvent(ev, "0749bae92ca336a02c83d126e04ec628", nil, now, defValid); i != 0 || j.Disposition != verdict.Suspicious {
		t.Errorf("the sample's hash: %d, %v; want Suspicious (a Low event's IDS indicator)", i, j.Disposition)
	}
}

// TestJudgeEventSeverity: among equal dispositions, the decisive attribute is the one of
// highest severity (a Medium event's IDS value over its non-IDS one).
func TestJudgeEventSeverity(t *testing.T) {
	ev := event(func(e *intel.Event) {
		e.ThreatLevel = 2
		e.Attributes = []intel.Attribute{
			{Type: "domain|ip", Value: "c2.example|198.51.100.7"},
			{Type: "ip-dst", Value: "198.51.100.7", ToIDS: true},
		}
	})
	j, i := policy().JudgeEvent(ev, "198.51.100.7", nil, now, defValid)
	if i != 1 || j.Severity != verdict.SeverityMedium {
		t.Errorf("decisive %d, severity %s; want the IDS one, Medium", i, j.Severity)
	}
}

// TestJudgeListed: a value on a list that decides is Common by the list alone, naming whose
// list it is; advisory lists alone give nothing.
func TestJudgeListed(t *testing.T) {
	p := policy(func(p *verdict.Policy) { p.Advisory = []string{awsList.List} })
	tests := []struct {
		name   string
		hits   []intel.WarninglistHit
		ok     bool
		reason string
	}{
		{"no hit", nil, false, ""},
		{"advisory only", []intel.WarninglistHit{awsList}, false, ""},
		{"MISP's list", []intel.WarninglistHit{dnsList}, true, `Common: on MISP warninglist "List of known IPv4 public DNS resolvers".`},
		{"the relay's list", []intel.WarninglistHit{relayDNS}, true, `Common: on the relay's warninglist "List of known IPv4 public DNS resolvers".`},
		{
			"with an advisory one",
			[]intel.WarninglistHit{relayDNS, awsList},
			true,
			`Common: on the relay's warninglist "List of known IPv4 public DNS resolvers"; advisory: on the relay's warninglist "List of known Amazon AWS IP address ranges".`,
		},
	}
	for _, tt := range tests {
		j, ok := p.JudgeListed(tt.hits, defValid)
		if ok != tt.ok || j.Reason != tt.reason {
			t.Errorf("%s: %v %q, want %v %q", tt.name, ok, j.Reason, tt.ok, tt.reason)
		}
		if ok {
			want := verdict.Judgement{
				Disposition: verdict.Common, Severity: verdict.SeverityLow, Confidence: verdict.ConfidenceHigh,
				Rule: verdict.RuleWarninglist, Reason: tt.reason, Valid: defValid, ByMISP: tt.hits[0].Source == intel.ListMISP,
			}
			if diff := cmp.Diff(want, j); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tt.name, diff)
			}
		}
	}
}

// TestVerdictOrder: no judgement is skipped, and severity orders equal dispositions.
func TestVerdictOrder(t *testing.T) {
	js := []verdict.Judgement{
		{},
		{Disposition: verdict.Suspicious, Severity: verdict.SeverityLow, Rule: verdict.RuleThreatLevel},
		{Disposition: verdict.Suspicious, Severity: verdict.SeverityMedium, Rule: verdict.RuleThreatLevel},
		{Disposition: verdict.Unknown, Severity: verdict.SeverityUnknown, Rule: verdict.RuleThreatLevel},
	}
	if got := verdict.Verdict(js); got != 2 {
		t.Errorf("Verdict = %d, want the Medium Suspicious", got)
	}
	if got := verdict.Verdict([]verdict.Judgement{{}, {}}); got != -1 {
		t.Errorf("no judgements: %d", got)
	}
}
