package webhook

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"gomodules.xyz/jsonpatch/v2"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// Audit annotation keys. The apiserver prefixes them with the webhook name,
// so the audit log shows "mutate.linkerd-inject-policy.io/would-change" and
// "mutate.linkerd-inject-policy.io/changed".
const (
	AuditAnnotationWouldChange = "would-change"
	AuditAnnotationChanged     = "changed"
)

// admitter turns one decoded request into a response: it looks up the
// namespace's labels and the facts in force, calls policy.Admit (which
// alone decides the mode and the changes) and renders the admission as a
// patch (enforce), warnings and audit annotations. It never denies: what
// cannot be admitted is an *httpError.
type admitter struct {
	config     *ConfigStore
	namespaces NamespaceLabels
	env        func() policy.Environment
	metrics    *Metrics
	log        logr.Logger
	// zlog is the zap logger behind log, if any (decisionZap): decisions
	// are written to it directly.
	zlog *zap.Logger
}

// verdict is what the endpoint needs to know about a request for metrics.
type verdict struct {
	uid, kind, operation, mode, outcome string
}

// review decides one request; v is filled in as far as it is known.
func (m *admitter) review(ctx context.Context, req *reviewRequest, v *verdict) (response, error) {
	if req.Operation != opCreate && req.Operation != opUpdate {
		v.outcome = OutcomeUnsupported
		return response{}, nil
	}
	gvk := schema.GroupVersionKind{Group: req.Kind.Group, Version: req.Kind.Version, Kind: req.Kind.Kind}
	if req.SubResource != "" || !policy.Supported(gvk) {
		v.outcome = OutcomeUnsupported
		return response{}, nil
	}
	if req.badObject != "" {
		return response{}, badRequest("request.object of %s is not a valid Kubernetes object: a JSON %s, not an object", gvk.Kind, req.badObject)
	}
	if k, _ := req.Object["kind"].(string); k == "" {
		return response{}, badRequest("request.object of %s is not a valid Kubernetes object: it has no kind", gvk.Kind)
	}
	obj := &unstructured.Unstructured{Object: req.Object}

	namespace := req.Namespace
	if namespace == "" {
		namespace = obj.GetNamespace()
	}
	cfg := m.config.Load()
	var nsLabels map[string]string
	if m.namespaces != nil && namespace != "" && !cfg.IsExcluded(namespace) {
		nsLabels, _ = m.namespaces.Labels(ctx, namespace)
	}
	ref := objectRef{kind: gvk.Kind, namespace: namespace, name: obj.GetName()}
	if ref.name == "" {
		// Pods made by controllers have only a generateName at admission.
		ref.name = obj.GetGenerateName()
	}

	a, err := policy.Admit(obj, policy.Context{Namespace: namespace, NamespaceLabels: nsLabels, Env: m.env()}, cfg)
	v.mode = string(a.Mode)
	if err != nil {
		var shape *policy.ShapeError
		if errors.As(err, &shape) {
			return response{}, badRequest("%s is malformed: %v", ref, shape)
		}
		return response{}, fmt.Errorf("evaluate %s: %w", ref, err)
	}
	if err := ctx.Err(); err != nil {
		// The endpoint has stopped waiting; nothing more to render.
		return response{}, err
	}

	d := a.Decision
	var resp response
	var warnings []string
	switch {
	case a.Mode == policy.ModeOff || !a.Supported:
		v.outcome = OutcomeUnchanged
	case a.Mode == policy.ModeAudit:
		v.outcome = OutcomeUnchanged
		if d.Changed() {
			v.outcome = OutcomeWouldPatch
			warnings = auditWarnings(ref, d.Changes)
			resp.auditAnnotations = [][2]string{{AuditAnnotationWouldChange, changesJSON(d.Changes)}}
		}
	default: // enforce
		// The patch is diffed structurally: Decision.Object shares every
		// subtree the rules did not change with obj (decoded from the
		// bytes the apiserver sent), so those subtrees are never walked
		// nor re-encoded and no field can be dropped.
		ops := policy.Diff(obj.Object, d.Object.Object)
		if len(ops) == 0 {
			// Re-invocation: the object already carries every change.
			v.outcome = OutcomeUnchanged
			break
		}
		if resp.patch, err = encodePatch(ops); err != nil {
			return response{}, fmt.Errorf("encode the patch of %s: %w", ref, err)
		}
		v.outcome = OutcomePatched
		resp.auditAnnotations = [][2]string{{AuditAnnotationChanged, changesJSON(d.Changes)}}
	}
	if v.outcome == OutcomePatched || v.outcome == OutcomeWouldPatch {
		for _, c := range d.Changes {
			m.metrics.observeChange(c.Rule, c.Reason, v.mode)
		}
	}
	warnings = append(warnings, skipWarnings(ref, d.Skipped, a.Mode == policy.ModeAudit)...)
	resp.warnings = append(warnings, findingWarnings(ref, a.Findings)...)
	m.logDecision(req, ref, a, v)
	return resp, nil
}

