package app

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/testkit"
)

func TestMetricsListener(t *testing.T) {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, testkit.Env(map[string]string{
			// Port 0 and the address from the log: no port picked in advance that another
			// process could take meanwhile.
			"PORT": "0", "SECRET_KEY": "s", "API_URL": "../../sample/feed", "METRICS_ADDR": "127.0.0.1:0",
		}), pw)
		pw.Close()
	}()
	log := testkit.FollowLog(pr)
	addr := log.ListeningAddr(t)
	metricsAddr, _ := log.Wait(t, "metrics listening")["addr"].(string)

	resp, err := http.Get("http://" + addr + "/watchdog")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The metrics are not served on the API port.
	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics on the API port answered %d", resp.StatusCode)
	}
	resp, err = http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `relay_requests_total{outcome="health check failed",path="/watchdog"} 1`) {
		t.Errorf("metrics lack the watchdog request:\n%.2000s", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no shutdown")
	}
}
