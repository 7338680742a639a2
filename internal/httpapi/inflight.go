package httpapi

import (
	"sync"

	"github.com/misp-relay/misp-relay/internal/service"
)

// DefaultMaxInFlight is Config.MaxInFlight's default (MAX_IN_FLIGHT).
const DefaultMaxInFlight = 256

// DefaultMaxInFlightPerTenant is Config.MaxInFlightPerTenant's default for a given
// MaxInFlight: a quarter of it, at least 1, so that a tenant that holds its requests open
// leaves at least three quarters of the relay to the others.
func DefaultMaxInFlightPerTenant(maxInFlight int) int {
	return max(maxInFlight/4, 1)
}

// busyError answers a request over MaxInFlight.
type busyError struct{ own bool }

func (e busyError) Error() string {
	if e.own {
		return "The relay is busy: too many of your requests are in flight. Try again in a moment."
	}
	return "The relay is busy: too many requests are in flight. Try again in a moment."
}

// errBusy is the relay over MaxInFlight; errTenantBusy is the tenant over its share.
var (
	errBusy       error = busyError{}
	errTenantBusy error = busyError{own: true}
)

// inFlight bounds the requests that do work (those that need a token: lookups, actions, the
// health check): at most perTenant of one tenant's at once, and at most total in all. A
// request past either bound is answered at once with the busy envelope, so under a flood
// memory and goroutines stay bounded and callers learn it immediately instead of queueing
// until a timeout; and a tenant whose MISP stalls (or who sends slow bodies) fills its own
// share, not the relay. /version, /watchdog, unknown paths and wrong methods cost nothing and
// are never counted: load balancers and operators poll them exactly when the relay is busy.
//
// One mutex guards both counts, so a request takes its share and its slot together or not at
// all. held has an entry only for the tenants with a request in flight: it is bounded by total.
type inFlight struct {
	total, perTenant int

	mu   sync.Mutex
	n    int
	held map[service.TenantID]int
}

func newInFlight(total, perTenant int) *inFlight {
	return &inFlight{total: total, perTenant: perTenant, held: map[service.TenantID]int{}}
}

// enter takes one of id's share, then one of the relay's slots; it returns errTenantBusy or
// errBusy when either is used up. A nil answer must be followed by leave(id).
func (f *inFlight) enter(id service.TenantID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.held[id] >= f.perTenant:
		return errTenantBusy
	case f.n >= f.total:
		return errBusy
	}
	f.held[id]++
	f.n++
	return nil
}

// leave gives back what enter took, dropping the tenant's entry at 0 so the map holds only
// tenants in flight.
func (f *inFlight) leave(id service.TenantID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.held[id] <= 1 {
		delete(f.held, id)
		return
	}
	f.held[id]--
}

// tenants returns how many tenants have a request in flight.
func (f *inFlight) tenants() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.held)
}
