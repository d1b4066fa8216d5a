package doctor

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

var scanTime = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func run(t *testing.T, opts Options, objs ...runtime.Object) Result {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return scanTime }
	}
	r, err := Run(context.Background(), newFakeClient(objs...), opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return r
}

// key is what a test asserts of a finding: code, object and owner.
type key struct{ code, kind, namespace, name, workload string }

func keys(r Result) map[key]Finding {
	m := map[key]Finding{}
	for _, f := range r.Findings {
		m[key{f.Code, f.Kind, f.Namespace, f.Name, f.Workload}] = f
	}
	return m
}

func TestRunReportsEachSituationWithItsOwnerAndNothingForHealthyObjects(t *testing.T) {
	r := run(t, Options{}, clusterWithEverything()...)
	got := keys(r)
	want := []struct {
		name string
		k    key
		fix  string
		says string
	}{
		{"a Deployment's pod without a proxy in an inject-enabled namespace needs a restart of the Deployment",
			key{CodeNeedsRestart, "Pod", "apps", "web-7d9f-abcde", "Deployment/web"}, "kubectl rollout restart deployment/web -n apps", "namespace apps"},
		{"a pod injected with the old trust bundle needs a restart of its StatefulSet",
			key{CodeStaleTrustRoot, "Pod", "apps", "cache-0", "StatefulSet/cache"}, "kubectl rollout restart statefulset/cache -n apps", "linkerd/linkerd-identity-trust-roots"},
		{"a MySQL Service without opaque-ports is not opaque",
			key{CodeServiceOpaque, "Service", "apps", "mysql", ""}, "kubectl annotate service mysql -n apps config.linkerd.io/opaque-ports=3306", "3306"},
		{"a Job pod whose container finished while the classic proxy runs is stuck, owned by its CronJob",
			key{CodeJobStuckOnProxy, "Pod", "jobs", "backup-29000000-xk2p4", "CronJob/backup"}, "kubectl delete job backup-29000000 -n jobs", "backup: exit 0"},
		{"the CronJob the jobs rule would change is drift",
			key{CodePolicyDrift, "CronJob", "jobs", "backup", "CronJob/backup"}, "kubectl get cronjob backup -n jobs -o yaml | linkerd-inject-policy check -f - | kubectl replace -f -", "jobs sets"},
		{"a MySQL Deployment created before the webhook is drift in enforce mode",
			key{CodePolicyDrift, "Deployment", "legacy", "mysql", "Deployment/mysql"}, "kubectl get deployment mysql -n legacy -o yaml | linkerd-inject-policy check -f - | kubectl replace -f -", "admitted before the webhook enforced"},
		{"inject on a Deployment's own metadata is misplaced",
			key{"misplaced_annotation", "Deployment", "legacy", "misplaced", "Deployment/misplaced"}, "kubectl edit deployment/misplaced -n legacy", "metadata.annotations[linkerd.io/inject]"},
		{"inject: yes in a template is invalid",
			key{"invalid_annotation", "Deployment", "legacy", "invalid", "Deployment/invalid"}, "kubectl edit deployment/invalid -n legacy", "spec.template.metadata.annotations[linkerd.io/inject]"},
		{"a MySQL Deployment in an audited namespace is drift in audit mode",
			key{CodePolicyDrift, "Deployment", "audited", "mysql", "Deployment/mysql"}, "", "audit mode"},
	}
	for _, w := range want {
		t.Run(w.name, func(t *testing.T) {
			f, ok := got[w.k]
			if !ok {
				t.Fatalf("no finding %+v; got %+v", w.k, r.Findings)
			}
			if w.fix != "" && f.Fix != w.fix {
				t.Errorf("fix = %q, want %q", f.Fix, w.fix)
			}
			if !strings.Contains(f.Message, w.says) {
				t.Errorf("message %q does not mention %q", f.Message, w.says)
			}
			delete(got, w.k)
		})
	}
	t.Run("nothing else is reported: not the healthy twins, mode off, or namespaces the injector skips", func(t *testing.T) {
		for k, f := range got {
			t.Errorf("unexpected finding %+v: %s", k, f.Message)
		}
	})
	if r.Summary.Findings != len(r.Findings) || r.Summary.ByCode[CodePolicyDrift] != 3 {
		t.Errorf("summary %+v does not count the findings", r.Summary)
	}
	if r.Summary.Scanned["Pod"] != 11 {
		t.Errorf("scanned %d pods, want 11", r.Summary.Scanned["Pod"])
	}
}

func TestJSONOutputIsStable(t *testing.T) {
	r := run(t, Options{}, clusterWithEverything()...)
	var b bytes.Buffer
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	golden(t, "doctor.json", b.Bytes())
}

