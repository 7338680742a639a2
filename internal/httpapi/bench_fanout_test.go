package httpapi_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/service"
)

// BenchmarkFanOutRequest is relaybench's fan-out request in one process, without latency
// and without clients: one observe of 50 IPs, each found in 3 events of 2 attributes by a
// misptest.Generated MISP on loopback, through the real MISP client and the full handler.
// It measures what the relay spends on one such request (plus the fake MISP's share).
func BenchmarkFanOutRequest(b *testing.B) {
	g := misptest.NewGenerated(misptest.GeneratedOptions{Key: benchMISPKey, Events: 3, Attributes: 2})
	mispSrv := httptest.NewServer(g)
	b.Cleanup(mispSrv.Close)
	client, err := misp.New(misp.Config{BaseURL: mispSrv.URL, Timeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	benchObserve(b, service.Config{Backend: client, UIURL: benchUIURL}, observeBody(50), "")
}
