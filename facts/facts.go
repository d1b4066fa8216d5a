// Package facts reads what the policy must know about the cluster it stands
// in front of: the installed Linkerd (ConfigMap linkerd-config, key values)
// and the Kubernetes version. The policy package turns them into rules'
// decisions; this package only does the I/O.
package facts

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// DefaultLinkerdNamespace is where Linkerd's control plane runs.
const DefaultLinkerdNamespace = "linkerd"

// Client is the part of the Kubernetes API the facts are read with: the
// server version and ConfigMaps. A kubernetes.Interface is one; the lean
// webhook binary gives one without the clients of every other API group.
type Client interface {
	CoreV1() corev1client.CoreV1Interface
	Discovery() discovery.DiscoveryInterfaces
}

// ConfigMapName is Linkerd's configuration, whose key "values" holds the
// control plane's Helm values.
const ConfigMapName = "linkerd-config"

// FromConfigMapData reads the facts from linkerd-config's data.
func FromConfigMapData(namespace string, data map[string]string) (policy.Environment, error) {
	values, ok := data["values"]
	source := "ConfigMap " + namespace + "/" + ConfigMapName
	if !ok {
		return policy.Environment{}, fmt.Errorf("%s has no key \"values\"", source)
	}
	return policy.LinkerdFactsFromValues([]byte(values), source)
}

// Read asks the cluster once for the Kubernetes version and linkerd-config.
// A missing ConfigMap, or no permission to read it, is not an error: the
// Linkerd facts are then unknown and note says why, in one line. err is
// for a cluster that cannot be asked at all.
func Read(ctx context.Context, client Client, linkerdNamespace string) (env policy.Environment, note string, err error) {
	if linkerdNamespace == "" {
		linkerdNamespace = DefaultLinkerdNamespace
	}
	info, err := client.Discovery().ServerVersion()
	if err != nil {
		return policy.Environment{}, "", fmt.Errorf("read the Kubernetes version: %w", err)
	}
	kube, _ := policy.ParseKubernetesVersion(info.GitVersion)
	cm, err := client.CoreV1().ConfigMaps(linkerdNamespace).Get(ctx, ConfigMapName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return policy.Environment{Kubernetes: kube}, fmt.Sprintf("no ConfigMap %s/%s: Linkerd facts unknown (is Linkerd installed there? see --linkerd-namespace)", linkerdNamespace, ConfigMapName), nil
	case apierrors.IsForbidden(err):
		return policy.Environment{Kubernetes: kube}, fmt.Sprintf("not allowed to read ConfigMap %s/%s: Linkerd facts unknown", linkerdNamespace, ConfigMapName), nil
	case err != nil:
		return policy.Environment{}, "", fmt.Errorf("read ConfigMap %s/%s: %w", linkerdNamespace, ConfigMapName, err)
	}
	env, err = FromConfigMapData(linkerdNamespace, cm.Data)
	if err != nil {
		return policy.Environment{Kubernetes: kube}, err.Error() + ": Linkerd facts unknown", nil
	}
	env.Kubernetes = kube
	return env, "", nil
}