// logDecision writes the decision: one compact line at info for every
// decision that changes (or in audit would change) the object, one line
// with everything at debug for every decision. The trail of what was
// changed is the audit annotations; the log is for people.
func (m *admitter) logDecision(req *reviewRequest, ref objectRef, a policy.Admission, v *verdict) {
	changed := v.outcome == OutcomePatched || v.outcome == OutcomeWouldPatch
	dryRun := req.DryRun != nil && *req.DryRun
	if m.zlog != nil {
		m.zapDecision(req, ref, a, v, changed, dryRun)
		return
	}
	if debug := m.log.V(1); debug.Enabled() {
		debug.Info("decision", "uid", req.UID, "kind", ref.kind, "namespace", ref.namespace, "name", ref.name,
			"operation", req.Operation, "dryRun", dryRun, "mode", v.mode, "modeReason", a.ModeReason,
			"outcome", v.outcome, "rules", ruleList(a.Decision.Changes), "skipped", len(a.Decision.Skipped), "findings", len(a.Findings))
		return
	}
	if changed && m.log.Enabled() {
		if dryRun {
			m.log.Info("decision", "uid", req.UID, "kind", ref.kind, "namespace", ref.namespace, "name", ref.name,
				"operation", req.Operation, "dryRun", true, "mode", v.mode, "outcome", v.outcome, "rules", ruleList(a.Decision.Changes))
			return
		}
		m.log.Info("decision", "uid", req.UID, "kind", ref.kind, "namespace", ref.namespace, "name", ref.name,
			"operation", req.Operation, "mode", v.mode, "outcome", v.outcome, "rules", ruleList(a.Decision.Changes))
	}
}

// zapDecision is logDecision on the zap logger behind the logr one (serve's):
// the same lines with the same fields, written with typed fields and only
// once zap has said it will write them. Through logr, every line first
// built its key-value list as interfaces and asked for its caller, a sixth
// of a request's CPU under load.
func (m *admitter) zapDecision(req *reviewRequest, ref objectRef, a policy.Admission, v *verdict, changed, dryRun bool) {
	lvl := zapcore.InfoLevel
	debug := m.zlog.Core().Enabled(zapcore.DebugLevel)
	if debug {
		lvl = zapcore.DebugLevel
	} else if !changed {
		return
	}
	ce := m.zlog.Check(lvl, "decision")
	if ce == nil {
		return
	}
	n := 8 // the info line's fields
	switch {
	case debug:
		n += 4
	case dryRun:
		n++
	}
	f := make([]zap.Field, 0, n)
	f = append(f, zap.String("uid", req.UID), zap.String("kind", ref.kind), zap.String("namespace", ref.namespace),
		zap.String("name", ref.name), zap.String("operation", req.Operation))
	if debug || dryRun {
		f = append(f, zap.Bool("dryRun", dryRun))
	}
	f = append(f, zap.String("mode", v.mode))
	if debug {
		f = append(f, zap.String("modeReason", a.ModeReason))
	}
	f = append(f, zap.String("outcome", v.outcome), zap.String("rules", ruleList(a.Decision.Changes)))
	if debug {
		f = append(f, zap.Int("skipped", len(a.Decision.Skipped)), zap.Int("findings", len(a.Findings)))
	}
	ce.Write(f...)
}

