// Package bootstrap installs Linkerd (and this webhook) the way Linkerd's install guides
// do it by hand, in one idempotent command: the control-plane
// namespace with its labels, the identity issuer (through cert-manager or
// generated here), the linkerd-crds and linkerd-control-plane Helm charts,
// optionally linkerd-viz wired to an external Prometheus and Grafana, and the
// linkerd-inject-policy chart. Charts are installed with the Helm SDK, never
// by shelling out to helm.
package bootstrap

import (
	"fmt"
	"os"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/getter"
	"k8s.io/client-go/rest"
)

// Identity modes of Options.Identity.
const (
	// IdentityCertManager asks cert-manager for the issuer certificate, as Linkerd's cert-manager docs do.
	IdentityCertManager = "cert-manager"
	// IdentityGenerated creates the trust anchor and issuer here and stores them in Secrets.
	IdentityGenerated = "generated"
)

// Policy modes of Options.PolicyMode, mapped onto the webhook chart's policy.defaultMode.
const (
	PolicyModeAudit   = "audit"
	PolicyModeEnforce = "enforce"
	PolicyModeOptIn   = "opt-in"
)

// Names bootstrap creates; docs/bootstrap.md lists them and uninstall removes them.
const (
	// DefaultRepoURL is Linkerd's edge Helm repository.
	DefaultRepoURL = "https://helm.linkerd.io/edge"
	// DefaultImageRepository is where this webhook's image is published; the
	// default tag is the binary's version.
	DefaultImageRepository = "ghcr.io/linkerd-inject-policy/linkerd-inject-policy"
	// DefaultIssuerRef is the usual name of the cert-manager CA ClusterIssuer.
	DefaultIssuerRef = "ClusterIssuer/ca-issuer"

	ControlPlaneNamespace = "linkerd"
	VizNamespace          = "linkerd-viz"
	// WebhookNamespace is where this webhook's chart is installed.
	WebhookNamespace = "linkerd-inject-policy"

	CRDsRelease         = "linkerd-crds"
	ControlPlaneRelease = "linkerd-control-plane"
	VizRelease          = "linkerd-viz"
	WebhookRelease      = "linkerd-inject-policy"

	// IssuerSecret holds Linkerd's identity issuer (kubernetes.io/tls with ca.crt).
	IssuerSecret = "linkerd-identity-issuer"
	// IssuerCertificate is the cert-manager Certificate behind IssuerSecret.
	IssuerCertificate = "linkerd-identity-issuer"
	// TrustAnchorSecret holds the trust anchor and its key when bootstrap
	// made them (generated identity, or the cert-manager chain).
	TrustAnchorSecret = "linkerd-trust-anchor"

	// ManagedByLabel marks objects bootstrap created, so uninstall removes
	// those and leaves everything else (a namespace the user made) alone.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = "linkerd-inject-policy-bootstrap"
	// FieldManager is the server-side-apply field manager of bootstrap.
	FieldManager = "linkerd-inject-policy-bootstrap"
)

// Options configure Run and Uninstall. The zero value of optional fields
// means the documented default.
type Options struct {
	// RESTConfig talks to the cluster; when nil, Kubeconfig and Context are
	// loaded the way kubectl does.
	RESTConfig *rest.Config
	Kubeconfig string
	Context    string

	// Identity is IdentityCertManager or IdentityGenerated (default).
	Identity string
	// IssuerRef is "Kind/name" of the cert-manager issuer signing the
	// identity issuer (Kind ClusterIssuer or Issuer). Empty means
	// DefaultIssuerRef, and if that does not exist bootstrap builds its own
	// trust-anchor chain through cert-manager; an explicit ref must exist.
	IssuerRef string
	// DropOldTrustRoots (cert-manager identity) removes from the trust
	// bundle the roots neither the issuer nor its CA uses any more, once no
	// meshed pod holds another bundle and the issuer's root has signed it
	// for a proxy certificate's lifetime (docs/trust-rotation.md). Without
	// it a run only ever adds roots.
	DropOldTrustRoots bool

	// RepoURL is the Helm repository of the Linkerd charts (default
	// DefaultRepoURL); ChartDir, when set, replaces it with a directory
	// holding linkerd-crds, linkerd-control-plane and linkerd-viz.
	RepoURL  string
	Version  string
	ChartDir string
	// Getters fetch repository indexes and charts (default: Helm's http(s) getter).
	Getters getter.Providers

	// ValuesFiles and SetValues (helm's -f and --set) go to linkerd-control-plane.
	ValuesFiles []string
	SetValues   []string

	Viz           bool
	PrometheusURL string
	GrafanaURL    string
	// PodMonitorNamespace is where the PodMonitors for Linkerd's metrics go when the
	// Prometheus operator CRDs exist (default VizNamespace).
	PodMonitorNamespace string

	// WebhookChart is a directory or .tgz of this webhook's chart, instead
	// of the chart built into the binary.
	WebhookChart string
	// WebhookValuesFiles and WebhookSetValues (-f and --set) go to the
	// webhook's chart, over bootstrap's own values for it (the image, the
	// policy mode).
	WebhookValuesFiles []string
	WebhookSetValues   []string
	// BinaryVersion is the version of this binary: the embedded chart is
	// installed as that version (when it is a semantic version) and the
	// default image is DefaultImageRepository:BinaryVersion.
	BinaryVersion string
	// PolicyMode is PolicyModeAudit (default), PolicyModeEnforce or PolicyModeOptIn.
	PolicyMode string

	// Wait for Deployments to become available and the webhook to have endpoints.
	Wait bool
	// Timeout bounds each wait (default 5m).
	Timeout time.Duration
	// DryRun renders every object to the writer as YAML and changes nothing.
	DryRun bool
	// KubeVersion is the Kubernetes version a dry run renders for
	// ("v1.31.0"), instead of the cluster's; without a cluster it is
	// required, since Helm would assume v1.20.
	KubeVersion string

	// Now is the clock for certificates (default time.Now).
	Now func() time.Time
}

