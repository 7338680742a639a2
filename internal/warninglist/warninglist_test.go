package warninglist_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/warninglist"
)

const (
	sampleDir   = "../../sample/warninglists"
	testdataDir = "testdata"

	dnsV4     = "List of known IPv4 public DNS resolvers"
	dnsV6     = "List of known IPv6 public DNS resolvers"
	rfc1918   = "List of RFC 1918 CIDR blocks"
	rfc5735   = "List of RFC 5735 CIDR blocks"
	multicast = "List of RFC 5771 multicast CIDR blocks"
	shortener = "List of known URL Shorteners domains"
	google    = "List of known google domains"
	empty     = "List of known hashes for empty files"
	iocFP     = "List of known hashes with common false-positives (based on Florian Roth input list)"
	roles     = "Test role addresses (regex)"
	sinkholes = "Test sinkhole names (substring)"
)

// loadAll loads the sample lists and the test lists into one set, as a relay pointed at a
// directory holding all of them would.
func loadAll(t testing.TB) *warninglist.Set {
	t.Helper()
	dir := t.TempDir()
	for _, from := range []string{filepath.Join(sampleDir, "lists"), filepath.Join(testdataDir, "lists")} {
		entries, err := os.ReadDir(from)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			abs, err := filepath.Abs(filepath.Join(from, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(abs, filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	s, err := warninglist.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func names(hits []intel.WarninglistHit) []string {
	var out []string
	for _, h := range hits {
		out = append(out, h.List)
	}
	return out
}

func TestLoadSample(t *testing.T) {
	s, err := warninglist.Load(sampleDir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range s.Lists() {
		got = append(got, l.Dir+"="+l.Type)
	}
	if diff := cmp.Diff([]string{"empty-hashes=string", "public-dns-v4=cidr", "rfc1918=cidr"}, got); diff != "" {
		t.Errorf("lists (-want +got):\n%s", diff)
	}
	if n := s.Entries(); n != 62745+3+6 {
		t.Errorf("%d entries, want every entry of the three lists", n)
	}
	if w := s.Warnings(); len(w) != 0 {
		t.Errorf("warnings on the sample lists: %q", w)
	}
	hits := s.Lookup("ip-dst", "8.8.8.8")
	want := []intel.WarninglistHit{{Source: intel.ListRelay, List: dnsV4, Match: "8.8.8.8"}}
	if diff := cmp.Diff(want, hits); diff != "" {
		t.Errorf("8.8.8.8 (-want +got):\n%s", diff)
	}
}

func TestLookup(t *testing.T) {
	s := loadAll(t)
	tests := []struct {
		name, typ, value string
		want             []string
	}{
		{"public resolver", "ip-dst", "8.8.8.8", []string{dnsV4}},
		{"public resolver as ip-src", "ip-src", "1.1.1.1", []string{dnsV4}},
		{"composite half", "domain|ip", "8.8.4.4", []string{dnsV4}},
		{"composite value split", "ip-dst|port", "8.8.8.8|53", []string{dnsV4}},
		{"type not matching", "domain", "8.8.8.8", nil},
		{"no type: every list", "", "8.8.8.8", []string{dnsV4}},
		{"private address in two lists", "ip-dst", "10.1.2.3", []string{rfc1918, rfc5735}},
		{"prefix inside a block", "ip-src", "192.168.10.0/24", []string{rfc1918, rfc5735}},
		{"prefix wider than every block", "ip-src", "192.0.0.0/2", nil},
		{"multicast", "ip-dst", "239.1.2.3", []string{multicast, rfc5735}},
		{"ipv6 resolver", "ip-dst", "2001:4860:4860::8888", []string{dnsV6}},
		{"ipv6 resolver, other spelling", "ip-dst", "2001:4860:4860:0:0:0:0:8888", []string{dnsV6}},
		{"ipv4-mapped ipv6", "ip-dst", "::ffff:8.8.8.8", []string{dnsV4}},
		{"documentation address", "ip-dst", "198.51.100.23", []string{rfc5735}},
		{"public address", "ip-dst", "203.0.114.1", nil},
		{"empty-file md5", "md5", "d41d8cd98f00b204e9800998ecf8427e", []string{iocFP, empty}},
		{"empty-file md5 upper case", "md5", "D41D8CD98F00B204E9800998ECF8427E", []string{iocFP, empty}},
		{"empty-file sha256 in a filename|sha256", "filename|sha256", "empty.txt|e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", []string{iocFP, empty}},
		{"empty-file sha512, one list only", "sha512", "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e", []string{empty}},
		{"empty-file md5 as a domain", "domain", "d41d8cd98f00b204e9800998ecf8427e", nil},
		{"ioc false positive", "sha256", "01ba4719c80b6fe911b091a7c05124b64eeece964e09c058ef8f9805daca546b", []string{iocFP}},
		{"shortener domain", "domain", "bit.ly", []string{shortener}},
		{"shortener subdomain", "hostname", "www.bit.ly", []string{shortener}},
		{"shortener trailing dot and case", "domain", "Bit.LY.", []string{shortener}},
		{"shortener url", "url", "https://bit.ly/3xYz?utm=1", []string{shortener}},
		{"shortener url with port and user", "url", "http://user@bit.ly:8080/x", []string{shortener}},
		{"not a subdomain", "domain", "notbit.ly", nil},
		{"string list entries are exact", "domain", "maps.google.ad", nil},
		{"string list exact entry", "domain", "www.google.ad", []string{google}},
		{"substring", "domain", "sinkhole.example.net", []string{sinkholes}},
		{"substring any type", "url", "http://cdn.EXAMPLE-CDN.net/a", []string{sinkholes}},
		{"regex", "email-src", "Abuse@example.com", []string{roles}},
		{"regex other delimiter", "email-dst", "postmaster@example.org", []string{roles}},
		{"regex \\Z", "email", "hostmaster@example.org", []string{roles}},
		{"regex wrong type", "domain", "abuse@example.com", nil},
		{"regex no match", "email", "ceo@example.com", nil},
		{"blank", "ip-dst", "  ", nil},
		{"garbage", "ip-dst", "not/an:ip", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := names(s.Lookup(tt.typ, tt.value))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Lookup(%q, %q) (-want +got):\n%s", tt.typ, tt.value, diff)
			}
		})
	}
}

func TestLookupMatch(t *testing.T) {
	s := loadAll(t)
	got := s.Lookup("ip-dst", "10.9.8.7")
	want := []intel.WarninglistHit{{Source: intel.ListRelay, List: rfc1918, Match: "10.0.0.0/8"}, {Source: intel.ListRelay, List: rfc5735, Match: "10.0.0.0/8"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hits (-want +got):\n%s", diff)
	}
	if got := s.Lookup("url", "https://tinyurl.com/abc"); len(got) != 1 || got[0].Match != "tinyurl.com" {
		t.Errorf("hostname hit = %+v, want the entry tinyurl.com", got)
	}
}

func TestNilSet(t *testing.T) {
	var s *warninglist.Set
	if hits := s.Lookup("ip-dst", "8.8.8.8"); hits != nil {
		t.Errorf("nil set found %v", hits)
	}
}

// TestSkippedRegexEntries checks that entries RE2 cannot express are skipped with one
// warning each, and the other entries of the list still work.
func TestSkippedRegexEntries(t *testing.T) {
	s := loadAll(t)
	var regexWarnings []string
	for _, w := range s.Warnings() {
		if strings.Contains(w, "test-regex") {
			regexWarnings = append(regexWarnings, w)
		}
	}
	if len(regexWarnings) != 2 {
		t.Fatalf("warnings = %q, want one for the lookahead and one for the backreference", regexWarnings)
	}
	for i, want := range []string{"lookaround", "backreferences"} {
		if !strings.Contains(regexWarnings[i], want) {
			t.Errorf("warning %q does not say %s", regexWarnings[i], want)
		}
	}
	for _, l := range s.Lists() {
		if l.Dir == "test-regex" && l.Entries != 3 {
			t.Errorf("test-regex has %d entries, want the 3 RE2 can express", l.Entries)
		}
	}
}

// loadLists writes each list (directory name to list.json) into a fresh checkout and loads it.
func loadLists(t *testing.T, lists map[string]string) *warninglist.Set {
	t.Helper()
	dir := t.TempDir()
	for name, body := range lists {
		writeList(t, dir, name, body)
	}
	s, err := warninglist.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeList(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, "lists", name, "list.json")
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadErrors(t *testing.T) {
	good := `{"name":"Good","type":"string","list":["a"]}`
	tests := []struct {
		name string
		body string
		want string // in the error, with the file's path
	}{
		{"invalid JSON", `{"name":"x","type":"string","list":[`, "not a MISP warninglist"},
		{"not an object", `[1,2]`, "not a MISP warninglist"},
		{"entries not strings", `{"name":"x","type":"string","list":[1]}`, "not a MISP warninglist"},
		{"no name", `{"type":"string","list":["a"]}`, "no name"},
		{"no list", `{"name":"x","type":"string"}`, `no "list"`},
		{"unknown type", `{"name":"x","type":"fuzzy","list":["a"]}`, `unknown list type "fuzzy"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeList(t, dir, "a-good", good)
			bad := writeList(t, dir, "b-bad", tt.body)
			_, err := warninglist.Load(dir)
			if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one naming %s and saying %q", err, bad, tt.want)
			}
		})
	}
	t.Run("missing directory", func(t *testing.T) {
		_, err := warninglist.Load(filepath.Join(t.TempDir(), "nope"))
		if err == nil || !strings.Contains(err.Error(), "nope") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("no list at all", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "lists", "empty"), 0o750); err != nil {
			t.Fatal(err)
		}
		_, err := warninglist.Load(dir)
		if err == nil || !strings.Contains(err.Error(), "no warninglist") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestLoadLayouts(t *testing.T) {
	// The repository root (lists/ inside) and the lists directory itself both work; a
	// directory without list.json beside the lists is ignored.
	dir := t.TempDir()
	writeList(t, dir, "one", `{"name":"One","type":"hostname","list":["example.net"],"matching_attributes":["ALL"]}`)
	if err := os.MkdirAll(filepath.Join(dir, "lists", "tools"), 0o750); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, filepath.Join(dir, "lists")} {
		s, err := warninglist.Load(d)
		if err != nil {
			t.Fatalf("Load(%s): %v", d, err)
		}
		if got := names(s.Lookup("url", "https://www.example.net/x")); len(got) != 1 {
			t.Errorf("Load(%s): lookup = %v", d, got)
		}
	}
}

func TestBadCIDREntries(t *testing.T) {
	dir := t.TempDir()
	writeList(t, dir, "nets", `{"name":"Nets","type":"cidr","list":["192.0.2.0/24","not-an-ip","300.1.1.1"," 2001:db8::/32 "]}`)
	s, err := warninglist.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if w := s.Warnings(); len(w) != 1 || !strings.Contains(w[0], "2 entries") {
		t.Errorf("warnings = %q, want one naming the 2 bad entries", w)
	}
	if got := names(s.Lookup("ip-dst", "2001:db8::1")); len(got) != 1 {
		t.Errorf("2001:db8::1 = %v", got)
	}
}
