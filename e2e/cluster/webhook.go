package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/certs"
)

// MutatePath is the path `serve` answers admission reviews on (webhook.Path;
// not imported so that this harness builds whatever state the webhook
// package is in).
const MutatePath = "/mutate"

// WebhookOptions describe how to run our webhook binary next to the cluster.
type WebhookOptions struct {
	// Binary is the linkerd-inject-policy executable; empty: FindWebhookBinary.
	Binary string
	// ConfigPath is passed as --config; empty: the built-in defaults.
	ConfigPath string
	// CertDir holds tls.crt/tls.key; empty: a new one under the cluster's
	// Dir with a fresh self-signed certificate for 127.0.0.1.
	CertDir string
	// CABundle is the PEM CA of an existing CertDir (required with CertDir).
	CABundle []byte
	// Port of the HTTPS endpoint; 0: a free loopback port.
	Port int
	// Log receives the server's own log output (nil: a file under Dir/logs).
	Log io.Writer
}

// Webhook is our webhook server running as a child process on loopback.
type Webhook struct {
	// URL is what the apiserver calls (https://127.0.0.1:PORT/mutate).
	URL string
	// CABundle is the PEM CA that signed the serving certificate.
	CABundle []byte
	// Options are the effective options, reusable to restart the server on
	// the same port with the same certificate.
	Options WebhookOptions
	// HealthAddr and MetricsAddr are the probe and metrics listeners.
	HealthAddr, MetricsAddr string

	cmd  *exec.Cmd
	done chan struct{}
}

// StartWebhook runs `linkerd-inject-policy serve` on loopback with the
// cluster's kubeconfig (so it reads namespace labels) and waits for /readyz.
// It does not register it: build the registration with
// webhook.MutatingWebhookConfiguration and pass it to ApplyWebhookConfiguration.
func (c *Cluster) StartWebhook(ctx context.Context, o WebhookOptions) (*Webhook, error) {
	if o.Binary == "" {
		bin, err := FindWebhookBinary(ctx, c.Dir, c.log)
		if err != nil {
			return nil, err
		}
		o.Binary = bin
	}
	if o.CertDir == "" {
		dir, err := os.MkdirTemp(c.Dir, "webhook-certs-")
		if err != nil {
			return nil, fmt.Errorf("webhook cert dir: %w", err)
		}
		ca, err := WriteServingCert(dir, time.Now())
		if err != nil {
			return nil, err
		}
		o.CertDir, o.CABundle = dir, ca
	}
	if len(o.CABundle) == 0 {
		return nil, errors.New("webhook: CABundle is required with CertDir")
	}
	if o.Port == 0 {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		o.Port = p
	}
	healthPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	metricsPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	w := &Webhook{
		URL:         fmt.Sprintf("https://127.0.0.1:%d%s", o.Port, MutatePath),
		CABundle:    o.CABundle,
		Options:     o,
		HealthAddr:  "127.0.0.1:" + strconv.Itoa(healthPort),
		MetricsAddr: "127.0.0.1:" + strconv.Itoa(metricsPort),
		done:        make(chan struct{}),
	}
	args := []string{"serve",
		"--cert-dir=" + o.CertDir,
		"--host=127.0.0.1",
		"--port=" + strconv.Itoa(o.Port),
		"--kubeconfig=" + c.KubeconfigPath,
		"--health-probe-bind-address=" + w.HealthAddr,
		"--metrics-bind-address=" + w.MetricsAddr,
		"--log-level=debug",
	}
	if o.ConfigPath != "" {
		args = append(args, "--config="+o.ConfigPath)
	}
	logw := o.Log
	var logFile *os.File
	if logw == nil {
		logFile, err = os.OpenFile(filepath.Join(c.Dir, "logs", "webhook.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("webhook log: %w", err)
		}
		logw = logFile
	}
	cmd := exec.Command(o.Binary, args...)
	cmd.Stdout, cmd.Stderr = logw, logw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		if logFile != nil {
			logFile.Close()
		}
		return nil, fmt.Errorf("start webhook %s: %w", o.Binary, err)
	}
	w.cmd = cmd
	go func() {
		_ = cmd.Wait()
		if logFile != nil {
			logFile.Close()
		}
		close(w.done)
	}()

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+w.HealthAddr+"/readyz", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return w, nil
			}
		}
		select {
		case <-w.done:
			return nil, fmt.Errorf("webhook exited during start-up (%v)%s", cmd.ProcessState, c.logTail("webhook.log"))
		case <-ctx.Done():
			_ = w.Stop()
			return nil, fmt.Errorf("webhook not ready on %s within 30s%s", w.HealthAddr, c.logTail("webhook.log"))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop terminates the webhook process (SIGTERM, then SIGKILL after 10s).
func (w *Webhook) Stop() error {
	if w == nil || w.cmd == nil || w.cmd.Process == nil {
		return nil
	}
	select {
	case <-w.done:
		return nil
	default:
	}
	_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-w.done:
		return nil
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
		<-w.done
		return errors.New("webhook did not stop within 10s of SIGTERM; killed")
	}
}

