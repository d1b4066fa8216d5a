package reports

import (
	"context"
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

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/doctor"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
)

func TestReportLoopStartsNothing(t *testing.T) {
	client := fake.NewSimpleClientset()
	dyn := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
	tests := []struct {
		name string
		o    reportLoopOptions
	}{
		{"an interval of zero starts no loop", reportLoopOptions{Interval: 0, Client: client, Dynamic: dyn}},
		{"a negative interval starts no loop", reportLoopOptions{Interval: -time.Minute, Client: client, Dynamic: dyn}},
		{"no cluster starts no loop", reportLoopOptions{Interval: time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if wait := startReportLoop(context.Background(), tt.o); wait != nil {
				t.Fatal("a report loop was started")
			}
			if n := len(client.Actions()); n != 0 {
				t.Errorf("the cluster was called %d times", n)
			}
		})
	}
}

// TestServeWritesReportsPeriodically runs serve's report loop (what
// --report-interval starts) against a real apiserver with the OpenReports CRDs: a
// MySQL Service without opaque-ports gets a Report, and once annotated the
// next run removes it.
func TestServeWritesReportsPeriodically(t *testing.T) {
	c := cluster.StartForTest(t, cluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	installOpenReportsCRDs(t, ctx, c)
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig)
	dyn := dynamic.NewForConfigOrDie(c.RESTConfig)
	if err := c.CreateNamespace(ctx, "reports", nil); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "reports", Name: "mysql"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 3306, TargetPort: intstr.FromInt32(3306)}}}}
	if _, err := cs.CoreV1().Services("reports").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The loop itself, as runServe starts it: the serve command sets
	// client-go's global logger, which races with this test's own clients.
	runs, err := newReportRunsMetric(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	loopCtx, stopLoop := context.WithCancel(ctx)
	wait := startReportLoop(loopCtx, reportLoopOptions{
		Interval: time.Second, Client: cs, Dynamic: dyn, LinkerdNamespace: "linkerd",
		Runs: runs, Log: testr.New(t),
	})
	if wait == nil {
		t.Fatal("no report loop started")
	}
	defer func() { stopLoop(); wait() }()

	reports := dyn.Resource(doctor.ReportGVR).Namespace("reports")
	if err := cluster.Poll(ctx, "a Report for the MySQL Service", func(ctx context.Context) (bool, error) {
		rep, err := reports.Get(ctx, doctor.ReportName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return strings.Contains(fmt.Sprint(rep.Object["results"]), doctor.CodeServiceOpaque), nil
	}); err != nil {
		t.Fatal(err)
	}

	svcNow, err := cs.CoreV1().Services("reports").Get(ctx, "mysql", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svcNow.Annotations = map[string]string{"config.linkerd.io/opaque-ports": "3306"}
	if _, err := cs.CoreV1().Services("reports").Update(ctx, svcNow, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cluster.Poll(ctx, "the Report removed once the Service is opaque", func(ctx context.Context) (bool, error) {
		_, err := reports.Get(ctx, doctor.ReportName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	}); err != nil {
		t.Fatal(err)
	}

	if ok := counterValue(t, runs, "ok"); ok < 2 {
		t.Errorf("%v runs counted ok, want at least 2 (one with the finding, one clean)", ok)
	}
	if bad := counterValue(t, runs, "error"); bad != 0 {
		t.Errorf("%v runs counted as errors", bad)
	}
	stopLoop()
	wait()

	t.Run("the serve binary with --report-interval writes the Report again", func(t *testing.T) {
		bin, err := cluster.FindWebhookBinary(ctx, t.TempDir(), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		svcNow, err := cs.CoreV1().Services("reports").Get(ctx, "mysql", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		svcNow.Annotations = nil
		if _, err := cs.CoreV1().Services("reports").Update(ctx, svcNow, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		certDir := t.TempDir()
		if _, err := cluster.WriteServingCert(certDir, time.Now()); err != nil {
			t.Fatal(err)
		}
		metrics := "127.0.0.1:" + strconv.Itoa(cluster.FreePortForTest(t))
		logFile, err := os.Create(filepath.Join(t.TempDir(), "serve.log"))
		if err != nil {
			t.Fatal(err)
		}
		defer logFile.Close()
		cmd := exec.CommandContext(ctx, bin, "serve", "--cert-dir", certDir, "--kubeconfig", c.KubeconfigPath,
			"--host", "127.0.0.1", "--port", strconv.Itoa(cluster.FreePortForTest(t)),
			"--health-probe-bind-address", "127.0.0.1:"+strconv.Itoa(cluster.FreePortForTest(t)),
			"--metrics-bind-address", metrics, "--report-interval", "1s")
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			if err := cmd.Wait(); err != nil {
				t.Errorf("serve did not stop cleanly on SIGTERM: %v", err)
			}
			if t.Failed() {
				out, _ := os.ReadFile(logFile.Name())
				t.Logf("serve's log:\n%s", out)
			}
		}()
		if err := cluster.Poll(ctx, "a Report written by serve", func(ctx context.Context) (bool, error) {
			_, err := reports.Get(ctx, doctor.ReportName, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return err == nil, err
		}); err != nil {
			t.Fatal(err)
		}
		if err := cluster.Poll(ctx, "serve's report runs counted", func(ctx context.Context) (bool, error) {
			resp, err := http.Get("http://" + metrics + "/metrics")
			if err != nil {
				return false, nil
			}
			text, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return strings.Contains(string(text), `linkerd_inject_policy_report_runs_total{outcome="ok"}`), nil
		}); err != nil {
			t.Fatal(err)
		}
		out, _ := os.ReadFile(logFile.Name())
		if !strings.Contains(string(out), `"msg":"doctor reports written"`) || !strings.Contains(string(out), `"findings":1`) {
			t.Errorf("serve's log has no run line with the finding:\n%s", out)
		}
	})
}

// installOpenReportsCRDs applies the CRDs shipped in the reports-api module
// (the version in go.mod, from the module cache), as doctor's e2e does.
func installOpenReportsCRDs(t *testing.T, ctx context.Context, c *cluster.Cluster) {
	t.Helper()
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/openreports/reports-api").Output()
	if err != nil {
		t.Fatalf("go list -m github.com/openreports/reports-api: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "config", "crd")
	for _, f := range []string{"openreports.io_reports.yaml", "openreports.io_clusterreports.yaml"} {
		if _, _, err := c.Kubectl(ctx, nil, "apply", "--server-side", "--field-manager=lip-e2e", "-f", filepath.Join(dir, f)); err != nil {
			t.Fatalf("install OpenReports CRDs: %v", err)
		}
	}
	if _, _, err := c.Kubectl(ctx, nil, "wait", "--for=condition=Established", "--timeout=60s",
		"crd/reports.openreports.io", "crd/clusterreports.openreports.io"); err != nil {
		t.Fatalf("wait for OpenReports CRDs: %v", err)
	}
}

func counterValue(t *testing.T, c *prometheus.CounterVec, outcome string) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.WithLabelValues(outcome).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
