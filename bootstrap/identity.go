package bootstrap

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/certs"
)

const (
	// generatedAnchorValidity follows Linkerd's docs for a hand-made root (10 years).
	generatedAnchorValidity = 10 * 365 * 24 * time.Hour
	// generatedIssuerValidity: nothing rotates a generated issuer but a
	// re-run of bootstrap, so it lives a year, not cert-manager's 48h.
	generatedIssuerValidity = 365 * 24 * time.Hour
	// renewIssuerBefore: a re-run renews a generated issuer with less left.
	renewIssuerBefore = 60 * 24 * time.Hour
	// trustAnchorSelfSignedIssuer is the cert-manager Issuer that signs the
	// trust anchor when no --issuer-ref exists.
	trustAnchorSelfSignedIssuer = "linkerd-trust-anchor-selfsigned"
	// trustAnchorCAIssuer signs the identity issuer from TrustAnchorSecret.
	trustAnchorCAIssuer = "linkerd-trust-anchor"
	// dryRunAnchorPlaceholder stands in for a trust anchor cert-manager has not issued yet.
	dryRunAnchorPlaceholder = "# dry run: the trust anchor is ca.crt of Secret linkerd/linkerd-identity-issuer once cert-manager has issued it\n"
)

// identityResult is the outcome of the identity step: the trust anchor
// bundle to give the control-plane chart, and a line for the progress output.
type identityResult struct {
	anchorPEM []byte
	summary   string
}

func secretData(s *corev1.Secret, key string) []byte {
	if s == nil {
		return nil
	}
	return s.Data[key]
}

func getSecret(ctx context.Context, c *clients, name string) (*corev1.Secret, error) {
	s, err := c.kube.CoreV1().Secrets(ControlPlaneNamespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get Secret %s/%s: %w", ControlPlaneNamespace, name, err)
	}
	return s, nil
}

func chainError(issuerPEM, anchorPEM []byte, now time.Time) error {
	if _, err := certs.VerifyIssuer(issuerPEM, anchorPEM, now); err != nil {
		return &Error{
			Problem: fmt.Sprintf("issuer certificate in Secret %s/%s does not chain to the trust anchor", ControlPlaneNamespace, IssuerSecret),
			Err:     err,
			Fix:     fmt.Sprintf("delete Secret %s/%s (kubectl -n %s delete secret %s) to have bootstrap issue a new issuer, or store an issuer signed by the anchor in ca.crt", ControlPlaneNamespace, IssuerSecret, ControlPlaneNamespace, IssuerSecret),
		}
	}
	return nil
}

func tlsSecret(name string, certPEM, keyPEM, caPEM []byte) *corev1.Secret {
	data := map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}
	if caPEM != nil {
		data["ca.crt"] = caPEM
	}
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: ControlPlaneNamespace,
			Labels:    map[string]string{ManagedByLabel: ManagedByValue},
		},
		Type: corev1.SecretTypeTLS,
		Data: data,
	}
}

