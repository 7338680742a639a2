package verdict

import (
	"errors"
	"strings"
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
	// Advisory are the names of warninglists (compared ignoring case) that are named in the
	// reason but never decide (WARNINGLISTS_ADVISORY): cloud and CDN ranges, VPN exits,
	// dynamic DNS, where attackers live too. They apply to MISP's lists and the relay's alike.
	Advisory []string
}

// advisory reports whether the list named name is an advisory one.
func (p *Policy) advisory(name string) bool {
	for _, a := range p.Advisory {
		if strings.EqualFold(a, name) {
			return true
		}
	}
	return false
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
