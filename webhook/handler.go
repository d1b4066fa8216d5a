package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// Audit annotation keys. The apiserver prefixes them with the webhook name,
// so the audit log shows "mutate.linkerd-inject-policy.io/would-change" and
// "mutate.linkerd-inject-policy.io/changed".
const (
	AuditAnnotationWouldChange = "would-change"
	AuditAnnotationChanged     = "changed"
)

// Mutator is the admission.Handler that applies the policy: it resolves the
// mode, calls policy.Evaluate and turns the decision into a response. It
// never denies: errors come back as Errored responses, which the HTTP
// endpoint turns into real HTTP errors so the cluster's failurePolicy decides.
type Mutator struct {
	config     *ConfigStore
	namespaces NamespaceLabels
	metrics    *Metrics
	log        logr.Logger
}

var _ admission.Handler = (*Mutator)(nil)

// NewMutator builds the handler. namespaces may be nil (labels unknown:
// every namespace gets the config's defaultMode).
func NewMutator(config *ConfigStore, namespaces NamespaceLabels, metrics *Metrics, log logr.Logger) *Mutator {
	return &Mutator{config: config, namespaces: namespaces, metrics: metrics, log: log}
}

// Handle implements admission.Handler.
func (m *Mutator) Handle(ctx context.Context, req admission.Request) admission.Response {
	resp, _ := m.review(ctx, req)
	return resp
}

// verdict is what the endpoint needs to know about a request for metrics.
type verdict struct {
	kind, operation, mode, outcome string
}

// review decides one request.
func (m *Mutator) review(ctx context.Context, req admission.Request) (admission.Response, verdict) {
	v := verdict{kind: req.Kind.Kind, operation: string(req.Operation), mode: labelUnknown}
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		v.outcome = OutcomeUnsupported
		return admission.Allowed(""), v
	}
	gvk := schema.GroupVersionKind{Group: req.Kind.Group, Version: req.Kind.Version, Kind: req.Kind.Kind}
	if req.SubResource != "" || !policy.Supported(gvk) {
		v.outcome = OutcomeUnsupported
		return admission.Allowed(""), v
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(req.Object.Raw); err != nil {
		v.outcome = OutcomeBadRequest
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("request.object of %s is not a valid Kubernetes object: %w", gvk.Kind, err)), v
	}

	namespace := req.Namespace
	if namespace == "" {
		namespace = obj.GetNamespace()
	}
	cfg := m.config.Load()
	var nsLabels map[string]string
	if m.namespaces != nil && namespace != "" && !cfg.IsExcluded(namespace) {
		nsLabels, _ = m.namespaces.Labels(ctx, namespace)
	}
	mode := policy.ResolveMode(cfg, namespace, nsLabels, obj.GetAnnotations())
	v.mode = string(mode)
	ref := objectRef{kind: gvk.Kind, namespace: namespace, name: obj.GetName()}
	if ref.name == "" {
		// Pods made by controllers have only a generateName at admission.
		ref.name = obj.GetGenerateName()
	}
	log := m.log.WithValues("uid", string(req.UID), "kind", ref.kind, "namespace", ref.namespace, "name", ref.name,
		"operation", v.operation, "mode", v.mode)
	if req.DryRun != nil && *req.DryRun {
		log = log.WithValues("dryRun", true)
	}

	if mode == policy.ModeOff {
		v.outcome = OutcomeUnchanged
		log.Info("decision", "rules", "", "outcome", v.outcome)
		return admission.Allowed(""), v
	}

	decision, err := policy.Evaluate(obj, policy.Context{Namespace: namespace, NamespaceLabels: nsLabels}, cfg)
	if err != nil {
		v.outcome = OutcomeError
		log.Error(err, "policy evaluation failed")
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("evaluate %s: %w", ref, err)), v
	}
	warnings := skipWarnings(ref, decision.Skipped)

	if mode == policy.ModeAudit {
		resp := admission.Allowed("")
		v.outcome = OutcomeUnchanged
		if decision.Changed() {
			v.outcome = OutcomeWouldPatch
			warnings = append(auditWarnings(ref, decision.Changes), warnings...)
			resp.AuditAnnotations = map[string]string{AuditAnnotationWouldChange: changesJSON(decision.Changes)}
			for _, c := range decision.Changes {
				m.metrics.observeChange(c.Rule, c.Reason, v.mode)
			}
		}
		log.Info("decision", "rules", ruleList(decision.Changes), "outcome", v.outcome)
		return resp.WithWarnings(warnings...), v
	}

	// Enforce.
	if !decision.Changed() {
		v.outcome = OutcomeUnchanged
		log.Info("decision", "rules", "", "outcome", v.outcome)
		return admission.Allowed("").WithWarnings(warnings...), v
	}
	// The patch is diffed structurally: Decision.Object shares every
	// subtree Evaluate did not change with obj (decoded from the raw bytes
	// the apiserver sent), so those subtrees are never walked nor
	// re-encoded and no field can be dropped. Applied to the raw bytes it
	// gives what PatchResponseFromRaw's diff of those bytes with a
	// re-encoding gives, without the two decodes and one encode that cost.
	resp := admission.Response{
		Patches:           policy.Diff(obj.Object, decision.Object.Object),
		AdmissionResponse: admissionv1.AdmissionResponse{Allowed: true},
	}
	if len(resp.Patches) > 0 {
		pt := admissionv1.PatchTypeJSONPatch
		resp.PatchType = &pt
	}
	if len(resp.Patches) == 0 {
		// Re-invocation: the object already carries every change.
		v.outcome = OutcomeUnchanged
		log.Info("decision", "rules", "", "outcome", v.outcome)
		return resp.WithWarnings(warnings...), v
	}
	v.outcome = OutcomePatched
	resp.AuditAnnotations = map[string]string{AuditAnnotationChanged: changesJSON(decision.Changes)}
	for _, c := range decision.Changes {
		m.metrics.observeChange(c.Rule, c.Reason, v.mode)
	}
	log.Info("decision", "rules", ruleList(decision.Changes), "outcome", v.outcome)
	return resp.WithWarnings(warnings...), v
}

