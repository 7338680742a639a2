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

// TestSlowLorisIsCutOff: a client that never finishes its headers loses its connection.
func TestSlowLorisIsCutOff(t *testing.T) {
	cfg, err := loadConfig(env(nil))
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
	for range 30 { // one byte every 100 ms, never the end of the headers
		if _, err := io.WriteString(conn, "a"); err != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
		_ = conn.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := conn.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
			break // closed by the server
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
	cfg, _ := loadConfig(env(nil))
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
// still answers that request.
func TestShutdownDrainsInFlightRequests(t *testing.T) {
	const key = "drain-key"
	fake := misptest.New(t, key, []byte(`{"Event":{"uuid":"542e4c9c-cadc-4f8f-bb11-6d13950d210b","info":"x","date":"2024-01-01",
	 "threat_level_id":"1","timestamp":"1700000000","Orgc":{"name":"ORG"},
	 "Attribute":[{"uuid":"11111111-0000-4000-8000-000000000001","type":"ip-dst","category":"Network activity","value":"198.51.100.7","timestamp":"1700000000"}]}}`))
	fake.Delay("/attributes/restSearch", 500*time.Millisecond)

	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, env(map[string]string{"PORT": "0", "SECRET_KEY": "s", "API_URL": fake.URL}), pw)
		pw.Close()
	}()
	addr := listeningAddr(t, pr)
	go func() { _, _ = io.Copy(io.Discard, pr) }()

	tok, _ := auth.Sign("s", auth.Claims{Key: key})
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
	time.Sleep(150 * time.Millisecond) // the request is waiting on MISP
	cancel()
	select {
	case body := <-answered:
		if !strings.Contains(body, `"verdicts"`) {
			t.Errorf("in-flight request answered %q", body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("in-flight request never answered")
	}
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}
