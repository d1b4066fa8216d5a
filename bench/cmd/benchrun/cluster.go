package main

import (
	"context"
	"encoding/json"
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

	"github.com/linkerd-inject-policy/linkerd-inject-policy/bench"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/bench/proc"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/webhook"
)

// podRun is the creation of N Pods through the real apiserver with one
// admission set-up.
type podRun struct {
	Variant string
	Round   int
	Pods    int
	Errors  int
	Patched int
	Elapsed time.Duration
	// CPU of the webhook's process while the Pods were created (0: none
	// or not known).
	CPU time.Duration
	// Err says why this set-up could not be measured (peers only).
	Err string
}

// podReview is the AdmissionReview of a benchmark Pod as the apiserver
// sends it (the patch depends only on what the Pod declares, not on the
// defaults the apiserver fills in).
func podReview() []byte {
	pod := benchPod("bench")
	pod.APIVersion, pod.Kind = "v1", "Pod"
	raw, err := json.Marshal(pod)
	if err != nil {
		panic(err) // a literal Pod always encodes
	}
	return bench.Review(bench.Object{Name: "Pod", Version: "v1", Kind: "Pod", Resource: "pods", Namespace: "bench", JSON: raw}, "0f7a4a4e-0000-4000-8000-000000000003")
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
	// setUp registers it (and starts what it needs); it returns a
	// tear-down and the pid of the webhook's process (0: none).
	setUp func(ctx context.Context) (func(), int, error)
}

// measureCluster starts a real control plane and times the creation of n
// Pods under each admission set-up. Our webhook and the two no-ops are
// started once and registered in turn, round after round, so a change in
// the machine's background load hits them alike; Kyverno (a peer that
// registers itself) runs its rounds after them.
func measureCluster(ctx context.Context, dir string, ours, noop, patching serverKind, n, workers, rounds int, kyvernoDir string, progress io.Writer) ([]podRun, error) {
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

	// Warm the apiserver and etcd up before the first measured run.
	if err := makeNamespace(ctx, cs, "bench-warmup"); err != nil {
		return nil, err
	}
	createPods(ctx, cs, "bench-warmup", min(n, 100), workers)

	start := func(k serverKind, kubeconfig string) (admission, func(), error) {
		certDir, _, err := certs(dir)
		if err != nil {
			return admission{}, nil, err
		}
		ca, err := cluster.WriteServingCert(certDir, time.Now())
		if err != nil {
			return admission{}, nil, err
		}
		r, err := k.start(ctx, dir, certDir, kubeconfig)
		if err != nil {
			return admission{}, nil, err
		}
		cfg := webhook.MutatingWebhookConfiguration(webhook.RegistrationOptions{
			URL: r.url, CABundle: ca, FailurePolicy: admissionregistrationv1.Fail,
		})
		a := admission{Name: k.Name, setUp: func(ctx context.Context) (func(), int, error) {
			if err := c.ApplyWebhookConfiguration(ctx, cfg); err != nil {
				return nil, 0, err
			}
			return func() {
				_ = cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), cfg.Name, metav1.DeleteOptions{})
			}, r.p.Pid(), nil
		}}
		return a, func() { _ = r.p.Stop(10 * time.Second) }, nil
	}
	setups := []admission{{Name: "no webhook", setUp: func(context.Context) (func(), int, error) { return func() {}, 0, nil }}}
	for _, s := range []struct {
		k          serverKind
		kubeconfig string
	}{{noop, ""}, {patching, ""}, {ours, c.KubeconfigPath}} {
		a, stop, err := start(s.k, s.kubeconfig)
		if err != nil {
			return nil, err
		}
		defer stop()
		setups = append(setups, a)
	}

	var runs []podRun
	measure := func(s admission, round int, teardown func(), pid int) error {
		ns := fmt.Sprintf("bench-%d-%d", round, len(runs))
		if err := makeNamespace(ctx, cs, ns); err != nil {
			return err
		}
		if s.Name != "no webhook" && !s.selfReady {
			if err := waitCalled(ctx, cs, ns, s.Name, true); err != nil {
				return err
			}
		}
		fmt.Fprintf(progress, "benchrun: round %d: creating %d Pods with %s\n", round, n, s.Name)
		var cpu0, cpu1 time.Duration
		if pid != 0 {
			cpu0, _ = proc.ReadCPU(pid)
		}
		elapsed, failed := createPods(ctx, cs, ns, n, workers)
		if pid != 0 {
			cpu1, _ = proc.ReadCPU(pid)
		}
		if teardown != nil {
			teardown()
			// Gone from the apiserver's view before the next set-up.
			if s.Name != "no webhook" && !s.selfReady {
				if err := waitCalled(ctx, cs, ns, s.Name, false); err != nil {
					return err
				}
			}
		}
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list pods: %w", err)
		}
		run := podRun{Variant: s.Name, Round: round, Pods: len(list.Items), Errors: failed, Elapsed: elapsed, CPU: cpu1 - cpu0}
		for _, p := range list.Items {
			if p.Annotations[policy.AnnotationOpaquePorts] != "" {
				run.Patched++
			}
		}
		runs = append(runs, run)
		return nil
	}
	for round := 1; round <= rounds; round++ {
		for _, s := range setups {
			teardown, pid, err := s.setUp(ctx)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.Name, err)
			}
			if err := measure(s, round, teardown, pid); err != nil {
				teardown()
				return nil, err
			}
		}
	}
	if kyvernoDir != "" {
		k := kyvernoAdmission(dir, kyvernoDir, c, cs)
		fmt.Fprintf(progress, "benchrun: starting %s\n", k.Name)
		teardown, pid, err := k.setUp(ctx)
		if err != nil {
			// A peer that cannot run here is reported, not fatal.
			fmt.Fprintf(progress, "benchrun: %s could not run: %v\n", k.Name, err)
			runs = append(runs, podRun{Variant: k.Name, Err: err.Error()})
			return runs, nil
		}
		for round := 1; round <= rounds; round++ {
			if err := measure(k, round, nil, pid); err != nil {
				teardown()
				return nil, err
			}
		}
		teardown()
	}
	return runs, nil
}

func makeNamespace(ctx context.Context, cs kubernetes.Interface, name string) error {
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	return nil
}

// waitCalled waits until the apiserver calls the registered webhook (want
// true) or no longer calls it (want false): a dry-run Pod create must raise
// the apiserver's call counter, or leave it alone.
func waitCalled(ctx context.Context, cs kubernetes.Interface, ns, what string, want bool) error {
	goal := "the apiserver to call " + what
	if !want {
		goal = "the apiserver to stop calling " + what
	}
	return cluster.Poll(ctx, goal, func(ctx context.Context) (bool, error) {
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
		return (after > before) == want, nil
	})
}
