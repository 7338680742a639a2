package app

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

func TestPolicyConfigErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "lists", "broken")
	if err := os.MkdirAll(bad, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, "list.json"), []byte(`{"name":"x","type":"string","list":[`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"BENIGN_TAGS": "tlp:white,*"}, []string{"BENIGN_TAGS"}},
		{map[string]string{"MALICIOUS_TAGS": "*"}, []string{"MALICIOUS_TAGS"}},
		{map[string]string{"SUSPICIOUS_TAGS": " * "}, []string{"SUSPICIOUS_TAGS"}},
		{map[string]string{"WARNINGLISTS_DIR": "/no/such/dir"}, []string{"WARNINGLISTS_DIR", "/no/such/dir"}},
		// A list that does not parse stops the relay, naming the file.
		{map[string]string{"WARNINGLISTS_DIR": filepath.Dir(filepath.Dir(bad))}, []string{"WARNINGLISTS_DIR", filepath.Join(bad, "list.json")}},
	}
	for _, tt := range tests {
		_, err := New(testkit.Env(tt.env), io.Discard)
		for _, want := range tt.want {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("env %v: err = %v, want one naming %s", tt.env, err, want)
			}
		}
	}
	cfg, err := loadConfig(testkit.Env(map[string]string{"MALICIOUS_TAGS": "misp-galaxy:threat-actor=*, tlp:red", "TRUSTED_ORGS": "CIRCL, 55f6ea5e-2c60-40e5-964f-47a8950d210f"}))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.policy.Malicious.Match(`misp-galaxy:threat-actor="APT28"`) || !cfg.policy.Malicious.Match("TLP:RED") || len(cfg.policy.TrustedOrgs) != 2 {
		t.Errorf("policy = %+v", cfg.policy)
	}
	if cfg, _ := loadConfig(testkit.Env(nil)); !cfg.policy.Benign.Empty() || !cfg.policy.Malicious.Empty() || !cfg.policy.Suspicious.Empty() || cfg.policy.TrustedOrgs != nil || cfg.warninglistsDir != "" {
		t.Errorf("defaults: %+v", cfg.policy)
	}
}

// TestSampleWarninglists is what make run shows: the sample feed with the sample warninglists
// answers 8.8.8.8 Common, naming the relay's list, and logs what it loaded.
func TestSampleWarninglists(t *testing.T) {
	disp, reason, logs := sample8888(t, nil)
	if !strings.Contains(logs, `"msg":"warninglists loaded"`) || !strings.Contains(logs, `"entries":62754`) {
		t.Errorf("start-up log: %s", logs)
	}
	if disp != "Common" || !strings.Contains(reason, `on the relay's warninglist "List of known IPv4 public DNS resolvers"`) {
		t.Errorf("8.8.8.8 is %s: %q; want Common by the relay's list", disp, reason)
	}
}

// TestAdvisoryWarninglists: WARNINGLISTS_ADVISORY names lists (by directory or name) that are
// named in the reason but never decide; a name no loaded list has is kept for MISP's lists
// and said at start-up.
func TestAdvisoryWarninglists(t *testing.T) {
	for _, item := range []string{"public-dns-v4", "list of known ipv4 public dns resolvers"} {
		disp, reason, logs := sample8888(t, map[string]string{"WARNINGLISTS_ADVISORY": item + ", List of known Amazon AWS IP address ranges"})
		if disp != "Malicious" || !strings.Contains(reason, `advisory: on the relay's warninglist "List of known IPv4 public DNS resolvers"`) {
			t.Errorf("%s: 8.8.8.8 is %s: %q; want the High event's Malicious, the list named as advisory", item, disp, reason)
		}
		if !strings.Contains(logs, `"msg":"advisory warninglists: named in reasons, never deciding","lists":"List of known IPv4 public DNS resolvers; List of known Amazon AWS IP address ranges"`) ||
			!strings.Contains(logs, `"names":"List of known Amazon AWS IP address ranges"`) {
			t.Errorf("%s: start-up log: %s", item, logs)
		}
	}
	cfg, err := loadConfig(testkit.Env(map[string]string{"WARNINGLISTS_ADVISORY": " amazon-aws ,, cloudflare "}))
	if err != nil || !slices.Equal(cfg.advisory, []string{"amazon-aws", "cloudflare"}) {
		t.Errorf("advisory = %q, %v", cfg.advisory, err)
	}
}

