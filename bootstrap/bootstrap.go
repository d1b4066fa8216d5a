package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/release"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/certs"
)

// Labels and annotations of the namespaces bootstrap creates, as Linkerd's
// install docs have people write them by hand. Linkerd's namespaces are
// privileged for Pod Security Admission: linkerd-init needs NET_ADMIN and
// NET_RAW, which a restricted or baseline default refuses.
var (
	controlPlaneNamespaceLabels = map[string]string{
		"linkerd.io/is-control-plane":          "true",
		"config.linkerd.io/admission-webhooks": "disabled",
		"linkerd.io/control-plane-ns":          ControlPlaneNamespace,
		podSecurityEnforceLabel:                "privileged",
	}
	controlPlaneNamespaceAnnotations = map[string]string{"linkerd.io/inject": "disabled"}
	vizNamespaceLabels               = map[string]string{"linkerd.io/extension": "viz", podSecurityEnforceLabel: "privileged"}
	vizNamespaceAnnotations          = map[string]string{"linkerd.io/inject": "enabled", "config.linkerd.io/proxy-await": "enabled"}
	// The webhook is called by the apiserver and must run before Linkerd's
	// injector exists: neither Linkerd nor the webhook itself touch its pods.
	webhookNamespaceLabels = map[string]string{
		"config.linkerd.io/admission-webhooks": "disabled",
		"linkerd-inject-policy.io/mode":        "off",
	}
	webhookNamespaceAnnotations = map[string]string{"linkerd.io/inject": "disabled"}
)

const podSecurityEnforceLabel = "pod-security.kubernetes.io/enforce"

// runner carries what the steps learn from each other.
type runner struct {
	o   Options
	ref issuerRef
	out io.Writer

	// c is nil in a --dry-run without a reachable cluster.
	c           *clients
	kubeVersion string
	// apiVersions the cluster serves, so a dry run renders charts that test
	// .Capabilities.APIVersions (the webhook's certs.mode=auto) as the real run would.
	apiVersions    []string
	hasCertManager bool
	hasPodMonitors bool
	// buildChain: the default cert-manager issuer is missing, so bootstrap
	// makes a trust anchor through cert-manager.
	buildChain bool

	crds, controlPlane, viz, webhook *chart.Chart
	userValues, webhookValues        map[string]any

	anchorPEM []byte
	installed []*release.Release

	// trustWarning (preflight) and trustNotes (identity step) are printed
	// after the steps: what a person must do about the trust bundle (trust.go).
	trustWarning string
	trustNotes   []string
}

type step struct {
	name string
	run  func(ctx context.Context) (string, error)
}

// Run installs or upgrades Linkerd and this webhook, printing one progress
// line per step to w, for example
//
//	[3/7] identity issuer: Certificate linkerd/linkerd-identity-issuer ready (4.1s)
//
// With DryRun, w receives the full YAML of every object instead (progress
// lines become YAML comments) and the cluster is only read.
func Run(ctx context.Context, opts Options, w io.Writer) error {
	o, ref, err := opts.withDefaults()
	if err != nil {
		return err
	}
	r := &runner{o: o, ref: ref, out: w}
	steps := []step{
		{"preflight", r.preflight},
		{"namespace", r.namespace},
		{"identity issuer", r.identity},
		{"linkerd", r.linkerd},
		{"viz", r.vizStep},
		{"webhook", r.webhookStep},
		{"wait", r.wait},
	}
	err = runSteps(ctx, w, o.DryRun, steps)
	r.printTrustNotes()
	return err
}

func runSteps(ctx context.Context, w io.Writer, comment bool, steps []step) error {
	prefix := ""
	if comment {
		prefix = "# "
	}
	for i, s := range steps {
		start := time.Now()
		outcome, err := s.run(ctx)
		took := time.Since(start).Seconds()
		if err != nil {
			fmt.Fprintf(w, "%s[%d/%d] %s: failed (%.1fs)\n", prefix, i+1, len(steps), s.name, took)
			return err
		}
		fmt.Fprintf(w, "%s[%d/%d] %s: %s (%.1fs)\n", prefix, i+1, len(steps), s.name, outcome, took)
	}
	return nil
}

