package policy

import "strings"

// Reasons of the unmeshable rule.
const (
	ReasonHostNetwork     = "host_network"
	ReasonKnownUnmeshable = "known_unmeshable"
)

const (
	msgHostNetwork     = "pods on the host network cannot be meshed: the proxy's iptables rules would capture the node's own traffic, and Linkerd refuses to inject them"
	msgKnownUnmeshable = "this system workload does not work with a Linkerd proxy"
)

// ruleUnmeshable keeps pods that cannot work with a proxy out of the mesh:
// host-network pods, and known system workloads such as Longhorn's driver
// deployer.
func (e *eval) ruleUnmeshable(r *UnmeshableRule) {
	if len(e.targets) == 0 {
		return
	}
	if r.HostNetworkOn() {
		for _, t := range e.targets {
			if hn, _ := e.podSpec(t)["hostNetwork"].(bool); hn {
				e.setInject(t, RuleUnmeshable, r.Override, "disabled", ReasonHostNetwork, msgHostNetwork)
			}
		}
	}
	for _, w := range r.Workloads {
		if w.Namespace != "" && !globMatch(w.Namespace, e.namespace) {
			continue
		}
		if !e.unmeshableMatch(&w) {
			continue
		}
		msg := msgKnownUnmeshable
		if w.Message != "" {
			msg = w.Message
		}
		for _, t := range e.targets {
			e.setInject(t, RuleUnmeshable, r.Override, "disabled", ReasonKnownUnmeshable, msg)
		}
	}
}

// unmeshableMatch reports whether the object is one of w's: by name, by
// any container's image or by labels (on the template or the object).
func (e *eval) unmeshableMatch(w *UnmeshableWorkload) bool {
	if len(w.Names) > 0 && e.workloadNamed(w.Names) {
		return true
	}
	for _, t := range e.targets {
		if len(w.Images) > 0 && e.anyImage(t, w.Images) {
			return true
		}
		if len(w.Labels) > 0 && (hasLabels(e.labels(t), w.Labels) || hasLabels(getMap(e.orig, "metadata", "labels"), w.Labels)) {
			return true
		}
	}
	return false
}

// workloadNamed matches the object's name against globs; a Pod matches
// when its name, generateName or an owner's name is such a name followed
// by "-" (pods are named after their controller plus a suffix).
func (e *eval) workloadNamed(globs []string) bool {
	md := getMap(e.orig, "metadata")
	name, _ := getString(md, "name")
	if e.kind.name != "Pod" {
		return anyGlob(globs, name)
	}
	if anyGlob(globs, name) {
		return true
	}
	gen, _ := getString(md, "generateName")
	candidates := []string{name, gen}
	refs, _ := md["ownerReferences"].([]any)
	if len(refs) > maxOwnerNames {
		refs = refs[:maxOwnerNames] // a pod has one or two; bound the work
	}
	for _, r := range refs {
		if m, ok := r.(map[string]any); ok {
			if n, _ := m["name"].(string); n != "" {
				candidates = append(candidates, n, n+"-")
			}
		}
	}
	for _, c := range candidates {
		for i := strings.IndexByte(c, '-'); i > 0; {
			if anyGlob(globs, c[:i]) {
				return true
			}
			j := strings.IndexByte(c[i+1:], '-')
			if j < 0 {
				break
			}
			i += j + 1
		}
	}
	return false
}

// maxOwnerNames bounds the owner references whose names a Pod is matched by.
const maxOwnerNames = 8
