package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/standin/injector"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/facts"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// The two Linkerds the demo stands in front of, one after the other: the
// same workloads are applied under each, into their own namespaces.
var linkerdPhases = []struct {
	label      string // how the tables name it
	configFile string // under examples/config
	namespaces []demoNamespace
}{
	{"Linkerd 2.14", "linkerd-config-2.14.yaml", []demoNamespace{
		{"demo-enforce", policy.ModeEnforce},
		{"demo-audit", policy.ModeAudit},
		{"demo-off", policy.ModeOff},
	}},
	{"Linkerd 2.20", "linkerd-config-2.20.yaml", []demoNamespace{
		{"demo-enforce-2-20", policy.ModeEnforce},
	}},
}

// The enforce namespaces compared side by side.
const (
	enforce214 = "demo-enforce"
	enforce220 = "demo-enforce-2-20"
)

// labelStandIn selects the namespaces the stand-in injector is registered for.
const labelStandIn = "demo.linkerd-inject-policy.io/stand-in"

// standInTrustBundle stands in for linkerd-identity-trust-roots' bundle: the
// stand-in only hashes it.
const standInTrustBundle = "# demo stand-in trust bundle: no certificate\n"

// installLinkerd puts examples/config/file (ConfigMap linkerd/linkerd-config)
// and the trust roots into the cluster, replacing what was there, and
// returns the facts as the webhook reads them.
func (d *demo) installLinkerd(ctx context.Context, file string) (policy.Environment, error) {
	cs, _, err := d.clients()
	if err != nil {
		return policy.Environment{}, err
	}
	data, err := os.ReadFile(filepath.Join(d.repo, "examples", "config", file))
	if err != nil {
		return policy.Environment{}, err
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(data, &cm); err != nil {
		return policy.Environment{}, fmt.Errorf("%s: %w", file, err)
	}
	if err := d.c.CreateNamespace(ctx, cm.Namespace, nil); err != nil && !apierrors.IsAlreadyExists(err) {
		return policy.Environment{}, err
	}
	roots := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: injector.TrustRootsName, Namespace: cm.Namespace},
		Data:       map[string]string{injector.TrustRootsKey: standInTrustBundle},
	}
	for _, c := range []*corev1.ConfigMap{&cm, roots} {
		_, err := cs.CoreV1().ConfigMaps(c.Namespace).Create(ctx, c, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			_, err = cs.CoreV1().ConfigMaps(c.Namespace).Update(ctx, c, metav1.UpdateOptions{})
		}
		if err != nil {
			return policy.Environment{}, fmt.Errorf("install ConfigMap %s/%s: %w", c.Namespace, c.Name, err)
		}
	}
	env, note, err := facts.Read(ctx, cs, cm.Namespace)
	if err != nil {
		return policy.Environment{}, err
	}
	if note != "" {
		return policy.Environment{}, fmt.Errorf("read back %s: %s", file, note)
	}
	fmt.Fprintf(d.log, "installed linkerd-config from examples/config/%s: %s\n", file, env.Summary())
	return env, nil
}

// startStandIn serves the stand-in injector (a model of Linkerd's, see
// e2e/standin/injector) on loopback and registers it under Linkerd's name
// for the demo's namespaces. The returned function stops it.
func (d *demo) startStandIn(ctx context.Context) (*injector.Injector, func(), error) {
	cs, _, err := d.clients()
	if err != nil {
		return nil, nil, err
	}
	inj := injector.New(injector.FromClient(cs), facts.DefaultLinkerdNamespace)
	certDir, err := os.MkdirTemp(d.c.Dir, "standin-certs-")
	if err != nil {
		return nil, nil, err
	}
	ca, err := cluster.WriteServingCert(certDir, time.Now())
	if err != nil {
		return nil, nil, err
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key"))
	if err != nil {
		return nil, nil, err
	}
	srv := httptest.NewUnstartedServer(inj)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	reg := injector.Registration(srv.URL+"/", ca, &metav1.LabelSelector{MatchLabels: map[string]string{labelStandIn: "true"}})
	if err := d.c.ApplyWebhookConfiguration(ctx, reg); err != nil {
		srv.Close()
		return nil, nil, err
	}
	fmt.Fprintln(d.log, "registered the stand-in injector (a model of Linkerd's edge-26.8.3 proxy-injector) after the webhook")
	return inj, srv.Close, nil
}

// waitDecision waits until a dry-run Job in the probe namespace comes back
// with linkerd.io/inject = want ("" = unset): the webhook's informer has
// seen the linkerd-config just installed.
func (d *demo) waitDecision(ctx context.Context, want string) error {
	_, dyn, err := d.clients()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	err = cluster.Poll(ctx, fmt.Sprintf("the webhook to follow linkerd-config (a Job with linkerd.io/inject=%q)", want), func(ctx context.Context) (bool, error) {
		out, err := dyn.Resource(shownKinds[1]).Namespace("demo-probe").Create(ctx, probeJob(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return false, err
		}
		v, _, _ := unstructured.NestedString(out.Object, "spec", "template", "metadata", "annotations", policy.AnnotationInject)
		return v == want, nil
	})
	if err == nil {
		fmt.Fprintf(d.log, "the webhook followed linkerd-config in %s, without a restart\n", since(start))
	}
	return err
}

// probeJob is the minimal Job the demo asks the webhook about.
func probeJob() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "batch/v1", "kind": "Job",
		"metadata": map[string]any{"generateName": "probe-"},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"restartPolicy": "Never", "containers": []any{map[string]any{"name": "c", "image": "busybox"}},
		}}},
	}}
}

// proxyText says how a stored Pod carries the proxy.
func proxyText(obj *unstructured.Unstructured) string {
	for _, list := range []string{"initContainers", "containers"} {
		cs, _, _ := unstructured.NestedSlice(obj.Object, "spec", list)
		for _, c := range cs {
			m, _ := c.(map[string]any)
			if m["name"] != injector.ProxyContainerName {
				continue
			}
			if list == "initContainers" {
				return "native sidecar"
			}
			return "sidecar (containers[0])"
		}
	}
	return "none"
}
