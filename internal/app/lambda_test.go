package app

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

// Shared by the Lambda tests: one MISP event whose IP the observe calls look up.
const (
	lambdaSecret  = "lambda-test-secret"
	lambdaMISPKey = "LambdaMispKey0123456789abcdefghijABCDEFG"
	lambdaIP      = "198.51.100.23"
	lambdaEvent   = `{"Event":{"uuid":"6a1f5a2e-3c1b-4d2e-9f00-0123456789ab","info":"Lambda test campaign",
	  "date":"2026-01-02","timestamp":"1767312000","threat_level_id":"1","analysis":"2","published":true,
	  "Orgc":{"name":"CIRCL","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d210f"},
	  "Attribute":[{"uuid":"6a1f5a2e-0000-4000-8000-000000000001","type":"ip-dst","category":"Network activity",
	    "value":"198.51.100.23","to_ids":true,"timestamp":"1767312001"}]}}`
	lambdaObservables = `[{"type":"ip","value":"198.51.100.23"}]`
)

// lambdaTestHandler is the relay's handler as serve builds it, in front of a fake MISP.
func lambdaTestHandler(t *testing.T) http.Handler {
	t.Helper()
	m := misptest.New(t, lambdaMISPKey, []byte(lambdaEvent))
	a, err := New(testkit.Env(map[string]string{"SECRET_KEY": lambdaSecret, "API_URL": m.URL}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return a.Handler
}

func lambdaToken(t *testing.T) string {
	t.Helper()
	return testkit.JWT(t, lambdaSecret, auth.Claims{Key: lambdaMISPKey})
}

// functionURLEvent is a Function URL (payload 2.0) event as Lambda delivers it.
func functionURLEvent(method, path, jwt, body string, base64Body bool) events.APIGatewayV2HTTPRequest {
	headers := map[string]string{
		"host":              "abcdefghij.lambda-url.eu-west-1.on.aws",
		"x-forwarded-proto": "https",
		"x-forwarded-port":  "443",
		"content-type":      "application/json",
		"user-agent":        "Cisco XDR",
	}
	if jwt != "" {
		headers["authorization"] = "Bearer " + jwt
	}
	if base64Body {
		body = base64.StdEncoding.EncodeToString([]byte(body))
	}
	return events.APIGatewayV2HTTPRequest{
		Version:  "2.0",
		RouteKey: "$default",
		RawPath:  path,
		Headers:  headers,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			AccountID:    "anonymous",
			APIID:        "abcdefghij",
			DomainName:   "abcdefghij.lambda-url.eu-west-1.on.aws",
			DomainPrefix: "abcdefghij",
			RequestID:    "5a2b4c1e-0000-4000-8000-000000000000",
			Stage:        "$default",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: method, Path: path, Protocol: "HTTP/1.1", SourceIP: "192.0.2.1", UserAgent: "Cisco XDR",
			},
		},
		Body:            body,
		IsBase64Encoded: base64Body,
	}
}

// restAPIEvent is an API Gateway REST API (payload 1.0) event.
func restAPIEvent(method, path, jwt, body string) events.APIGatewayProxyRequest {
	headers := map[string]string{"Host": "abc123.execute-api.eu-west-1.amazonaws.com", "X-Forwarded-Proto": "https"}
	if jwt != "" {
		headers["Authorization"] = "Bearer " + jwt
	}
	return events.APIGatewayProxyRequest{
		Resource:   "/{proxy+}",
		Path:       path,
		HTTPMethod: method,
		Headers:    headers,
		RequestContext: events.APIGatewayProxyRequestContext{
			DomainName: "abc123.execute-api.eu-west-1.amazonaws.com",
			Stage:      "prod",
			HTTPMethod: method,
			Path:       "/prod" + path,
		},
		Body: body,
	}
}

// invokeJSON runs the Lambda handler on ev as the runtime would: JSON in, JSON out.
func invokeJSON(t *testing.T, h func(context.Context, json.RawMessage) (any, error), ev any) (int, string, http.Header) {
	t.Helper()
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	out, err := h(context.Background(), raw)
	if err != nil {
		t.Fatalf("handler: %v", err)
	}
	encoded, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		StatusCode        int                 `json:"statusCode"`
		Headers           map[string]string   `json:"headers"`
		MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
		Body              string              `json:"body"`
		IsBase64Encoded   bool                `json:"isBase64Encoded"`
	}
	if err := json.Unmarshal(encoded, &resp); err != nil {
		t.Fatal(err)
	}
	body := resp.Body
	if resp.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			t.Fatal(err)
		}
		body = string(b)
	}
	header := http.Header{}
	for k, v := range resp.Headers {
		header.Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			header.Add(k, v)
		}
	}
	return resp.StatusCode, body, header
}

