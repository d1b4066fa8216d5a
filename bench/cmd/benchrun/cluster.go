package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/webhook"
)

// podRun is the creation of N Pods through the real apiserver with one
// admission set-up.
type podRun struct {
	Variant string
	Pods    int
	Errors  int
	Patched int
	Elapsed time.Duration
	// Err says why this set-up could not be measured (peers only).
	Err string
}

func benchPod(namespace string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "db-", Namespace: namespace, Labels: map[string]string{"app": "db"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "mysql", Image: "mysql:8",
			Ports: []corev1.ContainerPort{{Name: "mysql", ContainerPort: 3306}},
		}}},
	}
}

// webhookCalls is the apiserver's count of calls to our webhook name.
func webhookCalls(ctx context.Context, cs kubernetes.Interface) (float64, error) {
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0, fmt.Errorf("apiserver metrics: %w", err)
	}
	prefix := "apiserver_admission_webhook_admission_duration_seconds_count{"
	var sum float64
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, prefix) || !strings.Contains(line, `name="`+webhook.WebhookName+`"`) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum, nil
}

// createPods creates n Pods with the given number of workers and times it.
func createPods(ctx context.Context, cs kubernetes.Interface, namespace string, n, workers int) (time.Duration, int) {
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if _, err := cs.CoreV1().Pods(namespace).Create(ctx, benchPod(namespace), metav1.CreateOptions{}); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start), int(failed.Load())
}

// admission is one way the apiserver is set up for a pod-creation run.
type admission struct {
	Name string
	// selfReady: setUp itself waits until the apiserver calls it.
	selfReady bool
	// setUp starts what is needed and registers it; it returns a tear-down.
	setUp func(ctx context.Context) (func(), error)
}

// measureCluster starts a real control plane and times the creation of n
// Pods under each admission set-up, in order.
func measureCluster(ctx context.Context, dir string, ours, noop serverKind, n, workers int, kyvernoDir string, progress io.Writer) ([]podRun, error) {
	c, err := cluster.Start(ctx, cluster.Options{Log: progress})
	if err != nil {
		return nil, err
	}
	defer c.Stop()
	rc := rest.CopyConfig(c.RESTConfig)
	// client-go's default 5 QPS would measure the client, not the apiserver.
	rc.QPS, rc.Burst = 5000, 5000
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}

	register := func(k serverKind, kubeconfig string) func(ctx context.Context) (func(), error) {
		return func(ctx context.Context) (func(), error) {
			certDir, _, err := certs(dir)
			if err != nil {
				return nil, err
			}
			ca, err := cluster.WriteServingCert(certDir, time.Now())
			if err != nil {
				return nil, err
			}
			r, err := k.start(ctx, dir, certDir, kubeconfig)
			if err != nil {
				return nil, err
			}
			cfg := webhook.MutatingWebhookConfiguration(webhook.RegistrationOptions{
				URL: r.url, CABundle: ca, FailurePolicy: admissionregistrationv1.Fail,
			})
			if err := c.ApplyWebhookConfiguration(ctx, cfg); err != nil {
				_ = r.p.Stop(10 * time.Second)
				return nil, err
			}
			return func() {
				_ = cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), cfg.Name, metav1.DeleteOptions{})
				_ = r.p.Stop(10 * time.Second)
			}, nil
		}
	}
	setups := []admission{
		{Name: "no webhook", setUp: func(context.Context) (func(), error) { return func() {}, nil }},
		{Name: "no-op webhook", setUp: register(noop, "")},
		{Name: "linkerd-inject-policy", setUp: register(ours, c.KubeconfigPath)},
	}
	if kyvernoDir != "" {
		setups = append(setups, kyvernoAdmission(dir, kyvernoDir, c, cs))
	}

	// Warm the apiserver and etcd up before the first measured run.
	if err := makeNamespace(ctx, cs, "bench-warmup"); err != nil {
		return nil, err
	}
	createPods(ctx, cs, "bench-warmup", min(n, 100), workers)

	var runs []podRun
	for i, s := range setups {
		ns := fmt.Sprintf("bench-%d", i)
		if err := makeNamespace(ctx, cs, ns); err != nil {
			return nil, err
		}
		fmt.Fprintf(progress, "benchrun: creating %d Pods with %s\n", n, s.Name)
		teardown, err := s.setUp(ctx)
		if err != nil && s.selfReady {
			// A peer that cannot run here is reported, not fatal.
			fmt.Fprintf(progress, "benchrun: %s could not run: %v\n", s.Name, err)
			runs = append(runs, podRun{Variant: s.Name, Err: err.Error()})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
		if s.Name != "no webhook" && !s.selfReady {
			if err := waitCalled(ctx, cs, ns, s.Name); err != nil {
				teardown()
				return nil, err
			}
		}
		elapsed, failed := createPods(ctx, cs, ns, n, workers)
		teardown()
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list pods: %w", err)
		}
		run := podRun{Variant: s.Name, Pods: len(list.Items), Errors: failed, Elapsed: elapsed}
		for _, p := range list.Items {
			if p.Annotations[policy.AnnotationOpaquePorts] != "" {
				run.Patched++
			}
		}
		runs = append(runs, run)
		// Wait until the registration is gone from the apiserver's view.
		time.Sleep(2 * time.Second)
	}
	return runs, nil
}

func makeNamespace(ctx context.Context, cs kubernetes.Interface, name string) error {
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	return nil
}

// waitCalled waits until the apiserver calls the newly registered webhook:
// a dry-run Pod create must raise the apiserver's call counter.
func waitCalled(ctx context.Context, cs kubernetes.Interface, ns, what string) error {
	return cluster.Poll(ctx, "the apiserver to call "+what, func(ctx context.Context) (bool, error) {
		before, err := webhookCalls(ctx, cs)
		if err != nil {
			return false, err
		}
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, benchPod(ns), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			return false, err
		}
		after, err := webhookCalls(ctx, cs)
		if err != nil {
			return false, err
		}
		return after > before, nil
	})
}
