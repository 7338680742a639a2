package rediscache_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/misp-relay/misp-relay/internal/cache"
	"github.com/misp-relay/misp-relay/internal/cache/rediscache"
	"github.com/misp-relay/misp-relay/internal/cache/rediscache/redistest"
	"github.com/misp-relay/misp-relay/internal/upstream"
)

var _ cache.Store = (*rediscache.Store)(nil)

func newStore(t *testing.T, url string, timeout time.Duration) *rediscache.Store {
	t.Helper()
	s, err := rediscache.New(rediscache.Config{URL: url, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestStoreAgainstRedis(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv.URL()+"/0", time.Second)
	ctx := context.Background()
	buf := make([]byte, 64)

	if _, found, err := s.Get(ctx, "k", buf); err != nil || found {
		t.Fatalf("absent key: found %v, err %v", found, err)
	}
	if err := s.Set(ctx, "k", []byte("value\x00\xff"), time.Minute); err != nil {
		t.Fatal(err)
	}
	v, found, err := s.Get(ctx, "k", buf)
	if err != nil || !found || string(v) != "value\x00\xff" {
		t.Fatalf("Get = %q, %v, %v", v, found, err)
	}

	// A lock holds its holder's token: the holder may take it again (its first answer
	// lost), another may not, and only the holder frees it.
	for i, step := range []struct {
		op, token string
		want      bool
	}{
		{"lock", "a", true},
		{"lock", "b", false},
		{"lock", "a", true},
		{"unlock", "b", false},
		{"lock", "b", false}, // b's unlock did not free a's lock
		{"unlock", "a", false},
		{"lock", "b", true},
	} {
		switch step.op {
		case "lock":
			if got, err := s.Lock(ctx, "k:lock", step.token, time.Minute); err != nil || got != step.want {
				t.Errorf("step %d: Lock(%s) = %v, %v; want %v", i+1, step.token, got, err, step.want)
			}
		case "unlock":
			if err := s.Unlock(ctx, "k:lock", step.token); err != nil {
				t.Errorf("step %d: Unlock(%s): %v", i+1, step.token, err)
			}
		}
	}
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer admin.Close()
	if ttl, err := admin.PTTL(ctx, "k:lock").Result(); err != nil || ttl <= 0 || ttl > time.Minute {
		t.Errorf("the lock's PTTL = %v, %v; want its lease", ttl, err)
	}
}

func TestExpiry(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv.URL(), time.Second)
	ctx := context.Background()
	// Redis expires keys by itself: a 1 ms TTL is gone once Redis has seen it expire, which
	// the lock (same TTL semantics) shows without waiting on a clock here.
	if err := s.Set(ctx, "short", []byte("x"), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "long", []byte("y"), time.Hour); err != nil {
		t.Fatal(err)
	}
	for {
		_, found, err := s.Get(ctx, "short", make([]byte, 8))
		if err != nil {
			t.Fatal(err)
		}
		if !found {
			break
		}
	}
	if _, found, _ := s.Get(ctx, "long", make([]byte, 8)); !found {
		t.Error("a key with an hour to live is gone")
	}
}

// TestGetBounded: a value longer than the buffer is never read into memory, reads as absent,
// and leaves the connection usable.
func TestGetBounded(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv.URL(), time.Second)
	ctx := context.Background()
	big := bytes.Repeat([]byte("x"), 100_000)
	if err := s.Set(ctx, "big", big, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "small", []byte("ok"), time.Minute); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		v, found, err := s.Get(ctx, "big", make([]byte, 1000))
		if err != nil || found || v != nil {
			t.Fatalf("oversized value: %d bytes, found %v, err %v; want a miss", len(v), found, err)
		}
		if v, found, err := s.Get(ctx, "small", make([]byte, 1000)); err != nil || !found || string(v) != "ok" {
			t.Fatalf("after an oversized value: %q, %v, %v", v, found, err)
		}
	}
	// Exactly the buffer's size is allowed.
	if v, found, err := s.Get(ctx, "big", make([]byte, len(big))); err != nil || !found || len(v) != len(big) {
		t.Errorf("a value of the buffer's size: %d bytes, %v, %v", len(v), found, err)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct{ url, want string }{
		{"http://cache:6379", "scheme"},
		{"redis://", "no host"},
		{"redis://user:s3cret-pass@cache:6379/notadb", "invalid database"},
		{"redis://user:s3cret-pass@cache:6379/0?nonsense=1", "nonsense"},
		{"redis://user:s3cret-pass@cache:port", "URL"},
		{"redis://user:s3cret-pass@ca che:6379", "URL"},
	}
	for _, tt := range tests {
		_, err := rediscache.New(rediscache.Config{URL: tt.url})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%q) = %v, want an error about %s", tt.url, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("New(%q): the error shows the password: %v", tt.url, err)
		}
	}
	for _, url := range []string{"redis://cache:6379", "rediss://u:p@cache.example:6380/2", "redis://cache"} {
		s, err := rediscache.New(rediscache.Config{URL: url})
		if err != nil {
			t.Errorf("New(%q): %v", url, err)
			continue
		}
		_ = s.Close()
	}
	s, err := rediscache.New(rediscache.Config{URL: "rediss://u:p@cfg.example:6379", Cluster: true})
	if err != nil {
		t.Errorf("cluster: %v", err)
	} else {
		_ = s.Close()
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"redis://user:s3cret@cache:6379/1": "redis://user:xxxxx@cache:6379/1",
		"rediss://:s3cret@cache:6380":      "rediss://:xxxxx@cache:6380",
		"redis://cache:6379":               "redis://cache:6379",
		"redis://us er:s3cret@x:1":         "(unparsable URL)",
	} {
		if got := rediscache.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// fakeServer accepts connections and answers each read with answer(what was read); nil
// closes the connection, and an empty answer says nothing (a hung server).
func fakeServer(t *testing.T, answer func(req []byte) []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		_ = ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				go func() { <-done; conn.Close() }()
				buf := make([]byte, 4096)
				for {
					n, err := conn.Read(buf)
					if err != nil {
						return
					}
					out := answer(buf[:n])
					if out == nil {
						return
					}
					if _, err := conn.Write(out); err != nil {
						return
					}
				}
			})
		}
	})
	return ln.Addr().String()
}