// ensureGeneratedIdentity keeps the trust anchor (with its key, so the issuer
// can be renewed) in TrustAnchorSecret and the issuer in IssuerSecret as
// kubernetes.io/tls with ca.crt, which is what Linkerd's
// identity.issuer.scheme=kubernetes.io/tls reads. Existing Secrets are
// reused, after checking the chain; a user's own issuer Secret (without our
// anchor Secret) is used as it is.
func ensureGeneratedIdentity(ctx context.Context, c *clients, now time.Time, dryRun bool, out io.Writer) (identityResult, error) {
	var anchorSecret, issuerSecret *corev1.Secret
	if c != nil {
		var err error
		if anchorSecret, err = getSecret(ctx, c, TrustAnchorSecret); err != nil {
			return identityResult{}, err
		}
		if issuerSecret, err = getSecret(ctx, c, IssuerSecret); err != nil {
			return identityResult{}, err
		}
	}

	var anchor *certs.KeyPair
	anchorAction := "reused"
	switch {
	case anchorSecret != nil:
		kp, err := certs.ParseKeyPair(secretData(anchorSecret, corev1.TLSCertKey), secretData(anchorSecret, corev1.TLSPrivateKeyKey))
		if err != nil {
			return identityResult{}, &Error{
				Problem: fmt.Sprintf("trust anchor Secret %s/%s is unusable", ControlPlaneNamespace, TrustAnchorSecret),
				Err:     err,
				Fix:     "restore it from your backup; deleting it makes bootstrap create a new trust anchor, which every meshed workload must then be restarted to trust",
			}
		}
		anchor = kp
	case issuerSecret != nil:
		// The user brought their own issuer: use it, its anchor key stays with them.
		anchorPEM := secretData(issuerSecret, "ca.crt")
		if len(anchorPEM) == 0 {
			return identityResult{}, &Error{
				Problem: fmt.Sprintf("Secret %s/%s has no ca.crt (the trust anchor)", ControlPlaneNamespace, IssuerSecret),
				Fix:     "add the trust anchor certificate as ca.crt, or delete the Secret to have bootstrap generate one",
			}
		}
		if err := chainError(secretData(issuerSecret, corev1.TLSCertKey), anchorPEM, now); err != nil {
			return identityResult{}, err
		}
		left, _ := certs.VerifyIssuer(secretData(issuerSecret, corev1.TLSCertKey), anchorPEM, now)
		return identityResult{anchorPEM: anchorPEM, summary: fmt.Sprintf("Secret %s/%s provided by you, valid for %s more", ControlPlaneNamespace, IssuerSecret, roundDuration(left))}, nil
	default:
		kp, err := certs.GenerateTrustAnchor(certs.DefaultTrustAnchorCommonName, now, generatedAnchorValidity)
		if err != nil {
			return identityResult{}, fmt.Errorf("generate trust anchor: %w", err)
		}
		anchor = kp
		anchorAction = "generated"
	}

	issuerAction := "unchanged"
	issuerCert, issuerKey := secretData(issuerSecret, corev1.TLSCertKey), secretData(issuerSecret, corev1.TLSPrivateKeyKey)
	if issuerSecret != nil {
		// The issuer must chain to the anchor we hold, and ca.crt must say so.
		if err := chainError(issuerCert, anchor.CertPEM, now); err != nil {
			return identityResult{}, err
		}
		if ca := secretData(issuerSecret, "ca.crt"); !bytes.Equal(bytes.TrimSpace(ca), bytes.TrimSpace(anchor.CertPEM)) {
			if err := chainError(issuerCert, ca, now); err != nil {
				return identityResult{}, err
			}
		}
		left, _ := certs.VerifyIssuer(issuerCert, anchor.CertPEM, now)
		if left < renewIssuerBefore {
			issuerAction = "renewed"
		}
	} else {
		issuerAction = "created"
	}
	if issuerAction != "unchanged" {
		kp, err := certs.GenerateIssuer(anchor, now, generatedIssuerValidity)
		if err != nil {
			return identityResult{}, fmt.Errorf("generate identity issuer: %w", err)
		}
		issuerCert, issuerKey = kp.CertPEM, kp.KeyPEM
	}

	anchorObj := tlsSecret(TrustAnchorSecret, anchor.CertPEM, anchor.KeyPEM, nil)
	issuerObj := tlsSecret(IssuerSecret, issuerCert, issuerKey, anchor.CertPEM)
	if dryRun {
		// Private keys are not printed: the real run makes its own.
		for _, s := range []*corev1.Secret{anchorObj, issuerObj} {
			u, err := toUnstructured(s)
			if err != nil {
				return identityResult{}, err
			}
			// Certificates as readable PEM; private keys are not printed.
			str := map[string]any{}
			for k, v := range s.Data {
				str[k] = string(v)
			}
			str[corev1.TLSPrivateKeyKey] = "<private key: generated by the real run, not printed>"
			unstructured.RemoveNestedField(u.Object, "data")
			_ = unstructured.SetNestedMap(u.Object, str, "stringData")
			if err := writeYAML(out, "identity", u); err != nil {
				return identityResult{}, err
			}
		}
		return identityResult{anchorPEM: anchor.CertPEM, summary: fmt.Sprintf("trust anchor %s, issuer %s (dry run)", anchorAction, issuerAction)}, nil
	}

	if anchorSecret == nil {
		if _, err := c.kube.CoreV1().Secrets(ControlPlaneNamespace).Create(ctx, anchorObj, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
			return identityResult{}, fmt.Errorf("create Secret %s/%s: %w", ControlPlaneNamespace, TrustAnchorSecret, err)
		}
	}
	switch issuerAction {
	case "created":
		if _, err := c.kube.CoreV1().Secrets(ControlPlaneNamespace).Create(ctx, issuerObj, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
			return identityResult{}, fmt.Errorf("create Secret %s/%s: %w", ControlPlaneNamespace, IssuerSecret, err)
		}
	case "renewed":
		upd := issuerSecret.DeepCopy()
		upd.Data = issuerObj.Data
		upd.Type = corev1.SecretTypeTLS
		if _, err := c.kube.CoreV1().Secrets(ControlPlaneNamespace).Update(ctx, upd, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
			return identityResult{}, fmt.Errorf("renew Secret %s/%s: %w", ControlPlaneNamespace, IssuerSecret, err)
		}
	}
	left, err := certs.VerifyIssuer(issuerCert, anchor.CertPEM, now)
	if err != nil {
		return identityResult{}, chainError(issuerCert, anchor.CertPEM, now)
	}
	return identityResult{
		anchorPEM: anchor.CertPEM,
		summary: fmt.Sprintf("Secret %s/%s %s (trust anchor %s, issuer valid for %s)",
			ControlPlaneNamespace, IssuerSecret, issuerAction, anchorAction, roundDuration(left)),
	}, nil
}

