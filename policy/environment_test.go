package policy

import (
	"os"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestParseLinkerdVersion(t *testing.T) {
	cases := []struct {
		name, in string
		line     Version
		edge     bool
	}{
		{"an edge release with a git-describe suffix maps to the 2.20 line", "edge-26.8.3-1-gb24cd4059", Version{2, 20}, true},
		{"the edge that made native sidecars GA is on the 2.20 line", "edge-26.5.2", Version{2, 20}, true},
		{"an edge of late 2025 is on the 2.19 line", "edge-25.11.1", Version{2, 19}, true},
		{"a stable release is its own line", "stable-2.14.10", Version{2, 14}, false},
		{"an edge before 2.11 is on the 2.10 line", "edge-21.1.1", Version{2, 10}, true},
		{"garbage is unknown", "latest", Version{}, false},
		{"an empty string is unknown", "", Version{}, false},
		{"a stable 3.x is unknown", "stable-3.0.0", Version{}, false},
		{"an edge with month 13 is unknown", "edge-26.13.1", Version{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := ParseLinkerdVersion(c.in)
			if r.Line != c.line || r.IsEdge() != c.edge {
				t.Fatalf("ParseLinkerdVersion(%q) = line %v edge %v, want line %v edge %v", c.in, r.Line, r.IsEdge(), c.line, c.edge)
			}
		})
	}
}

func TestNativeSidecarAnnotationFollowsTheVersion(t *testing.T) {
	cases := []struct{ version, want string }{
		{"edge-26.8.3", AnnotationNativeSidecarGA},
		{"edge-26.5.1", AnnotationNativeSidecarBeta},
		{"stable-2.19.1", AnnotationNativeSidecarBeta},
		{"edge-25.10.1", AnnotationNativeSidecarAlpha},
		{"edge-23.11.4", AnnotationNativeSidecarAlpha},
		{"edge-23.11.3", ""},
		{"stable-2.14.10", ""},
		{"", ""},
	}
	for _, c := range cases {
		got, ok := Environment{Linkerd: ParseLinkerdVersion(c.version)}.NativeSidecarAnnotation()
		if got != c.want || ok != (c.want != "") {
			t.Errorf("%q: got %q %v, want %q", c.version, got, ok, c.want)
		}
	}
}

func TestFactsFromTheRealEdge2683ConfigMap(t *testing.T) {
	data, err := os.ReadFile("../../shared/linkerd/linkerd-config.edge-26.8.3.yaml")
	if err != nil {
		t.Skipf("shared Linkerd facts not beside the checkout: %v", err)
	}
	env, err := LinkerdFactsFromFile("linkerd-config.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if env.Linkerd.Line != (Version{2, 20}) || !env.NativeSidecar.True() || !env.TokenProjection.True() || !env.ShutdownEndpoint.False() {
		t.Fatalf("facts = %+v", env)
	}
	if env.OpaquePorts != "25,587,3306,4444,5432,6379,9300,11211" {
		t.Fatalf("opaque ports = %q", env.OpaquePorts)
	}
	if !env.ProjectedToken() || !env.NativeSidecarSupported() {
		t.Fatalf("projected %v, native sidecar supported %v", env.ProjectedToken(), env.NativeSidecarSupported())
	}
}

func TestFactsFromValuesInferDefaultsByVersion(t *testing.T) {
	env, err := LinkerdFactsFromValues([]byte("linkerdVersion: stable-2.14.10\n"), "values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !env.NativeSidecar.False() || !env.TokenProjection.True() || !env.ShutdownEndpoint.True() {
		t.Fatalf("2.14 defaults: %+v", env)
	}
	env, err = LinkerdFactsFromValues([]byte("linkerdVersion: stable-2.19.0\nproxy:\n  nativeSidecar: false\n"), "values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if env.NativeSidecar != FactFalse || env.Linkerd.Line != (Version{2, 19}) {
		t.Fatalf("2.19 with nativeSidecar false: %+v", env)
	}
	if _, err := LinkerdFactsFromValues([]byte("proxy: [\n"), "bad.yaml"); err == nil {
		t.Fatal("bad YAML was accepted")
	}
}

func TestFactsFromFileRejectsOtherKinds(t *testing.T) {
	for _, in := range []string{"", "kind: Secret\n", "kind: ConfigMap\nmetadata: {name: other}\ndata: {a: b}\n"} {
		if _, err := LinkerdFactsFromFile("f.yaml", []byte(in)); err == nil {
			t.Errorf("%q was accepted", in)
		}
	}
}

func TestParseKubernetesVersion(t *testing.T) {
	for in, want := range map[string]Version{"v1.31": {1, 31}, "1.29.3": {1, 29}, "v1.37.2+k3s1": {1, 37}} {
		got, err := ParseKubernetesVersion(in)
		if err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "2.0", "v1", "one.two"} {
		if _, err := ParseKubernetesVersion(in); err == nil {
			t.Errorf("%q was accepted", in)
		}
	}
}

func TestAdmitResolvesTheModeOnce(t *testing.T) {
	job := func(ns string, ann map[string]any) map[string]any {
		md := map[string]any{"name": "j", "namespace": ns}
		if ann != nil {
			md["annotations"] = ann
		}
		return map[string]any{"apiVersion": "batch/v1", "kind": "Job", "metadata": md,
			"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": "busybox"}}}}}}
	}
	cases := []struct {
		name        string
		obj         map[string]any
		labels      map[string]string
		mode        Mode
		reason      string
		wantChanges bool
	}{
		{"a job in an excluded namespace is off and unchanged", job("kube-system", nil), nil, ModeOff, ModeReasonExcludedNamespace, false},
		{"a job in an unlabelled namespace gets the default mode", job("apps", nil), nil, ModeEnforce, ModeReasonDefaultMode, true},
		{"a namespace label in audit still evaluates", job("apps", nil), map[string]string{LabelMode: "audit"}, ModeAudit, ModeReasonNamespaceLabel, true},
		{"an object annotation lowers the mode to off", job("apps", map[string]any{LabelMode: "off"}), nil, ModeOff, ModeReasonObjectAnnotation, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := Admit(&unstructured.Unstructured{Object: c.obj}, Context{NamespaceLabels: c.labels}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if a.Mode != c.mode || a.ModeReason != c.reason || a.Decision.Changed() != c.wantChanges {
				t.Fatalf("got %s/%s changed=%v", a.Mode, a.ModeReason, a.Decision.Changed())
			}
		})
	}
}
