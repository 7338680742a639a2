package cache

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Store is a key-value store that several relay instances share (Redis, Valkey): the second
// level under each instance's in-process cache, so that a fleet asks MISP once per lookup
// rather than once per instance. The cache owns this interface; internal/cache/rediscache
// implements it. Implementations are safe for concurrent use and give up when ctx ends.
type Store interface {
	// Get reads key's value into buf and returns it (a prefix of buf). found is false when
	// the key does not exist, and also when the value is longer than buf: nothing longer than
	// buf is ever read into memory.
	Get(ctx context.Context, key string, buf []byte) (value []byte, found bool, err error)
	// Set stores value under key for ttl.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Lock sets key to token for ttl unless it holds another token, and tells whether key
	// now holds token: taking a lock again with the same token succeeds, so a holder whose
	// first answer was lost (a timeout after Redis ran the command) finds it holds the lock.
	Lock(ctx context.Context, key, token string, ttl time.Duration) (bool, error)
	// Unlock deletes key if it holds token, and only then: releasing a lock whose taking
	// failed, or one that outlived its lease and is now another's, never frees another's.
	Unlock(ctx context.Context, key, token string) error
	// GetMany reads several keys in one round trip: values[i] is keys[i]'s value read into
	// bufs[i], or nil when the key does not exist, or its value does not fit bufs[i] with a
	// byte to spare (nothing longer than bufs[i] is ever read into memory).
	GetMany(ctx context.Context, keys []string, bufs [][]byte) (values [][]byte, err error)
	// SetMany stores values[i] under keys[i] for ttl, in one round trip.
	SetMany(ctx context.Context, keys []string, values [][]byte, ttl time.Duration) error
}

// SharedConfig tunes the shared store's use. Zero values take the defaults below.
type SharedConfig struct {
	// Timeout bounds the store operations made before a lookup goes to MISP, together, and
	// those made after it, together (REDIS_TIMEOUT): a slow store costs a lookup at most
	// twice this, a dead one (its breaker open) nothing.
	Timeout time.Duration
	// MaxEntry bounds a stored value in bytes: larger answers are not stored, and larger
	// values are never read.
	MaxEntry int
	// Lease is how long an instance that asks MISP holds the lookup's lock (at most the
	// TTL), and so how long another instance waits for its answer before asking MISP itself.
	// Negative: no locks.
	Lease time.Duration
	// Failures failed operations in a row, going on for at least a second, open the
	// breaker for OpenFor.
	Failures int
	OpenFor  time.Duration
	// Name is how logs call the store (REDIS_URL without its password).
	Name string
	// Log receives one line per breaker state change. nil: slog.Default().
	Log *slog.Logger
	// Now is the breaker's clock; nil: time.Now. Tests set it.
	Now func() time.Time
}

// Defaults of SharedConfig.
const (
	DefaultSharedTimeout = 50 * time.Millisecond
	DefaultMaxEntry      = 256 << 10
	DefaultLease         = 5 * time.Second
	DefaultFailures      = 5
	DefaultOpenFor       = 10 * time.Second
)

// The pauses between two looks at a lookup another instance is answering: short at first
// (a MISP call often takes a few milliseconds), then no more than 20 looks a second.
const (
	firstPoll = 2 * time.Millisecond
	maxPoll   = 50 * time.Millisecond
)

// Shared is the fleet-wide second level of the cache: a Store used with a bound on time
// (Timeout), a circuit breaker, a bound on size (MaxEntry), and counters. Its faults never
// fail a lookup: whatever goes wrong, the lookup goes to MISP. One Shared (one breaker) serves
// every per-MISP Cache of a relay. Safe for concurrent use.
type Shared struct {
	store   Store
	cfg     SharedConfig
	log     *slog.Logger
	breaker *breaker
	bufs    sync.Pool // *[]byte of MaxEntry+2 bytes (the 2 let the Redis client read a value and its CRLF at once)
	id      string    // random: this instance's part of its lock tokens
	seq     atomic.Uint64

	hits, misses, errors, fallbacks, skipped, waits atomic.Int64
}

