package bootstrap

// Tests against a real kube-apiserver + etcd started by e2e/cluster. There
// are no nodes, so no pod runs: the tests look at the objects and at the
// Helm release state. Skipped with -short.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	appsv1 "k8s.io/api/apps/v1"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/certs"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
)

// startCluster starts the e2e control plane and returns it with clients.
func startCluster(t *testing.T) (*cluster.Cluster, *clients) {
	t.Helper()
	c := cluster.StartForTest(t, cluster.Options{})
	cl, err := newClients(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	return c, cl
}

func kubectl(t *testing.T, c *cluster.Cluster, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, stderr, err := c.Kubectl(ctx, nil, args...); err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
}

// installCRDs applies CRD files and waits until the apiserver serves them.
func installCRDs(t *testing.T, c *cluster.Cluster, paths ...string) {
	t.Helper()
	for _, p := range paths {
		kubectl(t, c, "apply", "--server-side", "-f", p)
	}
	kubectl(t, c, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
}

// releaseState is the newest revision and status of a Helm release, or "absent".
func releaseState(t *testing.T, cfg *rest.Config, name, namespace string) string {
	t.Helper()
	ac, err := helmConfig(cfg, namespace)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := lastRelease(ac, name)
	if err != nil {
		t.Fatal(err)
	}
	if rel == nil {
		return "absent"
	}
	return fmt.Sprintf("revision %d %s", rel.Version, rel.Info.Status)
}

func releaseValues(t *testing.T, cfg *rest.Config, name, namespace string) map[string]any {
	t.Helper()
	ac, err := helmConfig(cfg, namespace)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := action.NewGetValues(ac).Run(name)
	if err != nil {
		t.Fatalf("values of release %s/%s: %v", namespace, name, err)
	}
	return vals
}

func helmReleaseSecrets(t *testing.T, cl *clients) int {
	t.Helper()
	list, err := cl.kube.CoreV1().Secrets(metav1.NamespaceAll).List(context.Background(), metav1.ListOptions{LabelSelector: "owner=helm"})
	if err != nil {
		t.Fatal(err)
	}
	return len(list.Items)
}

// assertIdentity checks the issuer Secret chains to the trust anchor the
// control-plane chart was given (in its values and in the rendered
// trust-roots ConfigMap), and returns that anchor.
func assertIdentity(t *testing.T, cl *clients) []byte {
	t.Helper()
	ctx := context.Background()
	s, err := cl.kube.CoreV1().Secrets(ControlPlaneNamespace).Get(ctx, IssuerSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("issuer Secret: %v", err)
	}
	if s.Type != corev1.SecretTypeTLS || len(s.Data["tls.key"]) == 0 || len(s.Data["ca.crt"]) == 0 {
		t.Fatalf("issuer Secret is %s with keys %v, want kubernetes.io/tls with tls.crt, tls.key, ca.crt", s.Type, keys(s.Data))
	}
	anchor, _ := releaseValues(t, cl.config, ControlPlaneRelease, ControlPlaneNamespace)["identityTrustAnchorsPEM"].(string)
	if _, err := certs.VerifyIssuer(s.Data["tls.crt"], []byte(anchor), time.Now()); err != nil {
		t.Errorf("issuer Secret does not chain to the trust anchor passed to the chart: %v", err)
	}
	issuer, err := certs.ParseCertificates(s.Data["tls.crt"])
	if err != nil || issuer[0].Subject.CommonName != certs.IdentityIssuerName {
		t.Errorf("issuer certificate = %v, %v; want CN %s", issuer, err, certs.IdentityIssuerName)
	}
	if scheme := nested(releaseValues(t, cl.config, ControlPlaneRelease, ControlPlaneNamespace), "identity", "issuer", "scheme"); scheme != "kubernetes.io/tls" {
		t.Errorf("identity.issuer.scheme = %q, want kubernetes.io/tls", scheme)
	}
	cm, err := cl.kube.CoreV1().ConfigMaps(ControlPlaneNamespace).Get(ctx, "linkerd-identity-trust-roots", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("trust roots ConfigMap of the chart: %v", err)
	}
	if strings.TrimSpace(cm.Data["ca-bundle.crt"]) != strings.TrimSpace(anchor) {
		t.Error("the chart rendered a different trust anchor than its values")
	}
	return []byte(anchor)
}

func nested(m map[string]any, path ...string) string {
	s, _, _ := unstructured.NestedString(m, path...)
	return s
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// resourceVersions records what a re-run must not change: namespaces,
// identity Secrets, the charts' generated TLS Secrets, Deployment
// generations, the hook Job and Helm's release Secrets.
func resourceVersions(t *testing.T, cl *clients) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for _, s := range [][2]string{
		{ControlPlaneNamespace, "linkerd-proxy-injector-k8s-tls"}, {ControlPlaneNamespace, "linkerd-sp-validator-k8s-tls"},
		{ControlPlaneNamespace, "linkerd-policy-validator-k8s-tls"}, {VizNamespace, "tap-k8s-tls"}, {VizNamespace, "tap-injector-k8s-tls"},
	} {
		sec, err := cl.kube.CoreV1().Secrets(s[0]).Get(ctx, s[1], metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the chart's TLS Secret %s/%s: %v", s[0], s[1], err)
		}
		out["TLS Secret "+s[1]] = sec.ResourceVersion
	}
	for _, ns := range []string{ControlPlaneNamespace, VizNamespace, WebhookNamespace} {
		deps, err := cl.kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range deps.Items {
			out["Deployment generation "+d.Namespace+"/"+d.Name] = fmt.Sprint(d.Generation)
		}
	}
	rels, err := cl.kube.CoreV1().Secrets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rels.Items {
		out["Helm release Secret "+r.Namespace+"/"+r.Name] = r.ResourceVersion
	}
	if job, err := cl.kube.BatchV1().Jobs(VizNamespace).Get(ctx, "namespace-metadata", metav1.GetOptions{}); err == nil {
		out["hook Job"] = string(job.UID)
	}
	for _, name := range []string{ControlPlaneNamespace, VizNamespace, WebhookNamespace} {
		ns, err := cl.kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out["Namespace "+name] = ns.ResourceVersion
	}
	for _, name := range []string{IssuerSecret, TrustAnchorSecret} {
		s, err := cl.kube.CoreV1().Secrets(ControlPlaneNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out["Secret "+name] = s.ResourceVersion
	}
	return out
}

// The "done when": on the e2e apiserver, bootstrap with the
// generated identity and --chart-dir creates the namespace, the issuer
// Secret chaining to the anchor given to the chart, the releases and this
// webhook; a second run changes nothing; --dry-run prints the full manifest
// and creates nothing. Then upgrades, recovery, waiting and uninstall.
func TestBootstrapGeneratedIdentityOnARealAPIServer(t *testing.T) {
	c, cl := startCluster(t)
	ctx := context.Background()
	installCRDs(t, c, filepath.Join("testdata", "crds", "podmonitors.yaml"))
	if err := c.CreateNamespace(ctx, "shop", map[string]string{"team": "shop"}); err != nil {
		t.Fatal(err)
	}
	opts := func(mod func(*Options)) Options {
		// The webhook's chart is the one built into the binary.
		o := Options{
			RESTConfig:    c.RESTConfig,
			Identity:      IdentityGenerated,
			ChartDir:      testChartDir,
			Viz:           true,
			PrometheusURL: "http://kube-prometheus-stack-prometheus.k3s-monitoring.svc.cluster.local:9090",
			GrafanaURL:    "kube-prometheus-stack-grafana.k3s-monitoring.svc.cluster.local:80",
			Wait:          false,
		}
		if mod != nil {
			mod(&o)
		}
		return o
	}

	t.Run("dry run prints the full manifest and creates nothing", func(t *testing.T) {
		out, err := runBootstrap(ctx, t, opts(func(o *Options) { o.DryRun = true }))
		if err != nil {
			t.Fatal(err)
		}
		objs := parseStream(t, out.Bytes())
		for _, want := range [][2]string{
			{"Namespace", ControlPlaneNamespace}, {"Secret", IssuerSecret}, {"CustomResourceDefinition", "serviceprofiles.linkerd.io"},
			{"ConfigMap", "linkerd-config"}, {"Deployment", "linkerd-destination"}, {"Deployment", "web"}, {"PodMonitor", "linkerd-controller"},
			{"MutatingWebhookConfiguration", "linkerd-inject-policy"},
		} {
			if find(objs, want[0], want[1]) == nil {
				t.Errorf("dry run output has no %s %s", want[0], want[1])
			}
		}
		if lines := progressLines(out); len(lines) != 7 || !strings.Contains(lines[0], "Kubernetes v1.") {
			t.Errorf("progress = %q, want 7 lines, the first with the server version", lines)
		}
		assertNoPrivateKey(t, out.String(), objs)
		for _, ns := range []string{ControlPlaneNamespace, VizNamespace, WebhookNamespace} {
			if _, err := cl.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("dry run created namespace %s (err %v)", ns, err)
			}
		}
		if n := helmReleaseSecrets(t, cl); n != 0 {
			t.Errorf("dry run stored %d Helm releases", n)
		}
		if _, err := cl.dynamic.Resource(podMonitorGVR).Namespace(VizNamespace).List(ctx, metav1.ListOptions{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("first run installs the namespace, identity, charts and the webhook", func(t *testing.T) {
		out, err := runBootstrap(ctx, t, opts(nil))
		if err != nil {
			t.Fatal(err)
		}
		lines := progressLines(out)
		if len(lines) != 7 {
			t.Fatalf("progress = %q", lines)
		}
		for i, want := range []string{
			"[1/7] preflight: Kubernetes v1.", "[2/7] namespace: Namespace linkerd created",
			"[3/7] identity issuer: Secret linkerd/linkerd-identity-issuer created (trust anchor generated",
			"[4/7] linkerd: linkerd-crds 2026.11.1 installed (revision 1), linkerd-control-plane 2026.11.1 installed (revision 1), Linkerd edge-26.11.1 (",
			"[5/7] viz: Namespace linkerd-viz created, linkerd-viz 2026.11.1 installed (revision 1), hooks started without waiting: ServiceAccount linkerd-viz/namespace-metadata, Role linkerd-viz/namespace-metadata, RoleBinding linkerd-viz/namespace-metadata, Job linkerd-viz/namespace-metadata, PodMonitors (admin ports) in linkerd-viz 3 created (",
			"[6/7] webhook: Namespace linkerd-inject-policy created, linkerd-inject-policy ", "[7/7] wait: skipped (--wait=false)",
		} {
			if !strings.HasPrefix(lines[i], want) {
				t.Errorf("line %d = %q, want it to start with %q", i+1, lines[i], want)
			}
		}
		ns, err := cl.kube.CoreV1().Namespaces().Get(ctx, ControlPlaneNamespace, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range controlPlaneNamespaceLabels {
			if ns.Labels[k] != v {
				t.Errorf("namespace label %s = %q, want %q", k, ns.Labels[k], v)
			}
		}
		if ns.Annotations["linkerd.io/inject"] != "disabled" {
			t.Errorf("namespace annotation linkerd.io/inject = %q, want disabled", ns.Annotations["linkerd.io/inject"])
		}
		if viz, err := cl.kube.CoreV1().Namespaces().Get(ctx, VizNamespace, metav1.GetOptions{}); err != nil || viz.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
			t.Errorf("namespace %s is not privileged for Pod Security Admission (labels %v, err %v)", VizNamespace, viz.Labels, err)
		}
		// --wait=false: the hook Job was created and not waited for (it never completes here).
		if job, err := cl.kube.BatchV1().Jobs(VizNamespace).Get(ctx, "namespace-metadata", metav1.GetOptions{}); err != nil || job.Status.Succeeded != 0 {
			t.Errorf("hook Job %s/namespace-metadata: %v (succeeded %d), want created and not complete", VizNamespace, err, job.Status.Succeeded)
		}
		pm, err := cl.dynamic.Resource(podMonitorGVR).Namespace(VizNamespace).Get(ctx, "linkerd-controller", metav1.GetOptions{})
		if err != nil || !strings.Contains(fmt.Sprint(pm.Object["spec"]), "regex:.*-admin$") {
			t.Errorf("PodMonitor linkerd-controller does not keep the *-admin ports: %v (err %v)", pm, err)
		}
		assertIdentity(t, cl)
		for _, r := range [][2]string{{CRDsRelease, ControlPlaneNamespace}, {ControlPlaneRelease, ControlPlaneNamespace}, {VizRelease, VizNamespace}, {WebhookRelease, WebhookNamespace}} {
			if got := releaseState(t, cl.config, r[0], r[1]); got != "revision 1 deployed" {
				t.Errorf("release %s/%s: %s, want revision 1 deployed", r[1], r[0], got)
			}
		}
		if got := nested(releaseValues(t, cl.config, WebhookRelease, WebhookNamespace), "policy", "defaultMode"); got != "audit" {
			t.Errorf("webhook policy.defaultMode = %q, want audit (the first install changes nothing)", got)
		}
		if _, err := cl.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "linkerd-inject-policy", metav1.GetOptions{}); err != nil {
			t.Errorf("the webhook's MutatingWebhookConfiguration: %v", err)
		}
		deps, err := cl.kube.AppsV1().Deployments(WebhookNamespace).List(ctx, metav1.ListOptions{})
		if err != nil || len(deps.Items) == 0 {
			t.Errorf("no webhook Deployment in %s (err %v)", WebhookNamespace, err)
		}
		vizVals := releaseValues(t, cl.config, VizRelease, VizNamespace)
		if vizVals["prometheusUrl"] == "" || nested(vizVals, "grafana", "url") == "" {
			t.Errorf("viz values = %v, want prometheusUrl and grafana.url", vizVals)
		}
		if enabled, _, _ := unstructured.NestedBool(vizVals, "prometheus", "enabled"); enabled {
			t.Error("viz prometheus.enabled is true, want false with an external Prometheus")
		}
		if _, err := cl.kube.AppsV1().Deployments(VizNamespace).Get(ctx, "prometheus", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("viz installed its own Prometheus (err %v)", err)
		}
		pms, err := cl.dynamic.Resource(podMonitorGVR).Namespace(VizNamespace).List(ctx, metav1.ListOptions{})
		if err != nil || len(pms.Items) != 3 {
			t.Errorf("PodMonitors in %s: %d (err %v), want 3", VizNamespace, len(pms.Items), err)
		}
	})

	t.Run("a second run changes nothing", func(t *testing.T) {
		before := resourceVersions(t, cl)
		out, err := runBootstrap(ctx, t, opts(nil))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range progressLines(out)[1:6] {
			if strings.Contains(l, "created") || strings.Contains(l, "upgraded") || strings.Contains(l, "installed") || strings.Contains(l, "updated") {
				t.Errorf("re-run changed something: %q", l)
			}
		}
		for _, want := range []string{
			"linkerd-crds 2026.11.1 unchanged (revision 1), linkerd-control-plane 2026.11.1 unchanged (revision 1)",
			"linkerd-viz 2026.11.1 unchanged (revision 1), PodMonitors (admin ports) in linkerd-viz 3 unchanged",
			"linkerd-inject-policy 0.1.0 unchanged (revision 1)",
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("re-run does not report %q", want)
			}
		}
		if after := resourceVersions(t, cl); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("objects changed: before %v, after %v", before, after)
		}
		for _, r := range [][2]string{{CRDsRelease, ControlPlaneNamespace}, {ControlPlaneRelease, ControlPlaneNamespace}, {VizRelease, VizNamespace}, {WebhookRelease, WebhookNamespace}} {
			if got := releaseState(t, cl.config, r[0], r[1]); got != "revision 1 deployed" {
				t.Errorf("release %s/%s: %s after a re-run, want revision 1 deployed", r[1], r[0], got)
			}
		}
	})

	t.Run("the same charts from a Helm repository change nothing", func(t *testing.T) {
		srv := serveChartRepo(t)
		out, err := runBootstrap(ctx, t, opts(func(o *Options) { o.ChartDir = ""; o.RepoURL = srv.URL; o.Version = "2026.11.1" }))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "linkerd-crds 2026.11.1 unchanged (revision 1), linkerd-control-plane 2026.11.1 unchanged (revision 1)") {
			t.Error("charts from the repository are not recognised as the deployed ones")
		}
	})

	t.Run("a hook Job that never completes fails a waiting install with its name, and a re-run replaces it", func(t *testing.T) {
		if _, err := uninstallRelease(cl.config, VizRelease, VizNamespace, time.Minute); err != nil {
			t.Fatal(err)
		}
		// Helm leaves hook objects behind; uninstall removes those started without waiting.
		if _, err := cl.kube.BatchV1().Jobs(VizNamespace).Get(ctx, "namespace-metadata", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("hook Job of the uninstalled release still there (err %v)", err)
		}
		_, err := runBootstrap(ctx, t, opts(func(o *Options) { o.Wait = true; o.Timeout = 3 * time.Second }))
		assertExactError(t, err, "post-install hook Job linkerd-viz/namespace-metadata of release linkerd-viz/linkerd-viz did not complete within 3s; check its pods (kubectl -n linkerd-viz describe job namespace-metadata), raise --timeout, or pass --wait=false to start hooks without waiting; a re-run replaces the hook")
		if got := releaseState(t, cl.config, VizRelease, VizNamespace); got != "revision 1 failed" {
			t.Errorf("viz after the hook timed out: %s, want revision 1 failed", got)
		}
		failed, err := cl.kube.BatchV1().Jobs(VizNamespace).Get(ctx, "namespace-metadata", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}

		out, err := runBootstrap(ctx, t, opts(nil))
		if err != nil {
			t.Fatal(err)
		}
		// A release whose install hooks never completed is installed again, so they run again.
		if !strings.Contains(out.String(), "linkerd-viz 2026.11.1 installed (revision 2), hooks started without waiting: ") {
			t.Error("the re-run did not install viz again with its hooks")
		}
		if got := releaseState(t, cl.config, VizRelease, VizNamespace); got != "revision 2 deployed" {
			t.Errorf("viz after the re-run: %s, want revision 2 deployed", got)
		}
		jobs, err := cl.kube.BatchV1().Jobs(VizNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs.Items) != 1 || jobs.Items[0].UID == failed.UID {
			t.Errorf("Jobs in %s after the re-run: %d, the failed one kept: %v; want one new Job", VizNamespace, len(jobs.Items), len(jobs.Items) > 0 && jobs.Items[0].UID == failed.UID)
		}
	})

	t.Run("a changed value upgrades only the release it belongs to", func(t *testing.T) {
		out, err := runBootstrap(ctx, t, opts(func(o *Options) { o.SetValues = []string{"controllerReplicas=2"} }))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "linkerd-crds 2026.11.1 unchanged (revision 1), linkerd-control-plane 2026.11.1 upgraded (revision 2)") {
			t.Error("the control plane was not upgraded alone")
		}
		d, err := cl.kube.AppsV1().Deployments(ControlPlaneNamespace).Get(ctx, "linkerd-destination", metav1.GetOptions{})
		if err != nil || d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
			t.Errorf("linkerd-destination replicas after --set controllerReplicas=2: %v (err %v)", d.Spec.Replicas, err)
		}
		assertIdentity(t, cl)
	})

	t.Run("a run interrupted during an upgrade is recovered by the next run", func(t *testing.T) {
		ac, err := helmConfig(cl.config, ControlPlaneNamespace)
		if err != nil {
			t.Fatal(err)
		}
		last, err := lastRelease(ac, ControlPlaneRelease)
		if err != nil {
			t.Fatal(err)
		}
		// What a killed `helm upgrade` leaves behind.
		last.SetStatus(release.StatusPendingUpgrade, "killed")
		if err := ac.Releases.Update(last); err != nil {
			t.Fatal(err)
		}
		out, err := runBootstrap(ctx, t, opts(nil))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "linkerd-control-plane 2026.11.1 upgraded (revision 3)") {
			t.Error("the interrupted release was not upgraded")
		}
		if got := releaseState(t, cl.config, ControlPlaneRelease, ControlPlaneNamespace); got != "revision 3 deployed" {
			t.Errorf("control plane: %s, want revision 3 deployed", got)
		}
	})

	t.Run("waiting on a cluster without nodes times out with a clear message", func(t *testing.T) {
		out, err := runBootstrap(ctx, t, opts(func(o *Options) { o.Wait = true; o.Timeout = 2 * time.Second }))
		assertOneLineError(t, err, "timed out after 2s waiting for Deployment linkerd/linkerd-destination (0/1 available)", "Service linkerd-inject-policy/", "--wait=false")
		if lines := progressLines(out); len(lines) != 7 || !strings.HasPrefix(lines[6], "[7/7] wait: failed") {
			t.Errorf("progress = %q, want the wait step to fail", lines)
		}
	})

	t.Run("a rotation bundle from the values is kept, one without the current anchor refused", func(t *testing.T) {
		current := assertIdentity(t, cl)
		next, err := certs.GenerateTrustAnchor("next-root", time.Now(), 0)
		if err != nil {
			t.Fatal(err)
		}
		writeAnchors := func(pem string) string {
			f := filepath.Join(t.TempDir(), "anchors.yaml")
			b, _ := json.Marshal(map[string]string{"identityTrustAnchorsPEM": pem})
			if err := os.WriteFile(f, b, 0o600); err != nil {
				t.Fatal(err)
			}
			return f
		}
		bundle := string(current) + string(next.CertPEM)
		out, err := runBootstrap(ctx, t, opts(func(o *Options) { o.ValuesFiles = []string{writeAnchors(bundle)} }))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "linkerd-control-plane 2026.11.1 upgraded") {
			t.Error("the bundle did not upgrade the control plane")
		}
		if got := releaseValues(t, cl.config, ControlPlaneRelease, ControlPlaneNamespace)["identityTrustAnchorsPEM"]; got != bundle {
			t.Errorf("identityTrustAnchorsPEM = %q, want the old+new bundle", got)
		}
		assertIdentity(t, cl)

		_, err = runBootstrap(ctx, t, opts(func(o *Options) { o.ValuesFiles = []string{writeAnchors(string(next.CertPEM))} }))
		assertOneLineError(t, err, "identityTrustAnchorsPEM in your values does not contain the trust anchor")

		if _, err := runBootstrap(ctx, t, opts(nil)); err != nil {
			t.Fatal(err)
		}
		if got := releaseValues(t, cl.config, ControlPlaneRelease, ControlPlaneNamespace)["identityTrustAnchorsPEM"]; got != string(current) {
			t.Error("without the values file the control plane does not go back to the single anchor")
		}
	})

	t.Run("waiting succeeds once the Deployments are available and the webhook has an endpoint", func(t *testing.T) {
		// No nodes and no controller manager here: the test writes the
		// status the Deployment controller and the EndpointSlice controller
		// would write once pods run.
		for _, ns := range []string{ControlPlaneNamespace, VizNamespace, WebhookNamespace} {
			deps, err := cl.kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for i := range deps.Items {
				markAvailable(t, cl, &deps.Items[i])
			}
		}
		addReadyEndpoint(t, cl, WebhookNamespace)
		out, err := runBootstrap(ctx, t, opts(func(o *Options) { o.Wait = true; o.Timeout = time.Minute }))
		if err != nil {
			t.Fatal(err)
		}
		if lines := progressLines(out); len(lines) != 7 || !strings.Contains(lines[6], "Deployments available, webhook answering") {
			t.Errorf("progress = %q", lines)
		}
	})

	t.Run("uninstall removes what bootstrap installed and leaves user namespaces alone", func(t *testing.T) {
		var out bytes.Buffer
		if err := Uninstall(ctx, Options{RESTConfig: c.RESTConfig}, &out); err != nil {
			t.Fatalf("Uninstall: %v\n%s", err, out.String())
		}
		t.Logf("uninstall output:\n%s", out.String())
		for _, r := range [][2]string{{CRDsRelease, ControlPlaneNamespace}, {ControlPlaneRelease, ControlPlaneNamespace}, {VizRelease, VizNamespace}, {WebhookRelease, WebhookNamespace}} {
			if got := releaseState(t, cl.config, r[0], r[1]); got != "absent" {
				t.Errorf("release %s/%s after uninstall: %s", r[1], r[0], got)
			}
		}
		if _, err := cl.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "linkerd-inject-policy", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("webhook configuration still there (err %v)", err)
		}
		for _, name := range []string{ControlPlaneNamespace, VizNamespace, WebhookNamespace} {
			ns, err := cl.kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
			if err == nil && ns.DeletionTimestamp == nil {
				t.Errorf("namespace %s not deleted", name)
			}
		}
		shop, err := cl.kube.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
		if err != nil || shop.DeletionTimestamp != nil {
			t.Errorf("user namespace shop touched by uninstall: %v, %v", shop.DeletionTimestamp, err)
		}
		out.Reset()
		if err := Uninstall(ctx, Options{RESTConfig: c.RESTConfig}, &out); err != nil {
			t.Fatalf("second Uninstall: %v\n%s", err, out.String())
		}
		if !strings.Contains(out.String(), "release linkerd/linkerd-control-plane not installed") {
			t.Errorf("second uninstall output:\n%s", out.String())
		}
	})
}

