//go:build linux

package app

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

// TestRelayProcess runs the relay as it runs in production, a process built from ./cmd/relay,
// and checks what only a process shows: that it stops on SIGTERM under Lambda, and what the
// hostile inputs of the attack harness cost it in resident memory. Everything is on loopback.
func TestRelayProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the relay: not in -short mode")
	}
	bin := testkit.BuildRelay(t)
	t.Run("Lambda SIGTERM", func(t *testing.T) { testLambdaSIGTERM(t, bin) })
	t.Run("hostile memory", func(t *testing.T) { testHostileMemory(t, bin) })
}

// testLambdaSIGTERM: under Lambda (AWS_LAMBDA_RUNTIME_API set), the relay waits for its next
// invocation on a runtime API that answers nothing, as Lambda does when idle; SIGTERM must
// end it. Before the fix it never exited: aws-lambda-go waits on a context nothing cancels.
func testLambdaSIGTERM(t *testing.T, bin string) {
	polled := make(chan struct{}, 1)
	runtimeAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/2018-06-01/runtime/invocation/next" {
			select {
			case polled <- struct{}{}:
			default:
			}
			<-r.Context().Done() // no invocation: held until the relay goes away
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(runtimeAPI.Close)
	p := testkit.StartRelay(t, bin, map[string]string{
		"AWS_LAMBDA_RUNTIME_API": strings.TrimPrefix(runtimeAPI.URL, "http://"),
		"SECRET_KEY":             "lambda-secret", "LOG_FORMAT": "json",
	})
	select {
	case <-polled:
	case <-time.After(60 * time.Second):
		t.Fatalf("the relay never asked the runtime API for an invocation\n%s", p.Output.String())
	}
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Lambda sends SIGKILL shortly after SIGTERM; the relay exits at once. The bound only
	// keeps a broken relay from hanging the test.
	select {
	case err := <-p.Exited:
		p.Exited <- err
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the relay did not exit after SIGTERM")
	}
}

// memory is a process's resident memory, from /proc/<pid>/status.
func memory(t *testing.T, pid int) (rss, peak int64) {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return rss, peak
}

// resetPeak makes VmHWM start again from the current RSS (Linux 4.0+).
func resetPeak(t *testing.T, pid int) {
	t.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS: %v", err)
	}
}

// hostileMISP answers restSearch by the value searched: "bomb*" with a 260 KB gzip answer
// that inflates to one 256 MiB attribute value, "huge.example" with a plain 256 MiB attribute
// (streamed until the relay hangs up), the test IP with its event (lambdaEvent), anything
// else with no match.
func hostileMISP(t *testing.T) *misptest.Server {
	bomb := testkit.GzipBomb(t, `{"response":{"Attribute":[{"type":"domain","value":"`, bytes.Repeat([]byte("a"), 1<<20), 256, `"}]}}`)
	t.Logf("gzip bomb: %d KiB, inflating to 256 MiB", len(bomb)>>10)
	srv := misptest.New(t, hostileMISPKey, []byte(lambdaEvent))
	srv.When(func(r *misptest.Request) bool { return strings.HasPrefix(misptest.SearchValue(r), "bomb") }, misptest.Answer{
		Status: http.StatusOK, Body: string(bomb),
		Header: http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}},
	})
	chunk := bytes.Repeat([]byte("a"), 1<<20)
	srv.When(func(r *misptest.Request) bool { return misptest.SearchValue(r) == "huge.example" }, misptest.Answer{
		Status: http.StatusOK, Body: `{"response":{"Attribute":[{"type":"domain","value":"`,
		Stream: func(w io.Writer) error {
			for range 256 {
				if _, err := w.Write(chunk); err != nil {
					return err // the relay hung up
				}
			}
			_, err := io.WriteString(w, `"}]}}`)
			return err
		},
	})
	return srv
}

// hostileMISPKey is the MISP API key of testHostileMemory's tokens.
const hostileMISPKey = "HostileMispKey0123456789abcdefghijABCDEF"

// envelope is what every answer must be: data, errors, or both.
type envelope struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Code, Message string
	} `json:"errors"`
}

