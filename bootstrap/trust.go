package bootstrap

// The trust bundle under --identity cert-manager: bootstrap keeps every
// root the cluster already trusts, adds the root the issuer or its CA now
// uses, and drops an old root only when asked (--drop-old-trust-roots) and
// when nothing depends on it any more. docs/trust-rotation.md tells the
// same story for people.

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/certs"
)

const (
	// TrustRootsConfigMap is Linkerd's trust bundle (key ca-bundle.crt),
	// rendered by the control-plane chart from identityTrustAnchorsPEM. The
	// identity controller and the proxy injector mount it.
	TrustRootsConfigMap = "linkerd-identity-trust-roots"
	// TrustRootAnnotation is the pod annotation in which Linkerd's injector
	// records certs.TrustRootSHA256 of the bundle a pod was injected with.
	TrustRootAnnotation = "linkerd.io/trust-root-sha256"
	// IssuerRootAnnotation and IssuerRootSinceAnnotation, on the issuer
	// Certificate, record which root signs the identity issuer and since
	// when bootstrap has seen it do so: an old root may be dropped only
	// after every proxy certificate from an issuer of the old root expired.
	IssuerRootAnnotation      = "linkerd-inject-policy.io/issuer-root-sha256"
	IssuerRootSinceAnnotation = "linkerd-inject-policy.io/issuer-root-since"

	// certManagerClusterResourceNamespace is where cert-manager keeps the
	// Secrets of ClusterIssuers (its --cluster-resource-namespace default).
	certManagerClusterResourceNamespace = "cert-manager"
	// defaultIssuanceLifetime is Linkerd's proxy certificate lifetime
	// (identity.issuer.issuanceLifetime) when the chart does not say.
	defaultIssuanceLifetime = 24 * time.Hour
	// certManagerDefaultDuration is a Certificate's duration when it sets none.
	certManagerDefaultDuration = 90 * 24 * time.Hour
)

// caRoot is the root certificate behind a cert-manager CA issuer, and the
// Certificate that renews it (nil when the CA Secret was made by hand).
type caRoot struct {
	ref         issuerRef
	secret      string // namespace/name of the CA Secret
	cert        *x509.Certificate
	certificate *unstructured.Unstructured
}

// lookupCARoot finds the root of a CA issuer: spec.ca.secretName, read from
// the issuer's namespace (or cert-manager's for a ClusterIssuer). Issuers
// of other kinds (Vault, ACME), a missing Secret and a CA that is not
// self-signed (an intermediate) give nil: bootstrap then follows only the
// ca.crt of the issuer Secret.
func lookupCARoot(ctx context.Context, c *clients, ref issuerRef) (*caRoot, error) {
	var issuer *unstructured.Unstructured
	var err error
	ns := ControlPlaneNamespace
	if ref.Kind == "ClusterIssuer" {
		ns = certManagerClusterResourceNamespace
		issuer, err = c.dynamic.Resource(clusterIssuerGVR).Get(ctx, ref.Name, metav1.GetOptions{})
	} else {
		issuer, err = c.dynamic.Resource(issuerGVR).Namespace(ControlPlaneNamespace).Get(ctx, ref.Name, metav1.GetOptions{})
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up cert-manager issuer %s: %w", ref, err)
	}
	name, _, _ := unstructured.NestedString(issuer.Object, "spec", "ca", "secretName")
	if name == "" {
		return nil, nil
	}
	s, err := c.kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get the CA Secret %s/%s of %s: %w", ns, name, ref, err)
	}
	chain, err := certs.ParseCertificates(s.Data[corev1.TLSCertKey])
	if err != nil {
		return nil, &Error{
			Problem: fmt.Sprintf("the CA Secret %s/%s of %s has no usable tls.crt", ns, name, ref),
			Err:     err,
			Fix:     "fix the CA Secret (cert-manager cannot sign with it either)",
		}
	}
	if chain[0].CheckSignatureFrom(chain[0]) != nil {
		return nil, nil
	}
	root := &caRoot{ref: ref, secret: ns + "/" + name, cert: chain[0]}
	if certName := s.Annotations["cert-manager.io/certificate-name"]; certName != "" {
		cert, err := c.dynamic.Resource(certificateGVR).Namespace(ns).Get(ctx, certName, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("get Certificate %s/%s of the CA Secret %s: %w", ns, certName, root.secret, err)
		}
		if err == nil {
			root.certificate = cert
		}
	}
	return root, nil
}

