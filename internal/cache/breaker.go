package cache

import (
	"sync"
	"time"
)

// breakerState is the state of the shared store's circuit breaker.
type breakerState int

const (
	stateClosed   breakerState = iota // the store is used
	stateHalfOpen                     // one probe operation decides
	stateOpen                         // the store is not called
)

func (s breakerState) String() string {
	switch s {
	case stateHalfOpen:
		return "half-open"
	case stateOpen:
		return "open"
	}
	return "closed"
}

// breaker stops calling a failing shared store for a while: a Redis that is down or hung
// would otherwise cost every lookup its timeout. It opens for openFor when at least failures
// operations in a row failed over at least breakerSpan (no success in between); then one probe
// operation is let through, whose outcome closes or reopens it. The span keeps a burst of
// timeouts (concurrent operations of a CPU-starved instance, a GC pause: they fail together,
// and the next ones succeed) from turning the shared cache off, while a store that is down
// fails everything for as long as it is down. It is hand-written rather than the MISP client's
// gobreaker so that tests can drive its clock.
type breaker struct {
	failures int
	openFor  time.Duration
	now      func() time.Time
	// onChange is called (outside the lock) once per state change, with the failure that
	// caused it, if any.
	onChange func(from, to breakerState, err error)

	mu           sync.Mutex
	state        breakerState
	failed       int       // failures in a row, while closed
	firstFailure time.Time // the first of them
	openedAt     time.Time
	probing      bool // a half-open probe is in flight
}

// breakerSpan is how long failures must go on before the breaker opens.
const breakerSpan = time.Second

// allow tells whether an operation may call the store now, and whether it is the probe of a
// half-open breaker. Each allowed operation must be followed by done.
func (b *breaker) allow() (ok, probe bool) {
	b.mu.Lock()
	from := b.state
	switch b.state {
	case stateClosed:
		b.mu.Unlock()
		return true, false
	case stateOpen:
		if b.now().Sub(b.openedAt) < b.openFor {
			b.mu.Unlock()
			return false, false
		}
		b.state = stateHalfOpen
	}
	if b.probing {
		b.mu.Unlock()
		return false, false
	}
	b.probing = true
	b.mu.Unlock()
	if from != stateHalfOpen {
		b.onChange(from, stateHalfOpen, nil)
	}
	return true, true
}

// done records the outcome of an allowed operation.
func (b *breaker) done(probe bool, err error) {
	b.mu.Lock()
	from := b.state
	switch {
	case probe:
		b.probing, b.failed = false, 0
		if err == nil {
			b.state = stateClosed
		} else {
			b.state, b.openedAt = stateOpen, b.now()
		}
	case b.state != stateClosed:
		// An operation let through before the breaker opened: the probe decides now.
	case err == nil:
		b.failed = 0
	default:
		now := b.now()
		if b.failed == 0 {
			b.firstFailure = now
		}
		b.failed++
		if b.failed >= b.failures && now.Sub(b.firstFailure) >= breakerSpan {
			b.state, b.openedAt, b.failed = stateOpen, now, 0
		}
	}
	to := b.state
	b.mu.Unlock()
	if from != to {
		b.onChange(from, to, err)
	}
}

// current is the state now (an open breaker whose time is up still reads open until the next
// operation probes it).
func (b *breaker) current() breakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}
