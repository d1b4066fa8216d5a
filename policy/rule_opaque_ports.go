package policy

import "fmt"

// ReasonServerSpeaksFirst is the reason of the opaque-ports rule.
const ReasonServerSpeaksFirst = "server_speaks_first"

// ruleOpaquePorts marks the server-speaks-first ports a workload or Service
// actually declares as opaque, merging them into what is already there.
// Linkerd's protocol detection waits for the client to speak first; on
// these protocols the server speaks first and every connection stalls.
func (e *eval) ruleOpaquePorts(r *OpaquePortsRule) {
	if len(r.Ports) == 0 {
		return
	}
	if e.kind.name == "Service" {
		e.opaqueService(r)
		return
	}
	for _, t := range e.targets {
		var declared []int
		e.containers(t, func(c map[string]any) {
			eachTCPPort(c["ports"], "containerPort", func(_ map[string]any, n int) {
				if containsInt(r.Ports, n) && !containsInt(declared, n) {
					declared = append(declared, n)
				}
			})
		})
		if len(declared) == 0 {
			continue
		}
		e.mergePortList(t, RuleOpaquePorts, AnnotationOpaquePorts, declared, func(n string) int { return e.containerPortNamed(t, n) }, ReasonServerSpeaksFirst, opaqueMessage(declared))
	}
}

// containerPortNamed resolves a port name of t's containers (0: none).
func (e *eval) containerPortNamed(t *target, name string) int {
	port := 0
	e.containers(t, func(c map[string]any) {
		ports, _ := c["ports"].([]any)
		for _, p := range ports {
			if pm, ok := p.(map[string]any); ok && pm["name"] == name {
				if n, ok := asInt(pm["containerPort"]); ok && port == 0 {
					port = n
				}
			}
		}
	})
	return port
}

// opaqueService marks a Service's ports opaque when the port or its numeric
// targetPort is in the list; the value written is the Service port, the
// one meshed clients connect to. A named targetPort cannot be resolved
// without the pods, so only the Service port counts then.
func (e *eval) opaqueService(r *OpaquePortsRule) {
	var declared []int
	names := map[string]int{}
	eachTCPPort(get(e.orig, "spec", "ports"), "port", func(pm map[string]any, port int) {
		if name, _ := pm["name"].(string); name != "" {
			names[name] = port
		}
		target, numeric := asInt(pm["targetPort"])
		if (containsInt(r.Ports, port) || numeric && containsInt(r.Ports, target)) && !containsInt(declared, port) {
			declared = append(declared, port)
		}
	})
	if len(declared) == 0 {
		return
	}
	e.mergePortList(e.self, RuleOpaquePorts, AnnotationOpaquePorts, declared, func(n string) int { return names[n] }, ReasonServerSpeaksFirst, opaqueMessage(declared))
}

// eachTCPPort calls fn with each entry of a ports list (containers' or a
// Service's) whose protocol is TCP (or unset) and whose numeric field key
// holds a number; other entries are skipped, as opacity only concerns TCP.
func eachTCPPort(ports any, key string, fn func(p map[string]any, n int)) {
	list, _ := ports.([]any)
	for _, p := range list {
		pm, ok := p.(map[string]any)
		if !ok {
			continue
		}
		if proto, _ := pm["protocol"].(string); proto != "" && proto != "TCP" {
			continue
		}
		if n, ok := asInt(pm[key]); ok {
			fn(pm, n)
		}
	}
}

func opaqueMessage(ports []int) string {
	return fmt.Sprintf("port(s) %s carry server-speaks-first protocols (such as SMTP, MySQL, PostgreSQL) that Linkerd's protocol detection cannot recognize; they are marked opaque", joinInts(ports))
}
