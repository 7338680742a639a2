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
)

// startup is scenario 6: the time from starting the real relay binary to its first
// successful POST /health, against the fake MISP on loopback (the health check then makes one
// getVersion call) and with the sample feed (loaded and indexed before the relay listens).
//
// It has no target: an absolute time depends on the CPU and on the machine's load. Each
// variant is reported with its ratio to a trivial baseline measured on the same machine
// at the same moment, `relay version` from start to exit (exec, Go runtime and package
// initialisation), so what serving adds shows whatever the machine.
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
	// The runs are interleaved (baseline, then each variant, ten times), so that a change in
	// the machine's load weighs on the baseline as on the variants.
	var baseline []time.Duration
	times := make([][]time.Duration, len(variants))
	errs := make([]error, len(variants))
	for range startupRuns {
		d, err := versionOnce(ctx, bin)
		if err != nil {
			return fail(err)
		}
		baseline = append(baseline, d)
		for i, v := range variants {
			if errs[i] != nil {
				continue
			}
			d, err := startOnce(ctx, bin, v.apiURL, token)
			if err != nil {
				errs[i] = err
				continue
			}
			times[i] = append(times[i], d)
		}
	}
	slices.Sort(baseline)
	base := millis(percentile(baseline, 0.50))

	var out []result
	for i, v := range variants {
		res := result{Name: v.name, Kind: kindStartup, What: v.what, Clients: 1}
		if errs[i] != nil {
			res.Error = errs[i].Error()
		}
		t := times[i]
		slices.Sort(t)
		res.Requests = len(t)
		res.P50 = millis(percentile(t, 0.50))
		res.P95 = millis(percentile(t, 0.95))
		res.P99 = millis(percentile(t, 0.99))
		if len(t) > 0 {
			res.BaselineP50 = &base
			res.note("p50 %v = %.1f × the p50 of the baseline, %s version from start to exit (%v)",
				res.P50, float64(res.P50)/float64(base), filepath.Base(bin), base)
			all := make([]string, len(t))
			for k, d := range t {
				all[k] = millis(d).String()
			}
			res.note("%d starts, sorted: %s", len(t), strings.Join(all, " "))
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

// versionOnce runs `relay version` and returns the time from just before the process is
// started to its exit.
func versionOnce(ctx context.Context, bin string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, bin, "version") //nolint:gosec // bin is the relay this command built, or the one given with -relay-bin
	cmd.Env = []string{}
	cmd.Stdout = io.Discard
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s version: %w: %s", bin, err, strings.TrimSpace(stderr.String()))
	}
	return time.Since(start), nil
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
