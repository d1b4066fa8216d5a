# syntax=docker/dockerfile:1
#
# Multi-arch image of linkerd-inject-policy:
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/linkerd-inject-policy:TAG .
# The Go toolchain runs on the build machine's own platform and cross-compiles
# a static binary (CGO_ENABLED=0) for each target, so building the arm64
# image (Raspberry Pi) needs no emulation.
#
# Base images are build arguments so a mirror or a pinned digest can be used:
#   --build-arg GO_IMAGE=... --build-arg RUNTIME_IMAGE=...
ARG GO_IMAGE=golang:1.26
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
# Dependencies first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/linkerd-inject-policy ./cmd/linkerd-inject-policy

# distroless static: no shell, no package manager, CA certificates and
# /etc/passwd with the nonroot user (65532) only.
FROM ${RUNTIME_IMAGE}
COPY --from=build /out/linkerd-inject-policy /linkerd-inject-policy
USER 65532:65532
# 9443 webhook (HTTPS), 8080 /metrics, 8081 /healthz and /readyz
EXPOSE 9443 8080 8081
ENTRYPOINT ["/linkerd-inject-policy"]
CMD ["serve", "--cert-dir=/certs"]
