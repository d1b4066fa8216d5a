// Package injector is a STAND-IN for Linkerd's proxy injector, for the e2e
// tests only. It is not Linkerd and does not inject a working proxy.
//
// Linkerd's own injector cannot be built here (its source is not reachable
// through the Go module proxy), yet the e2e suite must prove where our
// webhook sits in the admission chain. This stand-in is registered under
// Linkerd's configuration name, linkerd-proxy-injector-webhook-config, so the
// apiserver orders it exactly as it would order the real one (after
// linkerd-inject-policy, by name). It records every object it is sent, so a
// test can check that our annotations were already applied, and it mutates
// Pods the way the real injector's decision would (adds a "linkerd-proxy"
// container and a version annotation when injection is enabled), so that with
// reinvocationPolicy IfNeeded the apiserver calls our webhook again after it.
//
// Its injection decision follows the Linkerd behaviours docs/linkerd.md lists:
// the Pod's linkerd.io/inject annotation wins over the namespace's, "enabled"
// and "ingress" inject, "disabled" does not, and hostNetwork Pods are skipped.
package injector

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"gomodules.xyz/jsonpatch/v2"
)

// ConfigurationName is Linkerd's MutatingWebhookConfiguration name.
const ConfigurationName = "linkerd-proxy-injector-webhook-config"

// WebhookName is the webhook entry's name (Linkerd's).
const WebhookName = "linkerd-proxy-injector.linkerd.io"

// ProxyContainerName is the container the stand-in adds to injected Pods.
const ProxyContainerName = "linkerd-proxy"

// ProxyVersionAnnotation marks a Pod the stand-in injected.
const ProxyVersionAnnotation = "linkerd.io/proxy-version"

// ProxyVersion is the value the stand-in writes to ProxyVersionAnnotation.
const ProxyVersion = "e2e-stand-in"

// Record is one admission request the stand-in received.
type Record struct {
	Kind      string
	Namespace string
	Name      string // generateName for Pods made by controllers
	Operation string
	// Annotations of the Pod, or of the Pod template for workloads, as
	// received (after every webhook ordered before this one).
	Annotations map[string]string
	// Object is the raw object as received.
	Object json.RawMessage
	// Injected tells whether the stand-in added its proxy.
	Injected bool
}

// NamespaceAnnotations returns the annotations of a namespace.
type NamespaceAnnotations func(ctx context.Context, namespace string) (map[string]string, error)

// Injector is the stand-in webhook; it implements http.Handler.
type Injector struct {
	nsAnnotations NamespaceAnnotations

	mu      sync.Mutex
	records []Record
}

// New returns a stand-in reading namespace annotations through ns.
func New(ns NamespaceAnnotations) *Injector {
	return &Injector{nsAnnotations: ns}
}

// Records returns a copy of everything received so far, in arrival order.
func (i *Injector) Records() []Record {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]Record(nil), i.records...)
}

// ServeHTTP answers an AdmissionReview (v1).
func (i *Injector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		http.Error(w, fmt.Sprintf("not an AdmissionReview: %v", err), http.StatusBadRequest)
		return
	}
	resp, err := i.review(r.Context(), review.Request)
	if err != nil {
		resp = &admissionv1.AdmissionResponse{
			UID:     review.Request.UID,
			Allowed: true,
			Result:  &metav1.Status{Message: "stand-in injector: " + err.Error()},
		}
	}
	review.Response = resp
	review.Request = nil
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(review)
}

