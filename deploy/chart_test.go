package deploy

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/webhook"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const (
	chartDir  = "charts/" + ChartName
	releaseNS = "linkerd-inject-policy"
)

func render(t *testing.T, values map[string]any, apiVersions ...string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := Render(RenderOptions{ChartDir: chartDir, Namespace: releaseNS, Values: values, APIVersions: apiVersions})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return objs
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && (name == "" || o.GetName() == name) {
			return o
		}
	}
	return nil
}

func mustFind(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	o := find(objs, kind, name)
	if o == nil {
		t.Fatalf("rendered chart has no %s %q", kind, name)
	}
	return o
}

func convert[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true); err != nil {
		t.Fatalf("%s %s does not decode strictly into %T: %v", u.GetKind(), u.GetName(), out, err)
	}
	return out
}

func kinds(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	return out
}

func selfManaged() map[string]any {
	return map[string]any{"certs": map[string]any{"mode": "self-managed"}}
}

func TestChartRendersTheObjectsOfEachCertMode(t *testing.T) {
	cases := []struct {
		name        string
		values      map[string]any
		apiVersions []string
		want        []string
		absent      []string
	}{
		{
			name:        "auto mode with cert-manager in the cluster uses a self-signed Issuer and Certificate",
			apiVersions: CertManagerAPIVersions,
			want:        []string{"Issuer/linkerd-inject-policy-selfsigned", "Certificate/linkerd-inject-policy", "PodDisruptionBudget/linkerd-inject-policy", "ServiceAccount/linkerd-inject-policy", "ConfigMap/linkerd-inject-policy-config", "ClusterRole/linkerd-inject-policy", "ClusterRoleBinding/linkerd-inject-policy", "Service/linkerd-inject-policy", "Deployment/linkerd-inject-policy", "MutatingWebhookConfiguration/linkerd-inject-policy"},
			absent:      []string{"Role/linkerd-inject-policy-certs"},
		},
		{
			name:   "auto mode without cert-manager manages its own certificates",
			want:   []string{"Role/linkerd-inject-policy-certs", "RoleBinding/linkerd-inject-policy-certs", "MutatingWebhookConfiguration/linkerd-inject-policy"},
			absent: []string{"Certificate/linkerd-inject-policy", "Issuer/linkerd-inject-policy-selfsigned"},
		},
		{
			name:        "explicit self-managed mode ignores cert-manager being present",
			values:      selfManaged(),
			apiVersions: CertManagerAPIVersions,
			want:        []string{"Role/linkerd-inject-policy-certs"},
			absent:      []string{"Certificate/linkerd-inject-policy"},
		},
		{
			name:        "an existing issuer replaces the self-signed one",
			values:      map[string]any{"certs": map[string]any{"mode": "cert-manager", "certManager": map[string]any{"issuerRef": map[string]any{"kind": "ClusterIssuer", "name": "ca-issuer"}}}},
			apiVersions: CertManagerAPIVersions,
			want:        []string{"Certificate/linkerd-inject-policy"},
			absent:      []string{"Issuer/linkerd-inject-policy-selfsigned"},
		},
		{
			name:   "monitors are rendered when asked for",
			values: map[string]any{"metrics": map[string]any{"podMonitor": map[string]any{"enabled": true}, "serviceMonitor": map[string]any{"enabled": true}}},
			want:   []string{"PodMonitor/linkerd-inject-policy", "ServiceMonitor/linkerd-inject-policy"},
		},
		{
			name:   "a single replica gets no PodDisruptionBudget that would block node drains",
			values: map[string]any{"replicaCount": 1},
			absent: []string{"PodDisruptionBudget/linkerd-inject-policy"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := kinds(render(t, tc.values, tc.apiVersions...))
			have := map[string]bool{}
			for _, k := range got {
				if have[k] {
					t.Errorf("%s rendered twice", k)
				}
				have[k] = true
			}
			for _, k := range tc.want {
				if !have[k] {
					t.Errorf("missing %s; rendered %v", k, got)
				}
			}
			for _, k := range tc.absent {
				if have[k] {
					t.Errorf("unexpected %s", k)
				}
			}
		})
	}
}

