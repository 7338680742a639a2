// Package rediscache is the shared store of the lookup cache (cache.Store) on Redis or Valkey,
// through go-redis: a standalone server or primary endpoint, or a cluster (ElastiCache cluster
// mode and Serverless, MemoryDB), over TCP or TLS.
//
// Every operation is bounded by one timeout (pool wait, write and read alike, through its
// context) and never retried: the cache falls back to MISP instead of waiting, so a retry could
// only make a lookup slower. New connections are dialled in the background (go-redis hands a
// connection whose caller gave up to the pool), for up to a second, so that a burst of lookups
// on a cold or CPU-starved instance, whose first operations time out, still leaves connections
// for the next ones. Values are read into the caller's buffer and a longer value is skipped on
// the wire, never held in memory.
package rediscache

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Config says which Redis to use and how long an operation may take.
type Config struct {
	// URL is redis://[user:password@]host:port[/db] or rediss://... (TLS).
	URL string
	// Cluster says the URL is one node (or the configuration endpoint) of a Redis Cluster.
	Cluster bool
	// Timeout bounds every operation: dialling, waiting for a pooled connection, writing the
	// command and reading the answer. Default 50 ms.
	Timeout time.Duration
	// RootCAs, when not nil, are the CAs a rediss:// server's certificate must chain to
	// (REDIS_CA_FILE: the system's and an internal CA's); nil: the system's. Setting it for a
	// redis:// URL is an error: the operator meant TLS.
	RootCAs *x509.CertPool
}

// DefaultTimeout is Config.Timeout's default.
const DefaultTimeout = 50 * time.Millisecond

// Connections: dialTimeout bounds a background dial (never a lookup, bounded by Timeout);
// Warm opens warmConns at start-up, so that the first burst of lookups does not wait for dials
// (and TLS handshakes); poolSize bounds them (a fleet of 100 instances holds 1,600 at most).
const (
	dialTimeout = time.Second
	warmConns   = 4
	poolSize    = 16
)

// Store is a Redis (or Valkey) server or cluster. Safe for concurrent use.
type Store struct {
	c            redis.UniversalClient
	lock, unlock *redis.Script
}

