#!/usr/bin/env bash
# make bench: Go benchmarks of the policy engine and handler, then benchrun
# (HTTPS load vs. a no-op webhook, memory, start-up, Pod creation on a real
# kube-apiserver), printed as one report and written into docs/benchmarks.md.
# It reports; it never fails on a time.
#
#   LIP_BINARY      the linkerd-inject-policy binary (make bench builds it)
#   LIP_TOOLS_BIN   control-plane binaries (make bench builds them)
#   BENCH_COUNT     runs of each Go benchmark (default 10, enough for benchstat)
#   BENCH_REQUESTS  HTTPS requests per concurrency level (default 20000)
#   BENCH_PODS      Pods created per admission set-up (default 500)
#   BENCH_OUT       report file (default docs/benchmarks.md; empty: stdout only)
#   BENCH_KYVERNO   1 (default): build the pinned Kyverno into the tools cache
#                   (about 10 minutes of both cores the first time) and measure
#                   it side by side; 0: skip it
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
: "${LIP_BINARY:?set LIP_BINARY to the linkerd-inject-policy binary (make bench does)}"
: "${LIP_TOOLS_BIN:?set LIP_TOOLS_BIN to the control-plane binaries (make bench does)}"
export LIP_BINARY LIP_TOOLS_BIN
count=${BENCH_COUNT:-10}
requests=${BENCH_REQUESTS:-20000}
pods=${BENCH_PODS:-500}
out=${BENCH_OUT-docs/benchmarks.md}

work=bin/bench
mkdir -p "$work"
echo "bench: building the no-op webhook and the report runner" >&2
CGO_ENABLED=0 go build -trimpath -o "$work/noop-webhook" ./bench/cmd/noop-webhook
go build -o "$work/benchrun" ./bench/cmd/benchrun

echo "bench: Go benchmarks (-count=$count); raw output in $work/go-bench.txt (benchstat reads it)" >&2
go test -run '^$' -bench . -benchmem -count="$count" ./bench/ | tee "$work/go-bench.txt" >&2

# Kyverno, pinned, built from its Go module into the tools cache (never part
# of make test, never committed). Dependencies' replace directives are ignored
# by Go, so Kyverno's own are copied into the throw-away build module.
kyverno_version=v1.19.1
kyverno_dir=${XDG_CACHE_HOME:-$HOME/.cache}/linkerd-inject-policy/tools/kyverno-$kyverno_version
build_kyverno() {
  mkdir -p "$kyverno_dir"
  exec 8>"$kyverno_dir/.lock"
  flock 8
  if [ -x "$kyverno_dir/kyverno" ] && [ -d "$kyverno_dir/crds" ] && [ -f "$kyverno_dir/install.yaml" ]; then
    return 0
  fi
  local mod info gomod src
  mod=$(mktemp -d)
  info=$(cd "$mod" && go mod init lip-bench/kyverno-build >/dev/null 2>&1 && go mod download -json "github.com/kyverno/kyverno@$kyverno_version") || return 1
  gomod=$(printf '%s\n' "$info" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  src=$(printf '%s\n' "$info" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -f "$gomod" ] && [ -d "$src" ] || { echo "bench: cannot locate Kyverno $kyverno_version in the module cache" >&2; return 1; }
  echo "bench: building Kyverno $kyverno_version into $kyverno_dir (about 10 minutes on 2 cores, once)" >&2
  (
    cd "$mod"
    awk '$1=="replace" && $3=="=>" {print $2"="$4"@"$5}' "$gomod" | while read -r r; do go mod edit -replace="$r"; done
    go mod edit -require="github.com/kyverno/kyverno@$kyverno_version"
    CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$kyverno_dir/.kyverno.tmp" github.com/kyverno/kyverno/cmd/kyverno
  ) || { rm -rf "$mod"; return 1; }
  rm -rf "$mod" "$kyverno_dir/crds"
  cp -r "$src/config/crds" "$kyverno_dir/crds" && chmod -R u+w "$kyverno_dir/crds"
  cp "$src/config/install-latest-testing.yaml" "$kyverno_dir/install.yaml" && chmod u+w "$kyverno_dir/install.yaml"
  mv "$kyverno_dir/.kyverno.tmp" "$kyverno_dir/kyverno"
}
kyverno_args=()
kyverno_note="not measured: BENCH_KYVERNO=0."
if [ "${BENCH_KYVERNO:-1}" = 1 ]; then
  if build_kyverno; then
    kyverno_args=(-kyverno-dir "$kyverno_dir")
  else
    kyverno_note="not measured: building Kyverno $kyverno_version from its module failed (see the make bench output)."
  fi
fi

commit=$(git describe --always --dirty 2>/dev/null || echo unknown)
"$work/benchrun" \
  -go-bench "$work/go-bench.txt" \
  -serve "$LIP_BINARY" \
  -noop "$work/noop-webhook" \
  -requests "$requests" \
  -pods "$pods" \
  -commit "$commit" \
  -out "$out" \
  -kyverno-unavailable "$kyverno_note" \
  "${kyverno_args[@]}"
