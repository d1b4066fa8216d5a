package bootstrap

import (
	"context"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

var (
	certificateGVR   = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "certificates"}
	issuerGVR        = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "issuers"}
	clusterIssuerGVR = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "clusterissuers"}
	podMonitorGVR    = schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "podmonitors"}
)

// applyObject server-side-applies obj (which must carry apiVersion, kind,
// name and namespace) and says whether that created, updated or left it as
// it was; an apply that changes nothing keeps the resourceVersion.
func applyObject(ctx context.Context, c *clients, gvr schema.GroupVersionResource, obj *unstructured.Unstructured) (string, error) {
	ri := c.dynamic.Resource(gvr).Namespace(obj.GetNamespace())
	what := fmt.Sprintf("%s %s/%s", obj.GetKind(), obj.GetNamespace(), obj.GetName())
	before, err := ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
	existed := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return "", fmt.Errorf("get %s: %w", what, err)
	}
	after, err := ri.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return "", fmt.Errorf("apply %s: %w", what, err)
	}
	switch {
	case !existed:
		return "created", nil
	case before.GetResourceVersion() == after.GetResourceVersion():
		return "unchanged", nil
	default:
		return "updated", nil
	}
}

// ensureNamespace creates a namespace with the labels and annotations the
// components in it need, or adds those missing from an existing one (never
// removing the user's). Only a namespace bootstrap created carries
// ManagedByLabel, so uninstall deletes only those.
func ensureNamespace(ctx context.Context, c *clients, name string, labels, annotations map[string]string) (string, error) {
	ns, err := c.kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l := map[string]string{ManagedByLabel: ManagedByValue}
		for k, v := range labels {
			l[k] = v
		}
		_, err := c.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l, Annotations: annotations},
		}, metav1.CreateOptions{FieldManager: FieldManager})
		if err != nil {
			return "", fmt.Errorf("create namespace %s: %w", name, err)
		}
		return "created", nil
	}
	if err != nil {
		return "", fmt.Errorf("get namespace %s: %w", name, err)
	}
	if ns.DeletionTimestamp != nil {
		return "", &Error{Problem: fmt.Sprintf("namespace %s is being deleted", name), Fix: "wait until it is gone (kubectl get namespace " + name + "), then run bootstrap again"}
	}
	patch := map[string]any{}
	if m := missing(ns.Labels, labels); len(m) > 0 {
		patch["labels"] = m
	}
	if m := missing(ns.Annotations, annotations); len(m) > 0 {
		patch["annotations"] = m
	}
	if len(patch) == 0 {
		return "unchanged", nil
	}
	body, err := yaml.Marshal(map[string]any{"metadata": patch})
	if err != nil {
		return "", err
	}
	body, err = yaml.YAMLToJSON(body)
	if err != nil {
		return "", err
	}
	if _, err := c.kube.CoreV1().Namespaces().Patch(ctx, name, types.MergePatchType, body, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		return "", fmt.Errorf("label namespace %s: %w", name, err)
	}
	return "updated", nil
}

func missing(have, want map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range want {
		if have[k] != v {
			out[k] = v
		}
	}
	return out
}

// namespaceManifest is what ensureNamespace would create, for --dry-run.
func namespaceManifest(name string, labels, annotations map[string]string) *unstructured.Unstructured {
	l := map[string]any{ManagedByLabel: ManagedByValue}
	for k, v := range labels {
		l[k] = v
	}
	meta := map[string]any{"name": name, "labels": l}
	if len(annotations) > 0 {
		a := map[string]any{}
		for k, v := range annotations {
			a[k] = v
		}
		meta["annotations"] = a
	}
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": meta}}
}

// writeYAML prints objects as a YAML stream, each after a comment saying
// where it comes from.
func writeYAML(w io.Writer, source string, objs ...*unstructured.Unstructured) error {
	for _, o := range objs {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return fmt.Errorf("render %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		fmt.Fprintf(w, "---\n# Source: bootstrap (%s)\n%s", source, strings.TrimRight(string(b), "\n")+"\n")
	}
	return nil
}

// toUnstructured converts a typed object for printing or applying.
func toUnstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("convert %T: %w", obj, err)
	}
	u := &unstructured.Unstructured{Object: m}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	return u, nil
}
