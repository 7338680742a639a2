package urlscan_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/misp-relay/misp-relay/internal/urlscan"
)

const (
	testKey  = "5f0e7c1a-2b3c-4d5e-8f90-a1b2c3d4e5f6"
	testURL  = "https://example.com/login?a=1&b=2"
	uuidFix  = "0196d976-07f6-7aae-8a57-aa019145f31c"
	dnsText  = "DNS Error - Could not resolve domain: The domain foo.bar could not be resolved to a valid IPv4/IPv6 address. We won't try to load it in the browser."
	noKeyMsg = `No API key supplied. Please supply a valid API key in the "api-key" HTTP header.`
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// server starts an httptest server that counts requests and serves h.
func server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func newClient(t *testing.T, cfg urlscan.Config) *urlscan.Client {
	t.Helper()
	c, err := urlscan.New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return c
}

// asError asserts err is an *urlscan.Error and returns it.
func asError(t *testing.T, err error) *urlscan.Error {
	t.Helper()
	var e *urlscan.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not *urlscan.Error", err, err)
	}
	return e
}

// errView is what the tests compare of an error: the fields plus the rendered text.
type errView struct {
	Kind       error
	Status     int
	Detail     string
	RetryAfter time.Duration
	Text       string
}

func view(e *urlscan.Error) errView {
	return errView{Kind: e.Kind, Status: e.Status, Detail: e.Detail, RetryAfter: e.RetryAfter, Text: e.Error()}
}

