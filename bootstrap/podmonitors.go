package bootstrap

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// The PodMonitors Linkerd's docs give for an external Prometheus operator,
// in two generations. Guides often spell one field source_labels, which the
// CRD does not know (it would be dropped, and the job relabelling with it);
// here it is sourceLabels.
//
// podMonitorsAdminHTTP is the set for Linkerd before edge-25.6.3 (stable
// 2.18 and older): every control-plane admin port was named admin-http.
const podMonitorsAdminHTTP = `
- metadata:
    name: linkerd-controller
  spec:
    namespaceSelector:
      matchNames: [linkerd-viz, linkerd]
    selector:
      matchLabels: {}
    podMetricsEndpoints:
    - interval: 10s
      scrapeTimeout: 10s
      relabelings:
      - sourceLabels: [__meta_kubernetes_pod_container_port_name]
        action: keep
        regex: admin-http
      - sourceLabels: [__meta_kubernetes_pod_container_name]
        action: replace
        targetLabel: component
      - sourceLabels: [__address__]
        action: replace
        targetLabel: job
        replacement: linkerd-controller
- metadata:
    name: linkerd-service-mirror
  spec:
    namespaceSelector:
      any: true
    selector:
      matchLabels: {}
    podMetricsEndpoints:
    - interval: 10s
      scrapeTimeout: 10s
      relabelings:
      - sourceLabels: [__meta_kubernetes_pod_label_linkerd_io_control_plane_component, __meta_kubernetes_pod_container_port_name]
        action: keep
        regex: linkerd-service-mirror;admin-http$
      - sourceLabels: [__meta_kubernetes_pod_container_name]
        action: replace
        targetLabel: component
      - sourceLabels: [__address__]
        action: replace
        targetLabel: job
        replacement: linkerd-service-mirror
`

// podMonitorsAdmin is the set for edge-25.6.3 and later (stable 2.19+),
// as Linkerd's own PodMonitor template has it: control-plane admin ports
// are named dest-admin, spval-admin, policy-admin, ident-admin,
// injector-admin, …; those are kept by the .*-admin$ suffix and the
// proxy's linkerd-admin, scraped by linkerd-proxy, is dropped.
const podMonitorsAdmin = `
- metadata:
    name: linkerd-controller
  spec:
    namespaceSelector:
      matchNames: [linkerd, linkerd-viz]
    selector:
      matchLabels: {}
    podMetricsEndpoints:
    - interval: 10s
      scrapeTimeout: 10s
      relabelings:
      - sourceLabels: [__meta_kubernetes_pod_container_port_name]
        action: keep
        regex: .*-admin$
      - sourceLabels: [__meta_kubernetes_pod_container_port_name]
        action: drop
        regex: linkerd-admin
      - sourceLabels: [__meta_kubernetes_pod_container_name]
        action: replace
        targetLabel: component
- metadata:
    name: linkerd-multicluster-controller
  spec:
    namespaceSelector:
      any: true
    selector:
      matchLabels: {}
    podMetricsEndpoints:
    - interval: 10s
      scrapeTimeout: 10s
      relabelings:
      - sourceLabels: [__meta_kubernetes_pod_label_linkerd_io_control_plane_component, __meta_kubernetes_pod_container_port_name]
        action: keep
        regex: (linkerd-service-mirror|controller);.*-admin$
      - sourceLabels: [__meta_kubernetes_pod_container_port_name]
        action: drop
        regex: linkerd-admin
      - sourceLabels: [__meta_kubernetes_pod_container_name]
        action: replace
        targetLabel: component
`

