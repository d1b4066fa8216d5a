package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
)

// writeServingCert writes a serving certificate for 127.0.0.1 signed by a
// fresh CA into dir (replacing what is there: a rotation), adds the CA to
// roots and returns the serial number of the certificate written.
func writeServingCert(t testing.TB, dir string, roots *x509.CertPool) *big.Int {
	t.Helper()
	caPEM, err := cluster.WriteServingCert(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("the new CA certificate does not parse")
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, "tls.crt"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatal("tls.crt holds no PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert.SerialNumber
}

// freePort asks the kernel for a loopback port that is free right now.
func freePort(t testing.TB) int {
	t.Helper()
	return cluster.FreePortForTest(t)
}

// configMapDir lays out a config file the way the kubelet mounts a ConfigMap:
// dir/config.yaml -> ..data/config.yaml, ..data -> ..<version>/.
type configMapDir struct {
	dir     string
	version int
}

func newConfigMapDir(t testing.TB, content string) *configMapDir {
	t.Helper()
	c := &configMapDir{dir: t.TempDir()}
	c.swap(t, content)
	if err := os.Symlink(filepath.Join("..data", "config.yaml"), c.path()); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *configMapDir) path() string { return filepath.Join(c.dir, "config.yaml") }

// swap publishes new content the kubelet's way: a new versioned directory,
// then an atomic rename of the ..data symlink onto it.
func (c *configMapDir) swap(t testing.TB, content string) {
	t.Helper()
	c.version++
	versioned := fmt.Sprintf("..v%d", c.version)
	if err := os.Mkdir(filepath.Join(c.dir, versioned), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, versioned, "config.yaml"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	tmpLink := filepath.Join(c.dir, "..data_tmp")
	if err := os.Symlink(versioned, tmpLink); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmpLink, filepath.Join(c.dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

// editInPlace rewrites the current version's file, as a person editing it would.
func (c *configMapDir) editInPlace(t testing.TB, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(c.dir, fmt.Sprintf("..v%d", c.version), "config.yaml"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func policyConfigYAML(mode string) string {
	// Quoted: YAML 1.1 reads a bare off as the boolean false.
	return "apiVersion: linkerd-inject-policy.io/v1alpha1\nkind: PolicyConfig\ndefaultMode: \"" + mode + "\"\n"
}

// eventually polls cond until it holds or the deadline passes. The deadline
// is generous on purpose: the machine is shared and this is not a timing test.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: never happened; last state: %s", what, last)
}

type runningServer struct {
	webhookURL, healthURL, metricsURL string
	certDir                           string
	client                            *http.Client
	cancel                            context.CancelFunc
	done                              chan error
}

func startServer(t *testing.T, o Options, roots *x509.CertPool) *runningServer {
	t.Helper()
	o.Host = "127.0.0.1"
	o.Port = freePort(t)
	o.HealthProbeBindAddress = "127.0.0.1:" + strconv.Itoa(freePort(t))
	o.MetricsBindAddress = "127.0.0.1:" + strconv.Itoa(freePort(t))
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &runningServer{
		webhookURL: fmt.Sprintf("https://127.0.0.1:%d%s", o.Port, Path),
		healthURL:  "http://" + o.HealthProbeBindAddress,
		metricsURL: "http://" + o.MetricsBindAddress + "/metrics",
		certDir:    o.CertDir,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			DisableKeepAlives: true, // every request sees the certificate served now
		}},
		cancel: cancel,
		done:   make(chan error, 1),
	}
	go func() { s.done <- Run(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(90 * time.Second):
			t.Error("server did not stop")
		}
	})
	eventually(t, "server ready", func() (bool, string) {
		select {
		case err := <-s.done:
			s.done <- err // for the cleanup
			t.Fatalf("server stopped early: %v", err)
		default:
		}
		resp, err := http.Get(s.healthURL + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK, string(b)
	})
	return s
}

func (s *runningServer) post(t *testing.T, body []byte, contentLength int64) (int, string, *admissionv1.AdmissionReview) {
	t.Helper()
	code, text, r, err := s.do(body, contentLength)
	if err != nil {
		t.Fatal(err)
	}
	return code, text, r
}

// do sends one review; safe to call from any goroutine.
func (s *runningServer) do(body []byte, contentLength int64) (int, string, *admissionv1.AdmissionReview, error) {
	req, err := http.NewRequest(http.MethodPost, s.webhookURL, bytes.NewReader(body))
	if err != nil {
		return 0, "", nil, err
	}
	if contentLength != 0 {
		req.ContentLength = contentLength
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, "", nil, fmt.Errorf("POST %s: %w", s.webhookURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, string(b), nil, nil
	}
	var r admissionv1.AdmissionReview
	if err := json.Unmarshal(b, &r); err != nil || r.Response == nil {
		return 0, "", nil, fmt.Errorf("200 answer is not an AdmissionReview with a response (%v): %s", err, b)
	}
	return resp.StatusCode, string(b), &r, nil
}

// metric returns the value of the first sample of name with all given labels.
func (s *runningServer) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get(s.metricsURL)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		return f
	}
	return 0
}

// servedSerial is the serial number of the certificate the server presents now.
func (s *runningServer) servedSerial(roots *x509.CertPool) (*big.Int, error) {
	host := strings.TrimPrefix(strings.TrimSuffix(s.webhookURL, Path), "https://")
	conn, err := tls.Dial("tcp", host, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

type patchKind int

const (
	answeredWithPatch patchKind = iota
	answeredWithWarnings
	answeredUnchanged
)

func classify(r *admissionv1.AdmissionReview) patchKind {
	switch {
	case len(r.Response.Patch) > 0:
		return answeredWithPatch
	case len(r.Response.Warnings) > 0:
		return answeredWithWarnings
	default:
		return answeredUnchanged
	}
}

func TestServerOverHTTPS(t *testing.T) {
	certDir := t.TempDir()
	roots := x509.NewCertPool()
	firstSerial := writeServingCert(t, certDir, roots)

	cfg := newConfigMapDir(t, policyConfigYAML("enforce"))
	srv := startServer(t, Options{CertDir: certDir, ConfigPath: cfg.path(), MaxRequestBytes: 256 << 10, Log: testLogger(t)}, roots)
	job := readReview(t, "job")

	t.Run("a job is answered with a patch that disables injection", func(t *testing.T) {
		code, body, r := srv.post(t, job, 0)
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		if !strings.Contains(string(r.Response.Patch), `"linkerd.io/inject":"disabled"`) && !strings.Contains(string(r.Response.Patch), `linkerd.io~1inject`) {
			t.Errorf("patch does not disable injection: %s", r.Response.Patch)
		}
	})

	t.Run("the server speaks TLS 1.2 or later only", func(t *testing.T) {
		host := strings.TrimPrefix(strings.TrimSuffix(srv.webhookURL, Path), "https://")
		conn, err := tls.Dial("tcp", host, &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10})
		if err == nil {
			conn.Close()
			t.Fatal("a TLS 1.1 handshake succeeded")
		}
	})

	hostile := []struct {
		name          string
		body          []byte
		contentLength int64
		want          int
	}{
		{"a body over the limit gets 413", bytes.Repeat([]byte("x"), 300<<10), 0, http.StatusRequestEntityTooLarge},
		{"a body over the limit sent without a length gets 413", bytes.Repeat([]byte("x"), 300<<10), -1, http.StatusRequestEntityTooLarge},
		{"garbage gets 400", []byte("{not json"), 0, http.StatusBadRequest},
		{"a review without uid gets 400", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"kind":{"kind":"Job"},"operation":"CREATE","object":{}}}`), 0, http.StatusBadRequest},
	}
	for _, h := range hostile {
		t.Run(h.name, func(t *testing.T) {
			code, body, _ := srv.post(t, h.body, h.contentLength)
			if code != h.want {
				t.Errorf("status %d, want %d: %s", code, h.want, body)
			}
		})
	}
	t.Run("the server is still up after hostile requests", func(t *testing.T) {
		if code, body, _ := srv.post(t, job, 0); code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		if got := srv.metric(t, "linkerd_inject_policy_requests_total", `outcome="too_large"`); got != 2 {
			t.Errorf("too_large requests counted %v, want 2", got)
		}
	})

	t.Run("a rotated certificate is served without restart", func(t *testing.T) {
		second := writeServingCert(t, certDir, roots)
		if second.Cmp(firstSerial) == 0 {
			t.Fatal("test generated the same serial twice")
		}
		eventually(t, "new certificate served", func() (bool, string) {
			got, err := srv.servedSerial(roots)
			if err != nil {
				return false, err.Error()
			}
			return got.Cmp(second) == 0, "serving serial " + got.String()
		})
		if code, body, _ := srv.post(t, job, 0); code != http.StatusOK {
			t.Fatalf("after rotation: status %d: %s", code, body)
		}
	})

	answerIs := func(want patchKind) func() (bool, string) {
		return func() (bool, string) {
			code, body, r := srv.post(t, job, 0)
			if code != http.StatusOK {
				return false, body
			}
			return classify(r) == want, body
		}
	}

	t.Run("a ConfigMap update to audit mode changes the answer without restart", func(t *testing.T) {
		cfg.swap(t, policyConfigYAML("audit"))
		eventually(t, "audit answer", answerIs(answeredWithWarnings))
		_, _, r := srv.post(t, job, 0)
		if !strings.HasPrefix(r.Response.Warnings[0], "linkerd-inject-policy (audit): Job/batch/nightly: would set linkerd.io/inject=disabled: ") {
			t.Errorf("audit warning: %q", r.Response.Warnings[0])
		}
		if got := srv.metric(t, "linkerd_inject_policy_config_reloads_total", `result="success"`); got != 1 {
			t.Errorf("successful reloads %v, want 1", got)
		}
	})

	t.Run("an invalid config changes nothing but the error counter", func(t *testing.T) {
		cfg.swap(t, "apiVersion: linkerd-inject-policy.io/v1alpha1\nkind: PolicyConfig\ndefaultMode: sometimes\n")
		eventually(t, "reload failure counted", func() (bool, string) {
			got := srv.metric(t, "linkerd_inject_policy_config_reload_failures_total")
			return got == 1, fmt.Sprintf("failures %v", got)
		})
		code, body, r := srv.post(t, job, 0)
		if code != http.StatusOK || classify(r) != answeredWithWarnings {
			t.Errorf("answer changed after an invalid config: %d %s", code, body)
		}
	})

	// The kubelet never does this, but a person might; the watch is on the
	// top directory, so the periodic re-read catches it.
	t.Run("editing the file in place takes effect too", func(t *testing.T) {
		cfg.editInPlace(t, policyConfigYAML("off"))
		eventually(t, "off answer", answerIs(answeredUnchanged))
	})

	t.Run("shutdown drains and returns cleanly", func(t *testing.T) {
		srv.cancel()
		select {
		case err := <-srv.done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
			srv.done <- err // for the cleanup
		case <-time.After(90 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	})
}

func TestRunFailsClearly(t *testing.T) {
	dir := t.TempDir()
	badConfig := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(badConfig, []byte("kind: PolicyConfig\nnotAField: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no certificate directory", Options{}, "certificate directory"},
		{"an invalid config file at start", Options{CertDir: dir, ConfigPath: badConfig}, badConfig},
		{"missing certificate files", Options{CertDir: dir, HealthProbeBindAddress: "0", MetricsBindAddress: "0", Port: freePort(t), Registry: prometheus.NewRegistry()}, "tls.crt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.o.Registry == nil {
				tt.o.Registry = prometheus.NewRegistry()
			}
			err := Run(context.Background(), tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run error %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestConfigReloaderFollowsAPlainFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(policyConfigYAML("enforce")), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	store := NewConfigStore(nil)
	r, err := newConfigReloader(path, store, m, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("reloader: %v", err)
		}
	}()

	steps := []struct {
		name, content string
		want          string
		failures      float64
	}{
		{"a valid edit is applied", policyConfigYAML("audit"), "audit", 0},
		{"an invalid edit keeps the configuration in force", "kind: PolicyConfig\nthisIsNot: aField\n", "audit", 1},
		{"the same invalid content again is not counted twice", "kind: PolicyConfig\nthisIsNot: aField\n", "audit", 1},
		{"a later valid edit is applied", policyConfigYAML("off"), "off", 1},
	}
	for _, s := range steps {
		if err := os.WriteFile(path, []byte(s.content), 0o644); err != nil {
			t.Fatal(err)
		}
		eventually(t, s.name, func() (bool, string) {
			mode := string(store.Load().DefaultMode)
			failures := counterValue(t, m.reloadFailures)
			return mode == s.want && failures == s.failures, fmt.Sprintf("mode %s, failures %v", mode, failures)
		})
	}
}

// gatedNamespaces holds each lookup until released, to keep a request in flight.
type gatedNamespaces struct {
	entered chan struct{}
	release chan struct{}
}

func (g gatedNamespaces) Labels(context.Context, string) (map[string]string, bool) {
	g.entered <- struct{}{}
	<-g.release
	return map[string]string{"linkerd-inject-policy.io/mode": "enforce"}, true
}

func TestShutdownDrainsInFlightRequests(t *testing.T) {
	certDir := t.TempDir()
	roots := x509.NewCertPool()
	writeServingCert(t, certDir, roots)
	gate := gatedNamespaces{entered: make(chan struct{}, 1), release: make(chan struct{})}
	// Readiness is checked before any admission request, so the gate only
	// holds the request below.
	srv := startServer(t, Options{CertDir: certDir, Namespaces: gate, Log: testLogger(t)}, roots)

	type result struct {
		code int
		body string
		r    *admissionv1.AdmissionReview
		err  error
	}
	answered := make(chan result, 1)
	job := readReview(t, "job")
	go func() {
		code, body, r, err := srv.do(job, 0)
		answered <- result{code, body, r, err}
	}()
	<-gate.entered
	srv.cancel() // SIGTERM, as far as Run is concerned
	// Give the server a moment to begin its shutdown before releasing the request.
	time.Sleep(200 * time.Millisecond)
	close(gate.release)

	res := <-answered
	if res.err != nil {
		t.Fatalf("in-flight request failed during shutdown: %v", res.err)
	}
	if res.code != http.StatusOK || res.r == nil || len(res.r.Response.Patch) == 0 {
		t.Errorf("in-flight request was not answered in full during shutdown: %d %s", res.code, res.body)
	}
	select {
	case err := <-srv.done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
		srv.done <- err
	case <-time.After(90 * time.Second):
		t.Fatal("Run did not return after the drain")
	}
}
