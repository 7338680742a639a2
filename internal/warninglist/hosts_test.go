package warninglist_test

import "testing"

// TestHostsAsMISPAndBrowsersReadThem: hostname entries are folded as MISP folds them, and a
// URL's host is the one a browser would connect to, so that no URL borrows a listed name.
func TestHostsAsMISPAndBrowsersReadThem(t *testing.T) {
	s := loadLists(t, map[string]string{
		// hostname list entries as upstream writes some of them (lists/dynamic-dns: ".duckdns.org");
		// MISP's Warninglist::getFilteredEntries folds them with strtolower(trim($v, '.')).
		"ddns": `{"name":"List of known dynamic DNS domains","type":"hostname","version":1,
		  "matching_attributes":["domain","hostname","domain|ip"],"list":[".duckdns.org"]}`,
		"google": `{"name":"google","type":"hostname","version":1,
		  "matching_attributes":["domain","hostname","url"],"list":["google.com"]}`,
	})
	for _, tc := range []struct {
		typ, value string
		listed     bool
		why        string
	}{
		{"domain", "www.google.com", true, "subdomain"},
		{"url", "https://WWW.Google.com.:443/x", true, "scheme, case, trailing dot, port"},
		{"url", "https://google.com@evil.example/", false, "userinfo trick"},
		{"domain", "x.duckdns.org", true, "leading-dot hostname entry: MISP trims it"},
		{"domain", "duckdns.org", true, "leading-dot hostname entry, the name itself"},
		{"url", "www.google.com/search?q=x", true, "schemeless URL: MISP takes the part before the first '/'"},
		{"url", "evil.example/login?next=https://accounts.google.com/", false, "schemeless URL with a URL in its query: host is evil.example"},
		{"url", `http://evil.example\@www.google.com/`, false, `backslash: browsers (WHATWG) read "\" as "/", so the host is evil.example`},
		{"url", "//www.google.com/x", true, "scheme-relative URL"},
		{"url", "hxxp://evil.example/?u=https://google.com", false, "defanged scheme: still a scheme"},
		{"domain", "google.com.evil.example", false, "a listed name as a label of another"},
		{"url", "http://[2001:db8::1]:8080/", false, "an address is not a hostname"},
		{"url", "HTTPS://user:pw@Mail.Google.COM:8443/inbox", true, "user information, port, case"},
		{"url", "//www.google.com/x", true, "scheme-relative URL"},
		{"url", "hxxp://evil.example/?u=https://google.com", false, "defanged scheme: still a scheme"},
		{"domain", "google.com.evil.example", false, "a listed name as a label of another"},
		{"url", "http://[2001:db8::1]:8080/", false, "an address is not a hostname"},
	} {
		got := len(s.Lookup(tc.typ, tc.value)) > 0
		if got != tc.listed {
			t.Errorf("Lookup(%q, %q) listed=%v, want %v (%s)", tc.typ, tc.value, got, tc.listed, tc.why)
		}
	}
}
