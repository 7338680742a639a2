# misp-relay. Go 1.26.8 (the machine's) has known net/http and crypto/x509 vulnerabilities:
# every target builds and tests with go1.27.3, fetched from the Go module proxy.
export GOTOOLCHAIN := go1.27.3

GO      ?= go
LINT    := $(GO) tool -modfile=tools.mod golangci-lint
BIN     := bin/relay
PORT    ?= 8080

# npm tools for the spec checks, pinned exactly; npx --yes fetches them on first use.
# Redocly 2.55.0 is the newest release that runs on Node.js 20 without printing a deprecation
# banner (later ones pass too: make lint-spec REDOCLY_VERSION=2.77.0). Prism 5.14.2 is the
# newest that runs on Node.js 20 (5.15.10 and later need Node.js 24).
NPX              := npx --yes
REDOCLY_VERSION  ?= 2.55.0
SPECTRAL_VERSION ?= 6.16.3
PRISM_VERSION    ?= 5.14.2

.PHONY: all build run test test-misp vet lint generate generate-check bench fuzz clean lambda lint-spec ts-client prism-check trace-observe

all: test build

build:
	@echo "building $(BIN) (the first run downloads the go1.27.3 toolchain, about 75 MB, and the modules, about 20 MB, from the Go module proxy: about 3 minutes; then seconds)"
	$(GO) build -trimpath -o $(BIN) ./cmd/relay

## run: serve the sample MISP feed on :$(PORT) with a fresh SECRET_KEY, printing it with a ready
## JWT and curl lines. Refer links point at MISP_UI_URL, https://misp.example (fictitious) unless
## set: make run MISP_UI_URL=https://misp.example.org (MISP_UI_URL= gives no links). FEEDS adds
## public feeds, loaded in the background: make run FEEDS=circl=https://www.circl.lu/doc/misp/feed-osint/
MISP_UI_URL ?= https://misp.example
FEEDS ?=
FEED_REFRESH ?=
run: build
	@eval "$$($(BIN) jwt --key sample-misp-key --format env)"; \
	echo "misp-relay on the sample feed (sample/feed), http://localhost:$(PORT), $(if $(MISP_UI_URL),refer links to MISP_UI_URL=$(MISP_UI_URL),no refer links (MISP_UI_URL is empty))"; \
	echo "SECRET_KEY=$$SECRET_KEY"; \
	echo "RELAY_JWT=$$RELAY_JWT"; \
	echo "Try (enrich, then the links back into MISP):"; \
	echo "  curl -s -X POST -H \"Authorization: Bearer $$RELAY_JWT\" -H 'Content-Type: application/json' --data @sample/observables.json http://localhost:$(PORT)/observe/observables"; \
	echo "  curl -s -X POST -H \"Authorization: Bearer $$RELAY_JWT\" -H 'Content-Type: application/json' --data @sample/observables.json http://localhost:$(PORT)/refer/observables"; \
	$(if $(FEEDS),echo "Public feeds (FEEDS=$(FEEDS)) load in the background: see the \"feed loading\" and \"feed loaded\" lines.";) \
	echo "The verdict policy on an OSINT-style Low event and values only a warninglist knows (README, Verdicts):"; \
	echo "  curl -s -X POST -H \"Authorization: Bearer $$RELAY_JWT\" -H 'Content-Type: application/json' --data @sample/observables-policy.json http://localhost:$(PORT)/deliberate/observables"; \
	echo "Dashboard tiles (README, Dashboard tiles; the sample's events date from 2023 and 2024):"; \
	echo "  curl -s -X POST -H \"Authorization: Bearer $$RELAY_JWT\" http://localhost:$(PORT)/tiles"; \
	echo "  curl -s -X POST -H \"Authorization: Bearer $$RELAY_JWT\" -H 'Content-Type: application/json' --data '{\"tile_id\":\"misp-summary\",\"period\":\"last_90_days\"}' http://localhost:$(PORT)/tiles/tile-data"; \
	echo; \
	SECRET_KEY="$$SECRET_KEY" API_URL="$(CURDIR)/sample/feed" WARNINGLISTS_DIR="$(CURDIR)/sample/warninglists" MISP_UI_URL="$(MISP_UI_URL)" \
	  FEEDS="$(FEEDS)" FEED_REFRESH="$(FEED_REFRESH)" PORT=$(PORT) LOG_FORMAT=text exec $(BIN) serve