// The chart's registration must be the Go registration: same rules, same
// namespace selector, same names and safety settings.
func TestChartWebhookEqualsTheGoRegistration(t *testing.T) {
	for _, mode := range []string{"cert-manager", "self-managed"} {
		t.Run(mode+" mode", func(t *testing.T) {
			objs := render(t, map[string]any{"certs": map[string]any{"mode": mode}}, CertManagerAPIVersions...)
			cfg := convert[admissionregistrationv1.MutatingWebhookConfiguration](t, mustFind(t, objs, "MutatingWebhookConfiguration", ""))
			if cfg.Name != webhook.ConfigurationName {
				t.Errorf("name %q, want %q", cfg.Name, webhook.ConfigurationName)
			}
			if len(cfg.Webhooks) != 1 {
				t.Fatalf("%d webhooks, want 1", len(cfg.Webhooks))
			}
			wh := cfg.Webhooks[0]
			want := webhook.MutatingWebhookConfiguration(webhook.RegistrationOptions{
				Service:            &admissionregistrationv1.ServiceReference{Namespace: releaseNS, Name: "linkerd-inject-policy", Port: ptr(int32(443))},
				ExcludedNamespaces: []string{releaseNS, "kube-system"},
			}).Webhooks[0]
			if !reflect.DeepEqual(wh.Rules, webhook.Rules()) {
				t.Errorf("rules differ from webhook.Rules():\nchart: %s\ngo:    %s", js(wh.Rules), js(webhook.Rules()))
			}
			if !reflect.DeepEqual(wh.NamespaceSelector, webhook.NamespaceSelector([]string{releaseNS, "kube-system"})) {
				t.Errorf("namespaceSelector differs from webhook.NamespaceSelector():\nchart: %s\ngo:    %s", js(wh.NamespaceSelector), js(want.NamespaceSelector))
			}
			// Everything but the caBundle (written at run time) equals the Go registration.
			if !reflect.DeepEqual(wh, want) {
				t.Errorf("webhook differs from webhook.MutatingWebhookConfiguration():\nchart: %s\ngo:    %s", js(wh), js(want))
			}
			if *wh.SideEffects != admissionregistrationv1.SideEffectClassNone || *wh.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy || *wh.TimeoutSeconds > 10 || *wh.FailurePolicy != admissionregistrationv1.Ignore {
				t.Errorf("safety settings: sideEffects %s, reinvocation %s, timeout %d, failurePolicy %s", *wh.SideEffects, *wh.ReinvocationPolicy, *wh.TimeoutSeconds, *wh.FailurePolicy)
			}
			ann := cfg.Annotations["cert-manager.io/inject-ca-from"]
			switch mode {
			case "cert-manager":
				if ann != releaseNS+"/linkerd-inject-policy" {
					t.Errorf("inject-ca-from %q, want %s/linkerd-inject-policy", ann, releaseNS)
				}
				cert := mustFind(t, objs, "Certificate", "linkerd-inject-policy")
				names, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
				if !has(names, "linkerd-inject-policy."+releaseNS+".svc") {
					t.Errorf("certificate DNS names %v lack the name the apiserver dials", names)
				}
				if s, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName"); s != "linkerd-inject-policy-tls" {
					t.Errorf("certificate secret %q", s)
				}
			default:
				if ann != "" {
					t.Errorf("self-managed mode must not ask cert-manager to inject (%q)", ann)
				}
			}
		})
	}
}

func TestChartWebhookValuesAreHonoured(t *testing.T) {
	objs := render(t, map[string]any{"webhook": map[string]any{"failurePolicy": "Fail", "timeoutSeconds": 5, "excludedNamespaces": []any{"kube-system", "monitoring", releaseNS}}})
	wh := convert[admissionregistrationv1.MutatingWebhookConfiguration](t, mustFind(t, objs, "MutatingWebhookConfiguration", "")).Webhooks[0]
	if *wh.FailurePolicy != admissionregistrationv1.Fail || *wh.TimeoutSeconds != 5 {
		t.Errorf("failurePolicy %s timeout %d, want Fail 5", *wh.FailurePolicy, *wh.TimeoutSeconds)
	}
	if want := webhook.NamespaceSelector([]string{releaseNS, "kube-system", "monitoring"}); !reflect.DeepEqual(wh.NamespaceSelector, want) {
		t.Errorf("namespaceSelector %s, want %s (own namespace once, first)", js(wh.NamespaceSelector), js(want))
	}
}