// preflight checks everything that can be checked before changing the
// cluster: reachability, permissions, CRDs, an existing Linkerd, and that
// every chart and values file loads.
func (r *runner) preflight(ctx context.Context) (string, error) {
	cfg, err := loadRESTConfig(r.o)
	if err == nil {
		cfg.UserAgent = "linkerd-inject-policy-bootstrap"
		err = r.connect(ctx, cfg)
	}
	summary := ""
	if err != nil {
		if !r.o.DryRun {
			return "", err
		}
		// A dry run may render for a cluster it cannot see (air-gapped review).
		r.c = nil
		if r.o.KubeVersion == "" {
			return "", &Error{
				Problem: "--dry-run without a reachable cluster needs --kube-version (Helm would assume Kubernetes v1.20, which Linkerd's charts refuse)",
				Fix:     "pass the version of the cluster you will install on, like --kube-version v1.31.0",
			}
		}
		summary = "no cluster reachable, rendering offline for Kubernetes " + r.o.KubeVersion
	} else {
		summary = "Kubernetes " + r.kubeVersion
		if !r.o.DryRun {
			if err := r.checkPermissions(ctx); err != nil {
				return "", err
			}
		}
		summary += ", cert-manager CRDs " + presence(r.hasCertManager) + ", Prometheus operator CRDs " + presence(r.hasPodMonitors)
		existing, err := r.existingLinkerd(ctx)
		if err != nil {
			return "", err
		}
		summary += ", " + existing
	}
	if r.o.Identity == IdentityCertManager && !r.hasCertManager && r.c != nil {
		return "", &Error{
			Problem: "--identity cert-manager: cert-manager CRDs not found in the cluster (certificates.cert-manager.io/v1)",
			Fix:     "install cert-manager first, or use --identity generated",
		}
	}
	if r.o.Identity == IdentityCertManager && r.c != nil {
		if r.buildChain, err = checkIssuer(ctx, r.c, r.ref); err != nil {
			return "", err
		}
		if r.trustWarning, err = r.rootRenewalWarning(ctx); err != nil {
			return "", err
		}
		if r.trustWarning != "" {
			summary += ", 1 warning (below)"
		}
	}
	if r.o.KubeVersion != "" {
		if r.c != nil {
			summary += ", rendering for Kubernetes " + r.o.KubeVersion
		}
		r.kubeVersion = r.o.KubeVersion
	}
	if err := r.loadCharts(); err != nil {
		return "", err
	}
	if err := r.checkKubeVersion(); err != nil {
		return "", err
	}
	summary += ", Linkerd " + linkerdVersion(r.controlPlane) + " to install"
	return summary, nil
}

// checkKubeVersion refuses, before anything changes, a Kubernetes version
// a chart's kubeVersion constraint excludes (Helm would fail half-way).
func (r *runner) checkKubeVersion() error {
	if r.kubeVersion == "" {
		return nil
	}
	kv, err := chartutil.ParseKubeVersion(r.kubeVersion)
	if err != nil {
		return nil // a server version Helm cannot parse: let Helm decide
	}
	for _, ch := range []*chart.Chart{r.crds, r.controlPlane, r.viz, r.webhook} {
		if ch == nil || ch.Metadata.KubeVersion == "" {
			continue
		}
		if !chartutil.IsCompatibleRange(ch.Metadata.KubeVersion, kv.String()) {
			return &Error{
				Problem: fmt.Sprintf("chart %s %s requires Kubernetes %s, not %s", ch.Name(), ch.Metadata.Version, ch.Metadata.KubeVersion, r.kubeVersion),
				Fix:     "upgrade the cluster, or choose charts for it with --version",
			}
		}
	}
	return nil
}

