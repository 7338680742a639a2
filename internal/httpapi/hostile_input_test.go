package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/httpapi"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/intel/inteltest"
	"github.com/misp-relay/misp-relay/internal/service"
)

// rawExchange writes head (request line and headers, without the blank line) and then body
// on a new connection, and returns the responses read until a final one (1xx included, in
// order) and that final response's body. The connection gets 10 s: a relay that waits for a
// body it should never read fails the test instead of hanging it.
func rawExchange(t *testing.T, addr, head string, body func(conn net.Conn)) ([]*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, head+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	var got []*http.Response
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading the answer: %v (answers so far: %d)", err, len(got))
		}
		got = append(got, resp)
		if resp.StatusCode == http.StatusContinue {
			if body == nil {
				t.Fatal("100 Continue, and no body to send")
			}
			body(conn)
			continue
		}
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("reading the body: %v", err)
		}
		return got, string(raw)
	}
}

func requestHead(path, auth string, contentLength int, expect bool) string {
	lines := []string{
		"POST " + path + " HTTP/1.1", "Host: relay.test", "Content-Type: application/json",
		"Content-Length: " + strconv.Itoa(contentLength),
	}
	if auth != "" {
		lines = append(lines, "Authorization: "+auth)
	}
	if expect {
		lines = append(lines, "Expect: 100-continue")
	}
	return strings.Join(lines, "\r\n")
}

// TestAuthenticationBeforeBody: without a valid token the relay answers from the headers
// alone: it sends no "100 Continue" and does not wait for (or read) a body, so a client
// stalling after its headers holds nothing. With a valid token it asks for the body.
func TestAuthenticationBeforeBody(t *testing.T) {
	h := newHarness(t, allEvents())
	addr := h.srv.Listener.Addr().String()
	const bigBody = 1 << 20

	otherSecret, err := auth.Sign("another-secret", auth.Claims{Key: testMISPKey})
	if err != nil {
		t.Fatal(err)
	}
	for _, authz := range []string{"", "Bearer not.a.jwt", "Bearer " + otherSecret} {
		for _, expect := range []bool{true, false} {
			// The client says a 1 MiB body comes, and sends none of it.
			answers, body := rawExchange(t, addr, requestHead("/observe/observables", authz, bigBody, expect), nil)
			if answers[0].StatusCode != http.StatusOK {
				t.Errorf("auth %.20q, expect %v: first answer %s, want the envelope", authz, expect, answers[0].Status)
			}
			var env struct {
				Errors []struct{ Code, Message string }
			}
			if err := json.Unmarshal([]byte(body), &env); err != nil || len(env.Errors) != 1 || env.Errors[0].Code != "authorization error" {
				t.Errorf("auth %.20q, expect %v: %s", authz, expect, body)
			}
		}
	}

	// A valid token: 100 Continue, then the body is read and answered.
	obs := `[{"type":"ip","value":"198.51.100.7"}]`
	answers, body := rawExchange(t, addr, requestHead("/observe/observables", h.bearer(), len(obs), true), func(conn net.Conn) {
		_, _ = io.WriteString(conn, obs)
	})
	if len(answers) != 2 || answers[0].StatusCode != http.StatusContinue || !strings.Contains(body, `"verdicts"`) {
		t.Errorf("valid token with Expect: %d answers (first %s): %s", len(answers), answers[0].Status, body)
	}
}

// TestInFlightBound: past MAX_IN_FLIGHT, a request that does work is answered at once with an
// envelope (it does not queue), even another tenant's (the first tenant is within its share),
// others are answered as usual, and the relay serves normally once the load is gone.
func TestInFlightBound(t *testing.T) {
	h := newHarness(t, allEvents())
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // also when the test fails early: the server can then close
	h.serve(service.Config{
		Backend: &inteltest.Backend{SearchFn: func(ctx context.Context, _ string, q intel.Query) ([]intel.Event, error) {
			if q.Value == "192.0.2.1" {
				close(entered)
				<-release
			}
			return nil, nil
		}},
	}, httpapi.Config{MaxInFlight: 1})
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.post("/observe/observables", `[{"type":"ip","value":"192.0.2.1"}]`)
	}()
	<-entered
	got := h.observeAs(hs256(t, "another-tenant-key"), `[{"type":"ip","value":"192.0.2.2"}]`)
	wantBusy(t, "over the bound", got, msgRelayBusy)
	// What costs nothing keeps its own answer while the relay is busy (h.do checks each
	// against the spec): load balancers and operators poll exactly then.
	for _, tc := range []struct {
		method, path string
		header       http.Header
		status       int
		key          string
	}{
		{http.MethodPost, "/version", nil, http.StatusOK, "version"},
		{http.MethodGet, "/watchdog", http.Header{"Health-Check": {"alive"}}, http.StatusOK, "data"},
		{http.MethodGet, "/nope", nil, http.StatusNotFound, "code"},
		{http.MethodGet, "/health", nil, http.StatusMethodNotAllowed, "code"},
	} {
		status, body := h.do(tc.method, tc.path, tc.header, "")
		if status != tc.status || body[tc.key] == nil || body["errors"] != nil {
			t.Errorf("%s %s while busy: %d %v, want %d with %q", tc.method, tc.path, status, body, tc.status, tc.key)
		}
	}
	unblock()
	<-done
	if _, got := h.post("/observe/observables", `[{"type":"ip","value":"192.0.2.2"}]`); got["errors"] != nil {
		t.Errorf("after the load: %v", got)
	}
}

