package cluster_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
)

// One cluster with the controller manager proves the whole harness: the
// apiserver answers, kubectl works with the kubeconfig, the controller
// manager turns a Job into a Pod, writes reach the audit log, a service-form
// webhook call stays on the machine, and Stop leaves neither processes nor
// files behind.
func TestHarnessRunsARealControlPlaneAndCleansUp(t *testing.T) {
	c := cluster.StartForTest(t, cluster.Options{ControllerManager: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	if err := c.Ready(ctx); err != nil {
		t.Fatalf("apiserver not ready: %v", err)
	}
	out, _, err := c.Kubectl(ctx, nil, "get", "namespace", "default", "-o", "name")
	if err != nil || strings.TrimSpace(string(out)) != "namespace/default" {
		t.Fatalf("kubectl get namespace default = %q, %v", out, err)
	}

	job := `apiVersion: batch/v1
kind: Job
metadata: {name: harness-job, namespace: default}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
`
	if _, stderr, err := c.Kubectl(ctx, strings.NewReader(job), "apply", "-f", "-"); err != nil {
		t.Fatalf("apply job: %v (%s)", err, stderr)
	}
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig)
	for {
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "job-name=harness-job"})
		if err == nil && len(pods.Items) > 0 {
			if refs := pods.Items[0].OwnerReferences; len(refs) != 1 || refs[0].Kind != "Job" {
				t.Fatalf("pod owner = %+v, want the Job", refs)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the controller manager made no Pod for the Job: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	audit, err := os.ReadFile(c.AuditLogPath)
	if err != nil {
		t.Fatalf("read audit log: %v", err)
	}
	if !bytes.Contains(audit, []byte(`"resource":"jobs"`)) || !bytes.Contains(audit, []byte(`"name":"harness-job"`)) {
		t.Fatalf("audit log has no entry for the Job:\n%.2000s", audit)
	}

	t.Run("a service-form webhook call ends in connection refused", func(t *testing.T) {
		serviceFormWebhookIsRefused(t, c)
	})

	dir := c.Dir
	if err := c.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("cluster dir %s still exists after Stop (%v)", dir, err)
	}
	if left := processesMentioning(t, dir); len(left) > 0 {
		t.Errorf("processes left after Stop: %v", left)
	}
}

// processesMentioning lists command lines of live processes that mention dir.
func processesMentioning(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("read /proc: %v", err)
	}
	var found []string
	for _, e := range entries {
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !bytes.Contains(cmdline, []byte(dir)) {
			continue
		}
		found = append(found, strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return found
}

// If the process that started the cluster dies without running Stop (a test
// timeout, a SIGKILL, Ctrl-C), the watchdog still ends every component and
// removes the directory.
func TestNothingSurvivesAKilledTestBinary(t *testing.T) {
	if os.Getenv("LIP_CLUSTER_HELPER") == "1" {
		c, err := cluster.Start(context.Background(), cluster.Options{ControllerManager: true})
		if err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		fmt.Println("DIR", c.Dir)
		select {} // wait to be killed
	}
	if testing.Short() {
		t.Skip("e2e: needs a real control plane; skipped in -short mode")
	}
	if _, err := cluster.FindBinaries(context.Background(), io.Discard); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNothingSurvivesAKilledTestBinary$")
	cmd.Env = append(os.Environ(), "LIP_CLUSTER_HELPER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() //nolint:errcheck // already dead on the happy path
	var dir string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "DIR "); ok {
			dir = d
			break
		}
		if strings.HasPrefix(sc.Text(), "ERROR") {
			t.Fatalf("helper: %s", sc.Text())
		}
	}
	if dir == "" {
		t.Fatalf("helper printed no cluster dir (%v)", sc.Err())
	}
	if len(processesMentioning(t, dir)) < 3 {
		t.Fatalf("expected etcd, kube-apiserver and kube-controller-manager running from %s, found %v", dir, processesMentioning(t, dir))
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = cluster.Poll(ctx, "the watchdog to clean up "+dir, func(context.Context) (bool, error) {
		_, statErr := os.Stat(dir)
		return len(processesMentioning(t, dir)) == 0 && os.IsNotExist(statErr), nil
	})
	if err != nil {
		t.Fatalf("%v; still running: %v", err, processesMentioning(t, dir))
	}
}
