# chatgpt-api — common tasks. `make run` starts the service, `make test` runs
# every test with the race detector.
GO       ?= go
BIN      := bin/chatgpt-api
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/llm-gateway/chatgpt-api-adapter/internal/app.Version=$(VERSION)
CONFIG   ?= configs/config.yaml

.PHONY: all build run test test-short lint fmt vet generate clean fuzz

FUZZTIME ?= 300000x

all: lint test build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/chatgpt-api

run: build
	./$(BIN) --config $(CONFIG)

test:
	$(GO) test -race -count=1 ./...

test-short:
	$(GO) test -count=1 ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

generate:
	$(GO) generate ./...

# Each fuzz target for FUZZTIME (a duration, or an execution count such as
# 150000x, which CI uses: see .ci/run); new findings land in testdata/fuzz.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeChatRequest$$' -fuzztime $(FUZZTIME) ./internal/adapters/openai/
	$(GO) test -run '^$$' -fuzz '^FuzzChatFastPath$$' -fuzztime $(FUZZTIME) ./internal/adapters/openai/
	$(GO) test -run '^$$' -fuzz '^FuzzFastEmbeddingsRequest$$' -fuzztime $(FUZZTIME) ./internal/adapters/openai/
	$(GO) test -run '^$$' -fuzz '^FuzzAppendString$$' -fuzztime $(FUZZTIME) ./internal/adapters/wire/
	$(GO) test -run '^$$' -fuzz '^FuzzSkip$$' -fuzztime $(FUZZTIME) ./internal/adapters/jsonscan/
	$(GO) test -run '^$$' -fuzz '^FuzzFloat32s$$' -fuzztime $(FUZZTIME) ./internal/adapters/jsonscan/
	$(GO) test -run '^$$' -fuzz '^FuzzParseFloat32$$' -fuzztime $(FUZZTIME) ./internal/adapters/jsonscan/
	$(GO) test -run '^$$' -fuzz '^FuzzSSE$$' -fuzztime $(FUZZTIME) ./internal/adapters/gateway/
	$(GO) test -run '^$$' -fuzz '^FuzzRewriteBody$$' -fuzztime $(FUZZTIME) ./internal/adapters/gateway/
	$(GO) test -run '^$$' -fuzz '^FuzzFastEmbeddings$$' -fuzztime $(FUZZTIME) ./internal/adapters/gateway/
	$(GO) test -run '^$$' -fuzz '^FuzzFastFrame$$' -fuzztime $(FUZZTIME) ./internal/adapters/gateway/
	$(GO) test -run '^$$' -fuzz '^FuzzTextSSE$$' -fuzztime $(FUZZTIME) ./internal/adapters/gateway/
	$(GO) test -run '^$$' -fuzz '^FuzzFastTextFrame$$' -fuzztime $(FUZZTIME) ./internal/adapters/gateway/
	$(GO) test -run '^$$' -fuzz '^FuzzResponsesSSE$$' -fuzztime $(FUZZTIME) ./internal/adapters/gateway/
	$(GO) test -run '^$$' -fuzz '^FuzzFastResponsesEvent$$' -fuzztime $(FUZZTIME) ./internal/adapters/gateway/
	$(GO) test -run '^$$' -fuzz '^FuzzNDJSON$$' -fuzztime $(FUZZTIME) ./internal/adapters/ollama/
	$(GO) test -run '^$$' -fuzz '^FuzzFastLine$$' -fuzztime $(FUZZTIME) ./internal/adapters/ollama/
	$(GO) test -run '^$$' -fuzz '^FuzzGenerate$$' -fuzztime $(FUZZTIME) ./internal/adapters/ollama/
	$(GO) test -run '^$$' -fuzz '^FuzzFastGenerate$$' -fuzztime $(FUZZTIME) ./internal/adapters/ollama/
	$(GO) test -run '^$$' -fuzz '^FuzzFastEmbed$$' -fuzztime $(FUZZTIME) ./internal/adapters/ollama/
	$(GO) test -run '^$$' -fuzz '^FuzzRequestBody$$' -fuzztime $(FUZZTIME) ./internal/adapters/ollama/
	$(GO) test -run '^$$' -fuzz '^FuzzParseDataURL$$' -fuzztime $(FUZZTIME) ./internal/adapters/images/
	$(GO) test -run '^$$' -fuzz '^FuzzSplit$$' -fuzztime $(FUZZTIME) ./internal/adapters/tokenizer/
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./internal/adapters/store/internal/record/

