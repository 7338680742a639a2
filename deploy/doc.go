// Package deploy holds no code: it is the home of the deployment files, whose tests keep them
// in step with the relay.
//
//   - template.yaml: an AWS SAM template for the relay on AWS Lambda behind a Function URL
//     (package built by `make lambda`).
//   - module_type.json: an XDR module definition for configuration tokens (RS256, JWKS): XDR
//     signs the module's configuration (MISP host, API key) into each request's token.
//   - module_settings.json: the generic-module (HS256) settings of the original relays: the
//     claims of the token `relay jwt` makes.
package deploy