func presence(ok bool) string {
	if ok {
		return "present"
	}
	return "absent"
}

// connect asks the apiserver for its version (the reachability test Helm
// also depends on) and which CRDs bootstrap cares about exist.
func (r *runner) connect(ctx context.Context, cfg *rest.Config) error {
	probe := rest.CopyConfig(cfg)
	probe.Timeout = 15 * time.Second
	kc, err := kubernetes.NewForConfig(probe)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	v, err := kc.Discovery().ServerVersion()
	if err != nil {
		return &Error{
			Problem: fmt.Sprintf("cannot reach the Kubernetes API at %s", cfg.Host),
			Err:     err,
			Fix:     "check --kubeconfig and --context point at a running cluster (kubectl version)",
		}
	}
	r.kubeVersion = v.GitVersion
	if vs, err := action.GetVersionSet(kc.Discovery()); err == nil {
		r.apiVersions = vs
	}
	c, err := newClients(cfg)
	if err != nil {
		return err
	}
	r.c = c
	r.hasCertManager, err = hasResource(kc, "cert-manager.io/v1", "certificates")
	if err != nil {
		return err
	}
	r.hasPodMonitors, err = hasResource(kc, "monitoring.coreos.com/v1", "podmonitors")
	return err
}

func hasResource(kc kubernetes.Interface, groupVersion, resource string) (bool, error) {
	list, err := kc.Discovery().ServerResourcesForGroupVersion(groupVersion)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("discover %s: %w", groupVersion, err)
	}
	for _, res := range list.APIResources {
		if res.Name == resource {
			return true, nil
		}
	}
	return false, nil
}

// requiredAccess is a sample of what the charts create; missing any of them
// means the install would fail half-way, so bootstrap stops before starting.
var requiredAccess = []authzv1.ResourceAttributes{
	{Verb: "create", Resource: "namespaces"},
	{Verb: "create", Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions"},
	{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "clusterroles"},
	{Verb: "create", Group: "admissionregistration.k8s.io", Resource: "mutatingwebhookconfigurations"},
	{Verb: "create", Resource: "secrets", Namespace: ControlPlaneNamespace},
	{Verb: "create", Group: "apps", Resource: "deployments", Namespace: ControlPlaneNamespace},
}

func (r *runner) checkPermissions(ctx context.Context) error {
	user := "the current user"
	if rev, err := r.c.kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{}); err == nil && rev.Status.UserInfo.Username != "" {
		user = rev.Status.UserInfo.Username
	}
	for _, attr := range requiredAccess {
		attr := attr
		ssar := &authzv1.SelfSubjectAccessReview{Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &attr}}
		res, err := r.c.kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, ssar, metav1.CreateOptions{})
		if err != nil {
			return &Error{Problem: fmt.Sprintf("cannot check permissions of %s", user), Err: err, Fix: "bootstrap needs cluster-admin: use an admin kubeconfig (--kubeconfig, --context)"}
		}
		if !res.Status.Allowed {
			what := attr.Resource
			if attr.Group != "" {
				what += "." + attr.Group
			}
			if attr.Namespace != "" {
				what += " in namespace " + attr.Namespace
			}
			return &Error{
				Problem: fmt.Sprintf("no permission: %s cannot %s %s", user, attr.Verb, what),
				Fix:     "bootstrap needs cluster-admin: use an admin kubeconfig (--kubeconfig, --context)",
			}
		}
	}
	return nil
}

