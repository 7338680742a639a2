package service

import "fmt"

// Kind is what kind of failure the core reports. The core returns failures as values (its
// own Error, upstream.Error from the MISP and urlscan.io clients, intel.ErrReadOnly,
// SourceError around any of them); the HTTP adapter alone maps them to the contract's
// envelope and codes.
type Kind int

// The kinds of Error.
const (
	// KindInvalid is a request the relay refuses as given (an unsupported observable for an
	// action, an unknown action or tile).
	KindInvalid Kind = iota + 1
	// KindConfig is a relay setting that keeps the request from being served (no API_URL).
	KindConfig
)

// Error is a failure of the core, said to the caller as Msg.
type Error struct {
	Kind Kind
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Invalidf is a KindInvalid error.
func Invalidf(format string, args ...any) error {
	return &Error{Kind: KindInvalid, Msg: fmt.Sprintf(format, args...)}
}

// ConfigError is a relay setting that keeps a request from being served, said to the caller
// as msg (code "unknown"): also for Config.Sources' errors that are not the token's fault.
func ConfigError(msg string) error { return &Error{Kind: KindConfig, Msg: msg} }
