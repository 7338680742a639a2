package misp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
)

func TestNew(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		cfg      misp.Config
		wantErr  string // substring; "" means success
		wantBase string
	}{
		{name: "https", cfg: misp.Config{BaseURL: "https://misp.example"}, wantBase: "https://misp.example"},
		{name: "trailing slash", cfg: misp.Config{BaseURL: "https://misp.example/"}, wantBase: "https://misp.example"},
		{name: "path prefix", cfg: misp.Config{BaseURL: "http://10.0.0.1:8080/misp/"}, wantBase: "http://10.0.0.1:8080/misp"},
		{name: "empty", cfg: misp.Config{}, wantErr: "API_URL"},
		{name: "no scheme", cfg: misp.Config{BaseURL: "misp.example"}, wantErr: "API_URL"},
		{name: "ftp", cfg: misp.Config{BaseURL: "ftp://misp.example"}, wantErr: "https://"},
		{name: "no host", cfg: misp.Config{BaseURL: "https://"}, wantErr: "no host"},
		{name: "unparsable", cfg: misp.Config{BaseURL: "https://misp.example:port"}, wantErr: "API_URL"},
		{name: "credentials", cfg: misp.Config{BaseURL: "https://u:secret@misp.example"}, wantErr: "credentials"},
		{name: "query", cfg: misp.Config{BaseURL: "https://misp.example/?a=b"}, wantErr: "query"},
		{name: "missing CA file", cfg: misp.Config{BaseURL: "https://misp.example", CAFile: filepath.Join(dir, "nope.pem")}, wantErr: "MISP_CA_FILE"},
		{name: "CA file without PEM", cfg: misp.Config{BaseURL: "https://misp.example", CAFile: notPEM}, wantErr: "MISP_CA_FILE"},
		{name: "negative timeout", cfg: misp.Config{BaseURL: "https://misp.example", Timeout: -1}, wantErr: "Timeout"},
		{name: "negative page size", cfg: misp.Config{BaseURL: "https://misp.example", PageSize: -1}, wantErr: "PageSize"},
		{name: "negative max pages", cfg: misp.Config{BaseURL: "https://misp.example", MaxPages: -1}, wantErr: "MaxPages"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := misp.New(tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New() error = %v, want one mentioning %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error repeats the URL's password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New() error = %v", err)
			}
			if got := c.BaseURL(); got != tc.wantBase {
				t.Errorf("BaseURL() = %q, want %q", got, tc.wantBase)
			}
		})
	}
}

