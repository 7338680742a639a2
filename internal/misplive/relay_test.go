//go:build misplive

package misplive

import (
	"encoding/pem"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/testkit"
)

// observable is one observable the suite asks about.
type observable struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// expectations: what the README's verdict policy says of each seeded value, and a word the
// deciding judgement's reason must hold. The second column names the policy row.
var expectations = []struct {
	obs         observable
	disposition string // "" for no verdict at all
	reason      string
}{
	// Row 5: an IDS-flagged attribute of a High event.
	{observable{"ip", "91.203.5.146"}, "Malicious", "MISP event threat level High"},
	{observable{"domain", "c2.relay-test.example"}, "Malicious", "MISP event threat level High"},
	{observable{"hostname", "www.c2.relay-test.example"}, "Malicious", "MISP event threat level High"},
	{observable{"url", "http://c2.relay-test.example/gate.php?id=1&x=a+b"}, "Malicious", "MISP event threat level High"},
	{observable{"url", "/wp-content/plugins/gate.php"}, "Malicious", "MISP event threat level High"},
	// Both halves of every composite type.
	{observable{"domain", "payload.relay-test.example"}, "Malicious", "MISP event threat level High"},
	{observable{"ip", "203.0.113.77"}, "Malicious", "MISP event threat level High"},
	{observable{"ip", "198.51.100.23"}, "Malicious", "MISP event threat level High"},
	{observable{"ip", "198.51.100.99"}, "Malicious", "MISP event threat level High"},
	{observable{"hostname", "mail.relay-test.example"}, "Malicious", "MISP event threat level High"},
	{observable{"ipv6", "2001:db8:dead:beef::1"}, "Malicious", "MISP event threat level High"},
	{observable{"ipv6", "2001:DB8:DEAD:BEEF:0:0:0:1"}, "Malicious", "MISP event threat level High"}, // MISP normalises IPv6
	{observable{"domain", "C2.Relay-Test.Example"}, "Malicious", "MISP event threat level High"},    // and ignores letter case
	{observable{"md5", "ac4f5ebb4d0d0d6ea8b1a0e1b7a6c56b"}, "", ""},                                 // not seeded: no verdict
	{observable{"md5", md5Of("md5 sample")}, "Malicious", "MISP event threat level High"},
	{observable{"sha1", sha1Of("sha1 sample")}, "Malicious", "MISP event threat level High"},
	{observable{"sha256", sha256Of("sha256 sample")}, "Malicious", "MISP event threat level High"},
	{observable{"sha512", sha512Of("sha512 sample")}, "Malicious", "MISP event threat level High"},
	{observable{"md5", md5Of("conhost sample")}, "Malicious", "MISP event threat level High"},
	{observable{"sha1", sha1Of("svch0st sample")}, "Malicious", "MISP event threat level High"},
	{observable{"sha256", sha256Of("runas sample")}, "Malicious", "MISP event threat level High"},
	{observable{"sha512", sha512Of("loader sample")}, "Malicious", "MISP event threat level High"},
	{observable{"md5", "8cb551f5b9d185a1c7409911f15f3734"}, "Malicious", "MISP event threat level High"}, // malware-sample
	{observable{"md5", md5Of("stage2")}, "Malicious", "MISP event threat level High"},                    // in a file object
	{observable{"email", "attacker@relay-test.example"}, "Malicious", "MISP event threat level High"},
	{observable{"email", "operator@relay-test.example"}, "Malicious", "MISP event threat level High"},
	{observable{"email", "registrant@relay-test.example"}, "Malicious", "MISP event threat level High"},
	{observable{"file_name", "invoice.pdf.exe"}, "Malicious", "MISP event threat level High"},
	// Row 1: on a warninglist MISP has enabled (MISP's warnings and checkValue).
	{observable{"ip", "8.8.8.8"}, "Common", `on MISP warninglist "List of known IPv4 public DNS resolvers"`},
	{observable{"ip", "10.11.12.13"}, "Common", `on MISP warninglist "List of RFC 1918 CIDR blocks"`},
	{observable{"md5", "d41d8cd98f00b204e9800998ecf8427e"}, "Common", `on MISP warninglist "List of known hashes for empty files"`},
	// The same in capitals: MISP's search ignores letter case, its checkValue does not (the
	// relay asks it about hashes and domains in lower case, as MISP keeps them).
	{observable{"md5", "D41D8CD98F00B204E9800998ECF8427E"}, "Common", `on MISP warninglist "List of known hashes for empty files"`},
	// Row 3: more false positives than sightings; an expiration sighting in the past.
	{observable{"domain", "fp.relay-test.example"}, "Common", "more false-positive reports than sightings"},
	{observable{"domain", "expired.relay-test.example"}, "Unknown", "expired in MISP on"},
	// Row 5 with sightings; row 6: Medium and not for IDS.
	{observable{"domain", "sighted.relay-test.example"}, "Malicious", "MISP event threat level High"},
	{observable{"email", "victim@relay-test.example"}, "Suspicious", "MISP event threat level Medium"},
	{observable{"email", "cfo@relay-test.example"}, "Suspicious", "MISP event threat level Medium"},
	// Rows T5 and T7: an IDS-flagged attribute of a Low or Undefined event is Suspicious,
	// never Common (the threat level is the author's worry, not evidence of harmlessness);
	// the author's comment is in the reason.
	{observable{"ip", "192.0.2.45"}, "Suspicious", `comment: "Potential false-positive but included in the OSINT report"`},
	{observable{"domain", "undefined.relay-test.example"}, "Suspicious", "MISP event threat level Undefined"},
	// Row 0: context is reported, not judged: a link, and the file-name half of a sample.
	{observable{"url", "https://www.virustotal.com/gui/file/" + sha256Of("sha256 sample")}, "", ""},
	{observable{"file_name", "conhost.exe"}, "", ""},
	{observable{"file_name", "dropper.exe"}, "", ""},
	// Row 1 for a value no event holds: MISP's checkValue answers alone.
	{observable{"ip", "8.8.4.4"}, "Common", `on MISP warninglist "List of known IPv4 public DNS resolvers"`},
	{observable{"domain", "nothing.relay-test.example"}, "", ""},
}

