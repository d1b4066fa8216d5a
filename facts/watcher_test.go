package facts

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"
)

func linkerdConfig(namespace, values string) corev1.ConfigMap {
	return corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName, Namespace: namespace},
		Data:       map[string]string{"values": values},
	}
}

// updates records what a watcher told its onChange.
type updates struct {
	mu   sync.Mutex
	list []Update
}

func (u *updates) add(up Update) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.list = append(u.list, up)
}

func (u *updates) last() (Update, int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.list) == 0 {
		return Update{}, 0
	}
	return u.list[len(u.list)-1], len(u.list)
}

// waitFor polls cond; the deadline is a guard, not a timing under test.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never happened; last state: %s", what, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWatcherFollowsLinkerdConfig(t *testing.T) {
	c := client("v1.31.2", linkerdConfig("linkerd", "linkerdVersion: edge-26.8.3\nproxy:\n  nativeSidecar: true\n"))
	var got updates
	w := NewWatcher(c, "", got.add)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.Start(ctx)

	waitFor(t, "the facts of the ConfigMap in force", func() (bool, string) {
		env := w.Current()
		return w.Settled() && env.NativeSidecar.True() && env.Kubernetes.String() == "1.31", env.Summary()
	})
	if u, _ := got.last(); u.State != StateKnown || u.Note != "" {
		t.Errorf("last update %+v, want state known without a note", u)
	}

	cm := linkerdConfig("linkerd", "linkerdVersion: edge-26.8.3\nproxy:\n  nativeSidecar: false\n")
	if _, err := c.CoreV1().ConfigMaps("linkerd").Update(ctx, &cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a change of the ConfigMap in force", func() (bool, string) {
		env := w.Current()
		return env.NativeSidecar.False(), env.Summary()
	})

	if err := c.CoreV1().ConfigMaps("linkerd").Delete(ctx, ConfigMapName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "facts unknown once the ConfigMap is deleted", func() (bool, string) {
		u, _ := got.last()
		return u.State == StateUnknown && !w.Current().LinkerdKnown() && w.Current().Kubernetes.Known(), fmt.Sprintf("%+v", u)
	})
}

func TestWatcherWithoutLinkerdConfigKnowsNothingOfLinkerd(t *testing.T) {
	// A linkerd-config in another namespace is not the one watched.
	c := client("v1.31.2", linkerdConfig("elsewhere", "linkerdVersion: edge-26.8.3\n"))
	var got updates
	w := NewWatcher(c, "linkerd", got.add)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.Start(ctx)
	waitFor(t, "the watcher settled", func() (bool, string) {
		u, n := got.last()
		return w.Settled() && n > 0, fmt.Sprintf("%+v", u)
	})
	if u, _ := got.last(); u.State != StateUnknown || u.Note == "" {
		t.Errorf("last update %+v, want state unknown with a note", u)
	}
	if w.Current().LinkerdKnown() {
		t.Errorf("facts %s, want Linkerd unknown", w.Current().Summary())
	}
}

func TestWatcherNotAllowedToReadLinkerdConfigSaysSo(t *testing.T) {
	c := client("v1.31.2", linkerdConfig("linkerd", "linkerdVersion: edge-26.8.3\n"))
	forbidden := func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, ConfigMapName, fmt.Errorf("RBAC says no"))
	}
	c.PrependReactor("list", "configmaps", forbidden)
	c.PrependWatchReactor("configmaps", func(k8stesting.Action) (bool, watch.Interface, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, ConfigMapName, fmt.Errorf("RBAC says no"))
	})
	var got updates
	w := NewWatcher(c, "", got.add)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.Start(ctx)
	waitFor(t, "the watcher reports it may not read linkerd-config", func() (bool, string) {
		u, _ := got.last()
		return w.Settled() && u.State == StateForbidden, fmt.Sprintf("%+v", u)
	})
	if w.Current().LinkerdKnown() {
		t.Errorf("facts %s, want Linkerd unknown", w.Current().Summary())
	}
}