func TestChartDeploymentIsHardenedAndHighlyAvailable(t *testing.T) {
	for _, mode := range []string{"cert-manager", "self-managed"} {
		t.Run(mode+" mode", func(t *testing.T) {
			objs := render(t, map[string]any{"certs": map[string]any{"mode": mode}}, CertManagerAPIVersions...)
			d := convert[appsv1.Deployment](t, mustFind(t, objs, "Deployment", "linkerd-inject-policy"))
			if *d.Spec.Replicas != 2 {
				t.Errorf("replicas %d, want 2", *d.Spec.Replicas)
			}
			pod := d.Spec.Template.Spec
			if pod.Affinity == nil || pod.Affinity.PodAntiAffinity == nil || len(pod.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
				t.Error("no pod anti-affinity")
			}
			psc := pod.SecurityContext
			if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("pod security context %s: want runAsNonRoot and seccomp RuntimeDefault", js(psc))
			}
			if len(pod.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(pod.Containers))
			}
			c := pod.Containers[0]
			sc := c.SecurityContext
			if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
				sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
				t.Errorf("container security context %s: want read-only root, no privilege escalation, drop ALL", js(sc))
			}
			if c.Resources.Requests.Cpu().MilliValue() > 100 || c.Resources.Requests.Memory().Value() > 64<<20 {
				t.Errorf("requests %s are too big for a Raspberry Pi", js(c.Resources.Requests))
			}
			for _, arg := range []string{"serve", "--cert-dir=/certs", "--port=9443", "--config=/config/config.yaml", "--health-probe-bind-address=:8081", "--metrics-bind-address=:8080"} {
				if !has(c.Args, arg) {
					t.Errorf("args %v lack %s", c.Args, arg)
				}
			}
			certs := volume(pod.Volumes, "certs")
			selfArgs := []string{"--cert-mode=self-managed", "--namespace=" + releaseNS, "--service-name=linkerd-inject-policy", "--cert-secret=linkerd-inject-policy-tls", "--webhook-config-name=" + webhook.ConfigurationName}
			switch mode {
			case "self-managed":
				for _, arg := range selfArgs {
					if !has(c.Args, arg) {
						t.Errorf("args %v lack %s", c.Args, arg)
					}
				}
				if certs == nil || certs.EmptyDir == nil {
					t.Errorf("cert dir must be a writable emptyDir (read-only root filesystem), got %s", js(certs))
				}
			default:
				if has(c.Args, "--cert-mode=self-managed") {
					t.Error("cert-manager mode runs with --cert-mode=self-managed")
				}
				if certs == nil || certs.Secret == nil || certs.Secret.SecretName != "linkerd-inject-policy-tls" {
					t.Errorf("cert dir must be the cert-manager Secret, got %s", js(certs))
				}
			}
			if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
				t.Error("no /readyz readiness probe")
			}
		})
	}
}

