package doctor

// Tests against a real kube-apiserver + etcd + kube-controller-manager
// started by e2e/cluster, one control plane for the package. No webhook
// runs, so every object is "created while the webhook was off", and no
// kubelet: the test writes pod statuses itself, as the kubelet would.
// Skipped with -short.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/certs"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
)

// e2eSuite is the control plane the e2e tests share (nil in -short mode).
type e2eSuite struct {
	c      *cluster.Cluster
	cs     kubernetes.Interface
	dyn    dynamic.Interface
	binary string
}

var e2e *e2eSuite

func TestMain(m *testing.M) {
	cluster.Isolate(cluster.ECKModule)
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	s, err := startE2E()
	if err != nil {
		fmt.Fprintf(os.Stderr, "doctor e2e: %v\n", err)
		if s != nil && s.c != nil {
			_ = s.c.Stop()
		}
		os.Exit(1)
	}
	e2e = s
	code := m.Run()
	if err := s.c.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "doctor e2e: stop cluster: %v\n", err)
	}
	os.Exit(code)
}

func startE2E() (*e2eSuite, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	c, err := cluster.Start(ctx, cluster.Options{ControllerManager: true, Log: os.Stderr})
	if err != nil {
		return nil, err
	}
	s := &e2eSuite{c: c, cs: kubernetes.NewForConfigOrDie(c.RESTConfig), dyn: dynamic.NewForConfigOrDie(c.RESTConfig)}
	if s.binary, err = cluster.FindWebhookBinary(ctx, c.Dir, os.Stderr); err != nil {
		return s, err
	}
	if err := s.installOpenReportsCRDs(ctx); err != nil {
		return s, err
	}
	if err := c.InstallECKCRDs(ctx); err != nil {
		return s, err
	}
	return s, nil
}

