package testkit_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/misp-relay/misp-relay/internal/testkit"
)

// recordingTB records failures instead of failing the test.
type recordingTB struct {
	testing.TB
	errors []string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestNoSecrets(t *testing.T) {
	tb := &recordingTB{TB: t}
	testkit.NoSecrets(tb, "a log line with the-misp-key in it", "the-misp-key", "other", "")
	if len(tb.errors) != 1 || strings.Contains(tb.errors[0], "the-misp-key") {
		t.Errorf("errors %q: want one, naming only the start of the secret", tb.errors)
	}
}

func TestHandlerTransport(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/abort":
			panic(http.ErrAbortHandler)
		case "/wait":
			<-r.Context().Done()
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Host", r.Host)
		w.WriteHeader(http.StatusTeapot)
		_, _ = fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.RequestURI(), body)
	})
	c := &http.Client{Transport: testkit.HandlerTransport(h)}
	resp, err := c.Post("http://misp.test/x?y=1", "text/plain", strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot || string(got) != "POST /x?y=1 body" || resp.Header.Get("X-Host") != "misp.test" {
		t.Errorf("got %d %q host %q", resp.StatusCode, got, resp.Header.Get("X-Host"))
	}
	if _, err := c.Get("http://misp.test/abort"); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("aborted handler: %v, want a reset connection", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://misp.test/wait", nil)
	if _, err := c.Do(req); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled request: %v", err)
	}
}

func TestAdvance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		fired := false
		time.AfterFunc(time.Hour, func() { fired = true })
		testkit.Advance(time.Hour)
		if d := time.Since(start); d != time.Hour || !fired {
			t.Errorf("after Advance(1h): %v passed, timer fired %v", d, fired)
		}
	})
	defer func() {
		if recover() == nil {
			t.Error("Advance outside a bubble did not panic")
		}
	}()
	testkit.Advance(time.Hour)
}

func TestFollowLog(t *testing.T) {
	pr, pw := io.Pipe()
	log := testkit.FollowLog(pr)
	go func() {
		_, _ = io.WriteString(pw, "not JSON\n"+`{"msg":"metrics listening","addr":"127.0.0.1:9"}`+"\n")
		_, _ = io.WriteString(pw, `{"msg":"relay listening","addr":"[::]:4321"}`+"\n")
		_ = pw.Close()
	}()
	if addr := log.ListeningAddr(t); addr != "127.0.0.1:4321" {
		t.Errorf("ListeningAddr = %q", addr)
	}
	if line := log.Wait(t, "metrics listening"); line["addr"] != "127.0.0.1:9" {
		t.Errorf("an earlier line: %v", line)
	}
}

func TestWaitListeningAndPoll(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	testkit.WaitListening(t, ln.Addr().String())

	n := 0
	if !testkit.Poll(testkit.WaitTimeout, func() bool { n++; return n == 3 }) || n != 3 {
		t.Errorf("Poll stopped after %d calls", n)
	}
	if testkit.Poll(0, func() bool { return false }) {
		t.Error("Poll reported a condition that never held")
	}
}

func TestEnv(t *testing.T) {
	getenv := testkit.Env(map[string]string{"A": "1"})
	if getenv("A") != "1" || getenv("B") != "" || testkit.Env(nil)("A") != "" {
		t.Error("Env does not read its map")
	}
}
