package e2e

import (
	"context"
	"crypto/tls"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/standin/injector"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// The linkerd-config ConfigMaps of examples/config the tests install.
const (
	linkerdConfig220             = "config/linkerd-config-2.20.yaml"
	linkerdConfig220NoProjection = "config/linkerd-config-2.20-no-token-projection.yaml"
	linkerdConfig214             = "config/linkerd-config-2.14.yaml"
)

// standInTrustBundle stands in for linkerd-identity-trust-roots' bundle: the
// stand-in only hashes it into linkerd.io/trust-root-sha256.
const standInTrustBundle = "# e2e stand-in trust bundle: no certificate\n"

// installLinkerd puts ConfigMap linkerd-config (from examples/rel, in
// namespace ns instead of the file's) and linkerd-identity-trust-roots into
// namespace ns, creating it, or updating what an earlier call put there.
func (s *suite) installLinkerd(t *testing.T, ns, rel string) {
	t.Helper()
	ctx := testCtx(t)
	data, err := os.ReadFile(s.example(rel))
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(data, &cm); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	cm.Namespace = ns
	if _, err := s.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", ns, err)
	}
	roots := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: injector.TrustRootsName, Namespace: ns},
		Data:       map[string]string{injector.TrustRootsKey: standInTrustBundle},
	}
	for _, c := range []*corev1.ConfigMap{&cm, roots} {
		_, err := s.cs.CoreV1().ConfigMaps(ns).Create(ctx, c, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			_, err = s.cs.CoreV1().ConfigMaps(ns).Update(ctx, c, metav1.UpdateOptions{})
		}
		if err != nil {
			t.Fatalf("install ConfigMap %s/%s from %s: %v", ns, c.Name, rel, err)
		}
	}
}

// startStandIn serves the stand-in injector on loopback, reading
// linkerd-config from linkerdNS, and registers it under Linkerd's
// configuration name for the namespaces labelled labelStandIn. There is one
// such registration at a time: the tests that call this are either
// sequential or (TestAdmissionOrderWithLinkerdsInjector) parallel, and Go
// runs parallel tests only after the sequential ones ended.
func (s *suite) startStandIn(t *testing.T, linkerdNS string) *injector.Injector {
	t.Helper()
	ctx := testCtx(t)
	inj := injector.New(injector.FromClient(s.cs), linkerdNS)
	certDir := t.TempDir()
	ca, err := cluster.WriteServingCert(certDir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(inj)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	reg := injector.Registration(srv.URL+"/", ca, &metav1.LabelSelector{MatchLabels: map[string]string{labelStandIn: "true"}})
	if err := s.c.ApplyWebhookConfiguration(ctx, reg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), injector.ConfigurationName, metav1.DeleteOptions{})
	})
	// Wait until the apiserver calls it.
	probe := s.namespace(t, "standin-probe", map[string]string{labelStandIn: "true"}, nil)
	if err := cluster.Poll(ctx, "the stand-in injector to be called", func(ctx context.Context) (bool, error) {
		if _, err := s.dryRunJob(ctx, probe, nil); err != nil {
			return false, err
		}
		return len(inj.Records()) > 0, nil
	}); err != nil {
		t.Fatal(err)
	}
	return inj
}

// standInNamespace is a namespace Linkerd injects, our webhook enforces and
// the stand-in is registered for.
func (s *suite) standInNamespace(t *testing.T, base string) string {
	t.Helper()
	labels, annotations := meshedNamespace(policy.ModeEnforce)
	labels[labelStandIn] = "true"
	ns := s.namespace(t, base, labels, annotations)
	// Pods the stand-in injects get a projected token, which the
	// ServiceAccount admission plugin only admits once the namespace's
	// default ServiceAccount exists.
	if err := cluster.Poll(testCtx(t), "ServiceAccount default in "+ns, func(ctx context.Context) (bool, error) {
		_, err := s.cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}); err != nil {
		t.Fatal(err)
	}
	return ns
}

// proxyOf finds the proxy container of a pod: as a native sidecar (an init
// container) or as a classic one.
func proxyOf(p corev1.Pod) (c corev1.Container, native, found bool) {
	for _, c := range p.Spec.InitContainers {
		if c.Name == injector.ProxyContainerName {
			return c, true, true
		}
	}
	for _, c := range p.Spec.Containers {
		if c.Name == injector.ProxyContainerName {
			return c, false, true
		}
	}
	return corev1.Container{}, false, false
}

// countProxies counts proxy containers, native or classic.
func countProxies(p corev1.Pod) int {
	n := 0
	for _, list := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range list {
			if c.Name == injector.ProxyContainerName {
				n++
			}
		}
	}
	return n
}

