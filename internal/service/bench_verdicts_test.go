package service

import (
	"testing"

	"github.com/misp-relay/misp-relay/internal/verdict"
	"github.com/misp-relay/misp-relay/internal/warninglist"
)

// BenchmarkObserveHandlerPolicy is BenchmarkObserveHandler/known with what the verdict
// policy adds at its most expensive: the sample warninglists (62,754 entries) looked up for
// every matched attribute type, and tag settings matched against every tag.
func BenchmarkObserveHandlerPolicy(b *testing.B) {
	lists, err := warninglist.Load("../../sample/warninglists")
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{
		Backend: stubMISP(benchEvents(0, 3, 3)), UIURL: benchUIURL, Now: benchNow,
		Warninglists: lists,
		Policy: verdict.Policy{
			Benign:      verdict.MustTags("known-good:*"),
			Malicious:   verdict.MustTags("misp-galaxy:threat-actor=*"),
			Suspicious:  verdict.MustTags("type:osint"),
			TrustedOrgs: []string{"Example CERT"},
		},
	}
	body := observeBody(50)
	b.SetBytes(int64(len(body)))
	benchObserve(b, cfg, body, "malicious tag")
}
