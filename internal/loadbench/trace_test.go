package loadbench

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
)

// TestObserveTrace records which hand-written code one observe request runs, from the
// handler down to the MISP call and back, for the README's architecture section. make
// trace-observe builds the relay with coverage counters (go build -cover) and runs this test
// with TRACE_BIN (that binary) and TRACE_DIR set; without them it skips. The relay is run
// twice against the same fake MISP, cache off: once with one warm-up observe (counters in
// TRACE_DIR/before), once with the warm-up and one more (TRACE_DIR/after). Everything else
// is the same in both runs (start-up, shutdown; readiness is a TCP connect, no request), so
// after minus before is that one observe; the make target lists the files it ran.
func TestObserveTrace(t *testing.T) {
	bin, dir := os.Getenv("TRACE_BIN"), os.Getenv("TRACE_DIR")
	if bin == "" || dir == "" {
		t.Skip("make trace-observe runs this (TRACE_BIN, TRACE_DIR)")
	}
	fake := startFakeMISP(misptest.GeneratedOptions{Events: 1, Attributes: 1})
	defer fake.close()
	token, err := auth.Sign(benchSecret, auth.Claims{Key: benchMISPKey})
	if err != nil {
		t.Fatal(err)
	}
	body := observeBody("198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5")
	for _, run := range []struct {
		sub      string
		observes int
	}{{"before", 1}, {"after", 2}} {
		out := filepath.Join(dir, run.sub)
		if err := os.MkdirAll(out, 0o750); err != nil {
			t.Fatal(err)
		}
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(t.Context(), bin, "serve") //nolint:gosec // the binary make trace-observe built
		cmd.Env = []string{
			"SECRET_KEY=" + benchSecret, "API_URL=" + fake.srv.URL, "PORT=" + strconv.Itoa(port),
			"CACHE_TTL=0", "LOG_LEVEL=error", "GOCOVERDIR=" + out,
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p := watch(cmd)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		for i := 0; ; i++ {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				_ = c.Close()
				break
			}
			if i == maxPolls {
				p.stop()
				t.Fatalf("the relay does not listen on %s", addr)
			}
			select {
			case <-p.done:
				t.Fatalf("the relay exited: %v", p.err)
			case <-time.After(pollEvery):
			}
		}
		hc := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}
		var buf bytes.Buffer
		for range run.observes {
			if err := send(context.Background(), hc, "http://"+addr+"/observe/observables", token, body, &buf); err != nil {
				p.stop()
				t.Fatal(err)
			}
		}
		p.stop() // SIGTERM: the relay drains and exits, writing its counters
		if p.err != nil {
			t.Fatalf("the relay exited with %v", p.err)
		}
	}
}
