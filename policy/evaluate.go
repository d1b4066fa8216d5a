package policy

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Reason codes shared by several rules.
const (
	// ReasonUserOverride: the object already sets the value explicitly and
	// the rule's override is false.
	ReasonUserOverride = "user_override"
	// ReasonUnparsableValue: a list annotation the rule must merge into
	// cannot be parsed; it is left as it is.
	ReasonUnparsableValue = "unparsable_value"
	// ReasonTooManyTemplates: an object with more pod templates than
	// maxTemplates (a list such as ECK's spec.nodeSets) is left unchanged.
	ReasonTooManyTemplates = "too_many_templates"
)

// Change actions.
const (
	ActionSet    = "set"
	ActionMerge  = "merge"
	ActionRemove = "remove"
)

// target is one place a rule writes to: a pod template (metadata + spec),
// or the object itself for Pods and Services.
type target struct {
	path   []any  // from the root; empty for the object itself
	prefix string // display prefix of paths under it, "" or "spec.template."
	// origAnn are the annotations the object arrived with, to tell the
	// user's explicit values from what rules wrote in this evaluation.
	origAnn map[string]any
	// injectBy names the rule that decided linkerd.io/inject in this
	// evaluation: the first rule to decide wins.
	injectBy string
	// rules that changed this target, for its trace annotation.
	rules []string
}

// eval is the state of one Evaluate call.
type eval struct {
	cfg       *Config
	kind      *kind
	orig      map[string]any
	d         *doc
	namespace string
	env       Environment
	// targets are the pod templates (or the pod itself) that may be
	// patched; empty for controller-owned workloads.
	targets []*target
	self    *target // the object's own metadata
	// buffers for the common case of one template, to save allocations
	selfBuf, tmplBuf target
	tgtBuf           [1]*target
	changes          []Change
	skips            []Skip
	err              error
	changeBuf        [4]Change // changes' first backing array
	docBuf           doc       // d
}

// Evaluate applies the policy of cfg to obj as if admitted in ctx, and
// returns what changes (enforce mode makes them, audit mode reports them).
//
// It is pure and deterministic and never modifies obj: Decision.Object is
// obj itself when nothing changes, else a copy that shares every subtree
// it did not change with obj (so neither may be modified afterwards). A nil
// cfg means DefaultConfig. Kinds the engine does not know are returned
// unchanged. The error reports an object whose shape prevents a required
// write (such as annotations that are not a map).
func Evaluate(obj *unstructured.Unstructured, ctx Context, cfg *Config) (Decision, error) {
	if obj == nil || obj.Object == nil {
		return Decision{}, errors.New("evaluate: no object")
	}
	if cfg == nil {
		cfg = DefaultConfig()
	}
	k, ok := lookupKind(obj.GroupVersionKind())
	if !ok {
		return Decision{Object: obj}, nil
	}
	if err := checkObjectShape(obj.Object, k); err != nil {
		return Decision{}, fmt.Errorf("evaluate %s %s: %w", k.name, objectName(obj.Object), err)
	}
	e := &eval{cfg: cfg, kind: k, orig: obj.Object, docBuf: doc{orig: obj.Object, root: obj.Object}, namespace: ctx.Namespace, env: ctx.Env}
	e.d = &e.docBuf
	if e.namespace == "" {
		e.namespace, _ = getString(getMap(obj.Object, "metadata"), "namespace")
	}
	e.selfBuf = target{origAnn: getMap(obj.Object, "metadata", "annotations")}
	e.self = &e.selfBuf
	e.changes = e.changeBuf[:0]
	e.findTargets()

	b := &cfg.BuiltinRules
	if b.Unmeshable.On() {
		e.ruleUnmeshable(&b.Unmeshable)
	}
	if b.AdmissionJobs.On() {
		e.ruleAdmissionJobs(&b.AdmissionJobs)
	}
	if b.Jobs.On() {
		e.ruleJobs(&b.Jobs)
	}
	if b.Ingress.On() {
		e.ruleIngress(&b.Ingress)
	}
	if b.ECK.On() {
		e.ruleECK(&b.ECK)
	}
	if b.OpaquePorts.On() {
		e.ruleOpaquePorts(&b.OpaquePorts)
	}
	for i := range cfg.Rules {
		e.ruleUser(&cfg.Rules[i])
	}
	if e.err != nil {
		return Decision{}, fmt.Errorf("evaluate %s %s: %w", k.name, objectName(obj.Object), e.err)
	}
	if len(e.changes) == 0 {
		return Decision{Object: obj, Skipped: e.skips}, nil
	}
	e.writeTrace()
	if e.err != nil {
		return Decision{}, fmt.Errorf("evaluate %s %s: %w", k.name, objectName(obj.Object), e.err)
	}
	return Decision{Object: &unstructured.Unstructured{Object: e.d.root}, Changes: e.changes, Skipped: e.skips}, nil
}

