// Command relay is misp-relay: a Cisco XDR / SecureX Threat Response relay that enriches
// observables from MISP.
//
//	relay [serve]   serve the relay API on :$PORT (configuration from the environment)
//	relay jwt       make a SECRET_KEY and a JWT for the XDR module form
//	relay version   print the version
//	relay bench     the load benchmark of make bench
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is the relay's semver, answered by /version.
const version = "1.0.0"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		os.Exit(1)
	}
}

// run is the whole program, callable from tests: args without the program name, the
// environment as a lookup function, and where to print.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stdout)
	case "jwt":
		return makeJWT(args, stdout)
	case "bench":
		return bench(ctx, args, stdout)
	case "version", "--version", "-version":
		_, err := fmt.Fprintln(stdout, version)
		return err
	case "help", "-h", "--help":
		_, err := fmt.Fprint(stdout, usage)
		return err
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

const usage = `usage:
  relay [serve]                         serve the relay API on :$PORT
  relay jwt --key MISP_KEY [--urlscan-key KEY] [--secret SECRET] [--format text|env]
                                        print a SECRET_KEY and a JWT for the XDR module
  relay version                         print the version
  relay bench [-duration 5s] [-scenarios all] [-json]
                                        load benchmark against a fake MISP on loopback
Configuration is read from the environment; see README.md.
`
