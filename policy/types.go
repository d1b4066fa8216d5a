// Package policy is the pure core of linkerd-inject-policy: given an object,
// the context it is admitted in and a PolicyConfig, it decides which Linkerd
// annotations and fields the object needs. Nothing here does I/O, reads the
// clock, logs or knows about HTTP, so the webhook, the `check` CLI and the
// tests all share one truth.
package policy

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Mode is how a namespace (or object) is policed.
type Mode string

// The three modes, from strongest to weakest.
const (
	ModeEnforce Mode = "enforce"
	ModeAudit   Mode = "audit"
	ModeOff     Mode = "off"
)

// Well-known annotation and label keys.
const (
	AnnotationInject            = "linkerd.io/inject"
	AnnotationOpaquePorts       = "config.linkerd.io/opaque-ports"
	AnnotationSkipOutboundPorts = "config.linkerd.io/skip-outbound-ports"
	// AnnotationApplied is the trace annotation: sorted, comma-separated names
	// of the rules that changed the object. Stable under re-evaluation.
	AnnotationApplied = "linkerd-inject-policy.io/applied"
	// LabelMode is the namespace label selecting the mode; the same key as an
	// object annotation may only lower the mode.
	LabelMode = "linkerd-inject-policy.io/mode"
)

// Context is what Evaluate knows about where the object is admitted.
type Context struct {
	// Namespace of the object (the request's namespace when the object has none).
	Namespace string
	// NamespaceLabels of that namespace; nil when unknown.
	NamespaceLabels map[string]string
	// Env is what is known of the installed Linkerd and Kubernetes; the
	// zero value knows nothing (rules behave as for Linkerd 2.11).
	Env Environment
}

// Change is one modification a rule makes (or, in audit mode, would make).
type Change struct {
	Rule    string // rule name, e.g. "jobs"
	Reason  string // snake_case reason code, e.g. "job_never_completes"
	Message string // human sentence explaining why
	Path    string // where, e.g. "spec.template.metadata.annotations[linkerd.io/inject]"
	Action  string // "set", "merge" or "remove"
	Value   string // the value written (empty for remove)
}

// Skip is a rule that matched but deliberately changed nothing (for example
// reason "user_override"), or a value it could not parse and left alone.
type Skip struct {
	Rule    string
	Reason  string
	Message string
	Path    string
}

// Decision is the outcome of Evaluate.
type Decision struct {
	// Object is the input object itself when Changes is empty; otherwise a
	// copy-on-write copy that shares every subtree it did not change with
	// the input. Neither may be modified by the caller.
	Object  *unstructured.Unstructured
	Changes []Change
	Skipped []Skip
}

// Finding is something wrong with the object's Linkerd annotations that the
// policy does not rewrite (the annotation lint): reported as an admission
// warning, by check and by doctor.
type Finding struct {
	// Code is stable, snake_case: misplaced_annotation, invalid_annotation,
	// unknown_annotation, deprecated_annotation, unsupported_annotation
	// (the Finding… constants), and too_many_findings last when the lint
	// stopped early.
	Code string
	// Path is where, e.g. "metadata.annotations[linkerd.io/inject]".
	Path string
	// Message is one sentence saying what is wrong and what to write instead.
	Message string
}

// Changed reports whether any rule changed the object.
func (d Decision) Changed() bool { return len(d.Changes) > 0 }

// Informational reports whether s only explains why a rule left the object
// alone because the installed Linkerd already does what the rule is for
// (native_sidecar_completes, token_projected): nothing for anyone to fix,
// so callers may report it without warning about it.
func (s Skip) Informational() bool {
	return s.Reason == ReasonNativeSidecarCompletes || s.Reason == ReasonTokenProjected
}