// rootRenewal is when cert-manager renews a CA's root and whether it makes
// a new key then.
type rootRenewal struct {
	at       time.Time
	policy   string // privateKey.rotationPolicy as cert-manager applies it
	duration time.Duration
	before   time.Duration
}

func (r rootRenewal) newKey() bool { return r.policy != "Never" }

// renewalOf reads a Certificate as cert-manager does: status.renewalTime
// when set, else renewBefore (or renewBeforePercentage, else a third of the
// certificate's life) before its NotAfter; rotationPolicy defaults to
// Always (cert-manager 1.18 and later).
func renewalOf(certificate *unstructured.Unstructured, cert *x509.Certificate) rootRenewal {
	r := rootRenewal{policy: "Always", duration: certManagerDefaultDuration}
	if p, _, _ := unstructured.NestedString(certificate.Object, "spec", "privateKey", "rotationPolicy"); p != "" {
		r.policy = p
	}
	if d, ok, _ := unstructured.NestedString(certificate.Object, "spec", "duration"); ok {
		if v, err := time.ParseDuration(d); err == nil {
			r.duration = v
		}
	}
	life := cert.NotAfter.Sub(cert.NotBefore)
	r.before = life / 3
	if pct, ok, _ := unstructured.NestedInt64(certificate.Object, "spec", "renewBeforePercentage"); ok && pct > 0 && pct < 100 {
		r.before = life * time.Duration(pct) / 100
	}
	if d, ok, _ := unstructured.NestedString(certificate.Object, "spec", "renewBefore"); ok {
		if v, err := time.ParseDuration(d); err == nil {
			r.before = v
		}
	}
	r.at = cert.NotAfter.Add(-r.before)
	if s, ok, _ := unstructured.NestedString(certificate.Object, "status", "renewalTime"); ok {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			r.at = t
		}
	}
	return r
}

// effectiveIssuerRef is the issuer that signs the identity issuer: the
// chain bootstrap builds when the default ClusterIssuer is missing.
func (r *runner) effectiveIssuerRef() issuerRef {
	if r.buildChain {
		return issuerRef{Kind: "Issuer", Name: trustAnchorCAIssuer}
	}
	return r.ref
}

// rootRenewalWarning is preflight's warning when the CA's root will renew
// with a new key while the cluster still trusts the current one: from then
// on cert-manager signs the identity issuer with a root Linkerd does not
// trust yet. Empty when there is nothing to warn about.
func (r *runner) rootRenewalWarning(ctx context.Context) (string, error) {
	if r.o.Identity != IdentityCertManager || r.c == nil {
		return "", nil
	}
	root, err := lookupCARoot(ctx, r.c, r.effectiveIssuerRef())
	if err != nil || root == nil || root.certificate == nil {
		return "", err
	}
	ren := renewalOf(root.certificate, root.cert)
	if !ren.newKey() {
		return "", nil
	}
	// The anchor the cluster trusts: the bundle's root with this key, or
	// (first install) the CA's root itself.
	trusted := root.cert
	if bundle, err := currentTrustBundle(ctx, r.c); err == nil {
		for _, b := range bundle {
			if string(b.RawSubjectPublicKeyInfo) == string(root.cert.RawSubjectPublicKeyInfo) && b.NotAfter.After(trusted.NotAfter) {
				trusted = b
			}
		}
	}
	if !ren.at.Before(trusted.NotAfter) {
		return "", nil
	}
	certName := root.certificate.GetNamespace() + "/" + root.certificate.GetName()
	return fmt.Sprintf("warning: the root of %s (Certificate %s, %s valid, renewed %s before it expires) renews with a new private key around %s "+
		"(privateKey.rotationPolicy %s, cert-manager's default), before the trust anchor the cluster trusts expires (%s); "+
		"cert-manager then signs Linkerd's identity issuer with a root Linkerd does not trust yet, and mTLS breaks unless bootstrap runs and every meshed workload restarts in between (docs/trust-rotation.md). "+
		"Fix: set spec.privateKey.rotationPolicy: Never on Certificate %s, so a renewed root keeps its key and the issuer keeps verifying against the trusted anchor, "+
		"or give it a duration longer than you keep the cluster and rotate the root on purpose",
		root.ref, certName, roundDuration(ren.duration), roundDuration(ren.before), ren.at.UTC().Format(time.RFC3339),
		ren.policy, trusted.NotAfter.UTC().Format(time.RFC3339), certName), nil
}

