package app

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

func startServer(t *testing.T, cfg config, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a, err := build(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	a.Handler = h
	srv := a.Server()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// TestSlowLorisIsCutOff: a client that never finishes its headers loses its connection. It
// trickles a byte of a header every 100 ms, the attack's pace, until the server hangs up.
func TestSlowLorisIsCutOff(t *testing.T) {
	cfg, err := loadConfig(testkit.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	cfg.readHeaderTimeout = 200 * time.Millisecond
	addr := startServer(t, cfg, http.NotFoundHandler())
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	_, _ = io.WriteString(conn, "POST /health HTTP/1.1\r\nHost: relay\r\nX-Slow: ")
	// The server closing the connection ends this read (the failure bound aside).
	_ = conn.SetReadDeadline(time.Now().Add(testkit.WaitTimeout))
	closed := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, conn)
		closed <- err
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for cut := false; !cut; {
		select {
		case err := <-closed:
			if isTimeout(err) {
				t.Fatalf("the server kept the slow client's connection for %v", testkit.WaitTimeout)
			}
			cut = true
		case <-tick.C:
			_, _ = io.WriteString(conn, "a") // fails once the server has hung up; the read says so
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("slow client held its connection for %v", d)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error) //nolint:errorlint // net.Conn errors are not wrapped
	return ok && ne.Timeout()
}

// TestHugeHeaderRefused: a 1 MB Authorization header is refused before the handler runs.
func TestHugeHeaderRefused(t *testing.T) {
	cfg, _ := loadConfig(testkit.Env(nil))
	called := false
	addr := startServer(t, cfg, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/health", nil)
	req.Header.Set("Authorization", "Bearer "+strings.Repeat("a", 1<<20))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || called {
		t.Errorf("status %d, handler called %v; want 431 before the handler", resp.StatusCode, called)
	}
}

// TestShutdownDrainsInFlightRequests: SIGTERM (ctx cancel) while a lookup waits on MISP
// still answers that request. MISP holds its answer until the relay has begun shutting down.
func TestShutdownDrainsInFlightRequests(t *testing.T) {
	const key = "drain-key"
	fake := misptest.New(t, key, []byte(`{"Event":{"uuid":"542e4c9c-cadc-4f8f-bb11-6d13950d210b","info":"x","date":"2024-01-01",
	 "threat_level_id":"1","timestamp":"1700000000","Orgc":{"name":"ORG"},
	 "Attribute":[{"uuid":"11111111-0000-4000-8000-000000000001","type":"ip-dst","category":"Network activity","value":"198.51.100.7","timestamp":"1700000000"}]}}`))
	release := make(chan struct{})
	fake.Always("/attributes/restSearch", misptest.Answer{Wait: release})

	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, testkit.Env(map[string]string{"PORT": "0", "SECRET_KEY": "s", "API_URL": fake.URL}), pw)
		pw.Close()
	}()
	log := testkit.FollowLog(pr)
	addr := log.ListeningAddr(t)

	tok := testkit.JWT(t, "s", auth.Claims{Key: key})
	answered := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/deliberate/observables", strings.NewReader(`[{"type":"ip","value":"198.51.100.7"}]`))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- err.Error()
			return
		}
		body, _ := io.ReadAll(bufio.NewReader(resp.Body))
		resp.Body.Close()
		answered <- string(body)
	}()
	if err := fake.WaitRequests(testkit.Context(t), "/attributes/restSearch", 1); err != nil {
		t.Fatal(err) // the request never reached MISP
	}
	cancel()
	log.Wait(t, "shutting down: draining in-flight requests")
	close(release)
	select {
	case body := <-answered:
		if !strings.Contains(body, `"verdicts"`) {
			t.Errorf("in-flight request answered %q", body)
		}
	case <-time.After(testkit.WaitTimeout):
		t.Fatal("in-flight request never answered")
	}
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}
