package policy

import "fmt"

// Reasons of the ingress rule.
const (
	ReasonIngressMode         = "ingress_mode"
	ReasonIngressSkipOutbound = "ingress_skip_outbound"
)

const msgIngressMode = "ingress controllers must be meshed in ingress mode so Linkerd routes by the target Service (l5d-dst-override) instead of the pod the controller picked"

// ruleIngress meshes ingress controllers (Traefik by default) in ingress
// mode, and lets them reach the Kubernetes API on 443 around the proxy,
// which they need to discover routes.
func (e *eval) ruleIngress(r *IngressRule) {
	switch e.kind.name {
	case "Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Pod":
	default:
		return
	}
	for _, t := range e.targets {
		if !e.ingressMatch(t, r.Matchers) {
			continue
		}
		e.setInject(t, RuleIngress, r.Override, "ingress", ReasonIngressMode, msgIngressMode)
		if v, _ := getString(e.annotations(t), AnnotationInject); v != "ingress" || len(r.SkipOutboundPorts) == 0 {
			continue // only ingress mode breaks the controller's API calls
		}
		e.mergePortList(t, RuleIngress, AnnotationSkipOutboundPorts, r.SkipOutboundPorts, nil, ReasonIngressSkipOutbound,
			fmt.Sprintf("in ingress mode the proxy breaks the controller's own TLS connections to the Kubernetes API; outbound port(s) %s skip the proxy", joinInts(r.SkipOutboundPorts)))
	}
}

func (e *eval) ingressMatch(t *target, matchers []WorkloadMatcher) bool {
	tl, ol := e.labels(t), getMap(e.orig, "metadata", "labels")
	for _, m := range matchers {
		if m.Image == "" && len(m.Labels) == 0 {
			continue
		}
		if m.Image != "" && !e.anyImage(t, []string{m.Image}) {
			continue
		}
		if len(m.Labels) > 0 && !hasLabels(tl, m.Labels) && !hasLabels(ol, m.Labels) {
			continue
		}
		return true
	}
	return false
}

func hasLabels(have map[string]any, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k].(string); !ok || got != v {
			return false
		}
	}
	return true
}
