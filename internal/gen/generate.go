// Package gen holds the code generated from api/openapi.yaml: the chi strict server, the models
// and the embedded spec. Never edit *.gen.go; change the spec and run `make generate`.
package gen

//go:generate go tool oapi-codegen -config cfg.yaml ../../api/openapi.yaml