func TestTableOutput(t *testing.T) {
	r := run(t, Options{Namespace: "apps"}, clusterWithEverything()...)
	var b bytes.Buffer
	if err := WriteTable(&b, r); err != nil {
		t.Fatal(err)
	}
	golden(t, "doctor-apps.txt", b.Bytes())
}

func TestReportOutput(t *testing.T) {
	r := run(t, Options{}, clusterWithEverything()...)
	var b bytes.Buffer
	if err := WriteReports(&b, r); err != nil {
		t.Fatal(err)
	}
	golden(t, "reports.yaml", b.Bytes())
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (review, then go test -update):\n--- got\n%s", path, got)
	}
}

func TestANamespacedRunSeesOnlyThatNamespace(t *testing.T) {
	r := run(t, Options{Namespace: "jobs"}, clusterWithEverything()...)
	if len(r.Findings) != 2 {
		t.Fatalf("got %d findings, want the stuck Job pod and its CronJob: %+v", len(r.Findings), r.Findings)
	}
	for _, f := range r.Findings {
		if f.Namespace != "jobs" {
			t.Errorf("finding outside namespace jobs: %+v", f)
		}
	}
}

func TestAScanOfAMissingNamespaceIsAnError(t *testing.T) {
	_, err := Run(context.Background(), newFakeClient(clusterWithEverything()...), Options{Namespace: "nope"})
	if err == nil || !strings.Contains(err.Error(), "namespace nope not found") {
		t.Fatalf("err = %v, want namespace nope not found", err)
	}
}

func TestWithoutLinkerdTheTrustRootIsNotCheckedAndANoteSaysSo(t *testing.T) {
	p := injected(pod("apps", "old", nil, podSpec(container("web", "nginx", 80)), corev1.PodRunning), true, oldBundle)
	r := run(t, Options{}, namespace("apps", nil, nil), p)
	if len(r.Findings) != 0 {
		t.Errorf("findings without a trust bundle to compare with: %+v", r.Findings)
	}
	notes := strings.Join(r.Summary.Notes, "\n")
	if !strings.Contains(notes, "no ConfigMap linkerd/linkerd-identity-trust-roots: stale_trust_root not checked") ||
		!strings.Contains(notes, "no ConfigMap linkerd/linkerd-config") {
		t.Errorf("notes = %q", notes)
	}
}

func TestANativeSidecarStillRunningAfterTheJobsWorkIsStuckToo(t *testing.T) {
	spec := podSpec(container("migrate", "busybox"))
	spec.RestartPolicy = corev1.RestartPolicyNever
	p := injected(pod("jobs", "migrate-x", controller("batch/v1", "Job", "migrate"), spec, corev1.PodRunning), true, currentBundle)
	p.Status.InitContainerStatuses = []corev1.ContainerStatus{running(ProxyContainer)}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("migrate", 1)}
	r := run(t, Options{}, append(linkerdObjects(currentBundle), namespace("jobs", nil, nil), p)...)
	f, ok := keys(r)[key{CodeJobStuckOnProxy, "Pod", "jobs", "migrate-x", "Job/migrate"}]
	if !ok {
		t.Fatalf("no job_stuck_on_proxy: %+v", r.Findings)
	}
	if !strings.Contains(f.Message, "native sidecar") || !strings.Contains(f.Message, "migrate: exit 1") {
		t.Errorf("message = %q", f.Message)
	}
}

func TestAWorkloadTemplateAskingForInjectionMakesItsOlderPodsNeedARestart(t *testing.T) {
	spec := podSpec(container("agent", "agent:1"))
	ds := statefulSet("ops", "agent", spec)
	ds.Spec.Template.Annotations = map[string]string{"linkerd.io/inject": "enabled"}
	p := pod("ops", "agent-0", controller("apps/v1", "StatefulSet", "agent"), spec, corev1.PodRunning)
	r := run(t, Options{}, append(linkerdObjects(currentBundle), namespace("ops", nil, nil), ds, p)...)
	f, ok := keys(r)[key{CodeNeedsRestart, "Pod", "ops", "agent-0", "StatefulSet/agent"}]
	if !ok {
		t.Fatalf("no needs_restart: %+v", r.Findings)
	}
	if !strings.Contains(f.Message, "the pod template of StatefulSet agent") {
		t.Errorf("message = %q", f.Message)
	}
}

func TestABarePodIsRecreatedNotRestarted(t *testing.T) {
	p := pod("apps", "lonely", nil, podSpec(container("web", "nginx", 80)), corev1.PodRunning)
	r := run(t, Options{}, append(linkerdObjects(currentBundle), namespace("apps", nil, map[string]string{"linkerd.io/inject": "enabled"}), p)...)
	f, ok := keys(r)[key{CodeNeedsRestart, "Pod", "apps", "lonely", ""}]
	if !ok {
		t.Fatalf("no needs_restart: %+v", r.Findings)
	}
	if f.Fix != "kubectl get pod lonely -n apps -o yaml | kubectl replace --force -f -" {
		t.Errorf("fix = %q", f.Fix)
	}
}

