package misp_test

import (
	"context"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

// call runs one client operation; the error tests run each row through the right one.
type call struct {
	op string
	do func(*misp.Client) error
}

var (
	searchCall = call{"search", func(c *misp.Client) error {
		_, err := c.Search(context.Background(), testKey, intel.Query{Value: "evil.example", Types: []string{"domain"}, Limit: 5})
		return err
	}}
	versionCall = call{"version check", func(c *misp.Client) error {
		_, err := c.Version(context.Background(), testKey)
		return err
	}}
	sightingCall = call{"add sighting", func(c *misp.Client) error {
		return c.AddSighting(context.Background(), testKey, "evil.example", intel.Sighting, "XDR")
	}}
)

func TestErrorMapping(t *testing.T) {
	const badGateway = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
	tests := []struct {
		name       string
		call       call
		answer     misptest.Answer
		kind       error
		status     int
		detail     string // substring of Detail
		retryAfter time.Duration
	}{
		{
			name: "403 bad key", call: searchCall, kind: misp.ErrPermission, status: 403,
			answer: misptest.Raw(403, "application/json", misptest.ErrorBody("Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header.", "/attributes/restSearch")),
			detail: "Authentication failed. Please make sure",
		},
		{
			name: "401", call: versionCall, kind: misp.ErrPermission, status: 401,
			answer: misptest.Raw(401, "application/json", `{"message":"Unauthorized"}`), detail: "Unauthorized",
		},
		{
			name: "403 no permission on sightings", call: sightingCall, kind: misp.ErrPermission, status: 403,
			answer: misptest.Raw(403, "application/json", misptest.ErrorBody("You do not have permission to use this functionality.", "/sightings/add")),
			detail: "You do not have permission",
		},
		{
			name: "405 old MISP permission", call: searchCall, kind: misp.ErrPermission, status: 405,
			answer: misptest.Raw(405, "application/json", misptest.ErrorBody("You do not have permission to use this functionality.", "/attributes/restSearch")),
			detail: "You do not have permission",
		},
		{
			name: "404 wrong base URL", call: searchCall, kind: misp.ErrNotFound, status: 404,
			answer: misptest.Raw(404, "application/json", `{"name":"Not Found","message":"Not Found","url":"\/x\/attributes\/restSearch"}`),
			detail: "Not Found; check that API_URL points at the MISP base URL",
		},
		{
			name: "404 HTML from a web server", call: versionCall, kind: misp.ErrNotFound, status: 404,
			answer: misptest.Raw(404, "text/html", "<html><head><title>404 Not Found</title></head></html>"),
			detail: "API_URL",
		},
		{
			name: "429 with X-Rate-Limit-Reset", call: searchCall, kind: misp.ErrRateLimited, status: 429, retryAfter: 42 * time.Second,
			answer: misptest.RateLimited(42), // X-Rate-Limit-Limit 10, -Remaining 0, -Reset 42
			detail: "Rate limit exceeded.",
		},
		{
			name: "500", call: searchCall, kind: misp.ErrServer, status: 500,
			answer: misptest.Raw(500, "application/json", misptest.ErrorBody("An Internal Error Has Occurred.", "/attributes/restSearch")),
			detail: "An Internal Error Has Occurred.",
		},
		{
			name: "502 HTML from a proxy", call: searchCall, kind: misp.ErrUnavailable, status: 502,
			answer: misptest.Raw(502, "text/html", badGateway), detail: "MISP sent an HTML page instead of JSON (502 Bad Gateway)",
		},
		{
			name: "503", call: versionCall, kind: misp.ErrUnavailable, status: 503,
			answer: misptest.Raw(503, "text/plain", "Service Unavailable"), detail: "Service Unavailable",
		},
		{
			name: "504 HTML", call: sightingCall, kind: misp.ErrUnavailable, status: 504,
			answer: misptest.Raw(504, "text/html", "<html><title>504 Gateway Time-out</title></html>"), detail: "HTML page",
		},
		{
			name: "302 to the login page", call: versionCall, kind: misp.ErrPermission, status: 302,
			answer: misptest.LoginRedirect(), detail: "login page",
		},
		{
			name: "301 elsewhere", call: searchCall, kind: misp.ErrUnexpected, status: 301,
			answer: withHeader(misptest.Raw(http.StatusMovedPermanently, "text/html; charset=utf-8", ""), "Location", "https://misp.example/attributes/restSearch"),
			detail: `redirected to "https://misp.example/attributes/restSearch"`,
		},
		{
			name: "418 plain text", call: searchCall, kind: misp.ErrUnexpected, status: 418,
			answer: misptest.Raw(418, "text/plain", "I'm a teapot"), detail: "I'm a teapot",
		},
		{
			name: "200 truncated JSON", call: searchCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `{"response":{"Attribute":[{"type":"domain","value":"evil.exa`),
			detail: "truncated",
		},
		{
			name: "200 truncated between tokens", call: searchCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `{"response":{"Attribute":[`), detail: "truncated",
		},
		{
			name: "200 not JSON", call: searchCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "text/plain", "hello"), detail: "not valid JSON",
		},
		{
			name: "200 HTML login page", call: searchCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "text/html", "\n<!DOCTYPE html><html><head><title>Users - MISP</title>"), detail: "HTML page instead of JSON (Users - MISP)",
		},
		{
			name: "200 Attribute is an object", call: searchCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `{"response":{"Attribute":{}}}`), detail: "unexpected shape",
		},
		{
			name: "200 top-level list", call: searchCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `[1,2]`), detail: "unexpected shape",
		},
		{
			name: "200 attribute is a number", call: searchCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `{"response":{"Attribute":[1]}}`), detail: "unexpected shape",
		},
		{
			name: "200 events instead of attributes", call: searchCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `{"response":[{"Event":{"uuid":"x"}}]}`), detail: "unexpected shape",
		},
		{
			name: "200 without response", call: searchCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `{"name":"x"}`), detail: "unexpected shape",
		},
		{
			name: "200 empty body", call: searchCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", ""), detail: "empty",
		},
		{
			name: "version without version", call: versionCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `{"perm_sync":false}`), detail: `no "version"`,
		},
		{
			name: "version as a number", call: versionCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `{"version":2.5}`), detail: `no "version"`,
		},
		{
			name: "version list", call: versionCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `[]`), detail: "unexpected shape",
		},
		{
			name: "version not JSON", call: versionCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `{"version":`), detail: "JSON",
		},
		{
			name: "sighting of a value MISP does not hold", call: sightingCall, kind: misp.ErrNotFound, status: 200,
			answer: misptest.Raw(200, "application/json", `{"message":"Could not add the Sighting. Reason: No valid attributes found that match the criteria."}`),
			detail: "holds no attribute with this value",
		},
		{
			name: "sighting refused with HTTP 200", call: sightingCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `{"message":"Could not add the Sighting. Reason: Invalid type, please change it before you POST 1000000 sightings."}`),
			detail: "Invalid type",
		},
		{
			name: "sighting answer without anything", call: sightingCall, kind: misp.ErrUnexpected, status: 200,
			answer: misptest.Raw(200, "application/json", `{"Sighting":[]}`), detail: `no "Sighting"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := answering(t, tc.answer)
			err := tc.call.do(newClient(t, srv.URL))
			if err == nil {
				t.Fatal("no error")
			}
			for _, r := range srv.Requests() {
				if r.Path == "/users/login" {
					t.Error("the client followed the redirect")
				}
			}
			me := asError(t, err)
			if !errors.Is(err, tc.kind) {
				t.Errorf("error kind = %v, want %v (error: %v)", me.Kind, tc.kind, err)
			}
			if me.Op != tc.call.op {
				t.Errorf("Op = %q, want %q", me.Op, tc.call.op)
			}
			if me.Status != tc.status {
				t.Errorf("Status = %d, want %d", me.Status, tc.status)
			}
			if !strings.Contains(me.Detail, tc.detail) {
				t.Errorf("Detail = %q, want it to contain %q", me.Detail, tc.detail)
			}
			if len(me.Detail) > 300 {
				t.Errorf("Detail is %d bytes long: %q", len(me.Detail), me.Detail)
			}
			if me.RetryAfter != tc.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", me.RetryAfter, tc.retryAfter)
			}
			if !strings.HasPrefix(err.Error(), "MISP "+tc.call.op+" failed") {
				t.Errorf("Error() = %q", err.Error())
			}
			checkNoKey(t, err)
		})
	}
}

// TestKeyNeverInErrors uses answers that carry the request's API key in every place a naive
// client would copy into its error, as a server echoing the Authorization header would.
func TestKeyNeverInErrors(t *testing.T) {
	echo := func(status int, contentType, format string) misptest.Answer {
		return misptest.Raw(status, contentType, strings.ReplaceAll(format, "KEY", testKey))
	}
	tests := []struct {
		name   string
		call   call
		answer misptest.Answer
	}{
		{"JSON message", searchCall, echo(403, "application/json", `{"name":"bad key KEY","message":"The key KEY is not valid","url":"/attributes/restSearch"}`)},
		{"JSON name only", versionCall, echo(403, "application/json", `{"name":"bad key KEY"}`)},
		{"plain text", searchCall, echo(500, "text/plain", "headers: Authorization=KEY Accept=application/json")},
		// The key sits across the 200-byte truncation point: removing it after truncating
		// would leave its first half behind.
		{"plain text cut at the key", searchCall, echo(418, "text/plain", strings.Repeat("a", 180)+" KEY "+strings.Repeat("b", 100))},
		{"HTML title", searchCall, echo(502, "text/html", "<html><title>proxy error for KEY</title></html>")},
		{"redirect location", versionCall, withHeader(misptest.Raw(http.StatusFound, "", ""), "Location", "https://sso.example/login?key="+testKey)},
		{"sighting message", sightingCall, echo(200, "application/json", `{"message":"Could not add the Sighting for key KEY"}`)},
		{"200 HTML", sightingCall, echo(200, "text/html", "<html><title>Welcome KEY</title></html>")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := answering(t, tc.answer)
			err := tc.call.do(newClient(t, srv.URL))
			if err == nil {
				t.Fatal("no error")
			}
			_ = asError(t, err)
			checkNoKey(t, err)
		})
	}
}

func TestUnreachable(t *testing.T) {
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String()
	_ = ln.Close()

	hungURL := answering(t, misptest.Hang()).URL
	// Headers and the start of the body come at once, then nothing.
	hungBodyURL := answering(t, misptest.Answer{Status: http.StatusOK, Body: `{"response":{"Attribute":[`, Stall: true}).URL

	tests := []struct {
		name    string
		url     string
		timeout time.Duration
		call    call
		detail  string
	}{
		{name: "connection refused", url: closedURL, timeout: 2 * time.Second, call: searchCall, detail: "cannot reach MISP"},
		{name: "hung server", url: hungURL, timeout: 200 * time.Millisecond, call: searchCall, detail: "did not answer within 200ms"},
		{name: "hung server, version", url: hungURL, timeout: 200 * time.Millisecond, call: versionCall, detail: "did not answer"},
		{name: "hung server, sighting", url: hungURL, timeout: 200 * time.Millisecond, call: sightingCall, detail: "did not answer"},
		{name: "hung mid-body", url: hungBodyURL, timeout: 200 * time.Millisecond, call: searchCall, detail: "did not answer"},
		{name: "DNS failure", url: "http://misp-relay-test.invalid", timeout: 3 * time.Second, call: versionCall},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, tc.url, func(cfg *misp.Config) { cfg.Timeout = tc.timeout })
			start := time.Now()
			err := tc.call.do(c)
			if elapsed := time.Since(start); elapsed > tc.timeout+2*time.Second {
				t.Errorf("call took %v with Timeout %v", elapsed, tc.timeout)
			}
			me := asError(t, err)
			if !errors.Is(err, misp.ErrUnavailable) {
				t.Errorf("kind = %v, want ErrUnavailable (%v)", me.Kind, err)
			}
			if tc.name != "hung mid-body" && me.Status != 0 {
				t.Errorf("Status = %d, want 0", me.Status)
			}
			if !strings.Contains(me.Detail, tc.detail) {
				t.Errorf("Detail = %q, want it to contain %q", me.Detail, tc.detail)
			}
			checkNoKey(t, err)
		})
	}
}

// TestCanceledContext: the caller gives up while MISP is answering.
func TestCanceledContext(t *testing.T) {
	srv := answering(t, misptest.Hang())
	c := newClient(t, srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Search(ctx, testKey, intel.Query{Value: "x", Limit: 1})
		errc <- err
	}()
	if err := srv.WaitRequests(testkit.Context(t), "", 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	err := <-errc
	if !errors.Is(err, misp.ErrUnavailable) || !strings.Contains(asError(t, err).Detail, "canceled") {
		t.Errorf("Search with a canceled context: %v", err)
	}
}

func TestTLS(t *testing.T) {
	srv, err := misptest.NewTLSServer(testKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		mod     func(*misp.Config)
		wantErr bool
	}{
		{name: "self-signed, verified", mod: func(*misp.Config) {}, wantErr: true},
		{name: "InsecureSkipVerify", mod: func(c *misp.Config) { c.InsecureSkipVerify = true }},
		{name: "CAFile", mod: func(c *misp.Config) { c.CAFile = caFile }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := newClient(t, srv.URL, tc.mod).Version(context.Background(), testKey)
			if !tc.wantErr {
				if err != nil || v != "2.5.1" {
					t.Fatalf("Version = %q, %v", v, err)
				}
				return
			}
			me := asError(t, err)
			if !errors.Is(err, misp.ErrUnexpected) || me.Status != 0 {
				t.Errorf("error = %v (kind %v, status %d), want ErrUnexpected without status", err, me.Kind, me.Status)
			}
			if !strings.Contains(me.Detail, "MISP_CA_FILE") || !strings.Contains(me.Detail, "certificate") {
				t.Errorf("Detail = %q, want a hint about the certificate and MISP_CA_FILE", me.Detail)
			}
		})
	}

	t.Run("plain HTTP server behind an https URL", func(t *testing.T) {
		plain := misptest.New(t, testKey)
		_, err := newClient(t, strings.Replace(plain.URL, "http://", "https://", 1)).Version(context.Background(), testKey)
		if !errors.Is(err, misp.ErrUnexpected) || !strings.Contains(asError(t, err).Detail, "API_URL") {
			t.Errorf("Version: %v", err)
		}
	})
}

func TestLocalRefusals(t *testing.T) {
	srv := misptest.New(t, testKey)
	c := newClient(t, srv.URL)
	for _, v := range []string{"", "0", "!x", "%x", "x%", "a&&b"} {
		_, err := c.Search(context.Background(), testKey, intel.Query{Value: v, Limit: 1})
		if !errors.Is(err, misp.ErrUnexpected) {
			t.Errorf("Search(%q) error = %v, want ErrUnexpected", v, err)
		}
	}
	if _, err := c.Search(context.Background(), " ", intel.Query{Value: "x", Limit: 1}); !errors.Is(err, misp.ErrPermission) {
		t.Errorf("Search with a blank key: %v, want ErrPermission", err)
	}
	if _, err := c.Version(context.Background(), ""); !errors.Is(err, misp.ErrPermission) {
		t.Errorf("Version with no key: %v, want ErrPermission", err)
	}
	if err := c.AddSighting(context.Background(), "", "x", intel.Sighting, "XDR"); !errors.Is(err, misp.ErrPermission) {
		t.Errorf("AddSighting with no key: %v, want ErrPermission", err)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests were sent, want none", n)
	}
}
