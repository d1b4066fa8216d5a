package bench

import (
	"fmt"
	"strings"
)

// Family is a benchmark object that grows along one dimension: the growth
// benchmarks evaluate it at each size and the report fits the exponent of
// time against size (1 is linear).
type Family struct {
	// Name is the sub-benchmark name, e.g. "containers".
	Name string
	// Dimension says what grows, for the report.
	Dimension string
	Sizes     []int
	Object    func(n int) Object
}

// serverFirst are server-speaks-first ports of the default policy.
var serverFirst = []int{25, 587, 3306, 4444, 5432, 6379, 9300, 11211}

func portEntry(name string, port int) map[string]any {
	return map[string]any{"name": name, "containerPort": port, "protocol": "TCP"}
}

func growthPod(containers []any, annotations map[string]any) Object {
	meta := map[string]any{"name": "big", "namespace": "apps", "labels": map[string]any{"app": "big"}}
	if annotations != nil {
		meta["annotations"] = annotations
	}
	pod := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": map[string]any{"containers": containers}}
	return Object{"Pod", "", "v1", "Pod", "pods", "apps", mustJSON(pod)}
}

// serverFirstContainers is n containers, each declaring the eight
// server-speaks-first ports under names unique in the Pod (protocol left
// to its default, TCP, to keep the largest within the apiserver's limit).
func serverFirstContainers(n int) []any {
	out := make([]any, 0, n)
	for i := range n {
		ports := make([]any, 0, len(serverFirst))
		for j, p := range serverFirst {
			ports = append(ports, map[string]any{"name": fmt.Sprintf("c%d-%d", i, j), "containerPort": p})
		}
		out = append(out, map[string]any{"name": fmt.Sprintf("c%d", i), "image": "example/app:1", "ports": ports})
	}
	return out
}

// unresolvedNames is an opaque-ports value of n port names that no
// container declares (each must be looked up, and none is found).
func unresolvedNames(n int) string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("name-%d", i)
	}
	return strings.Join(names, ",")
}

// Families are the growth benchmarks' objects (issue #17): each grows one
// part of what the apiserver may send, from a size where fixed costs
// dominate to one where the growth shows; the last, names-containers,
// grows two parts at once, as the slowest input found did. Port-name
// lists stay under the policy's cap of 1,000 entries, so every size is
// evaluated in full.
func Families() []Family {
	return []Family{
		{
			Name: "containers", Dimension: "containers in a Pod (one server-speaks-first port each)",
			Sizes: []int{16, 64, 256, 1024},
			Object: func(n int) Object {
				cs := make([]any, 0, n)
				for i := range n {
					cs = append(cs, map[string]any{"name": fmt.Sprintf("c%d", i), "image": "example/app:1",
						"ports": []any{portEntry(fmt.Sprintf("db-%d", i), 3306), portEntry(fmt.Sprintf("web-%d", i), 8080)}})
				}
				return growthPod(cs, nil)
			},
		},
		{
			Name: "ports", Dimension: "ports of one container (an eighth of them server-speaks-first)",
			Sizes: []int{16, 64, 256, 1024},
			Object: func(n int) Object {
				ports := make([]any, 0, n)
				for i := range n {
					p := 10000 + i
					if i%8 == 0 {
						p = serverFirst[(i/8)%len(serverFirst)]
					}
					ports = append(ports, portEntry(fmt.Sprintf("p%d", i), p))
				}
				return growthPod([]any{map[string]any{"name": "app", "image": "example/app:1", "ports": ports}}, nil)
			},
		},
		{
			// Up to the 1,000 pod templates the policy evaluates in one
			// object; beyond, the object is left as it is (too_many_templates).
			Name: "nodesets", Dimension: "ECK Elasticsearch nodeSets (empty, each gets a podTemplate)",
			Sizes: []int{125, 250, 500, 1000},
			Object: func(n int) Object {
				sets := make([]any, 0, n)
				for i := range n {
					sets = append(sets, map[string]any{"name": fmt.Sprintf("set-%d", i), "count": 1})
				}
				es := map[string]any{
					"apiVersion": "elasticsearch.k8s.elastic.co/v1", "kind": "Elasticsearch",
					"metadata": map[string]any{"name": "logs", "namespace": "apps"},
					"spec":     map[string]any{"version": "8.15.0", "nodeSets": sets},
				}
				return Object{"Elasticsearch", "elasticsearch.k8s.elastic.co", "v1", "Elasticsearch", "elasticsearches", "apps", mustJSON(es)}
			},
		},
		{
			Name: "opaque-names", Dimension: "unresolvable names in config.linkerd.io/opaque-ports (8 containers × 8 server-speaks-first ports)",
			Sizes: []int{12, 50, 200, 800},
			Object: func(n int) Object {
				return growthPod(serverFirstContainers(8), map[string]any{"config.linkerd.io/opaque-ports": unresolvedNames(n)})
			},
		},
		{
			Name: "names-containers", Dimension: "n unresolvable opaque-ports names and n containers × 8 server-speaks-first ports",
			Sizes: []int{12, 50, 200, 800},
			Object: func(n int) Object {
				return growthPod(serverFirstContainers(n), map[string]any{"config.linkerd.io/opaque-ports": unresolvedNames(n)})
			},
		},
	}
}

