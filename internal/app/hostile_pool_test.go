package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

const poolMISPKey = "PoolMispKey0123456789abcdefghijABCDEFGHIJ"

// buildApp wires a relay from the given environment, as serve does.
func buildApp(t *testing.T, vars map[string]string) *App {
	t.Helper()
	cfg, err := loadConfig(testkit.Env(vars))
	if err != nil {
		t.Fatal(err)
	}
	a, err := build(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func hostport(rawURL string) string {
	return strings.TrimPrefix(strings.TrimPrefix(rawURL, "http://"), "https://")
}

// TestJunkHostsDoNotLockTenantsOut: a relay whose pool was filled (several times over) by
// configuration tokens naming junk hosts still serves a new legitimate tenant, keeps API_URL's
// MISP, and holds at most maxMISPHosts clients and no goroutine per dropped one.
func TestJunkHostsDoNotLockTenantsOut(t *testing.T) {
	operator := misptest.New(t, poolMISPKey)
	tenant := misptest.New(t, poolMISPKey, []byte(lambdaEvent))
	a := buildApp(t, map[string]string{
		"API_URL": operator.URL, "MISP_ALLOWED_HOSTS": "*," + hostport(tenant.URL), "CACHE_TTL": "60s",
	})
	before := runtime.NumGoroutine()
	for i := range 4 * maxMISPHosts {
		// Unresolvable names: nothing is called, the pool only builds their clients.
		if _, _, err := a.pool.get(fmt.Sprintf("https://junk%d.invalid", i)); err != nil {
			t.Fatalf("junk host %d: %v", i, err)
		}
	}
	if n := a.pool.len(); n != maxMISPHosts+1 {
		t.Errorf("the pool holds %d MISPs, want %d and API_URL's", n, maxMISPHosts)
	}
	// A goroutine per dropped cache would be 256 (golang-lru's expirable LRU starts one that
	// never stops); a few come and go with the package's other tests.
	if grown := runtime.NumGoroutine() - before; grown > 32 {
		t.Errorf("%d junk hosts left %d goroutines behind", 4*maxMISPHosts, grown)
	}
	b, _, err := a.pool.get(tenant.URL)
	if err != nil {
		t.Fatalf("the new tenant: %v", err)
	}
	r := b.Lookup(context.Background(), poolMISPKey, []intel.Query{{Value: lambdaIP, Types: []string{"ip-dst"}, Limit: 10}})[0]
	if r.Err != nil || len(r.Events) != 1 {
		t.Fatalf("the new tenant's lookup: %d events, %v", len(r.Events), r.Err)
	}
	if _, ok := a.pool.pinned[strings.TrimRight(operator.URL, "/")]; !ok {
		t.Error("API_URL's MISP was evicted")
	}
}

// TestEvictedMISPFinishesItsLookup: a MISP evicted while a lookup is in flight answers that
// lookup normally.
func TestEvictedMISPFinishesItsLookup(t *testing.T) {
	release := make(chan struct{})
	slow := misptest.New(t, poolMISPKey) // holds its answers until released
	slow.Always("/attributes/restSearch", misptest.Answer{Wait: release})
	a := buildApp(t, map[string]string{"MISP_ALLOWED_HOSTS": "*," + hostport(slow.URL), "CACHE_TTL": "0"})
	b, _, err := a.pool.get(slow.URL)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- b.Lookup(context.Background(), poolMISPKey, []intel.Query{{Value: lambdaIP, Types: []string{"ip-dst"}}})[0].Err
	}()
	if err := slow.WaitRequests(testkit.Context(t), "/attributes/restSearch", 1); err != nil {
		t.Fatal(err)
	}
	for i := range maxMISPHosts {
		if _, _, err := a.pool.get(fmt.Sprintf("https://junk%d.invalid", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := a.pool.named.Peek(strings.TrimRight(slow.URL, "/")); ok {
		t.Fatal("the slow MISP was not evicted")
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("the lookup of the evicted MISP: %v", err)
	}
	// Its metric series went with it, and the lookup that finished after did not bring
	// them back.
	rec := httptest.NewRecorder()
	a.Metrics.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if body := rec.Body.String(); strings.Contains(body, hostport(slow.URL)) {
		t.Errorf("the evicted MISP's series remain:\n%s", body)
	}
}

// acceptOrder records the first line of each connection a loopback listener accepts.
type acceptOrder struct {
	ln    net.Listener
	lines chan string
}

func listenLoopback(t *testing.T) *acceptOrder {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	a := &acceptOrder{ln: ln, lines: make(chan string, 256)}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, _ := bufio.NewReader(conn).ReadString('\n')
			a.lines <- line
			_ = conn.Close()
		}
	}()
	return a
}

// noneBeforeMarker proves no connection was accepted before now: it connects itself, and its
// connection must be the first the listener accepted (the accept queue is FIFO).
func (a *acceptOrder) noneBeforeMarker(t *testing.T) {
	t.Helper()
	conn, err := net.Dial("tcp4", a.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "marker\n")
	select {
	case line := <-a.lines:
		if line != "marker\n" {
			t.Errorf("the relay connected to the loopback service first (it sent %q)", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the marker connection was never accepted")
	}
}

// TestAnyHostMeansAnyPublicHost: with MISP_ALLOWED_HOSTS=* (the default without API_URL), a
// token's HOST naming the relay's own machine, in any spelling, never gets a connection
// opened to it; the caller learns only that MISP could not be reached.
func TestAnyHostMeansAnyPublicHost(t *testing.T) {
	internal := listenLoopback(t)
	_, port, _ := net.SplitHostPort(internal.ln.Addr().String())
	a := buildApp(t, map[string]string{"CACHE_TTL": "0"}) // no API_URL: "*"
	if len(a.cfg.allowedHosts) != 1 || a.cfg.allowedHosts[0] != "*" {
		t.Fatalf("allowed hosts %v, want *", a.cfg.allowedHosts)
	}
	hosts := []string{
		"127.0.0.1", "localhost", "LocalHost.", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::1]",
		"0.0.0.0", "[::]", "ｌｏｃａｌｈｏｓｔ", "169.254.169.254", "[fd00:ec2::254]", "10.0.0.1", "192.168.1.1",
	}
	for _, h := range hosts {
		host := "https://" + h + ":" + port
		b, _, err := a.pool.get(host)
		if err != nil {
			continue // refused as a HOST: nothing is called
		}
		err = b.Lookup(context.Background(), poolMISPKey, []intel.Query{{Value: lambdaIP, Types: []string{"ip-dst"}}})[0].Err
		var e *misp.Error
		if !errors.As(err, &e) || !errors.Is(err, misp.ErrUnavailable) || strings.Contains(e.Detail, "refus") || strings.Contains(e.Detail, "127.0.0.1") {
			t.Errorf("%s: %v, want the one generic unavailable error", host, err)
		}
	}
	internal.noneBeforeMarker(t)
}