// existingLinkerd describes what is already installed, and refuses the
// installs bootstrap cannot take over.
func (r *runner) existingLinkerd(ctx context.Context) (string, error) {
	ac, err := helmConfig(r.c.config, ControlPlaneNamespace)
	if err != nil {
		return "", err
	}
	if rel, err := lastRelease(ac, ControlPlaneRelease); err != nil {
		return "", err
	} else if rel != nil && rel.Chart != nil {
		return fmt.Sprintf("Linkerd %s installed (release %s, revision %d, %s)", rel.Chart.Metadata.AppVersion, ControlPlaneRelease, rel.Version, rel.Info.Status), nil
	}
	if rel, err := lastRelease(ac, "linkerd2"); err != nil {
		return "", err
	} else if rel != nil {
		return "", &Error{
			Problem: fmt.Sprintf("Linkerd is installed as Helm release %s/linkerd2 (the old all-in-one chart)", ControlPlaneNamespace),
			Fix:     "migrate it to the linkerd-crds and linkerd-control-plane charts first (Linkerd's upgrade notes), or uninstall it; bootstrap does not take over that release",
		}
	}
	cm, err := r.c.kube.CoreV1().ConfigMaps(ControlPlaneNamespace).Get(ctx, "linkerd-config", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "Linkerd not installed", nil
	}
	if err != nil {
		return "", fmt.Errorf("look for an existing Linkerd: %w", err)
	}
	if cm.Annotations["meta.helm.sh/release-name"] == "" {
		return "", &Error{
			Problem: fmt.Sprintf("Linkerd (%s) is installed in namespace %s without Helm", cm.Annotations["linkerd.io/created-by"], ControlPlaneNamespace),
			Fix:     "keep managing it with the linkerd CLI, or remove it (linkerd uninstall | kubectl delete -f -) before bootstrap",
		}
	}
	return "Linkerd installed by Helm release " + cm.Annotations["meta.helm.sh/release-name"], nil
}

func (r *runner) loadCharts() error {
	var src chartSource
	if r.o.ChartDir != "" {
		src = dirSource{dir: r.o.ChartDir, version: r.o.Version}
	} else {
		rs, err := newRepoSource(r.o.RepoURL, r.o.Version, r.o.Getters)
		if err != nil {
			return err
		}
		defer rs.Close()
		src = rs
	}
	var err error
	if r.crds, err = src.Load(CRDsRelease); err != nil {
		return err
	}
	if r.controlPlane, err = src.Load(ControlPlaneRelease); err != nil {
		return err
	}
	if r.o.Viz {
		if r.viz, err = src.Load(VizRelease); err != nil {
			return err
		}
	}
	if r.o.WebhookChart == "" {
		if r.webhook, err = embeddedWebhookChart(r.o.BinaryVersion); err != nil {
			return err
		}
	} else {
		if r.webhook, err = loader.Load(r.o.WebhookChart); err != nil {
			return &Error{Problem: fmt.Sprintf("load the webhook chart %s", r.o.WebhookChart), Err: err, Fix: "pass --webhook-chart a chart directory or .tgz, or leave it out to use the chart built into this binary"}
		}
		if err := checkDependencies(r.webhook, r.o.WebhookChart); err != nil {
			return err
		}
	}
	getters := r.o.Getters
	if getters == nil {
		getters = getter.All(cli.New())
	}
	vo := values.Options{ValueFiles: r.o.ValuesFiles, Values: r.o.SetValues}
	if r.userValues, err = vo.MergeValues(getters); err != nil {
		return &Error{Problem: "read values", Err: err, Fix: "check the -f files exist and are YAML, and --set is key=value[,key=value]"}
	}
	wo := values.Options{ValueFiles: r.o.WebhookValuesFiles, Values: r.o.WebhookSetValues}
	if r.webhookValues, err = wo.MergeValues(getters); err != nil {
		return &Error{Problem: "read the webhook's values", Err: err, Fix: "check the --webhook-values files exist and are YAML, and --webhook-set is key=value[,key=value]"}
	}
	return nil
}

func (r *runner) namespace(ctx context.Context) (string, error) {
	return r.ensureNS(ctx, ControlPlaneNamespace, controlPlaneNamespaceLabels, controlPlaneNamespaceAnnotations)
}

