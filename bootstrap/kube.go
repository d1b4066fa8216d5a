package bootstrap

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// loadRESTConfig resolves the cluster the way kubectl does: the explicit
// kubeconfig, else $KUBECONFIG / ~/.kube/config, else in-cluster.
func loadRESTConfig(o Options) (*rest.Config, error) {
	if o.RESTConfig != nil {
		return rest.CopyConfig(o.RESTConfig), nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.Kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: o.Context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		where := "the default kubeconfig"
		if o.Kubeconfig != "" {
			where = "--kubeconfig " + o.Kubeconfig
		}
		return nil, &Error{Problem: "no cluster configured", Err: err, Fix: fmt.Sprintf("check %s and --context, or set KUBECONFIG", where)}
	}
	return cfg, nil
}

// clients bundles what bootstrap needs to talk to one cluster.
type clients struct {
	config  *rest.Config
	kube    kubernetes.Interface
	dynamic dynamic.Interface
}

func newClients(cfg *rest.Config) (*clients, error) {
	k, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	d, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	return &clients{config: cfg, kube: k, dynamic: d}, nil
}

// restClientGetter gives Helm our rest.Config instead of letting it read
// kubeconfig files itself, so tests and the CLI take the same path. A fresh
// one per Helm action keeps discovery current after CRDs were installed.
type restClientGetter struct {
	config    *rest.Config
	namespace string
	discovery discovery.CachedDiscoveryInterface
}

func newRESTClientGetter(cfg *rest.Config, namespace string) (*restClientGetter, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	return &restClientGetter{config: cfg, namespace: namespace, discovery: memory.NewMemCacheClient(dc)}, nil
}

func (g *restClientGetter) ToRESTConfig() (*rest.Config, error) {
	return rest.CopyConfig(g.config), nil
}

func (g *restClientGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return g.discovery, nil
}

func (g *restClientGetter) ToRESTMapper() (meta.RESTMapper, error) {
	m := restmapper.NewDeferredDiscoveryRESTMapper(g.discovery)
	return restmapper.NewShortcutExpander(m, g.discovery, nil), nil
}

func (g *restClientGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	return namespaceClientConfig{config: g.config, namespace: g.namespace}
}

// namespaceClientConfig answers Helm's questions about the kubeconfig with
// our rest.Config and the release namespace.
type namespaceClientConfig struct {
	config    *rest.Config
	namespace string
}

func (c namespaceClientConfig) RawConfig() (clientcmdapi.Config, error) {
	return clientcmdapi.Config{}, nil
}

func (c namespaceClientConfig) ClientConfig() (*rest.Config, error) {
	return rest.CopyConfig(c.config), nil
}

func (c namespaceClientConfig) Namespace() (string, bool, error) { return c.namespace, true, nil }

func (c namespaceClientConfig) ConfigAccess() clientcmd.ConfigAccess {
	return clientcmd.NewDefaultClientConfigLoadingRules()
}