// TestFaultsAreBoundedErrors: a server that is gone, hung, or answering garbage (a 1 GB bulk
// string included) costs an error within the timeout, never a hang, a panic or the memory.
func TestFaultsAreBoundedErrors(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := closed.Addr().String()
	closed.Close()
	unknown := []byte("-ERR unknown command\r\n")
	servers := map[string]string{
		"connection refused": gone,
		"hung":               fakeServer(t, func([]byte) []byte { return []byte{} }),
		"garbage":            fakeServer(t, func([]byte) []byte { return []byte("HTTP/1.1 400 Bad Request\r\n\r\n") }),
		"closes":             fakeServer(t, func([]byte) []byte { return nil }),
		"huge bulk": fakeServer(t, func(req []byte) []byte {
			if bytes.Contains(bytes.ToLower(req), []byte("get")) {
				return []byte("$1000000000\r\nxxxxxxxx")
			}
			return unknown
		}),
	}
	const timeout = 50 * time.Millisecond
	for name, addr := range servers {
		t.Run(name, func(t *testing.T) {
			s := newStore(t, "redis://"+addr, timeout)
			start := time.Now()
			_, found, err := s.Get(context.Background(), "k", make([]byte, 1024))
			elapsed := time.Since(start)
			if err == nil || found {
				t.Errorf("Get = found %v, err %v; want an error", found, err)
			}
			// Generous for a busy machine; go-redis's own defaults (3 s reads, 5 s dials,
			// 3 retries) would take seconds.
			if elapsed > 20*timeout {
				t.Errorf("Get took %v with a %v timeout", elapsed, timeout)
			}
			if err := s.Set(context.Background(), "k", []byte("v"), time.Minute); err == nil {
				t.Error("Set succeeded")
			}
			start = time.Now()
			if _, err := s.GetMany(context.Background(), []string{"a", "b"}, [][]byte{make([]byte, 64), make([]byte, 64)}); err == nil {
				t.Error("GetMany succeeded")
			}
			if elapsed := time.Since(start); elapsed > 20*timeout {
				t.Errorf("GetMany took %v with a %v timeout", elapsed, timeout)
			}
		})
	}
}

// TestFullRedis: a Redis out of memory (noeviction) refuses writes with an error and still
// answers reads.
func TestFullRedis(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv.URL(), time.Second)
	ctx := context.Background()
	if err := s.Set(ctx, "before", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer admin.Close()
	if err := admin.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "after", []byte("v"), time.Minute); err == nil || !strings.Contains(err.Error(), "OOM") {
		t.Errorf("Set on a full Redis: %v, want an OOM error", err)
	}
	if _, err := s.Lock(ctx, "lock", "t", time.Minute); err == nil {
		t.Error("Lock on a full Redis succeeded")
	}
	if v, found, err := s.Get(ctx, "before", make([]byte, 8)); err != nil || !found || string(v) != "v" {
		t.Errorf("Get on a full Redis = %q, %v, %v", v, found, err)
	}
}

