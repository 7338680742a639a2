// Command relay is misp-relay: a Cisco XDR / SecureX Threat Response relay that enriches
// observables from MISP.
//
//	relay [serve]   serve the relay API on :$PORT (configuration from the environment)
//	relay jwt       make a SECRET_KEY and a JWT for the XDR module form
//	relay version   print the version
//
// Everything it does is wired in internal/app; main only reads the command line.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/misp-relay/misp-relay/internal/app"
)

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
		if len(args) > 0 {
			return fmt.Errorf("serve takes no arguments (configuration comes from the environment), got %q", args)
		}
		return app.Run(ctx, getenv, stdout)
	case "jwt":
		return makeJWT(args, stdout)
	case "version", "--version", "-version":
		_, err := fmt.Fprintln(stdout, app.Version)
		return err
	case "help", "-h", "--help":
		_, err := fmt.Fprint(stdout, usage)
		return err
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

const usage = `usage:
  relay [serve]                         serve the relay API on :$PORT
  relay jwt --key MISP_KEY [--urlscan-key KEY] [--misp https://HOST=KEY]... [--secret SECRET] [--format text|env]
                                        print a SECRET_KEY and a JWT for the XDR module
  relay version                         print the version
Configuration is read from the environment; see README.md.
`
