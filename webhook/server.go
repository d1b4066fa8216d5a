package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/facts"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// Defaults of Options (and of the serve command's flags).
const (
	DefaultPort                   = 9443
	DefaultHealthProbeBindAddress = ":8081"
	DefaultMetricsBindAddress     = ":8080"
	// shutdownGrace bounds how long in-flight requests may take to drain on
	// SIGTERM; the apiserver gives up on a webhook after at most 30s anyway.
	shutdownGrace = 30 * time.Second
)

// Registry is where the metrics live and where /metrics reads them from.
type Registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// Client is the part of the Kubernetes API the server reads: namespaces,
// ConfigMap linkerd-config and the server version. A kubernetes.Interface
// is one; the lean webhook binary gives one without the clients of every
// other API group (each linked client is resident memory).
type Client = facts.Client

// Options configure Run. The zero value plus a CertDir is a working server
// with the default policy and no cluster.
type Options struct {
	// Host is the address to bind the webhook on; "" means all addresses.
	Host string
	// Port of the HTTPS webhook; 0 means DefaultPort.
	Port int
	// CertDir holds tls.crt and tls.key, reloaded when they change.
	CertDir string
	// ConfigPath is a PolicyConfig file, watched for changes; "" means
	// policy.DefaultConfig().
	ConfigPath string
	// Client reads namespace labels (get/list/watch namespaces) and the
	// installed Linkerd's facts (list/watch ConfigMap linkerd-config, the
	// server version); nil means no cluster: every namespace gets the
	// config's defaultMode and the facts are unknown.
	Client Client
	// LinkerdNamespace is where linkerd-config is read; "" means
	// facts.DefaultLinkerdNamespace.
	LinkerdNamespace string
	// Namespaces, when set, supplies namespace labels instead of Client (tests
	// and benchmarks without a cluster, e.g. StaticNamespaces).
	Namespaces NamespaceLabels
	// HealthProbeBindAddress serves /healthz and /readyz; "" means
	// DefaultHealthProbeBindAddress, "0" disables.
	HealthProbeBindAddress string
	// MetricsBindAddress serves /metrics; "" means DefaultMetricsBindAddress, "0" disables.
	MetricsBindAddress string
	// MaxRequestBytes bounds an AdmissionReview body; 0 means DefaultMaxRequestBytes.
	MaxRequestBytes int64
	// MaxBytesInFlight bounds the bodies handled at once; 0 means DefaultMaxBytesInFlight.
	MaxBytesInFlight int64
	// BodyReadTimeout bounds reading one body; 0 means DefaultBodyReadTimeout.
	BodyReadTimeout time.Duration
	// EnableHTTP2 offers HTTP/2 on the webhook port. Off by default: HTTP/1.1
	// is enough for the apiserver and avoids HTTP/2 stream-reset attacks.
	EnableHTTP2 bool
	// Registry for the metrics; nil means controller-runtime's metrics.Registry.
	Registry Registry
	// Log is the server's logger; the zero Logger discards.
	Log logr.Logger
}

