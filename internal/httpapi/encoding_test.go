package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/gen"
	"github.com/misp-relay/misp-relay/internal/httpapi"
	"github.com/misp-relay/misp-relay/internal/service"
	"github.com/misp-relay/misp-relay/internal/service/servicetest"
	"github.com/misp-relay/misp-relay/internal/urlscan"
	"github.com/misp-relay/misp-relay/internal/warninglist"
)

// TestAnswerEncodingOfRealAnswers: what answer writes (goccy/go-json) is, byte for byte, what
// encoding/json writes for the same value, for every answer of the list routes over every
// value of the real events and of the sample feed: observe and deliberate (tags with quotes,
// comments, relations with their details, decay scores, warninglist reasons), refer and
// respond. The values are the core's own, as the handlers get them, not decoded from JSON,
// so a difference that loses something (a dropped map entry, a time's precision) shows too.
func TestAnswerEncodingOfRealAnswers(t *testing.T) {
	lists, err := warninglist.Load("../../sample/warninglists")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, dir := range []string{servicetest.RealEventsDir(), "../../sample/feed"} {
		obs, store := feedOf(t, dir)
		svc, err := service.New(service.Config{
			Version: "1.0.0", Backend: store, UIURL: "https://misp.example", Warninglists: lists, Scanner: noScans{},
			Now: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) },
		})
		if err != nil {
			t.Fatal(err)
		}
		tenant := svc.Tenant(auth.Claims{Key: "encoding-test", URLScanKey: "encoding-test"}) // urlscan.io: respond offers a scan
		var in []gen.ObservableInput
		for _, k := range servicetest.Keys(obs) {
			in = append(in, gen.ObservableInput{Type: k.Type, Value: k.Value})
		}
		links, errs := svc.Refer(ctx, tenant, in)
		refer := gen.ReferObservables200JSONResponse{Data: &links}
		if len(errs) > 0 {
			t.Fatalf("refer: %v", errs)
		}
		actions, errs := svc.Actions(ctx, tenant, in)
		if len(errs) > 0 {
			t.Fatalf("respond: %v", errs)
		}
		answers := map[string]any{
			"observe":    gen.ObserveObservables200JSONResponse(httpapi.EnrichResult(ctx, svc.Enrich(ctx, tenant, in, true))),
			"deliberate": gen.DeliberateObservables200JSONResponse(httpapi.EnrichResult(ctx, svc.Enrich(ctx, tenant, in, false))),
			"refer":      refer,
			"respond":    gen.RespondObservables200JSONResponse{Data: &actions},
		}
		size := 0
		for route, v := range answers {
			var std bytes.Buffer
			if err := json.NewEncoder(&std).Encode(v); err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			if err := httpapi.Answer(rec, v); err != nil {
				t.Fatalf("%s: %v", route, err)
			}
			if got := rec.Body.Bytes(); !bytes.Equal(std.Bytes(), got) {
				i := 0
				for i < min(len(got), std.Len()) && got[i] == std.Bytes()[i] {
					i++
				}
				t.Errorf("%s of %s: the answer differs from encoding/json's at byte %d of %d:\nrelay: %.200s\nstd:   %.200s",
					route, dir, i, len(got), got[max(0, i-40):], std.Bytes()[max(0, i-40):])
			}
			if std.Len() < 100 {
				t.Errorf("%s of %s: %d bytes: too little compared", route, dir, std.Len())
			}
			size += std.Len()
		}
		t.Logf("%s: %d observables, %d bytes of answers, the same as encoding/json's", dir, len(in), size)
	}
}

// noScans is a urlscan.io client that is never called: with it, respond offers a scan of
// each URL and domain.
type noScans struct{}

func (noScans) Scan(context.Context, string, string) (urlscan.Result, error) {
	return urlscan.Result{}, errors.New("no scan in this test")
}