// currentTrustBundle is what the cluster trusts now: the roots of ConfigMap
// linkerd-identity-trust-roots, nil when there is none yet.
func currentTrustBundle(ctx context.Context, c *clients) ([]*x509.Certificate, error) {
	raw, err := currentTrustBundlePEM(ctx, c)
	if err != nil || raw == nil {
		return nil, err
	}
	roots, err := certs.ParseCertificates(raw)
	if err != nil {
		return nil, &Error{
			Problem: fmt.Sprintf("ConfigMap %s/%s holds no usable trust bundle", ControlPlaneNamespace, TrustRootsConfigMap),
			Err:     err,
			Fix:     "pass the bundle you mean as identityTrustAnchorsPEM in -f values.yaml, or delete the ConfigMap to have the control-plane chart render it again from the issuer's root",
		}
	}
	return roots, nil
}

func currentTrustBundlePEM(ctx context.Context, c *clients) ([]byte, error) {
	cm, err := c.kube.CoreV1().ConfigMaps(ControlPlaneNamespace).Get(ctx, TrustRootsConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get ConfigMap %s/%s: %w", ControlPlaneNamespace, TrustRootsConfigMap, err)
	}
	b, ok := cm.Data["ca-bundle.crt"]
	if !ok {
		return nil, nil
	}
	return []byte(b), nil
}

// bundlePlan is the trust bundle bootstrap gives the chart, and how it got there.
type bundlePlan struct {
	roots []*x509.Certificate
	// added are roots the cluster did not trust yet; dropped were removed
	// (only with --drop-old-trust-roots); old are kept roots that neither
	// the issuer nor its CA uses any more.
	added, dropped, old []*x509.Certificate
	// issuerUntrusted: the issuer is signed by a root the cluster did not
	// trust, so Linkerd's identity controller has refused it until now.
	issuerUntrusted bool
}

func (p bundlePlan) changed() bool { return len(p.added) > 0 || len(p.dropped) > 0 }

func containsCert(list []*x509.Certificate, c *x509.Certificate) bool {
	for _, l := range list {
		if l.Equal(c) {
			return true
		}
	}
	return false
}

// planBundle keeps the roots the cluster trusts (in their order), adds the
// issuer's roots and the CA's current root after them, and with drop
// removes the roots neither uses. It does no I/O: the checks before a drop
// are the caller's.
func planBundle(current, issuerRoots []*x509.Certificate, caCert *x509.Certificate, drop bool) bundlePlan {
	var p bundlePlan
	inUse := append([]*x509.Certificate{}, issuerRoots...)
	if caCert != nil && !containsCert(inUse, caCert) {
		inUse = append(inUse, caCert)
	}
	if len(current) > 0 {
		p.issuerUntrusted = true
		for _, ir := range issuerRoots {
			if containsCert(current, ir) {
				p.issuerUntrusted = false
			}
		}
	}
	for _, c := range current {
		if containsCert(p.roots, c) {
			continue
		}
		if !containsCert(inUse, c) {
			if drop {
				p.dropped = append(p.dropped, c)
				continue
			}
			p.old = append(p.old, c)
		}
		p.roots = append(p.roots, c)
	}
	for _, c := range inUse {
		if !containsCert(p.roots, c) {
			p.roots = append(p.roots, c)
			if len(current) > 0 {
				p.added = append(p.added, c)
			}
		}
	}
	return p
}