// dryRunElasticsearch creates examples/eck/elasticsearch.yaml server-side
// in dry-run mode and returns what admission made of it.
func (s *suite) dryRunElasticsearch(ctx context.Context, t *testing.T, ns string) (*unstructured.Unstructured, error) {
	data, err := os.ReadFile(s.example("eck/elasticsearch.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	es := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &es.Object); err != nil {
		t.Fatal(err)
	}
	es.SetNamespace(ns)
	es.SetName("")
	es.SetGenerateName("probe-")
	return s.dyn.Resource(gvrElasticsearch).Namespace(ns).Create(ctx, es, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
}

// esTokens reports whether every nodeSet of an Elasticsearch asks for the
// automounted token.
func esTokens(es *unstructured.Unstructured) (all, some bool) {
	sets, _, _ := unstructured.NestedSlice(es.Object, "spec", "nodeSets")
	all = len(sets) > 0
	for _, set := range sets {
		m, _ := set.(map[string]any)
		v, _, _ := unstructured.NestedBool(m, "podTemplate", "spec", "automountServiceAccountToken")
		all = all && v
		some = some || v
	}
	return all, some
}

// The decisions follow the Linkerd installed in the cluster: our served
// webhook reads linkerd-config from it (with an informer, so a change takes
// effect without a restart), then the stand-in injector reads the same
// ConfigMap. Not parallel: linkerd-config in namespace linkerd is the
// cluster's, and every other test expects it absent (facts unknown).
func TestDecisionsFollowTheInstalledLinkerd(t *testing.T) {
	s := need(t)
	ctx := testCtx(t)

	s.installLinkerd(t, "linkerd", linkerdConfig220)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = s.cs.CoreV1().ConfigMaps("linkerd").Delete(ctx, "linkerd-config", metav1.DeleteOptions{})
		// Facts unknown again: Jobs are disabled, as the other tests expect.
		if err := s.waitEnforcing(ctx); err != nil {
			t.Errorf("the webhook did not forget linkerd-config: %v", err)
		}
	})
	inj := s.startStandIn(t, "linkerd")
	probe := s.standInNamespace(t, "facts-probe")
	if err := s.waitJobVerdict(ctx, probe, "", nil); err != nil {
		t.Fatalf("the webhook did not read the 2.20-style linkerd-config: %v", err)
	}
	record := func(t *testing.T, kind, ns, prefix string) injector.Record {
		t.Helper()
		for _, r := range inj.Records() {
			if r.Kind == kind && r.Namespace == ns && r.Operation == "CREATE" && strings.HasPrefix(r.Name, prefix) && !isDryRunProbe(r) {
				return r
			}
		}
		t.Fatalf("the stand-in never saw %s %s* in %s", kind, prefix, ns)
		return injector.Record{}
	}

	t.Run("with a 2.20-style linkerd-config a Job stays meshed with a native sidecar", func(t *testing.T) {
		ns := s.standInNamespace(t, "facts-220-job")
		s.apply(t, ns, "jobs/job.yaml")
		job := s.get(t, gvrJob, ns, "db-migrate")
		if v, ok := templateAnnotations(job)[policy.AnnotationInject]; ok {
			t.Errorf("Job template has linkerd.io/inject=%s; with native sidecars it must stay meshed", v)
		}
		pod := s.waitPods(t, ns, "job-name=db-migrate", 1)[0]
		proxy, native, found := proxyOf(pod)
		if !found || !native || proxy.RestartPolicy == nil || *proxy.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			t.Errorf("Job pod proxy found %v native %v (%+v), want a native sidecar", found, native, proxy.RestartPolicy)
		}
		if r := record(t, "Pod", ns, "db-migrate-"); !r.Injected || !r.Native {
			t.Errorf("stand-in record %+v", r)
		}
	})

	t.Run("with projected tokens ECK is left alone and its pod is meshed anyway", func(t *testing.T) {
		ns := s.standInNamespace(t, "facts-220-eck")
		s.apply(t, ns, "eck/")
		if _, some := esTokens(s.get(t, gvrElasticsearch, ns, "efk")); some {
			t.Errorf("Elasticsearch got automountServiceAccountToken though Linkerd projects its token")
		}
		if _, found, _ := unstructured.NestedBool(s.get(t, gvrKibana, ns, "efk").Object, "spec", "podTemplate", "spec", "automountServiceAccountToken"); found {
			t.Errorf("Kibana got automountServiceAccountToken though Linkerd projects its token")
		}
		pod := s.get(t, gvrPod, ns, "efk-es-default-0")
		if v, _, _ := unstructured.NestedBool(pod.Object, "spec", "automountServiceAccountToken"); v {
			t.Errorf("ECK pod got the automounted token")
		}
		if r := record(t, "Pod", ns, "efk-es-default-0"); !r.Injected {
			t.Errorf("the stand-in did not mesh the ECK pod (projection true): %+v", r)
		}
		vols, _, _ := unstructured.NestedSlice(pod.Object, "spec", "volumes")
		var projected bool
		for _, v := range vols {
			projected = projected || v.(map[string]any)["name"] == injector.TokenVolumeName
		}
		if !projected {
			t.Errorf("ECK pod has no %s volume", injector.TokenVolumeName)
		}
	})

	t.Run("after linkerd-config changes to projection false ECK gets the token", func(t *testing.T) {
		s.installLinkerd(t, "linkerd", linkerdConfig220NoProjection)
		ns := s.standInNamespace(t, "facts-noproj-eck")
		if err := cluster.Poll(ctx, "an Elasticsearch to get the token", func(ctx context.Context) (bool, error) {
			es, err := s.dryRunElasticsearch(ctx, t, ns)
			if err != nil {
				return false, err
			}
			all, _ := esTokens(es)
			return all, nil
		}); err != nil {
			t.Fatal(err)
		}
		s.apply(t, ns, "eck/")
		if all, _ := esTokens(s.get(t, gvrElasticsearch, ns, "efk")); !all {
			t.Errorf("Elasticsearch nodeSets lack automountServiceAccountToken: true")
		}
		pod := s.get(t, gvrPod, ns, "efk-es-default-0")
		if v, _, _ := unstructured.NestedBool(pod.Object, "spec", "automountServiceAccountToken"); !v {
			t.Errorf("ECK pod lacks automountServiceAccountToken: true")
		}
		if r := record(t, "Pod", ns, "efk-es-default-0"); !r.Injected {
			t.Errorf("the stand-in did not mesh the ECK pod with its token: %+v", r)
		}
	})

	t.Run("after linkerd-config changes to a 2.14-style one the next Job is disabled", func(t *testing.T) {
		s.installLinkerd(t, "linkerd", linkerdConfig214)
		if err := s.waitJobVerdict(ctx, probe, "disabled", nil); err != nil {
			t.Fatal(err)
		}
		ns := s.standInNamespace(t, "facts-214-job")
		s.apply(t, ns, "jobs/job.yaml")
		wantAnnotation(t, s.get(t, gvrJob, ns, "db-migrate"), policy.AnnotationInject, "disabled")
		pod := s.waitPods(t, ns, "job-name=db-migrate", 1)[0]
		if n := countProxies(pod); n != 0 {
			t.Errorf("Job pod has %d proxies, want none", n)
		}
		if r := record(t, "Pod", ns, "db-migrate-"); r.Injected || r.Skipped != injector.SkipNotEnabled {
			t.Errorf("stand-in record %+v, want skipped as disabled", r)
		}
	})
}

