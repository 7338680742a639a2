// Package inteltest has a test double of intel.Backend: a struct of function fields, so a
// test states only the behaviour it needs (a panic, a failure for one value, fixed events).
// Tests of HTTP behaviour use the fake MISP server of package misptest instead.
package inteltest

import (
	"context"
	"sync/atomic"

	"github.com/misp-relay/misp-relay/internal/intel"
)

// Backend is an intel.Backend whose methods call the fields that are set. An unset SearchFn
// finds nothing, an unset PingFn and AddSightingFn succeed.
type Backend struct {
	SearchFn      func(ctx context.Context, key string, q intel.Query) ([]intel.Event, error)
	PingFn        func(ctx context.Context, key string) error
	AddSightingFn func(ctx context.Context, key, value string, typ intel.SightingType, source string) error
	ReadOnly      bool // Writable answers !ReadOnly
	LookupCalls   atomic.Int64
}

var _ intel.Backend = (*Backend)(nil)

// Lookup calls SearchFn for each query, in order; LookupCalls counts the calls to Lookup.
func (b *Backend) Lookup(ctx context.Context, key string, qs []intel.Query) []intel.Result {
	b.LookupCalls.Add(1)
	out := make([]intel.Result, len(qs))
	for i, q := range qs {
		if b.SearchFn != nil {
			out[i].Events, out[i].Err = b.SearchFn(ctx, key, q)
		}
	}
	return out
}

// Ping calls PingFn.
func (b *Backend) Ping(ctx context.Context, key string) error {
	if b.PingFn == nil {
		return nil
	}
	return b.PingFn(ctx, key)
}

// AddSighting calls AddSightingFn.
func (b *Backend) AddSighting(ctx context.Context, key, value string, typ intel.SightingType, source string) error {
	if b.AddSightingFn == nil {
		return nil
	}
	return b.AddSightingFn(ctx, key, value, typ, source)
}

// Writable is !ReadOnly.
func (b *Backend) Writable() bool { return !b.ReadOnly }
