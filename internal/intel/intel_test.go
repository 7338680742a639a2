package intel_test

import (
	"slices"
	"testing"

	"github.com/misp-relay/misp-relay/internal/intel"
)

func TestCanonicalUUID(t *testing.T) {
	for s, want := range map[string]bool{
		"57c4445b-c548-4654-af0b-4be3950d210f": true,
		"57C4445B-C548-4654-AF0B-4BE3950D210F": true,
		"57c4445b-c548-4654-af0b-4be3950d210":  false, // short
		"57c4445b-c548-4654-af0b-4be3950d210g": false, // not hex
		"57c4445bxc548-4654-af0b-4be3950d210f": false, // no hyphen
		"..":                                   false, "": false, "../../../../../../etc/passwd-0000000": false,
	} {
		if got := intel.CanonicalUUID(s); got != want {
			t.Errorf("CanonicalUUID(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestSafeValue(t *testing.T) {
	for v, want := range map[string]bool{
		"198.51.100.7": true, "evil.example": true, "a%b": true,
		"": false, "0": false, "!x": false, "%x": false, "x%": false, "a&&b": false,
	} {
		if got := intel.SafeValue(v); got != want {
			t.Errorf("SafeValue(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestWarningsAbout(t *testing.T) {
	ip := intel.WarninglistHit{List: "CDN", Value: "104.16.1.1"}
	ip6 := intel.WarninglistHit{List: "DNS", Value: "2001:4860:4860::8888"}
	dom := intel.WarninglistHit{List: "Tranco", Value: "Example.COM"}
	untold := intel.WarninglistHit{List: "Untold"}
	for _, tt := range []struct {
		name, typ, attrValue, value string
		warnings                    []intel.WarninglistHit
		want                        []string
	}{
		{"plain attribute: every hit", "ip-dst", "104.16.1.1", "104.16.1.1", []intel.WarninglistHit{ip, untold}, []string{"CDN", "Untold"}},
		{"the listed half", "domain|ip", "c2.example|104.16.1.1", "104.16.1.1", []intel.WarninglistHit{ip}, []string{"CDN"}},
		{"the other half", "domain|ip", "c2.example|104.16.1.1", "c2.example", []intel.WarninglistHit{ip}, nil},
		{"a half in another letter case", "domain|ip", "example.com|192.0.2.1", "example.com", []intel.WarninglistHit{dom, ip}, []string{"Tranco"}},
		{"an IPv6 half spelt otherwise", "hostname|ip", "dns.example|2001:4860:4860::8888", "2001:4860:4860:0:0:0:0:8888", []intel.WarninglistHit{ip6}, []string{"DNS"}},
		{"a composite hit naming no half", "domain|ip", "c2.example|104.16.1.1", "c2.example", []intel.WarninglistHit{untold}, nil},
		{"malware-sample is composite", "malware-sample", "drop.exe|d41d8cd98f00b204e9800998ecf8427e", "drop.exe", []intel.WarninglistHit{{List: "Hashes", Value: "d41d8cd98f00b204e9800998ecf8427e"}}, nil},
		{"the composite's whole value (the policy's own reading)", "domain|ip", "c2.example|104.16.1.1", "c2.example|104.16.1.1", []intel.WarninglistHit{ip, untold}, nil},
	} {
		a := &intel.Attribute{Type: tt.typ, Value: tt.attrValue, Warnings: tt.warnings}
		var got []string
		for _, h := range a.WarningsAbout(tt.value) {
			got = append(got, h.List)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: WarningsAbout(%q) = %q, want %q", tt.name, tt.value, got, tt.want)
		}
	}
}
