# misp-relay. Go 1.26.8 (the machine's) has known net/http and crypto/x509 vulnerabilities:
# every target builds and tests with go1.27.3, fetched from the Go module proxy.
export GOTOOLCHAIN := go1.27.3

GO      ?= go
LINT    := $(GO) tool -modfile=tools.mod golangci-lint
BIN     := bin/relay
PORT    ?= 8080

.PHONY: all build run test vet lint generate generate-check bench fuzz clean

all: test build

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/relay

## run: serve the sample MISP feed on :$(PORT) with a fresh SECRET_KEY, printing a ready JWT and curl line.
run: build
	@eval "$$($(BIN) jwt --key sample-misp-key --format env)"; \
	echo "misp-relay on the sample feed (sample/feed), http://localhost:$(PORT)"; \
	echo "JWT: $$RELAY_JWT"; \
	echo "Try:"; \
	echo "  curl -s -X POST -H \"Authorization: Bearer $$RELAY_JWT\" -H 'Content-Type: application/json' --data @sample/observables.json http://localhost:$(PORT)/observe/observables"; \
	echo; \
	SECRET_KEY="$$SECRET_KEY" API_URL="$(CURDIR)/sample/feed" MISP_UI_URL="$${MISP_UI_URL:-}" PORT=$(PORT) LOG_FORMAT=text exec $(BIN) serve

## test: vet, lint, and every test with the race detector.
test: vet lint
	$(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...

lint:
	$(LINT) run ./...

## generate: regenerate internal/gen and pkg/relayclient from api/openapi.yaml.
generate:
	$(GO) generate ./internal/gen ./pkg/relayclient

## generate-check: fail when the committed generated code differs from a fresh generation.
generate-check: generate
	@git diff --exit-code -- internal/gen pkg/relayclient || { echo "generated code is stale: run make generate and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- internal/gen pkg/relayclient)" || { git status --porcelain -- internal/gen pkg/relayclient; echo "untracked generated files"; exit 1; }

clean:
	rm -rf bin