// describeRoot names a root for people: its common name, the start of the
// SHA-256 of its DER (as `openssl x509 -fingerprint -sha256` prints it, in
// lowercase) and its expiry.
func describeRoot(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return fmt.Sprintf("%q (sha256 %s…, valid until %s)", c.Subject.CommonName, hex.EncodeToString(sum[:6]), c.NotAfter.UTC().Format(time.RFC3339))
}

func describeRoots(list []*x509.Certificate) string {
	var parts []string
	for _, c := range list {
		parts = append(parts, describeRoot(c))
	}
	return strings.Join(parts, ", ")
}

func rootSHA256(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

func sameKeyAs(c *x509.Certificate, list []*x509.Certificate) bool {
	for _, l := range list {
		if !l.Equal(c) && string(l.RawSubjectPublicKeyInfo) == string(c.RawSubjectPublicKeyInfo) {
			return true
		}
	}
	return false
}

// stalePods lists the pods whose linkerd.io/trust-root-sha256 is not the
// hash of the bundle the cluster trusts now: what `doctor` reports as
// stale_trust_root. Pods without the annotation are not meshed.
func stalePods(ctx context.Context, c *clients, bundlePEM []byte) ([]string, error) {
	want := certs.TrustRootSHA256(bundlePEM)
	var stale []string
	opts := metav1.ListOptions{Limit: 500}
	for {
		pods, err := c.kube.CoreV1().Pods(metav1.NamespaceAll).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list pods to find those injected with another trust bundle: %w", err)
		}
		for _, p := range pods.Items {
			if h, ok := p.Annotations[TrustRootAnnotation]; ok && h != want {
				stale = append(stale, p.Namespace+"/"+p.Name)
			}
		}
		if pods.Continue == "" {
			break
		}
		opts.Continue = pods.Continue
	}
	sort.Strings(stale)
	return stale, nil
}

func firstFew(list []string, n int) string {
	if len(list) <= n {
		return strings.Join(list, ", ")
	}
	return strings.Join(list[:n], ", ") + fmt.Sprintf(" and %d more", len(list)-n)
}

// issuanceLifetime is how long Linkerd's proxy certificates live: the
// user's identity.issuer.issuanceLifetime, else the chart's, else 24h.
func (r *runner) issuanceLifetime() time.Duration {
	for _, vals := range []map[string]any{r.userValues, r.chartValues()} {
		if s, ok, _ := unstructured.NestedString(vals, "identity", "issuer", "issuanceLifetime"); ok {
			if d, err := time.ParseDuration(s); err == nil && d > 0 {
				return d
			}
		}
	}
	return defaultIssuanceLifetime
}

func (r *runner) chartValues() map[string]any {
	if r.controlPlane == nil {
		return nil
	}
	return r.controlPlane.Values
}

