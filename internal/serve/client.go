package serve

import (
	"fmt"

	"k8s.io/client-go/discovery"
	admissionregistrationv1client "k8s.io/client-go/kubernetes/typed/admissionregistration/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
)

// kubeClient is the part of client-go's clientset serve uses: core
// (namespaces, linkerd-config, the certificate Secret), admissionregistration
// (the webhook's caBundle) and discovery (the server version). It is a
// webhook.Client and a certs.Client. kubernetes.NewForConfig would link the
// clients of every API group, which costs resident memory (more than a MiB)
// though serve never calls them.
type kubeClient struct {
	core      *corev1client.CoreV1Client
	admission *admissionregistrationv1client.AdmissionregistrationV1Client
	discovery *discovery.DiscoveryClient
}

func (c *kubeClient) CoreV1() corev1client.CoreV1Interface { return c.core }

func (c *kubeClient) AdmissionregistrationV1() admissionregistrationv1client.AdmissionregistrationV1Interface {
	return c.admission
}

func (c *kubeClient) Discovery() discovery.DiscoveryInterfaces { return c.discovery }

// newKubeClient builds the clients as kubernetes.NewForConfig does: over
// one HTTP client, with one rate limiter when the config sets a QPS.
func newKubeClient(config *rest.Config) (*kubeClient, error) {
	cfg := rest.CopyConfig(config)
	if cfg.UserAgent == "" {
		cfg.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	if cfg.RateLimiter == nil && cfg.QPS > 0 {
		if cfg.Burst <= 0 {
			return nil, fmt.Errorf("burst is required to be greater than 0 when RateLimiter is not set and QPS is set to greater than 0")
		}
		cfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(cfg.QPS, cfg.Burst)
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	var c kubeClient
	if c.core, err = corev1client.NewForConfigAndClient(cfg, httpClient); err != nil {
		return nil, fmt.Errorf("core/v1: %w", err)
	}
	if c.admission, err = admissionregistrationv1client.NewForConfigAndClient(cfg, httpClient); err != nil {
		return nil, fmt.Errorf("admissionregistration/v1: %w", err)
	}
	if c.discovery, err = discovery.NewDiscoveryClientForConfigAndClient(cfg, httpClient); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	return &c, nil
}
