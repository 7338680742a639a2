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

// breaker stops calling a failing shared store for a while: a Redis that is down or slow
// would otherwise cost every lookup its timeout. After failures consecutive failures it opens
// for openFor; then one probe operation is let through, whose outcome closes or reopens it.
// It is hand-written rather than the MISP client's gobreaker so that tests can drive its clock.
type breaker struct {
	failures int
	openFor  time.Duration
	now      func() time.Time
	// onChange is called (outside the lock) once per state change, with the failure that
	// caused it, if any.
	onChange func(from, to breakerState, err error)

	mu       sync.Mutex
	state    breakerState
	failed   int // consecutive failures while closed
	openedAt time.Time
	probing  bool // a half-open probe is in flight
}

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
		b.probing = false
		b.failed = 0
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
		b.failed++
		if b.failed >= b.failures {
			b.state, b.openedAt, b.failed = stateOpen, b.now(), 0
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
