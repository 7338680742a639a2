package misp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/misp-relay/misp-relay/internal/upstream"
)

// fail builds the client's error: detail is cleaned of the key and cut short.
func (c *Client) fail(op string, status int, kind error, detail, key string) *Error {
	return &Error{Summary: "MISP " + op + " failed", Op: op, Status: status, Kind: kind, Detail: upstream.Clean(detail, key)}
}

// scrub drops what the server said from err when the Client hides answers (HideAnswers).
// The relay's own words about an answer over a size cap stay: they say nothing of what the
// server sent but its size.
func (c *Client) scrub(err error) error {
	var e *Error
	if c.hide && errors.As(err, &e) && e.Status != 0 && !c.sizeDetail(e.Detail) && e.Detail != msgNoAttribute {
		e.Detail = ""
	}
	return err
}

// sizeDetail tells whether detail is exactly one of the client's size-cap messages.
func (c *Client) sizeDetail(detail string) bool {
	for _, e := range c.sizeErrors() {
		if detail == e.Error() {
			return true
		}
	}
	return false
}

// sizeErrors are the errors of the client's two caps.
func (c *Client) sizeErrors() [2]*sizeError {
	return [2]*sizeError{answerTooLarge(c.maxAnswer), attributeTooLarge(c.maxValue)}
}

// statusError maps a non-2xx answer to an *Error.
func (c *Client) statusError(op, key string, resp *http.Response) *Error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	code := resp.StatusCode
	e := c.fail(op, code, upstream.KindOfStatus(code), bodyDetail(raw, resp.Header.Get("Content-Type")), key)
	switch {
	case code == http.StatusBadRequest:
		e.Kind = ErrUnexpected // MISP's 400 is a relay bug, not the analyst's input
	case code == http.StatusMethodNotAllowed: // MISP 2.4's "no permission" answer
		e.Kind = ErrPermission
	case code == http.StatusNotFound:
		e.Detail = joinDetail(e.Detail, "check that API_URL points at the MISP base URL (e.g. https://misp.example)")
	case code == http.StatusTooManyRequests:
		e.RetryAfter = upstream.RetryAfter(resp.Header, "X-Rate-Limit-Reset", "Retry-After")
	case code >= 300 && code < 400 && resp.Header.Get("Location") != "":
		loc := upstream.Clean(resp.Header.Get("Location"), key)
		if strings.Contains(loc, "/users/login") {
			// MISP sends non-API requests it cannot authenticate to its login page.
			e.Kind = ErrPermission
			e.Detail = "MISP redirected to its login page: it did not accept the request as an API call with this API key; check the key and that its user may use the API"
		} else {
			e.Kind = ErrUnexpected
			e.Detail = "MISP redirected to " + strconv.Quote(loc) + "; set API_URL to the address MISP answers on (e.g. https:// rather than http://)"
		}
	}
	return e
}

// shapeError is a restSearch answer that is valid JSON but not MISP's attributes shape.
type shapeError struct{ msg string }

func (e *shapeError) Error() string { return e.msg }

// readError maps a failure while reading or decoding a 2xx body.
func (c *Client) readError(ctx context.Context, op, key string, status int, err error) *Error {
	var se *shapeError
	var syn *json.SyntaxError
	var ute *json.UnmarshalTypeError
	var big *sizeError
	switch {
	case errors.As(err, &big):
		return c.fail(op, status, ErrUnexpected, big.Error(), key)
	case errors.As(err, &se):
		return c.fail(op, status, ErrUnexpected, "MISP's answer has an unexpected shape: "+se.msg, key)
	case errors.As(err, &syn) && syn.Error() == "unexpected end of JSON input" && ctx.Err() == nil:
		return c.fail(op, status, ErrUnexpected, "MISP's answer ended early (truncated JSON)", key)
	case errors.As(err, &syn), errors.As(err, &ute):
		return c.fail(op, status, ErrUnexpected, "MISP's answer is not valid JSON: "+err.Error(), key)
	case (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) && ctx.Err() == nil:
		return c.fail(op, status, ErrUnexpected, "MISP's answer ended early (truncated JSON)", key)
	}
	return c.transportError(ctx, op, key, status, err)
}

