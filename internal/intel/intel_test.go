package intel_test

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

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

func TestComposite(t *testing.T) {
	for _, tt := range []struct {
		typ, value    string
		first, second string
		ok            bool
	}{
		{"domain|ip", "evil.example|198.51.100.7", "evil.example", "198.51.100.7", true},
		{"filename|md5", "conhost.exe|0749bae92ca336a02c83d126e04ec628", "conhost.exe", "0749bae92ca336a02c83d126e04ec628", true},
		{"malware-sample", "runas.exe|0749bae92ca336a02c83d126e04ec628", "runas.exe", "0749bae92ca336a02c83d126e04ec628", true},
		{"hostname|port", "c2.example|8443", "c2.example", "8443", true},
		{"regkey|value", `HKLM\Run|C:\evil.exe|x`, `HKLM\Run`, `C:\evil.exe|x`, true}, // split at the first '|'
		{"domain|ip", "no-pipe.example", "", "", false},
		{"text", "left|right", "", "", false}, // not a composite type: one value
		{"md5", "0749bae92ca336a02c83d126e04ec628", "", "", false},
	} {
		first, second, ok := intel.Halves(tt.typ, tt.value)
		if first != tt.first || second != tt.second || ok != tt.ok {
			t.Errorf("Halves(%q, %q) = %q, %q, %v; want %q, %q, %v", tt.typ, tt.value, first, second, ok, tt.first, tt.second, tt.ok)
		}
	}
	for typ, want := range map[string][2]string{
		"malware-sample": {"filename", "md5"}, "domain|ip": {"domain", "ip-dst"}, "filename|sha256": {"filename", "sha256"},
		"ip-src|port": {"ip-src", "port"}, "hostname|port": {"hostname", "port"}, "regkey|value": {"regkey", "value"},
	} {
		if a, b, ok := intel.HalfTypes(typ); !ok || [2]string{a, b} != want {
			t.Errorf("HalfTypes(%q) = %q, %q, %v; want %q", typ, a, b, ok, want)
		}
	}
	if _, _, ok := intel.HalfTypes("ip-dst"); ok {
		t.Error("HalfTypes(ip-dst) says composite")
	}
}

func TestSameValue(t *testing.T) {
	for _, tt := range []struct {
		x, y string
		want bool
	}{
		{"Evil.Example", "evil.example", true},
		{" evil.example ", "evil.example", true},
		{"2001:DB8:0::1", "2001:db8::1", true},
		{"::ffff:198.51.100.7", "198.51.100.7", true},
		{"evil.example", "evil.example.net", false},
		{"198.51.100.7", "198.51.100.8", false},
	} {
		if got := intel.SameValue(tt.x, tt.y); got != tt.want {
			t.Errorf("SameValue(%q, %q) = %v", tt.x, tt.y, got)
		}
	}
}

func TestCleanComment(t *testing.T) {
	long := strings.Repeat("word ", 50) // 250 characters
	for _, tt := range []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"plain", "Potential false-positive but included in the OSINT report", "Potential false-positive but included in the OSINT report"},
		{"line breaks and tabs", "C2\r\n\tserver", "C2 server"},
		{"control characters", "a\x00b\x1bc\x7fd", "a b c d"},
		{"bidi override dropped", "evil\u202egnp.exe", "evilgnp.exe"},
		{"invalid UTF-8 dropped", "ok\xffok", "okok"},
		{"surrounding space", "  Trojan C2  ", "Trojan C2"},
		{"cut at a word", long, strings.TrimSpace(strings.Repeat("word ", 31)) + "…"},
		{"cut inside a long word", strings.Repeat("x", 200), strings.Repeat("x", intel.MaxComment-1) + "…"},
		{"exactly the bound", strings.Repeat("é", intel.MaxComment), strings.Repeat("é", intel.MaxComment)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := intel.CleanComment(tt.in)
			if got != tt.want {
				t.Errorf("CleanComment(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if n := utf8.RuneCountInString(got); n > intel.MaxComment {
				t.Errorf("%d characters, more than %d", n, intel.MaxComment)
			}
		})
	}
}
