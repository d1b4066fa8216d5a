package policy

import (
	"sort"
)

// ReasonUserRule is the default reason of a user rule.
const ReasonUserRule = "user_rule"

// ruleUser applies one rule of the config's rules: list. Like the built-in
// rules, it never replaces a value the object arrived with unless
// override is set, and it cannot take linkerd.io/inject from a built-in rule
// that already decided it (disable that rule instead).
func (e *eval) ruleUser(r *UserRule) {
	if !e.userMatch(&r.Match) {
		return
	}
	var targets []*target
	if r.Target == TargetObject || (!e.kind.self && e.kind.template == nil && e.kind.list == nil) {
		targets = []*target{e.self}
	} else {
		targets = e.targets
	}
	reason := r.Reason
	if reason == "" {
		reason = ReasonUserRule
	}
	msg := r.Message
	if msg == "" {
		msg = "set by policy rule " + r.Name
	}
	keys := make([]string, 0, len(r.Actions.SetAnnotations))
	for k := range r.Actions.SetAnnotations {
		keys = append(keys, k)
	}
	sort.Strings(keys) // map order must not leak into the changes
	for _, t := range targets {
		for _, k := range keys {
			e.setAnnotation(t, r.Name, r.Override, k, r.Actions.SetAnnotations[k], reason, msg)
		}
		for _, k := range r.Actions.RemoveAnnotations {
			if _, ok := e.annotations(t)[k]; !ok {
				continue
			}
			p := make([]any, 0, len(t.path)+2)
			p = append(append(p, t.path...), "metadata", "annotations")
			m, err := e.d.mutableMap(p...)
			if err != nil {
				e.fail(err)
				return
			}
			delete(m, k)
			e.record(t, Change{Rule: r.Name, Reason: reason, Message: msg, Path: annotationPath(t, k), Action: ActionRemove})
		}
	}
}

func (e *eval) userMatch(m *UserMatch) bool {
	if len(m.Kinds) > 0 && !contains(m.Kinds, e.kind.name) {
		return false
	}
	if len(m.Namespaces) > 0 && !anyGlob(m.Namespaces, e.namespace) {
		return false
	}
	md := getMap(e.orig, "metadata")
	if len(m.Names) > 0 {
		name, _ := getString(md, "name")
		if name == "" {
			name, _ = getString(md, "generateName")
		}
		if !anyGlob(m.Names, name) {
			return false
		}
	}
	if m.LabelSelector != nil {
		labels := getMap(md, "labels")
		if len(e.targets) > 0 {
			labels = getMap(e.orig, append(append([]any{}, e.targets[0].path...), "metadata", "labels")...)
		}
		if !selectorMatches(m.LabelSelector, labels) {
			return false
		}
	}
	if len(m.Images) > 0 {
		found := false
		for _, t := range e.targets {
			if e.anyImage(t, m.Images) {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}
