package doctor

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/certs"
)

// Fixtures model a cluster as the kubelet, the controllers and Linkerd's
// injector leave it (shared/linkerd/README.md): injected pods carry
// linkerd-proxy and linkerd.io/trust-root-sha256, the classic sidecar sits
// in containers, the native one in initContainers with restartPolicy Always.

const (
	currentBundle = "-----BEGIN CERTIFICATE-----\nnew anchor\n-----END CERTIFICATE-----"
	oldBundle     = "-----BEGIN CERTIFICATE-----\nold anchor\n-----END CERTIFICATE-----"
	linkerdValues = "linkerdVersion: edge-26.8.3\nproxy:\n  nativeSidecar: true\n  opaquePorts: 25,587,3306,4444,5432,6379,9300,11211\nidentity:\n  serviceAccountTokenProjection: true\n"
)

var always = corev1.ContainerRestartPolicyAlways

func newFakeClient(objs ...runtime.Object) *fake.Clientset {
	cs := fake.NewClientset(objs...)
	cs.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &version.Info{GitVersion: "v1.37.2", Major: "1", Minor: "37"}
	return cs
}

func namespace(name string, labels, annotations map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: annotations}}
}

func linkerdObjects(bundle string) []runtime.Object {
	return []runtime.Object{
		namespace("linkerd", map[string]string{LabelAdmissionWebhooks: "disabled"}, nil),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd", Name: "linkerd-config"}, Data: map[string]string{"values": linkerdValues}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd", Name: TrustRootsConfigMap}, Data: map[string]string{TrustRootsKey: bundle}},
	}
}

func controller(apiVersion, kind, name string) []metav1.OwnerReference {
	yes := true
	return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID("uid-" + name), Controller: &yes}}
}

func container(name, image string, ports ...int32) corev1.Container {
	c := corev1.Container{Name: name, Image: image}
	for _, p := range ports {
		c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: p})
	}
	return c
}

func podSpec(cs ...corev1.Container) corev1.PodSpec { return corev1.PodSpec{Containers: cs} }

func deployment(ns, name string, spec corev1.PodSpec) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}}, Spec: spec},
		},
	}
}

func replicaSet(ns, name, deploy string, spec corev1.PodSpec) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, OwnerReferences: controller("apps/v1", "Deployment", deploy)},
		Spec:       appsv1.ReplicaSetSpec{Template: corev1.PodTemplateSpec{Spec: spec}},
	}
}

func statefulSet(ns, name string, spec corev1.PodSpec) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       appsv1.StatefulSetSpec{Template: corev1.PodTemplateSpec{Spec: spec}},
	}
}

func cronJob(ns, name string, spec corev1.PodSpec) *batchv1.CronJob {
	spec.RestartPolicy = corev1.RestartPolicyNever
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", JobTemplate: batchv1.JobTemplateSpec{
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: spec}},
		}},
	}
}

func jobOf(ns, name, cron string, spec corev1.PodSpec) *batchv1.Job {
	spec.RestartPolicy = corev1.RestartPolicyNever
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, OwnerReferences: controller("batch/v1", "CronJob", cron)},
		Spec:       batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: spec}},
	}
}

func pod(ns, name string, owner []metav1.OwnerReference, spec corev1.PodSpec, phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, OwnerReferences: owner},
		Spec:       spec,
		Status:     corev1.PodStatus{Phase: phase},
	}
}

// injected adds what Linkerd's injector adds to a pod: the proxy (native
// sidecar or classic) and the trust-root annotation of bundle.
func injected(p *corev1.Pod, native bool, bundle string) *corev1.Pod {
	proxy := container(ProxyContainer, "cr.l5d.io/linkerd/proxy:edge-26.8.3", 4143, 4191)
	if native {
		proxy.RestartPolicy = &always
		p.Spec.InitContainers = append([]corev1.Container{proxy}, p.Spec.InitContainers...)
	} else {
		p.Spec.Containers = append([]corev1.Container{proxy}, p.Spec.Containers...)
	}
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations[AnnotationTrustRoot] = certs.TrustRootSHA256([]byte(bundle))
	p.Annotations["linkerd.io/proxy-version"] = "edge-26.8.3"
	return p
}

func running(name string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
}

func terminated(name string, code int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: "Completed"}}}
}

func service(ns, name string, annotations map[string]string, ports ...int32) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations}}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: p, TargetPort: intstr.FromInt32(p)})
	}
	return s
}

