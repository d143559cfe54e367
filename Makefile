# taskpulse — see README.md. `make run` serves the demo; `make test` is the
# whole suite (Go with -race, then the Node clients against the real binary).
GO   ?= go
BIN  ?= bin/taskpulse
NPM  ?= npm

.PHONY: all build run run-cluster test test-go test-js lint generate bench load clean

all: build

build:
	$(GO) build -o $(BIN) .

# Serves on the embedded default (SQLite file + in-process broker) with
# demo data; the log prints the playground URL and ready tokens.
run: build
	ADDR=$${ADDR:-127.0.0.1:8080} DATABASE_URL=$${DATABASE_URL:-sqlite:taskpulse.db} ./$(BIN) serve --demo

# Two instances (127.0.0.1:8081, :8082) on the machine's PostgreSQL and
# Redis behind HAProxy on 127.0.0.1:8080 (installed if missing): see
# scripts/run-cluster.sh for its variables, README.md "Production".
run-cluster: build
	BIN=$(BIN) bash scripts/run-cluster.sh

test: test-go test-js

test-go:
	$(GO) test -race -count=1 ./...
	# The per-connection memory budget is asserted only without the race
	# detector, which inflates stacks and heap.
	$(GO) test -count=1 -run '^TestMemoryPerConnection$$' ./realtime/transport/

test-js: build
	cd test/js && $(NPM) ci --no-audit --no-fund --loglevel=error
	cd test/js && TASKPULSE_BIN=$(abspath $(BIN)) node --test --test-concurrency=1

# vet, formatting, and generated code that matches the schema.
lint:
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	@state() { git diff --no-ext-diff -- . ; git ls-files --others --exclude-standard -- graph resolvers; }; \
	  before=$$(state | sha256sum); $(GO) generate ./... && after=$$(state | sha256sum); \
	  if [ "$$before" != "$$after" ]; then \
	    echo "go generate changed files: run 'make generate' and commit the result"; git status --short; exit 1; fi

generate:
	$(GO) generate ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./realtime/...

clean:
	rm -rf bin