// TestRealMISP is the suite: one test, so that the MISP is seeded and the relay started
// once, and its parts run in order (the fake comparison first, on the seeded state).
func TestRealMISP(t *testing.T) {
	mispURL, key := strings.TrimRight(os.Getenv("MISP_TEST_URL"), "/"), os.Getenv("MISP_TEST_KEY")
	api := newMISPAPI(mispURL, key)
	s := seed(t, api)
	bin := testkit.BuildRelay(t)
	p := newProxy(t, mispURL)
	r := startRelay(t, bin, map[string]string{
		"API_URL": p.srv.URL, "MISP_UI_URL": mispURL, "CACHE_TTL": "0",
	})
	token := r.jwt(t, key)
	secrets := []string{key, s.readOnlyKey}
	t.Cleanup(func() { testkit.NoSecrets(t, r.proc.Output.String(), append(secrets, token, r.secret)...) })

	t.Run("fake answers as MISP", func(t *testing.T) { testFakeAgrees(t, bin, api, s) })
	t.Run("a batch answers each value as alone", func(t *testing.T) { testBatchAsAlone(t, api) })
	t.Run("real events: the verdicts of feed mode", func(t *testing.T) { testRealEvents(t, api) })

	t.Run("health", func(t *testing.T) {
		got := r.post(t, token, "/health", nil, secrets...)
		if diff := cmp.Diff(map[string]any{"data": map[string]any{"status": "ok"}}, got); diff != "" {
			t.Errorf("health (-want +got):\n%s", diff)
		}
	})

	var obs []observable
	for _, e := range expectations {
		obs = append(obs, e.obs)
	}
	var observed map[string]any
	t.Run("observe", func(t *testing.T) {
		observed = r.post(t, token, "/observe/observables", obs, secrets...)
		if code, msg := errorOf(observed); code != "" {
			t.Fatalf("observe failed: %s: %s", code, msg)
		}
		verdicts, reasons := verdictsOf(observed)
		for _, e := range expectations {
			got := verdicts[e.obs]
			if got != e.disposition {
				t.Errorf("%s %s: verdict %q, want %q (reason %q)", e.obs.Type, e.obs.Value, got, e.disposition, reasons[e.obs])
				continue
			}
			if e.reason != "" && !strings.Contains(reasons[e.obs], e.reason) {
				t.Errorf("%s %s: the deciding reason %q does not say %q", e.obs.Type, e.obs.Value, reasons[e.obs], e.reason)
			}
		}
		checkSightings(t, observed)
	})

	t.Run("deliberate agrees with observe", func(t *testing.T) {
		deliberated := r.post(t, token, "/deliberate/observables", obs, secrets...)
		want, _ := verdictsOf(observed)
		got, _ := verdictsOf(deliberated)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("deliberate's verdicts differ from observe's (-observe +deliberate):\n%s", diff)
		}
	})

	t.Run("a configuration token naming this MISP", func(t *testing.T) { testConfigToken(t, bin, mispURL, key) })

	t.Run("refer links open the events holding the value", func(t *testing.T) {
		refer := r.post(t, token, "/refer/observables", obs, secrets...)
		links := map[string]string{}
		for _, l := range refer["data"].([]any) {
			l := l.(map[string]any)
			links[l["id"].(string)] = l["url"].(string)
		}
		for _, o := range obs {
			holding := eventsHolding(t, api, o.Value)
			link, ok := links["ref-misp-search-"+o.Type+"-"+o.Value]
			if !ok {
				if len(holding) > 0 {
					t.Errorf("%s %s: no refer link, though MISP holds it in %d events", o.Type, o.Value, len(holding))
				}
				continue
			}
			if got := eventsListed(t, api, link); !slices.Equal(got, holding) {
				t.Errorf("%s %s: %s lists events %v, want those holding the value %v", o.Type, o.Value, link, got, holding)
			}
		}
	})

	t.Run("source links open an event holding the value", func(t *testing.T) { checkSourceLinks(t, api, observed) })

	t.Run("respond offers MISP's actions for what MISP holds", func(t *testing.T) {
		got := r.post(t, token, "/respond/observables", []observable{{"domain", "respond.relay-test.example"}, {"domain", "nothing.relay-test.example"}}, secrets...)
		var ids []string
		for _, a := range got["data"].([]any) {
			a := a.(map[string]any)
			params := a["query-params"].(map[string]any)
			ids = append(ids, a["id"].(string)+" "+params["observable_value"].(string))
		}
		want := []string{"misp-add-sighting respond.relay-test.example", "misp-add-false-positive respond.relay-test.example"}
		if diff := cmp.Diff(want, ids); diff != "" {
			t.Errorf("actions (-want +got):\n%s", diff)
		}
	})

	t.Run("trigger reports sightings MISP then holds", func(t *testing.T) {
		for _, action := range []string{"misp-add-sighting", "misp-add-false-positive"} {
			got := r.post(t, token, "/respond/trigger", map[string]string{
				"action-id": action, "observable_type": "domain", "observable_value": "respond.relay-test.example",
			}, secrets...)
			if got["data"].(map[string]any)["status"] != "success" {
				t.Fatalf("%s: %v", action, got)
			}
		}
		var types []string
		for _, sg := range sightingsOf(t, api, "respond.relay-test.example") {
			if sg.Source == "XDR" {
				types = append(types, sg.Type)
			}
		}
		if diff := cmp.Diff([]string{"0", "1"}, types); diff != "" {
			t.Errorf("sightings from XDR in MISP, by type (-want +got):\n%s", diff)
		}
	})

	t.Run("tiles", func(t *testing.T) {
		testTiles(t, api, mispURL, key, s.org.name, s.org.uuid)
		testRelayTiles(t, r, token, secrets)
	})
	t.Run("a refused warninglist check: the search brings MISP's hits", func(t *testing.T) { testCheckRefused(t, r, p, token, secrets) })
	// Cost before faults: the faults trip the relay's circuit breaker for a while.
	t.Run("what MISP costs", func(t *testing.T) { measureCost(t, api, r, p, token, obs) })
	t.Run("faults", func(t *testing.T) { testFaults(t, bin, r, p, mispURL, key, s.readOnlyKey) })
	t.Run("sources: the MISP and a feed, one failing", func(t *testing.T) { testSources(t, bin, p, mispURL, key) })
}

