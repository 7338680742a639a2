package rediscache_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/cache"
	"github.com/misp-relay/misp-relay/internal/cache/rediscache"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/intel/inteltest"
)

// hostileRedis is a loopback server that answers HELLO as Redis 5 (refused, so the client
// speaks RESP2) and every other command with reply.
func hostileRedis(t *testing.T, reply string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					args, err := readCommand(r)
					if err != nil {
						return
					}
					if strings.EqualFold(args[0], "HELLO") {
						_, _ = c.Write([]byte("-ERR unknown command 'HELLO'\r\n"))
						continue
					}
					_, _ = c.Write([]byte(reply))
				}
			}()
		}
	}()
	return "redis://" + ln.Addr().String()
}

func readCommand(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || n < 1 || n > 64 {
		return nil, fmt.Errorf("bad command %q", line)
	}
	args := make([]string, 0, n)
	for range n {
		if _, err := r.ReadString('\n'); err != nil { // $len
			return nil, err
		}
		a, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		args = append(args, strings.TrimSpace(a))
	}
	return args, nil
}

// TestHostileRepliesAreErrors: a reply header is all it takes for go-redis to allocate what
// it announces, or panic. Every operation must refuse such a reply with an error, neither
// allocating it nor panicking; a sane short reply still passes the guard.
func TestHostileRepliesAreErrors(t *testing.T) {
	ctx := context.Background()
	ops := map[string]func(s *rediscache.Store) error{
		"Lock":   func(s *rediscache.Store) error { _, err := s.Lock(ctx, "k", "token", time.Second); return err },
		"Unlock": func(s *rediscache.Store) error { return s.Unlock(ctx, "k", "token") },
		"Set":    func(s *rediscache.Store) error { return s.Set(ctx, "k", []byte("v"), time.Second) },
		"Get":    func(s *rediscache.Store) error { _, _, err := s.Get(ctx, "k", make([]byte, 64)); return err },
		"GetMany": func(s *rediscache.Store) error {
			_, err := s.GetMany(ctx, []string{"a", "b"}, [][]byte{make([]byte, 64), make([]byte, 64)})
			return err
		},
		"SetMany": func(s *rediscache.Store) error {
			return s.SetMany(ctx, []string{"a"}, [][]byte{[]byte("v")}, time.Second)
		},
	}
	for _, reply := range []string{
		"*9223372036854775807\r\n",   // an array of 2^63-1 items: makeslice panics
		"*99999999999999999999\r\n",  // more digits than an int64 holds
		"*20000000\r\n",              // 20M items: 305 MiB
		"$300000000\r\n",             // a 300 MB string
		"%9000000\r\n",               // a RESP3 map
		"*2\r\n*2\r\n$999999999\r\n", // nested
	} {
		for name, op := range ops {
			t.Run(fmt.Sprintf("%s %q", name, reply), func(t *testing.T) {
				s, err := rediscache.New(rediscache.Config{URL: hostileRedis(t, reply), Timeout: 2 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				func() {
					defer func() {
						if v := recover(); v != nil {
							t.Errorf("panicked: %v", v)
						}
					}()
					err = op(s)
				}()
				runtime.ReadMemStats(&after)
				if err == nil {
					t.Error("no error")
				}
				if a := after.TotalAlloc - before.TotalAlloc; a > 16<<20 {
					t.Errorf("one reply header made the relay allocate %d MiB", a>>20)
				}
			})
		}
	}
	// The guard lets ordinary replies through.
	s, err := rediscache.New(rediscache.Config{URL: hostileRedis(t, ":1\r\n"), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if locked, err := s.Lock(ctx, "k", "token", time.Second); err != nil || !locked {
		t.Errorf("Lock with a sane reply = %v, %v", locked, err)
	}
	s2, err := rediscache.New(rediscache.Config{URL: hostileRedis(t, "$5\r\nhello\r\n"), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if v, found, err := s2.Get(ctx, "k", make([]byte, 64)); err != nil || !found || string(v) != "hello" {
		t.Errorf("Get with a sane reply = %q, %v, %v", v, found, err)
	}
}

// TestHostileReplyDoesNotEndALookup: the same reply met by a lookup, wired as the relay wires
// it (a Cache over a Shared over the Store): its singleflight call would re-panic on a fresh
// goroutine and end the process; the lookup goes to MISP instead.
func TestHostileReplyDoesNotEndALookup(t *testing.T) {
	s, err := rediscache.New(rediscache.Config{URL: hostileRedis(t, "*9223372036854775807\r\n"), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	shared := cache.NewShared(s, cache.SharedConfig{Timeout: time.Second})
	asked := 0
	backend := &inteltest.Backend{SearchFn: func(context.Context, string, intel.Query) ([]intel.Event, error) {
		asked++
		return nil, nil
	}}
	c := cache.New(backend, cache.Config{BaseURL: "https://misp.example", TTL: time.Minute, Shared: shared})
	if _, err := c.Search(context.Background(), "key", intel.Query{Value: "198.51.100.7", Types: []string{"ip-dst"}, Limit: 10}); err != nil || asked != 1 {
		t.Errorf("lookup: %v, MISP asked %d times; want an answer from MISP", err, asked)
	}
	if st := shared.Stats(); st.Errors == 0 || st.Fallbacks != 1 {
		t.Errorf("stats %+v: want the reply counted as an error and the lookup as a fallback", st)
	}
}
