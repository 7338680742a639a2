//go:build misplive

package misplive

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/misp/misptest"
)

// fakeLists are the entries of the enabled warninglists that the seeded values hit, as the
// real MISP's lists hold them (the whole lists hold tens of thousands of entries).
var fakeLists = map[string][]string{
	"List of known IPv4 public DNS resolvers": {"8.8.8.8/32", "8.8.4.4/32"},
	"List of RFC 1918 CIDR blocks":            {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"},
	"List of known hashes for empty files":    {"d41d8cd98f00b204e9800998ecf8427e"},
}

// newFake starts misptest with the seeded events as the real MISP gives them back (GET
// /events/view) and the warninglist entries the seeded values hit.
func newFake(t *testing.T, key string, s *seeded) *misptest.Server {
	t.Helper()
	fake, err := misptest.NewServer(key, s.raw...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	fake.Organisation(s.org.name, s.org.uuid)
	for _, name := range enabledLists {
		fake.Warninglist(name, fakeLists[name]...)
	}
	return fake
}

// testFakeAgrees runs the relay against misptest seeded with what the real MISP holds,
// records every request the relay makes (lookups, the warninglist check, a sighting, the
// lookup after it), then sends that sequence to a fresh fake and to the real MISP, in the
// same order, and compares each pair of answers after normalising what differs between any
// two MISPs (ids, the time and UUID of a new sighting).
func testFakeAgrees(t *testing.T, bin string, api *mispAPI, s *seeded) {
	recorder := newFake(t, api.key, s)
	r := startRelay(t, bin, map[string]string{"API_URL": recorder.URL, "CACHE_TTL": "0"})
	token := r.jwt(t, api.key)
	var obs []observable
	for _, e := range expectations {
		obs = append(obs, e.obs)
	}
	r.post(t, token, "/health", nil, api.key)
	r.post(t, token, "/observe/observables", obs, api.key)
	compare := []observable{{"domain", "compare.relay-test.example"}}
	r.post(t, token, "/respond/trigger", map[string]string{
		"action-id": "misp-add-sighting", "observable_type": "domain", "observable_value": "compare.relay-test.example",
	}, api.key)
	r.post(t, token, "/observe/observables", compare, api.key)
	r.post(t, token, "/respond/trigger", map[string]string{
		"action-id": "misp-add-sighting", "observable_type": "domain", "observable_value": "nothing.relay-test.example",
	}, api.key)

	ours := map[string]bool{} // the MISP may hold other events too: only the suite's compare
	for _, e := range s.events {
		ours[e.UUID] = true
	}
	fresh := newFake(t, api.key, s)
	requests := recorder.Requests()
	paths := map[string]int{}
	for _, req := range requests {
		paths[req.Method+" "+req.Path]++
		fakeStatus, fakeAnswer := replay(t, fresh.URL, req)
		realStatus, realAnswer := replay(t, api.base, req)
		if fakeStatus != realStatus {
			t.Errorf("%s %s %s: the fake answered HTTP %d, MISP %d", req.Method, req.Path, req.Body, fakeStatus, realStatus)
			continue
		}
		if diff := cmp.Diff(normalise(realAnswer, ours), normalise(fakeAnswer, ours)); diff != "" {
			t.Errorf("%s %s %s: the fake's answer differs from MISP's (-MISP +fake):\n%s", req.Method, req.Path, req.Body, diff)
		}
	}
	for _, want := range []string{"GET /servers/getVersion", "POST /attributes/restSearch", "POST /warninglists/checkValue", "POST /sightings/add"} {
		if paths[want] == 0 {
			t.Errorf("the relay made no %s: the comparison does not cover it (made %v)", want, paths)
		}
	}
	t.Logf("compared the answers to %d requests: %v", len(requests), paths)
}

// replay sends a recorded request to the MISP at base, as the relay sent it.
func replay(t *testing.T, base string, req misptest.Request) (int, []byte) {
	t.Helper()
	r, err := http.NewRequest(req.Method, base+req.Path, bytes.NewReader(req.Body))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"Authorization", "Accept", "Content-Type", "User-Agent"} {
		r.Header.Set(h, req.Header.Get(h))
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, base+req.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, raw
}

// The differences between misptest and MISP that the fake keeps on purpose, each with its
// reason; normalise blanks them on both sides.
var (
	// getVersion: the fake answers as for a key whose role has no sync permission, on a PHP
	// with brotli; these fields follow the key's role and the server's PHP. The relay reads
	// only "version".
	deliberateVersion = []string{"perm_sync", "perm_galaxy_editor", "perm_analyst_data", "perm_sighting", "uuid", "request_encoding"}
	// restSearch: MISP computes decay scores from its enabled models and the clock; the fake
	// sends what its seed events give (tests that need a score put one there).
	deliberateAttribute = []string{"decay_score"}
)

// normalise decodes a MISP answer and replaces what two MISPs holding the same data may
// differ in: database ids (any "id" or "*_id" that is not "0"), the time and UUID of a
// sighting made during the comparison (each MISP stamps its own), and what deliberate
// lists.
func normalise(raw []byte, ours map[string]bool) any {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "not JSON: " + string(raw)
	}
	var walk func(key string, v any) any
	walk = func(key string, v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				x[k] = walk(k, e)
			}
			if _, ok := x["date_sighting"]; ok {
				x["date_sighting"], x["uuid"] = "<time>", "<uuid>"
			}
			blank := deliberateAttribute
			if _, ok := x["pymisp_recommended_version"]; ok {
				blank = deliberateVersion
			} else if key != "Attribute" {
				blank = nil
			}
			for _, k := range blank {
				x[k] = "<deliberate>" // present or not: MISP has no decay model for some types
			}
			return x
		case []any:
			for i, e := range x {
				x[i] = walk(key, e)
			}
			return x
		case string:
			if (key == "id" || strings.HasSuffix(key, "_id")) && x != "0" && x != "" {
				return "<id>"
			}
		}
		return v
	}
	v = walk("", v)
	// restSearch: only the attributes of the suite's events.
	if m, ok := v.(map[string]any); ok {
		if resp, ok := m["response"].(map[string]any); ok {
			if attrs, ok := resp["Attribute"].([]any); ok {
				resp["Attribute"] = slices.DeleteFunc(attrs, func(a any) bool {
					ev, _ := a.(map[string]any)["Event"].(map[string]any)
					u, _ := ev["uuid"].(string)
					return !ours[u]
				})
			}
		}
	}
	return v
}
