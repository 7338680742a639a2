package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/misp-relay/misp-relay/internal/loadbench"
)

// bench is `relay bench`: the load benchmark of `make bench` (see internal/loadbench). It is a
// subcommand rather than a second main so that the startup scenario times this very binary.
func bench(ctx context.Context, args []string, stdout io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: find this binary: %w", err)
	}
	// Progress goes to stderr so that -json output stays parseable.
	if code := loadbench.Run(ctx, []string{exe, "bench"}, args, stdout, os.Stderr); code != 0 {
		return fmt.Errorf("bench: a scenario could not be measured (exit %d)", code)
	}
	return nil
}
