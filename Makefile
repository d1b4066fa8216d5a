# linkerd-inject-policy — every target installs or builds what it needs.
SHELL := /bin/bash
GO ?= go
BIN := bin/linkerd-inject-policy
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# Control-plane binaries (kube-apiserver, kube-controller-manager, kubectl,
# etcd) are built from pinned Go modules into a cache outside the clone.
TOOLS = $(shell bash hack/tools.sh)
TEST_ENV = LIP_TOOLS_BIN=$(TOOLS) LIP_BINARY=$(CURDIR)/$(BIN)
FUZZTIME ?= 60s

.PHONY: all build cross tools test unit e2e demo bench fuzz lint image clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/linkerd-inject-policy
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/linkerd-inject-policy-webhook ./cmd/linkerd-inject-policy-webhook

# The Raspberry Pi target must never silently break.
cross:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/linkerd-inject-policy-linux-arm64 ./cmd/linkerd-inject-policy

tools:
	@bash hack/tools.sh

# Lint, then unit tests, fuzz seed corpora, and the e2e suite against a real
# kube-apiserver + etcd + kube-controller-manager started by the tests, each
# test binary in a private network namespace (needs root; docs/testing.md).
test: lint build cross tools
	$(TEST_ENV) $(GO) test -race -timeout 40m ./...

unit:
	$(GO) test -race -short ./...

e2e: build tools
	$(TEST_ENV) $(GO) test -race -timeout 30m -count=1 ./e2e/...

demo: build tools
	$(TEST_ENV) $(GO) run ./e2e/cmd/demo

bench: build tools
	$(TEST_ENV) bash hack/bench.sh

fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# gofmt, go vet and staticcheck (pinned in tools/staticcheck, built once
# into the tools cache by hack/staticcheck.sh).
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	sc=$$(bash hack/staticcheck.sh) && $$sc ./...

# The webhook binary and the full CLI for linux/amd64 and linux/arm64 in one
# FROM-scratch OCI image (a manifest list), built with buildah (installed
# from Debian if missing): $(IMAGE):$(VERSION), also localhost/linkerd-inject-policy:$(VERSION).
IMAGE ?= ghcr.io/linkerd-inject-policy/linkerd-inject-policy
PLATFORMS ?= linux/amd64,linux/arm64
# The image's entrypoint: the lean webhook binary (serve and version only, no Helm SDK).
WEBHOOK_PKG ?= ./cmd/linkerd-inject-policy-webhook
image:
	VERSION=$(VERSION) IMAGE=$(IMAGE) PLATFORMS=$(PLATFORMS) WEBHOOK_PKG=$(WEBHOOK_PKG) bash hack/image.sh

clean:
	rm -rf bin
