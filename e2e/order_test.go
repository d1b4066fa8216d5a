package e2e

import (
	"context"
	"crypto/tls"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/standin/injector"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/webhook"
)

// Linkerd's proxy injector runs after us. A stand-in registered under
// Linkerd's configuration name (see e2e/standin/injector) records what the
// apiserver sends it and injects a fake proxy; with reinvocationPolicy
// IfNeeded the apiserver then calls us again, and we must change nothing.
func TestAdmissionOrderWithLinkerdsInjector(t *testing.T) {
	s := need(t)
	t.Parallel()
	ctx := testCtx(t)

	inj := injector.New(func(ctx context.Context, ns string) (map[string]string, error) {
		n, err := s.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return n.Annotations, nil
	})
	certDir := t.TempDir()
	ca, err := cluster.WriteServingCert(certDir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(inj)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	labels, annotations := meshedNamespace(policy.ModeEnforce)
	labels[labelStandIn] = "true"
	ns := s.namespace(t, "order", labels, annotations)
	reg := injector.Registration(srv.URL+"/", ca, &metav1.LabelSelector{MatchLabels: map[string]string{labelStandIn: "true"}})
	if err := s.c.ApplyWebhookConfiguration(ctx, reg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), injector.ConfigurationName, metav1.DeleteOptions{})
	})
	// Wait until the apiserver calls the stand-in.
	if err := cluster.Poll(ctx, "the stand-in injector to be called", func(ctx context.Context) (bool, error) {
		if _, err := s.dryRunJob(ctx, ns, nil); err != nil {
			return false, err
		}
		return len(inj.Records()) > 0, nil
	}); err != nil {
		t.Fatal(err)
	}

	s.apply(t, ns, "jobs/job.yaml")
	s.apply(t, ns, "traefik/")
	s.apply(t, ns, "mysql/")
	jobPod := s.waitPods(t, ns, "job-name=db-migrate", 1)[0]
	traefikPod := s.waitPods(t, ns, "app.kubernetes.io/name=traefik", 1)[0]
	mysqlPod := s.waitPods(t, ns, "statefulset.kubernetes.io/pod-name=mysql-0", 1)[0]

	// find returns the stand-in's record of the create of kind/name (a
	// prefix for Pods named by their controller).
	find := func(t *testing.T, kind, name string) injector.Record {
		t.Helper()
		for _, r := range inj.Records() {
			if r.Kind == kind && r.Namespace == ns && r.Operation == "CREATE" && strings.HasPrefix(r.Name, name) && !isDryRunProbe(r) {
				return r
			}
		}
		t.Fatalf("the stand-in injector never saw %s %s in %s", kind, name, ns)
		return injector.Record{}
	}

	t.Run("linkerd's injector sees the job and its pods already disabled", func(t *testing.T) {
		for _, r := range []injector.Record{find(t, "Job", "db-migrate"), find(t, "Pod", "db-migrate-")} {
			if got := r.Annotations[policy.AnnotationInject]; got != "disabled" {
				t.Errorf("stand-in received %s %s with linkerd.io/inject=%q, want disabled", r.Kind, r.Name, got)
			}
		}
		if r := find(t, "Pod", "db-migrate-"); r.Injected {
			t.Errorf("stand-in injected the Job's pod")
		}
		if n := countContainers(jobPod, injector.ProxyContainerName); n != 0 {
			t.Errorf("job pod has %d proxy containers, want 0", n)
		}
	})

	t.Run("linkerd's injector sees traefik already in ingress mode", func(t *testing.T) {
		for _, r := range []injector.Record{find(t, "Deployment", "traefik"), find(t, "Pod", "traefik-")} {
			if got := r.Annotations[policy.AnnotationInject]; got != "ingress" {
				t.Errorf("stand-in received %s %s with linkerd.io/inject=%q, want ingress", r.Kind, r.Name, got)
			}
			if got := r.Annotations[policy.AnnotationSkipOutboundPorts]; !strings.Contains(got, "443") {
				t.Errorf("stand-in received %s %s with skip-outbound-ports=%q, want 443 in it", r.Kind, r.Name, got)
			}
		}
		if !find(t, "Pod", "traefik-").Injected {
			t.Errorf("stand-in did not inject traefik's pod (ingress mode is injected)")
		}
	})

	t.Run("linkerd's injector sees mysql's opaque ports", func(t *testing.T) {
		for _, r := range []injector.Record{find(t, "StatefulSet", "mysql"), find(t, "Service", "mysql"), find(t, "Pod", "mysql-0")} {
			if got := r.Annotations[policy.AnnotationOpaquePorts]; !strings.Contains(got, "3306") && !rangeCovers(got, "3306") {
				t.Errorf("stand-in received %s %s with opaque-ports=%q, want 3306 in it", r.Kind, r.Name, got)
			}
		}
	})

	t.Run("after the injector's change we neither undo nor duplicate anything", func(t *testing.T) {
		for _, pod := range []corev1.Pod{traefikPod, mysqlPod} {
			if n := countContainers(pod, injector.ProxyContainerName); n != 1 {
				t.Errorf("pod %s has %d proxy containers, want exactly the stand-in's one", pod.Name, n)
			}
			if pod.Annotations[injector.ProxyVersionAnnotation] != injector.ProxyVersion {
				t.Errorf("pod %s lost the stand-in's annotation: %v", pod.Name, pod.Annotations)
			}
			// Apart from the stand-in's annotation, the pod carries exactly
			// the template's annotations: neither pass of ours added,
			// duplicated or removed anything.
			template := s.ownerTemplateAnnotations(t, pod)
			got := map[string]string{}
			for k, v := range pod.Annotations {
				if k != injector.ProxyVersionAnnotation {
					got[k] = v
				}
			}
			if !equalMaps(got, template) {
				t.Errorf("pod %s annotations differ from its template's:\npod      %v\ntemplate %v", pod.Name, got, template)
			}
			// The apiserver reinvoked us after the stand-in's change; our
			// reinvocation mutated nothing.
			events := s.auditEvents(t, "the create of pod "+pod.Name, createEvent("pods", ns, pod.Name, false))
			for _, e := range events {
				calls := e.calls()
				var reinvoked bool
				for _, c := range calls {
					if c.Configuration == webhook.ConfigurationName && strings.HasPrefix(c.Key, "round_1") {
						reinvoked = true
					}
					if c.Configuration == webhook.ConfigurationName && c.Mutated {
						t.Errorf("our webhook mutated pod %s made from a patched template: %+v", pod.Name, c)
					}
				}
				if !reinvoked {
					t.Errorf("pod %s: the apiserver did not reinvoke our webhook after the injector; calls: %+v", pod.Name, calls)
				}
				if len(calls) < 2 || calls[0].Configuration != webhook.ConfigurationName || calls[1].Configuration != injector.ConfigurationName {
					t.Errorf("pod %s: admission order %+v, want ours first, then Linkerd's", pod.Name, calls)
				}
			}
		}
	})
}

func countContainers(p corev1.Pod, name string) int {
	n := 0
	for _, c := range p.Spec.Containers {
		if c.Name == name {
			n++
		}
	}
	return n
}

// isDryRunProbe tells the readiness probes (generateName "probe-") apart.
func isDryRunProbe(r injector.Record) bool { return strings.HasPrefix(r.Name, "probe-") }

// ownerTemplateAnnotations returns the pod template annotations of the
// ReplicaSet or StatefulSet that made pod.
func (s *suite) ownerTemplateAnnotations(t *testing.T, pod corev1.Pod) map[string]string {
	t.Helper()
	for _, ref := range pod.OwnerReferences {
		switch ref.Kind {
		case "ReplicaSet":
			rs, err := s.cs.AppsV1().ReplicaSets(pod.Namespace).Get(testCtx(t), ref.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return rs.Spec.Template.Annotations
		case "StatefulSet":
			sts, err := s.cs.AppsV1().StatefulSets(pod.Namespace).Get(testCtx(t), ref.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return sts.Spec.Template.Annotations
		}
	}
	t.Fatalf("pod %s has no ReplicaSet or StatefulSet owner", pod.Name)
	return nil
}