func TestScanRequest(t *testing.T) {
	type captured struct {
		Method, Path, Query                    string
		APIKey, ContentType, Accept, UserAgent string
		Body                                   map[string]any
	}
	tests := []struct {
		name   string
		cfg    urlscan.Config
		prefix string // appended to the server URL as BaseURL path
		want   captured
	}{
		{
			name: "defaults: unlisted, default user agent",
			want: captured{
				Body:      map[string]any{"url": testURL, "visibility": "unlisted"},
				UserAgent: urlscan.DefaultUserAgent,
			},
		},
		{
			name: "public, custom user agent",
			cfg:  urlscan.Config{Visibility: "public", UserAgent: "SOC relay 1.0"},
			want: captured{Body: map[string]any{"url": testURL, "visibility": "public"}, UserAgent: "SOC relay 1.0"},
		},
		{
			name: "private",
			cfg:  urlscan.Config{Visibility: "private"},
			want: captured{
				Body:      map[string]any{"url": testURL, "visibility": "private"},
				UserAgent: urlscan.DefaultUserAgent,
			},
		},
		{
			name:   "base URL with path prefix and trailing slash",
			cfg:    urlscan.Config{Visibility: "unlisted"},
			prefix: "/egress/urlscan/",
			want: captured{
				Path: "/egress/urlscan/api/v1/scan/",
				Body: map[string]any{"url": testURL, "visibility": "unlisted"}, UserAgent: urlscan.DefaultUserAgent,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got captured
			srv, hits := server(t, func(w http.ResponseWriter, r *http.Request) {
				raw, _ := io.ReadAll(r.Body)
				got = captured{
					Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
					APIKey: r.Header.Get("API-Key"), ContentType: r.Header.Get("Content-Type"),
					Accept: r.Header.Get("Accept"), UserAgent: r.Header.Get("User-Agent"),
				}
				if err := json.Unmarshal(raw, &got.Body); err != nil {
					t.Errorf("request body %q is not JSON: %v", raw, err)
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(fixture(t, "urlscan_scan_submit_success.json"))
			})
			cfg := tt.cfg
			cfg.BaseURL = srv.URL + tt.prefix
			if _, err := newClient(t, cfg).Scan(context.Background(), testKey, testURL); err != nil {
				t.Fatalf("Scan: %v", err)
			}
			want := tt.want
			want.Method, want.APIKey = http.MethodPost, testKey
			want.ContentType, want.Accept = "application/json", "application/json"
			if want.Path == "" {
				want.Path = "/api/v1/scan/"
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("request mismatch (-want +got):\n%s", diff)
			}
			if n := hits.Load(); n != 1 {
				t.Errorf("server saw %d requests, want 1", n)
			}
		})
	}
}

func TestScanSuccess(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		want urlscan.Result
	}{
		{
			name: "documented answer; server-enforced visibility wins",
			body: fixture(t, "urlscan_scan_submit_success.json"),
			want: urlscan.Result{UUID: uuidFix, ResultURL: "https://urlscan.io/result/" + uuidFix + "/", Visibility: "public"},
		},
		{
			name: "only uuid: result URL built from BaseURL, requested visibility",
			body: []byte(`{"uuid":"abc-123","options":{"useragent":"x"},"newKey":[1,2]}`),
			want: urlscan.Result{UUID: "abc-123", ResultURL: "{{base}}/result/abc-123/", Visibility: "unlisted"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(tt.body)
			})
			got, err := newClient(t, urlscan.Config{BaseURL: srv.URL}).Scan(context.Background(), testKey, testURL)
			if err != nil {
				t.Fatalf("Scan: %v", err)
			}
			want := tt.want
			want.ResultURL = strings.ReplaceAll(want.ResultURL, "{{base}}", srv.URL)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Result mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScanStatusMapping(t *testing.T) {
	longMsg := strings.Repeat("very long message ", 100)
	tests := []struct {
		name        string
		status      int
		contentType string
		header      map[string]string
		body        []byte
		want        errView
	}{
		{
			name: "400 DNS error (fixture)", status: 400, contentType: "application/json",
			body: fixture(t, "urlscan_error_400_dns.json"),
			want: errView{
				Kind: urlscan.ErrBadRequest, Detail: dnsText,
				Text: "urlscan.io refused the scan (HTTP 400): " + dnsText,
			},
		},
		{
			name: "400 blacklisted domain", status: 400, contentType: "application/json",
			body: []byte(`{"message":"Scan prevented ...","description":"The submitted domain is on our blacklist, we will not scan it.","status":400}`),
			want: errView{
				Kind:   urlscan.ErrBadRequest,
				Detail: "Scan prevented: The submitted domain is on our blacklist, we will not scan it.",
				Text:   "urlscan.io refused the scan (HTTP 400): Scan prevented: The submitted domain is on our blacklist, we will not scan it.",
			},
		},
		{
			name: "400 validation error", status: 400, contentType: "application/json",
			body: []byte(`{"code":"validationerror","type":"body","message":"ValidationError: \"url\" is required","errors":[{"code":"validationerror","title":"Field Validation Error","description":"\"url\" is required","status":400}]}`),
			want: errView{
				Kind: urlscan.ErrBadRequest, Detail: `ValidationError: "url" is required`,
				Text: `urlscan.io refused the scan (HTTP 400): ValidationError: "url" is required`,
			},
		},
		{
			name: "400 only errors[] entries", status: 400, contentType: "application/json",
			body: []byte(`{"status":400,"errors":[{"title":"Missing URL","detail":"The url field is empty.","status":400}]}`),
			want: errView{
				Kind: urlscan.ErrBadRequest, Detail: "Missing URL: The url field is empty.",
				Text: "urlscan.io refused the scan (HTTP 400): Missing URL: The url field is empty.",
			},
		},
		{
			name: "400 malformed API key is a permission problem", status: 400, contentType: "application/json",
			body: []byte(`{"message":"Invalid API key format","status":400}`),
			want: errView{
				Kind: urlscan.ErrPermission, Detail: "Invalid API key format",
				Text: "urlscan.io rejected the API key (HTTP 400): Invalid API key format",
			},
		},
		{
			name: "400 long message is truncated", status: 400, contentType: "application/json",
			body: []byte(`{"message":"` + longMsg + `"}`),
			want: errView{
				Kind: urlscan.ErrBadRequest, Detail: longMsg[:200] + "…",
				Text: "urlscan.io refused the scan (HTTP 400): " + longMsg[:200] + "…",
			},
		},
		{
			name: "401 no key (fixture)", status: 401, contentType: "application/json",
			body: fixture(t, "urlscan_error_401_no_key.json"),
			want: errView{
				Kind: urlscan.ErrPermission, Detail: noKeyMsg,
				Text: "urlscan.io rejected the API key (HTTP 401): " + noKeyMsg,
			},
		},
		{
			name: "403 forbidden", status: 403, contentType: "application/json",
			body: []byte(`{"message":"forbidden","status":403}`),
			want: errView{
				Kind: urlscan.ErrPermission, Detail: "forbidden",
				Text: "urlscan.io does not allow this scan with the configured API key (HTTP 403): forbidden",
			},
		},
		{
			name: "404", status: 404, contentType: "text/html", body: []byte("<html><body>nope</body></html>"),
			want: errView{
				Kind: urlscan.ErrNotFound, Detail: "Not Found",
				Text: "urlscan.io has no scan API at the configured address (HTTP 404): Not Found",
			},
		},
		{
			name: "429 with urlscan rate-limit headers", status: 429, contentType: "application/json",
			header: map[string]string{
				"X-Rate-Limit-Reset-After": "17", "X-Rate-Limit-Action": "unlisted",
				"X-Rate-Limit-Window": "day", "X-Rate-Limit-Scope": "user",
				"X-Rate-Limit-Reset": "2025-05-18T20:19:00.000Z", "X-Rate-Limit-Limit": "30", "X-Rate-Limit-Remaining": "0",
			},
			body: []byte(`{"message":"Rate limit exceeded","status":429}`),
			want: errView{
				Kind: urlscan.ErrRateLimited, RetryAfter: 17 * time.Second,
				Detail: "Rate limit exceeded (limit on unlisted scans per day reached)",
				Text:   "urlscan.io scan quota exceeded (HTTP 429): Rate limit exceeded (limit on unlisted scans per day reached); try again in 17s",
			},
		},
		{
			name: "429 with standard Retry-After only", status: 429, contentType: "text/plain",
			header: map[string]string{"Retry-After": "5"}, body: []byte("slow down"),
			want: errView{
				Kind: urlscan.ErrRateLimited, RetryAfter: 5 * time.Second, Detail: "Too Many Requests",
				Text: "urlscan.io scan quota exceeded (HTTP 429): Too Many Requests; try again in 5s",
			},
		},
		{
			name: "429 plain text with quota headers", status: 429, contentType: "text/plain",
			header: map[string]string{"X-Rate-Limit-Action": "public", "X-Rate-Limit-Window": "minute", "X-Rate-Limit-Reset-After": "0.4"},
			body:   []byte("Too many"),
			want: errView{
				Kind: urlscan.ErrRateLimited, RetryAfter: time.Second,
				Detail: "Too Many Requests (limit on public scans per minute reached)",
				Text:   "urlscan.io scan quota exceeded (HTTP 429): Too Many Requests (limit on public scans per minute reached); try again in 1s",
			},
		},
		{
			name: "429 with unusable reset header", status: 429, contentType: "application/json",
			header: map[string]string{"X-Rate-Limit-Reset-After": "soon"},
			body:   []byte(`{"message":"Rate limit exceeded","status":429}`),
			want: errView{
				Kind: urlscan.ErrRateLimited, Detail: "Rate limit exceeded",
				Text: "urlscan.io scan quota exceeded (HTTP 429): Rate limit exceeded",
			},
		},
		{
			name: "500 text/plain", status: 500, contentType: "text/plain", body: []byte("Internal Server Error\n"),
			want: errView{
				Kind: urlscan.ErrServer, Detail: "Internal Server Error",
				Text: "urlscan.io failed with an internal error (HTTP 500): Internal Server Error",
			},
		},
		{
			name: "502 HTML is not dumped", status: 502, contentType: "text/html",
			body: []byte("<html><head><title>502 Bad Gateway</title></head><body>" + strings.Repeat("<p>cloudflare</p>", 200) + "</body></html>"),
			want: errView{
				Kind: urlscan.ErrUnavailable, Detail: "Bad Gateway",
				Text: "urlscan.io is unavailable (HTTP 502): Bad Gateway",
			},
		},
		{
			name: "503 empty body", status: 503,
			want: errView{
				Kind: urlscan.ErrUnavailable, Detail: "Service Unavailable",
				Text: "urlscan.io is unavailable (HTTP 503): Service Unavailable",
			},
		},
		{
			name: "504 JSON", status: 504, contentType: "application/json", body: []byte(`{"message":"upstream timed out"}`),
			want: errView{
				Kind: urlscan.ErrUnavailable, Detail: "upstream timed out",
				Text: "urlscan.io is unavailable (HTTP 504): upstream timed out",
			},
		},
		{
			name: "418 is unexpected", status: 418, contentType: "text/plain", body: []byte("short and stout"),
			want: errView{
				Kind: urlscan.ErrUnexpected, Detail: "I'm a teapot",
				Text: "urlscan.io gave an unexpected answer (HTTP 418): I'm a teapot",
			},
		},
		{
			name: "200 without uuid", status: 200, contentType: "application/json",
			body: []byte(`{"message":"Submission successful","visibility":"unlisted"}`),
			want: errView{
				Kind: urlscan.ErrUnexpected, Detail: "the answer has no scan id (uuid); the scan may have been submitted",
				Text: "urlscan.io gave an unexpected answer (HTTP 200): the answer has no scan id (uuid); the scan may have been submitted",
			},
		},
		{
			name: "200 empty object", status: 200, contentType: "application/json", body: []byte(`{}`),
			want: errView{
				Kind: urlscan.ErrUnexpected, Detail: "the answer has no scan id (uuid); the scan may have been submitted",
				Text: "urlscan.io gave an unexpected answer (HTTP 200): the answer has no scan id (uuid); the scan may have been submitted",
			},
		},
		{
			name: "200 truncated JSON", status: 200, contentType: "application/json",
			body: []byte(`{"message":"Submission successful","uuid":"0196d976-07f6`),
			want: errView{
				Kind:   urlscan.ErrUnexpected,
				Detail: "the answer is not valid JSON (Content-Type application/json); the scan may have been submitted",
				Text:   "urlscan.io gave an unexpected answer (HTTP 200): the answer is not valid JSON (Content-Type application/json); the scan may have been submitted",
			},
		},
		{
			name: "200 HTML", status: 200, contentType: "text/html; charset=utf-8", body: []byte("<html>captive portal</html>"),
			want: errView{
				Kind:   urlscan.ErrUnexpected,
				Detail: "the answer is not valid JSON (Content-Type text/html; charset=utf-8); the scan may have been submitted",
				Text:   "urlscan.io gave an unexpected answer (HTTP 200): the answer is not valid JSON (Content-Type text/html; charset=utf-8); the scan may have been submitted",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, hits := server(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				if tt.contentType != "" {
					w.Header().Set("Content-Type", tt.contentType)
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write(tt.body)
			})
			res, err := newClient(t, urlscan.Config{BaseURL: srv.URL}).Scan(context.Background(), testKey, testURL)
			if err == nil {
				t.Fatalf("Scan returned %+v, want an error", res)
			}
			if !errors.Is(err, tt.want.Kind) {
				t.Errorf("errors.Is(err, %v) = false; err = %v", tt.want.Kind, err)
			}
			want := tt.want
			want.Status = tt.status
			if diff := cmp.Diff(want, view(asError(t, err)), cmpopts.EquateErrors()); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
			if n := hits.Load(); n != 1 {
				t.Errorf("server saw %d requests, want exactly 1 (no retries)", n)
			}
		})
	}
}

func TestScanRejectsUnusableKeyWithoutRequest(t *testing.T) {
	tests := []struct {
		name, key, detail string
	}{
		{"empty", "", "the API key is empty"},
		{"newline only", "\n", "the API key contains characters that cannot be sent in an HTTP header"},
		{"trailing newline", testKey + "\n", "the API key contains characters that cannot be sent in an HTTP header"},
		{"header injection", "abc\r\nX-Injected: 1", "the API key contains characters that cannot be sent in an HTTP header"},
		{"non-ASCII", "ключ-123", "the API key contains characters that cannot be sent in an HTTP header"},
		{"space", "abc def", "the API key contains characters that cannot be sent in an HTTP header"},
		{"NUL", "abc\x00def", "the API key contains characters that cannot be sent in an HTTP header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, hits := server(t, func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write(fixture(t, "urlscan_scan_submit_success.json"))
			})
			_, err := newClient(t, urlscan.Config{BaseURL: srv.URL}).Scan(context.Background(), tt.key, testURL)
			if !errors.Is(err, urlscan.ErrPermission) {
				t.Fatalf("err = %v, want ErrPermission", err)
			}
			want := errView{
				Kind: urlscan.ErrPermission, Detail: tt.detail,
				Text: "no usable urlscan.io API key: " + tt.detail,
			}
			if diff := cmp.Diff(want, view(asError(t, err)), cmpopts.EquateErrors()); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
			if k := strings.TrimSpace(tt.key); k != "" && strings.Contains(err.Error(), k) {
				t.Errorf("error text %q contains the key", err.Error())
			}
			if n := hits.Load(); n != 0 {
				t.Errorf("server saw %d requests, want none", n)
			}
		})
	}
}

