package loadbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
)

// newClient is the relay's MISP client pointed at f.
func newClient(t *testing.T, f *fakeMISP, timeout time.Duration) *misp.Client {
	t.Helper()
	srv := startFakeMISP(f)
	t.Cleanup(srv.Close)
	c, err := misp.New(misp.Config{BaseURL: srv.URL, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The fake must speak the wire format the relay's real client reads, or the load scenarios
// would measure error paths.
func TestFakeMISPAnswersTheRealClient(t *testing.T) {
	f := &fakeMISP{events: 3, attrs: 2}
	c := newClient(t, f, 5*time.Second)
	events, err := c.Search(context.Background(), benchMISPKey, intel.Query{Value: `198.51.100.7"\`, Types: []string{"ip-src", "ip-dst"}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 {
		t.Fatalf("%d events, want 3", len(events))
	}
	for i, e := range events {
		if len(e.Attributes) != 2 || e.Attributes[0].Value != `198.51.100.7"\` || e.Attributes[0].Type != "ip-dst" || !e.Attributes[0].ToIDS {
			t.Errorf("event %d attributes = %+v", i, e.Attributes)
		}
		if e.UUID == "" || e.Org != fakeOrg || e.ThreatLevel != 1+i%4 || e.Date != fakeDate || e.Timestamp.IsZero() {
			t.Errorf("event %d = %+v", i, e)
		}
		if diff := cmp.Diff([]string{"tlp:amber", "relaybench:synthetic"}, e.Tags); diff != "" {
			t.Errorf("event %d tags (-want +got):\n%s", i, diff)
		}
	}
	if events[0].UUID == events[1].UUID {
		t.Error("two events share a UUID")
	}
	if got := f.searches.Load(); got != 1 {
		t.Errorf("%d restSearch calls, want 1", got)
	}
	v, err := c.Version(context.Background(), benchMISPKey)
	if err != nil || v != fakeVersion {
		t.Errorf("Version = %q, %v", v, err)
	}
}

func TestFakeMISPPaging(t *testing.T) {
	// 300 attributes: the client's pages of 200 take two calls.
	f := &fakeMISP{events: 150, attrs: 2}
	c := newClient(t, f, 5*time.Second)
	events, err := c.Search(context.Background(), benchMISPKey, intel.Query{Value: "203.0.113.1", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 150 {
		t.Errorf("%d events, want 150", len(events))
	}
	if got := f.searches.Load(); got != 2 {
		t.Errorf("%d restSearch calls, want 2", got)
	}
}

func TestFakeMISPIgnoringPagingIsCutByTheLimit(t *testing.T) {
	f := &fakeMISP{events: 20000, attrs: 1, ignorePaging: true}
	c := newClient(t, f, 5*time.Second)
	events, err := c.Search(context.Background(), benchMISPKey, intel.Query{Value: "203.0.113.9", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 10 {
		t.Errorf("%d events, want 10", len(events))
	}
}

func TestFakeMISPRefusesAWrongKey(t *testing.T) {
	c := newClient(t, &fakeMISP{events: 1, attrs: 1}, 5*time.Second)
	_, err := c.Search(context.Background(), "another key", intel.Query{Value: "203.0.113.1"})
	if !errors.Is(err, misp.ErrPermission) {
		t.Errorf("err = %v, want permission denied", err)
	}
}

// A caller that gives up must free the fake at once; otherwise closing the server would wait
// for the whole latency.
func TestFakeMISPLatencyEndsWithTheCaller(t *testing.T) {
	c := newClient(t, &fakeMISP{latency: time.Hour, events: 1, attrs: 1}, 20*time.Millisecond)
	_, err := c.Search(context.Background(), benchMISPKey, intel.Query{Value: "203.0.113.1"})
	if !errors.Is(err, misp.ErrUnavailable) {
		t.Errorf("err = %v, want service unavailable (timeout)", err)
	}
}

func TestAnswerSizeMatchesWhatIsSent(t *testing.T) {
	f := &fakeMISP{events: 5, attrs: 2, ignorePaging: true}
	srv := startFakeMISP(f)
	t.Cleanup(srv.Close)
	body, err := json.Marshal(map[string]any{"value": "203.0.113.9", "type": []string{"ip-dst"}})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL+"/attributes/restSearch", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", benchMISPKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, buf.Bytes())
	}
	if !json.Valid(buf.Bytes()) {
		t.Fatalf("not JSON: %s", buf.Bytes())
	}
	if got, want := answerSize(f, "203.0.113.9"), uint64(buf.Len()); got != want {
		t.Errorf("answerSize = %d, the answer has %d bytes", got, want)
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50}, {0.95, 95}, {0.99, 99}, {1, 100}, {0.001, 1}} {
		if got := percentile(d, tc.q); got != tc.want {
			t.Errorf("percentile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile of nothing = %v", got)
	}
}

func TestSelectScenarios(t *testing.T) {
	got, err := selectScenarios("2, cache,2,startup")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.name)
	}
	if diff := cmp.Diff([]string{"throughput", "cache", "startup"}, names); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := selectScenarios("8"); err == nil {
		t.Error("scenario 8 accepted")
	}
}
