package bootstrap

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// lipBinary is the CLI under test: $LIP_BINARY (set by make), else built here.
func lipBinary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("LIP_BINARY"); b != "" {
		return b
	}
	bin := filepath.Join(t.TempDir(), "linkerd-inject-policy")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../cmd/linkerd-inject-policy").CombinedOutput()
	if err != nil {
		t.Fatalf("build the CLI: %v\n%s", err, out)
	}
	return bin
}

type cliResult struct {
	stdout, stderr string
	code           int
}

// runCLI runs the binary from an empty directory, as a user with only the
// binary would (no source tree: the webhook chart is the embedded one).
func runCLI(t *testing.T, bin string, args ...string) cliResult {
	t.Helper()
	return runCLIEnv(t, bin, nil, args...)
}

// runCLIEnv is runCLI with extra environment variables.
func runCLIEnv(t *testing.T, bin string, env []string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s: %v", bin, err)
	}
	t.Logf("$ linkerd-inject-policy %s  (exit %d)\n%s%s", strings.Join(args, " "), res.code, tail(res.stdout, 12), res.stderr)
	return res
}

// The command line end to end, from the binary alone: flags reach Run, the
// webhook chart is the embedded one, errors are one line on stderr with a
// non-zero exit.
func TestBootstrapCommandLine(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: needs a real control plane; skipped in -short mode")
	}
	bin := lipBinary(t)
	c, cl := startCluster(t)
	charts, err := filepath.Abs(testChartDir)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("an offline dry run needs only the binary and Linkerd's packaged charts, and prints no private key", func(t *testing.T) {
		dir := t.TempDir()
		packageCharts(t, dir, "2026.11.1")
		noCluster := []string{"KUBECONFIG=" + filepath.Join(t.TempDir(), "none")}
		res := runCLIEnv(t, bin, noCluster, "bootstrap", "--dry-run", "--chart-dir", dir, "--kube-version", "v1.31.0", "--viz")
		if res.code != 0 {
			t.Fatalf("exit %d: %s", res.code, res.stderr)
		}
		objs := parseStream(t, []byte(res.stdout))
		if find(objs, "Deployment", "linkerd-destination") == nil || find(objs, "MutatingWebhookConfiguration", "linkerd-inject-policy") == nil || find(objs, "Job", "namespace-metadata") == nil {
			t.Error("dry run output lacks the control plane, viz's hook Job or the webhook")
		}
		assertNoPrivateKey(t, res.stdout, objs)
		if !strings.Contains(webhookImage(t, objs), DefaultImageRepository+":") {
			t.Errorf("webhook image %q is not from %s", webhookImage(t, objs), DefaultImageRepository)
		}
		res = runCLIEnv(t, bin, noCluster, "bootstrap", "--dry-run", "--chart-dir", dir)
		if want := "linkerd-inject-policy: --dry-run without a reachable cluster needs --kube-version (Helm would assume Kubernetes v1.20, which Linkerd's charts refuse); pass the version of the cluster you will install on, like --kube-version v1.31.0\n"; res.code != 1 || res.stderr != want {
			t.Errorf("without --kube-version: exit %d, stderr %q, want exit 1 and %q", res.code, res.stderr, want)
		}
	})

	t.Run("a --chart-dir that does not exist is named as such, with exit 2", func(t *testing.T) {
		res := runCLI(t, bin, "bootstrap", "--kubeconfig", c.KubeconfigPath, "--chart-dir", "/nonexistent/charts")
		if res.code != 2 || res.stderr != "--chart-dir /nonexistent/charts: no such directory\n" {
			t.Errorf("exit %d, stderr %q", res.code, res.stderr)
		}
	})

	t.Run("a bad flag value is one line on stderr and exit 2", func(t *testing.T) {
		res := runCLI(t, bin, "bootstrap", "--kubeconfig", c.KubeconfigPath, "--identity", "vault")
		if res.code != 2 || strings.Count(strings.TrimSpace(res.stderr), "\n") != 0 || !strings.Contains(res.stderr, `--identity "vault": must be cert-manager or generated`) {
			t.Errorf("exit %d, stderr %q", res.code, res.stderr)
		}
	})

	t.Run("dry run writes YAML to stdout and creates nothing", func(t *testing.T) {
		res := runCLI(t, bin, "bootstrap", "--kubeconfig", c.KubeconfigPath, "--chart-dir", charts, "--dry-run")
		if res.code != 0 {
			t.Fatalf("exit %d: %s", res.code, res.stderr)
		}
		objs := parseStream(t, []byte(res.stdout))
		if find(objs, "Deployment", "linkerd-identity") == nil || find(objs, "MutatingWebhookConfiguration", "linkerd-inject-policy") == nil {
			t.Error("dry run output lacks the control plane or the webhook")
		}
		if _, err := cl.kube.CoreV1().Namespaces().Get(context.Background(), ControlPlaneNamespace, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("dry run created namespace %s (err %v)", ControlPlaneNamespace, err)
		}
	})

	t.Run("bootstrap installs with the chosen policy mode and uninstall removes it", func(t *testing.T) {
		res := runCLI(t, bin, "bootstrap", "--kubeconfig", c.KubeconfigPath, "--chart-dir", charts, "--policy-mode", "opt-in", "--wait=false")
		if res.code != 0 {
			t.Fatalf("exit %d: %s", res.code, res.stderr)
		}
		if !strings.Contains(res.stdout, "[7/7] wait: skipped (--wait=false)") {
			t.Errorf("stdout lacks the last progress line:\n%s", res.stdout)
		}
		if got := nested(releaseValues(t, cl.config, WebhookRelease, WebhookNamespace), "policy", "defaultMode"); got != "off" {
			t.Errorf("--policy-mode opt-in gave policy.defaultMode %q, want off", got)
		}
		res = runCLI(t, bin, "bootstrap", "uninstall", "--kubeconfig", c.KubeconfigPath)
		if res.code != 0 || !strings.Contains(res.stdout, "release linkerd/linkerd-control-plane uninstalled") {
			t.Errorf("uninstall: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
		}
		if got := releaseState(t, cl.config, ControlPlaneRelease, ControlPlaneNamespace); got != "absent" {
			t.Errorf("control plane after uninstall: %s", got)
		}
	})
}