## test: vet, lint, and every test with the race detector.
test: vet lint
	@echo "go test -race ./... (about 5 minutes the first time on 2 cores, when the race-instrumented packages are compiled; about 2 after)"
	$(GO) test -race -count=1 ./...

## test-misp: the integration suite against a real MISP (internal/misplive), which it writes
## to: MISP_TEST_URL and MISP_TEST_KEY (a site admin's key) name it. Without them it says so
## and stops (with CI=true, it fails). See README, "Testing against a real MISP".
test-misp:
	@echo "test-misp: the real-MISP suite against $${MISP_TEST_URL:-(MISP_TEST_URL unset)} (about a minute)"
	$(GO) test -tags misplive -count=1 -v ./internal/misplive/

vet:
	@echo "go vet ./... (the first run downloads the go1.27.3 toolchain and the modules unless make build did, then compiles: 1 to 4 minutes)"
	$(GO) vet -tags misplive ./...

lint:
	@echo "golangci-lint (the first run builds it from tools.mod, downloading about 75 MB of modules: about 13 minutes on 2 cores; then about 20 s)"
	$(LINT) run --allow-serial-runners ./...

## generate: regenerate internal/gen and pkg/relayclient from api/openapi.yaml.
generate:
	@echo "oapi-codegen (the first run downloads and builds it: under a minute)"
	$(GO) generate ./internal/gen ./pkg/relayclient