// issuerCertificate is the cert-manager Certificate Linkerd's docs give for Linkerd's identity issuer.
func issuerCertificate(ref issuerRef) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cert-manager.io/v1",
		"kind":       "Certificate",
		"metadata": map[string]any{
			"name":      IssuerCertificate,
			"namespace": ControlPlaneNamespace,
			"labels":    map[string]any{ManagedByLabel: ManagedByValue},
		},
		"spec": map[string]any{
			"secretName":  IssuerSecret,
			"duration":    "48h",
			"renewBefore": "25h",
			"issuerRef":   map[string]any{"name": ref.Name, "kind": ref.Kind, "group": "cert-manager.io"},
			"commonName":  certs.IdentityIssuerName,
			"dnsNames":    []any{certs.IdentityIssuerName},
			"isCA":        true,
			// A new key at every renewal, as Linkerd's docs ask (and cert-manager's default from v1.18).
			"privateKey": map[string]any{"algorithm": "ECDSA", "rotationPolicy": "Always"},
			"usages":     []any{"cert sign", "crl sign", "server auth", "client auth"},
		},
	}}
}

// trustAnchorChain is the cert-manager way to a trust anchor when the
// cluster has no CA issuer: a self-signed Issuer signs a root Certificate,
// and a CA Issuer made from the root's Secret signs the identity issuer.
func trustAnchorChain() []*unstructured.Unstructured {
	meta := func(name string) map[string]any {
		return map[string]any{"name": name, "namespace": ControlPlaneNamespace, "labels": map[string]any{ManagedByLabel: ManagedByValue}}
	}
	return []*unstructured.Unstructured{
		{Object: map[string]any{
			"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": meta(trustAnchorSelfSignedIssuer),
			"spec": map[string]any{"selfSigned": map[string]any{}},
		}},
		{Object: map[string]any{
			"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": meta(TrustAnchorSecret),
			"spec": map[string]any{
				"secretName": TrustAnchorSecret,
				"commonName": certs.DefaultTrustAnchorCommonName,
				"isCA":       true,
				"duration":   "87600h",
				// A renewed root keeps its key, so the issuer keeps verifying
				// against the anchor every proxy trusts (docs/trust-rotation.md).
				"privateKey": map[string]any{"algorithm": "ECDSA", "rotationPolicy": "Never"},
				"usages":     []any{"cert sign", "crl sign"},
				"issuerRef":  map[string]any{"name": trustAnchorSelfSignedIssuer, "kind": "Issuer", "group": "cert-manager.io"},
			},
		}},
		{Object: map[string]any{
			"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": meta(trustAnchorCAIssuer),
			"spec": map[string]any{"ca": map[string]any{"secretName": TrustAnchorSecret}},
		}},
	}
}