// Linkerd ignores linkerd.io/inject on a workload's own metadata and
// silently skips invalid values; our webhook says so, and kubectl prints it.
func TestKubectlPrintsLinkerdAnnotationWarnings(t *testing.T) {
	s := need(t)
	t.Parallel()
	labels, annotations := meshedNamespace(policy.ModeEnforce)
	ns := s.namespace(t, "lint", labels, annotations)
	_, stderr := s.kubectl(t, "", "apply", "-n", ns, "-f", filepath.Join(s.repo, "e2e", "testdata", "annotation-mistakes.yaml"))
	var misplaced, invalid bool
	for _, l := range strings.Split(stderr, "\n") {
		if !strings.HasPrefix(l, "Warning: ") {
			continue
		}
		misplaced = misplaced || strings.Contains(l, "linkerd.io/inject") && strings.Contains(l, "spec.template.metadata.annotations")
		invalid = invalid || strings.Contains(l, `"enable"`)
	}
	if !misplaced || !invalid {
		t.Errorf("kubectl did not print the misplaced and the invalid annotation warnings:\n%s", stderr)
	}
	// The lint only warns: the objects are stored as written.
	if v, ok := templateAnnotations(s.get(t, gvrDeployment, ns, "typo"))[policy.AnnotationInject]; !ok || v != "enable" {
		t.Errorf("the lint rewrote linkerd.io/inject: %q", v)
	}
}

// MySQL on a port no list knows, named mysql: the only thing that makes
// it opaque is our rule reading the port's name.
func TestMySQLOnANamedNonDefaultPortIsOpaque(t *testing.T) {
	s := need(t)
	t.Parallel()
	labels, annotations := meshedNamespace(policy.ModeEnforce)
	ns := s.namespace(t, "mysql-4406", labels, annotations)
	s.apply(t, ns, "mysql-4406/")
	wantList(t, s.get(t, gvrStatefulSet, ns, "orders-mysql"), policy.AnnotationOpaquePorts, "4406")
	wantList(t, s.get(t, gvrService, ns, "orders-mysql"), policy.AnnotationOpaquePorts, "4406")
	pod := s.waitPods(t, ns, "statefulset.kubernetes.io/pod-name=orders-mysql-0", 1)[0]
	wantList(t, podObject(t, pod), policy.AnnotationOpaquePorts, "4406")
}