func TestScanRejectsEmptyURLWithoutRequest(t *testing.T) {
	srv, hits := server(t, func(w http.ResponseWriter, r *http.Request) {})
	_, err := newClient(t, urlscan.Config{BaseURL: srv.URL}).Scan(context.Background(), testKey, "  ")
	if !errors.Is(err, urlscan.ErrBadRequest) {
		t.Fatalf("err = %v, want ErrBadRequest", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("server saw %d requests, want none", n)
	}
}

func TestScanKeyNeverInErrorText(t *testing.T) {
	echo := func(s string) string { return strings.ReplaceAll(s, "KEY", testKey) }
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		wantKind    error
	}{
		{
			"400 message and description", 400, "application/json",
			`{"message":"Invalid API key format: KEY","description":"We got KEY, which is wrong"}`, urlscan.ErrPermission,
		},
		{
			"401 errors[] only", 401, "application/json",
			`{"errors":[{"title":"Unknown key KEY","detail":"KEY is not registered"}]}`, urlscan.ErrPermission,
		},
		{"403", 403, "application/json", `{"message":"key KEY may not run private scans"}`, urlscan.ErrPermission},
		{"429", 429, "application/json", `{"message":"KEY exceeded its quota"}`, urlscan.ErrRateLimited},
		{"500 JSON", 500, "application/json", `{"message":"crash while handling KEY"}`, urlscan.ErrServer},
		{
			"key at the truncation boundary", 400, "application/json",
			`{"message":"` + strings.Repeat("x", 195) + `KEY"}`, urlscan.ErrBadRequest,
		},
		{
			"key in JSON unicode escapes", 400, "application/json",
			`{"message":"` + jsonEscapeAll(testKey) + `"}`, urlscan.ErrBadRequest,
		},
		{"200 non-JSON echoing key in Content-Type", 200, "text/html; key=KEY", `<html>KEY</html>`, urlscan.ErrUnexpected},
		{"418 plain text echo", 418, "text/plain", `your key is KEY`, urlscan.ErrUnexpected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", echo(tt.contentType))
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, echo(tt.body))
			})
			_, err := newClient(t, urlscan.Config{BaseURL: srv.URL}).Scan(context.Background(), testKey, testURL)
			if !errors.Is(err, tt.wantKind) {
				t.Fatalf("err = %v, want %v", err, tt.wantKind)
			}
			e := asError(t, err)
			for _, s := range []string{err.Error(), e.Detail} {
				if strings.Contains(s, testKey) {
					t.Errorf("error text contains the API key: %q", s)
				}
				// Even a fragment long enough to be recognisable must not survive truncation.
				if strings.Contains(s, testKey[:12]) {
					t.Errorf("error text contains part of the API key: %q", s)
				}
			}
		})
	}
}