// decisionZap is the zap logger behind log when there is one (zapr's),
// without the caller annotation: the decision line's caller is always
// the same line of this file.
func decisionZap(log logr.Logger) *zap.Logger {
	u, ok := log.GetSink().(zapr.Underlier)
	if !ok {
		return nil
	}
	return u.GetUnderlying().WithOptions(zap.WithCaller(false))
}

// encodePatch writes the JSON patch without reflection.
func encodePatch(ops []jsonpatch.JsonPatchOperation) ([]byte, error) {
	n := 2
	for _, op := range ops {
		n += 40 + len(op.Path) + valueSize(op.Value)
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, op := range ops {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"op":`...)
		b = appendString(b, op.Operation)
		b = append(b, `,"path":`...)
		b = appendString(b, op.Path)
		if op.Operation != "remove" {
			b = append(b, `,"value":`...)
			var err error
			if b, err = appendValue(b, op.Value); err != nil {
				return nil, err
			}
		}
		b = append(b, '}')
	}
	return append(b, ']'), nil
}

// valueSize guesses the encoded length of a patch value: exact for strings
// (without escapes), a fair guess for the rest.
func valueSize(v any) int {
	switch v := v.(type) {
	case string:
		return len(v) + 2
	case map[string]any:
		n := 2
		for k, e := range v {
			n += len(k) + 4 + valueSize(e)
		}
		return n
	case []any:
		n := 2
		for _, e := range v {
			n += 1 + valueSize(e)
		}
		return n
	}
	return 24
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
		out = append(out, sanitizeWarning("linkerd-inject-policy (audit): "+ref.String()+": "+what+": "+c.Message))
	}
	return out
}

// skipWarnings tell the user about values a rule deliberately left alone
// (their own override, or a value it could not parse), in every mode: the
// user should know the policy did not apply and why. A rule left out
// because the installed Linkerd already does what it is for
// (Skip.Informational: every Job on Linkerd 2.20) is news only in audit
// mode, where people look at what the policy decides; in enforce mode it
// would be one warning per Job and per Job pod, so it goes to the debug log.
func skipWarnings(ref objectRef, skips []policy.Skip, audit bool) []string {
	out := make([]string, 0, len(skips))
	for _, s := range skips {
		if s.Informational() && !audit {
			continue
		}
		out = append(out, sanitizeWarning("linkerd-inject-policy: "+ref.String()+": left "+changeKey(s.Path)+" unchanged: "+s.Message))
	}
	return out
}

// findingWarnings are the annotation lint's findings, one line each:
//
//	linkerd-inject-policy: Deployment/web/api: metadata.annotations[linkerd.io/inject]: <what is wrong>
func findingWarnings(ref objectRef, findings []policy.Finding) []string {
	out := make([]string, 0, len(findings))
	for _, f := range findings {
		out = append(out, sanitizeWarning("linkerd-inject-policy: "+ref.String()+": "+f.Path+": "+f.Message))
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

// changesJSON is the audit annotation: the changes as a JSON list of
// {rule, reason, path, action, value}, for log tooling.
func changesJSON(changes []policy.Change) string {
	n := 2
	for _, c := range changes {
		n += 64 + len(c.Rule) + len(c.Reason) + len(c.Path) + len(c.Action) + len(c.Value) + len(c.Value)/8
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, c := range changes {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"rule":`...)
		b = appendString(b, c.Rule)
		b = append(b, `,"reason":`...)
		b = appendString(b, c.Reason)
		b = append(b, `,"path":`...)
		b = appendString(b, c.Path)
		b = append(b, `,"action":`...)
		b = appendString(b, c.Action)
		if c.Value != "" {
			b = append(b, `,"value":`...)
			b = appendString(b, c.Value)
		}
		b = append(b, '}')
	}
	return string(append(b, ']'))
}

// ruleList names the rules of changes once each, in order of first appearance.
func ruleList(changes []policy.Change) string {
	var b strings.Builder
	for i, c := range changes {
		seen := false
		for _, p := range changes[:i] {
			if p.Rule == c.Rule {
				seen = true
				break
			}
		}
		if !seen {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(c.Rule)
		}
	}
	return b.String()
}
