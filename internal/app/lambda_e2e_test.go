//go:build linux

package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

// TestLambdaEndToEnd proves the Lambda path as AWS runs it: the relay built as `bootstrap`
// (the provided.al2023 custom runtime, tags and flags of `make lambda`) under the AWS Lambda
// Runtime Interface Emulator, which plays the Lambda service: it sets AWS_LAMBDA_RUNTIME_API,
// starts bootstrap on the first invocation and relays invocations to it. The events are
// Function URL (payload 2.0) and REST API (payload 1.0) events; MISP is the fake MISP.
func TestLambdaEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the relay and the Lambda emulator: not in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bootstrap, rie := buildLambdaBinaries(ctx, t, dir)

	mispServer := misptest.New(t, lambdaMISPKey, []byte(lambdaEvent))
	addr := startEmulator(ctx, t, dir, rie, bootstrap, map[string]string{
		"SECRET_KEY": lambdaSecret,
		"API_URL":    mispServer.URL,
		"LOG_LEVEL":  "info", // the emulator reads it too
		"LOG_FORMAT": "json",
	})
	invokeURL := "http://" + addr + "/2015-03-31/functions/function/invocations"
	tok := lambdaToken(t)

	tests := []struct {
		name     string
		event    any
		wantBody string // exact, or "" to check wantPart
		wantPart string
	}{
		{"function URL health", functionURLEvent("POST", "/health", tok, "", false), `{"data":{"status":"ok"}}`, ""},
		{"function URL observe", functionURLEvent("POST", "/observe/observables", tok, lambdaObservables, false), "", `"disposition_name":"Malicious"`},
		{
			"function URL bad token", functionURLEvent("POST", "/health", "not.a.jwt", "", false), "",
			`"message":"Authorization failed: Wrong JWT structure"`,
		},
		{"REST API health", restAPIEvent("POST", "/health", tok, ""), `{"data":{"status":"ok"}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := invokeEmulator(ctx, t, invokeURL, tt.event)
			if status != http.StatusOK {
				t.Errorf("proxied status = %d, want 200; body %s", status, body)
			}
			if tt.wantBody != "" && strings.TrimSpace(body) != tt.wantBody {
				t.Errorf("proxied body = %s, want %s", body, tt.wantBody)
			}
			if tt.wantPart != "" && !strings.Contains(body, tt.wantPart) {
				t.Errorf("proxied body lacks %s:\n%s", tt.wantPart, body)
			}
		})
	}
	// The relay called the fake MISP with the key of the token (health and observe).
	var searches int
	for _, r := range mispServer.Requests() {
		if strings.HasPrefix(r.Path, "/attributes/restSearch") {
			searches++
		}
	}
	if searches == 0 {
		t.Errorf("the relay never searched MISP; requests: %v", mispServer.Requests())
	}
}

// buildLambdaBinaries builds bootstrap for this machine as `make lambda` builds it for AWS,
// and the emulator from tools.mod, at the same time.
func buildLambdaBinaries(ctx context.Context, t *testing.T, dir string) (bootstrap, rie string) {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	bootstrap, rie = filepath.Join(dir, "bootstrap"), filepath.Join(dir, "aws-lambda-rie")
	builds := [][]string{
		{"build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", bootstrap, "./cmd/relay"},
		{"build", "-modfile=tools.mod", "-o", rie, "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"},
	}
	var wg sync.WaitGroup
	errs := make([]error, len(builds))
	for i, args := range builds {
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, "go", args...)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return bootstrap, rie
}

// startEmulator runs the emulator on free loopback ports with only the given environment
// (and PATH), so nothing of the developer's shell leaks into the function, and stops it, and
// the bootstrap it started, when the test ends. It returns the invoke address.
func startEmulator(ctx context.Context, t *testing.T, dir, rie, bootstrap string, env map[string]string) string {
	t.Helper()
	addr, runtimeAddr := freeLoopbackAddr(t), freeLoopbackAddr(t)
	cmd := exec.CommandContext(ctx, rie,
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", runtimeAddr,
		bootstrap)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "AWS_LAMBDA_FUNCTION_TIMEOUT=30"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var logs testkit.SyncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	// Its own process group, so that bootstrap (the emulator's child) is stopped with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the emulator: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("emulator and relay output:\n%s", logs.String())
		}
	})
	// The emulator says nothing when it listens: poll until it accepts connections.
	testkit.WaitListening(t, addr)
	return addr
}

// invokeEmulator invokes the function with ev and returns the HTTP answer it proxied.
func invokeEmulator(ctx context.Context, t *testing.T, url string, ev any) (int, string) {
	t.Helper()
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ictx, http.MethodPost, url, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	var out events.APIGatewayV2HTTPResponse // the fields payload 1.0 answers share
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("invoke answered HTTP %d, not a proxy response: %v", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("invoke answered HTTP %d: %+v", resp.StatusCode, out)
	}
	return out.StatusCode, out.Body
}

// freeLoopbackAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
