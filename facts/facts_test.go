package facts

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

func client(kube string, objs ...corev1.ConfigMap) *fake.Clientset {
	c := fake.NewSimpleClientset()
	for i := range objs {
		_ = c.Tracker().Add(&objs[i])
	}
	c.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &version.Info{GitVersion: kube}
	return c
}

func TestReadTakesTheFactsFromLinkerdConfig(t *testing.T) {
	cm := corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName, Namespace: "linkerd"},
		Data:       map[string]string{"values": "linkerdVersion: edge-26.8.3\nproxy:\n  nativeSidecar: true\nidentity:\n  serviceAccountTokenProjection: true\n"},
	}
	env, note, err := Read(context.Background(), client("v1.37.2", cm), "")
	if err != nil || note != "" {
		t.Fatalf("err %v note %q", err, note)
	}
	if env.Linkerd.Line != (policy.Version{Major: 2, Minor: 20}) || !env.NativeSidecar.True() || env.Kubernetes != (policy.Version{Major: 1, Minor: 37}) {
		t.Fatalf("facts %+v", env)
	}
	if env.Source != "ConfigMap linkerd/linkerd-config" {
		t.Fatalf("source %q", env.Source)
	}
}

func TestReadWithoutLinkerdKnowsOnlyKubernetes(t *testing.T) {
	env, note, err := Read(context.Background(), client("v1.31.0"), "linkerd")
	if err != nil {
		t.Fatal(err)
	}
	if env.LinkerdKnown() || env.Kubernetes != (policy.Version{Major: 1, Minor: 31}) || !strings.Contains(note, "no ConfigMap linkerd/linkerd-config") {
		t.Fatalf("env %+v note %q", env, note)
	}
}

func TestReadWithBrokenValuesSaysSo(t *testing.T) {
	cm := corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName, Namespace: "linkerd"}, Data: map[string]string{"other": "x"}}
	env, note, err := Read(context.Background(), client("v1.31.0", cm), "linkerd")
	if err != nil || env.LinkerdKnown() || !strings.Contains(note, `has no key "values"`) {
		t.Fatalf("env %+v note %q err %v", env, note, err)
	}
}