func (r *runner) ensureNS(ctx context.Context, name string, labels, annotations map[string]string) (string, error) {
	if r.o.DryRun {
		if err := writeYAML(r.out, "namespace", namespaceManifest(name, labels, annotations)); err != nil {
			return "", err
		}
		return "Namespace " + name + " rendered", nil
	}
	outcome, err := ensureNamespace(ctx, r.c, name, labels, annotations)
	if err != nil {
		return "", err
	}
	return "Namespace " + name + " " + outcome, nil
}

func (r *runner) identity(ctx context.Context) (string, error) {
	var res identityResult
	var err error
	switch r.o.Identity {
	case IdentityGenerated:
		res, err = ensureGeneratedIdentity(ctx, r.c, r.o.Now(), r.o.DryRun, r.out)
	default:
		res, err = ensureCertManagerIdentity(ctx, r.c, r.ref, r.buildChain, r.o.Now, r.o.Timeout, r.o.Wait, r.o.DryRun, r.out)
		if err == nil {
			res, err = r.manageTrustBundle(ctx, res)
		}
	}
	if err != nil {
		return "", err
	}
	r.anchorPEM = res.anchorPEM
	return res.summary, nil
}

// controlPlaneValues are the user's values with the identity settings Linkerd's
// Helm install docs pass on the command line. The trust anchor must match the issuer
// Secret, so it is bootstrap's, except that a bundle from the user's values
// that contains it is kept: that is how a trust-anchor rotation trusts the
// old and the new anchor for a while (docs/bootstrap.md).
func (r *runner) controlPlaneValues() (map[string]any, error) {
	vals := copyValues(r.userValues)
	anchors := string(r.anchorPEM)
	_, anchorErr := certs.ParseCertificates(r.anchorPEM) // a dry run's placeholder is no PEM
	if user, ok := vals["identityTrustAnchorsPEM"].(string); ok && user != "" {
		if anchorErr == nil && !bundleContains([]byte(user), r.anchorPEM) {
			return nil, &Error{
				Problem: fmt.Sprintf("identityTrustAnchorsPEM in your values does not contain the trust anchor of Secret %s/%s", ControlPlaneNamespace, IssuerSecret),
				Fix:     "add that certificate to the bundle (during a rotation: old and new anchor), or drop the value and let bootstrap set it",
			}
		}
		anchors = user
	}
	vals["identityTrustAnchorsPEM"] = anchors
	setNested(vals, "kubernetes.io/tls", "identity", "issuer", "scheme")
	if _, ok := r.controlPlane.Values["installNamespace"]; ok {
		vals["installNamespace"] = false
	}
	return vals, nil
}

