package misp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
)

// ignoreEvidence leaves out of a comparison the evidence the verdict policy reads (attribute
// UUID, own tags, warninglist hits, sightings, decay, comment, object; event creator UUID,
// publication, analysis), for tests about other fields. The tests below check those.
var ignoreEvidence = cmp.Options{
	cmpopts.IgnoreFields(intel.Event{}, "OrgUUID", "Published", "Analysis"),
	cmpopts.IgnoreFields(intel.Attribute{}, "UUID", "Tags", "Warnings", "Sightings", "Decay", "Comment", "Object"),
}

// evidenceServer serves body to every request and records the request bodies.
type evidenceServer struct {
	*httptest.Server
	mu     sync.Mutex
	paths  []string
	bodies []string
}

func newEvidenceServer(t *testing.T, status int, body string) *evidenceServer {
	t.Helper()
	s := &evidenceServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.paths = append(s.paths, r.URL.Path)
		s.bodies = append(s.bodies, string(raw))
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(s.Close)
	return s
}

// calls returns the paths and bodies received so far.
func (s *evidenceServer) calls() (paths, bodies []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.paths), slices.Clone(s.bodies)
}

func evidenceClient(t *testing.T, url string) *misp.Client {
	t.Helper()
	c, err := misp.New(misp.Config{BaseURL: url, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSearchEvidenceRealFixture decodes a real attributes restSearch answer (includeContext,
// sightings, inherited tags) and checks the evidence the policy reads.
func TestSearchEvidenceRealFixture(t *testing.T) {
	raw, err := os.ReadFile("testdata/misp_attributes_restsearch_context_sightings.json")
	if err != nil {
		t.Fatal(err)
	}
	srv := newEvidenceServer(t, http.StatusOK, string(raw))
	got, err := evidenceClient(t, srv.URL).Search(context.Background(), testKey, intel.Query{Value: "6c73d338ec64e0e44bd54ea61b6988b2", Types: []string{"md5"}, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d events, want 3", len(got))
	}
	type evidence struct {
		OrgUUID   string
		Published bool
		Analysis  intel.Analysis
		EventTags int
		UUID      string
		ToIDS     bool
		Tags      []string
		Sightings intel.Sightings
		Comment   string
	}
	var gotEv []evidence
	for _, e := range got {
		a := e.Attributes[0]
		gotEv = append(gotEv, evidence{e.OrgUUID, e.Published, e.Analysis, len(e.Tags), a.UUID, a.ToIDS, a.Tags, a.Sightings, a.Comment})
	}
	want := []evidence{
		{
			"5cf66e53-b5f8-43e7-be9a-49880a3b4631", false, intel.AnalysisInitial, 13, "5e6b336e-5224-445f-b1b3-457dd7dd9f6d", true,
			[]string{"Test1", "misp-galaxy:financial-fraud=Scam"}, // the 13 inherited ones are the event's
			intel.Sightings{Seen: 1, First: time.Unix(1625043306, 0).UTC(), Last: time.Unix(1625043306, 0).UTC(), Sources: []string{"ORGNAME"}},
			"",
		},
		{"56c42374-fdb8-4544-a218-41ffc0a8ab16", false, intel.AnalysisComplete, 2, "f6b054cf-3dbb-4c7b-aab1-a37193e5e841", true, nil, intel.Sightings{}, ""},
		{
			"56c42374-fdb8-4544-a218-41ffc0a8ab16", false, intel.AnalysisComplete, 1, "ec686712-d0a5-4dd8-8736-330da8abefa6", false,
			[]string{"passivetotal:class=suspicious", "misp-galaxy:mitre-attack-pattern=T1210"},
			intel.Sightings{},
			"",
		},
	}
	if diff := cmp.Diff(want, gotEv); diff != "" {
		t.Errorf("evidence (-want +got):\n%s", diff)
	}
}

// TestSearchEvidenceFields decodes warnings, decay scores and sightings of every type in the
// shapes MISP 2.5 writes them (numbers as strings or numbers, inherited as 1), and tolerates
// them in shapes it does not.
func TestSearchEvidenceFields(t *testing.T) {
	body := `{"response":{"Attribute":[{"uuid":"a1","type":"ip-dst","value":"8.8.8.8","to_ids":true,
	 "Event":{"uuid":"e1","threat_level_id":"1","published":true,"analysis":"1","Orgc":{"name":"CIRCL","uuid":"o1"}},
	 "Tag":[{"name":"tlp:red","inherited":0},{"name":"tlp:green","inherited":1}],
	 "warnings":[{"match":"8.8.8.8/32","value":"8.8.8.8","warninglist_id":"111","warninglist_name":"List of known IPv4 public DNS resolvers","warninglist_category":"false_positive"},
	             {"warninglist_id":"7"},{}],
	 "decay_score":[{"score":49.98530793883329,"base_score":80,"decayed":false,"DecayingModel":{"id":"1","name":"NIDS Simple Decaying Model"}},
	                {"score":"12","decayed":true,"DecayingModel":{"name":"Short"}},{"score":"NaN"}],
	 "Sighting":[{"type":"1","date_sighting":"1551253976"},{"type":"2","date_sighting":"1800000000"},{"type":"2","date_sighting":"1700000000"},{"type":"9"},{"date_sighting":"1600000000","source":"old export"}]},
	{"uuid":"a2","type":"ip-dst","value":"8.8.8.8","to_ids":true,"warnings":{"not":"a list"},"decay_score":"x","Sighting":{},
	 "Tag":[{"name":"t","inherited":true}],"Event":{"uuid":"e2","Tag":[]}}]}}`
	srv := newEvidenceServer(t, http.StatusOK, body)
	got, err := evidenceClient(t, srv.URL).Search(context.Background(), testKey, intel.Query{Value: "8.8.8.8", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d events", len(got))
	}
	a := got[0].Attributes[0]
	wantWarnings := []intel.WarninglistHit{
		{List: "List of known IPv4 public DNS resolvers", Match: "8.8.8.8/32", Category: "false_positive", Value: "8.8.8.8"},
		{List: "#7"},
	}
	if diff := cmp.Diff(wantWarnings, a.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	wantDecay := []intel.DecayScore{{Model: "NIDS Simple Decaying Model", Score: 49.98530793883329}, {Model: "Short", Score: 12, Decayed: true}}
	if diff := cmp.Diff(wantDecay, a.Decay); diff != "" {
		t.Errorf("decay (-want +got):\n%s", diff)
	}
	wantSightings := intel.Sightings{
		Seen: 1, FalsePositive: 1, Expiration: 2,
		First: time.Unix(1600000000, 0).UTC(), Last: time.Unix(1600000000, 0).UTC(), Sources: []string{"old export"},
		Expires: time.Unix(1700000000, 0).UTC(),
	}
	if diff := cmp.Diff(wantSightings, a.Sightings); diff != "" {
		t.Errorf("sightings (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"tlp:red"}, a.Tags); diff != "" {
		t.Errorf("own tags (-want +got):\n%s", diff)
	}
	if e := got[0]; e.OrgUUID != "o1" || !e.Published || e.Analysis != intel.AnalysisOngoing {
		t.Errorf("event evidence %+v", e)
	}
	// The second attribute's evidence is of the wrong kinds: read as none, the rest kept.
	b := got[1].Attributes[0]
	if b.UUID != "a2" || b.Warnings != nil || b.Decay != nil || b.Sightings.Seen != 0 || b.Tags != nil {
		t.Errorf("tolerant decode: %+v", b)
	}
	// An Event block without tags takes the inherited ones.
	if diff := cmp.Diff([]string{"t"}, got[1].Tags); diff != "" {
		t.Errorf("event tags from inherited (-want +got):\n%s", diff)
	}
}

// TestSearchAsksForEvidence checks the restSearch body against the fake MISP, which honours
// the include* options: sightings, decay scores and, for a query with Warnings, warnings come
// back (warnings on IDS attributes only, as MISP does); without Warnings, none.
func TestSearchAsksForEvidence(t *testing.T) {
	event := []byte(`{"Event":{"uuid":"5b646415-7b48-40d5-86b4-c0070acd0835","info":"x","date":"2024-01-01","threat_level_id":"1",
	 "Orgc":{"name":"CIRCL","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d210f"},"Tag":[{"name":"tlp:green"}],
	 "Attribute":[
	  {"uuid":"11111111-0000-4000-8000-000000000001","type":"ip-dst","value":"8.8.8.8","to_ids":true,
	   "Sighting":[{"type":"0","date_sighting":"1700000000","source":"sensor"}],
	   "decay_score":[{"score":12.5,"decayed":true,"DecayingModel":{"id":"1","name":"Model A"}}]},
	  {"uuid":"11111111-0000-4000-8000-000000000002","type":"ip-src","value":"8.8.8.8","to_ids":false}]}}`)
	srv := misptest.New(t, testKey, event)
	srv.Warninglist("List of known IPv4 public DNS resolvers", "8.8.8.8")
	got, err := evidenceClient(t, srv.URL).Search(context.Background(), testKey, intel.Query{Value: "8.8.8.8", Limit: 10})
	if err != nil || len(got) != 1 || len(got[0].Attributes) != 2 {
		t.Fatalf("got %+v, %v", got, err)
	}
	if w := got[0].Attributes[0].Warnings; w != nil {
		t.Errorf("warnings without asking for them: %+v", w)
	}
	got, err = evidenceClient(t, srv.URL).Search(context.Background(), testKey, intel.Query{Value: "8.8.8.8", Limit: 10, Warnings: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Attributes) != 2 {
		t.Fatalf("got %+v", got)
	}
	ids, notIDS := got[0].Attributes[0], got[0].Attributes[1]
	if len(ids.Warnings) != 1 || ids.Warnings[0].List != "List of known IPv4 public DNS resolvers" {
		t.Errorf("IDS attribute warnings = %+v", ids.Warnings)
	}
	if notIDS.Warnings != nil {
		t.Errorf("MISP annotates only IDS attributes, got %+v", notIDS.Warnings)
	}
	if ids.Sightings.Seen != 1 || len(ids.Decay) != 1 || !ids.Decay[0].Decayed {
		t.Errorf("sightings %+v, decay %+v", ids.Sightings, ids.Decay)
	}
	// With MISP.warning_for_all, the other attribute is annotated too.
	srv.WarningForAll(true)
	got, err = evidenceClient(t, srv.URL).Search(context.Background(), testKey, intel.Query{Value: "8.8.8.8", Limit: 10, Warnings: true})
	if err != nil || len(got[0].Attributes[1].Warnings) != 1 {
		t.Errorf("warning_for_all: %+v, %v", got, err)
	}
}

func TestCheckWarninglists(t *testing.T) {
	raw, err := os.ReadFile("testdata/misp_warninglists_checkvalue_hit.json")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("real hit fixture", func(t *testing.T) {
		srv := newEvidenceServer(t, http.StatusOK, string(raw))
		got, err := evidenceClient(t, srv.URL).CheckWarninglists(context.Background(), testKey, []string{"8.8.8.8", "example.org"})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]intel.WarninglistHit{"8.8.8.8": {{List: "List of known IPv4 public DNS resolvers", Match: "8.8.8.8/32"}}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("hits (-want +got):\n%s", diff)
		}
		if paths, bodies := srv.calls(); len(paths) != 1 || paths[0] != "/warninglists/checkValue" || bodies[0] != `["8.8.8.8","example.org"]` {
			t.Errorf("requests %q %q", paths, bodies)
		}
	})
	t.Run("more values than one call takes: several calls, every value answered", func(t *testing.T) {
		srv := misptest.New(t, testKey)
		srv.Warninglist("List of known IPv4 public DNS resolvers", "8.8.8.8", "9.9.9.9")
		values := make([]string, 10_001)
		for i := range values {
			values[i] = fmt.Sprintf("value-%d.example", i)
		}
		values[0], values[10_000] = "8.8.8.8", "9.9.9.9" // one in each call
		got, err := evidenceClient(t, srv.URL).CheckWarninglists(context.Background(), testKey, values)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || len(got["8.8.8.8"]) != 1 || len(got["9.9.9.9"]) != 1 {
			t.Errorf("hits %v, want 8.8.8.8 and 9.9.9.9", got)
		}
		if n := len(srv.Requests()); n != 2 {
			t.Errorf("%d checkValue calls for 10,001 values, want 2", n)
		}
	})
	t.Run("no hit is an empty list", func(t *testing.T) {
		srv := newEvidenceServer(t, http.StatusOK, "[]")
		got, err := evidenceClient(t, srv.URL).CheckWarninglists(context.Background(), testKey, []string{"192.0.2.1"})
		if err != nil || len(got) != 0 {
			t.Errorf("got %v, %v", got, err)
		}
	})
	t.Run("fake MISP", func(t *testing.T) {
		srv := misptest.New(t, testKey)
		srv.Warninglist("List of known IPv4 public DNS resolvers", "8.8.8.8", "1.1.1.1")
		srv.Warninglist("Other", "1.1.1.1")
		got, err := evidenceClient(t, srv.URL).CheckWarninglists(context.Background(), testKey, []string{"8.8.8.8", "1.1.1.1", "192.0.2.1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got["8.8.8.8"]) != 1 || len(got["1.1.1.1"]) != 2 || got["192.0.2.1"] != nil {
			t.Errorf("got %+v", got)
		}
		var body []string
		reqs := srv.Requests()
		if err := json.Unmarshal(reqs[len(reqs)-1].Body, &body); err != nil || len(body) != 3 {
			t.Errorf("body %s", reqs[len(reqs)-1].Body)
		}
	})
	t.Run("nothing to check: no call", func(t *testing.T) {
		srv := newEvidenceServer(t, http.StatusOK, "[]")
		got, err := evidenceClient(t, srv.URL).CheckWarninglists(context.Background(), testKey, nil)
		if paths, _ := srv.calls(); err != nil || got != nil || len(paths) != 0 {
			t.Errorf("got %v, %v, %d calls", got, err, len(paths))
		}
	})
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"missing endpoint (old MISP)", http.StatusNotFound, `{"name":"Not Found","message":"Not Found","url":"/warninglists/checkValue"}`, "404"},
		{"refused", http.StatusForbidden, `{"name":"You do not have permission to use this functionality.","message":"You do not have permission to use this functionality.","url":"/warninglists/checkValue"}`, "permission"},
		{"a list of something", http.StatusOK, `[1]`, "neither an object"},
		{"HTML", http.StatusOK, `<html><title>Login</title></html>`, "HTML"},
		{"empty", http.StatusOK, ``, "empty"},
		{"not JSON", http.StatusOK, `{"8.8.8.8":`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newEvidenceServer(t, tc.status, tc.body)
			_, err := evidenceClient(t, srv.URL).CheckWarninglists(context.Background(), testKey, []string{"8.8.8.8"})
			var me *misp.Error
			if !errors.As(err, &me) {
				t.Fatalf("err = %v, want a *misp.Error", err)
			}
			if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.want)) {
				t.Errorf("err = %v, want it to say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), testKey) {
				t.Error("the key leaks into the error")
			}
		})
	}
	t.Run("not retried", func(t *testing.T) {
		srv := newEvidenceServer(t, http.StatusServiceUnavailable, `{"name":"busy","message":"busy","url":"/warninglists/checkValue"}`)
		if _, err := evidenceClient(t, srv.URL).CheckWarninglists(context.Background(), testKey, []string{"8.8.8.8"}); err == nil {
			t.Fatal("no error")
		}
		if paths, _ := srv.calls(); len(paths) != 1 {
			t.Errorf("%d calls, want 1: the check is optional and the request waits for it", len(paths))
		}
	})
	t.Run("hits of odd shapes are skipped", func(t *testing.T) {
		srv := newEvidenceServer(t, http.StatusOK, `{"8.8.8.8":[{"id":"1","name":"A","matched":"8.8.8.8"},{"id":"2"},{}],"1.1.1.1":"no","x":[{"name":["A"]}]}`)
		got, err := evidenceClient(t, srv.URL).CheckWarninglists(context.Background(), testKey, []string{"8.8.8.8"})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]intel.WarninglistHit{"8.8.8.8": {{List: "A", Match: "8.8.8.8"}, {List: "#2"}}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("hits (-want +got):\n%s", diff)
		}
	})
}

// TestSearchSightingsOverTheAttributeCap: MISP lists every sighting of an attribute, and a
// value sensors report can have thousands, more than MISP_MAX_ATTRIBUTE_BYTES. The lookup then
// asks once more without sightings instead of failing.
func TestSearchSightingsOverTheAttributeCap(t *testing.T) {
	var sightings []string
	for range 3000 {
		sightings = append(sightings, `{"type":"0","date_sighting":"1700000000","source":"sensor-0001","Organisation":{"name":"Example SOC"}}`)
	}
	event := []byte(`{"Event":{"uuid":"5b646415-7b48-40d5-86b4-c0070acd0835","info":"x","date":"2024-01-01","threat_level_id":"1",
	 "Attribute":[{"uuid":"11111111-0000-4000-8000-000000000001","type":"ip-dst","value":"198.51.100.9","to_ids":true,
	   "Sighting":[` + strings.Join(sightings, ",") + `]},
	  {"uuid":"11111111-0000-4000-8000-000000000002","type":"domain","value":"big.example","to_ids":true,
	   "comment":"` + strings.Repeat("x", 100<<10) + `"}]}}`)
	srv := misptest.New(t, testKey, event)
	c, err := misp.New(misp.Config{BaseURL: srv.URL, Timeout: 5 * time.Second, MaxAttributeBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	searches := func() []bool {
		var withSightings []bool
		for _, r := range srv.Requests() {
			if r.Path != "/attributes/restSearch" {
				continue
			}
			var q struct {
				IncludeSightings int `json:"includeSightings"`
			}
			if err := json.Unmarshal(r.Body, &q); err != nil {
				t.Fatal(err)
			}
			withSightings = append(withSightings, q.IncludeSightings == 1)
		}
		return withSightings
	}

	got, err := c.Search(context.Background(), testKey, intel.Query{Value: "198.51.100.9", Limit: 10})
	if err != nil {
		t.Fatalf("Search: %v", err)
	}
	if len(got) != 1 || len(got[0].Attributes) != 1 || got[0].Attributes[0].Sightings.Seen != 0 {
		t.Errorf("got %+v, want the event without its sightings", got)
	}
	if diff := cmp.Diff([]bool{true, false}, searches()); diff != "" {
		t.Errorf("includeSightings of the searches (-want +got):\n%s", diff)
	}

	// An attribute too large without its sightings still fails, after the one retry.
	_, err = c.Search(context.Background(), testKey, intel.Query{Value: "big.example", Limit: 10})
	if err == nil || !strings.Contains(err.Error(), "MISP_MAX_ATTRIBUTE_BYTES") {
		t.Errorf("err = %v, want one naming MISP_MAX_ATTRIBUTE_BYTES", err)
	}
	if n := len(searches()); n != 4 {
		t.Errorf("%d searches in all, want 4", n)
	}
}

// TestSearchCommentAndObject: an attribute's comment (cleaned) and object_relation come
// through MISP's attributes search; its object's name and other attributes do not (MISP's
// attributes scope gives Object{id,distribution,sharing_group_id} only).
func TestSearchCommentAndObject(t *testing.T) {
	event := []byte(`{"Event":{"uuid":"33333333-3333-4333-8333-333333333333","info":"C2","date":"2024-01-02","threat_level_id":"3",
	 "Orgc":{"name":"CIRCL","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d210f"},
	 "Attribute":[{"type":"ip-dst","category":"Network activity","value":"198.51.100.8","to_ids":false,
	   "comment":"Potential false-positive\nbut included in the OSINT report"}],
	 "Object":[{"name":"ip-port","Attribute":[
	   {"type":"ip-dst","category":"Network activity","value":"198.51.100.9","to_ids":true,"object_relation":"ip","comment":"C2"},
	   {"type":"port","category":"Network activity","value":"443","object_relation":"dst-port"}]}]}}`)
	srv := misptest.New(t, testKey, event)
	c := newClient(t, srv.URL)
	type seen struct {
		Value, Comment string
		Object         intel.Object
	}
	var got []seen
	for _, v := range []string{"198.51.100.8", "198.51.100.9"} {
		evs, err := c.Search(context.Background(), testKey, intel.Query{Value: v, Types: []string{"ip-dst"}, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			for _, a := range e.Attributes {
				got = append(got, seen{a.Value, a.Comment, a.Object})
			}
		}
	}
	want := []seen{
		{"198.51.100.8", "Potential false-positive but included in the OSINT report", intel.Object{}},
		{"198.51.100.9", "C2", intel.Object{Relation: "ip"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
