package policy

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// obj decodes a YAML manifest into an unstructured object.
func obj(t testing.TB, manifest string) *unstructured.Unstructured {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(manifest))
	if err != nil {
		t.Fatalf("bad test manifest: %v\n%s", err, manifest)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		t.Fatalf("bad test manifest: %v\n%s", err, manifest)
	}
	return u
}

// absent marks a field that must not exist.
const absent = "<absent>"

// lookup reads a field by a path such as
// "spec.template.metadata.annotations[linkerd.io/inject]" or
// "spec.nodeSets[1].podTemplate.spec.automountServiceAccountToken" and
// renders it with %v; absent when missing.
func lookup(o map[string]any, path string) string {
	var cur any = o
	for _, part := range splitPath(path) {
		if i, err := strconv.Atoi(part); err == nil {
			l, ok := cur.([]any)
			if !ok || i >= len(l) {
				return absent
			}
			cur = l[i]
			continue
		}
		m, ok := cur.(map[string]any)
		if !ok {
			return absent
		}
		v, ok := m[part]
		if !ok {
			return absent
		}
		cur = v
	}
	return fmt.Sprint(cur)
}

func splitPath(path string) []string {
	var parts []string
	for path != "" {
		switch {
		case path[0] == '.':
			path = path[1:]
		case path[0] == '[':
			end := strings.IndexByte(path, ']')
			parts = append(parts, path[1:end])
			path = path[end+1:]
		default:
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			parts = append(parts, path[:end])
			path = path[end:]
		}
	}
	return parts
}

// ruleCase is one row of a rule's table test.
type ruleCase struct {
	name     string
	manifest string
	ns       string
	cfg      func(*Config)
	// want maps field paths to their value after evaluation (absent: must not exist).
	want map[string]string
	// reasons of the changes, in order; nil means no change.
	reasons []string
	// skips are the reasons of deliberate non-changes.
	skips []string
	// facts names a linkerd-config fixture under testdata/ and kube a
	// Kubernetes version; both empty: nothing known.
	facts, kube string
}

func runRuleCases(t *testing.T, cases []ruleCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tc.cfg != nil {
				tc.cfg(cfg)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("test config invalid: %v", err)
			}
			in := obj(t, tc.manifest)
			before := in.DeepCopy()
			ctx := Context{Namespace: tc.ns, Env: env(t, tc.facts, tc.kube)}
			d, err := Evaluate(in, ctx, cfg)
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if !equalObjects(before, in) {
				t.Fatalf("Evaluate modified its input")
			}
			var reasons, skips []string
			for _, c := range d.Changes {
				reasons = append(reasons, c.Reason)
				if c.Message == "" || c.Path == "" || c.Rule == "" {
					t.Errorf("change without rule, message or path: %+v", c)
				}
			}
			for _, s := range d.Skipped {
				skips = append(skips, s.Reason)
				if s.Message == "" || s.Path == "" {
					t.Errorf("skip without message or path: %+v", s)
				}
			}
			if strings.Join(reasons, ",") != strings.Join(tc.reasons, ",") {
				t.Errorf("change reasons %v, want %v\nchanges: %+v", reasons, tc.reasons, d.Changes)
			}
			if strings.Join(skips, ",") != strings.Join(tc.skips, ",") {
				t.Errorf("skip reasons %v, want %v\nskips: %+v", skips, tc.skips, d.Skipped)
			}
			if d.Changed() != (len(tc.reasons) > 0) {
				t.Errorf("Changed() = %v with %d changes", d.Changed(), len(d.Changes))
			}
			for path, want := range tc.want {
				if got := lookup(d.Object.Object, path); got != want {
					t.Errorf("%s = %q, want %q", path, got, want)
				}
			}
			// Evaluating the result again must change nothing.
			again, err := Evaluate(d.Object, ctx, cfg)
			if err != nil {
				t.Fatalf("second Evaluate: %v", err)
			}
			if again.Changed() {
				t.Errorf("second evaluation changed %+v", again.Changes)
			}
		})
	}
}

func equalObjects(a, b *unstructured.Unstructured) bool {
	ja, errA := a.MarshalJSON()
	jb, errB := b.MarshalJSON()
	return errA == nil && errB == nil && string(ja) == string(jb)
}
