package httpapi_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/misp-relay/misp-relay/internal/verdict"
	"github.com/misp-relay/misp-relay/internal/warninglist"
)

// TestCompositeWarningsAreAboutTheirHalf: a C2 domain recorded as a domain|ip attribute
// whose IP half is in a CDN range on a MISP warninglist. MISP checks a composite half by half
// and says which half a hit is about ("value"): the domain is on no list, so its verdict is
// the event's (Malicious), while the IP, looked up itself, is Common, on the list.
func TestCompositeWarningsAreAboutTheirHalf(t *testing.T) {
	ev := []byte(`{"Event":{"uuid":"9a1b2c3d-0000-4000-8000-000000000001","info":"Emotet C2","date":"2025-06-01",
	 "timestamp":"1748736000","threat_level_id":"1","published":true,"analysis":"2",
	 "Orgc":{"name":"CIRCL","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d210f"},
	 "Attribute":[{"uuid":"9a1b2c3d-0000-4000-8000-0000000000a1","type":"domain|ip","category":"Network activity",
	   "value":"c2.evil.example|104.16.1.1","to_ids":true,"timestamp":"1748736000"}]}}`)
	const cdn = "List of known Cloudflare IP ranges"
	h := newHarness(t, options{events: [][]byte{ev}})
	h.misp.Warninglist(cdn, "104.16.1.1")
	for _, tc := range []struct {
		typ, value, want string
	}{
		{"domain", "c2.evil.example", "Malicious"},
		{"ip", "104.16.1.1", "Common"},
	} {
		for _, path := range []string{"/observe/observables", "/deliberate/observables"} {
			data := answerOf(t, h, path, `[{"type":"`+tc.typ+`","value":"`+tc.value+`"}]`)
			vs := docs(data, "verdicts")
			if len(vs) != 1 {
				t.Fatalf("%s %s: %d verdicts, want 1", path, tc.value, len(vs))
			}
			if got := vs[0]["disposition_name"]; got != tc.want {
				t.Errorf("%s: verdict for %s is %v, want %s", path, tc.value, got, tc.want)
			}
			for _, j := range docs(data, "judgements") {
				reason, _ := j["reason"].(string)
				if listed := strings.Contains(reason, cdn); listed != (tc.want == "Common") {
					t.Errorf("%s: judgement reason for %s %q: naming the CDN list is %v, want %v", path, tc.value, reason, listed, !listed)
				}
			}
		}
	}
}

// TestURLCannotBorrowAListedHost: the relay's own hostname lists (WARNINGLISTS_DIR) on a URL
// observable whose query names a listed host (an open-redirect phishing URL without a
// scheme): the URL's host is evil.example, on no list, so the event's verdict stands.
func TestURLCannotBorrowAListedHost(t *testing.T) {
	dir := t.TempDir()
	writeList(t, dir, "google", `{"name":"List of known google domains","type":"hostname","version":1,
	  "matching_attributes":["domain","hostname","url"],"list":["google.com"]}`)
	lists, err := warninglist.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	const phish = "evil.example/login?next=https://accounts.google.com/"
	ev := []byte(`{"Event":{"uuid":"9a1b2c3d-0000-4000-8000-000000000002","info":"Credential phishing","date":"2025-06-01",
	 "timestamp":"1748736000","threat_level_id":"1","published":true,"analysis":"2",
	 "Orgc":{"name":"CIRCL","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d210f"},
	 "Attribute":[{"uuid":"9a1b2c3d-0000-4000-8000-0000000000a2","type":"url","category":"Network activity",
	   "value":"` + phish + `","to_ids":true,"timestamp":"1748736000"}]}}`)
	h := newHarness(t, options{events: [][]byte{ev}})
	withMISPPolicy(t, h, verdict.Policy{}, lists)
	data := answerOf(t, h, "/observe/observables", `[{"type":"url","value":"`+phish+`"}]`)
	v, j := verdictFor(t, data, phish)
	if v["disposition_name"] != "Malicious" {
		t.Errorf("verdict %v, reason %q; want Malicious: the URL's host is evil.example", v["disposition_name"], j["reason"])
	}
}

func writeList(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name, "list.json"), []byte(strings.TrimSpace(body)), 0o600); err != nil {
		t.Fatal(err)
	}
}