// clusterWithEverything holds one object for each finding and a healthy
// twin for each, named ok-… or living in a namespace that must stay quiet.
func clusterWithEverything() []runtime.Object {
	web := podSpec(container("web", "nginx:1.27", 80))
	mysql := podSpec(container("mysql", "mysql:8.4", 3306))
	backup := podSpec(container("backup", "busybox:1.36"))

	objs := linkerdObjects(currentBundle)
	objs = append(objs,
		namespace("apps", nil, map[string]string{"linkerd.io/inject": "enabled"}),
		namespace("jobs", nil, nil),
		namespace("legacy", nil, nil),
		namespace("audited", map[string]string{"linkerd-inject-policy.io/mode": "audit"}, nil),
		namespace("quiet", map[string]string{"linkerd-inject-policy.io/mode": "off"}, nil),
		namespace("kube-system", nil, map[string]string{"linkerd.io/inject": "enabled"}),

		// needs_restart: a Deployment's pod without a proxy in an
		// inject-enabled namespace.
		deployment("apps", "web", web),
		replicaSet("apps", "web-7d9f", "web", web),
		pod("apps", "web-7d9f-abcde", controller("apps/v1", "ReplicaSet", "web-7d9f"), web, corev1.PodRunning),
		// Healthy: the same Deployment's injected pod, an opted-out pod,
		// a hostNetwork pod, a finished pod.
		injected(pod("apps", "web-7d9f-fghij", controller("apps/v1", "ReplicaSet", "web-7d9f"), web, corev1.PodRunning), true, currentBundle),
		func() *corev1.Pod {
			p := pod("apps", "ok-opted-out", controller("apps/v1", "ReplicaSet", "web-7d9f"), web, corev1.PodRunning)
			p.Annotations = map[string]string{"linkerd.io/inject": "disabled"}
			return p
		}(),
		func() *corev1.Pod {
			s := web
			s.HostNetwork = true
			return pod("apps", "ok-host-network", controller("apps/v1", "ReplicaSet", "web-7d9f"), s, corev1.PodRunning)
		}(),
		pod("apps", "ok-finished", controller("apps/v1", "ReplicaSet", "web-7d9f"), web, corev1.PodSucceeded),

		// stale_trust_root: a StatefulSet's pod injected before the anchor
		// rotation.
		statefulSet("apps", "cache", web),
		injected(pod("apps", "cache-0", controller("apps/v1", "StatefulSet", "cache"), web, corev1.PodRunning), true, oldBundle),
		injected(pod("apps", "cache-1", controller("apps/v1", "StatefulSet", "cache"), web, corev1.PodRunning), true, currentBundle),

		// service_not_opaque, and its healthy twins.
		service("apps", "mysql", nil, 3306),
		service("apps", "ok-web", nil, 80),
		service("apps", "ok-postgres", map[string]string{"config.linkerd.io/opaque-ports": "5432"}, 5432),

		// job_stuck_on_proxy: a CronJob's Job whose pod runs the classic
		// sidecar; the CronJob itself is policy_drift (the jobs rule).
		cronJob("jobs", "backup", backup),
		jobOf("jobs", "backup-29000000", "backup", backup),
		func() *corev1.Pod {
			p := injected(pod("jobs", "backup-29000000-xk2p4", controller("batch/v1", "Job", "backup-29000000"), backup, corev1.PodRunning), false, currentBundle)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{running(ProxyContainer), terminated("backup", 0)}
			return p
		}(),
		// Healthy: a native sidecar's Job pod that completed, and one
		// whose work still runs.
		func() *corev1.Pod {
			p := injected(pod("jobs", "backup-28999000-ok", controller("batch/v1", "Job", "backup-29000000"), backup, corev1.PodSucceeded), true, currentBundle)
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{terminated(ProxyContainer, 0)}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("backup", 0)}
			return p
		}(),
		func() *corev1.Pod {
			p := injected(pod("jobs", "backup-29000000-busy", controller("batch/v1", "Job", "backup-29000000"), backup, corev1.PodRunning), false, currentBundle)
			p.Status.ContainerStatuses = []corev1.ContainerStatus{running(ProxyContainer), running("backup")}
			return p
		}(),

		// policy_drift in enforce (default mode) and audit.
		deployment("legacy", "mysql", mysql),
		deployment("audited", "mysql", mysql),
		// The annotation lint: inject on the Deployment's own metadata
		// (Linkerd reads only the template's), a value Linkerd ignores.
		func() *appsv1.Deployment {
			d := deployment("legacy", "misplaced", web)
			d.Annotations = map[string]string{"linkerd.io/inject": "enabled"}
			return d
		}(),
		func() *appsv1.Deployment {
			d := deployment("legacy", "invalid", web)
			d.Spec.Template.Annotations = map[string]string{"linkerd.io/inject": "yes"}
			return d
		}(),
		// Mode off: nothing, whatever it holds.
		deployment("quiet", "mysql", mysql),
		service("quiet", "mysql", nil, 3306),
		// Linkerd's injector skips kube-system: no needs_restart there.
		pod("kube-system", "ok-coredns", nil, web, corev1.PodRunning),
	)
	return objs
}
