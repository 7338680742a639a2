package misptest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

func TestAnswers(t *testing.T) {
	const path = "/attributes/restSearch"
	const search = `{"value":"evil.example","type":"domain"}`
	srv := newServer(t)
	_, _, own := send(t, srv, "POST", path, api(), search)
	tests := []struct {
		name       string
		answer     misptest.Answer
		wantStatus int
		wantCT     string // prefix
		wantBody   string
		wantHeader map[string]string
	}{
		{name: "raw", answer: misptest.Raw(418, "text/plain", "I'm a teapot"), wantStatus: 418, wantCT: "text/plain", wantBody: "I'm a teapot"},
		{name: "raw bytes, default type", answer: misptest.Raw(200, "", "\xff\x00{\"response\""), wantStatus: 200, wantCT: "application/json", wantBody: "\xff\x00{\"response\""},
		{name: "raw HTML", answer: misptest.Raw(200, "", " <html><title>Users - MISP</title>"), wantStatus: 200, wantCT: "text/html", wantBody: " <html><title>Users - MISP</title>"},
		{name: "error", answer: misptest.Error(500, "An Internal Error Has Occurred."), wantStatus: 500, wantCT: "application/json", wantBody: mispError("An Internal Error Has Occurred.", path)},
		{
			name: "rate limited", answer: misptest.RateLimited(42), wantStatus: 429, wantCT: "application/json",
			wantBody:   mispError("Rate limit exceeded.", path),
			wantHeader: map[string]string{"X-Rate-Limit-Reset": "42", "X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Limit": "10"},
		},
		{
			name: "login redirect", answer: misptest.LoginRedirect(), wantStatus: 302, wantCT: "text/html",
			wantHeader: map[string]string{"Location": "/users/login"},
		},
		{name: "bad gateway", answer: misptest.BadGateway(), wantStatus: 502, wantCT: "text/html"},
		{name: "own answer, cut", answer: misptest.Answer{Cut: 25}, wantStatus: 200, wantCT: "application/json", wantBody: own[:25]},
		{name: "own answer, end cut off", answer: misptest.Answer{Cut: -10}, wantStatus: 200, wantCT: "application/json", wantBody: own[:len(own)-10]},
		{
			name: "own answer, extra header", answer: misptest.Answer{Header: http.Header{"X-Extra": {"1"}}}, wantStatus: 200,
			wantCT: "application/json", wantBody: own, wantHeader: map[string]string{"X-Extra": "1"},
		},
		{name: "own answer, delayed", answer: misptest.Answer{Delay: time.Millisecond}, wantStatus: 200, wantCT: "application/json", wantBody: own},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv.Always(path, tc.answer)
			defer srv.Always(path, misptest.Answer{})
			before := len(srv.Requests())
			status, h, body := send(t, srv, "POST", path, api(), search)
			if status != tc.wantStatus || !strings.HasPrefix(h.Get("Content-Type"), tc.wantCT) {
				t.Errorf("got %d %q, want %d %q", status, h.Get("Content-Type"), tc.wantStatus, tc.wantCT)
			}
			if tc.wantBody != "" && body != tc.wantBody {
				t.Errorf("body %q\nwant %q", body, tc.wantBody)
			}
			for k, v := range tc.wantHeader {
				if h.Get(k) != v {
					t.Errorf("header %s = %q, want %q", k, h.Get(k), v)
				}
			}
			if err := srv.WaitAnswers(testkit.Context(t), path, before+1); err != nil {
				t.Fatal(err)
			}
			r := srv.Requests()[before]
			if !r.Answered || r.Status != tc.wantStatus || r.Sent != int64(len(body)) {
				t.Errorf("recorded answered %v, status %d, sent %d; want true, %d, %d", r.Answered, r.Status, r.Sent, tc.wantStatus, len(body))
			}
		})
	}
	if _, _, body := send(t, srv, "POST", path, api(), search); body != own {
		t.Errorf("Always(path, Answer{}) did not clear the answer: %s", body)
	}
}

