// Package webhook is the production side of linkerd-inject-policy: the
// mutating admission webhook that applies policy.Evaluate to objects as the
// apiserver admits them.
//
// The data path is: the HTTP front (http.go) bounds and decodes the
// AdmissionReview and answers problems with real HTTP errors; the Mutator
// (handler.go) resolves the mode from the namespace label (namespaces.go,
// an informer cache) and the configuration in force (config.go, reloaded
// from a file), evaluates the policy and turns the decision into a JSON
// patch (enforce), warnings and audit annotations (audit), or nothing (off).
// Run (server.go) wires it on controller-runtime's webhook.Server with
// probes and metrics; registration.go describes how the apiserver calls it.
package webhook
