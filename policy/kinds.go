package policy

import (
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// KindInfo is what the engine knows of one supported kind. Kinds() is the
// one table: Supported, the webhook's registration rules, the config's
// kind names and every walk over pod templates derive from it.
type KindInfo struct {
	// Group is the API group ("" for core), Kind the kind and Resource its
	// plural resource name, as a webhook rule names it.
	Group, Kind, Resource string
	// Versions are the versions a webhook registers for ("*": every
	// version the CRD serves). Supported accepts any version: the template
	// sits at the same place in every version a manifest may still carry
	// (batch/v1beta1, apps/v1beta2).
	Versions []string
	// LegacyGroups are older groups the same kind came in, which manifests
	// may still carry (extensions for Deployment, DaemonSet, ReplicaSet).
	// The webhook does not register them: the apiserver no longer serves
	// them.
	LegacyGroups []string
	// Templates are the paths of the pod templates, dot-separated, "[*]"
	// for every item of a list: "spec.template",
	// "spec.nodeSets[*].podTemplate". A Pod, its own template, has the
	// single empty path ""; a Service has none.
	Templates []string
	// Workload is a top-level controller: its template is patched only
	// when no controller owns it (its owner's template was evaluated, and
	// its pods are evaluated on their own).
	Workload bool
}

// kindTable is the source of Kinds(). Its order is the order of the
// webhook's rules. It is never modified.
var kindTable = []KindInfo{
	{Group: "", Kind: "Pod", Resource: "pods", Versions: []string{"v1"}, Templates: []string{""}},
	{Group: "", Kind: "Service", Resource: "services", Versions: []string{"v1"}},
	{Group: "apps", Kind: "Deployment", Resource: "deployments", Versions: []string{"v1"}, LegacyGroups: []string{"extensions"}, Templates: []string{"spec.template"}, Workload: true},
	{Group: "apps", Kind: "StatefulSet", Resource: "statefulsets", Versions: []string{"v1"}, Templates: []string{"spec.template"}, Workload: true},
	{Group: "apps", Kind: "DaemonSet", Resource: "daemonsets", Versions: []string{"v1"}, LegacyGroups: []string{"extensions"}, Templates: []string{"spec.template"}, Workload: true},
	{Group: "apps", Kind: "ReplicaSet", Resource: "replicasets", Versions: []string{"v1"}, LegacyGroups: []string{"extensions"}, Templates: []string{"spec.template"}, Workload: true},
	{Group: "batch", Kind: "Job", Resource: "jobs", Versions: []string{"v1"}, Templates: []string{"spec.template"}, Workload: true},
	{Group: "batch", Kind: "CronJob", Resource: "cronjobs", Versions: []string{"v1"}, Templates: []string{"spec.jobTemplate.spec.template"}, Workload: true},
	{Group: "elasticsearch.k8s.elastic.co", Kind: "Elasticsearch", Resource: "elasticsearches", Versions: []string{"*"}, Templates: []string{"spec.nodeSets[*].podTemplate"}, Workload: true},
	{Group: "kibana.k8s.elastic.co", Kind: "Kibana", Resource: "kibanas", Versions: []string{"*"}, Templates: []string{"spec.podTemplate"}, Workload: true},
}

// Kinds returns the supported kinds, in a stable order (core, apps, batch,
// then ECK's). Each call returns a fresh copy the caller may modify.
func Kinds() []KindInfo {
	out := make([]KindInfo, len(kindTable))
	for i, k := range kindTable {
		k.Versions = append([]string(nil), k.Versions...)
		k.LegacyGroups = append([]string(nil), k.LegacyGroups...)
		k.Templates = append([]string(nil), k.Templates...)
		out[i] = k
	}
	return out
}

// kind is the engine's compiled form of a KindInfo.
type kind struct {
	name string
	info *KindInfo
	// template is the path of the single pod template (nil for Pod, whose
	// template is the object itself, for lists of templates and for kinds
	// without one).
	template []any
	prefix   string // displayPath(template) + "."
	// self: the object is a pod (its own metadata and spec are the template).
	self bool
	// list, item: a template in every item of the list at path list, at
	// path item within the item (ECK's spec.nodeSets[*].podTemplate).
	list, item []any
	// workload: see KindInfo.Workload.
	workload bool
	// metadata are the paths of the objects' metadata on the way to the
	// template (the object's own, and a CronJob's jobTemplate's): what
	// Linkerd never reads.
	metadata [][]any
}

// kinds indexes the compiled table by group and kind; built once, never
// modified.
var kinds = compileKinds()

type groupKind struct{ group, kind string }

func compileKinds() map[groupKind]*kind {
	m := make(map[groupKind]*kind, 2*len(kindTable))
	for i := range kindTable {
		info := &kindTable[i]
		k := &kind{name: info.Kind, info: info, workload: info.Workload, metadata: [][]any{{"metadata"}}}
		for _, t := range info.Templates {
			switch {
			case t == "":
				k.self = true
			case strings.Contains(t, "[*]."):
				l, it, _ := strings.Cut(t, "[*].")
				k.list, k.item = splitDots(l), splitDots(it)
			default:
				k.template = splitDots(t)
				k.prefix = t + "."
				// Every object on the way that has a spec has metadata.
				for j := 1; j < len(k.template); j++ {
					if k.template[j] == "spec" {
						k.metadata = append(k.metadata, append(append([]any{}, k.template[:j]...), "metadata"))
					}
				}
			}
		}
		m[groupKind{info.Group, info.Kind}] = k
		for _, g := range info.LegacyGroups {
			m[groupKind{g, info.Kind}] = k
		}
	}
	return m
}

func splitDots(s string) []any {
	parts := strings.Split(s, ".")
	out := make([]any, len(parts))
	for i, p := range parts {
		out[i] = p
	}
	return out
}

// lookupKind finds the engine's knowledge of gvk (any version).
func lookupKind(gvk schema.GroupVersionKind) (*kind, bool) {
	k, ok := kinds[groupKind{gvk.Group, gvk.Kind}]
	return k, ok
}

// Supported reports whether the engine knows gvk: a kind of Kinds() in its
// group or a legacy group, in any version. Other kinds are never changed.
func Supported(gvk schema.GroupVersionKind) bool {
	_, ok := lookupKind(gvk)
	return ok
}

// kindNames are the kind names of Kinds(), for the config's match.kinds.
func kindNames() []string {
	names := make([]string, len(kindTable))
	for i, k := range kindTable {
		names[i] = k.Kind
	}
	return names
}

func knownKind(name string) bool {
	for _, k := range kindTable {
		if k.Kind == name {
			return true
		}
	}
	return false
}