// Run serves the webhook, the probes and the metrics until ctx is cancelled,
// then stops accepting connections and drains in-flight requests. It returns
// an error if any part fails to start or stops unexpectedly.
func Run(ctx context.Context, o Options) error {
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.HealthProbeBindAddress == "" {
		o.HealthProbeBindAddress = DefaultHealthProbeBindAddress
	}
	if o.MetricsBindAddress == "" {
		o.MetricsBindAddress = DefaultMetricsBindAddress
	}
	if o.Registry == nil {
		o.Registry = crmetrics.Registry
	}
	if o.Log.GetSink() == nil {
		o.Log = logr.Discard()
	}
	if o.CertDir == "" {
		return errors.New("webhook: a certificate directory (tls.crt, tls.key) is required")
	}
	log := o.Log

	metrics, err := NewMetrics(o.Registry)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	// goRun runs a part of the server; the first to fail stops all others.
	goRun := func(name string, run func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil {
				errOnce.Do(func() { firstErr = fmt.Errorf("%s: %w", name, err) })
				cancel()
			}
		}()
	}

	store := NewConfigStore(nil)
	if o.ConfigPath != "" {
		reloader, err := newConfigReloader(o.ConfigPath, store, metrics, log)
		if err != nil {
			return err
		}
		goRun("config watcher", reloader.Run)
	}
	cfg := store.Load()

	namespaces := o.Namespaces
	readyChecks := map[string]healthz.Checker{}
	switch {
	case namespaces != nil:
		log.Info("namespace labels supplied by the caller")
	case o.Client != nil:
		nsCache := NewNamespaceCache(o.Client, log.WithName("namespaces"))
		nsCache.Start(ctx)
		namespaces = nsCache
		readyChecks["namespace-cache"] = nsCache.ReadyCheck
		log.Info("watching namespace labels", "label", policy.LabelMode)
	default:
		log.Info("no cluster configured (no --kubeconfig and not in a cluster): namespace labels are unknown, every namespace gets the default mode",
			"defaultMode", string(cfg.DefaultMode))
	}

	env := func() policy.Environment { return policy.Environment{} }
	if o.Client != nil {
		flog := log.WithName("facts")
		watcher := facts.NewWatcher(o.Client, o.LinkerdNamespace, func(u facts.Update) {
			metrics.setFactsState(u.State)
			if u.Note != "" {
				flog.Info("Linkerd facts "+u.State, "facts", u.Env.Summary(), "why", u.Note)
				return
			}
			flog.Info("Linkerd facts in force", "facts", u.Env.Summary())
		})
		metrics.setFactsState(facts.StateUnknown)
		watcher.Start(ctx)
		env = watcher.Current
		readyChecks["linkerd-facts"] = func(*http.Request) error {
			if !watcher.Settled() {
				return fmt.Errorf("ConfigMap %s/%s not listed yet", watcher.Namespace(), facts.ConfigMapName)
			}
			return nil
		}
		log.Info("watching the installed Linkerd's facts", "configMap", watcher.Namespace()+"/"+facts.ConfigMapName)
	} else {
		metrics.setFactsState(facts.StateUnknown)
	}

	handler, err := newEndpoint(HandlerOptions{
		Config:           store,
		Namespaces:       namespaces,
		Env:              env,
		MaxRequestBytes:  o.MaxRequestBytes,
		MaxBytesInFlight: o.MaxBytesInFlight,
		BodyReadTimeout:  o.BodyReadTimeout,
		Metrics:          metrics,
		Log:              log.WithName("admission"),
	})
	if err != nil {
		return err
	}

	srv := ctrlwebhook.NewServer(ctrlwebhook.Options{
		Host:    o.Host,
		Port:    o.Port,
		CertDir: o.CertDir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) {
			c.MinVersion = tls.VersionTLS12
			if !o.EnableHTTP2 {
				c.NextProtos = []string{"http/1.1"}
			}
		}},
	})
	srv.Register(Path, handler)
	readyChecks["webhook"] = onceReady(srv.StartedChecker())
	// Requests' contexts derive from the context the server starts with:
	// cancel it with a cause the handler recognises, so it drains
	// in-flight requests on shutdown instead of abandoning them.
	srvCtx, srvCancel := context.WithCancelCause(context.WithoutCancel(ctx))
	go func() {
		<-ctx.Done()
		srvCancel(errShuttingDown)
	}()
	goRun("webhook server", func(context.Context) error { return srv.Start(srvCtx) })

	if o.HealthProbeBindAddress != "0" {
		mux := http.NewServeMux()
		mux.Handle("/healthz", http.StripPrefix("/healthz", &healthz.Handler{Checks: map[string]healthz.Checker{"ping": healthz.Ping}}))
		mux.Handle("/healthz/", http.StripPrefix("/healthz", &healthz.Handler{Checks: map[string]healthz.Checker{"ping": healthz.Ping}}))
		mux.Handle("/readyz", http.StripPrefix("/readyz", &healthz.Handler{Checks: readyChecks}))
		mux.Handle("/readyz/", http.StripPrefix("/readyz", &healthz.Handler{Checks: readyChecks}))
		goRun("health probe server", func(ctx context.Context) error {
			return servePlain(ctx, o.HealthProbeBindAddress, mux)
		})
	}
	if o.MetricsBindAddress != "0" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
		goRun("metrics server", func(ctx context.Context) error {
			return servePlain(ctx, o.MetricsBindAddress, mux)
		})
	}

	log.Info("serving admission webhook", "path", Path, "host", o.Host, "port", o.Port, "certDir", o.CertDir,
		"config", o.ConfigPath, "defaultMode", string(cfg.DefaultMode), "maxRequestBytes", handler.maxBytes,
		"maxBytesInFlight", handler.budget, "bodyReadTimeout", handler.readTimeout.String())
	<-ctx.Done()
	wg.Wait()
	log.Info("webhook stopped")
	return firstErr
}

// onceReady passes check until it first succeeds, and then succeeds. The
// webhook server's check dials the server and completes a TLS handshake
// with it, a costly way (on a small node, and in garbage) to learn again,
// at every readiness probe, what cannot change while the process runs: the
// server stays up until Run returns, and Run ends the process's serving.
func onceReady(check healthz.Checker) healthz.Checker {
	var ok atomic.Bool
	return func(r *http.Request) error {
		if ok.Load() {
			return nil
		}
		if err := check(r); err != nil {
			return err
		}
		ok.Store(true)
		return nil
	}
}

// servePlain serves handler over plain HTTP on addr until ctx ends, then
// shuts down gracefully.
func servePlain(ctx context.Context, addr string, handler http.Handler) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve %s: %w", addr, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down %s: %w", addr, err)
	}
	return nil
}
