package testkit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// Log follows the JSON log a relay writes (one object per line), so a test can wait for the
// line that says something happened. It reads until the writer closes, so the relay never
// blocks on a full pipe.
type Log struct {
	mu      sync.Mutex
	lines   []map[string]any
	ended   bool
	changed chan struct{} // closed and replaced at every line and at the end
}

// FollowLog starts reading r, typically the read end of an io.Pipe the relay logs to.
func FollowLog(r io.Reader) *Log {
	l := &Log{changed: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var line map[string]any
			_ = json.Unmarshal(sc.Bytes(), &line) // a line that is not JSON is kept as nil
			l.mu.Lock()
			l.lines = append(l.lines, line)
			close(l.changed)
			l.changed = make(chan struct{})
			l.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, r) // a line too long for the scanner: keep draining
		l.mu.Lock()
		l.ended = true
		close(l.changed)
		l.mu.Unlock()
	}()
	return l
}

// Wait returns the first line (from the start of the log) whose msg is msg, waiting for it;
// it fails tb when the log ends without it or WaitTimeout passes.
func (l *Log) Wait(tb testing.TB, msg string) map[string]any {
	tb.Helper()
	deadline := time.NewTimer(WaitTimeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		for _, line := range l.lines {
			if line["msg"] == msg {
				l.mu.Unlock()
				return line
			}
		}
		ended, ch := l.ended, l.changed
		l.mu.Unlock()
		if ended {
			tb.Fatalf("the log ended without a %q line", msg)
		}
		select {
		case <-ch:
		case <-deadline.C:
			tb.Fatalf("no %q line in the log within %v", msg, WaitTimeout)
		}
	}
}

// ListeningAddr waits for the relay's "relay listening" line and returns its address on
// 127.0.0.1.
func (l *Log) ListeningAddr(tb testing.TB) string {
	tb.Helper()
	addr, _ := l.Wait(tb, "relay listening")["addr"].(string)
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		tb.Fatalf("the relay listens on %q: %v", addr, err)
	}
	return "127.0.0.1:" + port
}

// WaitListening waits until something accepts TCP connections on addr: a readiness poll of a
// server started by another process, which says nothing when it is ready. Only "connection
// refused" is retried, every few milliseconds, for up to WaitTimeout; any other error fails tb
// at once.
func WaitListening(tb testing.TB, addr string) {
	tb.Helper()
	deadline := time.Now().Add(WaitTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.Close()
			return
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			tb.Fatalf("dial %s: %v", addr, err)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("nothing listens on %s after %v", addr, WaitTimeout)
		}
		<-tick.C
	}
}

// Poll calls cond every few milliseconds until it holds, and reports whether it did within
// the given time. It is for states that no event announces, such as goroutines winding down
// or a circuit breaker closing again behind a real socket: the wait lasts as long as the
// state takes to come (within is only a failure bound), never a guessed duration.
func Poll(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

// HandlerTransport is an http.RoundTripper that serves each request with h in the calling
// goroutine, without sockets: for clients in a testing/synctest bubble, where network I/O
// does not work. The answer is handed over once h returns (no streaming). A request whose
// context ended fails with the context's error; a handler that aborts with
// http.ErrAbortHandler fails the round trip as a reset connection would.
func HandlerTransport(h http.Handler) http.RoundTripper { return handlerTransport{h} }

type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (resp *http.Response, err error) {
	if req.Body != nil {
		defer func() { _ = req.Body.Close() }()
	}
	defer func() {
		if r := recover(); r != nil {
			if r != http.ErrAbortHandler { //nolint:errorlint // the sentinel itself is panicked
				panic(r)
			}
			resp, err = nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
		}
	}()
	in := req.Clone(req.Context())
	in.RequestURI = req.URL.RequestURI()
	in.RemoteAddr = "127.0.0.1:1"
	if in.Body == nil {
		in.Body = http.NoBody
	}
	if in.Host == "" {
		in.Host = req.URL.Host
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, in)
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	res := rec.Result()
	res.Request = req
	return res, nil
}

// Advance moves the fake clock of the testing/synctest bubble it runs in forward by d: once
// every other goroutine of the bubble is blocked, it waits on a timer of d, which the bubble
// fires at once, and returns once the goroutines that woke are blocked again. Outside a
// bubble it panics (synctest.Wait does) instead of sleeping for real.
func Advance(d time.Duration) {
	synctest.Wait()
	t := time.NewTimer(d)
	<-t.C
	synctest.Wait()
}

// Context returns a context that ends after WaitTimeout (or when tb ends): a failure bound for
// waits on a test's own events.
func Context(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	tb.Cleanup(cancel)
	return ctx
}
