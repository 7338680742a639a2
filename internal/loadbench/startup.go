package loadbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
)

const (
	// startupRuns is how many times each startup variant starts the relay: enough for a
	// median that one slow fork or a cold page cache does not decide.
	startupRuns = 10
	// pollEvery and maxPolls bound the /health polling of one start (5 s at most).
	pollEvery = time.Millisecond
	maxPolls  = 5000
	// stopGrace is how long a started relay gets to drain after SIGTERM before it is killed.
	stopGrace = 5 * time.Second
	// startupTarget is the target for process start to first successful /health.
	startupTarget = 50 * time.Millisecond
)

// startup is scenario 6: the time from starting the real relay binary to its first
// successful POST /health, against the fake MISP on loopback (the health check then makes one
// getVersion call) and with the sample feed (loaded and indexed before the relay listens).
func startup(ctx context.Context, o options) []result {
	fail := func(err error) []result {
		return []result{{Name: "startup", Kind: kindStartup, What: "relay binary start → first successful /health", Error: err.Error()}}
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return fail(err)
	}
	// The relay binary users run: -relay-bin, else the relay next to this benchmark (make
	// bench builds both into bin/).
	bin := o.relayBin
	if bin == "" {
		bin = filepath.Join(filepath.Dir(o.self[0]), "relay")
	}
	if _, err := os.Stat(bin); err != nil {
		return fail(fmt.Errorf("no relay binary to time (%w): build it (make build) or pass -relay-bin", err))
	}

	fake := startFakeMISP(misptest.GeneratedOptions{Events: 1, Attributes: 1})
	defer fake.close()

	token, err := auth.Sign(benchSecret, auth.Claims{Key: benchMISPKey})
	if err != nil {
		return fail(err)
	}
	variants := []struct{ name, what, apiURL string }{
		{"startup-misp", "relay binary start → first successful POST /health, fake MISP on loopback", fake.srv.URL},
		{"startup-feed", "relay binary start → first successful POST /health, API_URL=sample/feed", filepath.Join(root, "sample", "feed")},
	}
	var out []result
	for _, v := range variants {
		res := result{Name: v.name, Kind: kindStartup, What: v.what, Clients: 1}
		var times []time.Duration
		for range startupRuns {
			d, err := startOnce(ctx, bin, v.apiURL, token)
			if err != nil {
				res.Error = err.Error()
				break
			}
			times = append(times, d)
		}
		slices.Sort(times)
		res.Requests = len(times)
		res.P50 = millis(percentile(times, 0.50))
		res.P95 = millis(percentile(times, 0.95))
		res.P99 = millis(percentile(times, 0.99))
		if len(times) > 0 {
			res.check("p50 < 50ms", res.P50.d() < startupTarget, res.P50.String())
			all := make([]string, len(times))
			for i, t := range times {
				all[i] = millis(t).String()
			}
			res.note("%d starts, sorted: %s", len(times), strings.Join(all, " "))
		}
		out = append(out, res)
	}
	if n := fake.Versions(); n > 0 {
		out[0].note("the fake MISP answered %d getVersion calls", n)
	}
	return out
}

// moduleRoot is the directory of the module's go.mod, where ./cmd/relay and sample/feed are.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run relaybench inside the misp-relay module (go env GOMOD is empty)")
	}
	return filepath.Dir(gomod), nil
}

// startOnce starts the relay binary on a free port and polls POST /health every millisecond
// until it answers {"data":{"status":"ok"}}, then stops it with SIGTERM. It returns the time
// from just before the process is started to that first answer.
func startOnce(ctx context.Context, bin, apiURL, token string) (time.Duration, error) {
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "serve") //nolint:gosec // bin is the relay this command built, or the one given with -relay-bin
	// Only these settings: the caller's CACHE_TTL, LOG_LEVEL or proxies must not change what is
	// measured.
	cmd.Env = []string{
		"SECRET_KEY=" + benchSecret,
		"API_URL=" + apiURL,
		"PORT=" + strconv.Itoa(port),
	}
	cmd.Stdout = io.Discard // one JSON line per request
	cmd.Stderr = &stderr
	tr := &http.Transport{Proxy: nil}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: time.Second}
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/health"

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", bin, err)
	}
	p := watch(cmd)
	defer p.stop()

	for range maxPolls {
		select {
		case <-p.done:
			return 0, fmt.Errorf("the relay exited before answering /health (%w): %s", p.err, strings.TrimSpace(stderr.String()))
		default:
		}
		if healthy(ctx, hc, url, token) {
			return time.Since(start), nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		time.Sleep(pollEvery)
	}
	return 0, fmt.Errorf("no successful /health within %d polls", maxPolls)
}

// healthy reports whether one POST /health succeeded.
func healthy(ctx context.Context, hc *http.Client, url, token string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return false
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return false // not listening yet
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close() // read already; a failed close changes nothing
	return err == nil && resp.StatusCode == http.StatusOK && bytes.Contains(body, []byte(`"status":"ok"`))
}

// process is a started relay and its exit.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // cmd.Wait's answer, set before done is closed
}

// watch waits for cmd's exit in the background.
func watch(cmd *exec.Cmd) *process {
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p
}

// stop ends the relay this command started: SIGTERM (the relay drains and exits), then a kill
// if it has not exited within stopGrace.
func (p *process) stop() {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err == nil {
		select {
		case <-p.done:
			return
		case <-time.After(stopGrace):
		}
	}
	_ = p.cmd.Process.Kill() // fails only when the process is gone already
	<-p.done
}

// freePort asks the kernel for a free loopback port. The relay listens on ":PORT", so the
// port is released again before the relay takes it; a clash is possible but unlikely.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	return port, ln.Close()
}
