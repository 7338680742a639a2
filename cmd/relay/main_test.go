package main

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/misp-relay/misp-relay/internal/app"
	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

func TestVersionCommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, testkit.Env(nil), &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != app.Version+"\n" {
		t.Errorf("version printed %q", got)
	}
}

func TestUnknownCommand(t *testing.T) {
	err := run(context.Background(), []string{"frobnicate"}, testkit.Env(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "frobnicate") {
		t.Errorf("err = %v, want an unknown-command error", err)
	}
}

func TestJWTCommand(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"jwt", "--key", "misp-key", "--urlscan-key", "us-key", "--format", "env"}, testkit.Env(nil), &out)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		k, v, _ := strings.Cut(line, "=")
		vars[k] = v
	}
	secret := vars["SECRET_KEY"]
	if len(secret) != 64 || strings.Trim(secret, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != "" {
		t.Errorf("SECRET_KEY %q is not 64 letters and digits", secret)
	}
	claims, err := auth.NewVerifier(secret).Verify("Bearer " + vars["RELAY_JWT"])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(claims, auth.Claims{Key: "misp-key", URLScanKey: "us-key"}) {
		t.Errorf("claims = %+v", claims)
	}

	// --misp adds the MISPs asked besides API_URL's.
	out.Reset()
	if err := run(context.Background(), []string{"jwt", "--key", "k1", "--misp", "https://misp2.example=k2", "--misp", "misp3.example=k3", "--format", "env"}, testkit.Env(nil), &out); err != nil {
		t.Fatal(err)
	}
	vars = map[string]string{}
	for line := range strings.Lines(out.String()) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			vars[k] = v
		}
	}
	claims, err = auth.NewVerifier(vars["SECRET_KEY"]).Verify("Bearer " + vars["RELAY_JWT"])
	if err != nil {
		t.Fatal(err)
	}
	if want := []auth.MISP{{Key: "k1"}, {Host: "https://misp2.example", Key: "k2"}, {Host: "misp3.example", Key: "k3"}}; !reflect.DeepEqual(claims.MISPs(), want) {
		t.Errorf("MISPs() = %+v, want %+v", claims.MISPs(), want)
	}
	if err := run(context.Background(), []string{"jwt", "--key", "k1", "--misp", "no-key"}, testkit.Env(nil), io.Discard); err == nil {
		t.Error("--misp without a key succeeded")
	}

	out.Reset()
	if err := run(context.Background(), []string{"jwt", "--key", "k", "--secret", "given"}, testkit.Env(nil), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"SECRET_KEY: given", "JWT:", "API_URL", "Authorization Bearer Token"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("instructions lack %q:\n%s", want, out.String())
		}
	}
	if err := run(context.Background(), []string{"jwt"}, testkit.Env(nil), io.Discard); err == nil {
		t.Error("jwt without --key succeeded")
	}
}

// TestJWTInstructions checks that `relay jwt` says what to set where, for Lambda and for the
// XDR module form, and that --format env stays two lines (make run parses them).
func TestJWTInstructions(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"jwt", "--key", "k", "--secret", "given-secret"}, testkit.Env(nil), &out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"SECRET_KEY: given-secret", "JWT:", "API_URL", "AWS Lambda", "SecretKey", "MispURL",
		"Environment variables", "Generic", "URL", "Authorization Bearer Token", "/health",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("instructions lack %q:\n%s", want, text)
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"jwt", "--key", "k", "--secret", "s", "--format", "env"}, testkit.Env(nil), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "SECRET_KEY=s") || !strings.HasPrefix(lines[1], "RELAY_JWT=") {
		t.Errorf("--format env printed %q, want SECRET_KEY=... and RELAY_JWT=... lines", out.String())
	}
}
