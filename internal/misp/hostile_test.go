package misp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

// gzipMISP is a fake MISP that answers every request with body, gzip-encoded. It checks, when
// the test ends, that every request asked for gzip.
func gzipMISP(t *testing.T, body []byte) *misptest.Server {
	t.Helper()
	srv := answering(t, misptest.Answer{
		Status: http.StatusOK, Body: string(body),
		Header: http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}},
	})
	t.Cleanup(func() {
		for _, r := range srv.Requests() {
			if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
				t.Errorf("the client did not ask for gzip: %v", r.Header)
			}
		}
	})
	return srv
}

// TestGzipBombIsCapped: a 260 KB gzip answer that inflates to one 256 MiB attribute, and one
// that inflates to 256 MiB of small attributes, fail with a clear error naming the setting,
// after the relay read about as much as the caps allow; a buffering client would allocate
// the whole value (more than 256 MiB).
func TestGzipBombIsCapped(t *testing.T) {
	mib := bytes.Repeat([]byte("a"), 1<<20)
	attr := `{"type":"ip-dst","value":"198.51.100.7","Event":{"uuid":"542e4c9c-cadc-4f8f-bb11-6d13950d210b","threat_level_id":"1"}}`
	// 1 MiB of further attributes, as many as fit.
	many := bytes.Repeat([]byte(","+attr), (1<<20)/(len(attr)+1))
	tests := []struct {
		name, head, tail string
		chunk            []byte
		want             string
	}{
		{"one 256 MiB value", `{"response":{"Attribute":[{"type":"ip-dst","value":"`, `"}]}}`, mib, "MISP_MAX_ATTRIBUTE_BYTES"},
		{"a 256 MiB comment", `{"response":{"Attribute":[{"comment":"`, `"}]}}`, mib, "MISP_MAX_ATTRIBUTE_BYTES"},
		{"a 256 MiB unknown key", `{"padding":"`, `","response":[]}`, mib, "MISP_MAX_ATTRIBUTE_BYTES"},
		{"256 MiB of attributes", `{"response":{"Attribute":[` + attr, `]}}`, many, "MISP_MAX_ANSWER_BYTES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := gzipMISP(t, testkit.GzipBomb(t, tt.head, tt.chunk, 256, tt.tail))
			c := newClient(t, srv.URL, func(cfg *misp.Config) {
				cfg.MaxAnswerBytes = 2 << 20
				cfg.PageSize = 1 << 20 // one page holds every attribute: the byte cap stops it
			})
			var err error
			alloc := testkit.AllocatedDuring(func() { _, err = c.Search(context.Background(), testKey, q1) })
			e := asError(t, err)
			if !errors.Is(err, misp.ErrUnexpected) || !strings.Contains(e.Detail, tt.want) {
				t.Errorf("err = %v, want an unexpected-answer error naming %s", err, tt.want)
			}
			checkNoKey(t, err)
			// Caps of 1 MiB per value and 2 MiB per lookup: decoding 2 MiB of small
			// attributes allocates about 30 MiB (garbage included); without the caps, the
			// value cases allocate more than 256 MiB, the last about 4 GiB.
			if alloc > 64<<20 {
				t.Errorf("the search allocated %d MiB", alloc>>20)
			}
		})
	}
}

// TestAnswerBudgetSpansPages: the answer cap bounds a lookup, not a page, so paging does not
// multiply it.
func TestAnswerBudgetSpansPages(t *testing.T) {
	pad := strings.Repeat("x", 100<<10)
	srv := misptest.New(t, testKey)
	// Two 100 KiB attributes per page, of a new event each time: never full. More pages than
	// the cap lets the client read: past them, the fake's own (empty) answer ends the paging.
	for page := 1; page <= 12; page++ {
		srv.Script("/attributes/restSearch", misptest.Raw(http.StatusOK, "application/json", fmt.Sprintf(`{"response":{"Attribute":[`+
			`{"value":"198.51.100.7","comment":"%s","Event":{"uuid":"ev-%d-a"}},`+
			`{"value":"198.51.100.7","comment":"%s","Event":{"uuid":"ev-%d-b"}}]}}`, pad, page, pad, page)))
	}
	c := newClient(t, srv.URL, func(cfg *misp.Config) {
		cfg.PageSize = 2
		cfg.MaxAnswerBytes = 1 << 20
		cfg.MaxAttributeBytes = 256 << 10
	})
	_, err := c.Search(context.Background(), testKey, intel.Query{Value: "198.51.100.7", Limit: 0})
	if e := asError(t, err); !strings.Contains(e.Detail, "MISP_MAX_ANSWER_BYTES") || !strings.Contains(e.Detail, "1 MiB") {
		t.Errorf("err = %v, want the answer cap", err)
	}
	if pages := len(srv.Requests()); pages < 4 || pages > 6 {
		t.Errorf("%d pages of 200 KiB were read under a 1 MiB cap, want 5 or 6", pages)
	}
}

