package bootstrap

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
)

// assertNoPrivateKey fails if the output, or any Secret's data once
// base64-decoded, holds a PEM private key.
func assertNoPrivateKey(t *testing.T, out string, objs []*unstructured.Unstructured) {
	t.Helper()
	if strings.Contains(out, "PRIVATE KEY") {
		t.Error("dry run printed a private key")
	}
	for _, o := range objs {
		if o.GetKind() != "Secret" {
			continue
		}
		data, _, _ := unstructured.NestedStringMap(o.Object, "data")
		for k, v := range data {
			dec, _ := base64.StdEncoding.DecodeString(v)
			if strings.Contains(string(dec), "PRIVATE KEY") {
				t.Errorf("dry run printed the private key %s of Secret %s/%s (base64)", k, o.GetNamespace(), o.GetName())
			}
		}
	}
}

// webhookImage is the image of the webhook's Deployment in a dry run.
func webhookImage(t *testing.T, objs []*unstructured.Unstructured) string {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == "Deployment" && o.GetNamespace() == WebhookNamespace {
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			if len(cs) > 0 {
				img, _, _ := unstructured.NestedString(cs[0].(map[string]any), "image")
				return img
			}
		}
	}
	t.Fatal("no webhook Deployment in the dry run")
	return ""
}

// offlineDryRun runs an offline --dry-run of the test charts with mod applied.
func offlineDryRun(t *testing.T, mod func(*Options)) (string, error) {
	t.Helper()
	o := Options{RESTConfig: &rest.Config{Host: "https://127.0.0.1:1"}, ChartDir: testChartDir, DryRun: true, KubeVersion: "v1.31.0"}
	if mod != nil {
		mod(&o)
	}
	var out bytes.Buffer
	err := Run(context.Background(), o, &out)
	return out.String(), err
}

func TestOfflineDryRunNeedsAKubernetesVersionTheChartsAccept(t *testing.T) {
	t.Run("without --kube-version it says to pass one", func(t *testing.T) {
		_, err := offlineDryRun(t, func(o *Options) { o.KubeVersion = "" })
		assertExactError(t, err, "--dry-run without a reachable cluster needs --kube-version (Helm would assume Kubernetes v1.20, which Linkerd's charts refuse); pass the version of the cluster you will install on, like --kube-version v1.31.0")
	})
	t.Run("a version the charts' kubeVersion refuses is named with the constraint", func(t *testing.T) {
		_, err := offlineDryRun(t, func(o *Options) { o.KubeVersion = "v1.30.4" })
		assertExactError(t, err, "chart linkerd-crds 2026.11.1 requires Kubernetes >=1.31.0-0, not v1.30.4; upgrade the cluster, or choose charts for it with --version")
	})
	t.Run("a version they accept renders", func(t *testing.T) {
		out, err := offlineDryRun(t, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "kind: Deployment") {
			t.Errorf("nothing rendered:\n%s", tail(out, 20))
		}
	})
}

func TestWebhookValuesReachTheWebhookChartAndWinOverBootstrapsOwn(t *testing.T) {
	valuesFile := filepath.Join(t.TempDir(), "webhook.yaml")
	if err := os.WriteFile(valuesFile, []byte("image:\n  repository: registry.example/lip\nreplicaCount: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := offlineDryRun(t, func(o *Options) {
		o.BinaryVersion = "v0.3.0"
		o.WebhookValuesFiles = []string{valuesFile}
		o.WebhookSetValues = []string{"image.tag=canary"}
	})
	if err != nil {
		t.Fatal(err)
	}
	objs := parseStream(t, []byte(out))
	if got := webhookImage(t, objs); got != "registry.example/lip:canary" {
		t.Errorf("webhook image = %q, want registry.example/lip:canary", got)
	}
	for _, o := range objs {
		if o.GetKind() == "Deployment" && o.GetNamespace() == WebhookNamespace {
			if n, _, _ := unstructured.NestedFieldNoCopy(o.Object, "spec", "replicas"); fmt.Sprint(n) != "3" {
				t.Errorf("webhook replicas = %v, want 3 from --webhook-values", n)
			}
		}
	}
	_, err = offlineDryRun(t, func(o *Options) { o.WebhookSetValues = []string{"image.tag"} })
	assertExactError(t, err, `read the webhook's values: failed parsing --set data: key "tag" has no value; check the --webhook-values files exist and are YAML, and --webhook-set is key=value[,key=value]`)
}

