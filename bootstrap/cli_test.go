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

// runCLI runs the binary from the repository root, as a user of the source
// tree would (the webhook chart is then found at its default path).
func runCLI(t *testing.T, bin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = ".."
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

// The command line end to end: flags reach Run, the webhook chart is found
// in the source tree, errors are one line on stderr with a non-zero exit.
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
	if _, err := os.Stat(filepath.Join("..", "deploy", "charts", "linkerd-inject-policy", "Chart.yaml")); err != nil {
		t.Fatalf("the webhook chart is not in the source tree: %v", err)
	}

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
