package policy

import (
	"strings"
	"testing"
)

func TestLint(t *testing.T) {
	cases := []struct {
		name     string
		manifest string
		facts    string
		want     []Finding // Code and Path; Message must contain want's Message
	}{
		{name: "inject enabled on a deployment's own metadata is misplaced", manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, annotations: {linkerd.io/inject: enabled, linkerd.io/created-by: me, example.com/x: y}}
spec: {template: {spec: {containers: [{name: c, image: nginx}]}}}
`, want: []Finding{{FindingMisplaced, "metadata.annotations[linkerd.io/inject]", "put it in spec.template.metadata.annotations"}}},
		{name: "inject enable on a template is invalid with a did-you-mean", manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec: {template: {metadata: {annotations: {linkerd.io/inject: enable}}, spec: {containers: [{name: c, image: nginx}]}}}
`, want: []Finding{{FindingInvalid, "spec.template.metadata.annotations[linkerd.io/inject]", `did you mean "enabled"?`}}},
		{name: "a cronjob's job template metadata is misplaced too", manifest: `
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec: {jobTemplate: {metadata: {annotations: {config.linkerd.io/skip-outbound-ports: "443"}}, spec: {template: {spec: {containers: [{name: c, image: x}]}}}}}
`, want: []Finding{{FindingMisplaced, "spec.jobTemplate.metadata.annotations[config.linkerd.io/skip-outbound-ports]", "spec.jobTemplate.spec.template.metadata.annotations"}}},
		{name: "a boolean that is not one is invalid", manifest: `
apiVersion: v1
kind: Pod
metadata: {name: p, annotations: {config.linkerd.io/enable-gateway: "yes", config.linkerd.io/proxy-await: "on"}}
`, want: []Finding{
			{FindingInvalid, "metadata.annotations[config.linkerd.io/enable-gateway]", "is not a boolean"},
			{FindingInvalid, "metadata.annotations[config.linkerd.io/proxy-await]", `want enabled, disabled`},
		}},
		{name: "a port list that does not parse is invalid", manifest: `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec: {template: {metadata: {annotations: {config.linkerd.io/opaque-ports: "3306,5000-4000"}}}}
`, want: []Finding{{FindingInvalid, "spec.template.metadata.annotations[config.linkerd.io/opaque-ports]", "not a range of ports"}}},
		{name: "an unknown config key gets a did-you-mean", manifest: `
apiVersion: v1
kind: Pod
metadata: {name: p, annotations: {config.linkerd.io/opaque-port: "3306", config.linkerd.io/frobnicate: "1"}}
`, want: []Finding{
			{FindingUnknown, "metadata.annotations[config.linkerd.io/frobnicate]", "is not an annotation Linkerd reads"},
			{FindingUnknown, "metadata.annotations[config.linkerd.io/opaque-port]", "did you mean config.linkerd.io/opaque-ports?"},
		}},
		{name: "a near miss of linkerd.io/inject is unknown", manifest: `
apiVersion: v1
kind: Pod
metadata: {name: p, annotations: {linkerd.io/injct: enabled, linkerd.io/proxy-version: edge-26.8.3}}
`, want: []Finding{{FindingUnknown, "metadata.annotations[linkerd.io/injct]", "did you mean linkerd.io/inject?"}}},
		{name: "the alpha native sidecar name is deprecated on 2.19", facts: facts219NoNative, manifest: `
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec: {template: {metadata: {annotations: {config.alpha.linkerd.io/proxy-enable-native-sidecar: "true"}}}}
`, want: []Finding{{FindingDeprecated, "spec.template.metadata.annotations[config.alpha.linkerd.io/proxy-enable-native-sidecar]", "write config.beta.linkerd.io/proxy-enable-native-sidecar"}}},
		{name: "the GA native sidecar name is not read by 2.19", facts: facts219NoNative, manifest: `
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec: {template: {metadata: {annotations: {config.linkerd.io/proxy-enable-native-sidecar: "true"}}}}
`, want: []Finding{{FindingUnsupported, "spec.template.metadata.annotations[config.linkerd.io/proxy-enable-native-sidecar]", "it reads config.beta.linkerd.io/proxy-enable-native-sidecar"}}},
		{name: "no native sidecar name is read by 2.14", facts: facts214, manifest: `
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec: {template: {metadata: {annotations: {config.beta.linkerd.io/proxy-enable-native-sidecar: "true"}}}}
`, want: []Finding{{FindingUnsupported, "spec.template.metadata.annotations[config.beta.linkerd.io/proxy-enable-native-sidecar]", "that came in 2.15"}}},
		{name: "the GA name on 2.20 is fine", facts: facts220, manifest: `
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec: {template: {metadata: {annotations: {config.linkerd.io/proxy-enable-native-sidecar: "false"}}}}
`},
		{name: "names are not judged by version when the version is unknown", manifest: `
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec: {template: {metadata: {annotations: {config.alpha.linkerd.io/proxy-enable-native-sidecar: "true"}}}}
`},
		{name: "opaque-ports on a service is where it belongs", manifest: `
apiVersion: v1
kind: Service
metadata: {name: db, annotations: {config.linkerd.io/opaque-ports: "3306", linkerd.io/inject: enabled}}
`, want: []Finding{{FindingMisplaced, "metadata.annotations[linkerd.io/inject]", "Linkerd reads only config.linkerd.io/opaque-ports from Services"}}},
		{name: "a namespace carries proxy config legitimately but its values are checked", manifest: `
apiVersion: v1
kind: Namespace
metadata: {name: apps, annotations: {linkerd.io/inject: enabled, config.linkerd.io/opaque-ports: "x y"}}
`, want: []Finding{{FindingInvalid, "metadata.annotations[config.linkerd.io/opaque-ports]", "neither a port"}}},
		{name: "every elasticsearch node set's template is linted", manifest: `
apiVersion: elasticsearch.k8s.elastic.co/v1
kind: Elasticsearch
metadata: {name: es, annotations: {linkerd.io/inject: enabled}}
spec: {nodeSets: [{name: a}, {name: b, podTemplate: {metadata: {annotations: {linkerd.io/inject: "yes"}}}}]}
`, want: []Finding{
			{FindingMisplaced, "metadata.annotations[linkerd.io/inject]", "spec.nodeSets[*].podTemplate.metadata.annotations"},
			{FindingInvalid, "spec.nodeSets[1].podTemplate.metadata.annotations[linkerd.io/inject]", "not a value Linkerd accepts"},
		}},
		{name: "kinds the engine does not know are not linted", manifest: `
apiVersion: v1
kind: ConfigMap
metadata: {name: c, annotations: {linkerd.io/inject: enable}}
`},
		{name: "a malformed template is skipped, not a crash", manifest: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec: {template: {metadata: {annotations: "linkerd.io/inject=enable"}}}
`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var e Environment
			if c.facts != "" {
				e = env(t, c.facts, "v1.31")
			}
			got := Lint(obj(t, c.manifest), e)
			if len(got) != len(c.want) {
				t.Fatalf("got %d findings, want %d: %+v", len(got), len(c.want), got)
			}
			for i, w := range c.want {
				g := got[i]
				if g.Code != w.Code || g.Path != w.Path || !strings.Contains(g.Message, w.Message) {
					t.Errorf("finding %d = %+v\nwant code %s path %s message containing %q", i, g, w.Code, w.Path, w.Message)
				}
			}
		})
	}
}

func TestLintStopsAfterTwentyFindings(t *testing.T) {
	ann := map[string]any{}
	for i := range 5000 {
		ann["config.linkerd.io/unknown-"+strings.Repeat("x", i%50)+string(rune('a'+i%26))+strings.Repeat("y", i/26)] = "1"
	}
	p := obj(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n")
	p.Object["metadata"].(map[string]any)["annotations"] = ann
	got := Lint(p, Environment{})
	if len(got) != maxFindings+1 || got[maxFindings].Code != FindingTooMany {
		t.Fatalf("got %d findings, last %+v", len(got), got[len(got)-1])
	}
	if !strings.Contains(got[maxFindings].Message, "4980 more") {
		t.Errorf("last finding %q does not count the rest", got[maxFindings].Message)
	}
}

func TestAdmitLintsInEveryModeButExcludedNamespaces(t *testing.T) {
	dep := func(ns, mode string) string {
		return `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ` + ns + `, annotations: {linkerd.io/inject: enabled, linkerd-inject-policy.io/mode: "` + mode + `"}}
spec: {template: {spec: {containers: [{name: c, image: nginx}]}}}
`
	}
	for _, c := range []struct {
		name, ns, mode string
		findings       int
	}{
		{"a deployment in enforce mode is linted", "apps", "enforce", 1},
		{"a deployment lowered to off is still linted", "apps", "off", 1},
		{"a deployment in an excluded namespace is not linted", "kube-system", "enforce", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := Admit(obj(t, dep(c.ns, c.mode)), Context{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Findings) != c.findings || !a.Supported {
				t.Fatalf("findings %+v supported %v, want %d", a.Findings, a.Supported, c.findings)
			}
		})
	}
}
