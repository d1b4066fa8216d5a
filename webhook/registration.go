package webhook

import (
	"slices"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// ConfigurationName is the name of our MutatingWebhookConfiguration. The
// apiserver calls mutating webhooks in name order, and this name sorts before
// Linkerd's "linkerd-proxy-injector-webhook-config", so we run first.
const ConfigurationName = "linkerd-inject-policy"

// WebhookName is the name of the single webhook entry in the configuration.
const WebhookName = "mutate.linkerd-inject-policy.io"

// Path is the URL path the server answers admission reviews on.
const Path = "/mutate"

// RegistrationOptions describe how the apiserver reaches the webhook.
type RegistrationOptions struct {
	// URL (out-of-cluster, e.g. the e2e harness) or Service (in-cluster); one of them.
	URL     string
	Service *admissionregistrationv1.ServiceReference
	// CABundle is the PEM CA that signed the serving certificate.
	CABundle []byte
	// FailurePolicy defaults to Ignore: a webhook outage must not stop the cluster.
	FailurePolicy admissionregistrationv1.FailurePolicyType
	// TimeoutSeconds defaults to 10 (the maximum the apiserver allows is 30).
	TimeoutSeconds int32
	// ExcludedNamespaces are never sent to the webhook (kube-system, the
	// webhook's own namespace, ...), on top of namespaces labelled
	// config.linkerd.io/admission-webhooks=disabled.
	ExcludedNamespaces []string
}

// Rules lists every kind the server handles, on CREATE and UPDATE, from
// the policy's table of supported kinds (policy.Kinds): one rule per API
// group and versions, its resources in the table's order. The Helm chart's
// MutatingWebhookConfiguration must render the same rules (tested).
func Rules() []admissionregistrationv1.RuleWithOperations {
	ops := []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
	scope := admissionregistrationv1.NamespacedScope
	var rules []admissionregistrationv1.RuleWithOperations
	for _, k := range policy.Kinds() {
		if n := len(rules); n > 0 {
			last := &rules[n-1].Rule
			if last.APIGroups[0] == k.Group && slices.Equal(last.APIVersions, k.Versions) {
				last.Resources = append(last.Resources, k.Resource)
				continue
			}
		}
		rules = append(rules, admissionregistrationv1.RuleWithOperations{
			Operations: ops,
			Rule: admissionregistrationv1.Rule{
				APIGroups:   []string{k.Group},
				APIVersions: k.Versions,
				Resources:   []string{k.Resource},
				Scope:       &scope,
			},
		})
	}
	return rules
}

// NamespaceSelector excludes the given namespaces by name and every namespace
// labelled config.linkerd.io/admission-webhooks=disabled (Linkerd's own
// convention for its control-plane namespace).
func NamespaceSelector(excluded []string) *metav1.LabelSelector {
	sel := &metav1.LabelSelector{
		MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key:      "config.linkerd.io/admission-webhooks",
			Operator: metav1.LabelSelectorOpNotIn,
			Values:   []string{"disabled"},
		}},
	}
	if len(excluded) > 0 {
		sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
			Key:      "kubernetes.io/metadata.name",
			Operator: metav1.LabelSelectorOpNotIn,
			Values:   append([]string(nil), excluded...),
		})
	}
	return sel
}

// MutatingWebhookConfiguration builds the registration the apiserver needs.
func MutatingWebhookConfiguration(o RegistrationOptions) *admissionregistrationv1.MutatingWebhookConfiguration {
	failure := o.FailurePolicy
	if failure == "" {
		failure = admissionregistrationv1.Ignore
	}
	timeout := o.TimeoutSeconds
	if timeout == 0 {
		timeout = 10
	}
	sideEffects := admissionregistrationv1.SideEffectClassNone
	reinvocation := admissionregistrationv1.IfNeededReinvocationPolicy
	matchPolicy := admissionregistrationv1.Equivalent
	cc := admissionregistrationv1.WebhookClientConfig{CABundle: o.CABundle}
	if o.Service != nil {
		svc := *o.Service
		if svc.Path == nil {
			p := Path
			svc.Path = &p
		}
		cc.Service = &svc
	} else {
		u := o.URL
		cc.URL = &u
	}
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: ConfigurationName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    WebhookName,
			ClientConfig:            cc,
			Rules:                   Rules(),
			FailurePolicy:           &failure,
			MatchPolicy:             &matchPolicy,
			NamespaceSelector:       NamespaceSelector(o.ExcludedNamespaces),
			SideEffects:             &sideEffects,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
			ReinvocationPolicy:      &reinvocation,
		}},
	}
}
