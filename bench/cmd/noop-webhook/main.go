// Command noop-webhook is the baseline of the benchmarks: the same
// controller-runtime webhook.Server, TLS settings and probe endpoint as
// `linkerd-inject-policy serve`, answering every AdmissionReview on /mutate
// with allowed and no patch. The difference between the two is the cost of
// our decoding, policy evaluation and patching.
package main

import (
	"context"
	"crypto/tls"
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
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

func main() {
	certDir := flag.String("cert-dir", "", "directory with tls.crt and tls.key")
	host := flag.String("host", "127.0.0.1", "address to bind the webhook on")
	port := flag.Int("port", 9443, "HTTPS port of the webhook")
	health := flag.String("health-probe-bind-address", "127.0.0.1:8081", "address of /readyz")
	flag.Parse()
	if *certDir == "" {
		fmt.Fprintln(os.Stderr, "noop-webhook: --cert-dir is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, *certDir, *host, *port, *health); err != nil {
		fmt.Fprintln(os.Stderr, "noop-webhook:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, certDir, host string, port int, healthAddr string) error {
	srv := ctrlwebhook.NewServer(ctrlwebhook.Options{
		Host:    host,
		Port:    port,
		CertDir: certDir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) {
			c.MinVersion = tls.VersionTLS12
			c.NextProtos = []string{"http/1.1"}
		}},
	})
	srv.Register("/mutate", &admission.Webhook{
		Handler: admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
			return admission.Allowed("")
		}),
	})
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
