package doctor

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/pager"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/certs"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// scan is one Run's state. Only what later kinds need is kept: the owner
// of every controlled workload (to resolve a pod's top-level workload) and
// the inject annotation of workload templates; objects themselves are
// checked as their page arrives and dropped.
type scan struct {
	ctx    context.Context
	client kubernetes.Interface
	opts   Options
	env    policy.Environment

	namespaces map[string]nsMeta
	// trustRoot is the sha256 of the current trust bundle ("" unknown).
	trustRoot string
	// owners maps a controlled workload to its controller.
	owners map[Ref]Ref
	// tmplAnn is the linkerd.io/inject value of each workload's template.
	tmplAnn map[Ref]string

	findings []Finding
	scanned  map[string]int
	notes    []string
}

type nsMeta struct {
	labels, annotations map[string]string
}

func (s *scan) run() error {
	if err := s.readNamespaces(); err != nil {
		return err
	}
	s.readTrustRoot()
	// Owners before what they own: ReplicaSets and Jobs index their
	// controllers for the pods listed last.
	steps := []func() error{
		s.listDeployments, s.listStatefulSets, s.listDaemonSets, s.listReplicaSets,
		s.listCronJobs, s.listJobs, s.listCustomKinds, s.listServices, s.listPods,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

func (s *scan) readNamespaces() error {
	s.namespaces = map[string]nsMeta{}
	if s.opts.Namespace != "" {
		ns, err := s.client.CoreV1().Namespaces().Get(s.ctx, s.opts.Namespace, metav1.GetOptions{})
		if err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("namespace %s not found", s.opts.Namespace)
			}
			return fmt.Errorf("get namespace %s: %w", s.opts.Namespace, err)
		}
		s.namespaces[ns.Name] = nsMeta{ns.Labels, ns.Annotations}
		s.scanned["Namespace"] = 1
		return nil
	}
	return s.list("Namespace", "namespaces", func(o metav1.ListOptions) (runtime.Object, error) {
		return s.client.CoreV1().Namespaces().List(s.ctx, o)
	}, func(obj runtime.Object) error {
		ns := obj.(*corev1.Namespace)
		s.namespaces[ns.Name] = nsMeta{ns.Labels, ns.Annotations}
		return nil
	})
}

func (s *scan) readTrustRoot() {
	ns := s.opts.LinkerdNamespace
	cm, err := s.client.CoreV1().ConfigMaps(ns).Get(s.ctx, TrustRootsConfigMap, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		s.notes = append(s.notes, fmt.Sprintf("no ConfigMap %s/%s: %s not checked", ns, TrustRootsConfigMap, CodeStaleTrustRoot))
	case apierrors.IsForbidden(err):
		s.notes = append(s.notes, fmt.Sprintf("not allowed to read ConfigMap %s/%s: %s not checked", ns, TrustRootsConfigMap, CodeStaleTrustRoot))
	case err != nil:
		s.notes = append(s.notes, fmt.Sprintf("read ConfigMap %s/%s: %v: %s not checked", ns, TrustRootsConfigMap, err, CodeStaleTrustRoot))
	default:
		bundle, ok := cm.Data[TrustRootsKey]
		if !ok {
			s.notes = append(s.notes, fmt.Sprintf("ConfigMap %s/%s has no key %s: %s not checked", ns, TrustRootsConfigMap, TrustRootsKey, CodeStaleTrustRoot))
			return
		}
		s.trustRoot = certs.TrustRootSHA256([]byte(bundle))
	}
}

// list pages through one kind, calling each for every item and writing
// one progress line per page.
func (s *scan) list(kind, resource string, page func(metav1.ListOptions) (runtime.Object, error), each func(runtime.Object) error) error {
	// The pager fetches pages in its own goroutine, ahead of each: it
	// counts for progress on its own.
	listed := 0
	p := pager.New(pager.SimplePageFunc(func(o metav1.ListOptions) (runtime.Object, error) {
		obj, err := page(o)
		if err == nil && s.opts.Progress != nil {
			listed += meta.LenList(obj)
			fmt.Fprintf(s.opts.Progress, "doctor: listed %s so far\n", plural(listed, resourceSingular(resource), resource))
		}
		return obj, err
	}))
	p.PageSize = s.opts.PageSize
	err := p.EachListItem(s.ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
		s.scanned[kind]++
		return each(obj)
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", resource, err)
	}
	return nil
}

