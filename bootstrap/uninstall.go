package bootstrap

import (
	"context"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Uninstall removes what Run installed, in reverse order: the webhook, viz
// and its PodMonitors, the control plane, the CRDs, the identity objects
// bootstrap made, and the namespaces bootstrap created. Namespaces that
// existed before bootstrap (without ManagedByLabel) and everything else in
// them stay. Missing pieces are skipped, so it can be re-run.
func Uninstall(ctx context.Context, opts Options, w io.Writer) error {
	o := opts
	if o.PodMonitorNamespace == "" {
		o.PodMonitorNamespace = VizNamespace
	}
	cfg, err := loadRESTConfig(o)
	if err != nil {
		return err
	}
	r := &runner{o: o, out: w}
	if err := r.connect(ctx, cfg); err != nil {
		return err
	}
	u := &uninstaller{r: r}
	steps := []step{
		{"webhook", func(ctx context.Context) (string, error) {
			return u.release(WebhookRelease, WebhookNamespace)
		}},
		{"webhook namespace", func(ctx context.Context) (string, error) { return u.namespace(ctx, WebhookNamespace) }},
		{"viz", u.viz},
		{"viz namespace", func(ctx context.Context) (string, error) { return u.namespace(ctx, VizNamespace) }},
		{"control plane", func(ctx context.Context) (string, error) {
			return u.release(ControlPlaneRelease, ControlPlaneNamespace)
		}},
		{"crds", func(ctx context.Context) (string, error) { return u.release(CRDsRelease, ControlPlaneNamespace) }},
		{"identity", u.identity},
		{"namespace", func(ctx context.Context) (string, error) { return u.namespace(ctx, ControlPlaneNamespace) }},
	}
	return runSteps(ctx, w, false, steps)
}

type uninstaller struct{ r *runner }

func (u *uninstaller) release(name, namespace string) (string, error) {
	removed, err := uninstallRelease(u.r.c.config, name, namespace, u.r.o.Timeout)
	if err != nil {
		return "", &Error{Problem: fmt.Sprintf("uninstall Helm release %s/%s", namespace, name), Err: err, Fix: "fix the cause and run uninstall again"}
	}
	if !removed {
		return fmt.Sprintf("release %s/%s not installed", namespace, name), nil
	}
	return fmt.Sprintf("release %s/%s uninstalled", namespace, name), nil
}

func (u *uninstaller) viz(ctx context.Context) (string, error) {
	parts := []string{}
	if u.r.hasPodMonitors {
		n, err := u.deleteLabelled(ctx, podMonitorGVR, u.r.o.PodMonitorNamespace)
		if err != nil {
			return "", err
		}
		parts = append(parts, fmt.Sprintf("%d PodMonitors deleted", n))
	}
	rel, err := u.release(VizRelease, VizNamespace)
	if err != nil {
		return "", err
	}
	return strings.Join(append(parts, rel), ", "), nil
}

// identity deletes the cert-manager objects and Secrets bootstrap created in
// the control-plane namespace (with the Secrets cert-manager wrote for them).
func (u *uninstaller) identity(ctx context.Context) (string, error) {
	total := 0
	if u.r.hasCertManager {
		certsList, err := u.r.c.dynamic.Resource(certificateGVR).Namespace(ControlPlaneNamespace).List(ctx, metav1.ListOptions{LabelSelector: ManagedByLabel + "=" + ManagedByValue})
		if err != nil {
			return "", fmt.Errorf("list Certificates: %w", err)
		}
		for _, c := range certsList.Items {
			if secret, _, _ := unstructuredString(c.Object, "spec", "secretName"); secret != "" {
				if err := u.deleteSecret(ctx, secret); err != nil {
					return "", err
				}
				total++
			}
		}
		for _, gvr := range []schema.GroupVersionResource{certificateGVR, issuerGVR} {
			n, err := u.deleteLabelled(ctx, gvr, ControlPlaneNamespace)
			if err != nil {
				return "", err
			}
			total += n
		}
	}
	secrets, err := u.r.c.kube.CoreV1().Secrets(ControlPlaneNamespace).List(ctx, metav1.ListOptions{LabelSelector: ManagedByLabel + "=" + ManagedByValue})
	if err != nil {
		return "", fmt.Errorf("list Secrets: %w", err)
	}
	for _, s := range secrets.Items {
		if err := u.deleteSecret(ctx, s.Name); err != nil {
			return "", err
		}
		total++
	}
	return fmt.Sprintf("%d identity objects deleted", total), nil
}

func (u *uninstaller) deleteSecret(ctx context.Context, name string) error {
	err := u.r.c.kube.CoreV1().Secrets(ControlPlaneNamespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete Secret %s/%s: %w", ControlPlaneNamespace, name, err)
	}
	return nil
}

func (u *uninstaller) deleteLabelled(ctx context.Context, gvr schema.GroupVersionResource, namespace string) (int, error) {
	ri := u.r.c.dynamic.Resource(gvr).Namespace(namespace)
	list, err := ri.List(ctx, metav1.ListOptions{LabelSelector: ManagedByLabel + "=" + ManagedByValue})
	if err != nil {
		return 0, fmt.Errorf("list %s in %s: %w", gvr.Resource, namespace, err)
	}
	for _, it := range list.Items {
		if err := ri.Delete(ctx, it.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return 0, fmt.Errorf("delete %s %s/%s: %w", it.GetKind(), namespace, it.GetName(), err)
		}
	}
	return len(list.Items), nil
}

// namespace deletes a namespace only if bootstrap created it.
func (u *uninstaller) namespace(ctx context.Context, name string) (string, error) {
	ns, err := u.r.c.kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "Namespace " + name + " not present", nil
	}
	if err != nil {
		return "", fmt.Errorf("get namespace %s: %w", name, err)
	}
	if ns.Labels[ManagedByLabel] != ManagedByValue {
		return "Namespace " + name + " kept (not created by bootstrap)", nil
	}
	if ns.Status.Phase == corev1.NamespaceTerminating {
		return "Namespace " + name + " already terminating", nil
	}
	if err := u.r.c.kube.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return "", fmt.Errorf("delete namespace %s: %w", name, err)
	}
	return "Namespace " + name + " deleted", nil
}

func unstructuredString(obj map[string]any, path ...string) (string, bool, error) {
	cur := any(obj)
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false, nil
		}
		cur = m[p]
	}
	s, ok := cur.(string)
	return s, ok, nil
}
