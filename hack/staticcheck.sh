#!/usr/bin/env bash
# Builds staticcheck from the Go module pinned in tools/staticcheck into the
# tools cache outside the clone (next to the control-plane binaries of
# hack/tools.sh), once per version, and prints the path of the binary.
#
#   LIP_STATICCHECK   use this staticcheck binary instead (no build)
set -euo pipefail

if [ -n "${LIP_STATICCHECK:-}" ]; then
  echo "$LIP_STATICCHECK"
  exit 0
fi
root=$(cd "$(dirname "$0")/.." && pwd)
version=$(awk '$1=="require" && $2=="honnef.co/go/tools" {print $3}' "$root/tools/staticcheck/go.mod")
if [ -z "$version" ]; then
  echo "staticcheck.sh: cannot read the pinned version from tools/staticcheck/go.mod" >&2
  exit 1
fi
dir=${XDG_CACHE_HOME:-$HOME/.cache}/linkerd-inject-policy/tools/staticcheck-$version
mkdir -p "$dir" || { echo "staticcheck.sh: cannot create $dir" >&2; exit 1; }
exec 9>"$dir/.lock"
flock 9
if [ ! -x "$dir/staticcheck" ]; then
  echo "staticcheck.sh: building staticcheck $version into $dir (about a minute, once)" >&2
  (cd "$root/tools/staticcheck" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$dir/.staticcheck.tmp" honnef.co/go/tools/cmd/staticcheck) \
    || { echo "staticcheck.sh: building staticcheck failed (see above); check the Go module proxy is reachable" >&2; exit 1; }
  mv "$dir/.staticcheck.tmp" "$dir/staticcheck"
fi
echo "$dir/staticcheck"
