// Command relaybench is the load benchmark of `make bench`: it wires the relay exactly as
// `relay serve` does (internal/app), puts it in front of a fake MISP on loopback, drives it
// with concurrent keep-alive clients and prints one line per scenario (see internal/loadbench).
// It also times the relay binary (-relay-bin, default: the relay next to this binary) from
// process start to its first successful /health.
//
// It is a command of its own so that the benchmark, its fake MISP and its clients are not
// compiled into the relay users deploy.
//
//	relaybench [-duration 5s] [-scenarios all|fan-out,throughput,...|1,2,...] [-json]
//	           [-misp-concurrency n] [-isolate=false] [-relay-bin path] [-cpuprofile file]
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/misp-relay/misp-relay/internal/app"
	"github.com/misp-relay/misp-relay/internal/loadbench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole command, callable from tests; it returns the exit code. Progress goes to
// stderr so that -json output stays parseable.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "relaybench: find this binary:", err)
		return 1
	}
	build := func(env map[string]string) (http.Handler, http.Handler, error) {
		a, err := app.New(func(k string) string { return env[k] }, io.Discard)
		if err != nil {
			return nil, nil, err
		}
		return a.Handler, a.Metrics, nil
	}
	return loadbench.Run(ctx, []string{exe}, build, args, stdout, stderr)
}