// TestAmplificationBodies: a 1 MiB body of [{},{},...] is refused for its length before any
// item is looked at, and a list within the bound whose every item is wrong gets a message
// listing a few of them.
func TestAmplificationBodies(t *testing.T) {
	h := newHarness(t, allEvents())
	n := (1<<20 - 2) / 3
	huge := "[" + strings.TrimSuffix(strings.Repeat("{},", n), ",") + "]"
	_, got := h.post("/observe/observables", huge)
	if code, msg := errorOf(t, got); code != "invalid argument" || !strings.Contains(msg, "At most 1000 observables are accepted in one request, got "+strconv.Itoa(n)) {
		t.Errorf("huge list: %q %q", code, msg)
	}
	within := "[" + strings.TrimSuffix(strings.Repeat("{},", 1000), ",") + "]"
	_, got = h.post("/deliberate/observables", within)
	code, msg := errorOf(t, got)
	if code != "invalid argument" || !strings.HasSuffix(msg, "and 995 more items with problems.") || len(msg) > 1024 {
		t.Errorf("1000 bad items: %q, %d bytes: %.300s", code, len(msg), msg)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, b := range h.bodies {
		if len(b) > 2048 {
			t.Errorf("an answer of %d bytes to a bad body", len(b))
		}
	}
}

// TestLinksOnlyFromUUIDs: an event UUID from MISP becomes a link only when it is a canonical
// UUID: ".." or "/" must never become a path segment of source_uri.
func TestLinksOnlyFromUUIDs(t *testing.T) {
	const good = "542e4c9c-cadc-4f8f-bb11-6d13950d210b"
	h := newHarness(t, allEvents())
	h.serve(service.Config{
		UIURL: "https://misp.example.org",
		Backend: &inteltest.Backend{SearchFn: func(context.Context, string, intel.Query) ([]intel.Event, error) {
			var out []intel.Event
			for _, id := range []string{"..", "../../admin", "a/b", "%2e%2e", ".", good} {
				out = append(out, intel.Event{
					UUID: id, Info: "event " + id, ThreatLevel: 1,
					Attributes: []intel.Attribute{{Type: "ip-dst", Category: "Network activity", Value: "198.51.100.7"}},
				})
			}
			return out, nil
		}},
	})
	_, got := h.post("/observe/observables", `[{"type":"ip","value":"198.51.100.7"}]`)
	raw, _ := json.Marshal(got)
	var links []string
	for _, part := range strings.Split(string(raw), `"source_uri":"`)[1:] {
		links = append(links, part[:strings.IndexByte(part, '"')])
	}
	if len(links) == 0 {
		t.Fatalf("no source_uri at all: %s", raw)
	}
	for _, l := range links {
		if l != "https://misp.example.org/events/view/"+good {
			t.Errorf("source_uri %q", l)
		}
	}
}

// TestRepeatedHealthCheckHeader: the first of several Health-Check headers is echoed, as Flask
// did; the generated binding alone answered a plain-text 400 the spec does not allow.
func TestRepeatedHealthCheckHeader(t *testing.T) {
	h := newHarness(t, allEvents())
	status, body := h.do(http.MethodGet, "/watchdog", http.Header{"Health-Check": {"a", "b"}}, "")
	if status != http.StatusOK || body["data"] != "a" {
		t.Errorf("GET /watchdog with Health-Check a and b: %d %v, want 200 {\"data\":\"a\"}", status, body)
	}
}
