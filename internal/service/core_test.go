package service_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/gen"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/intel/inteltest"
	"github.com/misp-relay/misp-relay/internal/service"
	"github.com/misp-relay/misp-relay/internal/upstream"
)

// The core is tested here without HTTP: observables in, CTIM and failures (as values) out.
// Package httpapi's tests cover the contract on the wire.

var coreNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// c2Event is one published High event holding 198.51.100.7 for IDS.
func c2Event() intel.Event {
	return intel.Event{
		UUID: "5f0e1a2b-0001-4222-8333-000000000001", Info: "C2 servers of a loader", Date: "2025-12-01",
		Timestamp: coreNow.Add(-time.Hour), ThreatLevel: 1, Org: "Example CERT", Published: true,
		Attributes: []intel.Attribute{{Type: "ip-dst", Category: "Network activity", Value: "198.51.100.7", ToIDS: true, Timestamp: coreNow.Add(-time.Hour)}},
	}
}

// c2Backend holds c2Event, and nothing else.
func c2Backend() *inteltest.Backend {
	return &inteltest.Backend{SearchFn: func(_ context.Context, _ string, q intel.Query) ([]intel.Event, error) {
		if q.Value == "198.51.100.7" {
			return []intel.Event{c2Event()}, nil
		}
		return nil, nil
	}}
}

