package policy

import (
	"errors"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Why a mode was chosen (Admission.ModeReason).
const (
	ModeReasonExcludedNamespace = "excluded_namespace"
	ModeReasonNamespaceLabel    = "namespace_label"
	ModeReasonDefaultMode       = "default_mode"
	ModeReasonObjectAnnotation  = "object_annotation"
)

// Admission is what admitting an object means, decided once for every
// caller: the webhook, check and doctor.
type Admission struct {
	// Mode the object is admitted in, and why (a ModeReason… constant).
	Mode       Mode
	ModeReason string
	// Decision is what the rules change (enforce makes it, audit reports
	// it). In mode off, or for kinds the engine does not know, it is the
	// object unchanged.
	Decision Decision
	// Findings are the annotation lint's (Lint), in every mode but for
	// excluded namespaces and kinds the engine does not know.
	Findings []Finding
	// Supported is whether the engine knows the object's kind (Supported):
	// when false, nothing was evaluated.
	Supported bool
}

// Admit is the one admission semantics: it resolves the mode of obj in ctx
// (exclusions, the namespace label, the object's own lowering annotation),
// lints its Linkerd annotations, then evaluates the rules with ctx's facts
// unless the mode is off. It is pure, like Evaluate.
//
// To evaluate "as if enforced" (check), give NamespaceLabels
// {LabelMode: enforce}: exclusions and the object's own annotation still
// apply, and ModeReason says which did. A malformed object of a known kind
// is an error wrapping a *ShapeError (a bad request, not a fault).
func Admit(obj *unstructured.Unstructured, ctx Context, cfg *Config) (Admission, error) {
	if obj == nil || obj.Object == nil {
		return Admission{}, errors.New("admit: no object")
	}
	if cfg == nil {
		cfg = DefaultConfig()
	}
	if ctx.Namespace == "" {
		ctx.Namespace, _ = getString(getMap(obj.Object, "metadata"), "namespace")
	}
	a := Admission{Decision: Decision{Object: obj}}
	// The annotation is read in place: obj.GetAnnotations() copies them all.
	objectMode, _ := getString(getMap(obj.Object, "metadata", "annotations"), LabelMode)
	a.Mode, a.ModeReason = resolveMode(cfg, ctx.Namespace, ctx.NamespaceLabels, objectMode)
	a.Supported = Supported(obj.GroupVersionKind())
	if a.ModeReason == ModeReasonExcludedNamespace || !a.Supported {
		return a, nil
	}
	a.Findings = Lint(obj, ctx.Env)
	if a.Mode == ModeOff {
		return a, nil
	}
	d, err := Evaluate(obj, ctx, cfg)
	if err != nil {
		// The mode and the lint stay, for the caller's log.
		return a, err
	}
	a.Decision = d
	return a, nil
}
