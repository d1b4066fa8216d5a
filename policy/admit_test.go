package policy

import (
	"os"
	"testing"
)

func TestAdmitDecidesByTheFactsItIsGiven(t *testing.T) {
	asEnforced := map[string]string{LabelMode: string(ModeEnforce)}
	cases := []struct {
		name        string
		facts, kube string
		wantInject  string
		wantSkip    string
		wantChanged bool
	}{
		{"a plain job under a 2.20-style linkerd-config is left meshed", facts220, "", absent, ReasonNativeSidecarCompletes, false},
		{"a plain job under a 2.19-style linkerd-config on 1.31 gets the beta native-sidecar annotation", facts219NoNative, "v1.31", absent, "", true},
		{"a plain job under a 2.14-style linkerd-config is disabled", facts214, "v1.31", "disabled", "", true},
		{"a plain job with no linkerd-config is disabled", "", "", "disabled", "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := Admit(obj(t, plainJob), Context{Namespace: "apps", NamespaceLabels: asEnforced, Env: env(t, c.facts, c.kube)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if a.Mode != ModeEnforce || a.ModeReason != ModeReasonNamespaceLabel || !a.Supported {
				t.Fatalf("mode %s (%s), supported %v", a.Mode, a.ModeReason, a.Supported)
			}
			if got := lookup(a.Decision.Object.Object, tmplInject); got != c.wantInject {
				t.Errorf("inject = %s, want %s", got, c.wantInject)
			}
			if a.Decision.Changed() != c.wantChanged {
				t.Errorf("changed = %v, want %v: %+v", a.Decision.Changed(), c.wantChanged, a.Decision.Changes)
			}
			if c.wantSkip != "" && (len(a.Decision.Skipped) != 1 || a.Decision.Skipped[0].Reason != c.wantSkip || !a.Decision.Skipped[0].Informational()) {
				t.Errorf("skips %+v, want one informational %s", a.Decision.Skipped, c.wantSkip)
			}
		})
	}
}

func TestAdmitUnderTheRealEdge2683ConfigMapKeepsJobsMeshed(t *testing.T) {
	data, err := os.ReadFile("../../shared/linkerd/linkerd-config.edge-26.8.3.yaml")
	if err != nil {
		t.Skipf("shared Linkerd facts not beside the checkout: %v", err)
	}
	e, err := LinkerdFactsFromFile("linkerd-config.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Admit(obj(t, plainJob), Context{Namespace: "apps", Env: e}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Decision.Changed() || len(a.Decision.Skipped) != 1 || a.Decision.Skipped[0].Reason != ReasonNativeSidecarCompletes {
		t.Fatalf("changes %+v, skips %+v", a.Decision.Changes, a.Decision.Skipped)
	}
}

func TestAdmitOfAnUnknownKindEvaluatesNothing(t *testing.T) {
	a, err := Admit(obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, annotations: {linkerd.io/inject: enable}}\n"), Context{Namespace: "apps"}, nil)
	if err != nil || a.Supported || a.Decision.Changed() || len(a.Findings) != 0 {
		t.Fatalf("%+v, %v", a, err)
	}
}
