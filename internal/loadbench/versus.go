package loadbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
)

const (
	// versusRequests is how many requests one measurement sends: the relay's CPU is read from
	// /proc in clock ticks (10 ms), so a measurement must last a few hundred of them.
	versusRequests = 3000
	// versusRounds is how many times each binary is measured, in turn (A B A B ...), so that a
	// change in the machine's load weighs on both: each round's ratio is of two measurements
	// made one after the other, and the median of the rounds' ratios is reported.
	versusRounds = 5
	// clockTick is the unit of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux).
	clockTick = 10 * time.Millisecond
)

// versus is scenario 8: the relay's CPU per request of this relay binary against another one
// (-base-bin, typically built from an older commit by `make bench BASE=<rev>`), both run as
// processes in front of the same fake MISP, so that a change is measured as a ratio on any
// machine. Two cases of a 5-observable observe, each value in one event: with lookups (cache
// off, every request asks MISP) and with every value cached. The CPU is the relay process's
// own (user + system, from /proc), not the fake MISP's or the client's.
func versus(ctx context.Context, o options) []result {
	cases := []struct {
		name, what, ttl string
		target          float64
	}{
		{"versus-lookups", "relay CPU per 5-observable observe, cache off, 1 event per value: this binary / base", "0", 0.35},
		{"versus-cached", "relay CPU per 5-observable observe, every value cached: this binary / base", "1h", 0.6},
	}
	bin := o.relayBin
	if bin == "" {
		bin = filepath.Join(filepath.Dir(o.self[0]), "relay")
	}
	fail := func(err error) []result {
		var out []result
		for _, c := range cases {
			out = append(out, result{Name: c.name, Kind: kindVersus, What: c.what, Error: err.Error()})
		}
		return out
	}
	if o.baseBin == "" {
		return fail(errors.New("no -base-bin to compare with (make bench BASE=<rev> builds one)"))
	}
	for _, b := range []string{bin, o.baseBin} {
		if _, err := os.Stat(b); err != nil {
			return fail(err)
		}
	}
	fake := startFakeMISP(misptest.GeneratedOptions{Events: 1, Attributes: 1})
	defer fake.close()
	token, err := auth.Sign(benchSecret, auth.Claims{Key: benchMISPKey})
	if err != nil {
		return fail(err)
	}
	body := observeBody("198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5")

	var out []result
	for _, c := range cases {
		res := result{Name: c.name, Kind: kindVersus, What: c.what, Clients: 1}
		var cur, base []time.Duration
		for range versusRounds {
			for _, side := range []struct {
				bin string
				to  *[]time.Duration
			}{{bin, &cur}, {o.baseBin, &base}} {
				d, err := cpuPerRequest(ctx, side.bin, fake.srv.URL, c.ttl, token, body)
				if err != nil {
					res.Error = fmt.Sprintf("%s: %v", filepath.Base(side.bin), err)
					break
				}
				*side.to = append(*side.to, d)
			}
		}
		if res.Error == "" {
			ratios := make([]float64, len(cur))
			for i := range cur {
				ratios[i] = float64(cur[i]) / float64(base[i])
			}
			rounds := fmt.Sprintf("this binary %v, base %v, ratios %s", durations(cur), durations(base), ratioList(ratios))
			slices.Sort(ratios)
			slices.Sort(cur)
			slices.Sort(base)
			c50, b50, ratio := cur[len(cur)/2], base[len(base)/2], ratios[len(ratios)/2]
			res.Requests = versusRequests * versusRounds
			res.VersusCPU, res.BaseCPU, res.VersusRatio = ptr(millis(c50)), ptr(millis(b50)), &ratio
			res.check(fmt.Sprintf("relay CPU/request <= %.2f × base", c.target), ratio <= c.target,
				fmt.Sprintf("median of the rounds' ratios %.2f × (medians %v and %v)", ratio, millis(c50), millis(b50)))
			res.note("relay CPU per request, each of %d rounds of %d requests, in turn: %s (%s)",
				versusRounds, versusRequests, rounds, o.baseBin)
		}
		out = append(out, res)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// ratioList prints ratios with two decimals.
func ratioList(rs []float64) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = strconv.FormatFloat(r, 'f', 2, 64)
	}
	return strings.Join(s, " ")
}

// durations prints a list of durations as milliseconds.
func durations(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = millis(d).String()
	}
	return strings.Join(s, " ")
}

// cpuPerRequest starts bin serve with the fake MISP as API_URL and CACHE_TTL ttl, sends one
// warm-up request, then versusRequests times body, one after another, and returns the relay
// process's CPU time per request over them.
func cpuPerRequest(ctx context.Context, bin, apiURL, ttl, token string, body []byte) (time.Duration, error) {
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "serve") //nolint:gosec // the relay binaries make bench built, or those given
	cmd.Env = []string{"SECRET_KEY=" + benchSecret, "API_URL=" + apiURL, "PORT=" + strconv.Itoa(port), "CACHE_TTL=" + ttl, "LOG_LEVEL=error"}
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start: %w", err)
	}
	p := watch(cmd)
	defer p.stop()
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	ready := false
	for range maxPolls {
		if healthy(ctx, hc, base+"/health", token) {
			ready = true
			break
		}
		select {
		case <-p.done:
			return 0, fmt.Errorf("the relay exited (%w): %s", p.err, strings.TrimSpace(stderr.String()))
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
	if !ready {
		return 0, fmt.Errorf("no successful /health within %d polls", maxPolls)
	}
	url := base + "/observe/observables"
	var buf bytes.Buffer
	observe := func() error {
		if err := send(ctx, hc, url, token, body, &buf); err != nil {
			return err
		}
		if !bytes.Contains(buf.Bytes(), []byte(`"verdicts"`)) {
			return fmt.Errorf("observe: no verdicts: %.200s", buf.Bytes())
		}
		return nil
	}
	if err := observe(); err != nil { // warm-up: fills the cache when it is on
		return 0, err
	}
	before, err := childCPU(cmd.Process.Pid)
	if err != nil {
		return 0, err
	}
	for range versusRequests {
		if err := observe(); err != nil {
			return 0, err
		}
	}
	after, err := childCPU(cmd.Process.Pid)
	if err != nil {
		return 0, err
	}
	return (after - before) / versusRequests, nil
}

// childCPU reads a process's CPU time (user + system, all its threads) from /proc/<pid>/stat.
func childCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("the relay's CPU time (Linux's /proc): %w", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces: fields count from
	// the last ')'. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, errors.New("unreadable /proc/<pid>/stat")
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("unreadable /proc/<pid>/stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unreadable /proc/<pid>/stat")
	}
	return time.Duration(utime+stime) * clockTick, nil
}