// jsonEscapeAll writes s as \uXXXX escapes, so the key only appears after JSON decoding.
func jsonEscapeAll(s string) string {
	var b strings.Builder
	for _, r := range s {
		fmt.Fprintf(&b, `\u%04x`, r)
	}
	return b.String()
}

// hungServer answers nothing until the client gives up (or the test ends). The channel
// receives a value when a request arrives.
func hungServer(t *testing.T, writeHead bool) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		if writeHead {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "500")
			w.WriteHeader(200)
			_, _ = io.WriteString(w, `{"message":"Submission successful",`)
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	// Cleanups run last-in first-out: release the handler, then close the server.
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	return srv, arrived
}

func TestScanTimeouts(t *testing.T) {
	tests := []struct {
		name       string
		writeHead  bool
		timeout    time.Duration
		ctx        func() (context.Context, context.CancelFunc)
		cancel     bool // the caller cancels once urlscan.io has the request
		wantDetail string
	}{
		{
			name: "no answer within Timeout", timeout: 100 * time.Millisecond,
			ctx:        func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			wantDetail: "no answer within 100ms; the scan may have been submitted",
		},
		{
			name: "answer stalls mid-body", writeHead: true, timeout: 100 * time.Millisecond,
			ctx:        func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			wantDetail: "the answer did not arrive completely within 100ms; the scan may have been submitted",
		},
		{
			name: "caller's deadline is shorter", timeout: time.Minute,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 100*time.Millisecond)
			},
			wantDetail: "no answer in time; the scan may have been submitted",
		},
		{
			name: "caller cancels", timeout: time.Minute, cancel: true,
			ctx:        func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			wantDetail: "the request was cancelled",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, arrived := hungServer(t, tt.writeHead)
			c := newClient(t, urlscan.Config{BaseURL: srv.URL, Timeout: tt.timeout})
			ctx, cancel := tt.ctx()
			defer cancel()
			if tt.cancel {
				go func() {
					<-arrived
					cancel()
				}()
			}
			start := time.Now()
			_, err := c.Scan(ctx, testKey, testURL)
			if elapsed := time.Since(start); elapsed > 3*time.Second {
				t.Errorf("Scan took %s; the timeout did not apply", elapsed)
			}
			if !errors.Is(err, urlscan.ErrUnavailable) {
				t.Fatalf("err = %v, want ErrUnavailable", err)
			}
			want := errView{
				Kind: urlscan.ErrUnavailable, Detail: tt.wantDetail,
				Text: "urlscan.io is unavailable: " + tt.wantDetail,
			}
			if diff := cmp.Diff(want, view(asError(t, err)), cmpopts.EquateErrors()); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScanClosedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()

	_, err = newClient(t, urlscan.Config{BaseURL: "http://" + addr}).Scan(context.Background(), testKey, testURL)
	if !errors.Is(err, urlscan.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	e := asError(t, err)
	if e.Status != 0 || e.Detail == "" || strings.HasPrefix(e.Detail, "Post ") {
		t.Errorf("error = %+v; want Status 0 and a detail without the Post prefix", e)
	}
	if !strings.HasPrefix(err.Error(), "urlscan.io is unavailable: ") {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestScanUntrustedTLSIsUnexpected(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshake is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)

	_, err := newClient(t, urlscan.Config{BaseURL: srv.URL}).Scan(context.Background(), testKey, testURL)
	if !errors.Is(err, urlscan.ErrUnexpected) {
		t.Fatalf("err = %v, want ErrUnexpected", err)
	}
	if e := asError(t, err); e.Status != 0 || !strings.HasPrefix(e.Detail, "unable to verify its TLS certificate: ") {
		t.Errorf("error = %+v", e)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("handler saw %d requests over an untrusted connection", n)
	}
}

// A redirect is not followed: Go would forward the API-Key header to the new host, and a
// 307/308 would submit the scan a second time.
func TestScanDoesNotFollowRedirects(t *testing.T) {
	elsewhere, elsewhereHits := server(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(fixture(t, "urlscan_scan_submit_success.json"))
	})
	for _, status := range []int{301, 302, 307, 308} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			srv, hits := server(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, elsewhere.URL+"/api/v1/scan/", status)
			})
			_, err := newClient(t, urlscan.Config{BaseURL: srv.URL}).Scan(context.Background(), testKey, testURL)
			if !errors.Is(err, urlscan.ErrUnexpected) {
				t.Fatalf("err = %v, want ErrUnexpected", err)
			}
			if e := asError(t, err); e.Status != status {
				t.Errorf("Status = %d, want %d", e.Status, status)
			}
			if n := hits.Load(); n != 1 {
				t.Errorf("server saw %d requests, want 1", n)
			}
		})
	}
	if n := elsewhereHits.Load(); n != 0 {
		t.Errorf("redirect target saw %d requests, want none", n)
	}
}

