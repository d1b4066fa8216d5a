#!/usr/bin/env bash
# Builds the control-plane binaries the e2e tests and `make demo` run
# (kube-apiserver, kube-controller-manager, kubectl, etcd) from the Go modules
# pinned in tools/, into a cache outside the clone so that a fresh clone on the
# same machine (CI) reuses them. Prints the directory holding the binaries.
#
#   LIP_TOOLS_DIR   where to put them (default: $XDG_CACHE_HOME or ~/.cache,
#                   then linkerd-inject-policy/tools/<version>)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
kube_version=$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3}' "$root/tools/kube/go.mod")
etcd_version=$(awk '$1=="require" && $2=="go.etcd.io/etcd/server/v3" {print $3}' "$root/tools/etcd/go.mod")
if [ -z "$kube_version" ] || [ -z "$etcd_version" ]; then
  echo "tools.sh: cannot read the pinned versions from tools/*/go.mod" >&2
  exit 1
fi
version="kube-${kube_version}_etcd-${etcd_version}"
dir=${LIP_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/linkerd-inject-policy/tools/$version}
mkdir -p "$dir" || { echo "tools.sh: cannot create $dir: set LIP_TOOLS_DIR to a writable directory" >&2; exit 1; }

# One builder at a time per cache directory (parallel make targets, CI).
exec 9>"$dir/.lock"
flock 9

need=()
for b in kube-apiserver kube-controller-manager kubectl etcd; do
  [ -x "$dir/$b" ] || need+=("$b")
done
if [ ${#need[@]} -eq 0 ]; then
  echo "$dir"
  exit 0
fi

avail_kb=$(df -Pk "$dir" | awk 'NR==2 {print $4}')
if [ "${avail_kb:-0}" -lt $((4 * 1024 * 1024)) ]; then
  echo "tools.sh: less than 4 GiB free under $dir; free some disk or set LIP_TOOLS_DIR elsewhere" >&2
  exit 1
fi

minor=${kube_version#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

start=$(date +%s)
echo "tools.sh: building ${need[*]} ($version) into $dir; a cold build took 13 minutes (782 s) on a 2-core machine" >&2
for b in "${need[@]}"; do
  t0=$(date +%s)
  case $b in
    etcd)
      (cd "$root/tools/etcd" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$dir/.etcd.tmp" go.etcd.io/etcd/server/v3) ;;
    *)
      (cd "$root/tools/kube" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$dir/.$b.tmp" "k8s.io/kubernetes/cmd/$b") ;;
  esac || { echo "tools.sh: building $b failed (see above); check the Go module proxy is reachable and disk is free" >&2; exit 1; }
  mv "$dir/.$b.tmp" "$dir/$b"
  echo "tools.sh: built $b in $(( $(date +%s) - t0 ))s" >&2
done
echo "tools.sh: done in $(( $(date +%s) - start ))s" >&2
echo "$dir"
