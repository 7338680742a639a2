//go:build misplive

package misplive

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

// TestMain stops the suite at once, with one line saying why, when no MISP is given: the
// suite writes to the MISP it is pointed at, so it never guesses one. Under CI=true that is
// a failure, as for the Redis tests: .ci/run starts a MISP for it.
func TestMain(m *testing.M) {
	if os.Getenv("MISP_TEST_URL") == "" || os.Getenv("MISP_TEST_KEY") == "" {
		fmt.Println("misplive: skipped: set MISP_TEST_URL and MISP_TEST_KEY to a MISP this suite may write to (README: Testing against a real MISP)")
		if os.Getenv("CI") == "true" {
			fmt.Println("misplive: CI=true: the suite must run against a real MISP (.ci/run starts one)")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// suiteTag marks every event the suite adds, so a later run can find and delete them.
const suiteTag = "misp-relay:test-suite"

// The warninglists and decaying model the suite enables, by their names in MISP 2.5.
var (
	enabledLists = []string{
		"List of known IPv4 public DNS resolvers",
		"List of RFC 1918 CIDR blocks",
		"List of known hashes for empty files",
	}
	decayModel = "NIDS Simple Decaying Model"
)

// mispAPI calls a MISP's REST API the way PyMISP does, for seeding and reading back.
type mispAPI struct {
	base, key string
	hc        *http.Client
}

func newMISPAPI(base, key string) *mispAPI {
	return &mispAPI{base: strings.TrimRight(base, "/"), key: key, hc: &http.Client{Timeout: 2 * time.Minute}}
}

// call sends body (nil: no body) and returns the status and the answer.
func (m *mispAPI) call(tb testing.TB, method, path string, body any) (int, []byte) {
	tb.Helper()
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			tb.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, m.base+path, r)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", m.key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.hc.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, raw
}

// json calls and decodes the answer into out, failing tb unless MISP answered 200.
func (m *mispAPI) json(tb testing.TB, method, path string, body, out any) {
	tb.Helper()
	status, raw := m.call(tb, method, path, body)
	if status != http.StatusOK {
		tb.Fatalf("%s %s: HTTP %d: %.500s", method, path, status, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			tb.Fatalf("%s %s: %v: %.500s", method, path, err, raw)
		}
	}
}

// newUUID returns a random (version 4) UUID.
func newUUID() string { return uuid.NewString() }

// seedAttribute and seedEvent are what testdata/seed_events.json holds.
type seedAttribute struct {
	Type     string `json:"type"`
	Value    string `json:"value"`
	ToIDS    bool   `json:"to_ids"`
	Category string `json:"category"`
	Comment  string `json:"comment"`
	UUID     string `json:"uuid,omitempty"`
	Data     string `json:"data,omitempty"`
	Relation string `json:"object_relation,omitempty"`
	Tag      []struct {
		Name string `json:"name"`
	} `json:"Tag,omitempty"`
}

type seedEvent struct {
	UUID        string          `json:"uuid,omitempty"`
	Info        string          `json:"info"`
	ThreatLevel string          `json:"threat_level_id"`
	Analysis    string          `json:"analysis"`
	Distrib     string          `json:"distribution"`
	Published   bool            `json:"published"`
	Tag         json.RawMessage `json:"Tag"`
	Attribute   []seedAttribute `json:"Attribute"`
	Object      []struct {
		UUID            string          `json:"uuid,omitempty"`
		Name            string          `json:"name"`
		MetaCategory    string          `json:"meta-category"`
		TemplateUUID    string          `json:"template_uuid"`
		TemplateVersion string          `json:"template_version"`
		Attribute       []seedAttribute `json:"Attribute"`
	} `json:"Object,omitempty"`
}

// seeded is what the suite put in MISP.
type seeded struct {
	events []*seedEvent
	ids    []string // MISP's event ids, in the order of events
	raw    [][]byte // each event as MISP's GET /events/view answers it, for the fake
	org    struct{ name, uuid string }
	// readOnlyKey is the API key of a user whose role may not add sightings.
	readOnlyKey string
}

// seed deletes the events of earlier runs, adds testdata/seed_events.json with fresh UUIDs,
// publishes what is marked published, adds sightings of the three types, enables the
// warninglists and the decaying model, and makes a read-only user. It returns the events
// as MISP holds them.
func seed(t *testing.T, api *mispAPI) *seeded {
	t.Helper()
	s := &seeded{}
	var me struct {
		Organisation struct{ Name, UUID string } `json:"Organisation"`
	}
	api.json(t, http.MethodGet, "/users/view/me", nil, &me)
	s.org.name, s.org.uuid = me.Organisation.Name, me.Organisation.UUID

	var old struct {
		Response []struct {
			Event struct{ ID string } `json:"Event"`
		} `json:"response"`
	}
	api.json(t, http.MethodPost, "/events/restSearch", map[string]any{"returnFormat": "json", "tags": []string{suiteTag}, "metadata": 1}, &old)
	for _, e := range old.Response {
		api.json(t, http.MethodPost, "/events/delete/"+e.Event.ID, map[string]any{}, nil)
	}

	raw, err := os.ReadFile("testdata/seed_events.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &s.events); err != nil {
		t.Fatal(err)
	}
	for _, e := range s.events {
		e.UUID = newUUID()
		for i := range e.Attribute {
			e.Attribute[i].UUID = newUUID()
		}
		for i := range e.Object {
			e.Object[i].UUID = newUUID()
			for j := range e.Object[i].Attribute {
				e.Object[i].Attribute[j].UUID = newUUID()
			}
		}
		var added struct {
			Event struct{ ID, UUID string } `json:"Event"`
		}
		api.json(t, http.MethodPost, "/events/add", map[string]any{"Event": e}, &added)
		if added.Event.UUID != e.UUID {
			t.Fatalf("MISP added event %q with UUID %q, want %q", e.Info, added.Event.UUID, e.UUID)
		}
		if e.Published {
			api.json(t, http.MethodPost, "/events/publish/"+added.Event.ID, map[string]any{}, nil)
		}
		s.ids = append(s.ids, added.Event.ID)
	}

	sight := func(value, typ string, when time.Time) {
		api.json(t, http.MethodPost, "/sightings/add", map[string]any{
			"values": []string{value}, "type": typ, "source": "misp-relay test suite", "timestamp": when.Unix(),
		}, nil)
	}
	now := time.Now()
	for range 3 {
		sight("sighted.relay-test.example", "0", now)
	}
	sight("fp.relay-test.example", "0", now)
	for range 3 {
		sight("fp.relay-test.example", "1", now)
	}
	sight("expired.relay-test.example", "2", now.Add(-48*time.Hour))

	api.json(t, http.MethodPost, "/warninglists/toggleEnable", map[string]any{"name": enabledLists, "enabled": true}, nil)
	var models []struct {
		DecayingModel struct{ ID, Name string } `json:"DecayingModel"`
	}
	api.json(t, http.MethodGet, "/decayingModel/index", nil, &models)
	for _, m := range models {
		if m.DecayingModel.Name == decayModel {
			api.json(t, http.MethodPost, "/decayingModel/enable/"+m.DecayingModel.ID, map[string]any{}, nil)
		}
	}

	s.readOnlyKey = readOnlyUser(t, api)

	for _, id := range s.ids {
		_, ev := api.call(t, http.MethodGet, "/events/view/"+id, nil)
		s.raw = append(s.raw, ev)
	}
	return s
}

// readOnlyUser returns a new API key of the suite's read-only user (role "Read Only": no
// sightings), making the user on the first run.
func readOnlyUser(t *testing.T, api *mispAPI) string {
	t.Helper()
	const email = "misp-relay-readonly@admin.test"
	var users []struct {
		User struct{ ID, Email string } `json:"User"`
	}
	api.json(t, http.MethodGet, "/admin/users/index", nil, &users)
	id := ""
	for _, u := range users {
		if u.User.Email == email {
			id = u.User.ID
		}
	}
	if id == "" {
		var roles []struct {
			Role struct {
				ID           string `json:"id"`
				Name         string `json:"name"`
				PermSighting bool   `json:"perm_sighting"`
				PermAuth     bool   `json:"perm_auth"`
			} `json:"Role"`
		}
		api.json(t, http.MethodGet, "/roles/index", nil, &roles)
		role := ""
		for _, r := range roles {
			if !r.Role.PermSighting && r.Role.PermAuth {
				role = r.Role.ID
			}
		}
		if role == "" {
			t.Fatal("MISP has no role that may use the API without adding sightings")
		}
		var u struct {
			User struct{ ID string } `json:"User"`
		}
		api.json(t, http.MethodPost, "/admin/users/add", map[string]any{
			"email": email, "org_id": "1", "role_id": role, "change_pw": false, "termsaccepted": true,
		}, &u)
		id = u.User.ID
	}
	var key struct {
		AuthKey struct {
			Raw string `json:"authkey_raw"`
		} `json:"AuthKey"`
	}
	api.json(t, http.MethodPost, "/auth_keys/add/"+id, map[string]any{"comment": "misp-relay test suite"}, &key)
	if len(key.AuthKey.Raw) != 40 {
		t.Fatalf("MISP gave no API key for the read-only user")
	}
	return key.AuthKey.Raw
}

// proxy stands between the relay and MISP: it counts the calls the relay makes, by path,
// and can drop the connection of the next call after MISP answered it, as when MISP stops
// while a request is in flight.
type proxy struct {
	srv   *httptest.Server
	mu    sync.Mutex
	calls map[string]int
	drop  atomic.Bool
	// refuse is a path the proxy answers itself with MISP's 404 Not Found, as a MISP
	// without the endpoint, or a gateway in front of MISP refusing it, does ("": none).
	refuse atomic.Value
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{calls: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.calls[r.URL.Path]++
		p.mu.Unlock()
		if path, _ := p.refuse.Load().(string); path != "" && path == r.URL.Path {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"name":"Not Found","message":"Not Found","url":"`+path+`"}`)
			return
		}
		if p.drop.Load() {
			// MISP gets the call and works on it; then the connection dies without an answer.
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r)
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// take returns the calls counted since the last take, and forgets them.
func (p *proxy) take() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.calls
	p.calls = map[string]int{}
	return c
}

// relay is a relay process and what a test needs to call it.
type relay struct {
	base   string
	secret string
	proc   *testkit.Process
	hc     *http.Client
}

// startRelay runs bin serve on a free loopback port with vars (plus SECRET_KEY, JSON logs)
// and waits until it listens.
func startRelay(t *testing.T, bin string, vars map[string]string) *relay {
	t.Helper()
	r := &relay{secret: "relay-secret-" + newUUID(), hc: &http.Client{Timeout: 2 * time.Minute}}
	env := map[string]string{"SECRET_KEY": r.secret, "LOG_FORMAT": "json", "LISTEN_ADDR": "127.0.0.1:0"}
	for k, v := range vars {
		env[k] = v
	}
	r.proc = testkit.StartRelay(t, bin, env)
	var listening struct{ Addr string }
	_ = json.Unmarshal([]byte(r.proc.WaitLine(t, `"relay listening"`)), &listening)
	if listening.Addr == "" {
		t.Fatal("the relay said nothing of its address")
	}
	r.base = "http://" + listening.Addr
	return r
}

// jwt is an HS256 token for the relay carrying a MISP API key.
func (r *relay) jwt(t *testing.T, key string) string {
	return testkit.JWT(t, r.secret, auth.Claims{Key: key})
}

// post calls the relay, checks the answer against api/openapi.yaml and that it holds none
// of the secrets, and returns it decoded.
func (r *relay) post(t *testing.T, token, path string, body any, secrets ...string) map[string]any {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, r.base+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.hc.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	testkit.LoadContract(t).Check(t, http.MethodPost, path, resp.StatusCode, resp.Header, answer)
	testkit.NoSecrets(t, string(answer), append(secrets, token, r.secret)...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: HTTP %d: %s", path, resp.StatusCode, answer)
	}
	var out map[string]any
	if err := json.Unmarshal(answer, &out); err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return out
}

// errorOf returns the first error of an envelope ("", "" when none).
func errorOf(answer map[string]any) (code, message string) {
	errs, _ := answer["errors"].([]any)
	if len(errs) == 0 {
		return "", ""
	}
	e, _ := errs[0].(map[string]any)
	code, _ = e["code"].(string)
	message, _ = e["message"].(string)
	return code, message
}