// Every error of the point 3 is one line that says what to do.
func TestBootstrapErrorsSayWhatToDo(t *testing.T) {
	c, cl := startCluster(t)
	ctx := context.Background()
	closed := func() string {
		srv := serveChartRepo(t)
		srv.Close()
		return srv.URL
	}()
	base := func(mod func(*Options)) Options {
		o := Options{RESTConfig: c.RESTConfig, ChartDir: testChartDir, WebhookChart: webhookChartDir(t)}
		mod(&o)
		return o
	}
	intruder := serviceAccountConfig(t, c, cl, "intruder")
	otherAnchor, err := certs.GenerateTrustAnchor("someone-elses-root", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		setup func(t *testing.T)
		opts  Options
		want  []string
	}{
		{
			name: "no cluster at the configured address",
			opts: base(func(o *Options) { o.RESTConfig = &rest.Config{Host: "https://127.0.0.1:1"} }),
			want: []string{"cannot reach the Kubernetes API at https://127.0.0.1:1", "check --kubeconfig and --context"},
		},
		{
			name: "no kubeconfig at all",
			opts: base(func(o *Options) { o.RESTConfig = nil; o.Kubeconfig = filepath.Join(t.TempDir(), "missing") }),
			want: []string{"no cluster configured", "check --kubeconfig"},
		},
		{
			name: "a user without permission",
			opts: base(func(o *Options) { o.RESTConfig = intruder }),
			want: []string{"no permission: system:serviceaccount:default:intruder cannot create namespaces", "needs cluster-admin"},
		},
		{
			name: "cert-manager identity on a cluster without cert-manager",
			opts: base(func(o *Options) { o.Identity = IdentityCertManager }),
			want: []string{"cert-manager CRDs not found", "install cert-manager first, or use --identity generated"},
		},
		{
			name: "a chart repository that cannot be reached",
			opts: base(func(o *Options) { o.ChartDir = ""; o.RepoURL = closed }),
			want: []string{"chart linkerd-crds not reachable in repository " + closed, "use --chart-dir"},
		},
		{
			name:  "an issuer Secret whose certificate does not chain to its ca.crt",
			setup: func(t *testing.T) { putIssuerSecret(t, cl, otherAnchor.CertPEM, false) },
			opts:  base(func(*Options) {}),
			want:  []string{"issuer certificate in Secret linkerd/linkerd-identity-issuer does not chain to the trust anchor", "delete Secret linkerd/linkerd-identity-issuer"},
		},
		{
			name:  "an issuer Secret not signed by bootstrap's trust anchor",
			setup: func(t *testing.T) { putIssuerSecret(t, cl, otherAnchor.CertPEM, true) },
			opts:  base(func(*Options) {}),
			want:  []string{"does not chain to the trust anchor", "to have bootstrap issue a new issuer"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup(t)
			}
			var out bytes.Buffer
			err := Run(ctx, tt.opts, &out)
			assertOneLineError(t, err, tt.want...)
			if n := helmReleaseSecrets(t, cl); n != 0 {
				t.Errorf("a failed bootstrap stored %d Helm releases", n)
			}
			if tt.setup == nil {
				// Preflight failures stop before anything changes.
				if _, err := cl.kube.CoreV1().Namespaces().Get(ctx, ControlPlaneNamespace, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
					t.Errorf("namespace %s exists after a failed preflight (err %v)", ControlPlaneNamespace, err)
				}
			}
		})
	}
}