// bundleContains reports whether every certificate of want is in bundle.
func bundleContains(bundle, want []byte) bool {
	have, err := certs.ParseCertificates(bundle)
	if err != nil {
		return false
	}
	need, err := certs.ParseCertificates(want)
	if err != nil {
		return false
	}
	for _, n := range need {
		found := false
		for _, h := range have {
			if h.Equal(n) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func (r *runner) linkerd(ctx context.Context) (string, error) {
	crds := newHelmRelease(CRDsRelease, ControlPlaneNamespace, r.crds, map[string]any{})
	cpValues, err := r.controlPlaneValues()
	if err != nil {
		return "", err
	}
	cp := newHelmRelease(ControlPlaneRelease, ControlPlaneNamespace, r.controlPlane, cpValues)
	summary, err := r.releases(ctx, crds, cp)
	if err != nil {
		return "", err
	}
	return summary + ", Linkerd " + linkerdVersion(r.controlPlane), nil
}

// releases installs or upgrades each release in order (or renders them).
func (r *runner) releases(ctx context.Context, rels ...helmRelease) (string, error) {
	summary := ""
	for i, rel := range rels {
		if i > 0 {
			summary += ", "
		}
		if r.o.DryRun {
			if err := renderRelease(rel, r.kubeVersion, r.apiVersions, r.out); err != nil {
				return "", helmError(rel, err)
			}
			summary += fmt.Sprintf("%s %s rendered", rel.name, rel.chart.Metadata.Version)
			continue
		}
		outcome, err := ensureRelease(ctx, r.c.config, rel, r.o.Timeout, r.o.Wait)
		if err != nil {
			return "", helmError(rel, err)
		}
		r.installed = append(r.installed, outcome.release)
		summary += fmt.Sprintf("%s %s %s", rel.name, rel.chart.Metadata.Version, outcome)
	}
	return summary, nil
}

// helmError turns a chart's own failure (a required value, a template
// fail) into an error that names the release and what to check.
func helmError(rel helmRelease, err error) error {
	var be *Error
	if errors.As(err, &be) {
		return err
	}
	return &Error{
		Problem: fmt.Sprintf("Helm release %s/%s (chart %s %s)", rel.namespace, rel.name, rel.chart.Name(), rel.chart.Metadata.Version),
		Err:     err,
		Fix:     "check the chart version and your -f/--set values; re-running bootstrap resumes where it stopped",
	}
}

func (r *runner) vizStep(ctx context.Context) (string, error) {
	if !r.o.Viz {
		return "skipped (no --viz)", nil
	}
	nsOutcome, err := r.ensureNS(ctx, VizNamespace, vizNamespaceLabels, vizNamespaceAnnotations)
	if err != nil {
		return "", err
	}
	vals := map[string]any{}
	if _, ok := r.viz.Values["installNamespace"]; ok {
		vals["installNamespace"] = false
	}
	if r.o.PrometheusURL != "" {
		vals["prometheusUrl"] = r.o.PrometheusURL
		setNested(vals, false, "prometheus", "enabled")
	}
	if r.o.GrafanaURL != "" {
		setNested(vals, r.o.GrafanaURL, "grafana", "url")
	}
	relOutcome, err := r.releases(ctx, newHelmRelease(VizRelease, VizNamespace, r.viz, vals))
	if err != nil {
		return "", err
	}
	pm, err := r.podMonitors(ctx)
	if err != nil {
		return "", err
	}
	return nsOutcome + ", " + relOutcome + ", " + pm, nil
}

func (r *runner) webhookStep(ctx context.Context) (string, error) {
	nsOutcome, err := r.ensureNS(ctx, WebhookNamespace, webhookNamespaceLabels, webhookNamespaceAnnotations)
	if err != nil {
		return "", err
	}
	mode, err := webhookDefaultMode(r.o.PolicyMode)
	if err != nil {
		return "", err
	}
	vals := map[string]any{}
	setNested(vals, mode, "policy", "defaultMode")
	setNested(vals, DefaultImageRepository, "image", "repository")
	if r.o.BinaryVersion != "" {
		setNested(vals, r.o.BinaryVersion, "image", "tag")
	}
	// The user's --webhook-set and --webhook-values win over these.
	vals = chartutil.MergeTables(copyValues(r.webhookValues), vals)
	relOutcome, err := r.releases(ctx, newHelmRelease(WebhookRelease, WebhookNamespace, r.webhook, vals))
	if err != nil {
		return "", err
	}
	modeNote := "policy mode " + r.o.PolicyMode
	if got, _, _ := unstructured.NestedString(vals, "policy", "defaultMode"); got != mode {
		modeNote = "policy.defaultMode " + got + " from your webhook values"
	}
	return fmt.Sprintf("%s, %s (%s)", nsOutcome, relOutcome, modeNote), nil
}

func copyValues(in map[string]any) map[string]any {
	out := make(map[string]any, len(in))
	for k, v := range in {
		if m, ok := v.(map[string]any); ok {
			v = copyValues(m)
		}
		out[k] = v
	}
	return out
}

// setNested sets vals[path[0]][path[1]]... = v, creating maps on the way and
// replacing non-map values in between.
func setNested(vals map[string]any, v any, path ...string) {
	m := vals
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
}