func TestChartRBACIsLeastPrivilege(t *testing.T) {
	cases := []struct {
		name   string
		values map[string]any
		want   []string // "verb resource[/name]" in the ClusterRole and Role
	}{
		{"cert-manager mode only reads namespaces", map[string]any{"certs": map[string]any{"mode": "cert-manager"}},
			[]string{"get namespaces", "list namespaces", "watch namespaces", "get configmaps/linkerd-config", "list configmaps/linkerd-config", "watch configmaps/linkerd-config"}},
		{"without reading linkerd-config only namespaces remain", map[string]any{"certs": map[string]any{"mode": "cert-manager"}, "linkerd": map[string]any{"readConfig": false}},
			[]string{"get namespaces", "list namespaces", "watch namespaces"}},
		{"self-managed mode adds its Secret and its one webhook configuration", selfManaged(),
			[]string{"get namespaces", "list namespaces", "watch namespaces", "get mutatingwebhookconfigurations/linkerd-inject-policy", "patch mutatingwebhookconfigurations/linkerd-inject-policy", "create secrets", "get secrets/linkerd-inject-policy-tls", "update secrets/linkerd-inject-policy-tls", "get configmaps/linkerd-config", "list configmaps/linkerd-config", "watch configmaps/linkerd-config"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, tc.values, CertManagerAPIVersions...)
			var got []string
			for _, kind := range []string{"ClusterRole", "Role"} {
				for _, o := range objs {
					if o.GetKind() != kind {
						continue
					}
					for _, r := range convert[rbacv1.ClusterRole](t, o).Rules {
						for _, v := range r.Verbs {
							for _, res := range r.Resources {
								if len(r.ResourceNames) == 0 {
									got = append(got, v+" "+res)
								}
								for _, n := range r.ResourceNames {
									got = append(got, v+" "+res+"/"+n)
								}
							}
						}
					}
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("permissions\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestChartConfigMapIsAValidPolicyConfig(t *testing.T) {
	cases := []struct {
		name     string
		values   map[string]any
		wantMode policy.Mode
	}{
		{"default values enforce", nil, policy.ModeEnforce},
		{"bootstrap's policy.defaultMode reaches the config", map[string]any{"policy": map[string]any{"defaultMode": "audit"}}, policy.ModeAudit},
		{"extra config fields are merged", map[string]any{"policy": map[string]any{"defaultMode": "off", "config": map[string]any{"excludedNamespaces": []any{"kube-system", "longhorn-system"}}}}, policy.ModeOff},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cm := convert[corev1.ConfigMap](t, mustFind(t, render(t, tc.values), "ConfigMap", "linkerd-inject-policy-config"))
			cfg, err := policy.LoadConfig([]byte(cm.Data["config.yaml"]))
			if err != nil {
				t.Fatalf("rendered config is rejected by policy.LoadConfig: %v\n%s", err, cm.Data["config.yaml"])
			}
			if cfg.DefaultMode != tc.wantMode {
				t.Errorf("defaultMode %s, want %s", cfg.DefaultMode, tc.wantMode)
			}
		})
	}
}

func TestChartRejectsBadValuesClearly(t *testing.T) {
	cases := []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"unknown default mode", map[string]any{"policy": map[string]any{"defaultMode": "strict"}}, "defaultMode"},
		{"timeout above ten seconds", map[string]any{"webhook": map[string]any{"timeoutSeconds": 30}}, "timeoutSeconds"},
		{"unknown failure policy", map[string]any{"webhook": map[string]any{"failurePolicy": "Retry"}}, "failurePolicy"},
		{"unknown certificate mode", map[string]any{"certs": map[string]any{"mode": "vault"}}, "mode"},
		{"misspelt top-level value", map[string]any{"replicas": 3}, "replicas"},
		{"kind set in the policy config", map[string]any{"policy": map[string]any{"config": map[string]any{"kind": "Other"}}}, "config"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Render(RenderOptions{ChartDir: chartDir, Namespace: releaseNS, Values: tc.values})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestChartLintsClean(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]any
	}{
		{"default values", nil},
		{"self-managed values", selfManaged()},
		{"monitoring enabled", map[string]any{"metrics": map[string]any{"podMonitor": map[string]any{"enabled": true}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := lint.All(chartDir, tc.values, releaseNS, false)
			for _, m := range res.Messages {
				if m.Severity > support.InfoSev {
					t.Errorf("helm lint: %s", m.Error())
				} else {
					t.Logf("helm lint (info): %s", m.Error())
				}
			}
		})
	}
}

// Every value in values.yaml is documented: each leaf key is preceded by a
// comment. Section keys (maps of further values) need none, and the content
// of free-form Kubernetes maps (resources, security contexts, annotations) is
// documented as a whole by the comment above the map.
func TestValuesAreDocumented(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	type frame struct {
		indent int
		key    string
	}
	var stack []frame
	lines := strings.Split(string(data), "\n")
	indentOf := func(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, "- ") {
			continue
		}
		key, rest, ok := strings.Cut(trimmed, ":")
		if !ok {
			continue
		}
		indent := indentOf(line)
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		freeForm := false
		for _, f := range stack {
			freeForm = freeForm || isFreeForm(f.key)
		}
		isSection := false
		if strings.TrimSpace(rest) == "" {
			for j := i + 1; j < len(lines); j++ {
				nt := strings.TrimSpace(lines[j])
				if nt == "" || strings.HasPrefix(nt, "#") {
					continue
				}
				isSection = indentOf(lines[j]) > indent && !strings.HasPrefix(nt, "- ")
				break
			}
		}
		stack = append(stack, frame{indent, key})
		if freeForm || (isSection && !isFreeForm(key)) {
			continue
		}
		prev := ""
		for j := i - 1; j >= 0; j-- {
			if pt := strings.TrimSpace(lines[j]); pt != "" {
				prev = pt
				break
			}
		}
		if !strings.HasPrefix(prev, "#") {
			t.Errorf("values.yaml:%d: %q has no comment above it", i+1, trimmed)
		}
	}
}

// Free-form Kubernetes maps whose content is documented as a whole.
func isFreeForm(key string) bool {
	switch key {
	case "resources", "podSecurityContext", "securityContext", "podAnnotations":
		return true
	}
	return false
}

// The rendered chart for each mode is kept under testdata/ so a review sees
// every change of what users install; regenerate with -update.
func TestChartGolden(t *testing.T) {
	for _, tc := range []struct {
		file        string
		values      map[string]any
		apiVersions []string
	}{
		{"cert-manager.yaml", nil, CertManagerAPIVersions},
		{"self-managed.yaml", selfManaged(), nil},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var buf bytes.Buffer
			for _, o := range render(t, tc.values, tc.apiVersions...) {
				b, err := yaml.Marshal(o.Object)
				if err != nil {
					t.Fatal(err)
				}
				buf.WriteString("---\n")
				buf.Write(b)
			}
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./deploy -run TestChartGolden -update)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("rendered chart differs from %s; if intended, run with -update and review the diff", path)
			}
		})
	}
}