// verdictsOf returns each observable's verdict and the reason of the judgement it points at.
func verdictsOf(answer map[string]any) (map[observable]string, map[observable]string) {
	verdicts, reasons := map[observable]string{}, map[observable]string{}
	data, _ := answer["data"].(map[string]any)
	byID := map[string]string{}
	for _, j := range docs(data, "judgements") {
		byID[j["id"].(string)], _ = j["reason"].(string)
	}
	for _, v := range docs(data, "verdicts") {
		o := v["observable"].(map[string]any)
		key := observable{o["type"].(string), o["value"].(string)}
		verdicts[key] = v["disposition_name"].(string)
		if id, ok := v["judgement_id"].(string); ok {
			reasons[key] = byID[id]
		}
	}
	return verdicts, reasons
}

// docs returns data[kind].docs.
func docs(data map[string]any, kind string) []map[string]any {
	list, _ := data[kind].(map[string]any)
	raw, _ := list["docs"].([]any)
	out := make([]map[string]any, 0, len(raw))
	for _, d := range raw {
		out = append(out, d.(map[string]any))
	}
	return out
}

// checkSightings checks the sightings of MISP's own sightings: the three of the sighted
// value, counted as MISP holds them.
func checkSightings(t *testing.T, answer map[string]any) {
	t.Helper()
	data, _ := answer["data"].(map[string]any)
	for _, sg := range docs(data, "sightings") {
		for _, o := range sg["observables"].([]any) {
			if o.(map[string]any)["value"] == "sighted.relay-test.example" && !strings.HasPrefix(sg["title"].(string), "Found in MISP event") {
				if sg["count"] != 3.0 {
					t.Errorf("sighting %v: count %v, want the 3 sightings MISP holds", sg["title"], sg["count"])
				}
				return
			}
		}
	}
	t.Error("no sighting reports MISP's sightings of sighted.relay-test.example")
}