// putIssuerSecret stores an issuer signed by a fresh anchor whose ca.crt
// is caPEM (another anchor), and with ours, bootstrap's anchor Secret too.
func putIssuerSecret(t *testing.T, cl *clients, caPEM []byte, withAnchorSecret bool) {
	t.Helper()
	ctx := context.Background()
	if _, err := ensureNamespace(ctx, cl, ControlPlaneNamespace, controlPlaneNamespaceLabels, nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{IssuerSecret, TrustAnchorSecret} {
		_ = cl.kube.CoreV1().Secrets(ControlPlaneNamespace).Delete(ctx, name, metav1.DeleteOptions{})
	}
	signer, err := certs.GenerateTrustAnchor("", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := certs.GenerateIssuer(signer, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if withAnchorSecret {
		anchor, err := certs.GenerateTrustAnchor("", time.Now(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.kube.CoreV1().Secrets(ControlPlaneNamespace).Create(ctx, tlsSecret(TrustAnchorSecret, anchor.CertPEM, anchor.KeyPEM, nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.kube.CoreV1().Secrets(ControlPlaneNamespace).Create(ctx, tlsSecret(IssuerSecret, issuer.CertPEM, issuer.KeyPEM, caPEM), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// serviceAccountConfig is a rest.Config for a ServiceAccount without any
// RBAC binding, from a token the apiserver issues.
func serviceAccountConfig(t *testing.T, c *cluster.Cluster, cl *clients, name string) *rest.Config {
	t.Helper()
	ctx := context.Background()
	if _, err := cl.kube.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, err := cl.kube.CoreV1().ServiceAccounts("default").CreateToken(ctx, name, &authnv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for ServiceAccount %s: %v", name, err)
	}
	return &rest.Config{
		Host:            c.RESTConfig.Host,
		BearerToken:     tok.Status.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.RESTConfig.CAData},
	}
}

// certManagerCRDs finds cert-manager's CRDs in its pinned Go module (as
// envtest users load them), downloading it through the module proxy.
func certManagerCRDs(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", "github.com/cert-manager/cert-manager@v1.21.2")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download cert-manager: %v\n%s", err, stderr.String())
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download cert-manager: no module directory in %s (%v)", out, err)
	}
	dir := filepath.Join(mod.Dir, "deploy", "crds")
	if _, err := os.Stat(filepath.Join(dir, "cert-manager.io_certificates.yaml")); err != nil {
		t.Fatalf("cert-manager CRDs: %v", err)
	}
	return dir
}

// The cert-manager path with cert-manager's real CRDs; fakeCertManagerIssuer
// plays its controller.
func TestBootstrapCertManagerIdentityOnARealAPIServer(t *testing.T) {
	c, cl := startCluster(t)
	ctx := context.Background()
	crdDir := certManagerCRDs(t)
	var files []string
	for _, f := range []string{"cert-manager.io_certificates.yaml", "cert-manager.io_certificaterequests.yaml", "cert-manager.io_issuers.yaml", "cert-manager.io_clusterissuers.yaml"} {
		files = append(files, filepath.Join(crdDir, f))
	}
	installCRDs(t, c, files...)
	fakeCertManagerIssuer(t, c.RESTConfig)

	opts := func(mod func(*Options)) Options {
		o := Options{RESTConfig: c.RESTConfig, Identity: IdentityCertManager, ChartDir: testChartDir, WebhookChart: webhookChartDir(t), Timeout: time.Minute}
		if mod != nil {
			mod(&o)
		}
		return o
	}

	t.Run("dry run renders the Certificate, and the webhook's certificate through cert-manager, creating nothing", func(t *testing.T) {
		out, err := runBootstrap(ctx, t, opts(func(o *Options) { o.DryRun = true }))
		if err != nil {
			t.Fatal(err)
		}
		objs := parseStream(t, out.Bytes())
		if cert := find(objs, "Certificate", IssuerCertificate); cert == nil || cert.GetNamespace() != ControlPlaneNamespace {
			t.Error("dry run output has no identity issuer Certificate")
		}
		// No ca-issuer yet: the chain bootstrap would build is shown too.
		if find(objs, "Issuer", trustAnchorCAIssuer) == nil {
			t.Error("dry run output has no trust-anchor chain")
		}
		// The webhook chart picks cert-manager when the cluster serves its
		// API: the dry run must see the cluster's API versions to agree.
		webhookCert := false
		for _, o := range objs {
			webhookCert = webhookCert || (o.GetKind() == "Certificate" && o.GetNamespace() == WebhookNamespace)
		}
		if !webhookCert {
			t.Error("dry run rendered the webhook chart without cert-manager although the cluster has it")
		}
		if _, err := cl.kube.CoreV1().Namespaces().Get(ctx, ControlPlaneNamespace, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("dry run created namespace %s (err %v)", ControlPlaneNamespace, err)
		}
	})

	t.Run("an explicit issuer that does not exist is an error", func(t *testing.T) {
		_, err := runBootstrap(ctx, t, opts(func(o *Options) { o.IssuerRef = "ClusterIssuer/ca-issuer" }))
		assertOneLineError(t, err, "cert-manager issuer ClusterIssuer/ca-issuer not found cluster-wide", "pass --issuer-ref to an issuer that exists")
		if _, err := cl.kube.CoreV1().Namespaces().Get(ctx, ControlPlaneNamespace, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("namespace %s created although the issuer check failed (err %v)", ControlPlaneNamespace, err)
		}
	})

	t.Run("without a CA ClusterIssuer, bootstrap builds a trust anchor through cert-manager", func(t *testing.T) {
		out, err := runBootstrap(ctx, t, opts(nil))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "[3/7] identity issuer: Certificate linkerd/linkerd-identity-issuer ready, signed by Issuer/linkerd-trust-anchor, trust anchor from Certificate linkerd/linkerd-trust-anchor") {
			t.Error("progress does not report the cert-manager trust-anchor chain")
		}
		anchorSecret, err := cl.kube.CoreV1().Secrets(ControlPlaneNamespace).Get(ctx, TrustAnchorSecret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		anchor := assertIdentity(t, cl)
		if strings.TrimSpace(string(anchor)) != strings.TrimSpace(string(anchorSecret.Data["tls.crt"])) {
			t.Error("the chart's trust anchor is not the cert-manager-made root")
		}
	})

	// The usual setup: a CA ClusterIssuer whose root becomes the trust anchor.
	testCA, err := certs.GenerateTrustAnchor("picluster-ca", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateNamespace(ctx, clusterResourceNamespace, nil); err != nil {
		t.Fatal(err)
	}
	caSecret := tlsSecret("root-secret", testCA.CertPEM, testCA.KeyPEM, nil)
	caSecret.Namespace = clusterResourceNamespace
	if _, err := cl.kube.CoreV1().Secrets(clusterResourceNamespace).Create(ctx, caSecret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.dynamic.Resource(clusterIssuerGVR).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": map[string]any{"name": "ca-issuer"},
		"spec": map[string]any{"ca": map[string]any{"secretName": "root-secret"}},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("with a CA ClusterIssuer the Certificate is Linkerd's documented one and its CA joins the trust bundle", func(t *testing.T) {
		previous := assertIdentity(t, cl)
		out, err := runBootstrap(ctx, t, opts(nil))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "[3/7] identity issuer: Certificate linkerd/linkerd-identity-issuer ready, signed by ClusterIssuer/ca-issuer, trust bundle 2 roots (1 added, 1 old kept; see below) (") {
			t.Error("progress does not report the Certificate signed by ClusterIssuer/ca-issuer")
		}
		if !strings.Contains(out.String(), "linkerd-control-plane 2026.11.1 upgraded (revision 2)") {
			t.Error("the new trust anchor did not upgrade the control plane")
		}
		cert, err := cl.dynamic.Resource(certificateGVR).Namespace(ControlPlaneNamespace).Get(ctx, IssuerCertificate, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		spec, _, _ := unstructured.NestedMap(cert.Object, "spec")
		want := map[string]any{
			"secretName": "linkerd-identity-issuer", "duration": "48h0m0s", "renewBefore": "25h0m0s",
			"commonName": "identity.linkerd.cluster.local", "isCA": true,
			"issuerRef":  map[string]any{"name": "ca-issuer", "kind": "ClusterIssuer", "group": "cert-manager.io"},
			"dnsNames":   []any{"identity.linkerd.cluster.local"},
			"privateKey": map[string]any{"algorithm": "ECDSA", "rotationPolicy": "Always"},
			"usages":     []any{"cert sign", "crl sign", "server auth", "client auth"},
		}
		for k, v := range want {
			got, _ := json.Marshal(spec[k])
			exp, _ := json.Marshal(v)
			if string(got) != string(exp) && !(k == "duration" && spec[k] == "48h") && !(k == "renewBefore" && spec[k] == "25h") {
				t.Errorf("Certificate spec.%s = %s, want %s", k, got, exp)
			}
		}
		// The previous root stays trusted until --drop-old-trust-roots (docs/trust-rotation.md).
		if anchor := assertIdentity(t, cl); !bundleContains(anchor, testCA.CertPEM) || !bundleContains(anchor, previous) {
			t.Error("the chart's trust bundle does not hold the ClusterIssuer's CA (the Secret's ca.crt) and the previous root")
		}
	})

	t.Run("a second run changes nothing", func(t *testing.T) {
		secretBefore, err := cl.kube.CoreV1().Secrets(ControlPlaneNamespace).Get(ctx, IssuerSecret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out, err := runBootstrap(ctx, t, opts(nil))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "linkerd-crds 2026.11.1 unchanged (revision 1), linkerd-control-plane 2026.11.1 unchanged (revision 2)") {
			t.Error("re-run did not leave the releases unchanged")
		}
		if !strings.Contains(out.String(), "[3/7] identity issuer: Certificate linkerd/linkerd-identity-issuer applied, signed by ClusterIssuer/ca-issuer; not waiting for it (--wait=false), trust anchor from the issued Secret") {
			t.Error("under --wait=false the re-run did not take the issued Secret without waiting")
		}
		secretAfter, err := cl.kube.CoreV1().Secrets(ControlPlaneNamespace).Get(ctx, IssuerSecret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if secretAfter.ResourceVersion != secretBefore.ResourceVersion {
			t.Error("re-run re-issued the identity issuer")
		}
	})

	t.Run("uninstall removes the Certificates and Issuers bootstrap made", func(t *testing.T) {
		var out bytes.Buffer
		if err := Uninstall(ctx, Options{RESTConfig: c.RESTConfig}, &out); err != nil {
			t.Fatalf("Uninstall: %v\n%s", err, out.String())
		}
		for _, gvr := range []struct {
			name string
			list func() (*unstructured.UnstructuredList, error)
		}{
			{"Certificates", func() (*unstructured.UnstructuredList, error) {
				return cl.dynamic.Resource(certificateGVR).Namespace(ControlPlaneNamespace).List(ctx, metav1.ListOptions{})
			}},
			{"Issuers", func() (*unstructured.UnstructuredList, error) {
				return cl.dynamic.Resource(issuerGVR).Namespace(ControlPlaneNamespace).List(ctx, metav1.ListOptions{})
			}},
		} {
			l, err := gvr.list()
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Items) != 0 {
				t.Errorf("%d %s left in %s", len(l.Items), gvr.name, ControlPlaneNamespace)
			}
		}
		if _, err := cl.dynamic.Resource(clusterIssuerGVR).Get(ctx, "ca-issuer", metav1.GetOptions{}); err != nil {
			t.Errorf("uninstall touched the user's ClusterIssuer: %v", err)
		}
	})
}

// runBootstrap runs bootstrap with o, logging the end of its output, and
// returns the whole output.
func runBootstrap(ctx context.Context, t *testing.T, o Options) (*bytes.Buffer, error) {
	t.Helper()
	var out bytes.Buffer
	err := Run(ctx, o, &out)
	t.Logf("bootstrap output:\n%s", tail(out.String(), 40))
	return &out, err
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

func markAvailable(t *testing.T, cl *clients, d *appsv1.Deployment) {
	t.Helper()
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation,
		Replicas:           replicas, UpdatedReplicas: replicas, ReadyReplicas: replicas, AvailableReplicas: replicas,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"}},
	}
	if _, err := cl.kube.AppsV1().Deployments(d.Namespace).UpdateStatus(context.Background(), d, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("status of Deployment %s/%s: %v", d.Namespace, d.Name, err)
	}
}

// addReadyEndpoint gives every Service in namespace one ready endpoint.
func addReadyEndpoint(t *testing.T, cl *clients, namespace string) {
	t.Helper()
	svcs, err := cl.kube.CoreV1().Services(namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ready := true
	for _, svc := range svcs.Items {
		_, err := cl.kube.DiscoveryV1().EndpointSlices(namespace).Create(context.Background(), &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: svc.Name + "-test", Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.10"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("endpoints of Service %s/%s: %v", namespace, svc.Name, err)
		}
	}
}
