// Package serve is the `serve` command (the admission webhook's wiring:
// flags, logger, cluster client, certificates, then webhook.Run) and the
// `version` command, shared by the full CLI (cmd/linkerd-inject-policy) and
// the lean webhook binary (cmd/linkerd-inject-policy-webhook). It imports
// nothing that only bootstrap, check or doctor need, so the lean binary
// links neither the Helm SDK nor client-side apply machinery; the reports
// of --report-interval (doctor) are in package reports, which only the full
// CLI links and gives to NewCommand. Its cluster client is only the API
// groups serve calls: every package linked is resident memory.
package serve