func TestListsArePaginatedAndProgressIsWritten(t *testing.T) {
	cs := newFakeClient(clusterWithEverything()...)
	var limits []int64
	// The fake ignores Limit; this reactor serves pods two at a time, the
	// way the apiserver pages, so a client that does not follow Continue
	// sees only the first page.
	cs.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		opts := a.(k8stesting.ListActionImpl).ListOptions
		limits = append(limits, opts.Limit)
		all, err := cs.Tracker().List(corev1.SchemeGroupVersion.WithResource("pods"), corev1.SchemeGroupVersion.WithKind("Pod"), a.GetNamespace())
		if err != nil {
			return true, nil, err
		}
		items := all.(*corev1.PodList).Items
		start := 0
		if opts.Continue != "" {
			start = len(opts.Continue)
		}
		end := min(start+int(opts.Limit), len(items))
		page := &corev1.PodList{Items: items[start:end]}
		if end < len(items) {
			page.Continue = strings.Repeat("x", end)
		}
		return true, page, nil
	})
	var progress bytes.Buffer
	r, err := Run(context.Background(), cs, Options{PageSize: 2, Progress: &progress, Now: func() time.Time { return scanTime }})
	if err != nil {
		t.Fatal(err)
	}
	if r.Summary.Scanned["Pod"] != 11 || len(limits) != 6 {
		t.Errorf("scanned %d pods in %d pages, want 11 in 6", r.Summary.Scanned["Pod"], len(limits))
	}
	for _, l := range limits {
		if l != 2 {
			t.Errorf("page limit %d, want 2", l)
		}
	}
	if !strings.Contains(progress.String(), "doctor: listed 2 pods so far\n") || !strings.Contains(progress.String(), "doctor: listed 11 pods so far\n") {
		t.Errorf("progress:\n%s", progress.String())
	}
}