func TestScript(t *testing.T) {
	srv := newServer(t)
	const version = "/servers/getVersion"
	srv.Always("", misptest.Error(500, "down"))
	srv.Script(version, misptest.Error(503, "a"), misptest.Answer{})
	srv.Script(version, misptest.Error(502, "b"))
	srv.Script("", misptest.Error(504, "c"))
	var got []int
	for range 5 {
		status, _, _ := send(t, srv, "GET", version, api(), "")
		got = append(got, status)
	}
	// The path's script, then the script for every path, then the standing answer.
	if diff := cmp.Diff([]int{503, 200, 502, 504, 500}, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	srv.Always("", misptest.Answer{})
	if status, _, _ := send(t, srv, "GET", version, api(), ""); status != 200 {
		t.Errorf("status %d once everything is used up and cleared", status)
	}
}

// TestWaiting: a held answer is sent once released; WaitRequests and WaitAnswers follow the
// requests; MaxInFlight counts those held at once.
func TestWaiting(t *testing.T) {
	srv := newServer(t)
	const path = "/servers/getVersion"
	gate := make(chan struct{})
	srv.Always(path, misptest.Answer{Wait: gate})
	var wg sync.WaitGroup
	statuses := make(chan int, 3)
	for range 3 {
		wg.Go(func() {
			status, _, _ := send(t, srv, "GET", path, api(), "")
			statuses <- status
		})
	}
	ctx := testkit.Context(t)
	if err := srv.WaitRequests(ctx, path, 3); err != nil {
		t.Fatal(err)
	}
	for _, r := range srv.Requests() {
		if r.Answered {
			t.Errorf("a held request is answered: %+v", r)
		}
	}
	if n := srv.MaxInFlight(); n != 3 {
		t.Errorf("MaxInFlight = %d with three requests held, want 3", n)
	}
	close(gate)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != 200 {
			t.Errorf("released request got %d", s)
		}
	}
	if err := srv.WaitAnswers(ctx, path, 3); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithCancel(context.Background())
	cancel()
	if err := srv.WaitRequests(short, path, 4); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitRequests with a cancelled context = %v", err)
	}
}

// TestConnectionFaults: hangs and stalls last until the client gives up, a reset is one.
func TestConnectionFaults(t *testing.T) {
	srv := newServer(t)
	const path = "/attributes/restSearch"
	do := func(ctx context.Context) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+path, strings.NewReader(`{"value":"evil.example"}`))
		for k, v := range api() {
			req.Header.Set(k, v)
		}
		return http.DefaultClient.Do(req)
	}

	t.Run("hang", func(t *testing.T) {
		srv.Always(path, misptest.Hang())
		defer srv.Always(path, misptest.Answer{})
		before := len(srv.Requests())
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			resp, err := do(ctx)
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		if err := srv.WaitRequests(testkit.Context(t), path, before+1); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("hung request: %v, want the client's cancellation", err)
		}
		if err := srv.WaitAnswers(testkit.Context(t), path, before+1); err != nil {
			t.Fatal(err)
		}
		if r := srv.Requests()[before]; r.Status != 0 || r.Sent != 0 {
			t.Errorf("a hang sent status %d and %d bytes", r.Status, r.Sent)
		}
	})

	t.Run("stall mid-body", func(t *testing.T) {
		const start = `{"response":{"Attribute":[`
		srv.Always(path, misptest.Answer{Status: 200, Body: start, Stall: true})
		defer srv.Always(path, misptest.Answer{})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		resp, err := do(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got := make([]byte, len(start))
		if _, err := io.ReadFull(resp.Body, got); err != nil || string(got) != start {
			t.Fatalf("read %q, %v", got, err)
		}
		cancel()
		if _, err := io.ReadAll(resp.Body); err == nil {
			t.Error("the stalled body ended normally")
		}
	})

	t.Run("reset", func(t *testing.T) {
		srv.Always(path, misptest.Answer{Cut: 30, Reset: true})
		defer srv.Always(path, misptest.Answer{})
		resp, err := do(context.Background())
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("reset connection: %v, want connection reset by peer", err)
		}
	})
}