// Exited reports whether the webhook process has ended.
func (w *Webhook) Exited() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// ApplyWebhookConfiguration creates cfg or replaces the one of the same name.
func (c *Cluster) ApplyWebhookConfiguration(ctx context.Context, cfg *admissionregistrationv1.MutatingWebhookConfiguration) error {
	cs, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	api := cs.AdmissionregistrationV1().MutatingWebhookConfigurations()
	existing, err := api.Get(ctx, cfg.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := api.Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create MutatingWebhookConfiguration %s: %w", cfg.Name, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("get MutatingWebhookConfiguration %s: %w", cfg.Name, err)
	}
	cfg = cfg.DeepCopy()
	cfg.ResourceVersion = existing.ResourceVersion
	if _, err := api.Update(ctx, cfg, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update MutatingWebhookConfiguration %s: %w", cfg.Name, err)
	}
	return nil
}

// FindWebhookBinary returns $LIP_BINARY if set, else builds
// ./cmd/linkerd-inject-policy into dir.
func FindWebhookBinary(ctx context.Context, dir string, log io.Writer) (string, error) {
	if b := os.Getenv("LIP_BINARY"); b != "" {
		if st, err := os.Stat(b); err != nil || st.IsDir() {
			return "", fmt.Errorf("LIP_BINARY=%s is not a file (run `make build`)", b)
		}
		return b, nil
	}
	root, err := repoRoot(ctx)
	if err != nil {
		return "", fmt.Errorf("find the webhook binary: %w", err)
	}
	out := filepath.Join(dir, "linkerd-inject-policy")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	fmt.Fprintf(log, "cluster: LIP_BINARY unset; building ./cmd/linkerd-inject-policy\n")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/linkerd-inject-policy")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/linkerd-inject-policy: %w\n%s", err, stderr.String())
	}
	return out, nil
}

// WriteServingCert writes tls.crt and tls.key for 127.0.0.1/localhost into
// dir, signed by a fresh CA, and returns the CA's PEM (the caBundle). The key
// is written first, then the certificate, each by rename: a server reloading
// the directory sees whole files, and calling it again on a served directory
// is a certificate rotation.
func WriteServingCert(dir string, now time.Time) ([]byte, error) {
	const validity = 24 * time.Hour
	ca, err := certs.GenerateServingCA(now, validity)
	if err != nil {
		return nil, err
	}
	serving, err := certs.GenerateServingCert(ca, []string{"127.0.0.1", "localhost"}, now, validity)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"tls.key", serving.KeyPEM}, {"tls.crt", serving.CertPEM}} {
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path+".tmp", f.data, 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", f.name, err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			return nil, fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	return ca.CertPEM, nil
}

// FreePort asks the kernel for a free loopback TCP port, never one it has
// given out before in this process. Another process may take it before it is
// bound; the window is tiny and a failure is reported.
// The tests, the fault tests and the benchmarks all use this one.
func FreePort() (int, error) {
	freePorts.Lock()
	defer freePorts.Unlock()
	// The kernel may hand a port it just freed out again, and callers ask
	// for several before they listen on any: never give one out twice.
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free loopback port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !freePorts.given[port] {
			freePorts.given[port] = true
			return port, nil
		}
	}
	return 0, errors.New("find a free loopback port: the kernel keeps offering ports already given out")
}

// freePorts are the ports FreePort has given out in this process.
var freePorts = struct {
	sync.Mutex
	given map[int]bool
}{given: map[int]bool{}}

// FreePortForTest is FreePort for tests: it fails t when no port is free.
func FreePortForTest(t testing.TB) int {
	t.Helper()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// Poll calls cond every 100ms until it returns true, an error, or ctx ends;
// the error then says what was being waited for and the last error seen.
func Poll(ctx context.Context, what string, cond func(context.Context) (bool, error)) error {
	var last error
	for {
		ok, err := cond(ctx)
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("waiting for %s: %w (last error: %v)", what, ctx.Err(), last)
			}
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