func TestRestartIsADryRunUnlessYesAndNeverTouchesBarePods(t *testing.T) {
	objs := append(clusterWithEverything(), pod("apps", "lonely", nil, podSpec(container("web", "nginx", 80)), corev1.PodRunning))
	cs := newFakeClient(objs...)
	r, err := Run(context.Background(), cs, Options{Now: func() time.Time { return scanTime }})
	if err != nil {
		t.Fatal(err)
	}
	at := func() time.Time { return scanTime }
	cs.ClearActions()
	dry, err := Restart(context.Background(), cs, r, RestartCodes, false, at)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cs.Actions()); n != 0 {
		t.Errorf("a dry run made %d API calls: %v", n, cs.Actions())
	}
	want := []string{
		"would restart Deployment apps/web (needs_restart): kubectl rollout restart deployment/web -n apps  [dry run: add --yes]",
		"skipped Pod apps/lonely (needs_restart): not restarted here (only Deployments, StatefulSets and DaemonSets are); run: kubectl get pod lonely -n apps -o yaml | kubectl replace --force -f -",
		"would restart StatefulSet apps/cache (stale_trust_root): kubectl rollout restart statefulset/cache -n apps  [dry run: add --yes]",
	}
	if got := actionLines(dry); got != strings.Join(want, "\n") {
		t.Errorf("dry run:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}

	done, err := Restart(context.Background(), cs, r, []string{CodeNeedsRestart}, true, at)
	if err != nil {
		t.Fatal(err)
	}
	if got := actionLines(done); !strings.Contains(got, "restarted Deployment apps/web (needs_restart)") || strings.Contains(got, "cache") {
		t.Errorf("restart:\n%s", got)
	}
	d, err := cs.AppsV1().Deployments("apps").Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Template.Annotations[RestartedAtAnnotation]; got != "2026-12-01T12:00:00Z" {
		t.Errorf("template annotation %s = %q", RestartedAtAnnotation, got)
	}
	for _, a := range cs.Actions() {
		if a.GetVerb() == "patch" && a.GetResource().Resource != "deployments" {
			t.Errorf("patched %s", a.GetResource().Resource)
		}
		if a.GetVerb() == "delete" {
			t.Errorf("deleted %s", a.GetResource().Resource)
		}
	}
}

func actionLines(as []FixAction) string {
	var lines []string
	for _, a := range as {
		lines = append(lines, a.String())
	}
	return strings.Join(lines, "\n")
}

func TestParseFixCodes(t *testing.T) {
	for _, tt := range []struct {
		name, in, want, err string
	}{
		{"two codes are read in order", "needs_restart, stale_trust_root", "needs_restart,stale_trust_root", ""},
		{"a repeated code counts once", "needs_restart,needs_restart", "needs_restart", ""},
		{"a code a restart does not fix is refused", "policy_drift", "", "a restart fixes only needs_restart, stale_trust_root"},
		{"an empty list is refused", ",", "", "name the codes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFixCodes(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || strings.Join(got, ",") != tt.want {
				t.Fatalf("got %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestReportsGroupFindingsByNamespace(t *testing.T) {
	r := run(t, Options{}, clusterWithEverything()...)
	reports, cluster := Reports(r)
	if cluster != nil {
		t.Errorf("a ClusterReport without cluster-scoped findings")
	}
	var got []string
	for _, rep := range reports {
		got = append(got, rep.Namespace)
		if rep.Name != ReportName || rep.Labels[LabelReport] != "doctor" {
			t.Errorf("report %s/%s labels %v", rep.Namespace, rep.Name, rep.Labels)
		}
		if rep.Summary.Fail+rep.Summary.Warn != len(rep.Results) {
			t.Errorf("report %s: summary %+v for %d results", rep.Namespace, rep.Summary, len(rep.Results))
		}
		for _, res := range rep.Results {
			if len(res.Subjects) != 1 || res.Subjects[0].Namespace != rep.Namespace || res.Rule == "" || res.Timestamp.Seconds != scanTime.Unix() {
				t.Errorf("result %+v", res)
			}
		}
	}
	if strings.Join(got, ",") != "apps,audited,jobs,legacy" {
		t.Errorf("reports in %v", got)
	}
}

func TestAPodThePolicyWouldKeepOutOfTheMeshDoesNotNeedARestart(t *testing.T) {
	spec := podSpec(container("deployer", "longhornio/longhorn-manager:v1.7"))
	objs := append(linkerdObjects(currentBundle),
		namespace("longhorn-system", nil, map[string]string{"linkerd.io/inject": "enabled"}),
		deployment("longhorn-system", "longhorn-driver-deployer", spec),
		replicaSet("longhorn-system", "longhorn-driver-deployer-5d8f", "longhorn-driver-deployer", spec),
		pod("longhorn-system", "longhorn-driver-deployer-5d8f-x1", controller("apps/v1", "ReplicaSet", "longhorn-driver-deployer-5d8f"), spec, corev1.PodRunning),
	)
	r := run(t, Options{}, objs...)
	for _, f := range r.Findings {
		if f.Code == CodeNeedsRestart {
			t.Errorf("needs_restart for a pod the unmeshable rule disables: %+v", f)
		}
	}
	// The Deployment itself is drift: the rule would write disabled on its
	// template, which is what keeps the next pod out.
	if _, ok := keys(r)[key{CodePolicyDrift, "Deployment", "longhorn-system", "longhorn-driver-deployer", "Deployment/longhorn-driver-deployer"}]; !ok {
		t.Errorf("no drift for the Deployment: %+v", r.Findings)
	}
}

func TestAJobsPodWithoutAProxyIsNotRestarted(t *testing.T) {
	spec := podSpec(container("migrate", "busybox"))
	objs := append(linkerdObjects(currentBundle),
		namespace("apps", nil, map[string]string{"linkerd.io/inject": "enabled"}),
		pod("apps", "migrate-x", controller("batch/v1", "Job", "migrate"), spec, corev1.PodRunning),
	)
	for _, f := range run(t, Options{}, objs...).Findings {
		t.Errorf("finding for a running Job pod without a proxy: %+v", f)
	}
}

func TestAFindingOnAClusterScopedObjectGoesToTheClusterReport(t *testing.T) {
	r := Result{Time: scanTime, Findings: []Finding{
		{Code: "unknown_annotation", Kind: "Namespace", Name: "shop", Message: "m", Fix: "f"},
		{Code: CodeNeedsRestart, Kind: "Pod", Namespace: "shop", Name: "web-1", Workload: "Deployment/web", Message: "m", Fix: "f"},
	}}
	reports, cluster := Reports(r)
	if cluster == nil || len(cluster.Results) != 1 || cluster.Results[0].Subjects[0].Kind != "Namespace" || cluster.Summary.Warn != 1 {
		t.Fatalf("cluster report %+v", cluster)
	}
	if cluster.Kind != "ClusterReport" || cluster.Namespace != "" || cluster.Name != ReportName {
		t.Errorf("cluster report meta %+v %+v", cluster.TypeMeta, cluster.ObjectMeta)
	}
	if len(reports) != 1 || reports[0].Namespace != "shop" || reports[0].Summary.Fail != 1 || reports[0].Results[0].Properties["workload"] != "Deployment/web" {
		t.Errorf("namespace reports %+v", reports)
	}
}