// issuerRef is a parsed Options.IssuerRef.
type issuerRef struct {
	Kind, Name string
	explicit   bool
}

func (r issuerRef) String() string { return r.Kind + "/" + r.Name }

// withDefaults validates o and fills in defaults.
func (o Options) withDefaults() (Options, issuerRef, error) {
	if o.Identity == "" {
		o.Identity = IdentityGenerated
	}
	if o.Identity != IdentityGenerated && o.Identity != IdentityCertManager {
		return o, issuerRef{}, usageError("--identity %q: must be %s or %s", o.Identity, IdentityCertManager, IdentityGenerated)
	}
	ref := issuerRef{explicit: o.IssuerRef != ""}
	raw := o.IssuerRef
	if raw == "" {
		raw = DefaultIssuerRef
	}
	kind, name, ok := strings.Cut(raw, "/")
	if !ok || name == "" || strings.Contains(name, "/") || (kind != "ClusterIssuer" && kind != "Issuer") {
		return o, issuerRef{}, usageError("--issuer-ref %q: must be ClusterIssuer/NAME or Issuer/NAME (an Issuer in namespace %s)", raw, ControlPlaneNamespace)
	}
	ref.Kind, ref.Name = kind, name
	if o.DropOldTrustRoots && o.Identity != IdentityCertManager {
		return o, issuerRef{}, &Error{
			Problem: "--drop-old-trust-roots: only with --identity cert-manager (the generated identity keeps one trust anchor)",
			Fix:     "leave the flag out, or pass --identity cert-manager",
			Usage:   true,
		}
	}
	if o.PolicyMode == "" {
		o.PolicyMode = PolicyModeAudit
	}
	if _, err := webhookDefaultMode(o.PolicyMode); err != nil {
		return o, issuerRef{}, err
	}
	if o.RepoURL == "" {
		o.RepoURL = DefaultRepoURL
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Timeout < 0 {
		return o, issuerRef{}, usageError("--timeout %s: must be positive", o.Timeout)
	}
	if o.PodMonitorNamespace == "" {
		o.PodMonitorNamespace = VizNamespace
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ChartDir != "" {
		if st, err := os.Stat(o.ChartDir); err != nil || !st.IsDir() {
			return o, issuerRef{}, usageError("--chart-dir %s: no such directory", o.ChartDir)
		}
	}
	if o.KubeVersion != "" {
		if !o.DryRun {
			return o, issuerRef{}, usageError("--kube-version %s: only with --dry-run (an install renders for the cluster's own version)", o.KubeVersion)
		}
		if _, err := chartutil.ParseKubeVersion(o.KubeVersion); err != nil {
			return o, issuerRef{}, usageError("--kube-version %q: not a Kubernetes version (like v1.31.0)", o.KubeVersion)
		}
	}
	return o, ref, nil
}

// webhookDefaultMode maps --policy-mode onto the webhook chart's policy.defaultMode.
func webhookDefaultMode(mode string) (string, error) {
	switch mode {
	case PolicyModeAudit:
		return "audit", nil
	case PolicyModeEnforce:
		return "enforce", nil
	case PolicyModeOptIn:
		return "off", nil
	}
	return "", usageError("--policy-mode %q: must be %s, %s or %s", mode, PolicyModeAudit, PolicyModeEnforce, PolicyModeOptIn)
}

// Error is a failure a person can act on: what went wrong and what to do,
// on one line.
type Error struct {
	Problem string
	Fix     string
	Err     error
	// Usage marks bad options (the command line's fault, exit code 2).
	Usage bool
}

func (e *Error) Error() string {
	msg := e.Problem
	if e.Err != nil {
		msg += ": " + oneLine(e.Err.Error())
	}
	if e.Fix != "" {
		msg += "; " + e.Fix
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

func usageError(format string, args ...any) error {
	return &Error{Problem: fmt.Sprintf(format, args...), Usage: true}
}

// oneLine folds multi-line messages (Helm and the apiserver produce some)
// so every error bootstrap prints is a single line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
