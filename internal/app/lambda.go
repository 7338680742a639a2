package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
)

// serveLambda serves handler from AWS Lambda's runtime API instead of a listening socket: the
// same binary, renamed bootstrap, is the function of a provided.al2023 runtime. The Lambda
// runtime sets AWS_LAMBDA_RUNTIME_API, which is how serve knows to come here.
//
// It returns nil when ctx ends (SIGTERM: Lambda is shutting the environment down, and kills
// it shortly after). aws-lambda-go's loop waits for the next invocation on a context of its
// own that nothing cancels, so it runs on its own goroutine and is left behind: waiting for
// it would keep the process alive until Lambda's SIGKILL. If the loop ends, aws-lambda-go
// exits the process itself.
func serveLambda(ctx context.Context, handler http.Handler, log *slog.Logger) error {
	log.Info("relay serving AWS Lambda invocations", "version", Version)
	go lambda.StartWithOptions(lambdaHandler(handler), lambda.WithContext(ctx))
	<-ctx.Done()
	log.Info("shutting down: the Lambda environment is stopping")
	return nil
}

// lambdaEventShape is what tells the HTTP event formats apart.
type lambdaEventShape struct {
	Version        string `json:"version"`
	HTTPMethod     string `json:"httpMethod"`
	RequestContext struct {
		HTTP json.RawMessage `json:"http"`
		ELB  json.RawMessage `json:"elb"`
	} `json:"requestContext"`
}

// lambdaHandler adapts handler to the HTTP events Lambda can deliver, told apart per event so
// that one deployment works behind any of them:
//
//   - payload format 2.0 ("version":"2.0", requestContext.http): Function URLs (buffered) and
//     API Gateway HTTP APIs;
//   - payload format 1.0 (httpMethod): API Gateway REST APIs, and HTTP APIs set to 1.0;
//   - Application Load Balancer target events (requestContext.elb).
//
// Anything else (a test event from the console, a schedule) is an error, which Lambda reports
// to the invoker.
func lambdaHandler(handler http.Handler) func(context.Context, json.RawMessage) (any, error) {
	v2 := httpadapter.NewV2(handler)
	v1 := httpadapter.New(handler)
	alb := httpadapter.NewALB(handler)
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		var shape lambdaEventShape
		if err := json.Unmarshal(raw, &shape); err != nil {
			return nil, fmt.Errorf("the Lambda event is not a JSON object: %w", err)
		}
		switch {
		case shape.Version == "2.0" || len(shape.RequestContext.HTTP) > 0:
			var ev events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(raw, &ev); err != nil {
				return nil, fmt.Errorf("decode a payload 2.0 event: %w", err)
			}
			return v2.ProxyWithContext(ctx, ev)
		case len(shape.RequestContext.ELB) > 0:
			var ev events.ALBTargetGroupRequest
			if err := json.Unmarshal(raw, &ev); err != nil {
				return nil, fmt.Errorf("decode a load balancer event: %w", err)
			}
			return alb.ProxyWithContext(ctx, ev)
		case shape.HTTPMethod != "":
			var ev events.APIGatewayProxyRequest
			if err := json.Unmarshal(raw, &ev); err != nil {
				return nil, fmt.Errorf("decode a payload 1.0 event: %w", err)
			}
			return v1.ProxyWithContext(ctx, ev)
		}
		return nil, errors.New("not an HTTP event: invoke the relay through a Function URL, API Gateway or a load balancer")
	}
}
