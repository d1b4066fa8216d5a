package policy

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// exampleObjects loads every object of examples/ (one directory per known problem).
func exampleObjects(t testing.TB) map[string]*unstructured.Unstructured {
	t.Helper()
	out := map[string]*unstructured.Unstructured{}
	files, err := filepath.Glob(filepath.Join("..", "examples", "*", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, f := range files {
		if strings.Contains(f, string(filepath.Separator)+"config"+string(filepath.Separator)) {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitYAML(t, data) {
			u := obj(t, string(doc))
			out[f+"#"+string(rune('1'+i))+" "+u.GetKind()+"/"+u.GetName()] = u
		}
	}
	return out
}

func splitYAML(t testing.TB, data []byte) [][]byte {
	t.Helper()
	var docs [][]byte
	r := utilyaml.NewYAMLReader(bufioReader(data))
	for {
		d, err := r.Read()
		if err != nil {
			break
		}
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestEvaluateNeverModifiesItsInput(t *testing.T) {
	objs := exampleObjects(t)
	// Extra cases that write into maps the input shares: existing
	// annotations on the template and on the object, and a List of node sets.
	objs["annotated"] = obj(t, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: traefik, annotations: {a: b, linkerd-inject-policy.io/applied: custom}}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}, annotations: {config.linkerd.io/skip-outbound-ports: "25", c: d}}
    spec: {containers: [{name: t, image: traefik, ports: [{containerPort: 3306}]}]}
`)
	cfg := DefaultConfig()
	cfg.Rules = []UserRule{{Name: "strip", Match: UserMatch{Kinds: []string{"Deployment"}}, Actions: UserActions{RemoveAnnotations: []string{"c"}}}}
	for _, name := range sortedKeys(objs) {
		in := objs[name]
		t.Run(name, func(t *testing.T) {
			before := in.DeepCopy()
			d, err := Evaluate(in, Context{Namespace: in.GetNamespace()}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(before.Object, in.Object) {
				t.Fatalf("input modified")
			}
			if !d.Changed() && d.Object != in {
				t.Errorf("unchanged decision should return the input itself")
			}
			if d.Changed() && reflect.DeepEqual(d.Object.Object, in.Object) {
				t.Errorf("changes reported but the object is the same: %+v", d.Changes)
			}
		})
	}
	if got := objs["annotated"].GetAnnotations()[AnnotationApplied]; got != "custom" {
		t.Errorf("input trace annotation now %q", got)
	}
}

func TestTraceAnnotationIsMergedAndSorted(t *testing.T) {
	in := obj(t, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: traefik, annotations: {linkerd-inject-policy.io/applied: zz-custom}}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec: {containers: [{name: t, image: traefik, ports: [{containerPort: 3306}]}]}
`)
	d, err := Evaluate(in, Context{}, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Object.GetAnnotations()[AnnotationApplied]; got != "ingress,opaque-ports,zz-custom" {
		t.Errorf("object trace %q", got)
	}
	if got := lookup(d.Object.Object, tmplApplied); got != "ingress,opaque-ports" {
		t.Errorf("template trace %q", got)
	}
}

// podFrom builds the Pod a controller would create from obj's template.
func podFrom(t *testing.T, tmpl map[string]any, ownerKind string) *unstructured.Unstructured {
	t.Helper()
	c := (&unstructured.Unstructured{Object: tmpl}).DeepCopy().Object
	p := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": c["metadata"], "spec": c["spec"]}}
	if p.Object["metadata"] == nil {
		p.Object["metadata"] = map[string]any{}
	}
	p.SetGenerateName("made-")
	p.SetOwnerReferences(nil)
	p.Object["metadata"].(map[string]any)["ownerReferences"] = []any{map[string]any{"apiVersion": map[string]string{"Job": "batch/v1", "ReplicaSet": "apps/v1"}[ownerKind], "kind": ownerKind, "name": "owner", "uid": "1", "controller": true}}
	return p
}

func TestPodsMadeFromPatchedTemplatesAreLeftAlone(t *testing.T) {
	cfg := DefaultConfig()
	for _, name := range sortedKeys(exampleObjects(t)) {
		in := exampleObjects(t)[name]
		var path []string
		owner := "ReplicaSet"
		switch in.GetKind() {
		case "Deployment", "DaemonSet", "StatefulSet", "Job":
			path = []string{"spec", "template"}
			if in.GetKind() == "Job" {
				owner = "Job"
			}
		case "CronJob":
			path, owner = []string{"spec", "jobTemplate", "spec", "template"}, "Job"
		default:
			continue
		}
		t.Run(name, func(t *testing.T) {
			d, err := Evaluate(in, Context{Namespace: in.GetNamespace()}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			tmpl, _, _ := unstructured.NestedMap(d.Object.Object, path...)
			pod := podFrom(t, tmpl, owner)
			pod.SetNamespace(in.GetNamespace())
			pd, err := Evaluate(pod, Context{Namespace: in.GetNamespace()}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if pd.Changed() {
				t.Errorf("pod from the patched template changed again: %+v", pd.Changes)
			}
		})
	}
}

func TestEvaluateRejectsObjectsItCannotPatch(t *testing.T) {
	tests := []struct{ name, manifest, want string }{
		{"annotations that are a string", `
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec:
  template:
    metadata: {annotations: "linkerd.io/inject=enabled"}
    spec: {containers: [{name: c, image: x}]}
`, "spec.template.metadata.annotations: expected an object, got a string"},
		{"metadata that is a list", `
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {ports: [{port: 5432}]}
`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := obj(t, tt.manifest)
			if tt.want == "" {
				in.Object["metadata"] = map[string]any{"name": "db", "annotations": []any{"x"}}
				tt.want = "metadata.annotations: expected an object, got a list"
			}
			_, err := Evaluate(in, Context{}, DefaultConfig())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := Evaluate(nil, Context{}, nil); err == nil {
		t.Error("nil object: no error")
	}
}

func TestSupportedKinds(t *testing.T) {
	yes := []schema.GroupVersionKind{
		{Version: "v1", Kind: "Pod"}, {Version: "v1", Kind: "Service"},
		{Group: "apps", Version: "v1", Kind: "Deployment"}, {Group: "apps", Version: "v1", Kind: "StatefulSet"},
		{Group: "apps", Version: "v1", Kind: "DaemonSet"}, {Group: "apps", Version: "v1", Kind: "ReplicaSet"},
		{Group: "batch", Version: "v1", Kind: "Job"}, {Group: "batch", Version: "v1", Kind: "CronJob"},
		{Group: "elasticsearch.k8s.elastic.co", Version: "v1", Kind: "Elasticsearch"},
		{Group: "elasticsearch.k8s.elastic.co", Version: "v1beta1", Kind: "Elasticsearch"},
		{Group: "kibana.k8s.elastic.co", Version: "v1", Kind: "Kibana"},
	}
	no := []schema.GroupVersionKind{
		{Version: "v1", Kind: "ConfigMap"}, {Group: "apps", Version: "v1", Kind: "ControllerRevision"},
		{Group: "example.com", Version: "v1", Kind: "Deployment"}, {Group: "kibana.k8s.elastic.co", Version: "v1", Kind: "Elasticsearch"},
	}
	for _, g := range yes {
		if !Supported(g) {
			t.Errorf("%v should be supported", g)
		}
	}
	for _, g := range no {
		if Supported(g) {
			t.Errorf("%v should not be supported", g)
		}
	}
}

func BenchmarkEvaluateDeployment(b *testing.B) {
	in := obj(b, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: mysql, namespace: shop, labels: {app: mysql}}
spec:
  replicas: 1
  selector: {matchLabels: {app: mysql}}
  template:
    metadata: {labels: {app: mysql}}
    spec:
      containers:
        - name: mysql
          image: docker.io/bitnami/mysql:8.4.5
          ports: [{name: mysql, containerPort: 3306}]
          env: [{name: A, value: b}]
`)
	cfg := DefaultConfig()
	ctx := Context{Namespace: "shop"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Evaluate(in, ctx, cfg); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzEvaluate(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "examples", "*", "*.yaml"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, d := range splitYAML(f, data) {
			f.Add(d)
		}
	}
	f.Add([]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"annotations":null},"spec":{"hostNetwork":true}}`))
	f.Add([]byte(`{"apiVersion":"v1","kind":"Service","spec":{"ports":[{"port":"3306"},{"port":3306.5},7]}}`))
	f.Add([]byte(`{"apiVersion":"elasticsearch.k8s.elastic.co/v1","kind":"Elasticsearch","spec":{"nodeSets":[1,{"podTemplate":"x"}]}}`))
	f.Add([]byte(`{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"a-admission-create"},"spec":{"template":{"metadata":{"annotations":{"linkerd.io/inject":"enabled","config.linkerd.io/opaque-ports":"1-2-3"}}}}}`))
	cfg := DefaultConfig()
	cfg.Rules = []UserRule{{Name: "fuzz", Match: UserMatch{Images: []string{"*"}}, Actions: UserActions{SetAnnotations: map[string]string{"example.com/fuzz": "yes"}, RemoveAnnotations: []string{"example.com/drop"}}}}
	envs := []Environment{{}, env(f, facts220, ""), env(f, facts219NoNative, "v1.31"), env(f, facts214, "v1.28")}
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := yaml.YAMLToJSON(data)
		if err != nil {
			return
		}
		in := &unstructured.Unstructured{}
		if err := in.UnmarshalJSON(j); err != nil {
			return
		}
		before := in.DeepCopy()
		for _, e := range envs {
			Lint(in, e)
			if _, err := Admit(in, Context{Env: e}, nil); err != nil && !errors.As(err, new(*ShapeError)) {
				t.Fatalf("Admit: an error that is not a ShapeError: %v", err)
			}
		}
		for _, c := range []*Config{DefaultConfig(), cfg} {
			d, err := Evaluate(in, Context{Namespace: in.GetNamespace()}, c)
			if !reflect.DeepEqual(before.Object, in.Object) {
				t.Fatal("input modified")
			}
			if err != nil {
				continue
			}
			again, err := Evaluate(d.Object, Context{Namespace: in.GetNamespace()}, c)
			if err != nil {
				t.Fatalf("re-evaluating the output failed: %v", err)
			}
			if again.Changed() {
				t.Fatalf("re-evaluation is not a no-op: %+v", again.Changes)
			}
		}
	})
}
