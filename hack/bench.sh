#!/usr/bin/env bash
# make bench: Go benchmarks of the policy engine and handler, then benchrun
# (HTTPS load vs. a no-op webhook, memory, start-up, Pod creation on a real
# kube-apiserver), printed as one report and written into docs/benchmarks.md.
# It reports; it never fails on a time.
#
#   LIP_BINARY      the linkerd-inject-policy binary (make bench builds it)
#   LIP_WEBHOOK_BINARY  the binary that runs `serve` in the measurements;
#                   default: the lean ./cmd/linkerd-inject-policy-webhook built
#                   here when that package exists (what the image ships), else
#                   LIP_BINARY
#   LIP_TOOLS_BIN   control-plane binaries (make bench builds them)
#   BENCH_COUNT     runs of each Go benchmark (default 10, enough for benchstat)
#   BENCH_GROWTH_COUNT  runs of each growth benchmark (default 3, 0.5 s each)
#   BENCH_BASELINE  commit whose handler benchmarks and CPU profile are run
#                   as "before" (default 52ce2be, main before the work of
#                   issues #15 and #17; empty: skip)
#   BENCH_REQUESTS  HTTPS requests per concurrency level (default 20000)
#   BENCH_PODS      Pods created per admission set-up and round (default 500)
#   BENCH_POD_ROUNDS  rounds of Pod creation (default 3)
#   BENCH_LARGEST   concurrency levels of the largest-Pod memory measurement
#                   (default 1,2,3,4,8; empty: skip)
#   BENCH_LARGEST_GOMEMLIMIT  GOMEMLIMIT of a second largest-Pod run of serve
#                   (default 100MiB; empty: skip)
#   BENCH_OUT       report file (default docs/benchmarks.md; empty: stdout only)
#   BENCH_KYVERNO   1 (default): build the pinned Kyverno into the tools cache
#                   (about 13 minutes of both cores the first time) and measure
#                   it side by side; 0: skip it
#
# hack/bench.sh --build-kyverno only builds Kyverno into the tools cache (run
# it under nice ahead of time) and exits.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

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
if [ "${1:-}" = --build-kyverno ]; then
  build_kyverno
  echo "bench: Kyverno $kyverno_version is in $kyverno_dir" >&2
  exit 0
fi

: "${LIP_BINARY:?set LIP_BINARY to the linkerd-inject-policy binary (make bench does)}"
: "${LIP_TOOLS_BIN:?set LIP_TOOLS_BIN to the control-plane binaries (make bench does)}"
export LIP_BINARY LIP_TOOLS_BIN
count=${BENCH_COUNT:-10}
growth_count=${BENCH_GROWTH_COUNT:-3}
baseline=${BENCH_BASELINE-52ce2be}
requests=${BENCH_REQUESTS:-20000}
pods=${BENCH_PODS:-500}
pod_rounds=${BENCH_POD_ROUNDS:-3}
largest=${BENCH_LARGEST-1,2,3,4,8}
largest_limit=${BENCH_LARGEST_GOMEMLIMIT-100MiB}
out=${BENCH_OUT-docs/benchmarks.md}

work=bin/bench
mkdir -p "$work"
echo "bench: building the no-op webhook and the report runner" >&2
CGO_ENABLED=0 go build -trimpath -o "$work/noop-webhook" ./bench/cmd/noop-webhook
go build -o "$work/benchrun" ./bench/cmd/benchrun
serve=${LIP_WEBHOOK_BINARY:-}
if [ -z "$serve" ]; then
  if [ -d cmd/linkerd-inject-policy-webhook ]; then
    echo "bench: building the lean webhook binary (./cmd/linkerd-inject-policy-webhook), as the image ships it" >&2
    CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$work/linkerd-inject-policy-webhook" ./cmd/linkerd-inject-policy-webhook
    serve=$work/linkerd-inject-policy-webhook
  else
    serve=$LIP_BINARY
  fi
fi
echo "bench: serving with $serve" >&2

echo "bench: Go benchmarks (-count=$count); raw output in $work/go-bench.txt (benchstat reads it)" >&2
go test -run '^$' -bench '^Benchmark(Evaluate|EvaluatePatch|EvaluateRawPatch|Handler|NoopHandler|PatchingNoopHandler)$' -benchmem -count="$count" ./bench/ | tee "$work/go-bench.txt" >&2
echo "bench: growth benchmarks (-count=$growth_count); raw output in $work/go-growth.txt" >&2
go test -run '^$' -bench '^BenchmarkGrowth' -benchmem -benchtime=0.5s -count="$growth_count" -timeout=30m ./bench/ | tee "$work/go-growth.txt" >&2

# CPU profile of the handler on the Deployment: now, and at the baseline
# commit (its tree exported to a temporary directory, built with the same
# module cache), so the report shows before and after from one run.
profile_handler() { # dir label
  (cd "$1" && go test -run '^$' -bench '^BenchmarkHandler$/^Deployment$' -benchtime=4s -count=1 \
     -cpuprofile "$root/$work/handler-$2.cpu" -o "$root/$work/bench-$2.test" ./bench/ >&2) &&
  go tool pprof -top -cum -nodecount=30 "$work/bench-$2.test" "$work/handler-$2.cpu" 2>/dev/null |
    sed -n '/flat%/,$p' >"$work/handler-$2.top"
}
profiles=""
before_args=()
if [ -n "$baseline" ] && git cat-file -e "$baseline^{commit}" 2>/dev/null; then
  base_dir=$(mktemp -d)
  trap 'rm -rf "$base_dir"' EXIT
  git archive "$baseline" | tar -x -C "$base_dir"
  echo "bench: handler benchmarks at the baseline $baseline (-count=5)" >&2
  (cd "$base_dir" && go test -run '^$' -bench '^Benchmark(Handler|EvaluatePatch)$' -benchmem -count=5 ./bench/) | tee "$work/go-before.txt" >&2
  before_args=(-before-bench "$work/go-before.txt" -baseline "$(git rev-parse --short "$baseline")")
  if profile_handler "$base_dir" before; then profiles="before=$work/handler-before.top,"; fi
elif [ -n "$baseline" ]; then
  echo "bench: baseline $baseline is not a commit here; no before figures" >&2
fi
if profile_handler "$root" after; then profiles="${profiles}after=$work/handler-after.top"; fi

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
  -go-bench "$work/go-bench.txt,$work/go-growth.txt" \
  "${before_args[@]}" \
  -profiles "$profiles" \
  -serve "$serve" \
  -noop "$work/noop-webhook" \
  -requests "$requests" \
  -pods "$pods" \
  -pod-rounds "$pod_rounds" \
  -largest-concurrency "$largest" \
  -largest-gomemlimit "$largest_limit" \
  -commit "$commit" \
  -out "$out" \
  -kyverno-unavailable "$kyverno_note" \
  "${kyverno_args[@]}"
