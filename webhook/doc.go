// Package webhook is the production side of linkerd-inject-policy: the
// mutating admission webhook that applies policy.Admit to objects as the
// apiserver admits them.
//
// The data path is: the HTTP front (http.go) bounds the request (body size,
// body read deadline, bytes in flight, the apiserver's timeout) and answers
// problems with real HTTP errors; review.go decodes the AdmissionReview once,
// the object straight into the generic map the policy works on, and encodes
// the answer by hand; the admitter (handler.go) looks up the namespace's
// labels (namespaces.go, an informer cache of labels only), the configuration
// in force (config.go, reloaded from a file) and the installed Linkerd's facts
// (facts.Watcher), calls policy.Admit and turns the admission into a JSON
// patch (enforce), warnings and audit annotations (audit), or nothing (off),
// with the annotation lint's findings as warnings in every mode. Run
// (server.go) wires it on controller-runtime's webhook.Server with probes and
// metrics; registration.go describes how the apiserver calls it.
package webhook
