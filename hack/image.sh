#!/usr/bin/env bash
# make image: cross-builds the webhook binary and the full CLI for each
# platform (CGO_ENABLED=0), stages them with a minimal root filesystem
# (/etc/passwd and /etc/group with the nonroot user 65532, the CA bundle for
# the CLI's HTTPS chart downloads) under bin/image, and builds the Dockerfile
# FROM scratch with buildah for every platform into one multi-arch manifest
# list. Nothing is pulled: the image has no base. Installs podman, buildah
# and runc from Debian when buildah is missing.
#
#   VERSION         version stamped into the binaries and the tag (default: git describe)
#   IMAGE           image name (default ghcr.io/linkerd-inject-policy/linkerd-inject-policy);
#                   the manifest list is also tagged localhost/linkerd-inject-policy:VERSION
#   PLATFORMS       comma-separated (default linux/amd64,linux/arm64)
#   WEBHOOK_PKG     Go package of the image's entrypoint, the lean webhook binary
#                   (default ./cmd/linkerd-inject-policy-webhook)
#   IMAGE_CONTEXT   build context to stage into (default: the repository; the
#                   e2e image test uses a temporary one)
#   IMAGE_STAGE_ONLY=1  stop after staging (then: docker buildx build --platform ... .)
#   LIP_STORAGE_DRIVER  containers/storage driver for buildah and podman (default vfs)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
image=${IMAGE:-ghcr.io/linkerd-inject-policy/linkerd-inject-policy}
platforms=${PLATFORMS:-linux/amd64,linux/arm64}
webhook_pkg=${WEBHOOK_PKG:-./cmd/linkerd-inject-policy-webhook}
driver=${LIP_STORAGE_DRIVER:-vfs}
local_name=localhost/linkerd-inject-policy:$version

if ! command -v buildah >/dev/null || ! command -v podman >/dev/null; then
  echo "image: installing podman, buildah and runc from Debian" >&2
  if [ "$(id -u)" != 0 ]; then
    echo "image: buildah is missing and installing it needs root: apt-get install -y podman buildah runc" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y podman buildah runc >&2 \
    || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y podman buildah runc >&2; }
fi

context=${IMAGE_CONTEXT:-$root}
stage=$context/bin/image
rm -rf "$stage"
mkdir -p "$stage/rootfs/etc/ssl/certs"
# The only user: nonroot (65532, as distroless), no shell, no home.
printf 'root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/:/sbin/nologin\n' > "$stage/rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$stage/rootfs/etc/group"
# bootstrap downloads charts over HTTPS; the webhook itself trusts only the
# cluster's CA. Debian's bundle (package ca-certificates).
ca=/etc/ssl/certs/ca-certificates.crt
[ -f "$ca" ] || { echo "image: $ca is missing: apt-get install -y ca-certificates" >&2; exit 1; }
cp "$ca" "$stage/rootfs/etc/ssl/certs/ca-certificates.crt"

ldflags="-s -w -X main.version=$version"
IFS=, read -r -a plats <<< "$platforms"
for p in "${plats[@]}"; do
  os=${p%/*}; arch=${p#*/}
  out="$stage/$os-$arch"
  echo "image: building $os/$arch binaries" >&2
  CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -ldflags "$ldflags" -o "$out/linkerd-inject-policy" ./cmd/linkerd-inject-policy
  CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -ldflags "$ldflags" -o "$out/linkerd-inject-policy-webhook" "$webhook_pkg"
done

if [ "${IMAGE_STAGE_ONLY:-0}" = 1 ]; then
  echo "image: staged in $stage; build with: docker buildx build --platform $platforms -t $image:$version $context" >&2
  exit 0
fi

b=(buildah --storage-driver "$driver")
# Each platform's image is tagged $local_name-OS-ARCH, so that a rebuild
# removes the previous one instead of leaving it behind untagged (vfs
# storage keeps a full copy of every image). Old list first, then its images.
"${b[@]}" manifest rm "$image:$version" >/dev/null 2>&1 || true
"${b[@]}" manifest rm "$local_name" >/dev/null 2>&1 || true
for p in "${plats[@]}"; do
  "${b[@]}" rmi -f "$local_name-${p%/*}-${p#*/}" >/dev/null 2>&1 || true
done
"${b[@]}" manifest create "$local_name" >/dev/null
for p in "${plats[@]}"; do
  os=${p%/*}; arch=${p#*/}
  echo "image: building the $p image" >&2
  "${b[@]}" bud --quiet --platform "$p" \
    --build-arg TARGETOS="$os" --build-arg TARGETARCH="$arch" --build-arg VERSION="$version" \
    -t "$local_name-$os-$arch" -f "$root/Dockerfile" "$context" >/dev/null
  "${b[@]}" manifest add --os "$os" --arch "$arch" "$local_name" "containers-storage:$local_name-$os-$arch" >/dev/null
done
"${b[@]}" tag "$local_name" "$image:$version"
echo "image: $image:$version and $local_name ($platforms)" >&2
"${b[@]}" manifest inspect "$local_name" | awk '/"architecture"/ {gsub(/[",]/, ""); print "image:   " $2}' >&2