func objectName(obj map[string]any) string {
	md := getMap(obj, "metadata")
	if n, _ := getString(md, "name"); n != "" {
		return n
	}
	if n, _ := getString(md, "generateName"); n != "" {
		return n + "*"
	}
	return "(unnamed)"
}

// findTargets locates the pod templates the rules may patch.
func (e *eval) findTargets() {
	switch {
	case e.kind.self:
		e.tgtBuf[0] = e.self
		e.targets = e.tgtBuf[:]
		return
	case e.kind.workload && controlledByOwner(e.orig):
		// Its controller's template was (or will be) evaluated; its pods
		// are evaluated on their own.
		return
	case e.kind.list != nil:
		items, _ := get(e.orig, e.kind.list...).([]any)
		if len(items) > maxTemplates {
			// Real objects have a handful (ECK: one per node set). Patching
			// each of tens of thousands makes a patch of megabytes that the
			// webhook would hold in memory for nothing anyone runs.
			e.skips = append(e.skips, Skip{Reason: ReasonTooManyTemplates, Path: displayPath(e.kind.list),
				Message: fmt.Sprintf("%s has %d items, more than the %d pod templates the policy evaluates in one object; the object is left as it is", displayPath(e.kind.list), len(items), maxTemplates)})
			return
		}
		for i, s := range items {
			if _, ok := s.(map[string]any); !ok {
				continue
			}
			p := make([]any, 0, len(e.kind.list)+1+len(e.kind.item))
			p = append(append(append(p, e.kind.list...), i), e.kind.item...)
			e.targets = append(e.targets, &target{path: p, prefix: displayPath(p) + ".", origAnn: getMap(e.orig, append(p, "metadata", "annotations")...)})
		}
	case e.kind.template != nil:
		p := e.kind.template
		var ann map[string]any
		if tm, ok := get(e.orig, p...).(map[string]any); ok {
			ann = getMap(tm, "metadata", "annotations")
		}
		e.tmplBuf = target{path: p, prefix: e.kind.prefix, origAnn: ann}
		e.tgtBuf[0] = &e.tmplBuf
		e.targets = e.tgtBuf[:]
	}
}

// maxTemplates bounds the pod templates of one object that the rules
// evaluate and patch.
const maxTemplates = 1000

// controlledByOwner reports whether a controller ownerReference is set.
func controlledByOwner(obj map[string]any) bool {
	refs, _ := get(obj, "metadata", "ownerReferences").([]any)
	for _, r := range refs {
		if m, ok := r.(map[string]any); ok {
			if c, _ := m["controller"].(bool); c {
				return true
			}
		}
	}
	return false
}

// ownerNamed returns the name of the first owner of the given kind in the
// given API group ("" for core).
func ownerNamed(obj map[string]any, group, kind string) (string, bool) {
	refs, _ := get(obj, "metadata", "ownerReferences").([]any)
	for _, r := range refs {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		k, _ := m["kind"].(string)
		av, _ := m["apiVersion"].(string)
		g, _, hasSlash := strings.Cut(av, "/")
		if !hasSlash {
			g = ""
		}
		if k == kind && g == group {
			n, _ := m["name"].(string)
			return n, true
		}
	}
	return "", false
}

// cur returns the current state of the tree under t (template root).
func (e *eval) cur(t *target, path ...any) any {
	base := get(e.d.root, t.path...)
	m, ok := base.(map[string]any)
	if !ok {
		return nil
	}
	return get(m, path...)
}

func (e *eval) annotations(t *target) map[string]any {
	m, _ := e.cur(t, "metadata", "annotations").(map[string]any)
	return m
}

func (e *eval) labels(t *target) map[string]any {
	m, _ := e.cur(t, "metadata", "labels").(map[string]any)
	return m
}

func (e *eval) podSpec(t *target) map[string]any {
	m, _ := e.cur(t, "spec").(map[string]any)
	return m
}

// containers calls fn for each container and init container of t's pod spec.
func (e *eval) containers(t *target, fn func(c map[string]any)) {
	spec := e.podSpec(t)
	for _, field := range [...]string{"initContainers", "containers"} {
		list, _ := spec[field].([]any)
		for _, c := range list {
			if m, ok := c.(map[string]any); ok {
				fn(m)
			}
		}
	}
}

// anyImage reports whether some container's image matches a pattern.
func (e *eval) anyImage(t *target, patterns []string) bool {
	found := false
	e.containers(t, func(c map[string]any) {
		if found {
			return
		}
		img, _ := c["image"].(string)
		for _, p := range patterns {
			if img != "" && MatchImage(p, img) {
				found = true
				return
			}
		}
	})
	return found
}

func (e *eval) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

func (e *eval) writeAnnotation(t *target, key, value string) bool {
	var buf [8]any // paths are short: keep them off the heap
	p := append(append(buf[:0], t.path...), "metadata", "annotations")
	m, err := e.d.mutableMap(p...)
	if err != nil {
		e.fail(err)
		return false
	}
	m[key] = value
	return true
}