func (i *Injector) review(ctx context.Context, req *admissionv1.AdmissionRequest) (*admissionv1.AdmissionResponse, error) {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	obj := &unstructured.Unstructured{}
	if err := json.Unmarshal(req.Object.Raw, &obj.Object); err != nil {
		return nil, fmt.Errorf("decode object: %w", err)
	}
	rec := Record{
		Kind:      req.Kind.Kind,
		Namespace: req.Namespace,
		Name:      obj.GetName(),
		Operation: string(req.Operation),
		Object:    append(json.RawMessage(nil), req.Object.Raw...),
	}
	if rec.Name == "" {
		rec.Name = obj.GetGenerateName()
	}
	switch req.Kind.Kind {
	case "Pod":
		rec.Annotations = obj.GetAnnotations()
	case "CronJob":
		rec.Annotations, _, _ = unstructured.NestedStringMap(obj.Object, "spec", "jobTemplate", "spec", "template", "metadata", "annotations")
	case "Service":
		rec.Annotations = obj.GetAnnotations()
	default:
		rec.Annotations, _, _ = unstructured.NestedStringMap(obj.Object, "spec", "template", "metadata", "annotations")
	}

	if req.Kind.Kind == "Pod" && req.Operation == admissionv1.Create {
		inject, err := i.shouldInject(ctx, req.Namespace, obj)
		if err != nil {
			return nil, err
		}
		if inject {
			patch, err := injectProxy(req.Object.Raw, obj)
			if err != nil {
				return nil, err
			}
			pt := admissionv1.PatchTypeJSONPatch
			resp.Patch, resp.PatchType = patch, &pt
			rec.Injected = true
		}
	}
	i.mu.Lock()
	i.records = append(i.records, rec)
	i.mu.Unlock()
	return resp, nil
}

// shouldInject mirrors the real injector's decision for a Pod.
func (i *Injector) shouldInject(ctx context.Context, namespace string, pod *unstructured.Unstructured) (bool, error) {
	if host, _, _ := unstructured.NestedBool(pod.Object, "spec", "hostNetwork"); host {
		return false, nil
	}
	containers, _, _ := unstructured.NestedSlice(pod.Object, "spec", "containers")
	for _, c := range containers {
		if m, ok := c.(map[string]any); ok && m["name"] == ProxyContainerName {
			return false, nil // already injected
		}
	}
	value, ok := pod.GetAnnotations()["linkerd.io/inject"]
	if !ok {
		ns, err := i.nsAnnotations(ctx, namespace)
		if err != nil {
			return false, fmt.Errorf("namespace %s: %w", namespace, err)
		}
		value = ns["linkerd.io/inject"]
	}
	return value == "enabled" || value == "ingress", nil
}

// injectProxy adds the stand-in proxy container and version annotation.
func injectProxy(raw []byte, pod *unstructured.Unstructured) ([]byte, error) {
	mutated := pod.DeepCopy()
	containers, _, _ := unstructured.NestedSlice(mutated.Object, "spec", "containers")
	containers = append(containers, map[string]any{
		"name":  ProxyContainerName,
		"image": "stand-in.invalid/linkerd-proxy:e2e",
	})
	if err := unstructured.SetNestedSlice(mutated.Object, containers, "spec", "containers"); err != nil {
		return nil, fmt.Errorf("add proxy container: %w", err)
	}
	ann := mutated.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[ProxyVersionAnnotation] = ProxyVersion
	mutated.SetAnnotations(ann)
	out, err := json.Marshal(mutated.Object)
	if err != nil {
		return nil, fmt.Errorf("encode mutated pod: %w", err)
	}
	ops, err := jsonpatch.CreatePatch(raw, out)
	if err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	return json.Marshal(ops)
}

// Registration is the stand-in's MutatingWebhookConfiguration: Linkerd's
// name, reinvocationPolicy IfNeeded, and, besides the Pods and Services the
// real injector handles, the workload kinds, only so that the stand-in can
// record what our webhook made of them. namespaceSelector limits it to the
// test's namespaces.
func Registration(url string, caBundle []byte, namespaceSelector *metav1.LabelSelector) *admissionregistrationv1.MutatingWebhookConfiguration {
	failure := admissionregistrationv1.Fail
	sideEffects := admissionregistrationv1.SideEffectClassNone
	reinvocation := admissionregistrationv1.IfNeededReinvocationPolicy
	timeout := int32(10)
	scope := admissionregistrationv1.NamespacedScope
	rule := func(group string, resources ...string) admissionregistrationv1.RuleWithOperations {
		return admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
			Rule: admissionregistrationv1.Rule{
				APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: resources, Scope: &scope,
			},
		}
	}
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: ConfigurationName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    WebhookName,
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caBundle},
			Rules:                   []admissionregistrationv1.RuleWithOperations{rule("", "pods", "services"), rule("apps", "deployments", "statefulsets", "daemonsets"), rule("batch", "jobs", "cronjobs")},
			FailurePolicy:           &failure,
			NamespaceSelector:       namespaceSelector,
			SideEffects:             &sideEffects,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
			ReinvocationPolicy:      &reinvocation,
		}},
	}
}
