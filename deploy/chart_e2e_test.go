package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/certs"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/deploy"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
)

// Modules whose CRDs the chart's optional objects need; downloaded into the
// module cache by the test, never added to go.mod.
const (
	certManagerModule  = "github.com/cert-manager/cert-manager@v1.21.2"
	promOperatorModule = "github.com/prometheus-operator/prometheus-operator@v0.85.0"
)

const chartDir = "charts/" + deploy.ChartName

// The chart's objects on a real kube-apiserver: every object of each mode is
// accepted with strict field validation, and in self-managed mode the real
// binary, running with the chart's arguments and the chart's RBAC, writes
// its own caBundle and the apiserver calls it.
func TestChartOnARealAPIServer(t *testing.T) {
	c := cluster.StartForTest(t, cluster.Options{})
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	applyCRDs(t, c, certManagerModule, "deploy/crds", "cert-manager.io_certificates.yaml", "cert-manager.io_issuers.yaml")
	applyCRDs(t, c, promOperatorModule, "example/prometheus-operator-crd", "monitoring.coreos.com_podmonitors.yaml", "monitoring.coreos.com_servicemonitors.yaml")
	create := creator(t, c)
	// Linkerd's namespace, where the chart grants reading linkerd-config.
	mustNamespace(t, cs, "linkerd")
	if _, err := cs.CoreV1().ConfigMaps("linkerd").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "linkerd-config"},
		Data:       map[string]string{"values": "linkerdVersion: edge-26.8.3\nproxy:\n  nativeSidecar: true\n"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("cert-manager mode with monitors is accepted with strict validation", func(t *testing.T) {
		ns := "lip-certmanager"
		mustNamespace(t, cs, ns)
		objs, err := deploy.Render(deploy.RenderOptions{
			ChartDir: chartDir, Namespace: ns, APIVersions: deploy.CertManagerAPIVersions,
			Values: map[string]any{"metrics": map[string]any{
				"podMonitor":     map[string]any{"enabled": true, "interval": "30s"},
				"serviceMonitor": map[string]any{"enabled": true},
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, o := range objs {
			seen[o.GetKind()] = true
			if err := create(ctx, o, true); err != nil {
				t.Errorf("%s %s rejected: %v", o.GetKind(), o.GetName(), err)
			}
		}
		for _, k := range []string{"Certificate", "Issuer", "PodMonitor", "ServiceMonitor", "MutatingWebhookConfiguration", "Deployment", "PodDisruptionBudget"} {
			if !seen[k] {
				t.Errorf("the chart rendered no %s", k)
			}
		}
		// The check has teeth: a misplaced field in a CRD object is refused.
		for _, o := range objs {
			if o.GetKind() == "Certificate" {
				bad := o.DeepCopy()
				_ = unstructured.SetNestedField(bad.Object, "ECDSA", "spec", "algorithm")
				if err := create(ctx, bad, true); err == nil || !strings.Contains(err.Error(), "algorithm") {
					t.Errorf("a Certificate with spec.algorithm (belongs under privateKey) was not refused: %v", err)
				}
			}
		}
	})

	t.Run("self-managed mode writes its caBundle and the apiserver calls the webhook", func(t *testing.T) {
		ns := "linkerd-inject-policy"
		mustNamespace(t, cs, ns)
		port := freePort(t)
		objs, err := deploy.Render(deploy.RenderOptions{
			ChartDir: chartDir, Namespace: ns,
			Values: map[string]any{
				"certs":   map[string]any{"mode": "self-managed"},
				"service": map[string]any{"port": port},
				"webhook": map[string]any{"port": port, "failurePolicy": "Fail"},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		var deployment, configMap *unstructured.Unstructured
		for _, o := range objs {
			if err := create(ctx, o, false); err != nil {
				t.Fatalf("%s %s rejected: %v", o.GetKind(), o.GetName(), err)
			}
			switch o.GetKind() {
			case "Deployment":
				deployment = o
			case "ConfigMap":
				configMap = o
			}
		}
		// Nothing runs pods here: stand in for the Service with one the
		// apiserver resolves to localhost. It still verifies the serving
		// certificate for <service>.<namespace>.svc, as in a cluster.
		svcName := deployment.GetName()
		if err := cs.CoreV1().Services(ns).Delete(ctx, svcName, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: svcName},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost"},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}

		dir := t.TempDir()
		cfgData, _, _ := unstructured.NestedString(configMap.Object, "data", "config.yaml")
		cfgPath := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(cfgPath, []byte(cfgData), 0o644); err != nil {
			t.Fatal(err)
		}
		containers, _, _ := unstructured.NestedSlice(deployment.Object, "spec", "template", "spec", "containers")
		args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
		sa, _, _ := unstructured.NestedString(deployment.Object, "spec", "template", "spec", "serviceAccountName")
		healthAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
		metricsAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
		certDir := filepath.Join(dir, "certs")
		args = rewriteArgs(args, map[string]string{
			"--cert-dir":                  certDir,
			"--config":                    cfgPath,
			"--health-probe-bind-address": healthAddr,
			"--metrics-bind-address":      metricsAddr,
			"--log-format":                "console",
		})
		args = append(args, "--host=127.0.0.1", "--kubeconfig="+serviceAccountKubeconfig(t, c, cs, ns, sa, dir))
		bin, err := cluster.FindWebhookBinary(ctx, c.Dir, testLog{t})
		if err != nil {
			t.Fatal(err)
		}
		runWebhook(t, bin, args, filepath.Join(dir, "webhook.log"), healthAddr)

		// Ready means the facts are settled: with the chart's Role (list and
		// watch by a field selector on the one name) they are known.
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(metrics), `linkerd_inject_policy_linkerd_facts{state="known"} 1`) {
			t.Errorf("with the chart's RBAC the Linkerd facts are not known:\n%s\n%s", grepLines(string(metrics), "linkerd_facts"), tail(filepath.Join(dir, "webhook.log")))
		}

		sec, err := cs.CoreV1().Secrets(ns).Get(ctx, "linkerd-inject-policy-tls", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the webhook did not create its Secret: %v", err)
		}
		if _, err := certs.ParseBundle(sec.Data); err != nil {
			t.Errorf("Secret content: %v", err)
		}
		mwc, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "linkerd-inject-policy", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(mwc.Webhooks[0].ClientConfig.CABundle, sec.Data["ca.crt"]) {
			t.Fatalf("caBundle is not the Secret's CA:\n%s", mwc.Webhooks[0].ClientConfig.CABundle)
		}

		// failurePolicy is Fail: the Job is created only if the apiserver
		// reached the webhook over TLS it trusts through the caBundle.
		if err := cs.CoreV1().Namespaces().Delete(ctx, "apps", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps", Labels: map[string]string{"linkerd-inject-policy.io/mode": "enforce"}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		job := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: "migrate"},
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "migrate", Image: "migrate:1"}},
			}}},
		}
		var got *batchv1.Job
		deadline := time.Now().Add(60 * time.Second)
		for {
			got, err = cs.BatchV1().Jobs("apps").Create(ctx, job, metav1.CreateOptions{})
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond) // the apiserver's webhook config cache may lag the patch
		}
		if err != nil {
			t.Fatalf("create a Job through the webhook: %v\n%s", err, tail(filepath.Join(dir, "webhook.log")))
		}
		applied := got.Spec.Template.Annotations["linkerd-inject-policy.io/applied"]
		if !strings.Contains(applied, "jobs") {
			t.Errorf("the Job was admitted without the policy (applied=%q, annotations %v)", applied, got.Spec.Template.Annotations)
		}
	})
}