// eventsHolding asks MISP which events hold an attribute with value v (either half), as a
// restSearch without a type filter matches it: the events a link must show.
func eventsHolding(t *testing.T, api *mispAPI, v string) []string {
	t.Helper()
	var got struct {
		Response struct {
			Attribute []struct {
				Event struct{ UUID string } `json:"Event"`
			} `json:"Attribute"`
		} `json:"response"`
	}
	api.json(t, http.MethodPost, "/attributes/restSearch", map[string]any{"returnFormat": "json", "value": []string{v}, "limit": 1000}, &got)
	var uuids []string
	for _, a := range got.Response.Attribute {
		if !slices.Contains(uuids, a.Event.UUID) {
			uuids = append(uuids, a.Event.UUID)
		}
	}
	slices.Sort(uuids)
	return uuids
}

// eventsListed opens a link into MISP's event index as the key's user (the same page a
// browser gets, as JSON) and returns the UUIDs of the events it lists.
func eventsListed(t *testing.T, api *mispAPI, link string) []string {
	t.Helper()
	path, ok := strings.CutPrefix(link, api.base)
	if !ok {
		t.Fatalf("link %s is not into MISP %s", link, api.base)
	}
	var listed []struct {
		UUID  string `json:"uuid"`
		Event struct {
			UUID string `json:"uuid"`
		} `json:"Event"`
	}
	api.json(t, http.MethodGet, path, nil, &listed)
	var uuids []string
	for _, e := range listed {
		u := e.UUID
		if u == "" {
			u = e.Event.UUID
		}
		uuids = append(uuids, u)
	}
	slices.Sort(uuids)
	return uuids
}

// checkSourceLinks opens every source_uri and reason_uri of an observe answer: each must show
// the event that holds the observable.
func checkSourceLinks(t *testing.T, api *mispAPI, answer map[string]any) {
	t.Helper()
	data, _ := answer["data"].(map[string]any)
	opened := map[string][]string{} // link -> values its event holds
	checked := 0
	for _, kind := range []string{"judgements", "sightings"} {
		for _, d := range docs(data, kind) {
			var value string
			if o, ok := d["observable"].(map[string]any); ok {
				value = o["value"].(string)
			} else if list, ok := d["observables"].([]any); ok && len(list) > 0 {
				value = list[0].(map[string]any)["value"].(string)
			}
			for _, field := range []string{"source_uri", "reason_uri"} {
				link, ok := d[field].(string)
				if !ok {
					continue
				}
				values, seen := opened[link]
				if !seen {
					values = eventValues(t, api, link)
					opened[link] = values
				}
				checked++
				if !slices.ContainsFunc(values, func(v string) bool { return sameValue(v, value) }) {
					t.Errorf("%s %s of %s opens an event that does not hold it", kind, field, value)
				}
			}
		}
	}
	if checked == 0 {
		t.Error("no source_uri or reason_uri to open")
	}
}

// eventValues opens an event link and returns every value (and half of a composite value) of
// the event's attributes, objects' included.
func eventValues(t *testing.T, api *mispAPI, link string) []string {
	t.Helper()
	path, ok := strings.CutPrefix(link, api.base)
	if !ok {
		t.Fatalf("link %s is not into MISP %s", link, api.base)
	}
	type attr struct{ Value string }
	var ev struct {
		Event struct {
			Attribute []attr
			Object    []struct{ Attribute []attr }
		}
	}
	api.json(t, http.MethodGet, path, nil, &ev)
	var out []string
	add := func(as []attr) {
		for _, a := range as {
			out = append(out, a.Value)
			out = append(out, strings.Split(a.Value, "|")...)
		}
	}
	add(ev.Event.Attribute)
	for _, o := range ev.Event.Object {
		add(o.Attribute)
	}
	return out
}

