# chatgpt-api — common tasks. `make run` starts the service, `make test` runs
# every test with the race detector.
GO       ?= go
BIN      := bin/chatgpt-api
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/llm-gateway/chatgpt-api-adapter/internal/app.Version=$(VERSION)
CONFIG   ?= configs/config.yaml

.PHONY: all build run test test-short lint fmt vet generate clean

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

clean:
	rm -rf bin

.PHONY: test-compat
test-compat:
	go test -tags compat -count=1 -v ./test/compat/
