package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/misp-relay/misp-relay/internal/loadbench"
	"github.com/misp-relay/misp-relay/internal/metrics"
)

// bench is `relay bench`: the load benchmark of `make bench` (see internal/loadbench). It is a
// subcommand rather than a second main so that the startup scenario times this very binary.
func bench(ctx context.Context, args []string, stdout io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: find this binary: %w", err)
	}
	// Progress goes to stderr so that -json output stays parseable.
	build := func(env map[string]string) (http.Handler, http.Handler, error) {
		cfg, err := loadConfig(func(k string) string { return env[k] })
		if err != nil {
			return nil, nil, err
		}
		m := metrics.New()
		h, err := newHandler(cfg, newLogger(cfg, io.Discard), m)
		return h, m.Handler(), err
	}
	if code := loadbench.Run(ctx, []string{exe, "bench"}, build, args, stdout, os.Stderr); code != 0 {
		return fmt.Errorf("bench: a scenario could not be measured (exit %d)", code)
	}
	return nil
}