// testHostileMemory sends the attack harness's memory cases to a relay process and checks
// that its resident memory never goes 256 MiB above its baseline, that every request gets an
// envelope, and that a normal observe works afterwards. The figures are logged (-v) for the
// README.
func testHostileMemory(t *testing.T, bin string) {
	const secret = "hostile-test-secret"
	misp := hostileMISP(t)
	p := testkit.StartRelay(t, bin, map[string]string{
		"SECRET_KEY": secret, "API_URL": misp.URL, "LISTEN_ADDR": "127.0.0.1:0",
		"LOG_FORMAT": "json", "CACHE_TTL": "0",
	})
	var listening struct{ Addr string }
	_ = json.Unmarshal([]byte(p.WaitLine(t, `"relay listening"`)), &listening)
	if listening.Addr == "" {
		t.Fatal("no listening address in the relay's log")
	}
	base := "http://" + listening.Addr
	tok := testkit.JWT(t, secret, auth.Claims{Key: hostileMISPKey})
	client := &http.Client{Timeout: 2 * time.Minute}
	post := func(path, authz, body string) envelope {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return envelope{}
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var env envelope
		if err := json.Unmarshal(raw, &env); err != nil || resp.StatusCode != http.StatusOK || (env.Data == nil && len(env.Errors) == 0) {
			t.Errorf("%s: HTTP %d, not an envelope: %.300s", path, resp.StatusCode, raw)
		}
		return env
	}
	normal := func() {
		t.Helper()
		env := post("/observe/observables", "Bearer "+tok, `[{"type":"ip","value":"`+lambdaIP+`"}]`)
		if len(env.Errors) > 0 || !bytes.Contains(env.Data, []byte(`"verdicts"`)) {
			t.Errorf("a normal observe: data %.200s, errors %v", env.Data, env.Errors)
		}
	}
	for range 3 { // warm up: the baseline is the relay at work, not just started
		normal()
	}
	pid := p.Cmd.Process.Pid
	baseline, _ := memory(t, pid)
	t.Logf("baseline RSS after start-up and 3 observes: %.1f MiB", float64(baseline)/(1<<20))

	const bound = 256 << 20
	phase := func(name string, f func()) {
		t.Helper()
		resetPeak(t, pid)
		f()
		_, peak := memory(t, pid)
		above := peak - baseline
		t.Logf("%-48s peak RSS %6.1f MiB, %6.1f MiB above the baseline", name, float64(peak)/(1<<20), float64(above)/(1<<20))
		if above >= bound {
			t.Errorf("%s: peak RSS %d MiB above the baseline, want < 256 MiB", name, above>>20)
		}
	}
	observe := func(values ...string) envelope {
		var obs []string
		for _, v := range values {
			obs = append(obs, `{"type":"domain","value":"`+v+`"}`)
		}
		return post("/observe/observables", "Bearer "+tok, "["+strings.Join(obs, ",")+"]")
	}
	capped := func(env envelope) {
		t.Helper()
		if len(env.Errors) == 0 || !strings.Contains(env.Errors[0].Message, "MISP_MAX_ATTRIBUTE_BYTES") {
			t.Errorf("want the attribute cap's error, got %v", env.Errors)
		}
	}

	phase("gzip bomb (260 KiB -> one 256 MiB attribute)", func() { capped(observe("bomb1.example")) })
	phase("four gzip bombs in one request", func() {
		capped(observe("bomb1.example", "bomb2.example", "bomb3.example", "bomb4.example"))
	})
	phase("a plain 256 MiB attribute", func() { capped(observe("huge.example")) })
	phase("eight 1 MiB [{},{},...] bodies at once", func() {
		body := "[" + strings.TrimSuffix(strings.Repeat("{},", (1<<20-2)/3), ",") + "]"
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				env := post("/observe/observables", "Bearer "+tok, body)
				if len(env.Errors) == 0 || env.Errors[0].Code != "invalid argument" {
					t.Errorf("amplification body: %v", env.Errors)
				}
			})
		}
		wg.Wait()
	})
	phase("200 stalled unauthenticated 1 MiB bodies", func() { stalledBodies(t, listening.Addr, 200) })
	normal()
}

// stalledBodies opens n connections that each announce a 2 MiB body without a valid token,
// send 1 MiB of it and stall; each must be answered with the authorization envelope without
// the relay waiting for the rest.
func stalledBodies(t *testing.T, addr string, n int) {
	t.Helper()
	mib := bytes.Repeat([]byte("["), 1<<20)
	var wg sync.WaitGroup
	answered := make(chan struct{}, n)
	release := make(chan struct{}) // the connections stay open until every one is answered
	for i := range n {
		wg.Go(func() {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Errorf("connection %d: %v", i, err)
				answered <- struct{}{}
				return
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(2 * time.Minute))
			head := "POST /observe/observables HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n" +
				"Content-Length: " + strconv.Itoa(2<<20) + "\r\n"
			if i%2 == 0 {
				head += "Expect: 100-continue\r\n"
			}
			_, _ = io.WriteString(conn, head+"\r\n")
			go func() { _, _ = conn.Write(mib) }() // fails once the relay closes the connection
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			answered <- struct{}{}
			if err != nil {
				t.Errorf("connection %d: %v", i, err)
				return
			}
			raw, _ := io.ReadAll(resp.Body)
			var env envelope
			if err := json.Unmarshal(raw, &env); err != nil || len(env.Errors) != 1 || env.Errors[0].Code != "authorization error" {
				t.Errorf("connection %d: HTTP %d %.200s", i, resp.StatusCode, raw)
			}
			<-release
		})
	}
	for range n {
		<-answered
	}
	close(release)
	wg.Wait()
}
