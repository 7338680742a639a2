package misptest

import "testing"

// New is NewServer for a test: it fails tb when the events do not load, and closes the server
// when tb ends.
func New(tb testing.TB, key string, events ...[]byte) *Server {
	tb.Helper()
	s, err := NewServer(key, events...)
	if err != nil {
		tb.Fatalf("%v", err)
		return nil
	}
	tb.Cleanup(s.Close)
	return s
}
