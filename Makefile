# The targets people expect. `make test` is what CI runs (.ci/run) and what README.md names.
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: build test race demo lint fuzz bench package

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/hotdrop ./cmd/hotdrop

test:
	$(GO) test -race ./...

demo:
	$(GO) run ./cmd/hotdrop demo

lint:
	gofmt -l $$(git ls-files '*.go')
	$(GO) vet ./...
