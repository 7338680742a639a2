package misp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/misp-relay/misp-relay/internal/reqlog"
)

// errServerSide marks a 5xx answer as a failure for the circuit breaker while still handing
// the response on, so its status and body are mapped as usual.
var errServerSide = errors.New("MISP answered 5xx")

func newBreaker(name string, failures uint32, cooldown time.Duration) *gobreaker.CircuitBreaker[*http.Response] {
	return gobreaker.NewCircuitBreaker[*http.Response](gobreaker.Settings{ //nolint:bodyclose // passes responses through to do's caller, which closes them
		Name:        name,
		MaxRequests: 1, // one probe call when half-open
		Timeout:     cooldown,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		// A caller that gave up says nothing about MISP's health.
		IsSuccessful: func(err error) bool { return err == nil || errors.Is(err, context.Canceled) },
	})
}

// begin waits for one of the MaxConcurrent slots towards this MISP, then bounds the operation
// by Timeout: the returned ctx carries it, and done releases both. A slot is held for a whole
// operation (all pages of a search, the body read included), and the operation's Timeout
// starts only once it has one: time spent queueing behind other lookups is not charged to
// MISP, nor counted by the circuit breaker.
func (c *Client) begin(ctx context.Context, op, key string) (_ context.Context, done func(), err error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, c.transportError(ctx, op, key, 0, ctx.Err())
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	return ctx, func() {
		cancel()
		<-c.sem
	}, nil
}

// do sends one request and returns the response when MISP answered 2xx. Any other outcome
// is an *Error, with the response body already read and closed.
func (c *Client) do(ctx context.Context, op, key, method, path string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, c.fail(op, 0, ErrUnexpected, "cannot build the request: "+innerText(err), key)
	}
	req.Header.Set("Authorization", key)
	req.Header.Set("Accept", "application/json")
	// Sent on every call, GET included: without it MISP does not parse a JSON body, drops
	// every filter and returns the whole dataset (MISP issue #8841).
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", c.userAgent)

	start := time.Now()
	reqlog.From(ctx).AddUpstream()
	resp, err := c.breaker.Execute(func() (*http.Response, error) {
		resp, err := c.hc.Do(req)
		if err == nil && resp.StatusCode >= 500 {
			return resp, errServerSide
		}
		return resp, err
	})
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	c.onCall(op, status, time.Since(start))
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		e := c.fail(op, 0, ErrUnavailable, fmt.Sprintf(
			"MISP failed repeatedly; the relay stops calling it for %s and then tries again", c.cooldown), key)
		e.Final = true
		return nil, e
	case errors.Is(err, errServerSide):
		err = nil
	}
	if err != nil {
		return nil, c.transportError(ctx, op, key, 0, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer closeBody(resp)
	return nil, c.statusError(op, key, resp)
}

// doIdempotent is do with one retry, after a short random pause (or MISP's 429 reset when it
// is short), for answers that mean "try again": no answer, 502/503/504, or a rate limit. Only
// for calls that change nothing in MISP.
func (c *Client) doIdempotent(ctx context.Context, op, key, method, path string, body []byte) (*http.Response, error) {
	resp, err := c.do(ctx, op, key, method, path, body)
	wait, ok := retryWait(ctx, err)
	if !ok {
		return resp, err
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, err
	case <-t.C:
	}
	return c.do(ctx, op, key, method, path, body)
}

// retryWait says whether err is worth one retry and after how long.
func retryWait(ctx context.Context, err error) (time.Duration, bool) {
	var e *Error
	if err == nil || ctx.Err() != nil || !errors.As(err, &e) || e.Final {
		return 0, false
	}
	// Jitter spreads the retries of many concurrent lookups that failed together.
	jitter := 50*time.Millisecond + rand.N(200*time.Millisecond) //nolint:gosec // not security-sensitive
	switch {
	case errors.Is(e.Kind, ErrRateLimited) && e.RetryAfter <= maxRetryWait:
		return e.RetryAfter + jitter, true
	case errors.Is(e.Kind, ErrUnavailable):
		return jitter, true
	}
	return 0, false
}

// call does one request whose JSON answer is small (a few hundred bytes) and decodes it into
// out, a pointer to a struct. It returns the HTTP status for errors about the body.
//
// It is never retried: a sighting whose answer was lost would be added twice, and a health
// probe costs one MISP call at most.
func (c *Client) call(ctx context.Context, op, key, method, path string, body []byte, out any) (int, error) {
	resp, err := c.do(ctx, op, key, method, path, body)
	if err != nil {
		return 0, err
	}
	defer closeBody(resp)
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxSmallBody))
	if err != nil {
		return resp.StatusCode, c.readError(ctx, op, key, resp.StatusCode, err)
	}
	b := bytes.TrimSpace(raw)
	switch {
	case len(b) == 0:
		err = c.fail(op, resp.StatusCode, ErrUnexpected, "MISP sent an empty answer", key)
	case b[0] == '<':
		err = c.fail(op, resp.StatusCode, ErrUnexpected, htmlDetail(b), key)
	case b[0] != '{':
		if !json.Valid(b) {
			err = c.readError(ctx, op, key, resp.StatusCode, json.Unmarshal(b, new(any)))
		} else {
			err = c.readError(ctx, op, key, resp.StatusCode, &shapeError{"the answer is not a JSON object"})
		}
	default:
		if uerr := json.Unmarshal(b, out); uerr != nil {
			err = c.readError(ctx, op, key, resp.StatusCode, uerr)
		}
	}
	if err != nil {
		return resp.StatusCode, err
	}
	return resp.StatusCode, nil
}

// closeBody closes a response body. Closing before the end drops the connection instead of
// returning it to the pool, which is what an early stop wants; the error tells nothing more.
func closeBody(resp *http.Response) { _ = resp.Body.Close() }

// encodeJSON encodes v without HTML escaping, so values like URLs with '&' go out verbatim.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