// The lock scripts: a lock's value is its holder's token, so that taking it again with the
// same token succeeds (a holder whose first answer was lost finds it holds the lock) and
// releasing it never frees another holder's. One key each: they run on Redis Cluster too.
const (
	lockScript = `local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if v == ARGV[1] then return 1 end
return 0`
	unlockScript = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`
)

func newStore(c redis.UniversalClient) *Store {
	return &Store{c: c, lock: redis.NewScript(lockScript), unlock: redis.NewScript(unlockScript)}
}

// New connects lazily to cfg.URL: nothing is dialled until the first operation, so a Redis
// that is down does not stop the relay from starting. Errors never contain the password.
func New(cfg Config) (*Store, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		// url.Parse quotes the whole URL, password included.
		return nil, errors.New("not a URL (want redis://[user:password@]host:port/db or rediss://...)")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("scheme %q: want redis:// or rediss:// (TLS)", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("no host: want redis://host:port")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	// go-redis logs each failed dial, in its own format, to the process's stderr: with Redis
	// down, a line per lookup between JSON log lines. The relay says what matters itself (a
	// log line per breaker state change, the start-up check, the relay_redis_* metrics), so
	// the library's process-wide logger is silenced; setting it is atomic and idempotent.
	redis.SetLogger(silent{})
	if cfg.RootCAs != nil && u.Scheme != "rediss" {
		return nil, errors.New("a CA file (REDIS_CA_FILE) is set, but the URL is redis://, not rediss:// (TLS)")
	}
	hide := func(err error) error {
		msg := err.Error()
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
		return errors.New(msg)
	}
	// Maintenance notifications (a Redis Cloud feature) are off: they need RESP3 push
	// messages and a handshake most servers refuse, for nothing a cache needs.
	noMaint := &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	if cfg.Cluster {
		o, err := redis.ParseClusterURL(cfg.URL)
		if err != nil {
			return nil, hide(err)
		}
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = max(dialTimeout, cfg.Timeout), cfg.Timeout, cfg.Timeout, cfg.Timeout
		o.ContextTimeoutEnabled = true
		o.MaxRetries = -1
		o.DialerRetries = 1
		o.PoolSize = poolSize
		o.DisableIdentity = true
		o.MaintNotificationsConfig = noMaint
		if cfg.RootCAs != nil { // rediss://: ParseClusterURL set TLSConfig
			o.TLSConfig.RootCAs = cfg.RootCAs
		}
		// go-redis's own dialer for each node (TLS included), behind the reply guard.
		o.Dialer = guardDialer(redis.NewDialer(&redis.Options{DialTimeout: o.DialTimeout, TLSConfig: o.TLSConfig}))
		return newStore(redis.NewClusterClient(o)), nil
	}
	o, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, hide(err)
	}
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = max(dialTimeout, cfg.Timeout), cfg.Timeout, cfg.Timeout, cfg.Timeout
	o.ContextTimeoutEnabled = true
	o.MaxRetries = -1
	o.DialerRetries = 1
	o.PoolSize = poolSize
	// CLIENT SETINFO costs a round trip per connection, and older servers refuse it.
	o.DisableIdentity = true
	o.MaintNotificationsConfig = noMaint
	if cfg.RootCAs != nil { // rediss://: ParseURL set TLSConfig
		o.TLSConfig.RootCAs = cfg.RootCAs
	}
	o.Dialer = guardDialer(redis.NewDialer(o)) // go-redis's own dialer (TLS included), behind the reply guard
	return newStore(redis.NewClient(o)), nil
}

// recovered turns a panic in go-redis (reading a reply the guard let through) into the
// operation's error: a Store's caller may be a singleflight call, whose panics would end the
// process, and a Redis fault must only send the lookup to MISP.
func recovered(err *error) {
	if v := recover(); v != nil {
		*err = fmt.Errorf("redis: the client failed on a reply: %v", v)
	}
}

// silent is a go-redis logger that drops every message (see New).
type silent struct{}

func (silent) Printf(context.Context, string, ...any) {}

// Redact returns a Redis URL fit for logs: the password, if any, replaced by xxxxx.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Get reads key's value into buf. A value longer than buf is skipped on the wire and reads
// as not found.
func (s *Store) Get(ctx context.Context, key string, buf []byte) (_ []byte, _ bool, err error) {
	defer recovered(&err)
	n, err := s.c.GetToBuffer(ctx, key, buf).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, false, nil
	case err != nil && tooLarge(err):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	return buf[:n], true, nil
}

// tooLarge tells whether err is go-redis refusing a value longer than the buffer, after
// discarding it from the connection (which stays usable). go-redis has no sentinel for it;
// TestGetBounded pins the message against a real server.
func tooLarge(err error) bool {
	return strings.HasPrefix(err.Error(), "redis: buffer too small")
}

// GetMany reads several keys in one round trip, each into its buffer; a key that does not
// exist, or whose value does not fit its buffer with a byte to spare, reads as nil. It
// pipelines GETRANGE key 0 len(buf)-1 rather than GET, so that Redis itself sends no more than
// a buffer holds: in a pipeline, go-redis cannot skip a value longer than its buffer without
// failing the whole pipeline, which then happens only with a server that ignores the range.
func (s *Store) GetMany(ctx context.Context, keys []string, bufs [][]byte) (_ [][]byte, err error) {
	defer recovered(&err)
	cmds := make([]*redis.ZeroCopyStringCmd, len(keys))
	// Pipelined's own error is the first command's; each command is looked at below.
	_, _ = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = redis.NewZeroCopyStringCmd(ctx, bufs[i], "getrange", k, 0, len(bufs[i])-1)
			_ = p.Process(ctx, cmds[i])
		}
		return nil
	})
	values := make([][]byte, len(keys))
	for i, cmd := range cmds {
		n, err := cmd.Result()
		switch {
		case err != nil:
			return nil, err
		case n == 0 || n >= len(bufs[i]): // absent (GETRANGE answers ""), or longer
		default:
			values[i] = bufs[i][:n]
		}
	}
	return values, nil
}

// SetMany stores values[i] under keys[i] for ttl, in one round trip.
func (s *Store) SetMany(ctx context.Context, keys []string, values [][]byte, ttl time.Duration) (err error) {
	defer recovered(&err)
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			p.Set(ctx, k, values[i], ttl)
		}
		return nil
	})
	return err
}

// Set stores value under key for ttl (SET key value PX ttl).
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) (err error) {
	defer recovered(&err)
	return s.c.Set(ctx, key, value, ttl).Err()
}

// Lock sets key to token for ttl unless it holds another token, and tells whether it holds
// token now (a script: EVALSHA, or EVAL the first time a server sees it).
func (s *Store) Lock(ctx context.Context, key, token string, ttl time.Duration) (_ bool, err error) {
	defer recovered(&err)
	n, err := s.lock.Run(ctx, s.c, []string{key}, token, max(ttl.Milliseconds(), 1)).Int()
	return n == 1, err
}

// Unlock deletes key if it holds token.
func (s *Store) Unlock(ctx context.Context, key, token string) (err error) {
	defer recovered(&err)
	return s.unlock.Run(ctx, s.c, []string{key}, token).Err()
}

// Warm opens a few connections (a PING on each, at once) and tells whether the server
// answers, within ctx. The relay calls it at start-up: on AWS Lambda, during the
// function's initialisation, whose CPU is not shared with requests yet.
func (s *Store) Warm(ctx context.Context) error {
	errs := make(chan error, warmConns)
	for range warmConns {
		go func() { errs <- s.c.Ping(ctx).Err() }()
	}
	var first error
	for range warmConns {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Close closes the connections.
func (s *Store) Close() error {
	return s.c.Close()
}