func resourceSingular(resource string) string {
	switch resource {
	case "statefulsets", "daemonsets", "replicasets", "deployments", "cronjobs", "jobs", "services", "pods":
		return resource[:len(resource)-1]
	case "namespaces":
		return "namespace"
	case "elasticsearches":
		return "elasticsearch"
	case "kibanas":
		return "kibana"
	}
	return resource
}

func (s *scan) ns() string { return s.opts.Namespace }

func (s *scan) listDeployments() error {
	return s.list("Deployment", "deployments", func(o metav1.ListOptions) (runtime.Object, error) {
		return s.client.AppsV1().Deployments(s.ns()).List(s.ctx, o)
	}, func(obj runtime.Object) error {
		d := obj.(*appsv1.Deployment)
		d.APIVersion, d.Kind = "apps/v1", "Deployment"
		return s.workload(d, &d.ObjectMeta, d.Spec.Template.Annotations)
	})
}

func (s *scan) listStatefulSets() error {
	return s.list("StatefulSet", "statefulsets", func(o metav1.ListOptions) (runtime.Object, error) {
		return s.client.AppsV1().StatefulSets(s.ns()).List(s.ctx, o)
	}, func(obj runtime.Object) error {
		d := obj.(*appsv1.StatefulSet)
		d.APIVersion, d.Kind = "apps/v1", "StatefulSet"
		return s.workload(d, &d.ObjectMeta, d.Spec.Template.Annotations)
	})
}

func (s *scan) listDaemonSets() error {
	return s.list("DaemonSet", "daemonsets", func(o metav1.ListOptions) (runtime.Object, error) {
		return s.client.AppsV1().DaemonSets(s.ns()).List(s.ctx, o)
	}, func(obj runtime.Object) error {
		d := obj.(*appsv1.DaemonSet)
		d.APIVersion, d.Kind = "apps/v1", "DaemonSet"
		return s.workload(d, &d.ObjectMeta, d.Spec.Template.Annotations)
	})
}

func (s *scan) listReplicaSets() error {
	return s.list("ReplicaSet", "replicasets", func(o metav1.ListOptions) (runtime.Object, error) {
		return s.client.AppsV1().ReplicaSets(s.ns()).List(s.ctx, o)
	}, func(obj runtime.Object) error {
		d := obj.(*appsv1.ReplicaSet)
		d.APIVersion, d.Kind = "apps/v1", "ReplicaSet"
		return s.workload(d, &d.ObjectMeta, d.Spec.Template.Annotations)
	})
}

func (s *scan) listCronJobs() error {
	return s.list("CronJob", "cronjobs", func(o metav1.ListOptions) (runtime.Object, error) {
		return s.client.BatchV1().CronJobs(s.ns()).List(s.ctx, o)
	}, func(obj runtime.Object) error {
		d := obj.(*batchv1.CronJob)
		d.APIVersion, d.Kind = "batch/v1", "CronJob"
		return s.workload(d, &d.ObjectMeta, d.Spec.JobTemplate.Spec.Template.Annotations)
	})
}

func (s *scan) listJobs() error {
	return s.list("Job", "jobs", func(o metav1.ListOptions) (runtime.Object, error) {
		return s.client.BatchV1().Jobs(s.ns()).List(s.ctx, o)
	}, func(obj runtime.Object) error {
		d := obj.(*batchv1.Job)
		d.APIVersion, d.Kind = "batch/v1", "Job"
		return s.workload(d, &d.ObjectMeta, d.Spec.Template.Annotations)
	})
}

