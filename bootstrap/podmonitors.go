package bootstrap

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// podMonitorsYAML are the PodMonitors that translate Linkerd's Prometheus
// scrape configuration for the Prometheus operator. Guides often spell one field source_labels, which the CRD does not know (it would be
// dropped, and the job relabelling with it); here it is sourceLabels.
const podMonitorsYAML = `
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

// podMonitorObjects returns the PodMonitors in namespace, labelled
// the way kube-prometheus-stack selects them (release: kube-prometheus-stack is what that stack's
// Prometheus selects) and as bootstrap's.
func podMonitorObjects(namespace string) ([]*unstructured.Unstructured, error) {
	var items []map[string]any
	if err := yaml.Unmarshal([]byte(podMonitorsYAML), &items); err != nil {
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
	objs, err := podMonitorObjects(r.o.PodMonitorNamespace)
	if err != nil {
		return "", err
	}
	if r.o.DryRun {
		if err := writeYAML(r.out, "viz PodMonitors", objs...); err != nil {
			return "", err
		}
		return fmt.Sprintf("%d PodMonitors rendered", len(objs)), nil
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
	return fmt.Sprintf("PodMonitors in %s %s", r.o.PodMonitorNamespace, strings.Join(parts, ", ")), nil
}
