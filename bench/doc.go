// Package bench measures linkerd-inject-policy: Go benchmarks of the policy
// engine and the admission handler against their baselines (bench_test.go:
// the no-op handlers of NoopWebhook), the growth families and hostile
// inputs of issue #17 (growth.go), the HTTPS load generator (bench/load),
// process helpers (bench/proc), the no-op and patching no-op webhook
// baselines (bench/cmd/noop-webhook) and the program that runs the whole
// `make bench` suite and writes docs/benchmarks.md (bench/cmd/benchrun).
package bench