// NewShared puts store behind the bounds of cfg.
func NewShared(store Store, cfg SharedConfig) *Shared {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultSharedTimeout
	}
	if cfg.MaxEntry <= 0 {
		cfg.MaxEntry = DefaultMaxEntry
	}
	if cfg.Lease == 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Failures <= 0 {
		cfg.Failures = DefaultFailures
	}
	if cfg.OpenFor <= 0 {
		cfg.OpenFor = DefaultOpenFor
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Shared{store: store, cfg: cfg, log: cfg.Log, id: rand.Text()}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.bufs.New = func() any {
		b := make([]byte, cfg.MaxEntry+2)
		return &b
	}
	s.breaker = &breaker{failures: cfg.Failures, openFor: cfg.OpenFor, now: cfg.Now, onChange: s.logChange}
	return s
}

// logChange logs the breaker's state changes: once when the store stops being used, once when
// it is used again, never per lookup.
func (s *Shared) logChange(from, to breakerState, err error) {
	switch {
	case to == stateOpen && from == stateClosed:
		s.log.Warn("shared cache unavailable: lookups go to MISP without it for a while",
			"store", s.cfg.Name, "error", err, "retry_in", s.cfg.OpenFor.String())
	case to == stateClosed:
		s.log.Info("shared cache available again", "store", s.cfg.Name)
	default:
		s.log.Debug("shared cache breaker", "store", s.cfg.Name, "from", from.String(), "to", to.String(), "error", err)
	}
}

// SharedStats are the counters of the shared store's use.
type SharedStats struct {
	// Hits are lookups answered from the store, Misses lookups the store had no usable
	// answer for (absent, expired, over the size bound, or not opening).
	Hits, Misses int64
	// Errors are failed store operations (timeouts included).
	Errors int64
	// Fallbacks are lookups that went to MISP without the store, because its breaker was
	// open or reading it failed.
	Fallbacks int64
	// Skipped are answers not stored because they were over MaxEntry.
	Skipped int64
	// Waits are lookups answered from the store after waiting for another instance's MISP
	// call (counted in Hits too).
	Waits int64
}

// Stats returns the counters so far.
func (s *Shared) Stats() SharedStats {
	return SharedStats{
		Hits: s.hits.Load(), Misses: s.misses.Load(), Errors: s.errors.Load(),
		Fallbacks: s.fallbacks.Load(), Skipped: s.skipped.Load(), Waits: s.waits.Load(),
	}
}

// BreakerState is "closed" (the store is used), "open" (it is not) or "half-open".
func (s *Shared) BreakerState() string { return s.breaker.current().String() }

// entryRef names one lookup's entry: its key and the tenant's sealer.
type entryRef struct {
	key  string
	aead cipher.AEAD
}

// lockToken is the value of a lock this instance takes for one lookup: the instance's random
// id and a sequence number, unique across the fleet.
func (s *Shared) lockToken() string {
	return s.id + ":" + strconv.FormatUint(s.seq.Add(1), 36)
}

func (r entryRef) lockKey() string { return r.key + ":lock" }

// outcome of a read of the store.
type outcome int

const (
	found   outcome = iota // a usable value
	missing                // nothing usable
	failed                 // the store could not be read (or was not, its breaker open)
)

// codec turns one kind of answer into a payload and back.
type codec[T any] struct {
	encode func(b []byte, v T) []byte
	decode func(payload []byte) (T, error)
}

