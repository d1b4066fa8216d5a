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

commit=$(git describe --always --dirty 2>/dev/null || echo unknown)
"$work/benchrun" \
  -go-bench "$work/go-bench.txt" \
  -serve "$LIP_BINARY" \
  -noop "$work/noop-webhook" \
  -requests "$requests" \
  -pods "$pods" \
  -commit "$commit" \
  -out "$out" \
  -kyverno-unavailable "${BENCH_KYVERNO_NOTE:-not measured in this run (see the Peers section below).}"