// LargestPod is a Pod of about bytes of JSON (the apiserver admits request
// bodies up to 3 MiB) made of env entries in one container that declares
// MySQL's port, so the policy patches it.
func LargestPod(bytes int) Object {
	const perEntry = len(`{"name":"VAR_000000","value":"xxxxxxxx"},`)
	n := max(1, (bytes-300)/perEntry)
	env := make([]any, n)
	for i := range env {
		env[i] = map[string]any{"name": fmt.Sprintf("VAR_%06d", i), "value": "xxxxxxxx"}
	}
	pod := map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "largest", "namespace": "apps"},
		"spec": map[string]any{"containers": []any{map[string]any{
			"name": "app", "image": "example/app:1", "env": env,
			"ports": []any{portEntry("mysql", 3306)},
		}}},
	}
	return Object{"Pod", "", "v1", "Pod", "pods", "apps", mustJSON(pod)}
}

// Hostile is one of the inputs of issue #17: an object the apiserver
// admits that once cost the webhook seconds of CPU, memory, or an
// inconsistent status.
type Hostile struct {
	Name   string
	Object Object
	// Path is set on a malformed shape: the answer must be a 400 naming it.
	Path string
}

// HostileInputs are the inputs of issue #17's table that fit one request
// (the stalled body and the concurrent largest Pods are measured apart).
func HostileInputs() []Hostile {
	pod := func(spec any, meta map[string]any) Object {
		m := map[string]any{"name": "bad", "namespace": "apps"}
		for k, v := range meta {
			m[k] = v
		}
		o := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": m, "spec": spec}
		return Object{"Pod", "", "v1", "Pod", "pods", "apps", mustJSON(o)}
	}
	containers := []any{map[string]any{"name": "app", "image": "example/app:1"}}
	deployment := map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "bad", "namespace": "apps"},
		"spec":     map[string]any{"template": "oops"}}
	es := map[string]any{"apiVersion": "elasticsearch.k8s.elastic.co/v1", "kind": "Elasticsearch",
		"metadata": map[string]any{"name": "bad", "namespace": "apps"},
		"spec": map[string]any{"version": "8.15.0", "nodeSets": []any{
			map[string]any{"name": "a", "count": 1, "podTemplate": map[string]any{"metadata": []any{}}}}}}
	return []Hostile{
		{"a Pod of 6,480 containers × 8 server-speaks-first ports, 1,800 unresolvable opaque-ports names",
			growthPod(serverFirstContainers(6480), map[string]any{"config.linkerd.io/opaque-ports": unresolvedNames(1800)}), ""},
		{"an Elasticsearch with 40,000 empty nodeSets", Object{"Elasticsearch", "elasticsearch.k8s.elastic.co", "v1", "Elasticsearch", "elasticsearches", "apps",
			mustJSON(map[string]any{"apiVersion": "elasticsearch.k8s.elastic.co/v1", "kind": "Elasticsearch",
				"metadata": map[string]any{"name": "logs", "namespace": "apps"},
				"spec":     map[string]any{"version": "8.15.0", "nodeSets": emptyObjects(40000)}})}, ""},
		{"a Pod with `spec: []`", pod([]any{}, nil), "spec"},
		{"a Pod with `metadata.annotations: \"string\"`", pod(map[string]any{"containers": containers}, map[string]any{"annotations": "string"}), "metadata.annotations"},
		{"a Deployment with `spec.template: \"oops\"`", Object{"Deployment", "apps", "v1", "Deployment", "deployments", "apps", mustJSON(deployment)}, "spec.template"},
		{"an Elasticsearch with `podTemplate.metadata: []`", Object{"Elasticsearch", "elasticsearch.k8s.elastic.co", "v1", "Elasticsearch", "elasticsearches", "apps", mustJSON(es)}, "podTemplate.metadata"},
	}
}

func emptyObjects(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{}
	}
	return out
}