// listCustomKinds lists the policy's kinds outside the built-in groups
// (ECK's Elasticsearch and Kibana) in the version the apiserver prefers,
// when the caller gave a dynamic client and the CRD is installed. Without
// permission to list one, it is skipped with a note: these kinds are
// extras, not part of the read-only ClusterRole doctor needs.
func (s *scan) listCustomKinds() error {
	if s.opts.Dynamic == nil {
		return nil
	}
	var preferred map[string]string
	for _, k := range policy.Kinds() {
		if k.Group == "" || k.Group == "apps" || k.Group == "batch" {
			continue
		}
		if preferred == nil {
			groups, err := s.client.Discovery().ServerGroups()
			if err != nil {
				return fmt.Errorf("discover API groups: %w", err)
			}
			preferred = map[string]string{}
			for _, g := range groups.Groups {
				preferred[g.Name] = g.PreferredVersion.Version
			}
		}
		version, ok := preferred[k.Group]
		if !ok {
			continue
		}
		gvr := schema.GroupVersionResource{Group: k.Group, Version: version, Resource: k.Resource}
		err := s.list(k.Kind, k.Resource, func(o metav1.ListOptions) (runtime.Object, error) {
			return s.opts.Dynamic.Resource(gvr).Namespace(s.ns()).List(s.ctx, o)
		}, func(obj runtime.Object) error {
			u := obj.(*unstructured.Unstructured)
			ref := Ref{u.GetKind(), u.GetNamespace(), u.GetName()}
			if c := metav1.GetControllerOf(u); c != nil {
				s.owners[ref] = Ref{c.Kind, ref.Namespace, c.Name}
				return nil
			}
			return s.admit(u, ref, ref.Kind+"/"+ref.Name)
		})
		if apierrors.IsForbidden(err) {
			s.notes = append(s.notes, fmt.Sprintf("not allowed to list %s.%s: %s not checked", k.Resource, k.Group, k.Kind))
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *scan) listServices() error {
	return s.list("Service", "services", func(o metav1.ListOptions) (runtime.Object, error) {
		return s.client.CoreV1().Services(s.ns()).List(s.ctx, o)
	}, func(obj runtime.Object) error {
		svc := obj.(*corev1.Service)
		svc.APIVersion, svc.Kind = "v1", "Service"
		return s.admit(svc, Ref{"Service", svc.Namespace, svc.Name}, "")
	})
}

func (s *scan) listPods() error {
	return s.list("Pod", "pods", func(o metav1.ListOptions) (runtime.Object, error) {
		return s.client.CoreV1().Pods(s.ns()).List(s.ctx, o)
	}, func(obj runtime.Object) error {
		p := obj.(*corev1.Pod)
		p.APIVersion, p.Kind = "v1", "Pod"
		return s.pod(p)
	})
}

// workload records a workload's controller and template annotation and,
// for top-level ones, checks it against the policy.
func (s *scan) workload(obj runtime.Object, m *metav1.ObjectMeta, tmpl map[string]string) error {
	kind := obj.GetObjectKind().GroupVersionKind().Kind
	ref := Ref{kind, m.Namespace, m.Name}
	if v, ok := tmpl[policy.AnnotationInject]; ok {
		s.tmplAnn[ref] = v
	}
	if c := metav1.GetControllerOf(m); c != nil {
		s.owners[ref] = Ref{c.Kind, m.Namespace, c.Name}
		return nil
	}
	return s.admit(obj, ref, ref.Kind+"/"+ref.Name)
}

// topLevel follows controllers up from ref as far as the listed objects
// go: Pod → ReplicaSet → Deployment, Pod → Job → CronJob. ok is false for
// an object no controller owns.
func (s *scan) topLevel(m *metav1.ObjectMeta) (Ref, bool) {
	c := metav1.GetControllerOf(m)
	if c == nil {
		return Ref{}, false
	}
	ref := Ref{c.Kind, m.Namespace, c.Name}
	for range 8 { // ownership chains are short; a cycle must not hang
		up, ok := s.owners[ref]
		if !ok {
			break
		}
		ref = up
	}
	return ref, true
}
