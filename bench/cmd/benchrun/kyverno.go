package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/bench/proc"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// kyvernoPolicy is the mutation equivalent to ours on the benchmark's
// objects: Job templates get linkerd.io/inject=disabled, and Pods (which all
// declare port 3306 here) get the opaque-ports annotation.
const kyvernoPolicy = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: linkerd-inject-policy-equivalent
spec:
  background: false
  failurePolicy: Fail
  rules:
  - name: jobs-unmeshed
    match:
      any:
      - resources:
          kinds: [Job]
    mutate:
      patchStrategicMerge:
        spec:
          template:
            metadata:
              annotations:
                linkerd.io/inject: disabled
  - name: mysql-opaque
    match:
      any:
      - resources:
          kinds: [Pod]
    mutate:
      patchStrategicMerge:
        metadata:
          annotations:
            +(config.linkerd.io/opaque-ports): "3306"
`

// kyvernoDocs picks the ConfigMaps Kyverno reads at start-up out of its
// install manifest (as shipped in its module).
func kyvernoDocs(install []byte) (string, error) {
	var out []string
	for _, doc := range strings.Split(string(install), "\n---") {
		if strings.Contains(doc, "\nkind: ConfigMap") &&
			(strings.Contains(doc, "\n  name: kyverno\n") || strings.Contains(doc, "\n  name: kyverno-metrics\n")) {
			out = append(out, doc)
		}
	}
	if len(out) != 2 {
		return "", fmt.Errorf("found %d of Kyverno's 2 ConfigMaps (kyverno, kyverno-metrics) in its install manifest", len(out))
	}
	return strings.Join(out, "\n---\n"), nil
}

// kyvernoAdmission runs Kyverno's admission controller out of cluster
// (--kubeconfig, --serverIP) against the benchmark's apiserver, with its
// CRDs, its ConfigMaps and the equivalent ClusterPolicy.
func kyvernoAdmission(dir, kyvernoDir string, c *cluster.Cluster, cs kubernetes.Interface) admission {
	return admission{Name: "Kyverno v1.19.1", selfReady: true, setUp: func(ctx context.Context) (func(), int, error) {
		kubectl := func(stdin []byte, args ...string) error {
			var in io.Reader
			if stdin != nil {
				in = bytes.NewReader(stdin)
			}
			out, errOut, err := c.Kubectl(ctx, in, args...)
			if err != nil {
				return fmt.Errorf("kubectl %s: %w\n%s%s", strings.Join(args, " "), err, tail(string(out), 500), tail(string(errOut), 1500))
			}
			return nil
		}
		if err := kubectl(nil, "apply", "--server-side", "-R", "-f", filepath.Join(kyvernoDir, "crds")); err != nil {
			return nil, 0, err
		}
		if err := kubectl(nil, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"); err != nil {
			return nil, 0, err
		}
		if err := makeNamespace(ctx, cs, "kyverno"); err != nil {
			return nil, 0, err
		}
		install, err := os.ReadFile(filepath.Join(kyvernoDir, "install.yaml"))
		if err != nil {
			return nil, 0, fmt.Errorf("kyverno install manifest: %w", err)
		}
		cms, err := kyvernoDocs(install)
		if err != nil {
			return nil, 0, err
		}
		if err := kubectl([]byte(cms), "apply", "-n", "kyverno", "-f", "-"); err != nil {
			return nil, 0, err
		}
		port, err := cluster.FreePort()
		if err != nil {
			return nil, 0, err
		}
		logf, err := os.Create(filepath.Join(dir, "kyverno.log"))
		if err != nil {
			return nil, 0, err
		}
		args := []string{
			"--kubeconfig=" + c.KubeconfigPath,
			// Kyverno builds its webhook URL as https://<serverIP><path>, so the
			// port goes into serverIP (its certificate code splits host:port).
			"--serverIP=127.0.0.1:" + strconv.Itoa(port),
			"--servicePort=" + strconv.Itoa(port),
			"--webhookServerPort=" + strconv.Itoa(port),
			"--webhookServerHost=127.0.0.1",
			"--caSecretName=kyverno-svc.kyverno.svc.kyverno-tls-ca",
			"--tlsSecretName=kyverno-svc.kyverno.svc.kyverno-tls-pair",
			"--admissionReports=false",
			"--disableMetrics=true",
			"--controllerRuntimeMetricsAddress=0",
			"--autoUpdateWebhooks=true",
			"--enablePolicyException=false",
			"--generateValidatingAdmissionPolicy=false",
			"--omitEvents=PolicyApplied,PolicySkipped,PolicyViolation,PolicyError",
			"--loggingFormat=text",
			"--v=1",
		}
		env := []string{
			"KYVERNO_NAMESPACE=kyverno", "KYVERNO_POD_NAME=kyverno-bench",
			"KYVERNO_DEPLOYMENT=kyverno-admission-controller", "KYVERNO_SVC=kyverno-svc",
			"KYVERNO_SERVICEACCOUNT_NAME=kyverno-admission-controller", "KYVERNO_ROLE_NAME=kyverno:admission-controller",
			"INIT_CONFIG=kyverno", "METRICS_CONFIG=kyverno-metrics",
		}
		p, err := proc.StartEnv(filepath.Join(kyvernoDir, "kyverno"), args, env, logf)
		if err != nil {
			logf.Close()
			return nil, 0, err
		}
		stop := func() {
			_ = p.Stop(20 * time.Second)
			logf.Close()
		}
		if err := kubectl([]byte(kyvernoPolicy), "apply", "-f", "-"); err != nil {
			stop()
			return nil, 0, err
		}
		// Ready when a dry-run Pod comes back mutated by Kyverno.
		wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		err = cluster.Poll(wctx, "Kyverno to mutate Pods", func(ctx context.Context) (bool, error) {
			if p.Exited() {
				return false, fmt.Errorf("kyverno exited")
			}
			pod, err := cs.CoreV1().Pods("bench-warmup").Create(ctx, benchPod("bench-warmup"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if err != nil {
				return false, err
			}
			return pod.Annotations[policy.AnnotationOpaquePorts] == "3306", nil
		})
		if err != nil {
			stop()
			b, _ := os.ReadFile(logf.Name())
			return nil, 0, fmt.Errorf("%w\nkyverno log:\n%s", err, tail(string(b), 3000))
		}
		return func() {
			_ = kubectl(nil, "delete", "clusterpolicy", "--all", "--wait=false")
			stop()
			_ = kubectl(nil, "delete", "mutatingwebhookconfigurations,validatingwebhookconfigurations", "-l", "webhook.kyverno.io/managed-by=kyverno", "--wait=false")
		}, p.Pid(), nil
	}}
}
