package policy

import (
	"encoding/json"
	"testing"

	"gomodules.xyz/jsonpatch/v2"
)

// with returns a shallow copy of m with key set to v (delete when v is
// deleteKey), the way Evaluate's copy-on-write doc changes a map: every
// other value stays shared.
func with(m map[string]any, key string, v any) map[string]any {
	c := make(map[string]any, len(m)+1)
	for k, x := range m {
		c[k] = x
	}
	if v == deleteKey {
		delete(c, key)
	} else {
		c[key] = v
	}
	return c
}

type deleteMarker struct{}

var deleteKey any = deleteMarker{}

func TestDiff(t *testing.T) {
	containers := []any{map[string]any{"name": "app", "image": "nginx"}}
	podSpec := map[string]any{"containers": containers}
	tmplMeta := map[string]any{"labels": map[string]any{"app": "web"}}
	tmpl := map[string]any{"metadata": tmplMeta, "spec": podSpec}
	spec := map[string]any{"replicas": int64(2), "template": tmpl}
	meta := map[string]any{"name": "web", "annotations": map[string]any{"team": "a"}}
	deploy := map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}

	nodeSet0 := map[string]any{"name": "hot", "podTemplate": map[string]any{"spec": podSpec}}
	nodeSet1 := map[string]any{"name": "warm", "podTemplate": map[string]any{"spec": podSpec}}
	nodeSets := []any{nodeSet0, nodeSet1}
	es := map[string]any{"kind": "Elasticsearch", "spec": map[string]any{"nodeSets": nodeSets}}
	nodeSetsChanged := []any{nodeSet0, with(nodeSet1, "podTemplate", with(nodeSet1["podTemplate"].(map[string]any), "metadata",
		map[string]any{"annotations": map[string]any{"linkerd.io/inject": "disabled"}}))}

	cases := []struct {
		name    string
		orig    map[string]any
		mutated map[string]any
		want    []jsonpatch.JsonPatchOperation
	}{
		{
			name:    "an identical object gives no operation",
			orig:    deploy,
			mutated: deploy,
		},
		{
			name:    "a deep copy with the same content gives no operation",
			orig:    deploy,
			mutated: deepCopyJSON(t, deploy),
		},
		{
			name: "an annotation added where there were no annotations adds the whole map",
			orig: deploy,
			mutated: with(deploy, "spec", with(spec, "template", with(tmpl, "metadata",
				with(tmplMeta, "annotations", map[string]any{"linkerd.io/inject": "disabled"})))),
			want: []jsonpatch.JsonPatchOperation{
				{Operation: "add", Path: "/spec/template/metadata/annotations", Value: map[string]any{"linkerd.io/inject": "disabled"}},
			},
		},
		{
			name:    "a key added to existing annotations is added alone, its slash escaped",
			orig:    deploy,
			mutated: with(deploy, "metadata", with(meta, "annotations", with(meta["annotations"].(map[string]any), "linkerd.io/inject", "enabled"))),
			want: []jsonpatch.JsonPatchOperation{
				{Operation: "add", Path: "/metadata/annotations/linkerd.io~1inject", Value: "enabled"},
			},
		},
		{
			name:    "a changed value is replaced",
			orig:    deploy,
			mutated: with(deploy, "metadata", with(meta, "annotations", with(meta["annotations"].(map[string]any), "team", "b"))),
			want: []jsonpatch.JsonPatchOperation{
				{Operation: "replace", Path: "/metadata/annotations/team", Value: "b"},
			},
		},
		{
			name:    "a removed key is removed",
			orig:    deploy,
			mutated: with(deploy, "metadata", with(meta, "annotations", deleteKey)),
			want: []jsonpatch.JsonPatchOperation{
				{Operation: "remove", Path: "/metadata/annotations"},
			},
		},
		{
			name:    "a key with tilde and slash is escaped tilde first",
			orig:    deploy,
			mutated: with(deploy, "metadata", with(meta, "annotations", with(meta["annotations"].(map[string]any), "a~b/c~1", "x"))),
			want: []jsonpatch.JsonPatchOperation{
				{Operation: "add", Path: "/metadata/annotations/a~0b~1c~01", Value: "x"},
			},
		},
		{
			name: "changes in the object and its nested template come in sorted key order",
			orig: deploy,
			mutated: with(with(deploy, "spec", with(spec, "template", with(tmpl, "spec", with(podSpec, "automountServiceAccountToken", false)))),
				"metadata", with(meta, "annotations", with(meta["annotations"].(map[string]any), "z", "1"))),
			want: []jsonpatch.JsonPatchOperation{
				{Operation: "add", Path: "/metadata/annotations/z", Value: "1"},
				{Operation: "add", Path: "/spec/template/spec/automountServiceAccountToken", Value: false},
			},
		},
		{
			name:    "a changed nodeSets item is diffed at its index, the others skipped",
			orig:    es,
			mutated: with(es, "spec", map[string]any{"nodeSets": nodeSetsChanged}),
			want: []jsonpatch.JsonPatchOperation{
				{Operation: "add", Path: "/spec/nodeSets/1/podTemplate/metadata", Value: map[string]any{"annotations": map[string]any{"linkerd.io/inject": "disabled"}}},
			},
		},
		{
			name:    "a list of another length is replaced whole",
			orig:    es,
			mutated: with(es, "spec", map[string]any{"nodeSets": []any{nodeSet0}}),
			want: []jsonpatch.JsonPatchOperation{
				{Operation: "replace", Path: "/spec/nodeSets", Value: []any{nodeSet0}},
			},
		},
		{
			name:    "a map replaced by a scalar is replaced",
			orig:    deploy,
			mutated: with(deploy, "spec", "none"),
			want: []jsonpatch.JsonPatchOperation{
				{Operation: "replace", Path: "/spec", Value: "none"},
			},
		},
		{
			name:    "a number changed is replaced",
			orig:    deploy,
			mutated: with(deploy, "spec", with(spec, "replicas", int64(3))),
			want: []jsonpatch.JsonPatchOperation{
				{Operation: "replace", Path: "/spec/replicas", Value: int64(3)},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := mustMarshal(t, c.orig)
			got := Diff(c.orig, c.mutated)
			if g, w := mustMarshal(t, got), mustMarshal(t, c.want); g != w {
				t.Errorf("patch\n got %s\nwant %s", g, w)
			}
			if after := mustMarshal(t, c.orig); after != before {
				t.Errorf("Diff modified its input:\n%s\n%s", before, after)
			}
		})
	}
}

func mustMarshal(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func deepCopyJSON(t testing.TB, m map[string]any) map[string]any {
	t.Helper()
	var c map[string]any
	if err := json.Unmarshal([]byte(mustMarshal(t, m)), &c); err != nil {
		t.Fatal(err)
	}
	// encoding/json decodes numbers as float64; unstructured uses int64.
	fixInts(c)
	return c
}

func fixInts(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if f, ok := e.(float64); ok && f == float64(int64(f)) {
				x[k] = int64(f)
			} else {
				fixInts(e)
			}
		}
	case []any:
		for i, e := range x {
			if f, ok := e.(float64); ok && f == float64(int64(f)) {
				x[i] = int64(f)
			} else {
				fixInts(e)
			}
		}
	}
}
