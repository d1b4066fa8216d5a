package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// Every example scenario, created from examples/ with the real kubectl in one
// namespace that Linkerd would inject and that our policy enforces.
func TestEnforcedNamespace(t *testing.T) {
	s := need(t)
	t.Parallel()
	labels, annotations := meshedNamespace(policy.ModeEnforce)
	ns := s.namespace(t, "enforce", labels, annotations)

	t.Run("job pods made by the job controller are not meshed", func(t *testing.T) {
		s.apply(t, ns, "jobs/job.yaml")
		job := s.get(t, gvrJob, ns, "db-migrate")
		wantAnnotation(t, job, policy.AnnotationInject, "disabled")
		wantApplied(t, job, "jobs")
		pods := s.waitPods(t, ns, "job-name=db-migrate", 1)
		if k := ownerKind(pods[0].OwnerReferences); k != "Job" {
			t.Errorf("pod %s is owned by %q, want the Job (made by the controller manager)", pods[0].Name, k)
		}
		wantAnnotation(t, podObject(t, pods[0]), policy.AnnotationInject, "disabled")
	})

	t.Run("a cronjob's job pods are not meshed", func(t *testing.T) {
		s.apply(t, ns, "jobs/cronjob.yaml")
		cj := s.get(t, gvrCronJob, ns, "nightly-backup")
		wantAnnotation(t, cj, policy.AnnotationInject, "disabled")
		wantApplied(t, cj, "jobs")
		// The schedule is nightly: run it now, the way an operator would.
		// kubectl makes the Job from the stored jobTemplate, owned by the CronJob.
		s.kubectl(t, "", "create", "job", "-n", ns, "nightly-backup-now", "--from=cronjob/nightly-backup")
		job := s.get(t, gvrJob, ns, "nightly-backup-now")
		if k := ownerKind(job.GetOwnerReferences()); k != "CronJob" {
			t.Errorf("job owned by %q, want CronJob", k)
		}
		wantAnnotation(t, job, policy.AnnotationInject, "disabled")
		pods := s.waitPods(t, ns, "job-name=nightly-backup-now", 1)
		wantAnnotation(t, podObject(t, pods[0]), policy.AnnotationInject, "disabled")
	})

	t.Run("kube-prometheus-stack admission jobs are not meshed", func(t *testing.T) {
		s.apply(t, ns, "kube-prometheus-stack/")
		for _, name := range []string{"kube-prometheus-stack-admission-create", "kube-prometheus-stack-admission-patch"} {
			job := s.get(t, gvrJob, ns, name)
			wantAnnotation(t, job, policy.AnnotationInject, "disabled")
			pods := s.waitPods(t, ns, "job-name="+name, 1)
			wantAnnotation(t, podObject(t, pods[0]), policy.AnnotationInject, "disabled")
		}
	})

	t.Run("traefik pods run in ingress mode and skip outbound 443", func(t *testing.T) {
		s.apply(t, ns, "traefik/")
		dep := s.get(t, gvrDeployment, ns, "traefik")
		wantAnnotation(t, dep, policy.AnnotationInject, "ingress")
		wantList(t, dep, policy.AnnotationSkipOutboundPorts, "443")
		wantApplied(t, dep, "ingress")
		pods := s.waitPods(t, ns, "app.kubernetes.io/name=traefik", 1)
		if k := ownerKind(pods[0].OwnerReferences); k != "ReplicaSet" {
			t.Errorf("traefik pod owned by %q, want its ReplicaSet", k)
		}
		pod := podObject(t, pods[0])
		wantAnnotation(t, pod, policy.AnnotationInject, "ingress")
		wantList(t, pod, policy.AnnotationSkipOutboundPorts, "443")
	})

	t.Run("mysql and postgresql statefulsets and services carry their opaque ports", func(t *testing.T) {
		s.apply(t, ns, "mysql/")
		s.apply(t, ns, "postgresql/")
		for _, c := range []struct {
			sts      string
			services []string
			port     string
		}{
			{"mysql", []string{"mysql", "mysql-headless"}, "3306"},
			{"postgresql", []string{"postgresql", "postgresql-hl"}, "5432"},
		} {
			sts := s.get(t, gvrStatefulSet, ns, c.sts)
			wantList(t, sts, policy.AnnotationOpaquePorts, c.port)
			wantApplied(t, sts, "opaque-ports")
			for _, name := range c.services {
				wantList(t, s.get(t, gvrService, ns, name), policy.AnnotationOpaquePorts, c.port)
			}
			pods := s.waitPods(t, ns, "statefulset.kubernetes.io/pod-name="+c.sts+"-0", 1)
			wantList(t, podObject(t, pods[0]), policy.AnnotationOpaquePorts, c.port)
		}
	})

	t.Run("postfix deployment and service carry the smtp opaque ports", func(t *testing.T) {
		s.apply(t, ns, "postfix/")
		wantList(t, s.get(t, gvrDeployment, ns, "mail-postfix"), policy.AnnotationOpaquePorts, "25", "587")
		wantList(t, s.get(t, gvrService, ns, "mail-postfix"), policy.AnnotationOpaquePorts, "25", "587")
	})

	t.Run("eck resources and the pods eck makes keep their service account token", func(t *testing.T) {
		s.apply(t, ns, "eck/")
		es := s.get(t, gvrElasticsearch, ns, "efk")
		nodeSets, _, _ := unstructured.NestedSlice(es.Object, "spec", "nodeSets")
		if len(nodeSets) == 0 {
			t.Fatalf("Elasticsearch stored without nodeSets: %v", es.Object["spec"])
		}
		for _, n := range nodeSets {
			m, _ := n.(map[string]any)
			if v, _, _ := unstructured.NestedBool(m, "podTemplate", "spec", "automountServiceAccountToken"); !v {
				t.Errorf("Elasticsearch nodeSet %v: podTemplate.spec.automountServiceAccountToken not true", m["name"])
			}
		}
		wantApplied(t, es, "eck")
		kb := s.get(t, gvrKibana, ns, "efk")
		if v, _, _ := unstructured.NestedBool(kb.Object, "spec", "podTemplate", "spec", "automountServiceAccountToken"); !v {
			t.Errorf("Kibana: spec.podTemplate.spec.automountServiceAccountToken not true: %v", kb.Object["spec"])
		}
		pod := s.get(t, gvrPod, ns, "efk-es-default-0")
		if v, _, _ := unstructured.NestedBool(pod.Object, "spec", "automountServiceAccountToken"); !v {
			t.Errorf("ECK pod: spec.automountServiceAccountToken not true")
		}
		wantApplied(t, pod, "eck")
	})

	t.Run("node-exporter on the host network is not meshed", func(t *testing.T) {
		s.apply(t, ns, "node-exporter/")
		ds := s.get(t, gvrDaemonSet, ns, "kube-prometheus-stack-prometheus-node-exporter")
		wantAnnotation(t, ds, policy.AnnotationInject, "disabled")
		wantApplied(t, ds, "unmeshable")
	})

	t.Run("nginx is stored exactly as written", func(t *testing.T) {
		s.apply(t, ns, "nginx/")
		// The reference: the same manifest through the same apiserver (same
		// defaulting) in a namespace the webhook is never sent.
		ref := s.namespace(t, "no-webhook", map[string]string{"config.linkerd.io/admission-webhooks": "disabled"}, nil)
		out, _ := s.kubectl(t, "", "create", "-n", ref, "--dry-run=server", "-o", "json", "-f", s.example("nginx/"))
		items := decodeObjects(t, out)
		if len(items) == 0 {
			t.Fatalf("dry-run printed no objects:\n%s", out)
		}
		for _, w := range items {
			gvr := gvrDeployment
			if w.GetKind() == "Service" {
				gvr = gvrService
			}
			got := s.get(t, gvr, ns, w.GetName())
			if diff := compareIgnoringServerFields(got, w); diff != "" {
				t.Errorf("%s %s changed by admission: %s", w.GetKind(), w.GetName(), diff)
			}
		}
		pods := s.waitPods(t, ns, "app.kubernetes.io/name=web", 1)
		for k := range pods[0].Annotations {
			if strings.HasPrefix(k, "linkerd") {
				t.Errorf("nginx pod got annotation %s", k)
			}
		}
	})

	t.Run("longhorn's driver deployer is not meshed", func(t *testing.T) {
		// The example makes and uses its own namespace, longhorn-system.
		s.kubectl(t, "", "apply", "-f", s.example("longhorn/00-namespace.yaml"))
		s.kubectl(t, "", "apply", "-f", s.example("longhorn/driver-deployer.yaml"))
		dep := s.get(t, gvrDeployment, "longhorn-system", "longhorn-driver-deployer")
		wantAnnotation(t, dep, policy.AnnotationInject, "disabled")
		wantApplied(t, dep, "unmeshable")
	})
}

