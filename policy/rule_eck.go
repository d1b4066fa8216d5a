package policy

import "fmt"

// Reasons of the eck rule.
const (
	ReasonECKToken = "eck_service_account_token"
	// ReasonTokenProjected: a Skip, not a change: the installed Linkerd
	// gives the proxy a projected token, so ECK's pods need none.
	ReasonTokenProjected = "token_projected"
)

const (
	msgECKToken = "ECK turns off the service account token of its pods; Linkerd installed with identity.serviceAccountTokenProjection=false does not inject the proxy without it (with the default, the proxy uses a projected token instead)"
	// labelECKType is set by ECK on every Pod it creates.
	labelECKType = "common.k8s.elastic.co/type"
	fieldToken   = "automountServiceAccountToken"
)

// ruleECK sets automountServiceAccountToken: true on ECK's Elasticsearch
// node sets and Kibana pod templates (creating podTemplate where absent),
// and on Pods carrying ECK's type label. Nothing else ever gets a token it
// did not have, and pods explicitly kept out of the mesh are left alone.
//
// When the installed Linkerd is known to inject with a projected token
// (identity.serviceAccountTokenProjection, the default since 2.12), the
// token is not needed: one Skip token_projected says so, and nothing is
// written (in particular not into spec.nodeSets, which a later server-side
// apply would then conflict on).
func (e *eval) ruleECK(r *ECKRule) {
	if e.env.LinkerdKnown() && e.env.ProjectedToken() {
		e.eckTokenProjected()
		return
	}
	switch e.kind.name {
	case "Elasticsearch", "Kibana":
		for _, t := range e.targets {
			e.eckToken(t, r, false)
		}
	case "Pod":
		if _, ok := getMap(e.orig, "metadata", "labels")[labelECKType]; ok {
			// ECK itself wrote false on the Pod, so that is not the user's
			// choice: the user's is on the resource's podTemplate.
			e.eckToken(e.self, r, true)
		}
	}
}

func (e *eval) eckToken(t *target, r *ECKRule, operatorSet bool) {
	if v, _ := getString(e.annotations(t), AnnotationInject); v == "disabled" {
		return
	}
	cur, set := e.cur(t, "spec", fieldToken).(bool)
	if set && cur {
		return
	}
	path := t.prefix + "spec." + fieldToken
	if set && !operatorSet && !r.Override {
		e.skips = append(e.skips, Skip{Rule: RuleECK, Reason: ReasonUserOverride, Path: path,
			Message: "automountServiceAccountToken is explicitly false, so Linkerd installed with identity.serviceAccountTokenProjection=false cannot inject the proxy; an explicit value wins unless the rule has override: true"})
		return
	}
	p := make([]any, 0, len(t.path)+1)
	p = append(append(p, t.path...), "spec")
	spec, err := e.d.mutableMap(p...)
	if err != nil {
		e.fail(err)
		return
	}
	spec[fieldToken] = true
	e.record(t, Change{Rule: RuleECK, Reason: ReasonECKToken, Message: msgECKToken, Path: path, Action: ActionSet, Value: "true"})
}

// eckTokenProjected reports, once per object, that the rule would have set
// the token but the installed Linkerd does not need it.
func (e *eval) eckTokenProjected() {
	var first *target
	switch e.kind.name {
	case "Elasticsearch", "Kibana":
		for _, t := range e.targets {
			if e.eckWouldSet(t) {
				first = t
				break
			}
		}
	case "Pod":
		if _, ok := getMap(e.orig, "metadata", "labels")[labelECKType]; ok && e.eckWouldSet(e.self) {
			first = e.self
		}
	}
	if first == nil {
		return
	}
	path := first.prefix + "spec." + fieldToken
	if e.kind.list != nil {
		path = displayPath(e.kind.list) + "[*]." + displayPath(e.kind.item) + ".spec." + fieldToken
	}
	e.skips = append(e.skips, Skip{Rule: RuleECK, Reason: ReasonTokenProjected, Path: path,
		Message: fmt.Sprintf("left as it is: Linkerd %s injects the proxy with a projected ServiceAccount token (identity.serviceAccountTokenProjection=true), so ECK's pods need no automounted token", e.env.linkerdName())})
}

// eckWouldSet reports whether eckToken would write on t.
func (e *eval) eckWouldSet(t *target) bool {
	if v, _ := getString(e.annotations(t), AnnotationInject); v == "disabled" {
		return false
	}
	cur, set := e.cur(t, "spec", fieldToken).(bool)
	return !(set && cur)
}