func TestScanConcurrent(t *testing.T) {
	srv, hits := server(t, func(w http.ResponseWriter, r *http.Request) {
		var body struct{ URL string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		_ = json.NewEncoder(w).Encode(map[string]string{"uuid": "id-" + body.URL})
	})
	c := newClient(t, urlscan.Config{BaseURL: srv.URL})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			u := "https://example.com/" + string(rune('a'+i))
			res, err := c.Scan(context.Background(), testKey, u)
			if err != nil || res.UUID != "id-"+u {
				t.Errorf("Scan(%q) = %+v, %v", u, res, err)
			}
		})
	}
	wg.Wait()
	if n := hits.Load(); n != 8 {
		t.Errorf("server saw %d requests, want 8", n)
	}
}

func TestNew(t *testing.T) {
	valid := []urlscan.Config{
		{},
		{BaseURL: "https://urlscan.io/", Visibility: "public", Timeout: time.Second, UserAgent: "relay/1.0 (SOC)"},
		{BaseURL: "http://proxy.internal:8080/urlscan", Visibility: "private"},
		{Visibility: "unlisted"},
	}
	for _, cfg := range valid {
		if _, err := urlscan.New(cfg); err != nil {
			t.Errorf("New(%+v) = %v, want success", cfg, err)
		}
	}
	invalid := []struct {
		name string
		cfg  urlscan.Config
	}{
		{"unknown visibility", urlscan.Config{Visibility: "secret"}},
		{"visibility is case-sensitive", urlscan.Config{Visibility: "Public"}},
		{"legacy public flag", urlscan.Config{Visibility: "on"}},
		{"no scheme", urlscan.Config{BaseURL: "urlscan.io"}},
		{"ftp scheme", urlscan.Config{BaseURL: "ftp://urlscan.io"}},
		{"no host", urlscan.Config{BaseURL: "https://"}},
		{"credentials in URL", urlscan.Config{BaseURL: "https://user:pw@urlscan.io"}},
		{"query in URL", urlscan.Config{BaseURL: "https://urlscan.io/?x=1"}},
		{"unparsable URL", urlscan.Config{BaseURL: "https://urlscan.io/%zz"}},
		{"negative timeout", urlscan.Config{Timeout: -time.Second}},
		{"user agent with newline", urlscan.Config{UserAgent: "relay\r\nX-Evil: 1"}},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := urlscan.New(tt.cfg); err == nil {
				t.Errorf("New(%+v) = %v, nil; want an error", tt.cfg, c)
			}
		})
	}
}

