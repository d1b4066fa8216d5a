package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/certs"
)

func TestOptionsValidation(t *testing.T) {
	base := Options{}
	tests := []struct {
		name    string
		mutate  func(*Options)
		wantErr string
	}{
		{"defaults are filled in", func(*Options) {}, ""},
		{"an unknown identity mode is rejected", func(o *Options) { o.Identity = "vault" }, `--identity "vault": must be cert-manager or generated`},
		{"an issuer ref without a name is rejected", func(o *Options) { o.IssuerRef = "ClusterIssuer/" }, `--issuer-ref "ClusterIssuer/": must be ClusterIssuer/NAME or Issuer/NAME (an Issuer in namespace linkerd)`},
		{"an issuer ref of another kind is rejected", func(o *Options) { o.IssuerRef = "Secret/ca" }, `--issuer-ref "Secret/ca": must be ClusterIssuer/NAME or Issuer/NAME (an Issuer in namespace linkerd)`},
		{"an unknown policy mode is rejected", func(o *Options) { o.PolicyMode = "strict" }, `--policy-mode "strict": must be audit, enforce or opt-in`},
		{"a negative timeout is rejected", func(o *Options) { o.Timeout = -time.Second }, "--timeout -1s: must be positive"},
		{"a chart directory that does not exist is named as such", func(o *Options) { o.ChartDir = "/nonexistent/charts" }, "--chart-dir /nonexistent/charts: no such directory"},
		{"a Kubernetes version is for dry runs only", func(o *Options) { o.KubeVersion = "v1.31.0" }, "--kube-version v1.31.0: only with --dry-run (an install renders for the cluster's own version)"},
		{"a Kubernetes version that is none is rejected", func(o *Options) { o.KubeVersion = "latest"; o.DryRun = true }, `--kube-version "latest": not a Kubernetes version (like v1.31.0)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			tt.mutate(&o)
			got, ref, err := o.withDefaults()
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Identity != IdentityGenerated || got.PolicyMode != PolicyModeAudit || got.RepoURL != DefaultRepoURL || got.Timeout != 5*time.Minute {
				t.Errorf("defaults not applied: %+v", got)
			}
			if ref.String() != DefaultIssuerRef || ref.explicit {
				t.Errorf("issuer ref = %v (explicit %v), want the implicit default %s", ref, ref.explicit, DefaultIssuerRef)
			}
		})
	}
}

func TestPolicyModeMapsOntoTheChartsDefaultMode(t *testing.T) {
	for mode, want := range map[string]string{"audit": "audit", "enforce": "enforce", "opt-in": "off"} {
		got, err := webhookDefaultMode(mode)
		if err != nil || got != want {
			t.Errorf("webhookDefaultMode(%q) = %q, %v; want %q", mode, got, err, want)
		}
	}
}

func TestErrorsAreOneLine(t *testing.T) {
	err := &Error{Problem: "render", Err: errors.New("line one\n  line two"), Fix: "do this"}
	if got, want := err.Error(), "render: line one line two; do this"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestRepoSource(t *testing.T) {
	srv := serveChartRepo(t)
	t.Run("charts load from a local Helm repository", func(t *testing.T) {
		src, err := newRepoSource(srv.URL, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		for _, name := range []string{CRDsRelease, ControlPlaneRelease, VizRelease} {
			ch, err := src.Load(name)
			if err != nil {
				t.Fatalf("Load(%s): %v", name, err)
			}
			if ch.Name() != name || ch.Metadata.Version != "2026.11.1" {
				t.Errorf("Load(%s) = %s %s", name, ch.Name(), ch.Metadata.Version)
			}
		}
	})
	t.Run("a pinned version missing from the index is not reachable", func(t *testing.T) {
		src, _ := newRepoSource(srv.URL, "1.2.3", nil)
		defer src.Close()
		_, err := src.Load(ControlPlaneRelease)
		assertOneLineError(t, err, "chart linkerd-control-plane not reachable in repository", "the index has no version 1.2.3", "use --chart-dir")
	})
	t.Run("a repository that does not answer is not reachable", func(t *testing.T) {
		closed := httptest.NewServer(nil)
		closed.Close()
		src, _ := newRepoSource(closed.URL, "", nil)
		defer src.Close()
		_, err := src.Load(CRDsRelease)
		assertOneLineError(t, err, "chart linkerd-crds not reachable in repository "+closed.URL, "check --repo and --version")
	})
}

func TestDirSourceNamesTheMissingChart(t *testing.T) {
	_, err := dirSource{dir: t.TempDir()}.Load(ControlPlaneRelease)
	assertOneLineError(t, err, "chart linkerd-control-plane not found in --chart-dir", "helm pull --untar")
}

func TestControlPlaneTestChartBehavesLikeLinkerds(t *testing.T) {
	ch, err := loader.Load(filepath.Join(testChartDir, ControlPlaneRelease))
	if err != nil {
		t.Fatal(err)
	}
	anchor, err := certs.GenerateTrustAnchor("", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		values  map[string]any
		wantErr string
	}{
		{"without a trust anchor the chart fails", map[string]any{}, "identityTrustAnchorsPEM"},
		{"the default issuer scheme needs the issuer in values", map[string]any{"identityTrustAnchorsPEM": string(anchor.CertPEM)}, "identity.issuer.tls.crtPEM"},
		{"an unknown issuer scheme fails", map[string]any{"identityTrustAnchorsPEM": string(anchor.CertPEM), "identity": map[string]any{"issuer": map[string]any{"scheme": "x"}}}, "must be linkerd.io/tls or kubernetes.io/tls"},
		{"bootstrap's values render", mustValues(t, &runner{controlPlane: ch, anchorPEM: anchor.CertPEM, userValues: map[string]any{}}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := renderRelease(helmRelease{name: ControlPlaneRelease, namespace: ControlPlaneNamespace, chart: ch, values: tt.values}, "v1.31.0", nil, &out)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cm := find(parseStream(t, out.Bytes()), "ConfigMap", "linkerd-identity-trust-roots")
			if cm == nil {
				t.Fatalf("no trust roots ConfigMap in\n%s", out.String())
			}
			got, _, _ := unstructured.NestedString(cm.Object, "data", "ca-bundle.crt")
			if strings.TrimSpace(got) != strings.TrimSpace(string(anchor.CertPEM)) {
				t.Errorf("trust roots = %q, want the anchor", got)
			}
		})
	}
}

func mustValues(t *testing.T, r *runner) map[string]any {
	t.Helper()
	v, err := r.controlPlaneValues()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestControlPlaneValues(t *testing.T) {
	ch, err := loader.Load(filepath.Join(testChartDir, ControlPlaneRelease))
	if err != nil {
		t.Fatal(err)
	}
	anchor, _ := certs.GenerateTrustAnchor("current", time.Now(), 0)
	next, _ := certs.GenerateTrustAnchor("next", time.Now(), 0)
	bundle := string(next.CertPEM) + string(anchor.CertPEM)
	tests := []struct {
		name        string
		user        map[string]any
		wantAnchors string
		wantErr     string
	}{
		{"bootstrap's anchor is set when the values have none", map[string]any{"controllerReplicas": 3}, string(anchor.CertPEM), ""},
		{"a bundle that contains the anchor is kept, for a rotation", map[string]any{"identityTrustAnchorsPEM": bundle}, bundle, ""},
		{"a bundle without the anchor is refused", map[string]any{"identityTrustAnchorsPEM": string(next.CertPEM)}, "", "does not contain the trust anchor of Secret linkerd/linkerd-identity-issuer"},
		{"the values cannot change the issuer scheme", map[string]any{"identity": map[string]any{"issuer": map[string]any{"scheme": "linkerd.io/tls"}}}, string(anchor.CertPEM), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, had := tt.user["identityTrustAnchorsPEM"]
			vals, err := (&runner{controlPlane: ch, anchorPEM: anchor.CertPEM, userValues: tt.user}).controlPlaneValues()
			if tt.wantErr != "" {
				assertOneLineError(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if vals["identityTrustAnchorsPEM"] != tt.wantAnchors {
				t.Errorf("identityTrustAnchorsPEM = %q, want %q", vals["identityTrustAnchorsPEM"], tt.wantAnchors)
			}
			if s, _, _ := unstructured.NestedString(vals, "identity", "issuer", "scheme"); s != "kubernetes.io/tls" {
				t.Errorf("identity.issuer.scheme = %q", s)
			}
			if _, has := tt.user["identityTrustAnchorsPEM"]; has != had {
				t.Error("controlPlaneValues modified the user's values")
			}
		})
	}
}

func TestChartDigest(t *testing.T) {
	a, err := loader.Load(filepath.Join(testChartDir, ControlPlaneRelease))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := loader.Load(filepath.Join(testChartDir, ControlPlaneRelease))
	if chartDigest(a) != chartDigest(b) {
		t.Error("the same chart loaded twice has different digests")
	}
	b.Templates[0].Data = append(b.Templates[0].Data, '\n')
	if chartDigest(a) == chartDigest(b) {
		t.Error("a changed template does not change the digest")
	}
}

func TestValuesCompareAcrossNumberTypes(t *testing.T) {
	stored := map[string]any{"controllerReplicas": float64(2), "identity": map[string]any{"issuer": map[string]any{"scheme": "kubernetes.io/tls"}}}
	fresh := map[string]any{"identity": map[string]any{"issuer": map[string]any{"scheme": "kubernetes.io/tls"}}, "controllerReplicas": int64(2)}
	if !sameValues(stored, fresh) {
		t.Error("values that differ only in number type and key order compare unequal")
	}
	fresh["controllerReplicas"] = 3
	if sameValues(stored, fresh) {
		t.Error("different values compare equal")
	}
}

// A dry run without a reachable cluster renders every object offline, as
// valid YAML with the progress as comments, and the anchor given to the
// chart is the issuer Secret's ca.crt.
func TestDryRunRendersOfflineWhenNoClusterIsReachable(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), Options{
		RESTConfig:    &rest.Config{Host: "https://127.0.0.1:1"},
		ChartDir:      testChartDir,
		Viz:           true,
		PrometheusURL: "http://prometheus.monitoring:9090",
		DryRun:        true,
		KubeVersion:   "v1.31.0",
		BinaryVersion: "v0.3.0",
	}, &out)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	lines := progressLines(&out)
	if len(lines) != 7 || !strings.Contains(lines[0], "no cluster reachable, rendering offline for Kubernetes v1.31.0, Linkerd edge-26.11.1 to install") {
		t.Fatalf("progress lines = %q", lines)
	}
	line := regexp.MustCompile(`^\[\d/7\] [a-z ]+: .+ \(\d+\.\ds\)$`)
	for _, l := range lines {
		if !line.MatchString(l) {
			t.Errorf("progress line %q does not look like [3/7] step: outcome (4.1s)", l)
		}
	}
	objs := parseStream(t, out.Bytes())
	for _, want := range [][2]string{
		{"Namespace", ControlPlaneNamespace}, {"Namespace", VizNamespace}, {"Namespace", WebhookNamespace},
		{"Secret", IssuerSecret}, {"Secret", TrustAnchorSecret},
		{"CustomResourceDefinition", "servers.policy.linkerd.io"},
		{"Deployment", "linkerd-identity"}, {"Deployment", "metrics-api"}, {"PodMonitor", "linkerd-proxy"},
	} {
		if find(objs, want[0], want[1]) == nil {
			t.Errorf("dry run output has no %s %s", want[0], want[1])
		}
	}
	if find(objs, "Deployment", "prometheus") != nil {
		t.Error("viz's own Prometheus is rendered although --prometheus-url was given")
	}
	assertNoPrivateKey(t, out.String(), objs)
	// The charts' generated webhook TLS Secrets are shown, without their keys.
	for _, name := range []string{"linkerd-proxy-injector-k8s-tls", "linkerd-sp-validator-k8s-tls", "linkerd-policy-validator-k8s-tls", "tap-k8s-tls", "tap-injector-k8s-tls"} {
		s := find(objs, "Secret", name)
		if s == nil {
			t.Errorf("dry run output has no Secret %s", name)
			continue
		}
		if key, _, _ := unstructured.NestedString(s.Object, "stringData", "tls.key"); key != redactedNote {
			t.Errorf("Secret %s tls.key = %q, want the redaction note", name, key)
		}
		if crt, _, _ := unstructured.NestedString(s.Object, "data", "tls.crt"); crt == "" {
			t.Errorf("Secret %s lost its certificate", name)
		}
	}
	if !strings.Contains(out.String(), "# private key data redacted from the dry run: tls.key") {
		t.Error("dry run does not say it redacted the keys")
	}
	// The webhook comes from the chart built into the binary, as the binary's version and image.
	if !strings.Contains(out.String(), "# Helm release linkerd-inject-policy in namespace linkerd-inject-policy: chart linkerd-inject-policy 0.3.0") {
		t.Error("the embedded webhook chart is not installed as the binary's version")
	}
	if got := webhookImage(t, objs); got != DefaultImageRepository+":v0.3.0" {
		t.Errorf("webhook image = %q, want %s:v0.3.0", got, DefaultImageRepository)
	}
	issuer := find(objs, "Secret", IssuerSecret)
	caPEM, _, _ := unstructured.NestedString(issuer.Object, "stringData", "ca.crt")
	crtPEM, _, _ := unstructured.NestedString(issuer.Object, "stringData", "tls.crt")
	ca, crt := []byte(caPEM), []byte(crtPEM)
	if _, err := certs.VerifyIssuer(crt, ca, time.Now()); err != nil {
		t.Errorf("rendered issuer does not chain to its ca.crt: %v", err)
	}
	roots, _, _ := unstructured.NestedString(find(objs, "ConfigMap", "linkerd-identity-trust-roots").Object, "data", "ca-bundle.crt")
	if strings.TrimSpace(roots) != strings.TrimSpace(string(ca)) {
		t.Error("the chart got a different trust anchor than the issuer Secret's ca.crt")
	}
}

func assertOneLineError(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	var be *Error
	if !errors.As(err, &be) || be.Fix == "" {
		t.Errorf("error %q does not say what to do", msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not contain %q", msg, w)
		}
	}
}

// Keep the fixture README honest: every chart it names exists.
func TestTestChartsExist(t *testing.T) {
	for _, name := range []string{CRDsRelease, ControlPlaneRelease, VizRelease} {
		if _, err := os.Stat(filepath.Join(testChartDir, name, "Chart.yaml")); err != nil {
			t.Error(err)
		}
	}
}

func TestKubeconfigContextSelectsTheCluster(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "config")
	err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://127.0.0.1:6443"}
- name: b
  cluster: {server: "https://127.0.0.2:6443"}
users:
- name: admin
  user: {token: t}
contexts:
- name: a
  context: {cluster: a, user: admin}
- name: b
  context: {cluster: b, user: admin}
current-context: a
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	for ctxName, want := range map[string]string{"": "https://127.0.0.1:6443", "a": "https://127.0.0.1:6443", "b": "https://127.0.0.2:6443"} {
		cfg, err := loadRESTConfig(Options{Kubeconfig: kubeconfig, Context: ctxName})
		if err != nil {
			t.Fatalf("context %q: %v", ctxName, err)
		}
		if cfg.Host != want {
			t.Errorf("context %q: host %s, want %s", ctxName, cfg.Host, want)
		}
	}
	_, err = loadRESTConfig(Options{Kubeconfig: kubeconfig, Context: "c"})
	assertOneLineError(t, err, "no cluster configured", "context \"c\" does not exist", "--context")
}