// TestGetManyAndSetMany: one round trip for several keys; absent and oversized values read as
// nil, and the connection stays usable.
func TestGetManyAndSetMany(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv.URL(), time.Second)
	ctx := context.Background()
	big := bytes.Repeat([]byte("x"), 5000)
	if err := s.SetMany(ctx, []string{"a", "big", "c"}, [][]byte{[]byte("1"), big, []byte("333")}, time.Minute); err != nil {
		t.Fatal(err)
	}
	keys := []string{"a", "missing", "big", "c"}
	bufs := make([][]byte, len(keys))
	for i := range bufs {
		bufs[i] = make([]byte, 100)
	}
	if err := s.Set(ctx, "fits", bytes.Repeat([]byte("f"), 99), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "one over", bytes.Repeat([]byte("o"), 100), time.Minute); err != nil {
		t.Fatal(err)
	}
	keys = append(keys, "fits", "one over")
	bufs = append(bufs, make([]byte, 100), make([]byte, 100))
	for range 2 {
		got, err := s.GetMany(ctx, keys, bufs)
		if err != nil {
			t.Fatal(err)
		}
		want := [][]byte{[]byte("1"), nil, nil, []byte("333"), bytes.Repeat([]byte("f"), 99), nil}
		if len(got) != len(want) {
			t.Fatalf("%d values", len(got))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) || (want[i] == nil) != (got[i] == nil) {
				t.Errorf("%s = %q, want %q", keys[i], got[i], want[i])
			}
		}
	}
	if v, found, err := s.Get(ctx, "c", make([]byte, 8)); err != nil || !found || string(v) != "333" {
		t.Errorf("after GetMany: %q %v %v", v, found, err)
	}
}

// TestTLS: rediss:// reaches a TLS-only server whose certificate chains to the CA given as
// RootCAs (REDIS_CA_FILE), and only then: without it, the certificate is refused (an error,
// within the timeout, never a plain-text fallback).
func TestTLS(t *testing.T) {
	srv := redistest.StartTLS(t)
	if !strings.HasPrefix(srv.URL(), "rediss://") {
		t.Fatalf("URL %q, want rediss://", srv.URL())
	}
	roots, err := upstream.ExtraRoots(srv.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	buf := make([]byte, 64)

	s, err := rediscache.New(rediscache.Config{URL: srv.URL() + "/0", Timeout: 5 * time.Second, RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Warm(ctx); err != nil {
		t.Fatalf("Warm over TLS: %v", err)
	}
	if err := s.Set(ctx, "k", []byte("over TLS"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, found, err := s.Get(ctx, "k", buf); err != nil || !found || string(v) != "over TLS" {
		t.Fatalf("Get over TLS = %q, %v, %v", v, found, err)
	}

	// The system's roots alone do not know the test's CA.
	untrusting := newStore(t, srv.URL()+"/0", 5*time.Second)
	if _, _, err := untrusting.Get(ctx, "k", buf); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Get without the CA: %v, want a certificate error", err)
	}
	// Plain text to a TLS port gets no answer it can read: an error, not a value.
	plain := newStore(t, "redis://"+srv.Addr+"/0", 200*time.Millisecond)
	if v, found, err := plain.Get(ctx, "k", buf); err == nil || found {
		t.Errorf("plain-text Get from a TLS port = %q, %v, %v; want an error", v, found, err)
	}
	// A CA file means TLS: with redis:// it is a mistake worth refusing at start.
	if _, err := rediscache.New(rediscache.Config{URL: "redis://" + srv.Addr, RootCAs: roots}); err == nil || !strings.Contains(err.Error(), "rediss://") {
		t.Errorf("a CA with redis://: %v, want an error saying rediss://", err)
	}
}

// TestNothingOnStderr: go-redis writes a line to stderr for every failed dial unless told
// not to; with Redis down, that would be a line per lookup outside the relay's JSON logs.
// The test runs itself as a child that uses a Store on a closed port, and reads its stderr.
func TestNothingOnStderr(t *testing.T) {
	if os.Getenv("REDISCACHE_STDERR_CHILD") == "1" {
		s, err := rediscache.New(rediscache.Config{URL: "redis://" + os.Getenv("REDISCACHE_ADDR"), Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, _, err := s.Get(context.Background(), "k", make([]byte, 8)); err == nil {
				t.Fatal("Get from a closed port succeeded")
			}
		}
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	// Nobody listens there now: every dial is refused.
	_ = ln.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestNothingOnStderr$", "-test.count=1") //nolint:gosec // this test binary
	cmd.Env = append(os.Environ(), "REDISCACHE_STDERR_CHILD=1", "REDISCACHE_ADDR="+addr)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("go-redis wrote to stderr:\n%s", stderr.String())
	}
}