// TestFixtures checks that the files in testdata are still the unchanged copies their README
// lists (by SHA-256), and that they decode as expected.
func TestFixtures(t *testing.T) {
	files := []struct {
		name   string
		sha256 string
		status int
		want   error
	}{
		{"urlscan_scan_submit_success.json", "ffae1d131ae0dcccec326784ead46f274d5c9803d5affaf9a839139c93d050f8", 200, nil},
		{"urlscan_error_400_dns.json", "abf05ad0aeb6d21b8f2d8e5c17603564f28d22663313f566a1bca446256c402c", 400, urlscan.ErrBadRequest},
		{"urlscan_error_401_no_key.json", "c60974b5219fa2bd1b7287eef174955c3dd76340aae11028691d1e1b0a1aed05", 401, urlscan.ErrPermission},
	}
	readme, err := os.ReadFile(filepath.Join("testdata", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			body := fixture(t, f.name)
			if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != f.sha256 {
				t.Errorf("testdata/%s has changed: sha256 %x, its source's is %s; copy it again", f.name, sum, f.sha256)
			}
			if !strings.Contains(string(readme), f.sha256) {
				t.Errorf("testdata/README.md does not list the sha256 of %s", f.name)
			}
			srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(f.status)
				_, _ = w.Write(body)
			})
			res, err := newClient(t, urlscan.Config{BaseURL: srv.URL}).Scan(context.Background(), testKey, testURL)
			switch {
			case f.want == nil && (err != nil || res.UUID == ""):
				t.Errorf("Scan = %+v, %v; want a scan id", res, err)
			case f.want != nil && !errors.Is(err, f.want):
				t.Errorf("err = %v, want %v", err, f.want)
			case f.want != nil && asError(t, err).Detail == "":
				t.Errorf("err = %v has no detail from the fixture", err)
			}
		})
	}
}
