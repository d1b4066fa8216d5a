package bootstrap

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/repo"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
)

// testChartDir holds the test charts that mimic Linkerd's.
const testChartDir = "testdata/charts"

// webhookChartDir is this webhook's real chart, as bootstrap installs it.
func webhookChartDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join("..", "deploy", "charts", "linkerd-inject-policy")
	if _, err := os.Stat(filepath.Join(dir, "Chart.yaml")); err != nil {
		t.Fatalf("this webhook's chart: %v", err)
	}
	return dir
}

// serveChartRepo packages the test charts with Helm's own code and serves
// them, with an index.yaml, as a Helm repository over HTTP.
func serveChartRepo(t testing.TB) *httptest.Server {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{CRDsRelease, ControlPlaneRelease, VizRelease} {
		ch, err := loader.Load(filepath.Join(testChartDir, name))
		if err != nil {
			t.Fatalf("load test chart %s: %v", name, err)
		}
		if _, err := chartutil.Save(ch, dir); err != nil {
			t.Fatalf("package test chart %s: %v", name, err)
		}
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	idx, err := repo.IndexDirectory(dir, srv.URL)
	if err != nil {
		t.Fatalf("index test charts: %v", err)
	}
	if err := idx.WriteFile(filepath.Join(dir, "index.yaml"), 0o644); err != nil {
		t.Fatalf("write index.yaml: %v", err)
	}
	return srv
}

// parseStream splits a YAML stream (comments allowed) into objects.
func parseStream(t testing.TB, data []byte) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, doc := range strings.Split(string(data), "\n---") {
		doc = strings.TrimPrefix(strings.TrimSpace(doc), "---")
		if isOnlyComments(doc) {
			continue
		}
		m := map[string]any{}
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("output is not YAML: %v\n%s", err, doc)
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out
}

func isOnlyComments(doc string) bool {
	for _, l := range strings.Split(doc, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// progressLines returns the "[n/7] step: outcome (1.2s)" lines of an output.
func progressLines(out *bytes.Buffer) []string {
	var lines []string
	for _, l := range strings.Split(out.String(), "\n") {
		l = strings.TrimPrefix(l, "# ")
		if strings.HasPrefix(l, "[") {
			lines = append(lines, l)
		}
	}
	return lines
}

func TestMain(m *testing.M) {
	cluster.Isolate("github.com/cert-manager/cert-manager@v1.21.2")
	// envtest logs through controller-runtime's global logger; without one
	// it prints a warning with a stack trace into every e2e test's output.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(m.Run())
}
