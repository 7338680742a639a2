package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/gen"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/reqlog"
	"github.com/misp-relay/misp-relay/internal/service"
	"github.com/misp-relay/misp-relay/internal/upstream"
)

// payloadError words a body problem as the contract does.
func payloadError(dict string) error {
	return &service.Error{Kind: service.KindInvalid, Msg: invalidPayloadPrefix + dict}
}

// healthCheckError is /watchdog called without its Health-Check header.
type healthCheckError struct{}

func (healthCheckError) Error() string { return "Invalid Health Check" }

var errHealthCheck error = healthCheckError{}

const somethingWentWrong = "Something went wrong."

// codeOf maps every failure the relay knows to the contract's error code. This is the only
// place where errors become codes: the validator, the handlers (the core's failures) and the
// recoverer all end here.
func codeOf(err error) (gen.ErrorCode, string) {
	var (
		ae *auth.Error
		ce *service.Error
		ue *upstream.Error
		se *service.SourceError
	)
	switch {
	case errors.As(err, &se):
		// One source of several failed: its own code, and the message names it.
		code, msg := codeOf(se.Err)
		return code, se.Source + ": " + msg
	case errors.Is(err, errHealthCheck):
		return gen.ErrorCodeHealthCheckFailed, err.Error()
	case errors.As(err, new(busyError)):
		return gen.ErrorCodeServiceUnavailable, err.Error()
	case errors.As(err, &ae):
		return gen.ErrorCodeAuthorizationError, ae.Error()
	case errors.As(err, &ce) && ce.Kind == service.KindInvalid:
		return gen.ErrorCodeInvalidArgument, ce.Error()
	case errors.As(err, &ce) && ce.Kind == service.KindConfig:
		return gen.ErrorCodeUnknown, ce.Error()
	case errors.Is(err, intel.ErrReadOnly):
		return gen.ErrorCodeInvalidArgument, "Reporting to MISP is not available: this relay reads a MISP feed, not a MISP server."
	case errors.As(err, &ue):
		return upstreamCode(ue.Kind), ue.Error()
	}
	return gen.ErrorCodeUnknown, somethingWentWrong
}

// upstreamCode maps the kinds of failure of the MISP and urlscan.io clients.
func upstreamCode(kind error) gen.ErrorCode {
	switch {
	case errors.Is(kind, upstream.ErrPermission):
		return gen.ErrorCodePermissionDenied
	case errors.Is(kind, upstream.ErrNotFound):
		return gen.ErrorCodeNotFound
	case errors.Is(kind, upstream.ErrRateLimited):
		return gen.ErrorCodeTooManyRequests
	case errors.Is(kind, upstream.ErrServer):
		return gen.ErrorCodeInternalError
	case errors.Is(kind, upstream.ErrUnavailable):
		return gen.ErrorCodeServiceUnavailable
	case errors.Is(kind, upstream.ErrBadRequest):
		return gen.ErrorCodeBadRequest
	}
	return gen.ErrorCodeUnknown
}

// errorsOf turns failures into the envelope's error list, dropping repeats (twenty lookups
// failing because MISP is down are one error for the analyst), and records the first code as
// the request's outcome for the log line and the metrics.
func errorsOf(ctx context.Context, errs ...error) *gen.Errors {
	var out gen.Errors
	for _, err := range errs {
		if err == nil {
			continue
		}
		code, msg := codeOf(err)
		e := gen.Error{Type: gen.Fatal, Code: code, Message: msg}
		dup := false
		for _, have := range out {
			if have == e {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil
	}
	reqlog.From(ctx).SetOutcome(string(out[0].Code))
	return &out
}

// envelope is the body of an answer that is only errors.
type envelope struct {
	Errors *gen.Errors `json:"errors"`
}

// writeEnvelope answers err as the contract's HTTP 200 error envelope.
func writeEnvelope(w http.ResponseWriter, r *http.Request, err error) {
	writeJSON(w, http.StatusOK, envelope{Errors: errorsOf(r.Context(), err)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing useful to do then
}

// logUnexpected records a failure that has no mapping, since its details never reach the caller.
func logUnexpected(log *slog.Logger, r *http.Request, err error) {
	if code, _ := codeOf(err); code == gen.ErrorCodeUnknown {
		log.ErrorContext(r.Context(), "unexpected error", "path", r.URL.Path, "err", err)
	}
}
