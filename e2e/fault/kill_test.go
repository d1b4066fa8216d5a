package fault

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/webhook"
)

func newJob(namespace string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "load-", Namespace: namespace},
		Spec: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "main", Image: "busybox"}},
				},
			},
		},
	}
}

// patched reports whether our webhook changed the Job.
func patched(j *batchv1.Job) bool {
	return j.Spec.Template.Annotations[policy.AnnotationInject] == "disabled"
}

func TestKilledServerFailsOpenAndRecovers(t *testing.T) {
	c := cluster.StartForTest(t, cluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	const ns = "fault"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	certDir, _ := newCertDir(t)
	ca, err := cluster.WriteServingCert(certDir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, serverOptions{certDir: certDir, kubeconfig: c.KubeconfigPath})
	if err := c.ApplyWebhookConfiguration(ctx, webhook.MutatingWebhookConfiguration(webhook.RegistrationOptions{
		URL: s.url, CABundle: ca, FailurePolicy: admissionregistrationv1.Ignore, TimeoutSeconds: 5,
	})); err != nil {
		t.Fatal(err)
	}
	jobs := cs.BatchV1().Jobs(ns)
	// The apiserver picks up a new registration asynchronously: wait until a
	// dry-run create comes back patched.
	servesPatches := func(ctx context.Context) (bool, error) {
		j, err := jobs.Create(ctx, newJob(ns), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return false, err
		}
		return patched(j), nil
	}
	if err := cluster.Poll(ctx, "the apiserver to call the webhook", servesPatches); err != nil {
		t.Fatal(err)
	}

	const (
		total     = 150
		workers   = 8
		killAt    = 50  // SIGKILL the server once this many Jobs exist
		restartAt = 100 // and start it again once this many exist
	)
	var (
		created   atomic.Int64
		next      atomic.Int64
		mu        sync.Mutex
		createErr []error
		wg        sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= total {
				if _, err := jobs.Create(ctx, newJob(ns), metav1.CreateOptions{}); err != nil {
					mu.Lock()
					createErr = append(createErr, err)
					mu.Unlock()
					continue
				}
				created.Add(1)
			}
		})
	}
	waitCreated := func(n int64) {
		for created.Load() < n && ctx.Err() == nil {
			mu.Lock()
			failed := len(createErr)
			mu.Unlock()
			if int64(failed)+created.Load() >= total {
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	waitCreated(killAt)
	s.proc.Kill()
	t.Logf("server killed after %d Jobs", created.Load())
	waitCreated(restartAt)
	t.Logf("restarting the server after %d Jobs", created.Load())
	s.start(t)
	wg.Wait()

	for _, err := range createErr {
		t.Errorf("create failed while the webhook was down or restarting (failurePolicy Ignore must admit): %v", err)
	}
	list, err := jobs.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var yes, no int
	for i := range list.Items {
		if patched(&list.Items[i]) {
			yes++
		} else {
			no++
		}
	}
	t.Logf("%d Jobs: %d patched, %d admitted unchanged while the server was down", len(list.Items), yes, no)
	if len(list.Items) != total {
		t.Errorf("%d Jobs exist, want all %d admitted", len(list.Items), total)
	}
	if yes == 0 {
		t.Error("no Job was patched: the webhook never served during the load")
	}
	if no == 0 {
		t.Error("every Job was patched: the kill did not happen during the load")
	}
	// Ready again: new objects are patched.
	if err := cluster.Poll(ctx, "the restarted webhook to patch again", servesPatches); err != nil {
		t.Fatal(err)
	}
	j, err := jobs.Create(ctx, newJob(ns), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !patched(j) {
		t.Errorf("Job created after the restart is not patched: %v", j.Spec.Template.Annotations)
	}
	if got := fmt.Sprint(s.proc.Exited()); got != "false" {
		t.Errorf("restarted server exited:\n%s", s.log.tail(3000))
	}
}
