package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/misp-relay/misp-relay/internal/auth"
)

// makeJWT is `relay jwt`: the replacement for the original relays' JWT generator.
func makeJWT(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("jwt", flag.ContinueOnError)
	fs.SetOutput(stdout)
	key := fs.String("key", "", "MISP API key (required): the relay calls MISP with it")
	urlscanKey := fs.String("urlscan-key", "", "urlscan.io API key (optional): enables the scan action")
	secret := fs.String("secret", "", "SECRET_KEY to sign with (default: a new random one)")
	format := fs.String("format", "text", "text (instructions) or env (SECRET_KEY=... and RELAY_JWT=... lines for a shell)")
	var others []auth.MISP
	fs.Func("misp", "another MISP to ask besides API_URL's, as https://host=API_KEY (repeatable, at most 4; each host must be in MISP_ALLOWED_HOSTS)", func(v string) error {
		host, k, ok := strings.Cut(v, "=")
		if !ok || strings.TrimSpace(host) == "" || k == "" {
			return errors.New("want https://host=API_KEY")
		}
		others = append(others, auth.MISP{Host: strings.TrimSpace(host), Key: k})
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *key == "" {
		return errors.New("jwt: --key (the MISP API key) is required")
	}
	if *secret == "" {
		*secret = randomSecret()
	}
	token, err := auth.Sign(*secret, auth.Claims{Key: *key, URLScanKey: *urlscanKey, OtherMISPs: others})
	if err != nil {
		return fmt.Errorf("jwt: %w", err)
	}
	switch *format {
	case "env":
		_, err = fmt.Fprintf(stdout, "SECRET_KEY=%s\nRELAY_JWT=%s\n", *secret, token)
	case "text":
		_, err = fmt.Fprintf(stdout, jwtInstructions, *secret, token)
	default:
		err = fmt.Errorf("jwt: unknown --format %q (text or env)", *format)
	}
	return err
}

// jwtInstructions is the text of `relay jwt`: what the original tr-05-jwt-generator told its
// users, for the places this relay runs. The two %s are the secret and the token.
const jwtInstructions = `SECRET_KEY: %s
JWT:        %s

What to set where:
  1. The relay: set the environment variable SECRET_KEY to the value above, and API_URL to
     your MISP base URL (e.g. https://misp.example.org). Keep SECRET_KEY secret: whoever has
     it can mint tokens.
       - AWS Lambda (deploy/template.yaml): sam deploy --guided asks for SecretKey and
         MispURL; or in the console: Configuration > Environment variables > SECRET_KEY,
         API_URL.
       - A container or a host: -e SECRET_KEY=... -e API_URL=... (or a systemd
         Environment= line), then relay serve.
  2. XDR / SecureX: Administration > Integrations > add a "Generic" (relay) module with
       URL                         = the relay's https base URL (on Lambda, the stack's
                                     RelayURL output: https://<id>.lambda-url.<region>.on.aws/)
       Authorization Bearer Token  = the JWT above.
  3. Check: curl -X POST -H "Authorization: Bearer <JWT>" https://<your relay>/health
     answers {"data":{"status":"ok"}}.
The JWT carries the MISP API key: paste it only into the module form. To change a key, run
relay jwt again with --secret <the SECRET_KEY above> and update the module.
`

// randomSecret returns 64 random letters and digits (crypto/rand's base32 text: 320 bits).
func randomSecret() string {
	return (rand.Text() + rand.Text() + rand.Text())[:64]
}
