package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/httpapi"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/service"
	"github.com/misp-relay/misp-relay/internal/testkit"
	"github.com/misp-relay/misp-relay/internal/urlscan"
)

// Secrets of the tests. The harness checks after every test that none of them appears in a
// response or a log line.
const (
	testSecret     = "test-secret-key-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL"
	testMISPKey    = "MispKey0123456789abcdefghijABCDEFGHIJ0123"
	testURLScanKey = "urlscan-key-0123456789"
)

// fixedNow makes valid_time deterministic.
var fixedNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type options struct {
	events     [][]byte
	feedDir    string // use a feed instead of the fake MISP
	uiURL      string
	urlscanKey string // URLSCAN_API_KEY
	limit      int
	secret     *string
}

// harness is the relay's full handler in front of a fake MISP and a fake urlscan.io, both
// speaking the real wire format.
type harness struct {
	t        *testing.T
	srv      *httptest.Server
	misp     *misptest.Server
	scans    *fakeURLScan
	logs     *testkit.SyncBuffer
	contract *testkit.Contract
	bodies   []string // every response body, for the secret check
	mu       sync.Mutex
}

func newHarness(t *testing.T, o options) *harness {
	t.Helper()
	h := &harness{t: t, logs: &testkit.SyncBuffer{}, scans: newFakeURLScan(t), contract: testkit.LoadContract(t)}
	scanner, err := urlscan.New(urlscan.Config{BaseURL: h.scans.srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	secret := testSecret
	if o.secret != nil {
		secret = *o.secret
	}
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := service.Config{
		Version:       "1.0.0",
		UIURL:         o.uiURL,
		Scanner:       scanner,
		URLScanKey:    o.urlscanKey,
		EntitiesLimit: o.limit,
		Log:           log,
		Now:           func() time.Time { return fixedNow },
	}
	if o.feedDir != "" {
		store, err := feed.Load(o.feedDir)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Backend = store
	} else {
		h.misp = misptest.New(t, testMISPKey, o.events...)
		client, err := misp.New(misp.Config{BaseURL: h.misp.URL, Timeout: 5 * time.Second, UserAgent: "misp-relay-test"})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Backend = client
		if cfg.UIURL == "" {
			cfg.UIURL = h.misp.URL
		}
	}
	svc, err := service.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	handler, err := httpapi.NewHandler(svc, httpapi.Config{Secret: secret, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(handler)
	t.Cleanup(h.srv.Close)
	t.Cleanup(h.checkNoSecrets)
	return h
}

// serve puts a core built from cfg behind the harness's server (same contract and secret
// checks), with the adapter's settings hc (at most one), for tests that need another backend
// than the fake MISP. It returns how many tenants have a request in flight. The secret and
// Version default to the tests'.
func (h *harness) serve(cfg service.Config, hc ...httpapi.Config) (tenantsInFlight func() int) {
	h.t.Helper()
	var acfg httpapi.Config
	if len(hc) > 0 {
		acfg = hc[0]
	}
	if acfg.Secret == "" {
		acfg.Secret = testSecret
	}
	if cfg.Version == "" {
		cfg.Version = "1.0.0"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewJSONHandler(h.logs, nil))
	}
	if acfg.Log == nil {
		acfg.Log = cfg.Log
	}
	svc, err := service.New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	handler, inFlight, err := httpapi.NewHandlerInFlight(svc, acfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.srv.Config.Handler = handler
	return inFlight
}

// token mints a JWT signed with the tests' secret.
func token(t *testing.T, claims auth.Claims) string {
	t.Helper()
	return testkit.JWT(t, testSecret, claims)
}

func (h *harness) bearer() string {
	return "Bearer " + token(h.t, auth.Claims{Key: testMISPKey})
}

// post sends an authenticated POST and returns the status and the decoded JSON body, after
// validating the response against api/openapi.yaml.
func (h *harness) post(path, body string) (int, map[string]any) {
	h.t.Helper()
	return h.do(http.MethodPost, path, http.Header{"Authorization": {h.bearer()}, "Content-Type": {"application/json"}}, body)
}

func (h *harness) do(method, path string, header http.Header, body string) (int, map[string]any) {
	h.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	h.mu.Lock()
	h.bodies = append(h.bodies, string(raw))
	h.mu.Unlock()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		h.t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	if resp.StatusCode >= 500 {
		h.t.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, raw)
	}
	h.validate(method, path, resp, raw)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		h.t.Fatalf("%s %s: body is not a JSON object: %v: %s", method, path, err, raw)
	}
	return resp.StatusCode, out
}

// validate is the contract test: every response must match api/openapi.yaml.
func (h *harness) validate(method, path string, resp *http.Response, raw []byte) {
	h.t.Helper()
	h.contract.Check(h.t, method, path, resp.StatusCode, resp.Header, raw)
}

func (h *harness) checkNoSecrets() {
	h.mu.Lock()
	defer h.mu.Unlock()
	tok := token(h.t, auth.Claims{Key: testMISPKey})
	all := strings.Join(h.bodies, "\n") + "\n" + h.logs.String()
	testkit.NoSecrets(h.t, all, testSecret, testMISPKey, testURLScanKey, tok)
}

// errorOf returns the envelope's single error as (code, message).
func errorOf(t *testing.T, body map[string]any) (string, string) {
	t.Helper()
	errs, ok := body["errors"].([]any)
	if !ok || len(errs) == 0 {
		t.Fatalf("no errors in %v", body)
	}
	e := errs[0].(map[string]any)
	if e["type"] != "fatal" {
		t.Errorf("error type = %v, want fatal", e["type"])
	}
	return e["code"].(string), e["message"].(string)
}

// fakeURLScan is urlscan.io's submit endpoint.
type fakeURLScan struct {
	srv    *httptest.Server
	mu     sync.Mutex
	status int
	body   string
	got    []map[string]any
	keys   []string
}

func newFakeURLScan(t *testing.T) *fakeURLScan {
	f := &fakeURLScan{status: http.StatusOK, body: `{"message":"Submission successful","uuid":"0196d976-07f6-7aae-8a57-aa019145f31c","result":"https://urlscan.io/result/0196d976-07f6-7aae-8a57-aa019145f31c/","api":"https://urlscan.io/api/v1/result/0196d976-07f6-7aae-8a57-aa019145f31c/","visibility":"unlisted","url":"https://example.com"}`}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/scan/" {
			http.Error(w, `{"message":"not found","status":404}`, http.StatusNotFound)
			return
		}
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		f.got = append(f.got, body)
		f.keys = append(f.keys, r.Header.Get("API-Key"))
		status, answer := f.status, f.body
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeURLScan) answer(status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.body = status, body
}
