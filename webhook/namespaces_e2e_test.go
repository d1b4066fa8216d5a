package webhook_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/webhook"
)

// TestNamespaceLabelsFromARealAPIServer runs the server in-process against a
// real kube-apiserver + etcd: the mode of each request comes from the
// namespace's label as the informer sees it, including label changes and a
// namespace created just before its first workload.
func TestNamespaceLabelsFromARealAPIServer(t *testing.T) {
	c := cluster.StartForTest(t, cluster.Options{})
	client, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for ns, mode := range map[string]string{"audited": "audit", "enforced": "enforce", "plain": ""} {
		labels := map[string]string{}
		if mode != "" {
			labels[policy.LabelMode] = mode
		}
		if err := c.CreateNamespace(ctx, ns, labels); err != nil {
			t.Fatal(err)
		}
	}

	certDir := t.TempDir()
	caPEM, err := cluster.WriteServingCert(certDir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	port, health := webhook.FreePort(t), "127.0.0.1:"+strconv.Itoa(webhook.FreePort(t))
	optIn := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(optIn, []byte("apiVersion: linkerd-inject-policy.io/v1alpha1\nkind: PolicyConfig\ndefaultMode: \"off\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	registry := prometheus.NewRegistry()
	done := make(chan error, 1)
	go func() {
		done <- webhook.Run(ctx, webhook.Options{
			Host: "127.0.0.1", Port: port, CertDir: certDir, ConfigPath: optIn, Client: client,
			HealthProbeBindAddress: health, MetricsBindAddress: "0", Registry: registry,
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	webhook.Eventually(t, "readyz (namespace cache synced)", func() (bool, string) {
		resp, err := http.Get("http://" + health + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK, string(b)
	})

	https := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	fixture, err := os.ReadFile(filepath.Join("testdata", "reviews", "job.json"))
	if err != nil {
		t.Fatal(err)
	}
	// answer sends the job fixture as if created in namespace ns and says
	// how the server treated it.
	answer := func(ns string) (string, error) {
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(fixture, &review); err != nil {
			return "", err
		}
		review.Request.Namespace = ns
		body, err := json.Marshal(review)
		if err != nil {
			return "", err
		}
		resp, err := https.Post(fmt.Sprintf("https://127.0.0.1:%d%s", port, webhook.Path), "application/json", bytes.NewReader(body))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		var out admissionv1.AdmissionReview
		if err := json.Unmarshal(b, &out); err != nil || out.Response == nil {
			return "", fmt.Errorf("bad answer (%v): %s", err, b)
		}
		switch {
		case len(out.Response.Patch) > 0:
			return "enforce", nil
		case len(out.Response.Warnings) > 0:
			return "audit", nil
		default:
			return "off", nil
		}
	}
	expect := func(t *testing.T, ns, want string) {
		t.Helper()
		webhook.Eventually(t, "namespace "+ns+" treated as "+want, func() (bool, string) {
			got, err := answer(ns)
			if err != nil {
				return false, err.Error()
			}
			return got == want, "treated as " + got
		})
	}

	t.Run("job in namespace labelled audit gets warnings and no patch", func(t *testing.T) { expect(t, "audited", "audit") })
	t.Run("job in namespace labelled enforce is patched", func(t *testing.T) { expect(t, "enforced", "enforce") })
	t.Run("job in unlabelled namespace is untouched under an opt-in config", func(t *testing.T) { expect(t, "plain", "off") })
	t.Run("labelling a namespace takes effect without restart", func(t *testing.T) {
		ns, err := client.CoreV1().Namespaces().Get(ctx, "plain", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ns.Labels[policy.LabelMode] = "enforce"
		if _, err := client.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		expect(t, "plain", "enforce")
	})
	t.Run("the installed Linkerd's facts follow linkerd-config without restart", func(t *testing.T) {
		factsState := func() string {
			mfs, err := registry.Gather()
			if err != nil {
				return err.Error()
			}
			for _, mf := range mfs {
				if mf.GetName() != "linkerd_inject_policy_linkerd_facts" {
					continue
				}
				for _, m := range mf.GetMetric() {
					if m.GetGauge().GetValue() == 1 {
						return m.GetLabel()[0].GetValue()
					}
				}
			}
			return "none"
		}
		expectFacts := func(want string) {
			t.Helper()
			webhook.Eventually(t, "Linkerd facts "+want, func() (bool, string) {
				got := factsState()
				return got == want, got
			})
		}
		expectFacts("unknown") // no Linkerd namespace yet
		if err := c.CreateNamespace(ctx, "linkerd", nil); err != nil {
			t.Fatal(err)
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "linkerd-config", Namespace: "linkerd"},
			Data: map[string]string{"values": "linkerdVersion: edge-26.8.3\nproxy:\n  nativeSidecar: true\n"}}
		if _, err := client.CoreV1().ConfigMaps("linkerd").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		expectFacts("known")
		if err := client.CoreV1().ConfigMaps("linkerd").Delete(ctx, "linkerd-config", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		expectFacts("unknown")
	})
	t.Run("a namespace created just before its first job is already known", func(t *testing.T) {
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: "brand-new", Labels: map[string]string{policy.LabelMode: "enforce"},
		}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// No waiting: a cache miss falls back to one live GET.
		got, err := answer("brand-new")
		if err != nil {
			t.Fatal(err)
		}
		if got != "enforce" {
			t.Errorf("job in a just-created enforce namespace treated as %s", got)
		}
	})
}