func volume(vs []corev1.Volume, name string) *corev1.Volume {
	for i := range vs {
		if vs[i].Name == name {
			return &vs[i]
		}
	}
	return nil
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestChartReadsLinkerdConfigInLinkerdsNamespace(t *testing.T) {
	for _, ns := range []string{"", "linkerd-edge"} {
		want := ns
		var values map[string]any
		if ns == "" {
			want = "linkerd"
		} else {
			values = map[string]any{"linkerd": map[string]any{"namespace": ns}}
		}
		t.Run("the Role, its binding and the flag name namespace "+want, func(t *testing.T) {
			objs := render(t, values)
			role := mustFind(t, objs, "Role", "linkerd-inject-policy-linkerd-config")
			binding := convert[rbacv1.RoleBinding](t, mustFind(t, objs, "RoleBinding", "linkerd-inject-policy-linkerd-config"))
			if role.GetNamespace() != want || binding.Namespace != want {
				t.Errorf("Role in %q, RoleBinding in %q, want both in %q", role.GetNamespace(), binding.Namespace, want)
			}
			if len(binding.Subjects) != 1 || binding.Subjects[0].Kind != "ServiceAccount" || binding.Subjects[0].Name != "linkerd-inject-policy" {
				t.Errorf("RoleBinding subjects %+v, want the webhook's ServiceAccount", binding.Subjects)
			}
			dep := convert[appsv1.Deployment](t, mustFind(t, objs, "Deployment", "linkerd-inject-policy"))
			if args := dep.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--linkerd-namespace="+want) {
				t.Errorf("serve args %v lack --linkerd-namespace=%s", args, want)
			}
		})
	}
}