func TestRequests(t *testing.T) {
	wantHeaders := map[string]string{
		"Authorization": testKey,
		"Accept":        "application/json",
		"Content-Type":  "application/json",
		"User-Agent":    "misp-relay-test/1.0",
	}
	tests := []struct {
		name     string
		answer   string
		call     func(*misp.Client) error
		wantPath string
		wantBody map[string]any
		wantVerb string
	}{
		{
			name:   "search",
			answer: `{"response":{"Attribute":[]}}`,
			call: func(c *misp.Client) error {
				_, err := c.Search(context.Background(), testKey, intel.Query{Value: "evil.example", Types: []string{"domain", "domain|ip"}, Limit: 5})
				return err
			},
			wantVerb: http.MethodPost,
			wantPath: "/misp/attributes/restSearch",
			wantBody: map[string]any{
				"returnFormat": "json", "value": "evil.example", "type": []any{"domain", "domain|ip"},
				"includeContext": 1.0, "includeEventTags": 1.0, "includeWarninglistHits": 0.0, "includeSightings": 1.0, "includeDecayScore": 1.0, "limit": 7.0, "page": 1.0,
			},
		},
		{
			name:   "search with warninglist hits",
			answer: `{"response":{"Attribute":[]}}`,
			call: func(c *misp.Client) error {
				_, err := c.Search(context.Background(), testKey, intel.Query{Value: "evil.example", Types: []string{"domain"}, Limit: 5, Warnings: true})
				return err
			},
			wantVerb: http.MethodPost,
			wantPath: "/misp/attributes/restSearch",
			wantBody: map[string]any{
				"returnFormat": "json", "value": "evil.example", "type": []any{"domain"},
				"includeContext": 1.0, "includeEventTags": 1.0, "includeWarninglistHits": 1.0, "includeSightings": 1.0, "includeDecayScore": 1.0, "limit": 7.0, "page": 1.0,
			},
		},
		{
			name:   "search without types sends an empty list",
			answer: `{"response":[]}`,
			call: func(c *misp.Client) error {
				_, err := c.Search(context.Background(), testKey, intel.Query{Value: "a&b<c>", Limit: 5})
				return err
			},
			wantVerb: http.MethodPost,
			wantPath: "/misp/attributes/restSearch",
			wantBody: map[string]any{
				"returnFormat": "json", "value": "a&b<c>", "type": []any{},
				"includeContext": 1.0, "includeEventTags": 1.0, "includeWarninglistHits": 0.0, "includeSightings": 1.0, "includeDecayScore": 1.0, "limit": 7.0, "page": 1.0,
			},
		},
		{
			name:     "version",
			answer:   `{"version":"2.5.1"}`,
			call:     func(c *misp.Client) error { _, err := c.Version(context.Background(), testKey); return err },
			wantVerb: http.MethodGet,
			wantPath: "/misp/servers/getVersion",
		},
		{
			name:   "sighting",
			answer: `{"Sighting":{"id":"1"}}`,
			call: func(c *misp.Client) error {
				return c.AddSighting(context.Background(), testKey, "8.8.8.8", intel.FalsePositive, "XDR")
			},
			wantVerb: http.MethodPost,
			wantPath: "/misp/sightings/add",
			wantBody: map[string]any{"values": []any{"8.8.8.8"}, "type": "1", "source": "XDR"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := answering(t, misptest.Raw(http.StatusOK, "application/json", tc.answer))
			c := newClient(t, srv.URL+"/misp/", func(cfg *misp.Config) { cfg.PageSize = 7 })
			if err := tc.call(c); err != nil {
				t.Fatalf("call: %v", err)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != tc.wantVerb || r.Path != tc.wantPath {
				t.Errorf("request = %s %s, want %s %s", r.Method, r.Path, tc.wantVerb, tc.wantPath)
			}
			for name, want := range wantHeaders {
				if got := r.Header.Values(name); len(got) != 1 || got[0] != want {
					t.Errorf("header %s = %q, want exactly [%q]", name, got, want)
				}
			}
			var body map[string]any
			if len(r.Body) > 0 {
				if err := json.Unmarshal(r.Body, &body); err != nil {
					t.Errorf("request body is not a JSON object: %q", r.Body)
				}
			}
			if diff := cmp.Diff(tc.wantBody, body); diff != "" {
				t.Errorf("request body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConcurrentSearches(t *testing.T) {
	var events [][]byte
	for i := range 5 {
		events = append(events, feedEvent(t, fmt.Sprintf("00000000-0000-4000-8000-%012d", i), "e", "2", "ORG", nil,
			attr("ip-dst", "Network activity", "192.0.2.1", true),
			attr("ip-dst", "Network activity", fmt.Sprintf("192.0.2.%d", 10+i), true)))
	}
	srv := misptest.New(t, testKey, events...)
	c := newClient(t, srv.URL, func(cfg *misp.Config) { cfg.PageSize = 2 })
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			got, err := c.Search(context.Background(), testKey, intel.Query{Value: "192.0.2.1", Types: []string{"ip-dst"}, Limit: 3 + i%3})
			if err != nil {
				t.Errorf("Search: %v", err)
				return
			}
			if len(got) != 3+i%3 {
				t.Errorf("got %d events, want %d", len(got), 3+i%3)
			}
		})
	}
	wg.Wait()
}