// installOpenReportsCRDs applies the CRDs shipped in the reports-api module
// (the version in go.mod, from the module cache).
func (s *e2eSuite) installOpenReportsCRDs(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/openreports/reports-api")
	cmd.Dir = moduleRoot()
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go list -m github.com/openreports/reports-api: %w", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "config", "crd")
	for _, f := range []string{"openreports.io_reports.yaml", "openreports.io_clusterreports.yaml"} {
		if _, _, err := s.c.Kubectl(ctx, nil, "apply", "--server-side", "--field-manager=lip-e2e", "-f", filepath.Join(dir, f)); err != nil {
			return fmt.Errorf("install OpenReports CRDs: %w", err)
		}
	}
	if _, _, err := s.c.Kubectl(ctx, nil, "wait", "--for=condition=Established", "--timeout=60s",
		"crd/reports.openreports.io", "crd/clusterreports.openreports.io"); err != nil {
		return fmt.Errorf("wait for OpenReports CRDs: %w", err)
	}
	return nil
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

func needE2E(t *testing.T) *e2eSuite {
	t.Helper()
	if e2e == nil {
		t.Skip("e2e: needs a real control plane; skipped in -short mode")
	}
	return e2e
}

// doctor runs the binary; it returns stdout, stderr and the exit code.
func (s *e2eSuite) doctor(t *testing.T, kubeconfig string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.binary, append([]string{"doctor", "--kubeconfig", kubeconfig}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run doctor: %v", err)
	}
	return out.String(), errb.String(), code
}

func (s *e2eSuite) doctorJSON(t *testing.T, kubeconfig string, args ...string) (map[key]Finding, string) {
	t.Helper()
	out, stderr, code := s.doctor(t, kubeconfig, append(args, "-o", "json")...)
	if code != 1 {
		t.Fatalf("doctor exit %d, want 1 (findings)\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	var r struct {
		Findings []Finding `json:"findings"`
		Summary  Summary   `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("stdout is not the JSON result: %v\n%s", err, out)
	}
	m := map[key]Finding{}
	for _, f := range r.Findings {
		m[key{f.Code, f.Kind, f.Namespace, f.Name, f.Workload}] = f
	}
	return m, stderr
}

func (s *e2eSuite) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// must(f())(t) is f's value, failing t on f's error.
func must[T any](v T, err error) func(*testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// createNamespace makes a namespace and waits for its default
// ServiceAccount (the ServiceAccount admission plugin needs it for pods).
func (s *e2eSuite) createNamespace(t *testing.T, ctx context.Context, name string, lbls, ann map[string]string) {
	t.Helper()
	must(s.cs.CoreV1().Namespaces().Create(ctx, namespace(name, lbls, ann), metav1.CreateOptions{}))(t)
	if err := cluster.Poll(ctx, "ServiceAccount "+name+"/default", func(ctx context.Context) (bool, error) {
		_, err := s.cs.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, client(err)
	}); err != nil {
		t.Fatal(err)
	}
}

func client(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// podsOf waits until the controller has made n pods matching sel.
func (s *e2eSuite) podsOf(t *testing.T, ctx context.Context, ns string, sel map[string]string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	if err := cluster.Poll(ctx, fmt.Sprintf("%d pods %v in %s", n, sel, ns), func(ctx context.Context) (bool, error) {
		l, err := s.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(sel).String()})
		if err != nil {
			return false, err
		}
		pods = l.Items
		return len(pods) >= n, nil
	}); err != nil {
		t.Fatal(err)
	}
	return pods
}

// kubeletStatus writes a pod status as the kubelet would on a node: the
// pod Running, each named container in the given state.
func (s *e2eSuite) kubeletStatus(t *testing.T, ctx context.Context, p *corev1.Pod, containers, initContainers []corev1.ContainerStatus) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := s.cs.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		*p = *cur
		s.setKubeletStatus(p, containers, initContainers)
		_, err = s.cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("write pod %s status: %v", p.Name, err)
	}
}

func (s *e2eSuite) setKubeletStatus(p *corev1.Pod, containers, initContainers []corev1.ContainerStatus) {
	now := metav1.Now()
	p.Status.Phase = corev1.PodRunning
	p.Status.StartTime = &now
	p.Status.HostIP = "10.0.0.10"
	p.Status.PodIP = "10.244.0.17"
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now}}
	fill := func(sts []corev1.ContainerStatus, spec []corev1.Container) []corev1.ContainerStatus {
		for i := range sts {
			for _, c := range spec {
				if c.Name == sts[i].Name {
					sts[i].Image = c.Image
					sts[i].ImageID = "docker.io/library/" + c.Image + "@sha256:" + strings.Repeat("0", 64)
					sts[i].ContainerID = "containerd://" + strings.Repeat("a", 64)
				}
			}
			if sts[i].State.Running != nil {
				sts[i].State.Running.StartedAt = now
				started := true
				sts[i].Started = &started
			}
			if sts[i].State.Terminated != nil {
				sts[i].State.Terminated.StartedAt = now
				sts[i].State.Terminated.FinishedAt = now
			}
		}
		return sts
	}
	p.Status.ContainerStatuses = fill(containers, p.Spec.Containers)
	p.Status.InitContainerStatuses = fill(initContainers, p.Spec.InitContainers)
}

// anchorBundle is a fresh trust anchor's PEM, as the chart renders it.
func anchorBundle(t *testing.T) string {
	t.Helper()
	a := must(certs.GenerateTrustAnchor("root.linkerd.cluster.local", time.Now(), 24*time.Hour))(t)
	return string(bytes.TrimSpace(a.CertPEM))
}

func TestDoctorOnARealCluster(t *testing.T) {
	s := needE2E(t)
	ctx := s.ctx(t)
	kc := s.c.KubeconfigPath

	// Linkerd's ConfigMaps as its chart writes them; the bundle is
	// rotated below, after the "old" pod was injected.
	oldRoot, newRoot := anchorBundle(t), anchorBundle(t)
	s.createNamespace(t, ctx, "linkerd", map[string]string{LabelAdmissionWebhooks: "disabled"}, nil)
	must(s.cs.CoreV1().ConfigMaps("linkerd").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "linkerd-config"}, Data: map[string]string{"values": linkerdValues}}, metav1.CreateOptions{}))(t)
	must(s.cs.CoreV1().ConfigMaps("linkerd").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: TrustRootsConfigMap}, Data: map[string]string{TrustRootsKey: newRoot}}, metav1.CreateOptions{}))(t)

	web := podSpec(container("web", "nginx:1.27", 80))
	mysql := podSpec(container("mysql", "mysql:8.4", 3306))

	// dr-apps asks for injection; nothing injected what runs there.
	s.createNamespace(t, ctx, "dr-apps", nil, map[string]string{"linkerd.io/inject": "enabled"})
	must(s.cs.AppsV1().Deployments("dr-apps").Create(ctx, deployment("dr-apps", "web", web), metav1.CreateOptions{}))(t)
	optOut := deployment("dr-apps", "ok-opted-out", web)
	optOut.Spec.Template.Annotations = map[string]string{"linkerd.io/inject": "disabled"}
	must(s.cs.AppsV1().Deployments("dr-apps").Create(ctx, optOut, metav1.CreateOptions{}))(t)
	// Pods as Linkerd's injector left them: one before the anchor
	// rotation, one after.
	must(s.cs.CoreV1().Pods("dr-apps").Create(ctx, injected(pod("dr-apps", "old-root", nil, web, ""), true, oldRoot), metav1.CreateOptions{}))(t)
	must(s.cs.CoreV1().Pods("dr-apps").Create(ctx, injected(pod("dr-apps", "ok-current-root", nil, web, ""), true, newRoot), metav1.CreateOptions{}))(t)
	must(s.cs.CoreV1().Services("dr-apps").Create(ctx, service("dr-apps", "mysql", nil, 3306), metav1.CreateOptions{}))(t)
	must(s.cs.CoreV1().Services("dr-apps").Create(ctx, service("dr-apps", "ok-web", nil, 80), metav1.CreateOptions{}))(t)
	must(s.cs.CoreV1().Services("dr-apps").Create(ctx, service("dr-apps", "ok-postgres", map[string]string{"config.linkerd.io/opaque-ports": "5432"}, 5432), metav1.CreateOptions{}))(t)

	// dr-jobs: a CronJob's Job whose pod runs the classic sidecar, and
	// one whose work still runs.
	s.createNamespace(t, ctx, "dr-jobs", nil, nil)
	jobSpec := podSpec(container(ProxyContainer, "cr.l5d.io/linkerd/proxy:edge-26.8.3", 4143, 4191), container("backup", "busybox:1.36"))
	cj := cronJob("dr-jobs", "backup", jobSpec)
	suspend := true
	cj.Spec.Suspend = &suspend
	cj = must(s.cs.BatchV1().CronJobs("dr-jobs").Create(ctx, cj, metav1.CreateOptions{}))(t)
	yes := true
	for _, name := range []string{"backup-manual", "ok-backup-busy"} {
		// What `kubectl create job --from=cronjob/backup` makes.
		j := jobOf("dr-jobs", name, "backup", jobSpec)
		j.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: cj.Name, UID: cj.UID, Controller: &yes}}
		must(s.cs.BatchV1().Jobs("dr-jobs").Create(ctx, j, metav1.CreateOptions{}))(t)
	}
	stuck := s.podsOf(t, ctx, "dr-jobs", map[string]string{"job-name": "backup-manual"}, 1)[0]
	s.kubeletStatus(t, ctx, &stuck, []corev1.ContainerStatus{running(ProxyContainer), terminated("backup", 0)}, nil)
	busy := s.podsOf(t, ctx, "dr-jobs", map[string]string{"job-name": "ok-backup-busy"}, 1)[0]
	s.kubeletStatus(t, ctx, &busy, []corev1.ContainerStatus{running(ProxyContainer), running("backup")}, nil)

	// dr-legacy: default mode (enforce); Deployments made while the
	// webhook was off.
	s.createNamespace(t, ctx, "dr-legacy", nil, nil)
	must(s.cs.AppsV1().Deployments("dr-legacy").Create(ctx, deployment("dr-legacy", "mysql", mysql), metav1.CreateOptions{}))(t)
	must(s.cs.AppsV1().Deployments("dr-legacy").Create(ctx, deployment("dr-legacy", "ok-nginx", web), metav1.CreateOptions{}))(t)
	misplaced := deployment("dr-legacy", "misplaced", web)
	misplaced.Annotations = map[string]string{"linkerd.io/inject": "enabled"}
	must(s.cs.AppsV1().Deployments("dr-legacy").Create(ctx, misplaced, metav1.CreateOptions{}))(t)

	// An Elasticsearch made before the webhook: the eck rule would give its
	// node set the token (no ECK operator runs, so nothing else happens).
	es := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "elasticsearch.k8s.elastic.co/v1", "kind": "Elasticsearch",
		"metadata": map[string]any{"name": "logs", "namespace": "dr-legacy"},
		"spec":     map[string]any{"version": "8.15.0", "nodeSets": []any{map[string]any{"name": "default", "count": int64(1)}}},
	}}
	esGVR := schema.GroupVersionResource{Group: "elasticsearch.k8s.elastic.co", Version: "v1", Resource: "elasticsearches"}
	must(s.dyn.Resource(esGVR).Namespace("dr-legacy").Create(ctx, es, metav1.CreateOptions{}))(t)

	webPods := s.podsOf(t, ctx, "dr-apps", map[string]string{"app": "web"}, 1)
	s.podsOf(t, ctx, "dr-apps", map[string]string{"app": "ok-opted-out"}, 1)
	s.podsOf(t, ctx, "dr-legacy", map[string]string{"app": "mysql"}, 1)

	got, stderr := s.doctorJSON(t, kc, "-A")
	if !strings.Contains(stderr, "doctor: listed") || !strings.Contains(stderr, "Linkerd edge-26.8.3") {
		t.Errorf("stderr has no progress or facts:\n%s", stderr)
	}
	want := []struct {
		name string
		k    key
	}{
		{"the Deployment's pod without a proxy in an inject-enabled namespace needs a restart", key{CodeNeedsRestart, "Pod", "dr-apps", webPods[0].Name, "Deployment/web"}},
		{"the pod injected before the anchor rotation has a stale trust root", key{CodeStaleTrustRoot, "Pod", "dr-apps", "old-root", ""}},
		{"the MySQL Service without opaque-ports is not opaque", key{CodeServiceOpaque, "Service", "dr-apps", "mysql", ""}},
		{"the Job pod whose container terminated while the proxy runs is stuck, owned by the CronJob", key{CodeJobStuckOnProxy, "Pod", "dr-jobs", stuck.Name, "CronJob/backup"}},
		{"the CronJob the jobs rule would change is drift", key{CodePolicyDrift, "CronJob", "dr-jobs", "backup", "CronJob/backup"}},
		{"inject on the Deployment's own metadata is a misplaced annotation", key{"misplaced_annotation", "Deployment", "dr-legacy", "misplaced", "Deployment/misplaced"}},
		{"the MySQL Deployment created while the webhook was off is drift", key{CodePolicyDrift, "Deployment", "dr-legacy", "mysql", "Deployment/mysql"}},
	}
	eckDrift := key{CodePolicyDrift, "Elasticsearch", "dr-legacy", "logs", "Elasticsearch/logs"}
	t.Run("the Elasticsearch the eck rule would change is drift", func(t *testing.T) {
		f, ok := got[eckDrift]
		if !ok || !strings.Contains(f.Message, "automountServiceAccountToken") {
			t.Errorf("no eck drift for Elasticsearch logs: %+v", f)
		}
		delete(got, eckDrift)
	})
	for _, w := range want {
		t.Run(w.name, func(t *testing.T) {
			f, ok := got[w.k]
			if !ok {
				t.Fatalf("no finding %+v in %v", w.k, got)
			}
			if f.Message == "" || f.Fix == "" {
				t.Errorf("finding without message or fix: %+v", f)
			}
			delete(got, w.k)
		})
	}
	t.Run("nothing is reported for the healthy control objects", func(t *testing.T) {
		for k, f := range got {
			if strings.HasPrefix(k.namespace, "dr-") {
				t.Errorf("unexpected finding %+v: %s", k, f.Message)
			}
		}
	})

	t.Run("with the documented read-only ClusterRole the scan is the same", func(t *testing.T) {
		reader := s.readOnlyKubeconfig(t, ctx)
		again, stderr := s.doctorJSON(t, reader, "-A")
		for _, w := range want {
			if _, ok := again[w.k]; !ok {
				t.Errorf("read-only scan misses %+v", w.k)
			}
		}
		// ECK's kinds are not in the role: skipped, and said so.
		if !strings.Contains(stderr, "not allowed to list elasticsearches.elasticsearch.k8s.elastic.co: Elasticsearch not checked") {
			t.Errorf("no note for the kinds the role does not grant:\n%s", stderr)
		}
		if _, stderr, code := s.doctor(t, reader, "-A", "--fix", "needs_restart", "--yes"); code != 2 || !strings.Contains(stderr, "forbidden") {
			t.Errorf("a read-only --fix --yes: exit %d, stderr %q; want exit 2, forbidden", code, stderr)
		}
	})

	t.Run("fix needs_restart is a dry run without --yes", func(t *testing.T) {
		out, _, code := s.doctor(t, kc, "-n", "dr-apps", "--fix", "needs_restart")
		if code != 1 || !strings.Contains(out, "would restart Deployment dr-apps/web (needs_restart)") || !strings.Contains(out, "[dry run: add --yes]") {
			t.Errorf("exit %d, stdout:\n%s", code, out)
		}
		d := must(s.cs.AppsV1().Deployments("dr-apps").Get(ctx, "web", metav1.GetOptions{}))(t)
		if _, ok := d.Spec.Template.Annotations[RestartedAtAnnotation]; ok {
			t.Error("a dry run restarted the Deployment")
		}
	})

	t.Run("fix needs_restart --yes restarts the Deployment and the controller rolls a new ReplicaSet", func(t *testing.T) {
		out, _, code := s.doctor(t, kc, "-n", "dr-apps", "--fix", "needs_restart", "--yes")
		if code != 1 || !strings.Contains(out, "restarted Deployment dr-apps/web (needs_restart)") {
			t.Errorf("exit %d, stdout:\n%s", code, out)
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "restarted ") && !strings.HasPrefix(line, "restarted Deployment dr-apps/web ") {
				t.Errorf("restarted more than the finding's workload: %s", line)
			}
		}
		d := must(s.cs.AppsV1().Deployments("dr-apps").Get(ctx, "web", metav1.GetOptions{}))(t)
		if _, ok := d.Spec.Template.Annotations[RestartedAtAnnotation]; !ok {
			t.Fatalf("template annotations %v lack %s", d.Spec.Template.Annotations, RestartedAtAnnotation)
		}
		if err := cluster.Poll(ctx, "a second ReplicaSet of Deployment web", func(ctx context.Context) (bool, error) {
			rs, err := s.cs.AppsV1().ReplicaSets("dr-apps").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				return false, err
			}
			return len(rs.Items) == 2, nil
		}); err != nil {
			t.Fatal(err)
		}
		other := must(s.cs.AppsV1().ReplicaSets("dr-apps").List(ctx, metav1.ListOptions{LabelSelector: "app=ok-opted-out"}))(t)
		if len(other.Items) != 1 {
			t.Errorf("Deployment ok-opted-out has %d ReplicaSets, want 1 (not restarted)", len(other.Items))
		}
	})
}

// readOnlyKubeconfig binds the ClusterRole from docs/doctor.md to a user
// and returns a kubeconfig that impersonates it.
func (s *e2eSuite) readOnlyKubeconfig(t *testing.T, ctx context.Context) string {
	t.Helper()
	doc := must(os.ReadFile(filepath.Join(moduleRoot(), "docs", "doctor.md")))(t)
	_, after, ok := strings.Cut(string(doc), "<!-- doctor-clusterrole -->\n```yaml\n")
	block, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatal("docs/doctor.md has no ClusterRole block after <!-- doctor-clusterrole -->")
	}
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict([]byte(block), &role); err != nil {
		t.Fatalf("docs/doctor.md ClusterRole: %v", err)
	}
	for _, r := range role.Rules {
		for _, v := range r.Verbs {
			if v != "get" && v != "list" {
				t.Fatalf("the documented ClusterRole grants %s", v)
			}
		}
	}
	if _, err := s.cs.RbacV1().ClusterRoles().Get(ctx, role.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		must(s.cs.RbacV1().ClusterRoles().Create(ctx, &role, metav1.CreateOptions{}))(t)
		must(s.cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: role.Name},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
			Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "doctor-reader"}},
		}, metav1.CreateOptions{}))(t)
	}
	cfg := must(clientcmd.LoadFromFile(s.c.KubeconfigPath))(t)
	for _, ai := range cfg.AuthInfos {
		ai.Impersonate = "doctor-reader"
	}
	path := filepath.Join(t.TempDir(), "reader.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	// RBAC is cached by the authorizer's informers: wait until the binding
	// is seen.
	if err := cluster.Poll(ctx, "the read-only binding", func(ctx context.Context) (bool, error) {
		_, _, code := s.doctor(t, path, "-A", "-q", "-o", "json")
		return code != 2, nil
	}); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDoctorReportsAreAppliedAndRemovedWhenClean(t *testing.T) {
	s := needE2E(t)
	ctx := s.ctx(t)
	kc := s.c.KubeconfigPath
	s.createNamespace(t, ctx, "dr-report", nil, nil)
	must(s.cs.CoreV1().Services("dr-report").Create(ctx, service("dr-report", "mysql", nil, 3306), metav1.CreateOptions{}))(t)

	out, stderr, code := s.doctor(t, kc, "-n", "dr-report", "-o", "report", "--apply")
	if code != 1 || !strings.Contains(out, "applied openreports.io Report dr-report/"+ReportName+" (1 result)") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	rep, err := s.dyn.Resource(ReportGVR).Namespace("dr-report").Get(ctx, ReportName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Report is not in the cluster: %v", err)
	}
	results, _, _ := unstructured.NestedSlice(rep.Object, "results")
	if len(results) != 1 {
		t.Fatalf("Report holds %d results, want 1: %v", len(results), rep.Object)
	}
	r0 := results[0].(map[string]any)
	if r0["rule"] != CodeServiceOpaque || r0["result"] != "fail" || rep.GetLabels()[LabelReport] != "doctor" {
		t.Errorf("stored result %v, labels %v", r0, rep.GetLabels())
	}
	fail, _, _ := unstructured.NestedInt64(rep.Object, "summary", "fail")
	if fail != 1 {
		t.Errorf("summary.fail = %d, want 1", fail)
	}

	t.Run("a second run with findings replaces the report", func(t *testing.T) {
		must(s.cs.CoreV1().Services("dr-report").Create(ctx, service("dr-report", "postgres", nil, 5432), metav1.CreateOptions{}))(t)
		out, _, code := s.doctor(t, kc, "-n", "dr-report", "-o", "report", "--apply")
		if code != 1 || !strings.Contains(out, "(2 results)") {
			t.Fatalf("exit %d, stdout:\n%s", code, out)
		}
		rep := must(s.dyn.Resource(ReportGVR).Namespace("dr-report").Get(ctx, ReportName, metav1.GetOptions{}))(t)
		results, _, _ := unstructured.NestedSlice(rep.Object, "results")
		if len(results) != 2 {
			t.Errorf("Report holds %d results, want 2", len(results))
		}
	})

	t.Run("a clean run removes the report", func(t *testing.T) {
		for _, svc := range []struct{ name, port string }{{"mysql", "3306"}, {"postgres", "5432"}} {
			if _, _, err := s.c.Kubectl(ctx, nil, "annotate", "service", svc.name, "-n", "dr-report", "config.linkerd.io/opaque-ports="+svc.port); err != nil {
				t.Fatal(err)
			}
		}
		out, stderr, code := s.doctor(t, kc, "-n", "dr-report", "-o", "report", "--apply")
		if code != 0 || !strings.Contains(out, "deleted openreports.io Report dr-report/"+ReportName+" (no findings)") {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
		}
		if _, err := s.dyn.Resource(ReportGVR).Namespace("dr-report").Get(ctx, ReportName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the Report is still there (err %v)", err)
		}
	})
}

func TestDoctorUsageAndConnectionErrorsExit2(t *testing.T) {
	s := needE2E(t)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"an unknown output format", []string{"-o", "yaml"}, `-o "yaml": must be table, json or report`},
		{"-n together with -A", []string{"-n", "x", "-A"}, "-n and -A"},
		{"--apply without -o report", []string{"--apply"}, "use it with -o report"},
		{"a code --fix cannot fix", []string{"--fix", "policy_drift"}, "a restart fixes only"},
		{"a namespace that does not exist", []string{"-n", "no-such-namespace"}, "namespace no-such-namespace not found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, code := s.doctor(t, s.c.KubeconfigPath, tt.args...)
			if code != 2 || out != "" || !strings.Contains(stderr, tt.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 3 {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and %q", code, out, stderr, tt.want)
			}
		})
	}
	t.Run("an apiserver that does not answer", func(t *testing.T) {
		cfg := must(clientcmd.LoadFromFile(s.c.KubeconfigPath))(t)
		for _, c := range cfg.Clusters {
			c.Server = fmt.Sprintf("https://127.0.0.1:%d", cluster.FreePortForTest(t))
		}
		path := filepath.Join(t.TempDir(), "down.kubeconfig")
		if err := clientcmd.WriteToFile(*cfg, path); err != nil {
			t.Fatal(err)
		}
		out, stderr, code := s.doctor(t, path, "-A")
		if code != 2 || out != "" || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and one line", code, out, stderr)
		}
	})
}

func TestPrintScanWritesTheTableForTheDemo(t *testing.T) {
	s := needE2E(t)
	ctx := s.ctx(t)
	s.createNamespace(t, ctx, "dr-demo", nil, nil)
	must(s.cs.CoreV1().Services("dr-demo").Create(ctx, service("dr-demo", "smtp", nil, 25), metav1.CreateOptions{}))(t)
	var b bytes.Buffer
	r, err := PrintScan(ctx, s.c.RESTConfig, &b)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := keys(r)[key{CodeServiceOpaque, "Service", "dr-demo", "smtp", ""}]; !ok {
		t.Errorf("no finding for the SMTP Service: %+v", r.Findings)
	}
	row := false
	for _, line := range strings.Split(b.String(), "\n") {
		f := strings.Fields(line)
		row = row || len(f) > 3 && f[0] == CodeServiceOpaque && f[1] == "dr-demo" && f[2] == "Service/smtp"
	}
	if !row || !strings.HasPrefix(b.String(), "linkerd-inject-policy doctor -A (facts: ") {
		t.Errorf("no row for Service/smtp, or no facts line:\n%s", b.String())
	}
}