// mispSighting is a sighting as MISP's restSearch gives it.
type mispSighting struct {
	Type   string `json:"type"`
	Source string `json:"source"`
}

// sightingsOf reads back the sightings MISP holds on the attributes with value v.
func sightingsOf(t *testing.T, api *mispAPI, v string) []mispSighting {
	t.Helper()
	var got struct {
		Response struct {
			Attribute []struct {
				Sighting []mispSighting `json:"Sighting"`
			} `json:"Attribute"`
		} `json:"response"`
	}
	api.json(t, http.MethodPost, "/attributes/restSearch", map[string]any{"returnFormat": "json", "value": v, "includeSightings": 1, "limit": 100}, &got)
	var out []mispSighting
	for _, a := range got.Response.Attribute {
		out = append(out, a.Sighting...)
	}
	return out
}

// testConfigToken runs a relay without API_URL, as for XDR modules that name their MISP: an
// RS256 configuration token whose HOST is this MISP (listed in MISP_ALLOWED_HOSTS), its key
// from a JWKS over HTTPS that the relay trusts through SSL_CERT_FILE.
func testConfigToken(t *testing.T, bin, mispURL, key string) {
	priv, _ := testkit.RSAKeys()
	jwks := testkit.NewJWKS(t, "misplive", &priv.PublicKey)
	caFile := filepath.Join(t.TempDir(), "jwks.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: jwks.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	const audience = "https://relay.misplive.example"
	u, err := url.Parse(mispURL)
	if err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, bin, map[string]string{
		"JWKS_HOSTS": jwks.Host, "RELAY_AUDIENCE": audience, "MISP_ALLOWED_HOSTS": u.Host,
		"SSL_CERT_FILE": caFile, "CACHE_TTL": "0",
	})
	token := testkit.SignRS256(t, priv, "misplive", jwt.MapClaims{
		"HOST": mispURL, "AuthKey": key, "jwks_host": jwks.Host, "aud": audience,
	})
	if got := r.post(t, token, "/health", nil, key); got["data"] == nil {
		t.Fatalf("health with a configuration token: %v", got)
	}
	got := r.post(t, token, "/observe/observables", []observable{{"domain", "c2.relay-test.example"}}, key)
	verdicts, _ := verdictsOf(got)
	if v := verdicts[observable{"domain", "c2.relay-test.example"}]; v != "Malicious" {
		t.Errorf("verdict %q with a configuration token, want Malicious: %v", v, got)
	}
	refer := r.post(t, token, "/refer/observables", []observable{{"domain", "c2.relay-test.example"}}, key)
	links, _ := refer["data"].([]any)
	if len(links) != 1 || !strings.HasPrefix(links[0].(map[string]any)["url"].(string), mispURL+"/events/index/") {
		t.Errorf("refer with a configuration token: %v, want a link into %s", refer, mispURL)
	}
}

// sameValue compares values as MISP does: letter case aside, IPv6 addresses in any spelling.
func sameValue(a, b string) bool {
	if x, err := netip.ParseAddr(a); err == nil {
		y, err := netip.ParseAddr(b)
		return err == nil && x == y
	}
	return strings.EqualFold(a, b)
}

// testCheckRefused: with warninglists/checkValue refused, the relay asks MISP's search for
// the matched attributes' warninglist hits, in a second search of the values MISP holds, so a
// value on a list and in a High event is still Common by the list, and a value no event holds
// costs nothing more.
func testCheckRefused(t *testing.T, r *relay, p *proxy, token string, secrets []string) {
	p.refuse.Store("/warninglists/checkValue")
	defer p.refuse.Store("")
	obs := []observable{{"ip", "8.8.8.8"}, {"md5", "d41d8cd98f00b204e9800998ecf8427e"}, {"domain", "nothing.relay-test.example"}}
	p.take()
	got := r.post(t, token, "/observe/observables", obs, secrets...)
	calls := p.take()
	if code, msg := errorOf(got); code != "" {
		t.Fatalf("observe failed: %s: %s", code, msg)
	}
	verdicts, reasons := verdictsOf(got)
	for _, o := range obs[:2] {
		if verdicts[o] != "Common" || !strings.Contains(reasons[o], "on MISP warninglist") {
			t.Errorf("%s %s: verdict %q (reason %q), want Common by MISP's list", o.Type, o.Value, verdicts[o], reasons[o])
		}
	}
	if calls["/attributes/restSearch"] != 2 || calls["/warninglists/checkValue"] != 1 {
		t.Errorf("MISP calls %v, want 2 restSearch (the second for the hits) and 1 checkValue", calls)
	}
}
