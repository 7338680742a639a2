package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/testkit"
	"github.com/misp-relay/misp-relay/pkg/relayclient"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"MISP_TIMEOUT": "soon"}, "MISP_TIMEOUT"},
		{map[string]string{"MISP_VERIFY_CERT": "maybe"}, "MISP_VERIFY_CERT"},
		{map[string]string{"MISP_CONCURRENCY": "-1"}, "MISP_CONCURRENCY"},
		{map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{map[string]string{"API_URL": "ftp://misp.example"}, "API_URL"},
		{map[string]string{"API_URL": "/no/such/feed/dir"}, "API_URL"},
		{map[string]string{"URLSCAN_VISIBILITY": "everyone"}, "URLSCAN"},
		{map[string]string{"API_URL": "https://misp.example", "MISP_CA_FILE": "/no/such/ca.pem"}, "API_URL"},
		// Every other setting that can be malformed names itself too.
		{map[string]string{"PORT": "abc"}, "PORT"},
		{map[string]string{"PORT": "70000"}, "PORT"},
		{map[string]string{"MISP_UI_URL": "misp.example"}, "MISP_UI_URL"},
		{map[string]string{"METRICS_ADDR": "9090"}, "METRICS_ADDR"},
		{map[string]string{"CACHE_TTL": "forever"}, "CACHE_TTL"},
		{map[string]string{"CACHE_SIZE": "0"}, "CACHE_SIZE"},
		{map[string]string{"MAX_BODY_BYTES": "1MB"}, "MAX_BODY_BYTES"},
		{map[string]string{"MAX_OBSERVABLES": "-5"}, "MAX_OBSERVABLES"},
		{map[string]string{"LOG_FORMAT": "xml"}, "LOG_FORMAT"},
		{map[string]string{"MISP_ALLOWED_HOSTS": "ftp://x/y"}, "MISP_ALLOWED_HOSTS"},
		{map[string]string{"URLSCAN_API_URL": "urlscan.io"}, "URLSCAN_API_URL"},
	}
	for _, tt := range tests {
		if _, ok := tt.env["PORT"]; !ok {
			tt.env["PORT"] = "0"
		}
		err := Run(context.Background(), testkit.Env(tt.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("env %v: err = %v, want one naming %s", tt.env, err, tt.want)
		}
	}
}

func TestEntitiesLimitFallsBack(t *testing.T) {
	for _, v := range []string{"", "abc", "0", "-3", "5.7"} {
		cfg, err := loadConfig(testkit.Env(map[string]string{"CTR_ENTITIES_LIMIT": v}))
		if err != nil || cfg.entitiesLimit != 100 {
			t.Errorf("CTR_ENTITIES_LIMIT=%q: limit %d, err %v; want 100", v, cfg.entitiesLimit, err)
		}
	}
	if cfg, _ := loadConfig(testkit.Env(map[string]string{"CTR_ENTITIES_LIMIT": "7"})); cfg.entitiesLimit != 7 {
		t.Errorf("CTR_ENTITIES_LIMIT=7 gave %d", cfg.entitiesLimit)
	}
}

// TestServeSampleFeed is the newcomer's path: the relay on the shipped sample feed, called
// with the generated client, then a graceful shutdown.
func TestServeSampleFeed(t *testing.T) {
	const secret = "test-secret"
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, testkit.Env(map[string]string{
			"PORT": "0", "SECRET_KEY": secret, "API_URL": "../../sample/feed",
			"MISP_UI_URL": "https://misp.example.org",
		}), pw)
		pw.Close()
	}()
	addr := testkit.FollowLog(pr).ListeningAddr(t)

	tok := testkit.JWT(t, secret, auth.Claims{Key: "sample"})
	c, err := relayclient.NewClientWithResponses("http://"+addr, relayclient.WithRequestEditorFn(
		func(_ context.Context, req *http.Request) error {
			req.Header.Set("Authorization", "Bearer "+tok)
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	health, err := c.HealthWithResponse(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if health.JSON200 == nil || health.JSON200.Data == nil || health.JSON200.Data.Status != "ok" {
		t.Fatalf("health = %s", health.Body)
	}

	raw, err := os.ReadFile("../../sample/observables.json")
	if err != nil {
		t.Fatal(err)
	}
	var obs relayclient.ObservableList
	if err := json.Unmarshal(raw, &obs); err != nil {
		t.Fatal(err)
	}
	observe, err := c.ObserveObservablesWithResponse(ctx, nil, obs)
	if err != nil {
		t.Fatal(err)
	}
	d := observe.JSON200.Data
	if d == nil || d.Verdicts == nil || d.Verdicts.Count != len(obs)-1 {
		t.Fatalf("observe on the sample: want a verdict for every sample observable but the unknown one, got %s", observe.Body)
	}
	refer, err := c.ReferObservablesWithResponse(ctx, nil, obs)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(*refer.JSON200.Data); n != len(obs) {
		t.Errorf("refer gave %d links, want %d", n, len(obs))
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the relay did not shut down")
	}
}

func TestLogFormat(t *testing.T) {
	for _, tt := range []struct {
		format string
		json   bool
	}{{"", true}, {"auto", true}, {"json", true}, {"text", false}} {
		cfg, err := loadConfig(testkit.Env(map[string]string{"LOG_FORMAT": tt.format}))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		newLogger(cfg, &out).Info("hello") // a buffer is not a terminal
		if got := strings.HasPrefix(out.String(), "{"); got != tt.json {
			t.Errorf("LOG_FORMAT=%q wrote %q", tt.format, out.String())
		}
	}
	if _, err := loadConfig(testkit.Env(map[string]string{"LOG_FORMAT": "xml"})); err == nil {
		t.Error("LOG_FORMAT=xml accepted")
	}
}
