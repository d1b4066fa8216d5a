package policy

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// bigElasticsearch has n empty node sets: issue #17's quadratic case.
func bigElasticsearch(n int) *unstructured.Unstructured {
	sets := make([]any, n)
	for i := range sets {
		sets[i] = map[string]any{"name": "n" + strconv.Itoa(i), "count": int64(1)}
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "elasticsearch.k8s.elastic.co/v1", "kind": "Elasticsearch",
		"metadata": map[string]any{"name": "es", "namespace": "logs"},
		"spec":     map[string]any{"version": "8.17.0", "nodeSets": sets},
	}}
}

func TestAnElasticsearchWithFortyThousandNodeSetsIsLeftAsItIs(t *testing.T) {
	in := bigElasticsearch(40000)
	d, err := Evaluate(in, Context{Namespace: "logs"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Changed() || d.Object != in {
		t.Fatalf("%d changes: an object with more than %d pod templates must be left as it is", len(d.Changes), maxTemplates)
	}
	if len(d.Skipped) != 1 || d.Skipped[0].Reason != ReasonTooManyTemplates || d.Skipped[0].Path != "spec.nodeSets" {
		t.Fatalf("skips %+v, want one too_many_templates on spec.nodeSets", d.Skipped)
	}
}

func TestAnElasticsearchWithTheMostNodeSetsThePolicyReadsEvaluates(t *testing.T) {
	n := maxTemplates
	in := bigElasticsearch(n)
	d, err := Evaluate(in, Context{Namespace: "logs"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Changes) != n {
		t.Fatalf("%d changes, want one per node set (%d)", len(d.Changes), n)
	}
	if got := lookup(d.Object.Object, fmt.Sprintf("spec.nodeSets[%d].podTemplate.spec.automountServiceAccountToken", n-1)); got != "true" {
		t.Fatalf("last node set: %s", got)
	}
	// With the facts of a Linkerd that projects the token, nothing is
	// written, and one Skip says so (not one per node set).
	d, err = Evaluate(in, Context{Namespace: "logs", Env: env(t, facts220, "")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Changed() || len(d.Skipped) != 1 || d.Skipped[0].Reason != ReasonTokenProjected {
		t.Fatalf("2.20: %d changes, skips %+v", len(d.Changes), d.Skipped)
	}
	if d.Object != in {
		t.Fatal("2.20: the object was copied although nothing changed")
	}
}

func TestCopyOnWriteOwnsWhatItCopiedOnce(t *testing.T) {
	in := bigElasticsearch(1000)
	d, err := Evaluate(in, Context{Namespace: "logs"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Every node set's podTemplate.spec was created and written once: the
	// result's node sets are new maps, the input's untouched.
	sets := d.Object.Object["spec"].(map[string]any)["nodeSets"].([]any)
	orig := in.Object["spec"].(map[string]any)["nodeSets"].([]any)
	for i := range sets {
		if mapID(sets[i].(map[string]any)) == mapID(orig[i].(map[string]any)) {
			t.Fatalf("node set %d shares the input's map although it changed", i)
		}
		if _, ok := orig[i].(map[string]any)["podTemplate"]; ok {
			t.Fatalf("input node set %d was modified", i)
		}
	}
}

func TestMergingPortsResolvesEachNameOnce(t *testing.T) {
	names := make([]string, 900)
	for i := range names {
		names[i] = fmt.Sprintf("unknown-%d", i)
	}
	want := make([]int, 5000)
	for i := range want {
		want[i] = 10000 + i
	}
	calls := 0
	value, changed, err := mergePorts(strings.Join(names, ","), want, func(string) int { calls++; return 0 })
	if err != nil || !changed {
		t.Fatalf("merge: changed %v, %v", changed, err)
	}
	if calls != len(names) {
		t.Fatalf("resolve called %d times for %d names and %d wanted ports, want once per name", calls, len(names), len(want))
	}
	if strings.Count(value, ",") != len(names)+len(want)-1 {
		t.Fatalf("merged value has %d entries", strings.Count(value, ",")+1)
	}
}

func TestAPortListPastTheCapIsLeftAloneWithASkip(t *testing.T) {
	entries := make([]string, maxPortEntries+1)
	for i := range entries {
		entries[i] = strconv.Itoa(20000 + i)
	}
	p := obj(t, `
apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {containers: [{name: c, image: x, ports: [{containerPort: 3306}]}]}
`)
	p.Object["metadata"].(map[string]any)["annotations"] = map[string]any{AnnotationOpaquePorts: strings.Join(entries, ",")}
	d, err := Evaluate(p, Context{Namespace: "default"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Changed() || len(d.Skipped) != 1 || d.Skipped[0].Reason != ReasonUnparsableValue || !strings.Contains(d.Skipped[0].Message, "more than 1000 entries") {
		t.Fatalf("changes %+v, skips %+v", d.Changes, d.Skipped)
	}
	if len(d.Skipped[0].Message) > 400 {
		t.Errorf("the skip repeats the whole value (%d bytes)", len(d.Skipped[0].Message))
	}
	f := Lint(p, Environment{})
	if len(f) != 1 || f[0].Code != FindingInvalid || !strings.Contains(f[0].Message, "more than 1000 entries") {
		t.Fatalf("lint: %+v", f)
	}
}

func TestAPodWithThousandsOfServerFirstPortsEvaluates(t *testing.T) {
	// Issue #17's first input, scaled to what stays quick under -race:
	// 1,620 containers × 8 server-first ports, 900 unresolvable names.
	containers := make([]any, 1620)
	for i := range containers {
		ports := make([]any, 8)
		for j := range ports {
			ports[j] = map[string]any{"name": fmt.Sprintf("p%d-%d", i, j), "containerPort": int64(1 + i*8 + j)}
		}
		containers[i] = map[string]any{"name": "c" + strconv.Itoa(i), "image": "mysql", "ports": ports}
	}
	names := make([]string, 900)
	for i := range names {
		names[i] = "nope-" + strconv.Itoa(i)
	}
	p := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "p", "annotations": map[string]any{AnnotationOpaquePorts: strings.Join(names, ",")}},
		"spec":     map[string]any{"containers": containers},
	}}
	d, err := Evaluate(p, Context{Namespace: "default"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Changes) != 1 || strings.Count(d.Changes[0].Value, ",") != 900+1620*8-1 {
		t.Fatalf("%d changes; value has %d entries", len(d.Changes), strings.Count(d.Changes[0].Value, ",")+1)
	}
}

func TestATraceAnnotationOfManyNamesMergesInOnePass(t *testing.T) {
	names := make([]string, 50000)
	for i := range names {
		names[i] = "r" + strconv.Itoa(i%25000)
	}
	got := mergeTrace(strings.Join(names, ","), []string{"jobs"})
	if n := strings.Count(got, ",") + 1; n != 25001 {
		t.Fatalf("%d names, want 25001 distinct", n)
	}
}
