package fault

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/bench/proc"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
)

// binaryOnce builds the server once per test binary when LIP_BINARY is
// unset, into buildDir (removed by TestMain).
var (
	buildDir   = filepath.Join(os.TempDir(), fmt.Sprintf("lip-fault-bin-%d", os.Getpid()))
	binaryOnce = sync.OnceValues(func() (string, error) {
		if err := os.MkdirAll(buildDir, 0o755); err != nil {
			return "", err
		}
		return cluster.FindWebhookBinary(context.Background(), buildDir, io.Discard)
	})
)

func TestMain(m *testing.M) {
	cluster.Isolate()
	code := m.Run()
	os.RemoveAll(buildDir)
	os.Exit(code)
}

// server is one `linkerd-inject-policy serve` process on loopback.
type server struct {
	proc       *proc.Process
	args       []string
	binary     string
	port       int
	url        string // https://127.0.0.1:PORT/mutate
	healthURL  string // http://127.0.0.1:PORT/readyz
	metricsURL string // http://127.0.0.1:PORT/metrics
	log        *syncBuffer
}

// syncBuffer collects the server's output for failure messages.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

type serverOptions struct {
	certDir    string
	configPath string
	kubeconfig string
	port       int // 0: a free port
}

// startServer runs serve and waits for /readyz; it is killed at cleanup.
func startServer(t *testing.T, o serverOptions) *server {
	t.Helper()
	if testing.Short() {
		t.Skip("fault: runs the real server binary; skipped in -short mode")
	}
	bin, err := binaryOnce()
	if err != nil {
		t.Fatalf("webhook binary: %v", err)
	}
	if o.port == 0 {
		if o.port, err = cluster.FreePort(); err != nil {
			t.Fatal(err)
		}
	}
	health, err := cluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := cluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{
		binary:     bin,
		port:       o.port,
		url:        fmt.Sprintf("https://127.0.0.1:%d/mutate", o.port),
		healthURL:  fmt.Sprintf("http://127.0.0.1:%d/readyz", health),
		metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics),
		log:        &syncBuffer{},
	}
	s.args = []string{"serve",
		"--cert-dir=" + o.certDir,
		"--host=127.0.0.1",
		"--port=" + strconv.Itoa(o.port),
		"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(health),
		"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(metrics),
		"--log-level=error",
	}
	if o.configPath != "" {
		s.args = append(s.args, "--config="+o.configPath)
	}
	if o.kubeconfig != "" {
		s.args = append(s.args, "--kubeconfig="+o.kubeconfig)
	}
	s.start(t)
	t.Cleanup(func() {
		if s.proc != nil && !s.proc.Exited() {
			_ = s.proc.Stop(10 * time.Second)
		}
	})
	return s
}

// start (re)starts the process with the same arguments and waits for readiness.
func (s *server) start(t *testing.T) {
	t.Helper()
	p, err := proc.Start(s.binary, s.args, s.log)
	if err != nil {
		t.Fatal(err)
	}
	s.proc = p
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := p.WaitReady(ctx, s.healthURL, 20*time.Millisecond); err != nil {
		p.Kill()
		t.Fatalf("webhook not ready: %v\nlog:\n%s", err, s.log.tail(4000))
	}
}

// metric returns the sum of the samples of a counter whose name and labels
// start with prefix (e.g. `linkerd_inject_policy_config_reloads_total{result="failure"}`).
func (s *server) metric(t testing.TB, prefix string) float64 {
	t.Helper()
	v, err := s.metricValue(prefix)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// metricValue is metric for goroutines other than the test's.
func (s *server) metricValue(prefix string) (float64, error) {
	resp, err := http.Get(s.metricsURL)
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	var sum float64
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, prefix) {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum += v
	}
	return sum, nil
}

// writeCert writes a fresh serving certificate into dir and adds its CA to pool.
func writeCert(t testing.TB, dir string, pool *x509.CertPool) {
	t.Helper()
	ca, err := cluster.WriteServingCert(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatal("CA of the serving certificate does not parse")
	}
}

// newCertDir makes a certificate directory and a TLS client config trusting it.
func newCertDir(t testing.TB) (string, *tls.Config) {
	t.Helper()
	dir := t.TempDir()
	pool := x509.NewCertPool()
	writeCert(t, dir, pool)
	return dir, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// gvk is the kind of a request.
type gvk struct{ group, version, kind, resource string }

var (
	podKind = gvk{"", "v1", "Pod", "pods"}
	jobKind = gvk{"batch", "v1", "Job", "jobs"}
)

// reviewBody builds an AdmissionReview v1 CREATE request for object.
func reviewBody(t testing.TB, uid string, k gvk, namespace string, object any) []byte {
	t.Helper()
	review := map[string]any{
		"apiVersion": "admission.k8s.io/v1",
		"kind":       "AdmissionReview",
		"request": map[string]any{
			"uid":       uid,
			"kind":      map[string]any{"group": k.group, "version": k.version, "kind": k.kind},
			"resource":  map[string]any{"group": k.group, "version": k.version, "resource": k.resource},
			"namespace": namespace,
			"operation": "CREATE",
			"userInfo":  map[string]any{"username": "fault-test"},
			"object":    object,
		},
	}
	b, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jobObject is a Job whose pod template declares containerPort 3306 (so
// both the jobs and the opaque-ports rules have something to say).
func jobObject(name string) map[string]any {
	return map[string]any{
		"apiVersion": "batch/v1",
		"kind":       "Job",
		"metadata":   map[string]any{"name": name, "namespace": "batch"},
		"spec": map[string]any{
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": name}},
				"spec": map[string]any{
					"restartPolicy": "Never",
					"containers": []any{map[string]any{
						"name": "main", "image": "mysql:8",
						"ports": []any{map[string]any{"containerPort": 3306}},
					}},
				},
			},
		},
	}
}

// podObject is a bare Pod with the given annotations and container ports.
func podObject(name string, annotations map[string]any, ports ...any) map[string]any {
	container := map[string]any{"name": "main", "image": "busybox"}
	if len(ports) > 0 {
		var list []any
		for _, p := range ports {
			list = append(list, map[string]any{"containerPort": p})
		}
		container["ports"] = list
	}
	meta := map[string]any{"name": name, "namespace": "apps"}
	if annotations != nil {
		meta["annotations"] = annotations
	}
	return map[string]any{
		"apiVersion": "v1",
		"kind":       "Pod",
		"metadata":   meta,
		"spec":       map[string]any{"containers": []any{container}},
	}
}