// fill answers one lookup that missed the in-process cache: from the store when it holds a
// fresh answer; else it asks fetch, stores the answer for ttl and returns it. When another
// instance is already asking MISP the same (it holds the lookup's lock), fill waits for its
// answer rather than asking too, up to Lease. fetchedAt is when MISP gave the answer, and
// fromStore tells whether it came from the store. Only fetch's errors are returned: the
// store's faults make fill fall back to fetch.
//
// waiting, when set, is called once fill knows it will not call fetch soon: before it waits
// for another instance's answer.
func fill[T any](ctx context.Context, s *Shared, ref entryRef, ttl time.Duration, c codec[T], fetch func() (T, error), waiting func()) (v T, fetchedAt time.Time, fromStore bool, err error) {
	before, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	v, fetchedAt, got := load(before, s, ref, ttl, c)
	token := ""
	locked, waited := false, false
	if got == missing {
		s.misses.Add(1)
		if lease := min(s.cfg.Lease, ttl); lease > 0 {
			token = s.lockToken()
			var ok bool
			switch locked, ok = s.lock(before, ref, token, lease); {
			case locked:
				// The answer may have been stored between the read and the lock (its writer
				// then freed the lock): look once more before asking MISP.
				v, fetchedAt, got = load(before, s, ref, ttl, c)
			case ok:
				// Another instance is asking MISP: its answer will be in the store soon.
				if waiting != nil {
					waiting()
				}
				v, fetchedAt, got, locked = wait(ctx, s, ref, token, ttl, lease, c)
				waited = true
			default:
				// The store may have taken the lock and lost its answer: this instance may
				// hold it, and frees it below (only if it does), lest others wait its lease.
				locked = true
			}
		}
	}
	cancel()
	if got == failed {
		// The store could not be read (or was not, its breaker open): MISP answers, and the
		// answer is not written to a store that did not answer.
		s.fallbacks.Add(1)
	}
	if got == found {
		if locked {
			after, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
			s.unlock(after, ref, token)
			cancel()
		}
		s.hits.Add(1)
		if waited {
			s.waits.Add(1)
		}
		return v, fetchedAt, true, nil
	}
	fetchedAt = time.Now()
	v, err = fetch()
	if err == nil && got != failed { // a store that did not answer is not written to
		after, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		s.put(after, ref, ttl, fetchedAt, c.encode(nil, v))
		cancel()
	}
	if locked {
		// Waiting instances find the answer, or, after an error (errors are not shared),
		// take the lock and ask MISP themselves. Its own bound: a lock left behind would
		// keep them waiting for its lease.
		after, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		s.unlock(after, ref, token)
		cancel()
	}
	return v, fetchedAt, false, err
}

// load reads ref's answer, if the breaker lets it.
func load[T any](ctx context.Context, s *Shared, ref entryRef, ttl time.Duration, c codec[T]) (v T, fetchedAt time.Time, got outcome) {
	ok, probe := s.breaker.allow()
	if !ok {
		return v, fetchedAt, failed
	}
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	value, exists, err := s.store.Get(ctx, ref.key, *bp)
	s.done(probe, err)
	switch {
	case err != nil:
		return v, fetchedAt, failed
	case !exists || len(value) > s.cfg.MaxEntry:
		return v, fetchedAt, missing
	}
	fetchedAt, payload, err := unseal(ref.aead, ref.key, value)
	if err != nil {
		return v, fetchedAt, missing
	}
	// Every instance stops using an answer ttl after MISP gave it; one dated in the future
	// beyond clock skew is not one we wrote.
	if age := time.Since(fetchedAt); age >= ttl || age < -time.Minute {
		return v, fetchedAt, missing
	}
	if v, err = c.decode(payload); err != nil {
		return v, fetchedAt, missing
	}
	return v, fetchedAt, found
}

// wait polls for the answer of the instance holding ref's lock, until it is stored, the lock
// is free (the holder failed or gave up: this instance takes the lock, looks once more, and
// then asks MISP), the store fails or the lease has passed. Each look is bounded by Timeout;
// one failed look (a timeout on a busy instance) is tried again at the next one rather than
// sending this instance to MISP too, but two in a row, or an open breaker, end the wait: a
// store that slow may also have failed to take the holder's answer, and waiting for the lease
// would then make a slow Redis cost far more than REDIS_TIMEOUT.
func wait[T any](ctx context.Context, s *Shared, ref entryRef, token string, ttl, lease time.Duration, c codec[T]) (v T, fetchedAt time.Time, got outcome, locked bool) {
	deadline := time.Now().Add(lease)
	timer := time.NewTimer(firstPoll)
	defer timer.Stop()
	failures, maybeLocked := 0, false
	for pause := firstPoll; ; pause = min(pause*3/2, maxPoll) {
		select {
		case <-ctx.Done():
			return v, fetchedAt, failed, maybeLocked
		case <-timer.C:
		}
		look, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		v, fetchedAt, got = load(look, s, ref, ttl, c)
		if got == missing {
			var ok bool
			switch locked, ok = s.lock(look, ref, token, lease); {
			case !ok:
				// The store may have taken the lock all the same: the next look's Lock
				// finds this instance's token, and so does fill's unlock if the wait ends.
				got, maybeLocked = failed, true
			case locked:
				v, fetchedAt, got = load(look, s, ref, ttl, c)
			}
		}
		cancel()
		if got == failed {
			failures++
		} else {
			failures = 0
		}
		switch {
		case got == found, locked:
			return v, fetchedAt, got, locked
		case failures >= 2, got == failed && s.breaker.current() == stateOpen, time.Now().After(deadline):
			return v, fetchedAt, got, maybeLocked
		}
		timer.Reset(pause)
	}
}