// issuerRootSince records on the issuer Certificate which root signs the
// issuer and since when, and returns that time. A root bootstrap has not
// seen sign the issuer before counts from the issuer's NotBefore: never
// earlier than the truth, so a drop waits at least as long as it must.
func (r *runner) issuerRootSince(ctx context.Context, issuerRoot, issuer *x509.Certificate) (time.Time, error) {
	sum := rootSHA256(issuerRoot)
	since := issuer.NotBefore.UTC()
	cert, err := r.c.dynamic.Resource(certificateGVR).Namespace(ControlPlaneNamespace).Get(ctx, IssuerCertificate, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && r.o.DryRun {
		return since, nil // a dry run before the first install
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("get Certificate %s/%s: %w", ControlPlaneNamespace, IssuerCertificate, err)
	}
	ann := cert.GetAnnotations()
	if ann[IssuerRootAnnotation] == sum {
		if t, err := time.Parse(time.RFC3339, ann[IssuerRootSinceAnnotation]); err == nil {
			return t, nil
		}
	}
	if r.o.DryRun {
		return since, nil
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q,%q:%q}}}`, IssuerRootAnnotation, sum, IssuerRootSinceAnnotation, since.Format(time.RFC3339))
	if _, err := r.c.dynamic.Resource(certificateGVR).Namespace(ControlPlaneNamespace).Patch(ctx, IssuerCertificate, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		return time.Time{}, fmt.Errorf("record the issuer's root on Certificate %s/%s: %w", ControlPlaneNamespace, IssuerCertificate, err)
	}
	return since, nil
}

// issuerRenewalTime is when cert-manager renews the identity issuer next
// (as renewalOf reads its Certificate), zero when unknown.
func (r *runner) issuerRenewalTime(ctx context.Context, issuer *x509.Certificate) time.Time {
	cert, err := r.c.dynamic.Resource(certificateGVR).Namespace(ControlPlaneNamespace).Get(ctx, IssuerCertificate, metav1.GetOptions{})
	if err != nil {
		return time.Time{}
	}
	return renewalOf(cert, issuer).at
}

// manageTrustBundle turns the issuer Secret's ca.crt (res.anchorPEM) into
// the bundle the chart gets: what the cluster trusts, plus the roots the
// issuer and its CA use now, minus old roots on --drop-old-trust-roots.
// What a person must do next goes to r.trustNotes.
func (r *runner) manageTrustBundle(ctx context.Context, res identityResult) (identityResult, error) {
	if r.c == nil {
		return res, nil
	}
	if user, ok := r.userValues["identityTrustAnchorsPEM"].(string); ok && user != "" {
		if r.o.DropOldTrustRoots {
			return res, &Error{
				Problem: "--drop-old-trust-roots: identityTrustAnchorsPEM in your values sets the trust bundle",
				Fix:     "remove the old root from that value instead, or drop the value to let bootstrap manage the bundle",
				Usage:   true,
			}
		}
		return res, nil // the user's bundle, checked against the issuer's root by controlPlaneValues
	}
	issuerRoots, err := certs.ParseCertificates(res.anchorPEM)
	if err != nil {
		return res, nil // a dry run's placeholder: nothing issued yet
	}
	issuerSecret, err := getSecret(ctx, r.c, IssuerSecret)
	if err != nil {
		return res, err
	}
	issuerChain, err := certs.ParseCertificates(secretData(issuerSecret, corev1.TLSCertKey))
	if err != nil {
		return res, fmt.Errorf("identity issuer in Secret %s/%s: %w", ControlPlaneNamespace, IssuerSecret, err)
	}
	currentPEM, err := currentTrustBundlePEM(ctx, r.c)
	if err != nil {
		return res, err
	}
	current, err := currentTrustBundle(ctx, r.c)
	if err != nil {
		return res, err
	}
	ca, err := lookupCARoot(ctx, r.c, r.effectiveIssuerRef())
	if err != nil {
		return res, err
	}
	var caCert *x509.Certificate
	if ca != nil {
		caCert = ca.cert
	}
	now := r.o.Now()
	plan := planBundle(current, issuerRoots, caCert, r.o.DropOldTrustRoots)
	// Which root signs the issuer: the one of its ca.crt it verifies against.
	issuerRoot := issuerRoots[0]
	for _, ir := range issuerRoots {
		if issuerChain[len(issuerChain)-1].CheckSignatureFrom(ir) == nil {
			issuerRoot = ir
			break
		}
	}
	since, err := r.issuerRootSince(ctx, issuerRoot, issuerChain[0])
	if err != nil {
		return res, err
	}

	if r.o.DropOldTrustRoots && len(plan.dropped) > 0 {
		if stale, err := stalePods(ctx, r.c, currentPEM); err != nil {
			return res, err
		} else if len(stale) > 0 {
			return res, &Error{
				Problem: fmt.Sprintf("--drop-old-trust-roots: meshed pods were injected with another trust bundle than the cluster's: %d (%s)", len(stale), firstFew(stale, 5)),
				Fix:     "restart their workloads (kubectl rollout restart) so they hold the current bundle, check with linkerd-inject-policy doctor (stale_trust_root), then run again",
			}
		}
		if wait := since.Add(r.issuanceLifetime()); now.Before(wait) {
			return res, &Error{
				Problem: fmt.Sprintf("--drop-old-trust-roots: the identity issuer is signed by root %s only since %s: proxies may still hold certificates from an issuer of the old root until %s", describeRoot(issuerRoot), since.Format(time.RFC3339), wait.UTC().Format(time.RFC3339)),
				Fix:     "run again after that time",
			}
		}
	}

	bundle := certs.EncodeTrustBundle(plan.roots)
	if !plan.changed() && currentPEM != nil {
		bundle = currentPEM // the same roots: keep the cluster's bytes, so no pod's hash goes stale
	}
	res.anchorPEM = bundle
	res.summary += ", " + bundleSummary(plan)
	var stale []string
	if plan.changed() || len(plan.old) > 0 {
		// The pods to restart: injected with a bundle other than the one
		// the cluster trusts after this run.
		if stale, err = stalePods(ctx, r.c, bundle); err != nil {
			return res, err
		}
	}
	r.trustNotes = trustNotes(plan, r.effectiveIssuerRef(), caCert, issuerRoot, r.issuerRenewalTime(ctx, issuerChain[0]), since.Add(r.issuanceLifetime()), stale)
	return res, nil
}

func bundleSummary(p bundlePlan) string {
	n := fmt.Sprintf("trust bundle %d root", len(p.roots))
	if len(p.roots) != 1 {
		n += "s"
	}
	var what []string
	if len(p.added) > 0 {
		what = append(what, fmt.Sprintf("%d added", len(p.added)))
	}
	if len(p.dropped) > 0 {
		what = append(what, fmt.Sprintf("%d dropped", len(p.dropped)))
	}
	if len(p.old) > 0 {
		what = append(what, fmt.Sprintf("%d old kept", len(p.old)))
	}
	if len(what) > 0 {
		n += " (" + strings.Join(what, ", ") + "; see below)"
	}
	return n
}

// trustNotes says what a person must do after this run, in order, naming
// the stale pods (those injected with another bundle). Empty when the
// bundle holds only roots in use and nothing changed.
func trustNotes(p bundlePlan, ref issuerRef, caCert, issuerRoot *x509.Certificate, issuerRenewal, dropAfter time.Time, stale []string) []string {
	bundleCM := fmt.Sprintf("ConfigMap %s/%s", ControlPlaneNamespace, TrustRootsConfigMap)
	controlPlane := fmt.Sprintf("1. the control plane trusts the new bundle once Helm release %s/%s is upgraded with it (this run does that): its pods restart, since their templates carry the bundle's hash and Linkerd's identity controller reads the bundle only when it starts.", ControlPlaneNamespace, ControlPlaneRelease)
	doctor := "`linkerd-inject-policy doctor` lists the pods still injected with another bundle (stale_trust_root)"
	if len(stale) == 0 {
		doctor += "; no pod holds another bundle now"
	} else {
		verb := "pods hold"
		if len(stale) == 1 {
			verb = "pod holds"
		}
		doctor += fmt.Sprintf("; %d %s another bundle now: %s", len(stale), verb, firstFew(stale, 5))
	}
	restart := "kubectl rollout restart deployment,statefulset,daemonset -n NAMESPACE for each meshed namespace"
	drop := fmt.Sprintf("3. when doctor lists no stale_trust_root and it is after %s (the proxy certificates from an issuer of the old root have expired), run bootstrap again with --drop-old-trust-roots to remove the old root; until then every run keeps it.", dropAfter.UTC().Format(time.RFC3339))
	switch {
	case len(p.dropped) > 0:
		return []string{
			fmt.Sprintf("trust-anchor rotation: dropped the old root %s from the trust bundle in %s; it holds %s now.", describeRoots(p.dropped), bundleCM, describeRoots(p.roots)),
			"1. the control plane restarts with the smaller bundle (this run upgraded it).",
			"2. workloads injected before keep trusting the dropped root until they restart; restart them when convenient (" + restart + "); " + doctor + ".",
		}
	case len(p.added) > 0 && p.issuerUntrusted:
		return []string{
			fmt.Sprintf("trust-anchor rotation: the identity issuer in Secret %s/%s is signed by a root the cluster did not trust, %s: Linkerd's identity controller refuses it (IssuerUpdateSkipped) and keeps its previous issuer, which mTLS depends on until that expires, until it restarts with the new bundle. The trust bundle in %s now holds the new root beside the old one. In order:", ControlPlaneNamespace, IssuerSecret, describeRoots(p.added), bundleCM),
			controlPlane + " The identity controller then loads the new issuer.",
			"2. restart every meshed workload now (" + restart + "): proxies injected before this run do not trust the new root, and the identity controller now hands out certificates from it; " + doctor + ".",
			drop,
		}
	case len(p.added) > 0:
		kind := "with a new key"
		if caCert != nil && sameKeyAs(caCert, p.roots) {
			kind = "with the same key (the issuer verifies against either certificate, but the old one expires)"
		}
		when := "before cert-manager renews the identity issuer from the new root"
		if !issuerRenewal.IsZero() {
			when += fmt.Sprintf(" (Certificate %s/%s renews at %s)", ControlPlaneNamespace, IssuerCertificate, issuerRenewal.UTC().Format(time.RFC3339))
		}
		return []string{
			fmt.Sprintf("trust-anchor rotation: the CA behind %s has a new root %s, %s; the trust bundle in %s now holds it beside the current root %s, which still signs the identity issuer. In order:", ref, describeRoots(p.added), kind, bundleCM, describeRoot(issuerRoot)),
			controlPlane,
			"2. restart every meshed workload " + when + ": a proxy trusts only the bundle it was injected with (" + restart + "); " + doctor + ".",
			drop,
		}
	case len(p.old) > 0:
		return []string{
			fmt.Sprintf("trust-anchor rotation in progress: the trust bundle keeps the old root %s; the identity issuer is signed by %s.", describeRoots(p.old), describeRoot(issuerRoot)),
			"restart every meshed workload that still holds the old bundle (" + doctor + "); " + strings.TrimPrefix(drop, "3. "),
		}
	}
	return nil
}

// printTrustNotes writes the preflight warning and, once the control plane
// got the bundle (or in a dry run), what to do about it.
func (r *runner) printTrustNotes() {
	prefix := ""
	if r.o.DryRun {
		prefix = "# "
	}
	if r.trustWarning != "" {
		fmt.Fprintf(r.out, "%s%s\n", prefix, r.trustWarning)
	}
	applied := r.o.DryRun
	for _, rel := range r.installed {
		applied = applied || rel.Name == ControlPlaneRelease
	}
	if !applied {
		return
	}
	for i, n := range r.trustNotes {
		if i > 0 {
			n = "  " + n
		} else if r.o.DryRun {
			n = "dry run, the real run would report: " + n
		}
		fmt.Fprintf(r.out, "%s%s\n", prefix, n)
	}
}
