// Package testkit holds the helpers the relay's tests share, so each exists once: the
// environment of a test relay, log capture and reading, JWT signing and a fake JWKS endpoint,
// the contract check against api/openapi.yaml, the secret check, gzip bombs and what a call
// allocates, and ways to wait for an event instead of sleeping (readiness polls, in-memory
// transports and a clock step for testing/synctest bubbles).
//
// Import it only from _test.go files: it depends on package testing.
package testkit

import (
	"bytes"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// WaitTimeout bounds every wait of this package for something a test caused. It is a failure
// bound, never a pause: waits end as soon as what they wait for happens, and run out only when
// a test is broken. It is generous because the tests run on busy 2-core machines.
const WaitTimeout = 30 * time.Second

// Env returns a getenv that reads m (nil: nothing is set).
func Env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// SyncBuffer is a bytes.Buffer that several goroutines may write to: a log handler's output,
// a child process's stdout and stderr.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// NoSecrets fails tb when any of secrets appears in text, typically every response body and
// log line of a test joined: the relay must never log or answer a secret (a JWT, SECRET_KEY,
// a MISP or urlscan.io key). Only the start of a secret is shown.
func NoSecrets(tb testing.TB, text string, secrets ...string) {
	tb.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			tb.Errorf("a secret (%.6s…) appears in a response or a log line", s)
		}
	}
}

// AllocatedDuring returns the bytes the process allocated while f ran: what a decoder costs
// on a hostile answer, measured without timing. Other goroutines' allocations count too
// (a test's fake server's, for one), so bounds are set with room to spare, and tests that
// use it are not parallel.
func AllocatedDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