func TestLambdaHandler(t *testing.T) {
	h := lambdaHandler(lambdaTestHandler(t))
	tok := lambdaToken(t)
	tests := []struct {
		name       string
		event      any
		wantStatus int
		wantBody   string // exact JSON, or "" to check wantPart
		wantPart   string
	}{
		{"function URL health", functionURLEvent("POST", "/health", tok, "", false), 200, `{"data":{"status":"ok"}}`, ""},
		{"function URL version", functionURLEvent("POST", "/version", "", "", false), 200, `{"version":"` + Version + `"}`, ""},
		{"function URL observe", functionURLEvent("POST", "/observe/observables", tok, lambdaObservables, false), 200, "", `"disposition_name":"Malicious"`},
		{"function URL base64 body", functionURLEvent("POST", "/deliberate/observables", tok, lambdaObservables, true), 200, "", `"verdicts"`},
		{
			"function URL without a token", functionURLEvent("POST", "/health", "", "", false), 200, "",
			`"message":"Authorization failed: Authorization header is missing"`,
		},
		{"function URL unknown path", functionURLEvent("POST", "/nope", tok, "", false), 404, "", `"code":404`},
		{"REST API health", restAPIEvent("POST", "/health", tok, ""), 200, `{"data":{"status":"ok"}}`, ""},
		{"REST API version", restAPIEvent("POST", "/version", "", ""), 200, `{"version":"` + Version + `"}`, ""},
		{"REST API observe", restAPIEvent("POST", "/observe/observables", tok, lambdaObservables), 200, "", `"disposition_name":"Malicious"`},
		{"load balancer version", events.ALBTargetGroupRequest{
			HTTPMethod: "POST", Path: "/version", Headers: map[string]string{"host": "relay.example.com"},
			RequestContext: events.ALBTargetGroupRequestContext{ELB: events.ELBContext{TargetGroupArn: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/relay/0123456789abcdef"}},
		}, 200, `{"version":"` + Version + `"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, header := invokeJSON(t, h, tt.event)
			if status != tt.wantStatus {
				t.Errorf("status = %d, want %d; body %s", status, tt.wantStatus, body)
			}
			if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q", ct)
			}
			if tt.wantBody != "" {
				if diff := cmp.Diff(tt.wantBody, strings.TrimSpace(body)); diff != "" {
					t.Errorf("body (-want +got):\n%s", diff)
				}
			} else if !strings.Contains(body, tt.wantPart) {
				t.Errorf("body lacks %s:\n%s", tt.wantPart, body)
			}
		})
	}
}

func TestLambdaHandlerRefusesOtherEvents(t *testing.T) {
	h := lambdaHandler(http.NotFoundHandler())
	for _, raw := range []string{`{"source":"aws.events","detail-type":"Scheduled Event"}`, `{}`, `[1]`, `"x"`} {
		if _, err := h(context.Background(), json.RawMessage(raw)); err == nil {
			t.Errorf("event %s: no error", raw)
		}
	}
}

// TestLambdaEventsKeepTheAudience checks what a configuration token's default audience is
// behind a Function URL: the URL XDR calls, https.
func TestLambdaEventsKeepTheAudience(t *testing.T) {
	var got string
	h := lambdaHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = auth.RequestAudience(r)
		_, _ = io.WriteString(w, "{}")
	}))
	invokeJSON(t, h, functionURLEvent("POST", "/health", "", "", false))
	if want := "https://abcdefghij.lambda-url.eu-west-1.on.aws"; got != want {
		t.Errorf("Function URL audience = %q, want %q", got, want)
	}
	invokeJSON(t, h, restAPIEvent("POST", "/health", "", ""))
	if want := "https://abc123.execute-api.eu-west-1.amazonaws.com"; got != want {
		t.Errorf("REST API audience = %q, want %q", got, want)
	}
}
