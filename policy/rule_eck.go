package policy

// ReasonECKToken is the reason of the eck rule.
const ReasonECKToken = "eck_service_account_token"

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
func (e *eval) ruleECK(r *ECKRule) {
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