func TestChartReportsAddTheIntervalAndTheirClusterRole(t *testing.T) {
	base := render(t, nil, CertManagerAPIVersions...)
	on := render(t, map[string]any{"reports": map[string]any{"enabled": true, "interval": "15m"}}, CertManagerAPIVersions...)

	var added []string
	for _, o := range on {
		if find(base, o.GetKind(), o.GetName()) == nil {
			added = append(added, o.GetKind()+"/"+o.GetName())
		}
	}
	want := []string{"ClusterRole/linkerd-inject-policy-reports", "ClusterRoleBinding/linkerd-inject-policy-reports"}
	if !reflect.DeepEqual(added, want) || len(on) != len(base)+2 {
		t.Errorf("reports.enabled added %v (of %d objects, %d without), want exactly %v", added, len(on), len(base), want)
	}

	var perms []string
	for _, r := range convert[rbacv1.ClusterRole](t, mustFind(t, on, "ClusterRole", "linkerd-inject-policy-reports")).Rules {
		if len(r.ResourceNames) != 0 {
			t.Errorf("rule %v is limited by name", r)
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					perms = append(perms, v+" "+g+"/"+res)
				}
			}
		}
	}
	wantPerms := []string{}
	for _, gr := range []string{"/namespaces", "/pods", "/services", "/configmaps", "apps/deployments", "apps/statefulsets", "apps/daemonsets", "apps/replicasets", "batch/jobs", "batch/cronjobs"} {
		wantPerms = append(wantPerms, "get "+gr, "list "+gr)
	}
	for _, gr := range []string{"openreports.io/reports", "openreports.io/clusterreports"} {
		for _, v := range []string{"get", "list", "create", "patch", "delete"} {
			wantPerms = append(wantPerms, v+" "+gr)
		}
	}
	sort.Strings(perms)
	sort.Strings(wantPerms)
	if !reflect.DeepEqual(perms, wantPerms) {
		t.Errorf("reports ClusterRole\n got %v\nwant %v", perms, wantPerms)
	}
	binding := convert[rbacv1.ClusterRoleBinding](t, mustFind(t, on, "ClusterRoleBinding", "linkerd-inject-policy-reports"))
	if binding.RoleRef.Name != "linkerd-inject-policy-reports" || len(binding.Subjects) != 1 || binding.Subjects[0].Namespace != releaseNS {
		t.Errorf("binding %+v", binding)
	}

	argsOf := func(objs []*unstructured.Unstructured) []string {
		d := convert[appsv1.Deployment](t, mustFind(t, objs, "Deployment", ""))
		return d.Spec.Template.Spec.Containers[0].Args
	}
	baseArgs, onArgs := argsOf(base), argsOf(on)
	var extra []string
	for _, a := range onArgs {
		if !slices.Contains(baseArgs, a) {
			extra = append(extra, a)
		}
	}
	if !reflect.DeepEqual(extra, []string{"--report-interval=15m"}) || len(onArgs) != len(baseArgs)+1 {
		t.Errorf("reports.enabled added the args %v, want exactly --report-interval=15m", extra)
	}
	for _, a := range baseArgs {
		if strings.HasPrefix(a, "--report-interval") {
			t.Errorf("the default chart passes %s", a)
		}
	}
	// The image's entrypoint (the lean webhook binary) refuses
	// --report-interval: the full CLI runs serve then.
	commandOf := func(objs []*unstructured.Unstructured) []string {
		return convert[appsv1.Deployment](t, mustFind(t, objs, "Deployment", "")).Spec.Template.Spec.Containers[0].Command
	}
	if got := commandOf(on); !reflect.DeepEqual(got, []string{"/linkerd-inject-policy"}) {
		t.Errorf("reports.enabled runs command %v, want [/linkerd-inject-policy] (the full CLI)", got)
	}
	if got := commandOf(base); got != nil {
		t.Errorf("the default chart overrides the image's entrypoint with %v", got)
	}

	if _, err := Render(RenderOptions{ChartDir: chartDir, Namespace: releaseNS, Values: map[string]any{"reports": map[string]any{"enabled": true, "interval": "often"}}}); err == nil {
		t.Error("reports.interval \"often\" was accepted")
	}
}

func TestChartExtraEnvReachesTheWebhookContainer(t *testing.T) {
	envOf := func(values map[string]any) []corev1.EnvVar {
		d := convert[appsv1.Deployment](t, mustFind(t, render(t, values), "Deployment", ""))
		return d.Spec.Template.Spec.Containers[0].Env
	}
	base := envOf(nil)
	got := envOf(map[string]any{"extraEnv": []any{
		map[string]any{"name": "GOGC", "value": "200"},
		map[string]any{"name": "NODE", "valueFrom": map[string]any{"fieldRef": map[string]any{"fieldPath": "spec.nodeName"}}},
	}})
	want := append(append([]corev1.EnvVar(nil), base...),
		corev1.EnvVar{Name: "GOGC", Value: "200"},
		corev1.EnvVar{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("env\n got %+v\nwant %+v", got, want)
	}
	_, err := Render(RenderOptions{ChartDir: chartDir, Namespace: releaseNS, Values: map[string]any{"extraEnv": []any{map[string]any{"value": "200"}}}})
	if err == nil || !strings.Contains(err.Error(), "name") {
		t.Errorf("an entry without a name: error %v, want one naming the missing name", err)
	}
}