// put stores an answer, unless it is over MaxEntry.
func (s *Shared) put(ctx context.Context, ref entryRef, ttl time.Duration, fetchedAt time.Time, payload []byte) {
	// The fetch time takes at most MaxVarintLen64 bytes in front of the payload.
	if sealOverhead+binary.MaxVarintLen64+len(payload) > s.cfg.MaxEntry {
		s.skipped.Add(1)
		return
	}
	ok, probe := s.breaker.allow()
	if !ok {
		return
	}
	s.done(probe, s.store.Set(ctx, ref.key, seal(ref.aead, ref.key, fetchedAt, payload), ttl))
}

// loadMany reads several answers in one round trip (a warninglist check's values), if the
// breaker lets it. found[i] tells whether vals[i] is a usable answer, fetched at fetched[i];
// entries over maxEntry are never read. ok is false when the store could not be read: every
// lookup then goes to MISP.
func loadMany[T any](ctx context.Context, s *Shared, refs []entryRef, ttl time.Duration, maxEntry int, c codec[T]) (vals []T, fetched []time.Time, found []bool, ok bool) {
	vals, fetched, found = make([]T, len(refs)), make([]time.Time, len(refs)), make([]bool, len(refs))
	allowed, probe := s.breaker.allow()
	if !allowed {
		s.fallbacks.Add(int64(len(refs)))
		return vals, fetched, found, false
	}
	keys := make([]string, len(refs))
	bufs := make([][]byte, len(refs))
	slab := make([]byte, len(refs)*(maxEntry+2))
	for i, r := range refs {
		keys[i] = r.key
		bufs[i] = slab[i*(maxEntry+2) : (i+1)*(maxEntry+2) : (i+1)*(maxEntry+2)]
	}
	values, err := s.store.GetMany(ctx, keys, bufs)
	s.done(probe, err)
	if err != nil || len(values) != len(refs) {
		s.fallbacks.Add(int64(len(refs)))
		return vals, fetched, found, false
	}
	for i, value := range values {
		if value == nil || len(value) > maxEntry {
			continue
		}
		at, payload, err := unseal(refs[i].aead, refs[i].key, value)
		if err != nil {
			continue
		}
		if age := time.Since(at); age >= ttl || age < -time.Minute {
			continue
		}
		if vals[i], err = c.decode(payload); err == nil {
			fetched[i], found[i] = at, true
		}
	}
	for _, f := range found {
		if f {
			s.hits.Add(1)
		} else {
			s.misses.Add(1)
		}
	}
	return vals, fetched, found, true
}

// putMany stores several answers fetched at fetchedAt in one round trip, but those over
// maxEntry.
func (s *Shared) putMany(ctx context.Context, refs []entryRef, ttl time.Duration, maxEntry int, fetchedAt time.Time, payloads [][]byte) {
	var keys []string
	var values [][]byte
	for i, p := range payloads {
		if sealOverhead+binary.MaxVarintLen64+len(p) > maxEntry {
			s.skipped.Add(1)
			continue
		}
		keys = append(keys, refs[i].key)
		values = append(values, seal(refs[i].aead, refs[i].key, fetchedAt, p))
	}
	if len(keys) == 0 {
		return
	}
	ok, probe := s.breaker.allow()
	if !ok {
		return
	}
	s.done(probe, s.store.SetMany(ctx, keys, values, ttl))
}

// lock takes ref's lock with token for lease; ok is false when the store could not be asked
// or did not answer.
func (s *Shared) lock(ctx context.Context, ref entryRef, token string, lease time.Duration) (locked, ok bool) {
	allowed, probe := s.breaker.allow()
	if !allowed {
		return false, false
	}
	locked, err := s.store.Lock(ctx, ref.lockKey(), token, lease)
	s.done(probe, err)
	return locked, err == nil
}

// unlock releases ref's lock if token holds it.
func (s *Shared) unlock(ctx context.Context, ref entryRef, token string) {
	ok, probe := s.breaker.allow()
	if !ok {
		return
	}
	s.done(probe, s.store.Unlock(ctx, ref.lockKey(), token))
}

// done counts an operation's outcome and tells the breaker.
func (s *Shared) done(probe bool, err error) {
	if err != nil {
		s.errors.Add(1)
	}
	s.breaker.done(probe, err)
}