## generate-check: fail when the committed generated code differs from a fresh generation.
generate-check: generate
	@git diff --exit-code -- internal/gen pkg/relayclient || { echo "generated code is stale: run make generate and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- internal/gen pkg/relayclient)" || { git status --porcelain -- internal/gen pkg/relayclient; echo "untracked generated files"; exit 1; }

## lint-spec: Redocly CLI (recommended rules) and Spectral (spectral:oas) on api/openapi.yaml;
## any error or warning fails.
lint-spec:
	@echo "lint-spec: Redocly CLI $(REDOCLY_VERSION) and Spectral $(SPECTRAL_VERSION) through npx (first run downloads them: about a minute)"
	@out=$$($(NPX) @redocly/cli@$(REDOCLY_VERSION) lint --extends=recommended --format=stylish api/openapi.yaml 2>&1); rc=$$?; \
	  echo "$$out"; \
	  if [ $$rc -ne 0 ] || echo "$$out" | grep -Eq '^ +[0-9]+:[0-9]+ +(error|warning) '; then echo "lint-spec: Redocly found problems"; exit 1; fi
	$(NPX) @stoplight/spectral-cli@$(SPECTRAL_VERSION) lint --fail-severity=warn -r .spectral.yaml api/openapi.yaml

## ts-client: TypeScript contract test. Generates types from the spec (openapi-typescript),
## type-checks contract/ts/src/contract.ts under strict (tsc), then runs it (openapi-fetch)
## against a relay on the sample feed: every operation, 404, 405 and a bad token.
ts-client: build
	@echo "ts-client: npm ci in contract/ts (first run downloads openapi-typescript, openapi-fetch and typescript, about 10 MB: under a minute)"
	cd contract/ts && npm ci --no-audit --no-fund
	cd contract/ts && npm run --silent generate && npm run --silent build
	node contract/with-relay.mjs node contract/ts/dist/contract.js

## prism-check: the relay's answers through Prism's validating proxy, on the sample feed: every
## operation (good input, empty lists, unsupported types, invalid bodies, bad and missing
## tokens), unknown paths, wrong methods and HEAD /watchdog; any violation fails. It first
## checks that a deliberate violation is caught (see contract/prism-check.mjs).
prism-check: build
	@echo "prism-check: Prism $(PRISM_VERSION) through npx (first run downloads it: about a minute)"
	PRISM_VERSION=$(PRISM_VERSION) node contract/with-relay.mjs node contract/prism-check.mjs

## bench: micro-benchmarks of the request path (1s each), then the load benchmark
## (bin/relaybench: the relay wired as relay serve wires it, against a fake MISP on loopback,
## 5s per scenario; it also times bin/relay's start-up).
## make bench BASE=<rev> also builds the relay of commit <rev> (a git worktree under bin/) and
## compares the relay's CPU per request of the two (scenario versus: ratios, on any machine);
## make bench-versus BASE=<rev> runs that comparison alone.
BASE ?=
bench: build $(if $(BASE),bin/relay-base)
	$(GO) build -trimpath -o bin/relaybench ./cmd/relaybench
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1s ./internal/...
	bin/relaybench -relay-bin $(BIN) $(if $(BASE),-base-bin bin/relay-base)

## trace-observe: lists the hand-written files one observe request runs (cache off, from the
## handler to the MISP client and back; generated code left out): the relay built with coverage
## counters, run twice by TestObserveTrace (internal/loadbench), with one observe more the
## second time, and the counters subtracted.
.PHONY: trace-observe
trace-observe:
	rm -rf bin/trace && mkdir -p bin/trace
	$(GO) build -cover -covermode=atomic -coverpkg=./... -o bin/trace/relay ./cmd/relay
	TRACE_BIN=$(CURDIR)/bin/trace/relay TRACE_DIR=$(CURDIR)/bin/trace $(GO) test -count=1 -run '^TestObserveTrace$$' ./internal/loadbench
	$(GO) tool covdata textfmt -i=bin/trace/before -o=bin/trace/before.txt
	$(GO) tool covdata textfmt -i=bin/trace/after -o=bin/trace/after.txt
	@awk 'FNR == 1 { next } NR == FNR { n[$$1] = $$NF; next } $$NF > n[$$1] { split($$1, f, ":"); print f[1] }' \
		bin/trace/before.txt bin/trace/after.txt | grep -v '/internal/gen/' \
		| sed 's|^github.com/misp-relay/misp-relay/||' | sort -u | tee bin/trace/files.txt
	@echo "$$(wc -l < bin/trace/files.txt) hand-written files ran for one observe (bin/trace/files.txt)"

.PHONY: bench-versus bin/relay-base
bench-versus: build bin/relay-base
	$(GO) build -trimpath -o bin/relaybench ./cmd/relaybench
	bin/relaybench -relay-bin $(BIN) -base-bin bin/relay-base -scenarios versus

bin/relay-base:
	@test -n "$(BASE)" || { echo "BASE=<rev> names the commit to compare with"; exit 1; }
	@echo "building the relay of $(BASE) into bin/relay-base (a worktree in bin/base-src)"
	rm -rf bin/base-src && git worktree prune && mkdir -p bin
	git worktree add --detach bin/base-src $(BASE)
	cd bin/base-src && $(GO) build -trimpath -o ../relay-base ./cmd/relay
	git worktree remove --force bin/base-src

clean:
	rm -rf bin

## lambda: AWS Lambda packages (provided.al2023 custom runtime): dist/misp-relay-lambda-<arch>.zip holding bootstrap, for arm64 and amd64.
LAMBDA_ARCHS ?= arm64 amd64

.PHONY: lambda lambda-e2e
lambda:
	@set -e; for arch in $(LAMBDA_ARCHS); do \
	  rm -rf dist/lambda-$$arch && mkdir -p dist/lambda-$$arch; \
	  GOOS=linux GOARCH=$$arch CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags '-s -w' \
	    -o dist/lambda-$$arch/bootstrap ./cmd/relay; \
	  rm -f dist/misp-relay-lambda-$$arch.zip; \
	  if command -v zip >/dev/null; then \
	    (cd dist/lambda-$$arch && zip -q -X ../misp-relay-lambda-$$arch.zip bootstrap); \
	  elif command -v python3 >/dev/null; then \
	    (cd dist/lambda-$$arch && python3 -m zipfile -c ../misp-relay-lambda-$$arch.zip bootstrap); \
	  else \
	    echo "lambda: neither zip nor python3 found (apt-get install zip)"; exit 1; \
	  fi; \
	  echo "dist/misp-relay-lambda-$$arch.zip"; \
	done

## lambda-e2e: only the Lambda end-to-end test (bootstrap under the AWS Lambda Runtime Interface Emulator); make test runs it too.
lambda-e2e:
	$(GO) test -count=1 -run 'TestLambda' -v ./cmd/relay

## fuzz: run every fuzz target for FUZZTIME each (their seed corpora also run in make test).
FUZZTIME ?= 1m
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzRequestBody$$' -fuzztime $(FUZZTIME) ./internal/httpapi
	$(GO) test -run '^$$' -fuzz '^FuzzAuthorization$$' -fuzztime $(FUZZTIME) ./internal/httpapi
	$(GO) test -run '^$$' -fuzz '^FuzzMISPAnswer$$' -fuzztime $(FUZZTIME) ./internal/httpapi
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) ./internal/feed
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeEvents$$' -fuzztime $(FUZZTIME) ./internal/cache
	$(GO) test -run '^$$' -fuzz '^FuzzUnseal$$' -fuzztime $(FUZZTIME) ./internal/cache