// decodeObjects reads kubectl's JSON output: one object, a List, or several
// objects one after the other.
func decodeObjects(t *testing.T, out string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("decode kubectl output: %v\n%s", err, out)
		}
		if items, ok := m["items"].([]any); ok && strings.HasSuffix(m["kind"].(string), "List") {
			for _, it := range items {
				objs = append(objs, &unstructured.Unstructured{Object: it.(map[string]any)})
			}
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs
}

// compareIgnoringServerFields compares two objects after dropping what the
// server sets per object (identity, timestamps, versions, status, field
// managers, kubectl's last-applied record) and the namespace.
func compareIgnoringServerFields(got, want *unstructured.Unstructured) string {
	clean := func(u *unstructured.Unstructured) map[string]any {
		c := u.DeepCopy()
		for _, f := range []string{"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "namespace"} {
			unstructured.RemoveNestedField(c.Object, "metadata", f)
		}
		unstructured.RemoveNestedField(c.Object, "status")
		ann := c.GetAnnotations()
		delete(ann, corev1.LastAppliedConfigAnnotation)
		delete(ann, "deployment.kubernetes.io/revision")
		if len(ann) == 0 {
			unstructured.RemoveNestedField(c.Object, "metadata", "annotations")
		} else {
			c.SetAnnotations(ann)
		}
		// Cluster IPs are allocated per Service.
		unstructured.RemoveNestedField(c.Object, "spec", "clusterIP")
		unstructured.RemoveNestedField(c.Object, "spec", "clusterIPs")
		return c.Object
	}
	// Compare as JSON: the two sides were decoded differently (int64 vs
	// float64 numbers), and json.Marshal sorts keys.
	gj, gerr := json.Marshal(clean(got))
	wj, werr := json.Marshal(clean(want))
	if gerr != nil || werr != nil {
		return fmt.Sprintf("encode: %v %v", gerr, werr)
	}
	if bytes.Equal(gj, wj) {
		return ""
	}
	return "stored:\n" + string(gj) + "\nwithout webhook:\n" + string(wj)
}

