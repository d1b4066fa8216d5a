package webhook

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch"
	gomodpatch "gomodules.xyz/jsonpatch/v2"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// oracleObject is one object as the apiserver would send it.
type oracleObject struct {
	name, namespace string
	raw             []byte
}

// oracleObjects gathers every webhook fixture and every object of the
// example manifests.
func oracleObjects(t *testing.T) []oracleObject {
	t.Helper()
	var out []oracleObject
	files, err := filepath.Glob(filepath.Join("testdata", "reviews", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		r := reviewFixture(t, name)
		out = append(out, oracleObject{name: "fixture " + name, namespace: r.Request.Namespace, raw: r.Request.Object.Raw})
	}
	examples := filepath.Join("..", "examples")
	err = filepath.WalkDir(examples, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, doc := range bytes.Split(b, []byte("\n---")) {
			j, err := yaml.YAMLToJSON(doc)
			if err != nil {
				t.Fatalf("%s document %d: %v", path, i, err)
			}
			var head struct {
				Kind string `json:"kind"`
			}
			if err := json.Unmarshal(j, &head); err != nil || head.Kind == "" {
				continue // empty document or a policy config, not an object
			}
			rel, _ := filepath.Rel(examples, path)
			out = append(out, oracleObject{name: "example " + rel + " document " + strconv.Itoa(i) + " " + head.Kind, raw: j})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func applyPatch(t *testing.T, raw []byte, ops []gomodpatch.JsonPatchOperation) []byte {
	t.Helper()
	b, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	p, err := jsonpatch.DecodePatch(b)
	if err != nil {
		t.Fatalf("decode patch %s: %v", b, err)
	}
	out, err := p.Apply(raw)
	if err != nil {
		t.Fatalf("apply patch %s: %v", b, err)
	}
	return out
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}

// TestStructuralPatchMatchesTheRawDiff is the oracle for policy.Diff as the
// handler uses it: on every fixture and example, our patch applied to the
// raw bytes gives the mutated object, and the same document as the patch
// controller-runtime's PatchResponseFromRaw computes (jsonpatch.CreatePatch
// of the raw bytes and the re-encoded object). It also checks Diff without
// the sharing it exploits (a deep copy of the mutated object).
func TestStructuralPatchMatchesTheRawDiff(t *testing.T) {
	cfg := policy.DefaultConfig()
	changed := 0
	for _, o := range oracleObjects(t) {
		t.Run(o.name+" patched structurally equals the raw diff", func(t *testing.T) {
			obj := &unstructured.Unstructured{}
			if err := obj.UnmarshalJSON(o.raw); err != nil {
				t.Fatal(err)
			}
			d, err := policy.Evaluate(obj, policy.Context{Namespace: o.namespace}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			mutated, err := d.Object.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			ops := policy.Diff(obj.Object, d.Object.Object)
			if d.Changed() != (len(ops) > 0) {
				t.Errorf("decision changed=%v but %d operations: %v", d.Changed(), len(ops), ops)
			}
			if len(ops) > 0 {
				changed++
			}
			ours := applyPatch(t, o.raw, ops)
			if !jsonEqual(t, ours, mutated) {
				t.Errorf("our patch gives\n%s\nthe mutated object is\n%s", ours, mutated)
			}
			ref, err := gomodpatch.CreatePatch(o.raw, mutated)
			if err != nil {
				t.Fatal(err)
			}
			if theirs := applyPatch(t, o.raw, ref); !jsonEqual(t, ours, theirs) {
				t.Errorf("our patch gives\n%s\nthe raw diff gives\n%s", ours, theirs)
			}

			unshared := d.Object.DeepCopy()
			if got := applyPatch(t, o.raw, policy.Diff(obj.Object, unshared.Object)); !jsonEqual(t, got, mutated) {
				t.Errorf("without shared subtrees our patch gives\n%s\nwant\n%s", got, mutated)
			}
		})
	}
	// Keeps the oracle honest: most fixtures and examples are changed.
	if changed < 10 {
		t.Errorf("only %d objects were changed by the default policy: the oracle barely runs", changed)
	}
}