// ensureCertManagerIdentity applies the issuer Certificate (and, without a
// usable issuer, the trust-anchor chain), waits for cert-manager to write
// the Secret and returns its ca.crt as the trust anchor. Without
// waitReady (--wait=false) an issued Secret that chains to its ca.crt is
// used at once if the same issuer made it, even while cert-manager
// re-issues it for a changed spec; only a first install (or a new issuer),
// which has no trust anchor before cert-manager issues one, still waits.
func ensureCertManagerIdentity(ctx context.Context, c *clients, ref issuerRef, buildChain bool, now func() time.Time, timeout time.Duration, waitReady, dryRun bool, out io.Writer) (identityResult, error) {
	var objs []*unstructured.Unstructured
	if buildChain {
		objs = append(objs, trustAnchorChain()...)
		ref = issuerRef{Kind: "Issuer", Name: trustAnchorCAIssuer}
	}
	objs = append(objs, issuerCertificate(ref))
	chainNote := ""
	if len(objs) > 1 {
		chainNote = fmt.Sprintf(", trust anchor from Certificate %s/%s", ControlPlaneNamespace, TrustAnchorSecret)
	}

	if dryRun {
		if err := writeYAML(out, "identity", objs...); err != nil {
			return identityResult{}, err
		}
		var existing *corev1.Secret
		if c != nil {
			existing, _ = getSecret(ctx, c, IssuerSecret)
		}
		if ca := secretData(existing, "ca.crt"); len(ca) > 0 {
			return identityResult{anchorPEM: ca, summary: fmt.Sprintf("Certificate %s/%s signed by %s (dry run, trust anchor from the existing Secret)", ControlPlaneNamespace, IssuerCertificate, ref)}, nil
		}
		return identityResult{anchorPEM: []byte(dryRunAnchorPlaceholder), summary: fmt.Sprintf("Certificate %s/%s signed by %s (dry run%s)", ControlPlaneNamespace, IssuerCertificate, ref, chainNote)}, nil
	}

	for _, o := range objs {
		gvr := certificateGVR
		if o.GetKind() == "Issuer" {
			gvr = issuerGVR
		}
		if _, err := applyObject(ctx, c, gvr, o); err != nil {
			return identityResult{}, err
		}
	}

	// cert-manager writes the Secret asynchronously; the chart needs its ca.crt.
	var anchorPEM []byte
	var lastProblem string
	// Checks use the caller's ctx so the deadline shows as "not ready", with why.
	if !waitReady {
		s, err := getSecret(ctx, c, IssuerSecret)
		if err != nil {
			return identityResult{}, err
		}
		// Only a Secret from the same issuer: another issuer means another trust anchor.
		sameIssuer := s != nil && s.Annotations["cert-manager.io/issuer-name"] == ref.Name && s.Annotations["cert-manager.io/issuer-kind"] == ref.Kind
		if crt, ca := secretData(s, corev1.TLSCertKey), secretData(s, "ca.crt"); sameIssuer && len(crt) > 0 && len(ca) > 0 {
			if _, err := certs.VerifyIssuer(crt, ca, now()); err == nil {
				return identityResult{anchorPEM: ca, summary: fmt.Sprintf("Certificate %s/%s applied, signed by %s%s; not waiting for it (--wait=false), trust anchor from the issued Secret", ControlPlaneNamespace, IssuerCertificate, ref, chainNote)}, nil
			}
		}
	}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		if ready, why, err := certificateReady(ctx, c, IssuerCertificate); err != nil || !ready {
			lastProblem = why
			return false, err
		}
		s, err := getSecret(ctx, c, IssuerSecret)
		if err != nil {
			return false, err
		}
		crt, ca := secretData(s, corev1.TLSCertKey), secretData(s, "ca.crt")
		switch {
		case s == nil:
			lastProblem = "Secret not created yet"
		case len(crt) == 0 || len(secretData(s, corev1.TLSPrivateKeyKey)) == 0:
			lastProblem = "Secret has no tls.crt/tls.key yet"
		case len(ca) == 0:
			lastProblem = "Secret has no ca.crt: the issuer must be a CA issuer"
		default:
			if _, err := certs.VerifyIssuer(crt, ca, now()); err != nil {
				lastProblem = oneLine(err.Error())
				return false, nil
			}
			anchorPEM = ca
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return identityResult{}, ctx.Err()
		}
		if _, ok := err.(*Error); ok {
			return identityResult{}, err
		}
		return identityResult{}, &Error{
			Problem: fmt.Sprintf("Certificate %s/%s not ready after %s (%s)", ControlPlaneNamespace, IssuerCertificate, timeout, lastProblem),
			Fix:     fmt.Sprintf("check that cert-manager runs and can use issuer %s (kubectl -n %s describe certificate %s), then run bootstrap again", ref, ControlPlaneNamespace, IssuerCertificate),
		}
	}
	return identityResult{anchorPEM: anchorPEM, summary: fmt.Sprintf("Certificate %s/%s ready, signed by %s%s", ControlPlaneNamespace, IssuerCertificate, ref, chainNote)}, nil
}

