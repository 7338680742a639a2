// Package redistest runs a real redis-server (the Debian package redis-server, or a
// valkey-server) on a free loopback port with its own temporary directory and no persistence,
// for tests and the fleet benchmark: fakes cannot show how the relay behaves when a real
// server is killed mid-run and comes back.
//
// Start is for tests: without a server binary it skips, except in CI (CI=true), where a
// missing redis-server is a failure (.ci/run installs it). Launch is for programs.
package redistest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Server is a running (or stopped) redis-server.
type Server struct {
	// Addr is host:port on 127.0.0.1; it stays the same across Stop and Restart.
	Addr string
	// CAFile is, for a TLS server (StartTLS), the PEM file of the CA that signed its
	// certificate; "" otherwise.
	CAFile string

	bin, dir string
	tls      *tlsFiles // nil: plain TCP

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exits
	out  *syncBuffer   // the server's log
}

// Binary is the path of redis-server (or valkey-server), or an error saying it is missing.
func Binary() (string, error) {
	for _, name := range []string{"redis-server", "valkey-server"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("neither redis-server nor valkey-server is installed (apt-get install redis-server)")
}

// Start runs a server for the test and stops it when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return start(tb, false)
}

// StartTLS is Start for a server that speaks TLS only (rediss://, as ElastiCache with
// in-transit encryption does), with a certificate for 127.0.0.1 signed by a CA of its own,
// made for the test: CAFile is that CA, which no system trusts.
func StartTLS(tb testing.TB) *Server {
	tb.Helper()
	return start(tb, true)
}

func start(tb testing.TB, withTLS bool) *Server {
	tb.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redistest: %v: CI must run the Redis tests", err)
		}
		tb.Skipf("redistest: %v", err)
	}
	dir := tb.TempDir()
	var files *tlsFiles
	if withTLS {
		if files, err = writeTLSFiles(dir); err != nil {
			tb.Fatalf("redistest: %v", err)
		}
	}
	s, err := launch(bin, dir, files)
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// Launch runs a server whose files go to dir (an empty directory the caller removes). The
// caller stops it with Stop.
func Launch(dir string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	return launch(bin, dir, nil)
}

func launch(bin, dir string, files *tlsFiles) (*Server, error) {
	// The port is free when asked, but another process may take it before the server
	// listens: then the server exits at once, and another port is tried.
	var errs []error
	for range 5 {
		addr, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{Addr: addr, bin: bin, dir: dir, tls: files}
		if files != nil {
			s.CAFile = files.ca
		}
		if err := s.start(); err != nil {
			errs = append(errs, err)
			continue
		}
		return s, nil
	}
	return nil, errors.Join(errs...)
}

// URL is redis://127.0.0.1:port, or rediss://127.0.0.1:port for a TLS server.
func (s *Server) URL() string {
	if s.tls != nil {
		return "rediss://" + s.Addr
	}
	return "redis://" + s.Addr
}

// Stop kills the server (SIGKILL: as abrupt as a crash) and waits for it to exit. Stopping a
// stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart starts the server again on the same port (empty: nothing is persisted).
func (s *Server) Restart() error {
	s.Stop()
	return s.start()
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, port, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return err
	}
	out := &syncBuffer{}
	args := []string{"--port", port}
	if s.tls != nil {
		// TLS only: the plain port is off. Clients need no certificate of their own.
		args = []string{
			"--port", "0", "--tls-port", port, "--tls-cert-file", s.tls.cert,
			"--tls-key-file", s.tls.key, "--tls-ca-cert-file", s.tls.ca, "--tls-auth-clients", "no",
		}
	}
	args = append(args, "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "",
		"--protected-mode", "yes", "--databases", "1")
	cmd := exec.Command(s.bin, args...) //nolint:gosec // redis-server from PATH, with arguments made here
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	if err := ready(s.Addr, s.tls, done); err != nil {
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s on %s: %w; its log:\n%s", s.bin, s.Addr, err, out.String())
	}
	s.cmd, s.done, s.out = cmd, done, out
	return nil
}

// ready polls the server with PING until it answers, it exits, or 30 s pass (a busy machine).
func ready(addr string, files *tlsFiles, exited <-chan struct{}) error {
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		err := ping(addr, files)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer to PING after 30s: %w", err)
		}
		select {
		case <-exited:
			return errors.New("it exited")
		case <-tick.C:
		}
	}
}

// ping sends one inline PING and expects +PONG (by hand: go-redis would log every refused
// connection while the server starts), over TLS when files is not nil.
func ping(addr string, files *tlsFiles) error {
	var conn net.Conn
	var err error
	dialer := &net.Dialer{Timeout: time.Second}
	if files != nil {
		conn, err = tls.DialWithDialer(dialer, "tcp", addr, &tls.Config{RootCAs: files.pool, MinVersion: tls.VersionTLS12})
	} else {
		conn, err = dialer.Dial("tcp", addr)
	}
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 7)
	if _, err := io.ReadFull(conn, buf); err != nil {
		return err
	}
	if string(buf) != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", buf)
	}
	return nil
}

// freePort is a loopback address nobody listens on now.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = ln.Close() }()
	return "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 1<<20 {
		return len(p), nil // enough to say why it failed
	}
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
