// Command noop-webhook is the baseline of the benchmarks: the same
// controller-runtime webhook.Server, TLS settings and probe endpoint as
// `linkerd-inject-policy serve`, answering every AdmissionReview on /mutate
// with allowed and no patch. The difference between the two is the cost of
// our decoding, policy evaluation and patching.
//
// With --patch-file it is the patching no-op: it answers every review with
// the JSON patch in that file (computed beforehand by benchrun from what our
// handler answers for the benchmark's workload), evaluating no policy. The
// apiserver then does the same work of applying a patch as with our webhook,
// so what is left between the two is our own cost.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/bench"
)

func main() {
	certDir := flag.String("cert-dir", "", "directory with tls.crt and tls.key")
	host := flag.String("host", "127.0.0.1", "address to bind the webhook on")
	port := flag.Int("port", 9443, "HTTPS port of the webhook")
	health := flag.String("health-probe-bind-address", "127.0.0.1:8081", "address of /readyz")
	patchFile := flag.String("patch-file", "", "file with a JSON patch (an array of operations) to answer every review with; empty: allowed, no patch")
	flag.Parse()
	if *certDir == "" {
		fmt.Fprintln(os.Stderr, "noop-webhook: --cert-dir is required")
		os.Exit(2)
	}
	var patch []byte
	if *patchFile != "" {
		var err error
		if patch, err = readPatch(*patchFile); err != nil {
			fmt.Fprintln(os.Stderr, "noop-webhook:", err)
			os.Exit(2)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, *certDir, *host, *port, *health, patch); err != nil {
		fmt.Fprintln(os.Stderr, "noop-webhook:", err)
		os.Exit(1)
	}
}

// readPatch reads a JSON patch file: a non-empty array of operations.
func readPatch(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--patch-file: %w", err)
	}
	var ops []map[string]any
	if err := json.Unmarshal(b, &ops); err != nil || len(ops) == 0 {
		return nil, fmt.Errorf("--patch-file %s: want a non-empty JSON array of patch operations (%v)", path, err)
	}
	return b, nil
}

func run(ctx context.Context, certDir, host string, port int, healthAddr string, patch []byte) error {
	srv := ctrlwebhook.NewServer(ctrlwebhook.Options{
		Host:    host,
		Port:    port,
		CertDir: certDir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) {
			c.MinVersion = tls.VersionTLS12
			c.NextProtos = []string{"http/1.1"}
		}},
	})
	srv.Register("/mutate", bench.NoopWebhook(patch))
	ln, err := net.Listen("tcp", healthAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", healthAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/readyz", http.StripPrefix("/readyz", &healthz.Handler{Checks: map[string]healthz.Checker{"webhook": srv.StartedChecker()}}))
	probes := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = probes.Serve(ln) }()
	defer probes.Close()
	if err := srv.Start(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("webhook server: %w", err)
	}
	return nil
}