// detailHidden is the one answer, for a MISP a caller named (HideAnswers), to every failure
// to get or read an answer: telling "connection refused" from "TLS failed" or "no such host",
// or quoting a certificate's names, would map the network behind the relay for the caller.
// The operator finds the cause in the log.
const detailHidden = "cannot reach MISP, or it did not answer (the relay's log says why)"

// transportError maps a failure to get (or finish reading) an answer, worded for the
// operator of API_URL; for a MISP a caller named, it logs that and answers detailHidden.
func (c *Client) transportError(ctx context.Context, op, key string, status int, err error) *Error {
	e := c.transportDetail(ctx, op, key, status, err)
	if !c.hide {
		return e
	}
	c.log.LogAttrs(ctx, slog.LevelWarn, "MISP call failed", slog.String("misp", c.base), slog.String("op", op), slog.String("err", e.Detail))
	hidden := c.fail(op, status, ErrUnavailable, detailHidden, key)
	var np *upstream.NotPublicError
	hidden.Final = errors.As(err, &np) // refused before connecting: a retry would be refused too
	return hidden
}

// transportDetail is transportError's mapping, with the cause in its words.
func (c *Client) transportDetail(ctx context.Context, op, key string, status int, err error) *Error {
	inner := innerText(err)
	kind, detail := ErrUnavailable, ""
	switch upstream.Classify(ctx, err) {
	case upstream.FailCertificate:
		kind = ErrUnexpected
		detail = "MISP's TLS certificate was not accepted (" + inner + "); trust its CA with MISP_CA_FILE, or set MISP_VERIFY_CERT=false only for a lab"
	case upstream.FailTLS:
		kind = ErrUnexpected
		detail = "TLS failed (" + inner + "); check http:// versus https:// in API_URL"
	case upstream.FailTimeout:
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			detail = "MISP did not answer within " + c.timeout.String()
		} else {
			detail = "MISP did not answer in time (" + inner + ")"
		}
	case upstream.FailCanceled:
		detail = "the request to MISP was canceled"
	case upstream.FailDNS:
		detail = "cannot resolve MISP's host name (" + inner + "); check API_URL"
	case upstream.FailConnection:
		detail = "cannot reach MISP (" + inner + ")"
	default:
		kind = ErrUnexpected
		detail = "calling MISP failed (" + inner + ")"
	}
	return c.fail(op, status, kind, detail, key)
}

// innerText is err's text without the "Post <url>:" prefix net/http adds.
func innerText(err error) string { return upstream.Inner(err) }

// bodyDetail describes a MISP error answer: MISP's message from its {"name","message","url"}
// JSON, else a short plain description of what came.
func bodyDetail(raw []byte, contentType string) string {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 {
		return ""
	}
	if b[0] == '{' {
		var m struct {
			Name    json.RawMessage `json:"name"`
			Message json.RawMessage `json:"message"`
		}
		if json.Unmarshal(b, &m) == nil {
			if s := rawString(m.Message); s != "" {
				return s
			}
			if s := rawString(m.Name); s != "" {
				return s
			}
		}
	}
	if b[0] == '<' || strings.Contains(strings.ToLower(contentType), "html") {
		return htmlDetail(b)
	}
	return string(b)
}

// htmlDetail says an HTML page came, with its title when there is one (e.g. "502 Bad
// Gateway" from a proxy, "Users - MISP" for the login page).
func htmlDetail(page []byte) string {
	const d = "MISP sent an HTML page instead of JSON"
	if title := upstream.HTMLTitle(page); title != "" {
		return d + " (" + upstream.Truncate(title, 80) + ")"
	}
	return d
}

func joinDetail(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// rawString returns a JSON string's value, or a number's literal text (MISP sends ids and
// timestamps as either); anything else is "".
func rawString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	case c == '-' || (c >= '0' && c <= '9'):
		var n json.Number
		if json.Unmarshal(raw, &n) == nil {
			return n.String()
		}
	}
	return ""
}
