# The linkerd-inject-policy image, built FROM scratch from binaries compiled
# beforehand (CGO_ENABLED=0, one directory per platform). `make image` stages
# them under bin/image and builds this file with buildah for linux/amd64 and
# linux/arm64 into one manifest list; elsewhere the same staged directory
# builds with
#   IMAGE_STAGE_ONLY=1 bash hack/image.sh
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/linkerd-inject-policy:TAG .
# Nothing is pulled and nothing runs at build time, so the arm64 image needs
# no emulation.
FROM scratch
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=dev
LABEL org.opencontainers.image.title="linkerd-inject-policy" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/linkerd-inject-policy/linkerd-inject-policy"
# /etc/passwd and /etc/group (root and nonroot 65532) and the CA bundle.
COPY bin/image/rootfs/ /
# linkerd-inject-policy-webhook (serve, version) and the full CLI.
COPY bin/image/${TARGETOS}-${TARGETARCH}/ /
USER 65532:65532
# 9443 webhook (HTTPS), 8080 /metrics, 8081 /healthz and /readyz
EXPOSE 9443 8080 8081
ENTRYPOINT ["/linkerd-inject-policy-webhook"]
CMD ["serve", "--cert-dir=/certs"]
