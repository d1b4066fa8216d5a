package policy

import (
	"strings"
)

// ReasonServerSpeaksFirst is the reason of the opaque-ports rule.
const ReasonServerSpeaksFirst = "server_speaks_first"

// opaqueMatcher answers "is this port server-speaks-first?" for one
// evaluation from the configured numbers, port names and images. They are
// the operator's short lists, read in place: building an index per
// evaluation cost more allocations than the lookups it saved.
type opaqueMatcher struct {
	ports  []int
	names  []string
	images []string
	// injector are the installed injector's own default opaque ports
	// (proxy.opaquePorts), when known: once we annotate a pod the injector
	// adds none of its defaults, so they must be in what we write.
	injector coverage
}

func newOpaqueMatcher(r *OpaquePortsRule, env Environment) *opaqueMatcher {
	m := &opaqueMatcher{ports: r.Ports, names: r.PortNames, images: r.Images}
	if env.OpaquePorts != "" {
		if set, err := parsePortSet(env.OpaquePorts, maxPortEntries); err == nil {
			m.injector = set.coverage(nil)
		}
	}
	return m
}

func (m *opaqueMatcher) port(n int) bool {
	for _, p := range m.ports {
		if p == n {
			return true
		}
	}
	return m.injector.covers(n)
}

func (m *opaqueMatcher) name(s string) bool {
	if s == "" {
		return false
	}
	for _, n := range m.names {
		if strings.EqualFold(n, s) {
			return true
		}
	}
	return false
}

func (m *opaqueMatcher) image(img string) bool {
	if img == "" {
		return false
	}
	for _, p := range m.images {
		if MatchImage(p, img) {
			return true
		}
	}
	return false
}

// ruleOpaquePorts marks the server-speaks-first ports a workload or Service
// actually declares as opaque, merging them into what is already there.
// Linkerd's protocol detection waits for the client to speak first; on
// these protocols the server speaks first and every connection stalls.
// A port is server-speaks-first by its number (ports), its name or
// appProtocol (portNames), or its container's image (images). Each
// target's ports are walked once.
func (e *eval) ruleOpaquePorts(r *OpaquePortsRule) {
	if len(r.Ports) == 0 && len(r.PortNames) == 0 && len(r.Images) == 0 {
		return
	}
	m := newOpaqueMatcher(r, e.env)
	if e.kind.name == "Service" {
		e.opaqueService(m)
		return
	}
	for _, t := range e.targets {
		var declared intSet
		named := map[string]int{} // port name → containerPort, first wins
		e.containers(t, func(c map[string]any) {
			img, _ := c["image"].(string)
			byImage := m.image(img)
			eachTCPPort(c["ports"], "containerPort", func(pm map[string]any, n int) {
				name, _ := pm["name"].(string)
				if name != "" {
					if _, dup := named[name]; !dup {
						named[name] = n
					}
				}
				if byImage || m.port(n) || m.name(name) {
					declared.add(n)
				}
			})
		})
		if len(declared.list) == 0 {
			continue
		}
		e.mergePortList(t, RuleOpaquePorts, AnnotationOpaquePorts, declared.list, func(n string) int { return named[n] }, ReasonServerSpeaksFirst, opaqueMessage(declared.list))
	}
}

// opaqueService marks a Service's ports opaque when the port, its numeric
// targetPort, its name, its appProtocol or its named targetPort is
// server-speaks-first; the value written is the Service port, the one
// meshed clients connect to. (A named targetPort is not resolved against
// the pods, which the engine does not see: the name itself tells.)
func (e *eval) opaqueService(m *opaqueMatcher) {
	var declared intSet
	names := map[string]int{}
	eachTCPPort(get(e.orig, "spec", "ports"), "port", func(pm map[string]any, port int) {
		name, _ := pm["name"].(string)
		if name != "" {
			if _, dup := names[name]; !dup {
				names[name] = port
			}
		}
		target, numeric := asInt(pm["targetPort"])
		targetName, _ := pm["targetPort"].(string)
		proto, _ := pm["appProtocol"].(string)
		if m.port(port) || numeric && m.port(target) || m.name(name) || m.name(proto) || m.name(targetName) {
			declared.add(port)
		}
	})
	if len(declared.list) == 0 {
		return
	}
	e.mergePortList(e.self, RuleOpaquePorts, AnnotationOpaquePorts, declared.list, func(n string) int { return names[n] }, ReasonServerSpeaksFirst, opaqueMessage(declared.list))
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
	return "port(s) " + joinInts(ports) + " carry server-speaks-first protocols (such as SMTP, MySQL, PostgreSQL) that Linkerd's protocol detection cannot recognize; they are marked opaque"
}
