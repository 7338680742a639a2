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
// would otherwise cost every lookup its timeout. It opens for openFor when, within a window
// of breakerWindow, at least failures operations failed and they are at least half of the
// window's operations; then one probe operation is let through, whose outcome closes or
// reopens it. The ratio keeps a burst of timeouts among many successes (a CPU-starved
// instance, a GC pause) from turning the shared cache off: a store that is down fails
// every operation. It is hand-written rather than the MISP client's gobreaker so that tests
// can drive its clock.
type breaker struct {
	failures int
	openFor  time.Duration
	now      func() time.Time
	// onChange is called (outside the lock) once per state change, with the failure that
	// caused it, if any.
	onChange func(from, to breakerState, err error)

	mu          sync.Mutex
	state       breakerState
	windowStart time.Time
	ops, failed int // operations and failures of the window, while closed
	openedAt    time.Time
	probing     bool // a half-open probe is in flight
}

// breakerWindow is the span over which failures are counted.
const breakerWindow = 10 * time.Second

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
		if err == nil {
			b.state, b.windowStart, b.ops, b.failed = stateClosed, b.now(), 0, 0
		} else {
			b.state, b.openedAt = stateOpen, b.now()
		}
	case b.state != stateClosed:
		// An operation let through before the breaker opened: the probe decides now.
	default:
		if now := b.now(); now.Sub(b.windowStart) >= breakerWindow {
			b.windowStart, b.ops, b.failed = now, 0, 0
		}
		b.ops++
		if err != nil {
			b.failed++
		}
		if b.failed >= b.failures && 2*b.failed >= b.ops {
			b.state, b.openedAt = stateOpen, b.now()
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