// objectRef names an object in warnings: Kind/namespace/name.
type objectRef struct{ kind, namespace, name string }

func (r objectRef) String() string {
	if r.namespace == "" {
		return r.kind + "/" + r.name
	}
	return r.kind + "/" + r.namespace + "/" + r.name
}

// auditWarnings renders one admission warning per change that audit mode
// did not make, in the form kubectl prints:
//
//	linkerd-inject-policy (audit): Job/batch/nightly: would set linkerd.io/inject=disabled: <why>
func auditWarnings(ref objectRef, changes []policy.Change) []string {
	out := make([]string, 0, len(changes))
	for _, c := range changes {
		var what string
		if c.Action == "remove" {
			what = "would remove " + changeKey(c.Path)
		} else {
			what = "would set " + changeKey(c.Path) + "=" + c.Value
		}
		out = append(out, sanitizeWarning(fmt.Sprintf("linkerd-inject-policy (audit): %s: %s: %s", ref, what, c.Message)))
	}
	return out
}

// skipWarnings tell the user about values a rule deliberately left alone
// (their own override, or a value it could not parse), in every mode: the
// user should know the policy did not apply and why.
func skipWarnings(ref objectRef, skips []policy.Skip) []string {
	out := make([]string, 0, len(skips))
	for _, s := range skips {
		out = append(out, sanitizeWarning(fmt.Sprintf("linkerd-inject-policy: %s: left %s unchanged: %s", ref, changeKey(s.Path), s.Message)))
	}
	return out
}

// changeKey extracts the annotation or label key from a change path such as
// "spec.template.metadata.annotations[linkerd.io/inject]"; other paths are
// shown whole.
func changeKey(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndex(path, "["); i >= 0 {
			key := path[i+1 : len(path)-1]
			// A list index ("containers[0]") is not a key: show the whole path.
			if strings.Trim(key, "0123456789") != "" {
				return key
			}
		}
	}
	return path
}

// sanitizeWarning keeps a warning on one printable line: the apiserver drops
// or mangles warnings with control characters.
func sanitizeWarning(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// auditChange is one entry of the audit annotation (JSON, for log tooling).
type auditChange struct {
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
	Path   string `json:"path"`
	Action string `json:"action"`
	Value  string `json:"value,omitempty"`
}

func changesJSON(changes []policy.Change) string {
	list := make([]auditChange, 0, len(changes))
	for _, c := range changes {
		list = append(list, auditChange{Rule: c.Rule, Reason: c.Reason, Path: c.Path, Action: c.Action, Value: c.Value})
	}
	b, err := json.Marshal(list)
	if err != nil {
		// Strings only: Marshal cannot fail; keep the annotation readable anyway.
		return fmt.Sprintf("%d changes", len(changes))
	}
	return string(b)
}

// ruleList names the rules of changes once each, in order of first appearance.
func ruleList(changes []policy.Change) string {
	seen := make(map[string]bool, len(changes))
	var names []string
	for _, c := range changes {
		if !seen[c.Rule] {
			seen[c.Rule] = true
			names = append(names, c.Rule)
		}
	}
	return strings.Join(names, ",")
}