// A namespace the policy excludes is never even sent to the webhook: the
// registration's namespace selector keeps it out, so the audit log shows no
// call to us at all.
func TestExcludedNamespaces(t *testing.T) {
	s := need(t)
	t.Parallel()
	for _, ns := range []string{"kube-system", "linkerd-inject-policy"} {
		t.Run("a job in "+ns+" is never sent to the webhook and never mutated", func(t *testing.T) {
			if ns != "kube-system" {
				_, err := s.cs.CoreV1().Namespaces().Create(testCtx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
				if err != nil {
					t.Fatalf("create namespace %s: %v", ns, err)
				}
				if err := s.c.WaitForDefaultServiceAccount(testCtx(t), ns); err != nil {
					t.Fatal(err)
				}
			}
			s.apply(t, ns, "jobs/job.yaml")
			job := s.get(t, gvrJob, ns, "db-migrate")
			if v, ok := templateAnnotations(job)[policy.AnnotationInject]; ok {
				t.Errorf("job in excluded namespace %s got linkerd.io/inject=%s", ns, v)
			}
			if v, ok := job.GetAnnotations()[policy.AnnotationApplied]; ok {
				t.Errorf("job in excluded namespace %s got %s=%s", ns, policy.AnnotationApplied, v)
			}
			for _, e := range s.auditEvents(t, "the Job create in "+ns, createEvent("jobs", ns, "db-migrate", false)) {
				if calls := e.ourCalls(); len(calls) > 0 {
					t.Errorf("the apiserver called our webhook for %s: %+v", ns, calls)
				}
			}
		})
	}
}
