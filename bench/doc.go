// Package bench measures linkerd-inject-policy: Go benchmarks of the policy
// engine and the admission handler (bench_test.go), the HTTPS load generator
// (bench/load), process helpers (bench/proc), a no-op webhook baseline
// (bench/cmd/noop-webhook) and the program that runs the whole `make bench`
// suite and writes docs/benchmarks.md (bench/cmd/benchrun).
package bench