clean:
	rm -rf bin

.PHONY: test-compat
test-compat:
	go test -tags compat -count=1 -v ./test/compat/

# ---- deployments/ -----------------------------------------------------------
# `make docker` builds the image with deployments/Dockerfile. It needs a Docker
# engine: without one it stops with a message and a non-zero exit, so that a
# release script cannot mistake "nothing built" for success.
IMAGE    ?= chatgpt-api
PROMTOOL ?= promtool

.PHONY: docker k8s-validate

docker:
	@command -v docker >/dev/null 2>&1 || { echo "make docker: the docker CLI is not installed; cannot build $(IMAGE):$(VERSION)" >&2; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "make docker: no Docker engine answers 'docker info' (start Docker or set DOCKER_HOST); cannot build $(IMAGE):$(VERSION)" >&2; exit 1; }
	docker build -f deployments/Dockerfile --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) .

# `make k8s-validate` checks what ships in deployments/: the Go tests of the
# deployments module (kustomize render + strict decoding + cross-checks, the
# Dockerfile, .dockerignore, metric names), then promtool on the rules and the
# example Prometheus config. promtool comes from Debian's prometheus package.
k8s-validate:
	cd deployments && $(GO) vet ./... && $(GO) test -count=1 ./...
	@command -v $(PROMTOOL) >/dev/null 2>&1 || { echo "make k8s-validate: promtool is not on PATH; install it with: apt-get update && apt-get install -y prometheus" >&2; exit 1; }
	$(PROMTOOL) check rules deployments/prometheus/rules.yml
	$(PROMTOOL) check config deployments/prometheus/scrape-config.yml
	$(PROMTOOL) test rules deployments/prometheus/rules_test.yml

# Load test: the real service in front of in-process fakes at a fixed
# arrival rate, the gateway down for the middle third; e.g.
# make loadtest ARGS='-rate 300 -duration 30s -stream-ratio 0.3'
.PHONY: loadtest
loadtest:
	$(GO) run ./cmd/loadtest $(ARGS)

# ---- cmd/bench --------------------------------------------------------------
# `make bench` measures on loopback what the service adds over a bare
# httputil.ReverseProxy (the floor) and over calling the upstream directly,
# for the gateway and the Ollama path, and checks the targets: about 14
# minutes. Pass flags with BENCHFLAGS, e.g.
#   make bench BENCHFLAGS='-out /tmp/bench.json -md /tmp/bench.md'
#   make bench BENCHFLAGS='-scenarios embeddings'   # one scenario (see -help)
#   make bench BENCHFLAGS='-profile prof/'   # CPU profiles of service and floor
# `make bench-quick` runs every scenario for a second or two (CI, < 90 s).
.PHONY: bench bench-quick
BENCHFLAGS ?=

bench:
	$(GO) run ./cmd/bench $(BENCHFLAGS)

bench-quick:
	$(GO) run ./cmd/bench -quick

# ---- cmd/benchpool ----------------------------------------------------------
# `make bench-pool` plays one seeded multi-turn chat workload through the
# service in front of 4 fake Ollama hosts (cold loads, eviction, prompt
# caches), once per POOL_STRATEGY (model_aware, least_busy, round_robin),
# and checks model_aware against round_robin: about 7 minutes. Pass flags
# with BENCHPOOLFLAGS, e.g.
#   make bench-pool BENCHPOOLFLAGS='-out /tmp/pool.json -md /tmp/pool.md'
#   make bench-pool BENCHPOOLFLAGS='-strategies model_aware -service-limit 8'
# `make bench-pool-quick` is a scaled-down run (CI, about 1 minute).
.PHONY: bench-pool bench-pool-quick
BENCHPOOLFLAGS ?=

bench-pool:
	$(GO) run ./cmd/benchpool $(BENCHPOOLFLAGS)

bench-pool-quick:
	$(GO) run ./cmd/benchpool -quick $(BENCHPOOLFLAGS)