// packageCharts saves the test charts as NAME-VERSION.tgz, as helm pull
// does, once for every version.
func packageCharts(t *testing.T, dir string, versions ...string) {
	t.Helper()
	for _, name := range []string{CRDsRelease, ControlPlaneRelease, VizRelease} {
		for _, v := range versions {
			ch, err := loader.Load(filepath.Join(testChartDir, name))
			if err != nil {
				t.Fatal(err)
			}
			ch.Metadata.Version = v
			if _, err := chartutil.Save(ch, dir); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestChartDirVersions(t *testing.T) {
	dir := t.TempDir()
	packageCharts(t, dir, "2026.9.1", "2026.10.1")
	t.Run("without --version the newest version is taken, not the last in name order", func(t *testing.T) {
		ch, err := dirSource{dir: dir}.Load(ControlPlaneRelease)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Metadata.Version != "2026.10.1" {
			t.Errorf("version %s, want 2026.10.1", ch.Metadata.Version)
		}
	})
	t.Run("--version takes exactly that version", func(t *testing.T) {
		ch, err := dirSource{dir: dir, version: "2026.9.1"}.Load(ControlPlaneRelease)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Metadata.Version != "2026.9.1" {
			t.Errorf("version %s, want 2026.9.1", ch.Metadata.Version)
		}
	})
	t.Run("--version the directory lacks names the versions it has", func(t *testing.T) {
		_, err := dirSource{dir: dir, version: "2026.11.1"}.Load(ControlPlaneRelease)
		assertExactError(t, err, "chart linkerd-control-plane version 2026.11.1 not in --chart-dir "+dir+" (it has 2026.9.1, 2026.10.1); helm pull linkerd-edge/linkerd-control-plane --version 2026.11.1 into it, or pass one of those to --version")
	})
	t.Run("an unpacked chart counts with its own version", func(t *testing.T) {
		_, err := dirSource{dir: testChartDir, version: "2026.9.1"}.Load(VizRelease)
		assertExactError(t, err, "chart linkerd-viz version 2026.9.1 not in --chart-dir testdata/charts (it has 2026.11.1); helm pull linkerd-edge/linkerd-viz --version 2026.9.1 into it, or pass one of those to --version")
	})
	t.Run("bootstrap installs the version asked for", func(t *testing.T) {
		out, err := offlineDryRun(t, func(o *Options) { o.ChartDir = dir; o.Version = "2026.9.1" })
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "linkerd-control-plane 2026.9.1 rendered") || strings.Contains(out, "2026.10.1") {
			t.Errorf("progress does not show version 2026.9.1 alone:\n%s", tail(out, 10))
		}
	})
}

func TestAChartWithoutItsSubchartBuiltIsNamed(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(testChartDir, ControlPlaneRelease)
	dst := filepath.Join(dir, ControlPlaneRelease)
	// A source checkout: Chart.yaml lists partials, charts/ is not built.
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "charts" {
			return filepath.SkipDir
		}
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = dirSource{dir: dir}.Load(ControlPlaneRelease)
	assertExactError(t, err, "chart linkerd-control-plane at "+dst+" needs subchart partials, which is not in its charts/ directory; run helm dependency build "+dst+", or use the packaged chart from Linkerd's Helm repository (helm pull)")
}

func TestTheEmbeddedWebhookChartIsTheSourceTreesChart(t *testing.T) {
	onDisk, err := loader.Load(webhookChartDir(t))
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := embeddedWebhookChart("dev")
	if err != nil {
		t.Fatal(err)
	}
	if chartDigest(embedded) != chartDigest(onDisk) {
		t.Error("the chart built into the binary differs from deploy/charts/linkerd-inject-policy")
	}
	released, err := embeddedWebhookChart("v1.4.2")
	if err != nil {
		t.Fatal(err)
	}
	if released.Metadata.Version != "1.4.2" || released.Metadata.AppVersion != "v1.4.2" {
		t.Errorf("a release binary's chart is %s (app %s), want 1.4.2 (app v1.4.2)", released.Metadata.Version, released.Metadata.AppVersion)
	}
	if dev, _ := embeddedWebhookChart("52ce2be-dirty"); dev.Metadata.Version != onDisk.Metadata.Version {
		t.Errorf("a development binary's chart is version %s, want the chart's own %s", dev.Metadata.Version, onDisk.Metadata.Version)
	}
}

// Loading a chart from its directory or from the .tgz Helm packages of it
// gives the same digest: a repository and a --chart-dir are the same chart.
func TestChartDigestIsTheSameUnpackedAndPackaged(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{CRDsRelease, ControlPlaneRelease, VizRelease} {
		unpacked, err := loader.Load(filepath.Join(testChartDir, name))
		if err != nil {
			t.Fatal(err)
		}
		path, err := chartutil.Save(unpacked, dir)
		if err != nil {
			t.Fatal(err)
		}
		packaged, err := loader.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if chartDigest(unpacked) != chartDigest(packaged) {
			t.Errorf("%s: the packaged chart has another digest than the unpacked one", name)
		}
		if len(packaged.Dependencies()) != 1 || packaged.Dependencies()[0].Name() != "partials" {
			t.Errorf("%s: packaged with subcharts %v, want partials", name, packaged.Dependencies())
		}
	}
}

// The decision a re-run rests on: Helm stores neither the subcharts nor
// the values it merged from them as loaded, and the chart's generated TLS
// differs at every render, so only the recorded digest, the values and the
// set of objects decide.
func TestSameReleaseDecidesByChartValuesAndObjects(t *testing.T) {
	ch, err := loader.Load(filepath.Join(testChartDir, ControlPlaneRelease))
	if err != nil {
		t.Fatal(err)
	}
	r := newHelmRelease(ControlPlaneRelease, ControlPlaneNamespace, ch, map[string]any{"controllerReplicas": 1})
	manifest := func(key string, extra ...string) string {
		docs := []string{"apiVersion: v1\nkind: Secret\nmetadata:\n  name: linkerd-proxy-injector-k8s-tls\ndata:\n  tls.key: " + key}
		docs = append(docs, extra...)
		return "---\n" + strings.Join(docs, "\n---\n")
	}
	deployed := &release.Release{
		Config:   map[string]any{"controllerReplicas": float64(1)},
		Manifest: manifest("b2xk"),
		Labels:   map[string]string{chartDigestLabel: r.digest[:32]},
		// What Helm stores: no subcharts.
		Chart: &chart.Chart{Metadata: ch.Metadata, Templates: ch.Templates, Values: ch.Values},
	}
	tests := []struct {
		name     string
		deployed func(d release.Release) *release.Release
		rendered string
		vals     map[string]any
		want     bool
	}{
		{"regenerated TLS with the same chart and values is the same release", nil, manifest("bmV3"), nil, true},
		{"other values are not", nil, manifest("bmV3"), map[string]any{"controllerReplicas": 2}, false},
		{"another chart is not", func(d release.Release) *release.Release {
			d.Labels = map[string]string{chartDigestLabel: strings.Repeat("0", 32)}
			return &d
		}, manifest("bmV3"), nil, false},
		{"another set of objects is not (the cluster gained an API the chart tests)", nil, manifest("bmV3", "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata:\n  name: x"), nil, false},
		{"a release from before the digest label is the same only if its manifest is", func(d release.Release) *release.Release {
			d.Labels = nil
			return &d
		}, manifest("bmV3"), nil, false},
		{"an identical manifest is the same without a label", func(d release.Release) *release.Release {
			d.Labels = nil
			return &d
		}, manifest("b2xk"), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := deployed
			if tt.deployed != nil {
				d = tt.deployed(*deployed)
			}
			rr := r
			if tt.vals != nil {
				rr.values = tt.vals
			}
			if got := sameRelease(d, &release.Release{Manifest: tt.rendered}, rr); got != tt.want {
				t.Errorf("sameRelease = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHookErrorNamesTheHookAndItsNamespace(t *testing.T) {
	rel := &release.Release{Name: VizRelease, Namespace: VizNamespace, Hooks: []*release.Hook{
		{Name: "namespace-metadata", Kind: "ServiceAccount", Events: []release.HookEvent{release.HookPostInstall}, LastRun: release.HookExecution{Phase: release.HookPhaseSucceeded}},
		{Name: "namespace-metadata", Kind: "Job", Events: []release.HookEvent{release.HookPostInstall}, LastRun: release.HookExecution{Phase: release.HookPhaseFailed}},
	}}
	err := hookError(rel, errorString("install release linkerd-viz/linkerd-viz: failed post-install: 1 error occurred:\n\t* timed out waiting for the condition"), 90*time.Second)
	assertExactError(t, err, "post-install hook Job linkerd-viz/namespace-metadata of release linkerd-viz/linkerd-viz did not complete within 1m30s; check its pods (kubectl -n linkerd-viz describe job namespace-metadata), raise --timeout, or pass --wait=false to start hooks without waiting; a re-run replaces the hook")
	if got := hookError(&release.Release{}, errorString("boom"), time.Second); got.Error() != "boom" {
		t.Errorf("an error without a failed hook became %q", got)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

func TestPodMonitorsFollowTheLinkerdVersion(t *testing.T) {
	for v, want := range map[string]string{
		"edge-26.11.1": "admin", "edge-25.6.3": "admin", "edge-25.6.2": "admin-http", "edge-24.11.8": "admin-http",
		"stable-2.19.0": "admin", "stable-2.18.4": "admin-http", "stable-2.14.10": "admin-http", "": "admin", "enterprise-2.17": "admin",
	} {
		if got := podMonitorSet(v); got != want {
			t.Errorf("podMonitorSet(%q) = %q, want %q", v, got, want)
		}
	}
}

// The current PodMonitors select the test chart's admin ports as Linkerd's
// own PodMonitor template does: every control-plane *-admin port, not the
// proxy's linkerd-admin, which the proxy PodMonitor scrapes.
func TestCurrentPodMonitorsScrapeTheControlPlanesAdminPorts(t *testing.T) {
	out, err := offlineDryRun(t, func(o *Options) { o.Viz = true })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "3 PodMonitors (admin ports) rendered") {
		t.Errorf("progress does not name the current PodMonitors:\n%s", tail(out, 10))
	}
	objs := parseStream(t, []byte(out))
	var ports []string
	for _, o := range objs {
		if o.GetKind() != "Deployment" || o.GetNamespace() != ControlPlaneNamespace {
			continue
		}
		cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		for _, c := range cs {
			ps, _, _ := unstructured.NestedSlice(c.(map[string]any), "ports")
			for _, p := range ps {
				ports = append(ports, p.(map[string]any)["name"].(string))
			}
		}
	}
	scraped := func(monitor string, port string) bool {
		pm := find(objs, "PodMonitor", monitor)
		if pm == nil {
			t.Fatalf("no PodMonitor %s", monitor)
		}
		eps, _, _ := unstructured.NestedSlice(pm.Object, "spec", "podMetricsEndpoints")
		rels, _, _ := unstructured.NestedSlice(eps[0].(map[string]any), "relabelings")
		for _, r := range rels {
			rl := r.(map[string]any)
			src, _ := rl["sourceLabels"].([]any)
			if len(src) != 1 || src[0] != "__meta_kubernetes_pod_container_port_name" {
				continue
			}
			// Prometheus anchors relabel regexes.
			match := regexp.MustCompile("^(?:" + rl["regex"].(string) + ")$").MatchString(port)
			if (rl["action"] == "keep" && !match) || (rl["action"] == "drop" && match) {
				return false
			}
		}
		return true
	}
	var got []string
	for _, p := range ports {
		if scraped("linkerd-controller", p) {
			got = append(got, p)
		}
	}
	if want := "dest-admin ident-admin injector-admin policy-admin spval-admin"; strings.Join(sortedCopy(got), " ") != want {
		t.Errorf("linkerd-controller scrapes ports %v, want %s", got, want)
	}
	if !strings.Contains(out, "regex: ^linkerd-proxy;linkerd-admin;linkerd$") {
		t.Error("the proxy PodMonitor does not keep linkerd-admin of linkerd-proxy")
	}
}

func sortedCopy(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// assertExactError checks the whole one-line message.
func assertExactError(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	if err.Error() != want {
		t.Errorf("error\n got %q\nwant %q", err.Error(), want)
	}
}
