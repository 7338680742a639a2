package misp_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
)

// testKey looks like a real MISP key (40 alphanumerics) so leak checks are meaningful.
const testKey = "Zk3fQ9xWm2Lp7Rt5Yv8Bn4Hc6Jd1Gs0Ae2Ui9Oq"

// newClient builds a client for baseURL with short timeouts; mod may adjust the config.
func newClient(t *testing.T, baseURL string, mod ...func(*misp.Config)) *misp.Client {
	t.Helper()
	cfg := misp.Config{BaseURL: baseURL, Timeout: 5 * time.Second, UserAgent: "misp-relay-test/1.0"}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := misp.New(cfg)
	if err != nil {
		t.Fatalf("misp.New: %v", err)
	}
	return c
}

// answering is a fake MISP without events that sends a to every request.
func answering(t *testing.T, a misptest.Answer) *misptest.Server {
	t.Helper()
	srv := misptest.New(t, testKey)
	srv.Always("", a)
	return srv
}

// withHeader is a with the header k: v added.
func withHeader(a misptest.Answer, k, v string) misptest.Answer {
	a.Header = a.Header.Clone()
	if a.Header == nil {
		a.Header = http.Header{}
	}
	a.Header.Set(k, v)
	return a
}

// asError checks that err is a *misp.Error and returns it.
func asError(t *testing.T, err error) *misp.Error {
	t.Helper()
	var me *misp.Error
	if !errors.As(err, &me) {
		t.Fatalf("error %v (%T) is not a *misp.Error", err, err)
	}
	return me
}

// checkNoKey fails when any recognisable part of the key shows in the error text.
func checkNoKey(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	text := err.Error()
	for i := 0; i+8 <= len(testKey); i += 4 {
		if strings.Contains(text, testKey[i:i+8]) {
			t.Errorf("error text leaks the API key (%q found): %s", testKey[i:i+8], text)
			return
		}
	}
}

// feedEvent builds a MISP feed event ({"Event":{...}}) for misptest.
func feedEvent(t *testing.T, uuid, info, threatLevel, org string, tags []string, attrs ...map[string]any) []byte {
	t.Helper()
	var tagList []map[string]any
	for _, n := range tags {
		tagList = append(tagList, map[string]any{"name": n, "colour": "#ffffff", "exportable": true})
	}
	ev := map[string]any{
		"uuid": uuid, "info": info, "date": "2024-01-02", "timestamp": "1704153600",
		"threat_level_id": threatLevel, "analysis": "2", "published": true,
		"Orgc": map[string]any{"name": org, "uuid": "55f6ea5e-2c60-40e5-964f-47a8950d210f"},
		"Tag":  tagList,
	}
	var plain []map[string]any
	var objects []map[string]any
	for _, a := range attrs {
		if _, ok := a["object_relation"]; ok {
			objects = append(objects, map[string]any{"name": "ip-port", "Attribute": []map[string]any{a}})
		} else {
			plain = append(plain, a)
		}
	}
	ev["Attribute"] = plain
	if objects != nil {
		ev["Object"] = objects
	}
	b, err := json.Marshal(map[string]any{"Event": ev})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// attr builds a feed attribute.
func attr(typ, category, value string, toIDS bool, extra ...string) map[string]any {
	a := map[string]any{"type": typ, "category": category, "value": value, "to_ids": toIDS, "timestamp": "1704153600"}
	for i := 0; i+1 < len(extra); i += 2 {
		a[extra[i]] = extra[i+1]
	}
	return a
}