// TestAnswersWithinTheCapsPass: an answer whose attribute is just under the cap is read.
func TestAnswersWithinTheCapsPass(t *testing.T) {
	comment := strings.Repeat("c", 200<<10)
	body := `{"response":{"Attribute":[{"type":"ip-dst","value":"198.51.100.7","comment":"` + comment +
		`","Event":{"uuid":"542e4c9c-cadc-4f8f-bb11-6d13950d210b","threat_level_id":"1"}}]}}`
	srv := gzipMISP(t, testkit.GzipBomb(t, body, nil, 0, ""))
	c := newClient(t, srv.URL, func(cfg *misp.Config) { cfg.MaxAttributeBytes = 256 << 10; cfg.MaxAnswerBytes = int64(len(body)) })
	events, err := c.Search(context.Background(), testKey, q1)
	if err != nil || len(events) != 1 {
		t.Fatalf("events %d, err %v", len(events), err)
	}
}

// TestSizeErrorsAreNotHidden: a MISP a caller named gets its answers' contents hidden, but
// being over a cap is the relay's own finding, and says which setting raises it.
func TestSizeErrorsAreNotHidden(t *testing.T) {
	srv := gzipMISP(t, testkit.GzipBomb(t, `{"response":{"Attribute":[{"value":"`, bytes.Repeat([]byte("a"), 1<<20), 4, `"}]}}`))
	c := newClient(t, srv.URL, func(cfg *misp.Config) { cfg.HideAnswers = true })
	_, err := c.Search(context.Background(), testKey, q1)
	if e := asError(t, err); !strings.Contains(e.Detail, "MISP_MAX_ATTRIBUTE_BYTES") {
		t.Errorf("err = %v", err)
	}
}

// TestEchoedKeyRedactedInAnyCase: a MISP (or a proxy in front of it) that echoes the API key
// upper- or lower-cased in its error still never gets it into the relay's error.
func TestEchoedKeyRedactedInAnyCase(t *testing.T) {
	m := misptest.New(t, testKey)
	for _, echo := range []string{testKey, strings.ToUpper(testKey), strings.ToLower(testKey)} {
		m.Fail("/attributes/restSearch", http.StatusForbidden,
			`{"name":"Authentication failed for key `+echo+`","message":"Authentication failed for key `+echo+`","url":"/attributes/restSearch"}`)
		_, err := newClient(t, m.URL).Search(context.Background(), testKey, q1)
		if !errors.Is(err, misp.ErrPermission) {
			t.Fatalf("err = %v", err)
		}
		if text := strings.ToLower(err.Error()); strings.Contains(text, strings.ToLower(testKey)) || !strings.Contains(text, "[redacted]") {
			t.Errorf("echo %.8s…: error %q", echo, err)
		}
	}
}

// TestHiddenTransportErrors: for a MISP a caller named, a TLS failure (which would quote an
// internal certificate's names) and a refused connection answer the same words, so the
// relay cannot be used to tell what listens where; the cause is logged for the operator.
func TestHiddenTransportErrors(t *testing.T) {
	tls := newTLSServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	_ = ln.Close()

	for _, hide := range []bool{false, true} {
		var details []string
		for _, url := range []string{tls, refused} {
			var logs testkit.SyncBuffer
			c := newClient(t, url, func(cfg *misp.Config) {
				cfg.HideAnswers = hide
				cfg.Log = slog.New(slog.NewTextHandler(&logs, nil))
			})
			_, err := c.Version(context.Background(), testKey)
			e := asError(t, err)
			details = append(details, e.Detail)
			checkNoKey(t, err)
			if hide && (!strings.Contains(logs.String(), "MISP call failed") || strings.Contains(logs.String(), testKey)) {
				t.Errorf("%s: log %q", url, logs.String())
			}
			if hide && !errors.Is(err, misp.ErrUnavailable) {
				t.Errorf("%s: kind %v, want unavailable for every hidden failure", url, e.Kind)
			}
		}
		if same := details[0] == details[1]; same != hide {
			t.Errorf("HideAnswers=%v: TLS failure %q, refused %q", hide, details[0], details[1])
		}
		if hide && strings.Contains(details[0], "example.com") {
			t.Errorf("the certificate's names leak: %q", details[0])
		}
	}
}

// newTLSServer is a TLS MISP whose certificate the client does not trust (as an internal
// service's would be), named for example.com.
func newTLSServer(t *testing.T) string {
	t.Helper()
	srv, err := misptest.NewTLSServer(testKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestPublicOnlyClientNeverCallsLoopback: a client with PublicOnly (a MISP named under
// MISP_ALLOWED_HOSTS=*) refuses the fake MISP on 127.0.0.1 whatever the spelling, and the
// fake records no request.
func TestPublicOnlyClientNeverCallsLoopback(t *testing.T) {
	m := misptest.New(t, testKey)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(m.URL, "http://"))
	for _, host := range []string{"127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "[::1]"} {
		c := newClient(t, "http://"+host+":"+port, func(cfg *misp.Config) { cfg.PublicOnly = true; cfg.HideAnswers = true })
		_, err := c.Search(context.Background(), testKey, q1)
		if !errors.Is(err, misp.ErrUnavailable) || !asError(t, err).Final {
			t.Errorf("%s: err = %v, want a final (not retried) unavailable error", host, err)
		}
	}
	if n := len(m.Requests()); n != 0 {
		t.Errorf("the loopback MISP got %d requests", n)
	}
	// The same MISP without PublicOnly (an explicitly listed host) is called.
	if _, err := newClient(t, m.URL).Search(context.Background(), testKey, q1); err != nil {
		t.Fatal(err)
	}
}
