package webhook

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// NamespaceLabels tells the handler the labels of a namespace, which select
// its mode. ok is false when the labels are unknown (no cluster, or the
// namespace does not exist yet): the config's defaultMode applies then.
type NamespaceLabels interface {
	Labels(ctx context.Context, namespace string) (labels map[string]string, ok bool)
}

// StaticNamespaces are fixed namespace labels, for tests and benchmarks that
// run the handler without a cluster.
type StaticNamespaces map[string]map[string]string

// Labels implements NamespaceLabels.
func (s StaticNamespaces) Labels(_ context.Context, namespace string) (map[string]string, bool) {
	l, ok := s[namespace]
	return l, ok
}

// NamespaceCache serves namespace labels from a client-go informer (list and
// watch namespaces), so a request costs no API call. A namespace missing from
// the cache gets one live GET, because a namespace created a moment before its
// first workload may not have reached the watch yet.
type NamespaceCache struct {
	namespaces corev1client.NamespaceInterface
	informer   cache.SharedIndexInformer
	lister     corev1listers.NamespaceLister
	log        logr.Logger
}

// missTimeout bounds the live GET on a cache miss: the apiserver is waiting
// for our answer within its own webhook timeout (10s by default).
const missTimeout = 2 * time.Second

// NewNamespaceCache prepares the informer; Start runs it.
func NewNamespaceCache(client Client, log logr.Logger) *NamespaceCache {
	// The informer is built directly rather than by client-go's
	// SharedInformerFactory, which links the informers of every API group:
	// resident memory for nothing. Resync 0: labels change through watch
	// events, a periodic resync adds nothing.
	namespaces := client.CoreV1().Namespaces()
	lw := cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return namespaces.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return namespaces.Watch(ctx, o)
		},
	}, client)
	informer := cache.NewSharedIndexInformer(lw, &corev1.Namespace{}, 0, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	// The cache keeps only what the mode needs: name and labels. A
	// namespace's annotations, managed fields and status cost memory for
	// nothing (a cluster with thousands of namespaces).
	_ = informer.SetTransform(labelsOnly)
	return &NamespaceCache{
		namespaces: namespaces,
		informer:   informer,
		lister:     corev1listers.NewNamespaceLister(informer.GetIndexer()),
		log:        log,
	}
}

// labelsOnly strips a namespace down to its name, labels and resource
// version before it enters the cache.
func labelsOnly(obj any) (any, error) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return obj, nil // a tombstone: its object was stripped when cached
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: ns.Name, Labels: ns.Labels, ResourceVersion: ns.ResourceVersion, UID: ns.UID,
	}}, nil
}

// Start runs the informer until ctx ends.
func (c *NamespaceCache) Start(ctx context.Context) {
	go c.informer.RunWithContext(ctx)
}

// HasSynced reports whether the initial list has been loaded.
func (c *NamespaceCache) HasSynced() bool { return c.informer.HasSynced() }

// ReadyCheck is a healthz checker that fails until the cache has synced.
func (c *NamespaceCache) ReadyCheck(*http.Request) error {
	if !c.HasSynced() {
		return fmt.Errorf("namespace cache not synced yet")
	}
	return nil
}

// Labels implements NamespaceLabels.
func (c *NamespaceCache) Labels(ctx context.Context, namespace string) (map[string]string, bool) {
	if namespace == "" {
		return nil, false
	}
	ns, err := c.lister.Get(namespace)
	if err == nil {
		return ns.Labels, true
	}
	if !apierrors.IsNotFound(err) {
		c.log.Error(err, "namespace cache lookup failed", "namespace", namespace)
		return nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, missTimeout)
	defer cancel()
	live, err := c.namespaces.Get(ctx, namespace, metav1.GetOptions{})
	if err != nil {
		if !apierrors.IsNotFound(err) {
			c.log.Error(err, "namespace lookup after cache miss failed; using the default mode", "namespace", namespace)
		}
		return nil, false
	}
	return live.Labels, true
}