func (e *eval) record(t *target, c Change) {
	e.changes = append(e.changes, c)
	if t != nil && !contains(t.rules, c.Rule) {
		t.rules = append(t.rules, c.Rule)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func annotationPath(t *target, key string) string {
	return t.prefix + "metadata.annotations[" + key + "]"
}

// setInject decides linkerd.io/inject on t. The first rule to decide in an
// evaluation wins; a value the object arrived with wins unless override.
// It reports whether the value is now the rule's.
func (e *eval) setInject(t *target, rule string, override bool, value, reason, message string) bool {
	if t.injectBy != "" {
		return false
	}
	t.injectBy = rule
	orig, had := getString(t.origAnn, AnnotationInject)
	if had && orig == value {
		return true
	}
	if had && !override {
		e.skips = append(e.skips, Skip{
			Rule:    rule,
			Reason:  ReasonUserOverride,
			Message: fmt.Sprintf("%s is explicitly %q; rule %s would set %q (%s), but an explicit value wins unless the rule has override: true", AnnotationInject, truncate(orig, 100), rule, value, message),
			Path:    annotationPath(t, AnnotationInject),
		})
		return false
	}
	if e.writeAnnotation(t, AnnotationInject, value) {
		e.record(t, Change{Rule: rule, Reason: reason, Message: message, Path: annotationPath(t, AnnotationInject), Action: ActionSet, Value: value})
	}
	return true
}

// setAnnotation writes key=value on t unless the object arrived with a
// different value and the rule may not override it.
func (e *eval) setAnnotation(t *target, rule string, override bool, key, value, reason, message string) {
	if key == AnnotationInject {
		e.setInject(t, rule, override, value, reason, message)
		return
	}
	if cur, ok := getString(e.annotations(t), key); ok && cur == value {
		return
	}
	if orig, had := getString(t.origAnn, key); had && orig != value && !override {
		e.skips = append(e.skips, Skip{
			Rule:    rule,
			Reason:  ReasonUserOverride,
			Message: fmt.Sprintf("%s is explicitly %q; rule %s would set %q (%s), but an explicit value wins unless the rule has override: true", key, truncate(orig, 100), rule, value, message),
			Path:    annotationPath(t, key),
		})
		return
	}
	if e.writeAnnotation(t, key, value) {
		e.record(t, Change{Rule: rule, Reason: reason, Message: message, Path: annotationPath(t, key), Action: ActionSet, Value: value})
	}
}

// mergePortList merges ports into the port-list annotation key of t.
func (e *eval) mergePortList(t *target, rule, key string, ports []int, resolve func(string) int, reason, message string) {
	existing, _ := getString(e.annotations(t), key)
	value, changed, err := mergePorts(existing, ports, resolve)
	if err != nil {
		msg := fmt.Sprintf("%s=%q is not a list of ports, ranges or port names; left as it is, so ports %s are not added", key, truncate(existing, 200), joinInts(ports))
		if errors.Is(err, errTooManyEntries) {
			msg = fmt.Sprintf("%s has more than %d entries, more than the policy reads; left as it is, so ports %s are not added", key, maxPortEntries, joinInts(ports))
		}
		e.skips = append(e.skips, Skip{Rule: rule, Reason: ReasonUnparsableValue, Message: msg, Path: annotationPath(t, key)})
		return
	}
	if !changed {
		return
	}
	if e.writeAnnotation(t, key, value) {
		e.record(t, Change{Rule: rule, Reason: reason, Message: message, Path: annotationPath(t, key), Action: ActionMerge, Value: value})
	}
}

func joinInts(list []int) string {
	b := make([]byte, 0, 6*len(list))
	for i, n := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(n), 10)
	}
	return string(b)
}

// writeTrace records the rules that changed the object in the trace
// annotation of the object and of every template they changed, merged with
// what is already there so that re-evaluation is a no-op.
func (e *eval) writeTrace() {
	all := make([]string, 0, 4)
	for _, c := range e.changes {
		if !contains(all, c.Rule) {
			all = append(all, c.Rule)
		}
	}
	e.trace(e.self, all)
	for _, t := range e.targets {
		if t != e.self && len(t.rules) > 0 {
			e.trace(t, t.rules)
		}
	}
}

func (e *eval) trace(t *target, rules []string) {
	existing, _ := getString(e.annotations(t), AnnotationApplied)
	value := mergeTrace(existing, rules)
	if value != existing {
		e.writeAnnotation(t, AnnotationApplied, value)
	}
}

// mergeTrace returns the sorted union of a trace value and rule names,
// in n log n of the value's length (whatever the object arrived with).
func mergeTrace(existing string, rules []string) string {
	if existing == "" && len(rules) == 1 {
		return rules[0] // the common case: one rule, on an object without a trace
	}
	names := make([]string, 0, len(rules)+2)
	for _, n := range strings.Split(existing, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	names = append(names, rules...)
	sort.Strings(names)
	return strings.Join(slices.Compact(names), ",")
}
