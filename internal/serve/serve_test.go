package serve

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
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
)

// servingCertDir writes a serving certificate for 127.0.0.1 into a new
// directory and returns it with a pool that trusts it.
func servingCertDir(t *testing.T) (string, *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	caPEM, err := cluster.WriteServingCert(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return dir, pool
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	return cluster.FreePortForTest(t)
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestServeRejectsBadFlags(t *testing.T) {
	certDir, _ := servingCertDir(t)
	badConfig := writeConfig(t, "apiVersion: linkerd-inject-policy.io/v1alpha1\nkind: PolicyConfig\nnoSuchField: true\n")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a certificate directory is required", []string{}, "--cert-dir"},
		{"an unknown log level is refused", []string{"--cert-dir", certDir, "--log-level", "loud"}, "--log-level"},
		{"an unknown log format is refused", []string{"--cert-dir", certDir, "--log-format", "xml"}, "--log-format"},
		{"an unknown certificate mode is refused", []string{"--cert-dir", certDir, "--cert-mode", "sideways"}, "--cert-mode"},
		{"a negative report interval is refused", []string{"--cert-dir", certDir, "--report-interval", "-1m"}, "--report-interval"},
		{"a report interval is refused by a binary that writes no reports", []string{"--cert-dir", certDir, "--report-interval", "10m"}, "linkerd-inject-policy serve"},
		{"a zero body limit is refused", []string{"--cert-dir", certDir, "--max-request-bytes", "0"}, "--max-request-bytes"},
		{"an invalid config file is refused at start", []string{"--cert-dir", certDir, "--config", badConfig}, "--config"},
		{"a missing config file is refused at start", []string{"--cert-dir", certDir, "--config", filepath.Join(t.TempDir(), "absent.yaml")}, "absent.yaml"},
		{"self-managed certificates need a cluster", []string{"--cert-dir", certDir, "--cert-mode", "self-managed"}, "needs a cluster"},
	}
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		t.Skip("running inside a cluster: the no-cluster cases do not apply")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := NewCommand("test", nil)
			cmd.SetArgs(tt.args)
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			err := cmd.ExecuteContext(context.Background())
			if err == nil {
				t.Fatal("serve accepted the flags")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if code := ExitCode(err); code != 2 {
				t.Errorf("exit code %d, want 2 (bad usage)", code)
			}
		})
	}
}

// TestServeAnswersAdmissionReviews runs the serve command in-process, as the
// binary would, and sends it a real AdmissionReview over HTTPS.
func TestServeAnswersAdmissionReviews(t *testing.T) {
	certDir, roots := servingCertDir(t)
	config := writeConfig(t, "apiVersion: linkerd-inject-policy.io/v1alpha1\nkind: PolicyConfig\ndefaultMode: enforce\n")
	port := freeLoopbackPort(t)
	health := "127.0.0.1:" + strconv.Itoa(freeLoopbackPort(t))
	metrics := "127.0.0.1:" + strconv.Itoa(freeLoopbackPort(t))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		cmd := NewCommand("test", nil)
		cmd.SetArgs([]string{"--cert-dir", certDir, "--config", config, "--host", "127.0.0.1", "--port", strconv.Itoa(port),
			"--health-probe-bind-address", health, "--metrics-bind-address", metrics, "--log-level", "error"})
		done <- cmd.ExecuteContext(ctx)
	}()
	stopped := false
	defer func() {
		cancel()
		if !stopped {
			<-done
		}
	}()

	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + health + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("serve stopped before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("serve never became ready")
		}
		time.Sleep(100 * time.Millisecond)
	}

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	review, err := os.ReadFile(filepath.Join("..", "..", "webhook", "testdata", "reviews", "job.json"))
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("https://127.0.0.1:%d/mutate", port)

	resp, err := client.Post(url, "application/json", bytes.NewReader(review))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var answer admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &answer); err != nil || answer.Response == nil {
		t.Fatalf("not an AdmissionReview answer (%v): %s", err, body)
	}
	if !answer.Response.Allowed || !strings.Contains(string(answer.Response.Patch), "disabled") {
		t.Errorf("want the job patched with injection disabled, got allowed=%v patch %s", answer.Response.Allowed, answer.Response.Patch)
	}

	resp, err = client.Post(url, "application/json", strings.NewReader("not a review"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("garbage answered %d, want 400", resp.StatusCode)
	}

	m, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(m.Body)
	m.Body.Close()
	if !strings.Contains(string(text), `linkerd_inject_policy_requests_total{kind="Job",mode="enforce",operation="CREATE",outcome="patched"} 1`) {
		t.Errorf("/metrics does not count the patched job:\n%s", text)
	}

	cancel()
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Errorf("serve returned %v after cancel, want a clean stop", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("serve did not stop after cancel")
	}
}