func newCore(t *testing.T, b intel.Backend) *service.Service {
	t.Helper()
	s, err := service.New(service.Config{Version: "9.9.9", Backend: b, UIURL: "https://misp.example", Now: func() time.Time { return coreNow }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEnrichWithoutHTTP(t *testing.T) {
	found := c2Backend()
	down := &inteltest.Backend{SearchFn: func(context.Context, string, intel.Query) ([]intel.Event, error) {
		return nil, &upstream.Error{Summary: "MISP search failed", Op: "search", Kind: upstream.ErrUnavailable}
	}}
	in := []gen.ObservableInput{{Type: "ip", Value: " 198.51.100.7 "}, {Type: "ip", Value: "192.0.2.1"}, {Type: "user", Value: "alice"}}
	type verdictOf struct{ Value, Disposition string }
	for _, tc := range []struct {
		name         string
		backend      intel.Backend
		claims       auth.Claims
		observe      bool
		wantVerdicts []verdictOf
		wantEntities int // judgements + sightings + indicators + relationships
		wantErr      error
		answered     bool
	}{
		{
			name: "observe", backend: found, claims: auth.Claims{Key: "k"}, observe: true,
			wantVerdicts: []verdictOf{{"198.51.100.7", "Malicious"}}, wantEntities: 1 + 1 + 1 + 2, answered: true,
		},
		{
			name: "deliberate", backend: found, claims: auth.Claims{Key: "k"},
			wantVerdicts: []verdictOf{{"198.51.100.7", "Malicious"}}, wantEntities: 0, answered: true,
		}, // verdicts only
		{name: "a source down", backend: down, claims: auth.Claims{Key: "k"}, observe: true, wantErr: upstream.ErrUnavailable},
		{
			name: "a host this relay does not call", backend: found, claims: auth.Claims{Key: "k", Host: "https://other.example"}, observe: true,
			wantErr: &service.Error{Kind: service.KindConfig},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newCore(t, tc.backend)
			got := s.Enrich(context.Background(), s.Tenant(tc.claims), in, tc.observe)
			if got.Answered != tc.answered {
				t.Errorf("answered = %v, want %v", got.Answered, tc.answered)
			}
			if tc.wantErr != nil {
				// One per lookup that failed: the adapter drops repeats.
				if len(got.Errs) == 0 {
					t.Fatalf("no errors, want %v", tc.wantErr)
				}
				for _, err := range got.Errs {
					if !matches(err, tc.wantErr) {
						t.Errorf("error %v, want one like %v", err, tc.wantErr)
					}
				}
				return
			}
			if len(got.Errs) != 0 {
				t.Fatalf("errors %v", got.Errs)
			}
			var verdicts []verdictOf
			if got.Data.Verdicts != nil {
				for _, v := range got.Data.Verdicts.Docs {
					verdicts = append(verdicts, verdictOf{v.Observable.Value, string(*v.DispositionName)})
				}
			}
			if diff := cmp.Diff(tc.wantVerdicts, verdicts); diff != "" {
				t.Errorf("verdicts (-want +got):\n%s", diff)
			}
			n := 0
			if d := got.Data; d.Judgements != nil {
				n += len(d.Judgements.Docs)
			}
			if d := got.Data; d.Sightings != nil {
				n += len(d.Sightings.Docs)
			}
			if d := got.Data; d.Indicators != nil {
				n += len(d.Indicators.Docs)
			}
			if d := got.Data; d.Relationships != nil {
				n += len(d.Relationships.Docs)
			}
			if n != tc.wantEntities {
				t.Errorf("%d entities, want %d", n, tc.wantEntities)
			}
		})
	}
}

// matches tells whether err is like want: the same core Kind, or wrapping want.
func matches(err, want error) bool {
	var we, ge *service.Error
	if errors.As(want, &we) {
		return errors.As(err, &ge) && ge.Kind == we.Kind
	}
	return errors.Is(err, want)
}

func TestActionsWithoutHTTP(t *testing.T) {
	held := c2Backend()
	s := newCore(t, held)
	tenant := s.Tenant(auth.Claims{Key: "k"})
	actions, errs := s.Actions(context.Background(), tenant, []gen.ObservableInput{{Type: "ip", Value: "198.51.100.7"}, {Type: "ip", Value: "192.0.2.1"}})
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	var ids []string
	for _, a := range actions {
		ids = append(ids, string(a.Id)+" "+a.QueryParams.ObservableValue)
	}
	want := []string{"misp-add-sighting 198.51.100.7", "misp-add-false-positive 198.51.100.7"}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name string
		body gen.TriggerRequest
		ok   bool
		want string // the failure's message, "" for none
	}{
		{"a sighting", gen.TriggerRequest{ActionId: "misp-add-sighting", ObservableType: "ip", ObservableValue: "198.51.100.7"}, true, ""},
		{"an unknown action", gen.TriggerRequest{ActionId: "format-disk", ObservableType: "ip", ObservableValue: "198.51.100.7"}, false, "Unknown action-id 'format-disk'."},
		{
			"an unsupported observable",
			gen.TriggerRequest{ActionId: "misp-add-sighting", ObservableType: "user", ObservableValue: "alice"},
			false,
			"The observable 'user' 'alice' is not supported or cannot be matched exactly by MISP.",
		},
		{
			"a scan without a key",
			gen.TriggerRequest{ActionId: "urlscan-scan", ObservableType: "ip", ObservableValue: "198.51.100.7"},
			false,
			"urlscan.io scans URLs and domains, not 'ip' '198.51.100.7'.",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, errs := s.Trigger(context.Background(), tenant, tc.body)
			if ok != tc.ok {
				t.Errorf("ok = %v, want %v", ok, tc.ok)
			}
			var msgs []string
			for _, err := range errs {
				msgs = append(msgs, err.Error())
				if ce := (*service.Error)(nil); !errors.As(err, &ce) || ce.Kind != service.KindInvalid {
					t.Errorf("%v is not an invalid-argument failure", err)
				}
			}
			if got := strings.Join(msgs, "; "); got != tc.want {
				t.Errorf("failure %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReferWithoutHTTP(t *testing.T) {
	s := newCore(t, &inteltest.Backend{})
	links, errs := s.Refer(context.Background(), s.Tenant(auth.Claims{Key: "k"}), []gen.ObservableInput{{Type: "domain", Value: "c2+x.example"}})
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	if len(links) != 1 || links[0].Url != "https://misp.example/events/index/searchvalue:c2%2Bx.example/sort:timestamp/direction:desc" {
		t.Errorf("links %+v", links)
	}
	if ok, errs := s.Health(context.Background(), s.Tenant(auth.Claims{Key: "k"})); !ok || len(errs) != 0 {
		t.Errorf("health: ok %v, errors %v", ok, errs)
	}
	if v := s.Version(); v != "9.9.9" {
		t.Errorf("version %q", v)
	}
}

// TestNoTenant: a call without the tenant the adapter resolves (a wiring mistake) is a
// failure, never a nil dereference.
func TestNoTenant(t *testing.T) {
	s := newCore(t, &inteltest.Backend{})
	ctx := context.Background()
	in := []gen.ObservableInput{{Type: "ip", Value: "198.51.100.7"}}
	var errs []error
	errs = append(errs, s.Enrich(ctx, nil, in, true).Errs...)
	_, e := s.Refer(ctx, nil, in)
	errs = append(errs, e...)
	_, e = s.Actions(ctx, nil, in)
	errs = append(errs, e...)
	_, e = s.Trigger(ctx, nil, gen.TriggerRequest{ActionId: "misp-add-sighting", ObservableType: "ip", ObservableValue: "198.51.100.7"})
	errs = append(errs, e...)
	_, e = s.Health(ctx, nil)
	errs = append(errs, e...)
	_, err := s.TileData(ctx, nil, "misp-summary", "last_7_days")
	errs = append(errs, err)
	if len(errs) != 6 {
		t.Fatalf("%d failures, want one per call: %v", len(errs), errs)
	}
	for _, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "no tenant") {
			t.Errorf("failure %v, want the missing tenant", err)
		}
	}
}
