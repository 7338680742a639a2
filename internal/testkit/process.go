package testkit

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BuildRelay builds ./cmd/relay into a temporary directory and returns the binary's path, so
// a test can run the relay as it runs in production: a process, configured by its
// environment.
func BuildRelay(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		tb.Fatalf("go list -m: %v", err)
	}
	bin := filepath.Join(tb.TempDir(), "relay")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./cmd/relay") //nolint:gosec // a path of the test's own temporary directory
	cmd.Dir = strings.TrimSpace(string(out))
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// Process is a running relay process (see StartRelay).
type Process struct {
	Cmd *exec.Cmd
	// Exited receives Wait's result once; put it back after reading it, for the cleanup.
	Exited chan error
	Output *SyncBuffer // all it printed, stdout and stderr
	lines  chan string
}

// StartRelay starts bin serve with only vars (and PATH) in its environment. The process is
// killed when the test ends, and its output is logged if the test failed.
func StartRelay(tb testing.TB, bin string, vars map[string]string) *Process {
	tb.Helper()
	cmd := exec.Command(bin, "serve") //nolint:gosec // the binary a test built
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + tb.TempDir()}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &Process{Cmd: cmd, lines: make(chan string, 1024), Exited: make(chan error, 1), Output: &SyncBuffer{}}
	go func() {
		p.Exited <- cmd.Wait()
		_ = pw.Close()
	}()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			_, _ = p.Output.Write([]byte(sc.Text() + "\n"))
			select {
			case p.lines <- sc.Text():
			default: // nobody waits for lines any more
			}
		}
	}()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		exit := <-p.Exited
		if tb.Failed() {
			tb.Logf("relay output (%v):\n%s", exit, p.Output.String())
		}
	})
	return p
}

// WaitLine waits for an output line containing s, and fails tb if the process exits or says
// nothing of the kind within a minute (a bound, so a broken relay fails the test).
func (p *Process) WaitLine(tb testing.TB, s string) string {
	tb.Helper()
	deadline := time.After(2 * WaitTimeout)
	for {
		select {
		case line := <-p.lines:
			if strings.Contains(line, s) {
				return line
			}
		case err := <-p.Exited:
			p.Exited <- err
			tb.Fatalf("the relay exited (%v) before saying %q", err, s)
		case <-deadline:
			tb.Fatalf("the relay never said %q", s)
		}
	}
}
