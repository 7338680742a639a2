package misptest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
)

const generatedKey = "GeneratedMispKey0123456789abcdefghijABCD"

// generatedClient is the relay's MISP client pointed at a served g.
func generatedClient(t *testing.T, g *misptest.Generated, timeout time.Duration) *misp.Client {
	t.Helper()
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	c, err := misp.New(misp.Config{BaseURL: srv.URL, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Generated must speak the wire format the relay's real client reads, or load tests would
// measure error paths.
func TestGeneratedAnswersTheRealClient(t *testing.T) {
	g := misptest.NewGenerated(misptest.GeneratedOptions{Key: generatedKey, Events: 3, Attributes: 2})
	c := generatedClient(t, g, 5*time.Second)
	value := `198.51.100.7"\` + "\x01"
	events, err := c.Search(context.Background(), generatedKey, intel.Query{Value: value, Types: []string{"ip-src", "ip-dst"}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 {
		t.Fatalf("%d events, want 3", len(events))
	}
	for i, e := range events {
		if len(e.Attributes) != 2 || e.Attributes[0].Value != value || e.Attributes[0].Type != "ip-dst" || !e.Attributes[0].ToIDS {
			t.Errorf("event %d attributes = %+v", i, e.Attributes)
		}
		if e.UUID == "" || e.Org != misptest.GeneratedOrg || e.ThreatLevel != 1+i%4 || e.Date != misptest.GeneratedDate || e.Timestamp.Unix() != 1700000000 {
			t.Errorf("event %d = %+v", i, e)
		}
		if diff := cmp.Diff([]string{"tlp:amber", "relaybench:synthetic"}, e.Tags); diff != "" {
			t.Errorf("event %d tags (-want +got):\n%s", i, diff)
		}
	}
	if events[0].UUID == events[1].UUID {
		t.Error("two events share a UUID")
	}
	if got := g.Searches(); got != 1 {
		t.Errorf("%d restSearch calls, want 1", got)
	}
	v, err := c.Version(context.Background(), generatedKey)
	if err != nil || v != misptest.GeneratedVersion {
		t.Errorf("Version = %q, %v", v, err)
	}
	if got := g.Versions(); got != 1 {
		t.Errorf("%d getVersion calls, want 1", got)
	}
}

// The type asked for is the type answered; ip-dst wins when it is among them.
func TestGeneratedAttributeType(t *testing.T) {
	g := misptest.NewGenerated(misptest.GeneratedOptions{Key: generatedKey, Events: 1})
	c := generatedClient(t, g, 5*time.Second)
	for _, tc := range []struct {
		types []string
		want  string
	}{
		{[]string{"md5", "filename|md5"}, "md5"},
		{[]string{"domain", "ip-dst"}, "ip-dst"},
		{nil, "ip-dst"},
	} {
		events, err := c.Search(context.Background(), generatedKey, intel.Query{Value: "x", Types: tc.types, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != 1 || len(events[0].Attributes) != 1 || events[0].Attributes[0].Type != tc.want {
			t.Errorf("types %v: %+v, want one attribute of type %s", tc.types, events, tc.want)
		}
	}
}

// A value always gets the same events, and two values get different ones.
func TestGeneratedIsDeterministicPerValue(t *testing.T) {
	g := misptest.NewGenerated(misptest.GeneratedOptions{Key: generatedKey, Events: 2})
	c := generatedClient(t, g, 5*time.Second)
	uuids := func(value string) []string {
		events, err := c.Search(context.Background(), generatedKey, intel.Query{Value: value, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range events {
			out = append(out, e.UUID)
		}
		return out
	}
	a, again, b := uuids("203.0.113.1"), uuids("203.0.113.1"), uuids("203.0.113.2")
	if diff := cmp.Diff(a, again); diff != "" {
		t.Errorf("the same value got other events (-first +second):\n%s", diff)
	}
	if cmp.Equal(a, b) || len(a) != 2 {
		t.Errorf("203.0.113.1 got %v and 203.0.113.2 got %v", a, b)
	}
}

func TestGeneratedPaging(t *testing.T) {
	// 300 attributes: the client's pages of 200 take two calls.
	g := misptest.NewGenerated(misptest.GeneratedOptions{Key: generatedKey, Events: 150, Attributes: 2})
	c := generatedClient(t, g, 5*time.Second)
	events, err := c.Search(context.Background(), generatedKey, intel.Query{Value: "203.0.113.1", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 150 {
		t.Errorf("%d events, want 150", len(events))
	}
	if got := g.Searches(); got != 2 {
		t.Errorf("%d restSearch calls, want 2", got)
	}
}

func TestGeneratedIgnoringPagingIsCutByTheLimit(t *testing.T) {
	g := misptest.NewGenerated(misptest.GeneratedOptions{Key: generatedKey, Events: 20000, IgnorePaging: true})
	c := generatedClient(t, g, 5*time.Second)
	events, err := c.Search(context.Background(), generatedKey, intel.Query{Value: "203.0.113.9", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 10 {
		t.Errorf("%d events, want 10", len(events))
	}
	if got := g.Searches(); got != 1 {
		t.Errorf("%d restSearch calls, want 1", got)
	}
}

func TestGeneratedRefusesAWrongKey(t *testing.T) {
	for _, tc := range []struct{ name, configured, sent string }{
		{"wrong key", generatedKey, "another key"},
		{"no key", generatedKey, ""},
		{"none configured", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := misptest.NewGenerated(misptest.GeneratedOptions{Key: tc.configured, Events: 1})
			c := generatedClient(t, g, 5*time.Second)
			_, err := c.Search(context.Background(), tc.sent, intel.Query{Value: "203.0.113.1"})
			if !errors.Is(err, misp.ErrPermission) {
				t.Errorf("err = %v, want permission denied", err)
			}
			if got := g.Searches(); got != 0 {
				t.Errorf("%d restSearch calls counted, want 0", got)
			}
		})
	}
}

// Anything but the two calls gets MISP's 404 error shape.
func TestGeneratedUnknownPath(t *testing.T) {
	g := misptest.NewGenerated(misptest.GeneratedOptions{Key: generatedKey, Events: 1})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/events/restSearch", strings.NewReader(`{"value":"x"}`))
	req.Header.Set("Authorization", generatedKey)
	g.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound {
		t.Errorf("HTTP %d, want 404", rec.Code)
	}
	var body struct{ Name, Message, URL string }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.URL != "/events/restSearch" || body.Message != "Not Found" {
		t.Errorf("body %s (%v), want MISP's error shape", rec.Body.Bytes(), err)
	}
}

// A caller that gives up must free the fake at once; otherwise closing the server would wait
// for the whole latency.
func TestGeneratedLatencyEndsWithTheCaller(t *testing.T) {
	g := misptest.NewGenerated(misptest.GeneratedOptions{Key: generatedKey, Latency: time.Hour, Events: 1})
	c := generatedClient(t, g, 20*time.Millisecond)
	_, err := c.Search(context.Background(), generatedKey, intel.Query{Value: "203.0.113.1"})
	if !errors.Is(err, misp.ErrUnavailable) {
		t.Errorf("err = %v, want service unavailable (timeout)", err)
	}
}

func TestGeneratedAnswerSizeMatchesWhatIsSent(t *testing.T) {
	for _, events := range []uint64{0, 5, 100} { // 100 × 2 goes through the big-answer buffer
		g := misptest.NewGenerated(misptest.GeneratedOptions{Key: generatedKey, Events: events, Attributes: 2, IgnorePaging: true})
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/attributes/restSearch",
			strings.NewReader(`{"returnFormat":"json","value":"203.0.113.9","type":["ip-dst"],"limit":10,"page":1}`))
		req.Header.Set("Authorization", generatedKey)
		req.Header.Set("Content-Type", "application/json")
		g.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("HTTP %d: %s", rec.Code, rec.Body.Bytes())
		}
		var answer struct {
			Response struct{ Attribute []json.RawMessage }
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Fatalf("not JSON (%v): %.300s", err, rec.Body.Bytes())
		}
		if got := uint64(len(answer.Response.Attribute)); got != 2*events {
			t.Errorf("%d events: %d attributes, want %d (paging ignored)", events, got, 2*events)
		}
		if got, want := g.AnswerSize("203.0.113.9"), uint64(rec.Body.Len()); got != want {
			t.Errorf("%d events: AnswerSize = %d, the answer has %d bytes", events, got, want)
		}
	}
}

// BenchmarkGeneratedSearch is the fake's cost of one restSearch answer of the load
// benchmark's usual size (3 events × 2 attributes, about 5 KB): it shares the CPUs with the
// relay it measures, so it must stay cheap.
//
//	go test -run '^$' -bench Generated -benchmem ./internal/misp/misptest
func BenchmarkGeneratedSearch(b *testing.B) {
	g := misptest.NewGenerated(misptest.GeneratedOptions{Key: generatedKey, Events: 3, Attributes: 2})
	body := []byte(`{"returnFormat":"json","value":"198.51.100.7","type":["ip-src","ip-dst"],"limit":200,"page":1,"includeContext":true,"includeEventTags":true}`)
	w := &generatedDiscard{h: http.Header{}}
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/attributes/restSearch", bytes.NewReader(body))
		req.Header.Set("Authorization", generatedKey)
		g.ServeHTTP(w, req)
	}
	b.SetBytes(w.n / int64(b.N))
}

// generatedDiscard is a ResponseWriter that only counts, so the benchmark measures the fake.
type generatedDiscard struct {
	h http.Header
	n int64
}

func (d *generatedDiscard) Header() http.Header { return d.h }
func (d *generatedDiscard) WriteHeader(int)     {}
func (d *generatedDiscard) Write(p []byte) (int, error) {
	d.n += int64(len(p))
	return len(p), nil
}
