package bench

import (
	"encoding/json"
	"fmt"
)

// Object is a named Kubernetes object used by the benchmarks.
type Object struct {
	Name                           string // sub-benchmark name
	Group, Version, Kind, Resource string
	Namespace                      string
	JSON                           []byte
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only literal maps are encoded here
	}
	return b
}

func container(name, image string, ports ...int) map[string]any {
	c := map[string]any{"name": name, "image": image, "resources": map[string]any{"requests": map[string]any{"cpu": "10m", "memory": "32Mi"}}}
	var list []any
	for _, p := range ports {
		list = append(list, map[string]any{"containerPort": p, "protocol": "TCP", "name": fmt.Sprintf("p%d", p)})
	}
	if list != nil {
		c["ports"] = list
	}
	return c
}

func podTemplate(labels map[string]any, annotations map[string]any, containers ...any) map[string]any {
	meta := map[string]any{"labels": labels}
	if annotations != nil {
		meta["annotations"] = annotations
	}
	return map[string]any{"metadata": meta, "spec": map[string]any{"containers": containers}}
}

// Objects are the benchmark cases: each makes at least one rule change the object.
func Objects() []Object {
	labels := map[string]any{"app": "db"}
	pod := map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "pg-0", "namespace": "apps", "labels": labels},
		"spec":     map[string]any{"containers": []any{container("postgres", "postgres:16", 5432)}},
	}
	deployment := map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "mysql", "namespace": "apps", "labels": labels},
		"spec": map[string]any{
			"replicas": 1,
			"selector": map[string]any{"matchLabels": labels},
			"template": podTemplate(labels, nil, container("mysql", "mysql:8", 3306)),
		},
	}
	job := map[string]any{
		"apiVersion": "batch/v1", "kind": "Job",
		"metadata": map[string]any{"name": "nightly", "namespace": "batch"},
		"spec": map[string]any{
			"backoffLimit": 2,
			"template": func() map[string]any {
				t := podTemplate(map[string]any{"job": "nightly"}, nil, container("main", "busybox"))
				t["spec"].(map[string]any)["restartPolicy"] = "Never"
				return t
			}(),
		},
	}
	service := map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "mysql", "namespace": "apps"},
		"spec": map[string]any{
			"selector": labels,
			"ports":    []any{map[string]any{"name": "mysql", "port": 3306, "targetPort": 3306, "protocol": "TCP"}},
		},
	}
	// Worst case: 20 containers, 50 ports (some opaque), 100 annotations.
	var containers []any
	port := 8000
	for i := range 20 {
		var ports []int
		n := 2
		if i < 10 {
			n = 3
		}
		for range n {
			ports = append(ports, port)
			port++
		}
		if i == 0 {
			ports[0] = 3306
		}
		if i == 1 {
			ports[0] = 5432
		}
		containers = append(containers, container(fmt.Sprintf("c%d", i), "example/app:1", ports...))
	}
	annotations := map[string]any{}
	for i := range 100 {
		annotations[fmt.Sprintf("example.com/annotation-%03d", i)] = fmt.Sprintf("value-%d", i)
	}
	worst := map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "big", "namespace": "apps", "labels": labels, "annotations": annotations},
		"spec": map[string]any{
			"replicas": 3,
			"selector": map[string]any{"matchLabels": labels},
			"template": podTemplate(labels, annotations, containers...),
		},
	}
	return []Object{
		{"Pod", "", "v1", "Pod", "pods", "apps", mustJSON(pod)},
		{"Deployment", "apps", "v1", "Deployment", "deployments", "apps", mustJSON(deployment)},
		{"Job", "batch", "v1", "Job", "jobs", "batch", mustJSON(job)},
		{"Service", "", "v1", "Service", "services", "apps", mustJSON(service)},
		{"WorstCase", "apps", "v1", "Deployment", "deployments", "apps", mustJSON(worst)},
	}
}

// Review wraps o in an AdmissionReview v1 CREATE request.
func Review(o Object, uid string) []byte {
	return mustJSON(map[string]any{
		"apiVersion": "admission.k8s.io/v1",
		"kind":       "AdmissionReview",
		"request": map[string]any{
			"uid":       uid,
			"kind":      map[string]any{"group": o.Group, "version": o.Version, "kind": o.Kind},
			"resource":  map[string]any{"group": o.Group, "version": o.Version, "resource": o.Resource},
			"namespace": o.Namespace,
			"operation": "CREATE",
			"userInfo":  map[string]any{"username": "system:serviceaccount:kube-system:deployment-controller"},
			"object":    json.RawMessage(o.JSON),
		},
	})
}