// TestCloseEndsWaits: Close does not wait for a hang the client has not given up on.
func TestCloseEndsWaits(t *testing.T) {
	srv, err := misptest.NewServer(key)
	if err != nil {
		t.Fatal(err)
	}
	srv.Always("", misptest.Hang())
	errc := make(chan error, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/servers/getVersion")
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	if err := srv.WaitRequests(testkit.Context(t), "", 1); err != nil {
		t.Fatal(err)
	}
	srv.Close() // would block on the hung handler
	<-errc
}

// TestWithoutSocket: the server is an http.Handler, for in-memory transports.
func TestWithoutSocket(t *testing.T) {
	srv := newServer(t)
	req := httptest.NewRequest("GET", "/servers/getVersion", nil)
	for k, v := range api() {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"version":"2.5.1"`) {
		t.Errorf("got %d %s", rec.Code, rec.Body)
	}
	srv.Always("", misptest.Answer{Reset: true})
	defer func() {
		if r := recover(); r != http.ErrAbortHandler { //nolint:errorlint // the sentinel itself is panicked
			t.Errorf("a reset without a connection panicked with %v, want http.ErrAbortHandler", r)
		}
	}()
	srv.ServeHTTP(httptest.NewRecorder(), req)
}

func TestTLSServer(t *testing.T) {
	srv, err := misptest.NewTLSServer(key)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/servers/getVersion", nil)
	req.Header.Set("Authorization", key)
	req.Header.Set("Accept", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(srv.URL, "https://") {
		t.Errorf("%s answered %d", srv.URL, resp.StatusCode)
	}
}

func TestNewServerRefusesBadEvents(t *testing.T) {
	for _, raw := range []string{`{`, `{"Event":{"info":"no uuid"}}`, `{"Event":{"uuid":"u","Attribute":[{"value":{}}]}}`} {
		if srv, err := misptest.NewServer(key, []byte(raw)); err == nil {
			srv.Close()
			t.Errorf("NewServer(%s) accepted it", raw)
		}
	}
}

// TestWhen: answers chosen by what the request asks, one of them streamed.
func TestWhen(t *testing.T) {
	srv := newServer(t)
	const path = "/attributes/restSearch"
	srv.When(func(r *misptest.Request) bool { return strings.HasPrefix(misptest.SearchValue(r), "bomb") }, misptest.Error(500, "boom"))
	srv.When(func(r *misptest.Request) bool { return misptest.SearchValue(r) == "huge.example" }, misptest.Answer{
		Status: 200, Body: "[",
		Stream: func(w io.Writer) error {
			for range 3 {
				if _, err := io.WriteString(w, `"x",`); err != nil {
					return err
				}
			}
			_, err := io.WriteString(w, `"y"]`)
			return err
		},
	})
	if status, _, body := send(t, srv, "POST", path, api(), `{"value":"bomb2.example"}`); status != 500 || body != mispError("boom", path) {
		t.Errorf("bomb: %d %s", status, body)
	}
	if status, _, body := send(t, srv, "POST", path, api(), `{"value":"huge.example"}`); status != 200 || body != `["x","x","x","y"]` {
		t.Errorf("streamed: %d %s", status, body)
	}
	if got := searchAttrs(t, srv, api(), `{"value":"evil.example"}`); len(got) != 2 {
		t.Errorf("another value got %v, want the fake's own answer", got)
	}
	if n := srv.Requests()[1].Sent; n != int64(len(`["x","x","x","y"]`)) {
		t.Errorf("streamed answer counted %d bytes", n)
	}
	if v := misptest.SearchValue(&misptest.Request{Path: path, Body: []byte(`{"value":["a","b"]}`)}); v != "a" {
		t.Errorf("SearchValue of a list = %q, want its first value", v)
	}
	if v := misptest.SearchValues(&misptest.Request{Path: path, Body: []byte(`{"value":["a","b"]}`)}); !slices.Equal(v, []string{"a", "b"}) {
		t.Errorf("SearchValues of a list = %q", v)
	}
	if v := misptest.SearchValue(&misptest.Request{Path: path, Body: []byte(`{"value":{"OR":["a"]}}`)}); v != "" {
		t.Errorf("SearchValue of an OR filter = %q, want none", v)
	}
}
