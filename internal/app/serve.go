package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Run is `relay serve`: it builds the relay from the environment and serves until ctx ends,
// then drains in-flight requests. Under AWS Lambda (AWS_LAMBDA_RUNTIME_API set) it answers
// Lambda invocations instead of listening.
func Run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	a, err := New(getenv, stdout)
	if err != nil {
		return err
	}
	defer func() { _ = a.Close() }()
	if getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		return serveLambda(ctx, a.Handler, a.Log)
	}
	return a.listenAndServe(ctx)
}

// listenAndServe serves the API on LISTEN_ADDR (:PORT by default) and metrics on
// METRICS_ADDR until ctx ends.
func (a *App) listenAndServe(ctx context.Context) error {
	log := a.Log
	// Both listeners are open before the relay says it listens, so whoever waits for that
	// line (a test, an orchestrator) can use either at once.
	ln, err := net.Listen("tcp", a.cfg.listenAddr)
	if err != nil {
		return fmt.Errorf("LISTEN_ADDR / PORT: listen on %s: %w", a.cfg.listenAddr, err)
	}
	var mln net.Listener
	if a.cfg.metricsAddr != "" {
		// A separate listener, so metrics are never exposed where XDR (or the internet) calls.
		if mln, err = net.Listen("tcp", a.cfg.metricsAddr); err != nil {
			_ = ln.Close()
			return fmt.Errorf("METRICS_ADDR: %w", err)
		}
		log.Info("metrics listening", "addr", mln.Addr().String())
	}
	srv := a.Server()
	errc := make(chan error, 2)
	servers := []*http.Server{srv}
	go func() { errc <- srv.Serve(ln) }()
	if mln != nil {
		msrv := &http.Server{Handler: a.Metrics, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, msrv)
		go func() { errc <- msrv.Serve(mln) }()
	}
	log.Info("relay listening", "addr", ln.Addr().String(), "version", Version)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), a.timeouts.shutdown)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(shutdownCtx); err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
	}
	for range servers {
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	return nil
}
