package service_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/service"
)

// BenchmarkFanOutRequest is relaybench's fan-out request in one process, without latency
// and without clients: one observe of 50 IPs, each found in 3 events of 2 attributes by a
// misptest.Generated MISP on loopback, through the real MISP client and the full handler.
// It measures what the relay spends on one such request (plus the fake MISP's share).
func BenchmarkFanOutRequest(b *testing.B) {
	g := misptest.NewGenerated(misptest.GeneratedOptions{Key: testMISPKey, Events: 3, Attributes: 2})
	mispSrv := httptest.NewServer(g)
	b.Cleanup(mispSrv.Close)
	client, err := misp.New(misp.Config{BaseURL: mispSrv.URL, Timeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	svc, err := service.New(service.Config{Version: "1.0.0", Secret: testSecret, Backend: client, UIURL: "https://misp.example"})
	if err != nil {
		b.Fatal(err)
	}
	h, err := service.NewHandler(svc)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := auth.Sign(testSecret, auth.Claims{Key: testMISPKey})
	if err != nil {
		b.Fatal(err)
	}
	var items []string
	for i := range 50 {
		items = append(items, fmt.Sprintf(`{"type":"ip","value":"198.51.%d.%d"}`, 100+i/250, 1+i%250))
	}
	body := []byte("[" + strings.Join(items, ",") + "]")
	serve := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/observe/observables", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := serve(); rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), `"errors"`) {
		b.Fatalf("HTTP %d: %.300s", rec.Code, rec.Body.String())
	}
	b.ReportAllocs()
	for b.Loop() {
		serve()
	}
}