// creator returns a function that creates an object (or dry-runs it) with
// strict field validation, so unknown or misplaced fields are errors.
func creator(t *testing.T, c *cluster.Cluster) func(context.Context, *unstructured.Unstructured, bool) error {
	t.Helper()
	dyn, err := dynamic.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := restmapper.GetAPIGroupResources(dc)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	return func(ctx context.Context, o *unstructured.Unstructured, dryRun bool) error {
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fmt.Errorf("map %s: %w", gvk, err)
		}
		opts := metav1.CreateOptions{FieldValidation: "Strict"}
		if dryRun {
			opts.DryRun = []string{metav1.DryRunAll}
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		}
		_, err = ri.Create(ctx, o, opts)
		return err
	}
}

// applyCRDs downloads module into the module cache (outside our go.mod) and
// applies the named CRD files from dir in it, waiting until they are served.
func applyCRDs(t *testing.T, c *cluster.Cluster, module, dir string, files ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", module)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); jerr != nil || info.Error != "" || err != nil {
		t.Fatalf("go mod download %s: %v %s (is the Go module proxy reachable?)", module, err, info.Error)
	}
	for _, f := range files {
		path := filepath.Join(info.Dir, dir, f)
		if _, stderr, err := c.Kubectl(ctx, nil, "apply", "--server-side", "-f", path); err != nil {
			t.Fatalf("apply %s: %v %s", path, err, stderr)
		}
	}
	if _, stderr, err := c.Kubectl(ctx, nil, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"); err != nil {
		t.Fatalf("wait for CRDs: %v %s", err, stderr)
	}
}

// serviceAccountKubeconfig writes a kubeconfig that authenticates as the
// chart's ServiceAccount, so the webhook runs with exactly the chart's RBAC.
func serviceAccountKubeconfig(t *testing.T, c *cluster.Cluster, cs kubernetes.Interface, ns, sa, dir string) string {
	t.Helper()
	exp := int64(3600)
	tok, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), sa, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for service account %s/%s: %v", ns, sa, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: c.RESTConfig.Host, CertificateAuthorityData: c.RESTConfig.CAData}
	cfg.AuthInfos["sa"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	cfg.Contexts["sa"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "sa", Namespace: ns}
	cfg.CurrentContext = "sa"
	path := filepath.Join(dir, "sa.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// runWebhook starts the binary and waits for /readyz; on cleanup it stops
// the process it started (SIGTERM, then SIGKILL).
func runWebhook(t *testing.T, bin string, args []string, logPath, healthAddr string) {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get("http://" + healthAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-done:
			t.Fatalf("webhook exited during start-up (%v):\n%s", cmd.ProcessState, tail(logPath))
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook not ready on %s within 60s:\n%s", healthAddr, tail(logPath))
		}
	}
}

// rewriteArgs replaces the values of --flag=value arguments.
func rewriteArgs(args []string, set map[string]string) []string {
	out := make([]string, 0, len(args))
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		if v, ok := set[name]; ok {
			a = name + "=" + v
		}
		out = append(out, a)
	}
	return out
}

func mustNamespace(t *testing.T, cs kubernetes.Interface, name string) {
	t.Helper()
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	return cluster.FreePortForTest(t)
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// grepLines keeps the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