// certificateReady reports whether cert-manager has issued the current spec
// of a Certificate: its Ready condition is True for the latest generation.
// Without the generation check a re-run that changed the issuer would read
// the Secret of the previous issuer.
func certificateReady(ctx context.Context, c *clients, name string) (bool, string, error) {
	cert, err := c.dynamic.Resource(certificateGVR).Namespace(ControlPlaneNamespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, "", fmt.Errorf("get Certificate %s/%s: %w", ControlPlaneNamespace, name, err)
	}
	conds, _, _ := unstructured.NestedSlice(cert.Object, "status", "conditions")
	for _, raw := range conds {
		cond, ok := raw.(map[string]any)
		if !ok || cond["type"] != "Ready" {
			continue
		}
		gen, _, _ := unstructured.NestedInt64(cond, "observedGeneration")
		msg, _ := cond["message"].(string)
		if cond["status"] != "True" {
			return false, "not ready: " + msg, nil
		}
		if gen < cert.GetGeneration() {
			return false, "the issuer has not handled the latest change yet", nil
		}
		return true, "", nil
	}
	return false, "no Ready condition yet: is cert-manager running?", nil
}

// checkIssuer looks up the issuer of the identity Certificate before
// anything changes: a missing explicit issuer is an error, a missing default
// one means bootstrap builds its own chain (buildChain).
func checkIssuer(ctx context.Context, c *clients, ref issuerRef) (buildChain bool, err error) {
	exists, err := issuerExists(ctx, c, ref)
	if err != nil || exists {
		return false, err
	}
	if ref.explicit {
		where := "cluster-wide"
		if ref.Kind == "Issuer" {
			where = "in namespace " + ControlPlaneNamespace
		}
		return false, &Error{
			Problem: fmt.Sprintf("cert-manager issuer %s not found %s", ref, where),
			Fix:     "create it, pass --issuer-ref to an issuer that exists, or leave --issuer-ref out to have bootstrap make a trust anchor through cert-manager",
		}
	}
	return true, nil
}

func issuerExists(ctx context.Context, c *clients, ref issuerRef) (bool, error) {
	var err error
	if ref.Kind == "ClusterIssuer" {
		_, err = c.dynamic.Resource(clusterIssuerGVR).Get(ctx, ref.Name, metav1.GetOptions{})
	} else {
		_, err = c.dynamic.Resource(issuerGVR).Namespace(ControlPlaneNamespace).Get(ctx, ref.Name, metav1.GetOptions{})
	}
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up cert-manager issuer %s: %w", ref, err)
	}
	return true, nil
}

func roundDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	case d >= time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return d.Round(time.Second).String()
	}
}