// sample8888 serves the sample feed with the sample warninglists (and env) and returns the
// verdict of 8.8.8.8, its judgement's reason and the start-up log.
func sample8888(t *testing.T, env map[string]string) (disposition, reason, logs string) {
	t.Helper()
	const secret = "test-secret"
	all := map[string]string{
		"SECRET_KEY": secret, "API_URL": "../../sample/feed", "WARNINGLISTS_DIR": "../../sample/warninglists", "LOG_FORMAT": "json",
	}
	maps.Copy(all, env)
	var buf testkit.SyncBuffer
	a, err := New(testkit.Env(all), &buf)
	if err != nil {
		t.Fatal(err)
	}
	logs = buf.String() // the start-up lines; request lines follow, written as answers end
	srv := httptest.NewServer(a.Handler)
	defer srv.Close()
	tok, err := auth.Sign(secret, auth.Claims{Key: "sample"})
	if err != nil {
		t.Fatal(err)
	}
	obs, err := os.ReadFile("../../sample/observables.json")
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/observe/observables", bytes.NewReader(obs))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Data struct {
			Verdicts struct {
				Docs []struct {
					DispositionName string            `json:"disposition_name"`
					Observable      map[string]string `json:"observable"`
					JudgementID     string            `json:"judgement_id"`
				} `json:"docs"`
			} `json:"verdicts"`
			Judgements struct {
				Docs []struct {
					ID     string `json:"id"`
					Reason string `json:"reason"`
				} `json:"docs"`
			} `json:"judgements"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	for _, v := range got.Data.Verdicts.Docs {
		if v.Observable["value"] != "8.8.8.8" {
			continue
		}
		for _, j := range got.Data.Judgements.Docs {
			if j.ID == v.JudgementID {
				return v.DispositionName, j.Reason, logs
			}
		}
		return v.DispositionName, "", logs
	}
	t.Fatal("no verdict for 8.8.8.8")
	return "", "", ""
}

// TestWarninglistCheckFailsThroughTheCache: wired as serve wires it (cache on), a failed
// warninglist check makes the relay search the value again with MISP's hits, and 198.51.100.23
// of a High event, on a MISP list, is Common; the answer with the hits is cached apart from
// the one without, so the next request, whose check fails again (failures are not cached),
// takes it from the cache: two searches in all.
func TestWarninglistCheckFailsThroughTheCache(t *testing.T) {
	m := misptest.New(t, lambdaMISPKey, []byte(lambdaEvent))
	m.Warninglist("List of known IPv4 addresses of a CDN", "198.51.100.23")
	m.Fail("/warninglists/checkValue", http.StatusServiceUnavailable, `{"name":"busy","message":"busy","url":"/warninglists/checkValue"}`)
	a, err := New(testkit.Env(map[string]string{"SECRET_KEY": lambdaSecret, "API_URL": m.URL, "CACHE_TTL": "1h"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	for i := range 2 {
		req := httptest.NewRequest(http.MethodPost, "/deliberate/observables", strings.NewReader(lambdaObservables))
		req.Header.Set("Authorization", "Bearer "+lambdaToken(t))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		a.Handler.ServeHTTP(rec, req)
		if !strings.Contains(rec.Body.String(), `"disposition_name":"Common"`) {
			t.Errorf("request %d: %s, want Common by MISP's list", i+1, rec.Body.String())
		}
	}
	var searches, checks int
	for _, r := range m.Requests() {
		switch r.Path {
		case "/attributes/restSearch":
			searches++
		case "/warninglists/checkValue":
			checks++
		}
	}
	if searches != 2 || checks != 2 {
		t.Errorf("%d searches and %d checks, want 2 and 2", searches, checks)
	}
}
