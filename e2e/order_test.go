package e2e

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/standin/injector"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/webhook"
)

// Linkerd's proxy injector runs after us. A stand-in registered under
// Linkerd's configuration name (see e2e/standin/injector) records what the
// apiserver sends it and injects a proxy as the real one would (images that
// do not exist: no kubelet runs them); with reinvocationPolicy
// IfNeeded the apiserver then calls us again, and we must change nothing.
func TestAdmissionOrderWithLinkerdsInjector(t *testing.T) {
	s := need(t)
	t.Parallel()

	// The stand-in reads its own linkerd-config (2.20-style, native
	// sidecars), in a namespace of its own: our webhook, reading namespace
	// linkerd, keeps unknown facts here and decides as it always did.
	const linkerdNS = "standin-order-linkerd"
	s.installLinkerd(t, linkerdNS, linkerdConfig220)
	inj := s.startStandIn(t, linkerdNS)
	ns := s.standInNamespace(t, "order")

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
		if n := countProxies(jobPod); n != 0 {
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
			if n := countProxies(pod); n != 1 {
				t.Errorf("pod %s has %d proxy containers, want exactly the stand-in's one", pod.Name, n)
			}
			if _, native, _ := proxyOf(pod); !native {
				t.Errorf("pod %s: the stand-in's proxy is not a native sidecar (linkerd-config says nativeSidecar: true)", pod.Name)
			}
			if v := pod.Annotations[injector.ProxyVersionAnnotation]; v != "edge-26.8.3" {
				t.Errorf("pod %s: %s = %q, want the stand-in's edge-26.8.3: %v", pod.Name, injector.ProxyVersionAnnotation, v, pod.Annotations)
			}
			// Apart from the stand-in's annotations, the pod carries exactly
			// the template's annotations: neither pass of ours added,
			// duplicated or removed anything.
			template := s.ownerTemplateAnnotations(t, pod)
			got := map[string]string{}
			for k, v := range pod.Annotations {
				switch k {
				case injector.ProxyVersionAnnotation, injector.CreatedByAnnotation, injector.TrustRootSHAAnnotation:
				default:
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
