package upstream_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/upstream"
)

func TestIsPublic(t *testing.T) {
	tests := map[string]bool{
		"93.184.215.14": true, "8.8.8.8": true, "2606:4700::1111": true, "2a00:1450:4001:80b::200e": true,
		"127.0.0.1": false, "127.255.255.254": false, "::1": false, "::ffff:127.0.0.1": false,
		"10.0.0.1": false, "172.16.0.1": false, "192.168.0.1": false, "::ffff:192.168.0.1": false,
		"169.254.169.254": false, "fd00:ec2::254": false, "fe80::1": false, "fc00::1": false,
		"100.64.0.1": false, "100.100.100.200": false, "192.0.0.192": false, "0.0.0.0": false, "0.1.2.3": false,
		"::": false, "224.0.0.1": false, "239.255.255.250": false, "ff02::1": false, "255.255.255.255": false,
		"240.0.0.1": false, "198.18.0.1": false, "192.0.2.1": false, "2001:db8::1": false,
		"64:ff9b::7f00:1": false, "64:ff9b::808:808": true, "2002:a9fe:a9fe::": false, "2002:808:808::": true,
		"2001::1": false, "::127.0.0.1": false, "fec0::1": false,
	}
	for s, want := range tests {
		if got := upstream.IsPublic(netip.MustParseAddr(s)); got != want {
			t.Errorf("IsPublic(%s) = %v, want %v", s, got, want)
		}
	}
}

// acceptLog records the first line each connection to a loopback listener sends, in the
// order the connections were accepted.
type acceptLog struct {
	ln    net.Listener
	lines chan string
}

func newAcceptLog(t *testing.T, network, addr string) *acceptLog {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("no %s loopback listener: %v", network, err)
	}
	a := &acceptLog{ln: ln, lines: make(chan string, 64)}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(conn).ReadString('\n')
			a.lines <- line
			_ = conn.Close()
		}
	}()
	return a
}

// firstConnectionIs dials the listener itself and checks that its connection is the first
// the listener ever accepted: any connection the client under test had made would have been
// accepted before it (the accept queue is FIFO), so this proves none was, without waiting.
func (a *acceptLog) firstConnectionIs(t *testing.T) {
	t.Helper()
	conn, err := net.Dial(a.ln.Addr().Network(), a.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("marker\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case line := <-a.lines:
		if line != "marker\n" {
			t.Errorf("the listener accepted a connection from the client under test first: %q", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the marker connection was never accepted")
	}
}

// TestPublicOnlyNeverConnectsToLoopback names a loopback listener in every spelling the
// attack harness used; none may open a connection to it.
func TestPublicOnlyNeverConnectsToLoopback(t *testing.T) {
	v4 := newAcceptLog(t, "tcp4", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(v4.ln.Addr().String())
	// In-process names: the test sends no DNS query. "2130706433" is 127.0.0.1 as
	// getaddrinfo reads a bare number.
	dns := func(_ context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "localhost", "localhost.", "2130706433", "127.1", "loopback.example":
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	client := upstream.NewHTTPClient(nil, 4)
	upstream.PublicOnly(client, dns)
	hosts := []string{
		"127.0.0.1", "localhost", "LOCALHOST", "localhost.", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]",
		"ｌｏｃａｌｈｏｓｔ", "2130706433", "127.1", "loopback.example", "[::1]", "0.0.0.0", "[::]",
	}
	for _, h := range hosts {
		for _, scheme := range []string{"http", "https"} {
			url := scheme + "://" + h + ":" + port + "/attributes/restSearch"
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, strings.NewReader("{}"))
			if err != nil {
				continue // not even a URL: nothing was sent
			}
			resp, err := client.Do(req)
			if err == nil {
				_ = resp.Body.Close()
				t.Errorf("%s: answered %s", url, resp.Status)
				continue
			}
			var npe *upstream.NotPublicError
			var dns *net.DNSError
			if !errors.As(err, &npe) && !errors.As(err, &dns) {
				t.Errorf("%s: %v, want a NotPublicError", url, err)
			}
		}
	}
	v4.firstConnectionIs(t)
}
