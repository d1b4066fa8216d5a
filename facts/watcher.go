package facts

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// States of the Linkerd facts a Watcher holds.
const (
	StateKnown     = "known"     // linkerd-config read
	StateUnknown   = "unknown"   // no linkerd-config, or not readable as one
	StateForbidden = "forbidden" // not allowed to read linkerd-config
)

// Update is the facts in force after a change, with their state and, when
// they are unknown, a one-line note saying why.
type Update struct {
	Env   policy.Environment
	State string
	Note  string
}

// Watcher keeps the facts of the installed Linkerd current: an informer on
// the one ConfigMap linkerd-config (list and watch in the Linkerd namespace,
// by a field selector on its name), and the Kubernetes version read once at
// Start. Current never calls the API, so the admission path does not either.
// A missing ConfigMap, or no permission to read it, leaves the Linkerd facts
// unknown (the rules then behave as for Linkerd 2.11); it is never an error.
type Watcher struct {
	client    Client
	namespace string
	onChange  func(Update)

	informer cache.SharedIndexInformer

	current atomic.Pointer[policy.Environment]
	settled atomic.Bool

	mu         sync.Mutex // orders publishes; guards the fields below
	kubernetes policy.Version
	last       Update
	published  bool
}

// NewWatcher prepares a watcher of linkerd-config in namespace ("" means
// DefaultLinkerdNamespace). onChange, if set, is called with the facts each
// time they or their state change (for the log and the metrics); it must not
// block.
func NewWatcher(client Client, namespace string, onChange func(Update)) *Watcher {
	if namespace == "" {
		namespace = DefaultLinkerdNamespace
	}
	if onChange == nil {
		onChange = func(Update) {}
	}
	// One informer, built directly rather than by client-go's
	// SharedInformerFactory: the factory links the informers of every API
	// group, resident memory for nothing. Resync 0: the ConfigMap changes
	// through watch events.
	byName := func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", ConfigMapName).String()
	}
	configMaps := client.CoreV1().ConfigMaps(namespace)
	lw := cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			byName(&o)
			return configMaps.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			byName(&o)
			return configMaps.Watch(ctx, o)
		},
	}, client)
	w := &Watcher{
		client:    client,
		namespace: namespace,
		onChange:  onChange,
		informer:  cache.NewSharedIndexInformer(lw, &corev1.ConfigMap{}, 0, cache.Indexers{}),
	}
	w.current.Store(&policy.Environment{})
	return w
}

// Namespace is where the watcher looks for linkerd-config.
func (w *Watcher) Namespace() string { return w.namespace }

// Current returns the facts in force. It is lock-free and never calls the API.
func (w *Watcher) Current() policy.Environment { return *w.current.Load() }

// Settled reports whether the watcher has an answer: the ConfigMap was
// listed (present or not) or reading it was forbidden.
func (w *Watcher) Settled() bool { return w.settled.Load() }

// Start reads the Kubernetes version once, then runs the informer until
// ctx ends. Nothing here fails: what cannot be read stays unknown.
func (w *Watcher) Start(ctx context.Context) {
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	kube, kubeNote := w.serverVersion(vctx)
	cancel()
	w.mu.Lock()
	w.kubernetes = kube
	w.mu.Unlock()
	if kubeNote != "" {
		w.publish(Update{Env: policy.Environment{Kubernetes: kube}, State: StateUnknown, Note: kubeNote})
	}

	_, _ = w.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.fromObject(obj) },
		UpdateFunc: func(_, obj any) { w.fromObject(obj) },
		DeleteFunc: func(any) {
			w.publishUnknown(StateUnknown, fmt.Sprintf("ConfigMap %s/%s deleted: Linkerd facts unknown", w.namespace, ConfigMapName))
		},
	})
	_ = w.informer.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
		if apierrors.IsForbidden(err) {
			w.publishUnknown(StateForbidden, fmt.Sprintf("not allowed to list and watch ConfigMap %s/%s: Linkerd facts unknown (the chart's Role grants it)", w.namespace, ConfigMapName))
			w.settled.Store(true)
		}
	})
	var running sync.WaitGroup
	running.Go(func() { w.informer.RunWithContext(ctx) })
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), w.informer.HasSynced) {
			if len(w.informer.GetStore().List()) == 0 {
				w.publishUnknown(StateUnknown, fmt.Sprintf("no ConfigMap %s/%s: Linkerd facts unknown (is Linkerd installed there? see --linkerd-namespace)", w.namespace, ConfigMapName))
			}
			w.settled.Store(true)
		}
		<-ctx.Done()
		running.Wait()
	}()
}

func (w *Watcher) serverVersion(ctx context.Context) (policy.Version, string) {
	type answer struct {
		v   policy.Version
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		info, err := w.client.Discovery().ServerVersion()
		if err != nil {
			ch <- answer{err: err}
			return
		}
		v, err := policy.ParseKubernetesVersion(info.GitVersion)
		ch <- answer{v, err}
	}()
	select {
	case a := <-ch:
		if a.err != nil {
			return policy.Version{}, "Kubernetes version unknown: " + a.err.Error()
		}
		return a.v, ""
	case <-ctx.Done():
		return policy.Version{}, "Kubernetes version unknown: the apiserver did not answer in time"
	}
}

func (w *Watcher) fromObject(obj any) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok || cm.Name != ConfigMapName {
		return
	}
	env, err := FromConfigMapData(w.namespace, cm.Data)
	if err != nil {
		w.publishUnknown(StateUnknown, err.Error()+": Linkerd facts unknown")
		return
	}
	w.mu.Lock()
	env.Kubernetes = w.kubernetes
	w.mu.Unlock()
	w.publish(Update{Env: env, State: StateKnown})
}

func (w *Watcher) publishUnknown(state, note string) {
	w.mu.Lock()
	kube := w.kubernetes
	w.mu.Unlock()
	w.publish(Update{Env: policy.Environment{Kubernetes: kube}, State: state, Note: note})
}

// publish installs u and tells onChange, unless nothing changed.
func (w *Watcher) publish(u Update) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.published && u == w.last {
		return
	}
	w.last, w.published = u, true
	env := u.Env
	w.current.Store(&env)
	w.onChange(u)
}
