package serve

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/certs"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/facts"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/webhook"
)

// serveFlags are the serve command's flags; docs/operations.md lists them.
type serveFlags struct {
	certDir           string
	port              int
	host              string
	configPath        string
	kubeconfig        string
	healthAddr        string
	metricsAddr       string
	logLevel          string
	logFormat         string
	maxRequestBytes   int64
	maxBytesInFlight  int64
	bodyReadTimeout   time.Duration
	linkerdNamespace  string
	enableHTTP2       bool
	certMode          string
	namespace         string
	serviceName       string
	certSecret        string
	webhookConfigName string
	reportInterval    time.Duration
	version           string
	reporter          Reporter
}

const (
	certModeFiles       = "files"
	certModeSelfManaged = "self-managed"
	// serviceAccountNamespaceFile tells a pod its own namespace.
	serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
)

// NewCommand is the serve command; version goes into the cluster client's
// user agent. reporter writes the reports of --report-interval; with none
// the command refuses that flag.
func NewCommand(version string, reporter Reporter) *cobra.Command {
	f := &serveFlags{version: version, reporter: reporter}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the mutating admission webhook",
		Long: `Run the mutating admission webhook on HTTPS (path /mutate), with /healthz and
/readyz on the probe address and Prometheus /metrics on the metrics address.

Without --kubeconfig and outside a cluster it still serves, but namespace
labels are unknown: every namespace gets the configuration's defaultMode.
The --config file is watched: a valid change takes effect without restart,
an invalid one is logged and counted, and the previous configuration stays.
The installed Linkerd's facts come from ConfigMap linkerd-config in
--linkerd-namespace, watched likewise; missing or unreadable, they are
unknown and the rules behave as for Linkerd 2.11.

Without GOMEMLIMIT, the Go memory limit is 85% of the container's memory
limit (cgroup memory.max), if it has one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return runServe(ctx, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.certDir, "cert-dir", "", "directory with tls.crt and tls.key (reloaded when they change; written by --cert-mode=self-managed)")
	fl.IntVar(&f.port, "port", webhook.DefaultPort, "HTTPS port of the webhook")
	fl.StringVar(&f.host, "host", "", "address to bind the webhook on (default all addresses)")
	fl.StringVar(&f.configPath, "config", "", "PolicyConfig file, watched for changes (default: built-in defaults)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig for reading namespace labels (default: in-cluster config if available, else no cluster)")
	fl.StringVar(&f.healthAddr, "health-probe-bind-address", webhook.DefaultHealthProbeBindAddress, "address of /healthz and /readyz (0 disables)")
	fl.StringVar(&f.metricsAddr, "metrics-bind-address", webhook.DefaultMetricsBindAddress, "address of /metrics (0 disables)")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info or error")
	fl.StringVar(&f.logFormat, "log-format", "json", "log format: json or console")
	fl.Int64Var(&f.maxRequestBytes, "max-request-bytes", webhook.DefaultMaxRequestBytes, "largest AdmissionReview body accepted; larger gets HTTP 413")
	fl.Int64Var(&f.maxBytesInFlight, "max-bytes-in-flight", webhook.DefaultMaxBytesInFlight, "request body bytes handled at once; a request over it gets HTTP 429 (retried by the apiserver)")
	fl.DurationVar(&f.bodyReadTimeout, "body-read-timeout", webhook.DefaultBodyReadTimeout, "time a client may take to send a request body; a client that stalls is dropped")
	fl.StringVar(&f.linkerdNamespace, "linkerd-namespace", facts.DefaultLinkerdNamespace, "namespace of Linkerd's control plane, whose ConfigMap linkerd-config tells the installed version and settings")
	fl.BoolVar(&f.enableHTTP2, "enable-http2", false, "offer HTTP/2 on the webhook port (off: HTTP/1.1 avoids HTTP/2 stream-reset attacks)")
	fl.StringVar(&f.certMode, "cert-mode", certModeFiles, "files: serve the certificate in --cert-dir; self-managed: create and rotate it, and own the webhook's caBundle")
	fl.StringVar(&f.namespace, "namespace", "", "self-managed: the webhook's own namespace (default $POD_NAMESPACE or the service account's namespace)")
	fl.StringVar(&f.serviceName, "service-name", "linkerd-inject-policy", "self-managed: the webhook Service (DNS names of the certificate)")
	fl.StringVar(&f.certSecret, "cert-secret", "linkerd-inject-policy-tls", "self-managed: Secret holding ca.crt, tls.crt and tls.key")
	fl.StringVar(&f.webhookConfigName, "webhook-config-name", webhook.ConfigurationName, "self-managed: MutatingWebhookConfiguration whose caBundle is kept current")
	reportHelp := "write doctor's findings as OpenReports objects once the webhook is ready and then at this interval, e.g. 10m (0 disables; needs a cluster)"
	if reporter == nil {
		reportHelp += "; not in this binary: linkerd-inject-policy serve has it"
	}
	fl.DurationVar(&f.reportInterval, "report-interval", 0, reportHelp)
	return cmd
}

func runServe(ctx context.Context, f *serveFlags) error {
	log, err := newLogger(f.logLevel, f.logFormat)
	if err != nil {
		return &UsageError{Err: err}
	}
	// controller-runtime and client-go log through their own package-level
	// loggers; route them to ours so every line has one format.
	ctrllog.SetLogger(log)
	klog.SetLogger(log.WithName("client-go"))

	if f.certDir == "" {
		return &UsageError{Err: errors.New("--cert-dir is required")}
	}
	if f.certMode != certModeFiles && f.certMode != certModeSelfManaged {
		return &UsageError{Err: fmt.Errorf("--cert-mode %q: must be %s or %s", f.certMode, certModeFiles, certModeSelfManaged)}
	}
	if f.maxRequestBytes <= 0 {
		return &UsageError{Err: fmt.Errorf("--max-request-bytes %d: must be positive", f.maxRequestBytes)}
	}
	if f.maxBytesInFlight <= 0 {
		return &UsageError{Err: fmt.Errorf("--max-bytes-in-flight %d: must be positive", f.maxBytesInFlight)}
	}
	if f.bodyReadTimeout <= 0 {
		return &UsageError{Err: fmt.Errorf("--body-read-timeout %s: must be positive", f.bodyReadTimeout)}
	}
	if f.reportInterval < 0 {
		return &UsageError{Err: fmt.Errorf("--report-interval %s: must not be negative", f.reportInterval)}
	}
	if f.reportInterval > 0 && f.reporter == nil {
		return &UsageError{Err: errNoReporter}
	}
	setDefaultMemoryLimit(log, "/sys/fs/cgroup")

	// Load the config before anything else so a bad file fails fast, with its field paths.
	if f.configPath != "" {
		if _, err := policy.LoadConfigFile(f.configPath); err != nil {
			return &UsageError{Err: fmt.Errorf("--config: %w", err)}
		}
	}

	restConfig, err := clusterConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	// client stays a nil interface without a cluster (never a nil *kubeClient).
	var client interface {
		webhook.Client
		certs.Client
	}
	if restConfig != nil {
		restConfig.UserAgent = "linkerd-inject-policy/" + f.version
		c, err := newKubeClient(restConfig)
		if err != nil {
			return fmt.Errorf("kubernetes client: %w", err)
		}
		client = c
	}

	if f.certMode == certModeSelfManaged {
		if client == nil {
			return &UsageError{Err: errors.New("--cert-mode=self-managed needs a cluster: give --kubeconfig or run in a pod")}
		}
		ns := f.namespace
		if ns == "" {
			ns = ownNamespace()
		}
		if ns == "" {
			return &UsageError{Err: errors.New("--cert-mode=self-managed: give --namespace (not in a pod, and $POD_NAMESPACE is unset)")}
		}
		if err := certs.RunSelfManaged(ctx, certs.SelfManagedOptions{
			Client:            client,
			Namespace:         ns,
			SecretName:        f.certSecret,
			ServiceName:       f.serviceName,
			WebhookConfigName: f.webhookConfigName,
			CertDir:           f.certDir,
			Log:               log.WithName("certs"),
		}); err != nil {
			return fmt.Errorf("self-managed certificates: %w", err)
		}
	}

	if f.reportInterval > 0 {
		var stop func()
		ctx, stop, err = startReports(ctx, f, restConfig, log)
		if err != nil {
			return err
		}
		defer stop()
	}

	return webhook.Run(ctx, webhook.Options{
		Host:                   f.host,
		Port:                   f.port,
		CertDir:                f.certDir,
		ConfigPath:             f.configPath,
		Client:                 client,
		HealthProbeBindAddress: f.healthAddr,
		MetricsBindAddress:     f.metricsAddr,
		MaxRequestBytes:        f.maxRequestBytes,
		MaxBytesInFlight:       f.maxBytesInFlight,
		BodyReadTimeout:        f.bodyReadTimeout,
		LinkerdNamespace:       f.linkerdNamespace,
		EnableHTTP2:            f.enableHTTP2,
		Log:                    log,
	})
}

// clusterConfig returns the REST config from kubeconfig, else the in-cluster
// config, else nil (no cluster: the server still runs, in the default mode).
func clusterConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if errors.Is(err, rest.ErrNotInCluster) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("in-cluster config: %w", err)
	}
	return cfg, nil
}

// ownNamespace is the pod's namespace, from the downward API or the service account.
func ownNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	b, err := os.ReadFile(serviceAccountNamespaceFile)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// newLogger builds the zap logger behind logr: JSON for log collectors by
// default, console for people.
func newLogger(level, format string) (logr.Logger, error) {
	var lvl zapcore.Level
	switch level {
	case "debug":
		lvl = zapcore.DebugLevel
	case "info":
		lvl = zapcore.InfoLevel
	case "error":
		lvl = zapcore.ErrorLevel
	default:
		return logr.Logger{}, fmt.Errorf("--log-level %q: must be debug, info or error", level)
	}
	var cfg zap.Config
	switch format {
	case "json":
		cfg = zap.NewProductionConfig()
		cfg.EncoderConfig.TimeKey = "ts"
		cfg.EncoderConfig.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	case "console":
		cfg = zap.NewDevelopmentConfig()
	default:
		return logr.Logger{}, fmt.Errorf("--log-format %q: must be json or console", format)
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	// One line per admission decision is the point: never drop them.
	cfg.Sampling = nil
	cfg.DisableStacktrace = lvl != zapcore.DebugLevel
	z, err := cfg.Build()
	if err != nil {
		return logr.Logger{}, fmt.Errorf("build logger: %w", err)
	}
	return zapr.NewLogger(z), nil
}
