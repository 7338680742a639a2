package httpapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/gen"
	"github.com/misp-relay/misp-relay/internal/httpapi"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/service"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

// fuzzRelay is the full handler in front of a fake MISP whose answer the fuzzer chooses.
type fuzzRelay struct {
	handler http.Handler
	misp    *misptest.Server
	bearer  string
}

// answer makes MISP send raw, byte for byte, to every call.
func (fr *fuzzRelay) answer(raw []byte) {
	fr.misp.Always("", misptest.Raw(http.StatusOK, "application/json", string(raw)))
}

func newFuzzRelay(f *testing.F) *fuzzRelay {
	fr := &fuzzRelay{misp: misptest.New(f, testMISPKey)}
	// Every fuzzed answer is a fresh MISP: no breaker, no retry pauses worth waiting for.
	client, err := misp.New(misp.Config{BaseURL: fr.misp.URL, Timeout: 2 * time.Second, BreakerFailures: 1 << 20})
	if err != nil {
		f.Fatal(err)
	}
	svc, err := service.New(service.Config{Version: "1.0.0", Backend: client, UIURL: fr.misp.URL})
	if err != nil {
		f.Fatal(err)
	}
	fr.handler, err = httpapi.NewHandler(svc, httpapi.Config{Secret: testSecret})
	if err != nil {
		f.Fatal(err)
	}
	fr.bearer = "Bearer " + testkit.JWT(f, testSecret, auth.Claims{Key: testMISPKey})
	return fr
}

func (fr *fuzzRelay) post(path, authorization string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	fr.handler.ServeHTTP(rec, req)
	return rec
}

func contractChecker(f *testing.F) func(t *testing.T, path string, rec *httptest.ResponseRecorder) {
	contract := testkit.LoadContract(f)
	return func(t *testing.T, path string, rec *httptest.ResponseRecorder) {
		t.Helper()
		if rec.Code != http.StatusOK {
			t.Fatalf("%s answered HTTP %d: %s", path, rec.Code, rec.Body)
		}
		contract.Check(t, http.MethodPost, path, rec.Code, rec.Header(), rec.Body.Bytes())
	}
}

// FuzzRequestBody: any body gets the envelope or data, valid against the spec, and a body
// error is always worded the contract's way.
func FuzzRequestBody(f *testing.F) {
	for _, seed := range []string{
		`[]`, `[{"type":"ip","value":"198.51.100.7"}]`, `[{"type":"ip","value":""}]`, `[{"type":"ip"}]`,
		`[{}]`, `[{"type":"ip","value":"1","x":1}]`, `null`, `{}`, `"x"`, `[[1]]`, `[{"type":"ip","value":1}]`,
		`{"action-id":"misp-add-sighting","observable_type":"ip","observable_value":"1"}`,
		`[{"type":"url","value":"http://x/?a&&b"}]`, "[{\"type\":\"ip\",\"value\":\"\xff\"}]", `[{"type":"ip","type":"ip"}]`,
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	fr := newFuzzRelay(f)
	check := contractChecker(f)
	f.Fuzz(func(t *testing.T, body []byte, trigger bool) {
		path := "/observe/observables"
		if trigger {
			path = "/respond/trigger"
		}
		rec := fr.post(path, fr.bearer, body)
		check(t, path, rec)
		var got struct {
			Errors []gen.Error `json:"errors"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("not JSON: %s", rec.Body)
		}
		for _, e := range got.Errors {
			if e.Code == gen.ErrorCodeInvalidArgument && !strings.HasPrefix(e.Message, "Invalid JSON payload received. ") &&
				!strings.HasPrefix(e.Message, "Unknown action-id") && !strings.HasPrefix(e.Message, "The observable") &&
				!strings.HasPrefix(e.Message, "urlscan.io scans") {
				t.Errorf("body error not worded as the contract's: %q", e.Message)
			}
		}
	})
}

// FuzzAuthorization: any Authorization header is an authorization error or a success, never
// a panic or a leak of the secret.
func FuzzAuthorization(f *testing.F) {
	good := testkit.JWT(f, testSecret, auth.Claims{Key: testMISPKey})
	for _, seed := range []string{
		"", "Bearer", "Bearer a b", "bearer " + good, "Bearer " + good, "Basic x",
		"Bearer e30.e30.", "Bearer eyJhbGciOiJub25lIn0.eyJrZXkiOiJ4In0.", "Bearer " + good + "x", "Bearer ....", "\x00",
	} {
		f.Add(seed)
	}
	v := auth.NewVerifier(testSecret)
	f.Fuzz(func(t *testing.T, header string) {
		_, err := v.Verify(header)
		if err == nil {
			return
		}
		var ae *auth.Error
		if !errors.As(err, &ae) {
			t.Fatalf("error %T %v is not an *auth.Error", err, err)
		}
		if strings.Contains(err.Error(), testSecret) {
			t.Fatal("the secret leaked into an error")
		}
	})
}

// healthyAnswer is a restSearch answer with one match, a seed of FuzzMISPAnswer.
const healthyAnswer = `{"response":{"Attribute":[{"id":"1","event_id":"1","type":"ip-dst","category":"Network activity",
 "value":"198.51.100.7","to_ids":true,"timestamp":"1700000000",
 "Event":{"uuid":"` + uuidHigh + `","info":"x","date":"2024-01-01","timestamp":"1700000000","threat_level_id":"1","Orgc":{"name":"ORG"}}}]}}`

// FuzzMISPAnswer: whatever MISP answers, the relay never panics and what it returns is
// spec-valid CTIM (or the error envelope).
func FuzzMISPAnswer(f *testing.F) {
	for _, seed := range []string{
		healthyAnswer,
		`{"response":[]}`,
		`{"response":{"Attribute":[]}}`,
		`{"response":{"Attribute":[{"value":"198.51.100.7","Event":{"uuid":"u","threat_level_id":"7","date":"9999-99-99","timestamp":"-5","Tag":[{"name":"tlp:red"}]}}]}}`,
		`{"response":{"Attribute":[{"value":"198.51.100.7","timestamp":"99999999999999","first_seen":"x","last_seen":"1","Event":{"uuid":"u","info":"` + strings.Repeat("i", 3000) + `","Orgc":{"name":""}}}]}}`,
		`{"response":{"Attribute":[{"Event":{"uuid":"","threat_level_id":1}}]}}`,
		`{"response":{"Attribute":{}}}`, `[1,2]`, `{"response":{"Attribute":[null,1,"x",{}]}}`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	fr := newFuzzRelay(f)
	check := contractChecker(f)
	f.Fuzz(func(t *testing.T, answer []byte) {
		fr.answer(answer)
		for _, path := range []string{"/observe/observables", "/deliberate/observables"} {
			rec := fr.post(path, fr.bearer, []byte(`[{"type":"ip","value":"198.51.100.7"},{"type":"sha256","value":"`+sha256v+`"}]`))
			check(t, path, rec)
		}
	})
}