// podMonitorProxy scrapes every meshed pod's proxy (port linkerd-admin of
// container linkerd-proxy), in both generations.
const podMonitorProxy = `
- metadata:
    name: linkerd-proxy
  spec:
    namespaceSelector:
      any: true
    selector:
      matchLabels: {}
    podMetricsEndpoints:
    - interval: 10s
      scrapeTimeout: 10s
      relabelings:
      - sourceLabels: [__meta_kubernetes_pod_container_name, __meta_kubernetes_pod_container_port_name, __meta_kubernetes_pod_label_linkerd_io_control_plane_ns]
        action: keep
        regex: ^linkerd-proxy;linkerd-admin;linkerd$
      - sourceLabels: [__meta_kubernetes_namespace]
        action: replace
        targetLabel: namespace
      - sourceLabels: [__meta_kubernetes_pod_name]
        action: replace
        targetLabel: pod
      - sourceLabels: [__meta_kubernetes_pod_label_linkerd_io_proxy_job]
        action: replace
        targetLabel: k8s_job
      - action: labeldrop
        regex: __meta_kubernetes_pod_label_linkerd_io_proxy_job
      - action: labelmap
        regex: __meta_kubernetes_pod_label_linkerd_io_proxy_(.+)
      - action: labeldrop
        regex: __meta_kubernetes_pod_label_linkerd_io_proxy_(.+)
      - action: labelmap
        regex: __meta_kubernetes_pod_label_linkerd_io_(.+)
      - action: labelmap
        regex: __meta_kubernetes_pod_label_(.+)
        replacement: __tmp_pod_label_$1
      - action: labelmap
        regex: __tmp_pod_label_linkerd_io_(.+)
        replacement: __tmp_pod_label_$1
      - action: labeldrop
        regex: __tmp_pod_label_linkerd_io_(.+)
      - action: labelmap
        regex: __tmp_pod_label_(.+)
      - sourceLabels: [__address__]
        action: replace
        targetLabel: job
        replacement: linkerd-proxy
`

// podMonitorSet says which PodMonitors suit a Linkerd version
// (linkerdVersion of the control-plane chart): "admin" from the release
// that renamed the admin ports (edge-25.6.3, stable 2.19), "admin-http" for
// older ones. An unrecognised version gets "admin": bootstrap installs
// current charts.
func podMonitorSet(version string) string {
	r := policy.ParseLinkerdVersion(version)
	if r.Known() && !r.Since(policy.Version{Major: 2, Minor: 19}, [3]int{25, 6, 3}) {
		return "admin-http"
	}
	return "admin"
}

// podMonitorObjects returns the PodMonitors in namespace, labelled
// the way kube-prometheus-stack selects them (release: kube-prometheus-stack is what that stack's
// Prometheus selects) and as bootstrap's.
func podMonitorObjects(namespace, set string) ([]*unstructured.Unstructured, error) {
	src := podMonitorsAdmin
	if set == "admin-http" {
		src = podMonitorsAdminHTTP
	}
	var items []map[string]any
	if err := yaml.Unmarshal([]byte(src+podMonitorProxy), &items); err != nil {
		return nil, fmt.Errorf("parse built-in PodMonitors: %w", err)
	}
	out := make([]*unstructured.Unstructured, 0, len(items))
	for _, it := range items {
		u := &unstructured.Unstructured{Object: it}
		u.SetAPIVersion("monitoring.coreos.com/v1")
		u.SetKind("PodMonitor")
		u.SetNamespace(namespace)
		u.SetLabels(map[string]string{"app": "linkerd", "release": "kube-prometheus-stack", ManagedByLabel: ManagedByValue})
		out = append(out, u)
	}
	return out, nil
}

func (r *runner) podMonitors(ctx context.Context) (string, error) {
	if r.c != nil && !r.hasPodMonitors {
		return "PodMonitors skipped (no Prometheus operator CRDs)", nil
	}
	set := podMonitorSet(linkerdVersion(r.controlPlane))
	objs, err := podMonitorObjects(r.o.PodMonitorNamespace, set)
	if err != nil {
		return "", err
	}
	if r.o.DryRun {
		if err := writeYAML(r.out, "viz PodMonitors", objs...); err != nil {
			return "", err
		}
		return fmt.Sprintf("%d PodMonitors (%s ports) rendered", len(objs), set), nil
	}
	if _, err := r.c.kube.CoreV1().Namespaces().Get(ctx, r.o.PodMonitorNamespace, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		return "", &Error{Problem: fmt.Sprintf("namespace %s for the PodMonitors does not exist", r.o.PodMonitorNamespace), Fix: "create it or pass --podmonitor-namespace of your Prometheus stack"}
	}
	counts := map[string]int{}
	for _, o := range objs {
		outcome, err := applyObject(ctx, r.c, podMonitorGVR, o)
		if err != nil {
			return "", err
		}
		counts[outcome]++
	}
	var parts []string
	for _, k := range []string{"created", "updated", "unchanged"} {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
		}
	}
	return fmt.Sprintf("PodMonitors (%s ports) in %s %s", set, r.o.PodMonitorNamespace, strings.Join(parts, ", ")), nil
}
