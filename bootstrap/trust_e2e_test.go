package bootstrap

// A trust-anchor rotation under cert-manager on a real apiserver, with
// cert-manager's real CRDs and fakeCertManagerIssuer playing its controller
// (which makes a new key at every issuance, as cert-manager 1.21 does with
// its default rotationPolicy Always). Skipped with -short.

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/certs"
)

// standInIdentityControllerCheck is a stand-in for Linkerd's identity
// controller loading its issuer (pkg/identity's loadCredentials in
// linkerd2): the issuer Secret's tls.crt and tls.key are the files it
// mounts, the key must match the certificate, and the issuer certificate
// must pass an x509 verification with the trust bundle of ConfigMap
// linkerd-identity-trust-roots as its roots (the rest of tls.crt as
// intermediates, the default key usage, now) and be a CA. A non-nil error
// is what the real controller reports as IssuerUpdateSkipped, keeping its
// previous issuer.
func standInIdentityControllerCheck(ctx context.Context, cl *clients) error {
	s, err := cl.kube.CoreV1().Secrets(ControlPlaneNamespace).Get(ctx, IssuerSecret, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("issuer Secret: %w", err)
	}
	cm, err := cl.kube.CoreV1().ConfigMaps(ControlPlaneNamespace).Get(ctx, TrustRootsConfigMap, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("trust roots ConfigMap: %w", err)
	}
	if _, err := certs.ParseKeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]); err != nil {
		return fmt.Errorf("failed to read CA from disk: %w", err)
	}
	chain, err := certs.ParseCertificates(s.Data[corev1.TLSCertKey])
	if err != nil {
		return err
	}
	anchors, err := certs.ParseCertificates([]byte(cm.Data["ca-bundle.crt"]))
	if err != nil {
		return fmt.Errorf("trust anchors: %w", err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, a := range anchors {
		roots.AddCert(a)
	}
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: time.Now()}); err != nil {
		return fmt.Errorf("failed to verify issuer credentials with trust anchors: %w", err)
	}
	if !chain[0].IsCA {
		return errors.New("failed to verify issuer certificate: it must be an intermediate-CA, but it is not")
	}
	return nil
}

func requireIssuerVerifies(t *testing.T, cl *clients) {
	t.Helper()
	if err := standInIdentityControllerCheck(context.Background(), cl); err != nil {
		t.Fatalf("the identity controller (stand-in) refuses the issuer: %v", err)
	}
}

func trustBundle(t *testing.T, cl *clients) ([]*x509.Certificate, string) {
	t.Helper()
	cm, err := cl.kube.CoreV1().ConfigMaps(ControlPlaneNamespace).Get(context.Background(), TrustRootsConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	roots, err := certs.ParseCertificates([]byte(cm.Data["ca-bundle.crt"]))
	if err != nil {
		t.Fatal(err)
	}
	return roots, cm.Data["ca-bundle.crt"]
}

func assertBundle(t *testing.T, cl *clients, want ...*x509.Certificate) {
	t.Helper()
	got, _ := trustBundle(t, cl)
	if len(got) != len(want) {
		t.Fatalf("trust bundle has %d roots, want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("trust bundle root %d is %s, want %s", i+1, describeRoot(got[i]), describeRoot(want[i]))
		}
	}
}

// renewCertificate does what `cmctl renew` asks of cert-manager: the
// Certificate is marked as issuing, and the issuer (here the fake) issues it again.
func renewCertificate(t *testing.T, cl *clients, ns, name string) {
	t.Helper()
	ctx := context.Background()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		cert, err := cl.dynamic.Resource(certificateGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		_ = unstructured.SetNestedSlice(cert.Object, []any{map[string]any{
			"type": "Issuing", "status": "True", "reason": "ManuallyTriggered", "message": "renewal requested by the test",
			"lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
		}}, "status", "conditions")
		_, err = cl.dynamic.Resource(certificateGVR).Namespace(ns).UpdateStatus(ctx, cert, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		t.Fatalf("renew Certificate %s/%s: %v", ns, name, err)
	}
}

// waitForSecretCert waits until Secret ns/name's key holds a first
// certificate other than not (any, when not is nil) and returns it.
func waitForSecretCert(t *testing.T, cl *clients, ns, name, key string, not *x509.Certificate) *x509.Certificate {
	t.Helper()
	var got *x509.Certificate
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		s, err := cl.kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		list, err := certs.ParseCertificates(s.Data[key])
		if err != nil || (not != nil && list[0].Equal(not)) {
			return false, nil
		}
		got = list[0]
		return true, nil
	})
	if err != nil {
		t.Fatalf("Secret %s/%s %s: %v", ns, name, key, err)
	}
	return got
}

// meshedPod stands in for a pod Linkerd's injector admitted: it carries the
// hash of the bundle the injector read (no proxy runs; there are no nodes).
func meshedPod(t *testing.T, cl *clients, name, bundle string) {
	t.Helper()
	ctx := context.Background()
	pods := cl.kube.CoreV1().Pods("shop")
	if err := pods.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{TrustRootAnnotation: certs.TrustRootSHA256([]byte(bundle))}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "web", AutomountServiceAccountToken: new(bool),
			Containers: []corev1.Container{{Name: "web", Image: "registry.invalid/web:1"}},
		},
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := pods.Create(ctx, pod, metav1.CreateOptions{})
		return err == nil, nil // the deleted pod may still be going away
	})
	if err != nil {
		t.Fatalf("create pod shop/%s: %v", name, err)
	}
}

func TestTrustAnchorRotationUnderCertManagerOnARealAPIServer(t *testing.T) {
	c, cl := startCluster(t)
	ctx := context.Background()
	crdDir := certManagerCRDs(t)
	var files []string
	for _, f := range []string{"cert-manager.io_certificates.yaml", "cert-manager.io_certificaterequests.yaml", "cert-manager.io_issuers.yaml", "cert-manager.io_clusterissuers.yaml"} {
		files = append(files, filepath.Join(crdDir, f))
	}
	installCRDs(t, c, files...)
	fakeCertManagerIssuer(t, c.RESTConfig)
	for _, ns := range []string{certManagerClusterResourceNamespace, "shop"} {
		if err := c.CreateNamespace(ctx, ns, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.kube.CoreV1().ServiceAccounts("shop").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The root made the usual way: a self-signed ClusterIssuer signs a root
	// Certificate without duration (90 days, renewed at day 60 with a new
	// key), and ClusterIssuer ca-issuer signs with the root's Secret.
	for _, o := range []*unstructured.Unstructured{
		{Object: map[string]any{"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": map[string]any{"name": "selfsigned"}, "spec": map[string]any{"selfSigned": map[string]any{}}}},
		{Object: map[string]any{"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": map[string]any{"name": "ca-issuer"}, "spec": map[string]any{"ca": map[string]any{"secretName": "root-secret"}}}},
	} {
		if _, err := cl.dynamic.Resource(clusterIssuerGVR).Create(ctx, o, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.dynamic.Resource(certificateGVR).Namespace(certManagerClusterResourceNamespace).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": map[string]any{"name": "root-ca"},
		"spec": map[string]any{
			"isCA": true, "commonName": certs.DefaultTrustAnchorCommonName, "secretName": "root-secret",
			"privateKey": map[string]any{"algorithm": "ECDSA"}, "usages": []any{"cert sign", "crl sign"},
			"issuerRef": map[string]any{"name": "selfsigned", "kind": "ClusterIssuer", "group": "cert-manager.io"},
		},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r1 := waitForSecretCert(t, cl, certManagerClusterResourceNamespace, "root-secret", corev1.TLSCertKey, nil)

	opts := func(mod func(*Options)) Options {
		o := Options{RESTConfig: c.RESTConfig, Identity: IdentityCertManager, ChartDir: testChartDir, WebhookChart: webhookChartDir(t), Timeout: time.Minute}
		if mod != nil {
			mod(&o)
		}
		return o
	}
	mustRun := func(t *testing.T, o Options) string {
		t.Helper()
		out, err := runBootstrap(ctx, t, o)
		if err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	wantInOrder := func(t *testing.T, out string, want ...string) {
		t.Helper()
		at := 0
		for _, w := range want {
			i := strings.Index(out[at:], w)
			if i < 0 {
				t.Fatalf("output lacks %q (in this order)", w)
			}
			at += i
		}
	}

	t.Run("the first run trusts the root and warns that it renews with a new key before the anchor expires", func(t *testing.T) {
		out := mustRun(t, opts(nil))
		renewal := r1.NotAfter.Add(-r1.NotAfter.Sub(r1.NotBefore) / 3).UTC().Format(time.RFC3339)
		wantInOrder(t, out, "[1/7] preflight: ", ", 1 warning (below)",
			"warning: the root of ClusterIssuer/ca-issuer (Certificate cert-manager/root-ca, 90d valid, renewed 30d before it expires) renews with a new private key around "+renewal,
			"privateKey.rotationPolicy Always", "Fix: set spec.privateKey.rotationPolicy: Never on Certificate cert-manager/root-ca")
		assertBundle(t, cl, r1)
		requireIssuerVerifies(t, cl)
		_, bundle := trustBundle(t, cl)
		if v, _ := releaseValues(t, cl.config, ControlPlaneRelease, ControlPlaneNamespace)["identityTrustAnchorsPEM"].(string); certs.TrustRootSHA256([]byte(v)) != certs.TrustRootSHA256([]byte(bundle)) {
			t.Error("the value and the rendered ConfigMap hash differently: control-plane pods and workloads would carry different trust-root-sha256")
		}
		meshedPod(t, cl, "web-1", bundle)
	})

	var r2 *x509.Certificate
	t.Run("the root renews with a new key and the issuer still verifies against the bundle", func(t *testing.T) {
		renewCertificate(t, cl, certManagerClusterResourceNamespace, "root-ca")
		r2 = waitForSecretCert(t, cl, certManagerClusterResourceNamespace, "root-secret", corev1.TLSCertKey, r1)
		if string(r2.RawSubjectPublicKeyInfo) == string(r1.RawSubjectPublicKeyInfo) {
			t.Fatal("the renewed root kept its key; this test needs a new one")
		}
		requireIssuerVerifies(t, cl)
	})
	if r2 == nil {
		t.FailNow()
	}

	t.Run("a re-run adds the new root beside the old one and says what to restart, in order", func(t *testing.T) {
		out := mustRun(t, opts(nil))
		wantInOrder(t, out,
			"[3/7] identity issuer: Certificate linkerd/linkerd-identity-issuer ", "signed by ClusterIssuer/ca-issuer", ", trust bundle 2 roots (1 added; see below)",
			"linkerd-control-plane 2026.11.1 upgraded",
			"trust-anchor rotation: the CA behind ClusterIssuer/ca-issuer has a new root", "with a new key",
			"1. the control plane trusts the new bundle", "2. restart every meshed workload before cert-manager renews the identity issuer from the new root (Certificate linkerd/linkerd-identity-issuer renews at 20",
			"stale_trust_root", "1 pod holds another bundle now: shop/web-1", "3. when doctor lists no stale_trust_root", "--drop-old-trust-roots")
		assertBundle(t, cl, r1, r2)
		requireIssuerVerifies(t, cl)
	})

	t.Run("the issuer renews from the new root and verifies against the bundle", func(t *testing.T) {
		s, err := cl.kube.CoreV1().Secrets(ControlPlaneNamespace).Get(ctx, IssuerSecret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		before, _ := certs.ParseCertificates(s.Data[corev1.TLSCertKey])
		renewCertificate(t, cl, ControlPlaneNamespace, IssuerCertificate)
		waitForSecretCert(t, cl, ControlPlaneNamespace, IssuerSecret, corev1.TLSCertKey, before[0])
		if ca := waitForSecretCert(t, cl, ControlPlaneNamespace, IssuerSecret, "ca.crt", nil); !ca.Equal(r2) {
			t.Fatalf("the renewed issuer's ca.crt is %s, want the new root", describeRoot(ca))
		}
		requireIssuerVerifies(t, cl)
	})

	t.Run("a re-run keeps the old root and changes nothing else", func(t *testing.T) {
		out := mustRun(t, opts(nil))
		wantInOrder(t, out, "trust bundle 2 roots (1 old kept; see below)", "linkerd-control-plane 2026.11.1 unchanged",
			"trust-anchor rotation in progress: the trust bundle keeps the old root", "1 pod holds another bundle now: shop/web-1", "--drop-old-trust-roots")
		assertBundle(t, cl, r1, r2)
		requireIssuerVerifies(t, cl)
	})

	t.Run("--drop-old-trust-roots is refused while a pod holds another bundle", func(t *testing.T) {
		_, err := runBootstrap(ctx, t, opts(func(o *Options) { o.DropOldTrustRoots = true }))
		assertOneLineError(t, err, "--drop-old-trust-roots: meshed pods were injected with another trust bundle than the cluster's: 1 (shop/web-1)", "kubectl rollout restart")
		assertBundle(t, cl, r1, r2)
	})

	t.Run("--drop-old-trust-roots waits until the proxy certificates from the old root's issuer expired", func(t *testing.T) {
		_, bundle := trustBundle(t, cl)
		meshedPod(t, cl, "web-1", bundle) // restarted: injected with the current bundle
		_, err := runBootstrap(ctx, t, opts(func(o *Options) { o.DropOldTrustRoots = true }))
		assertOneLineError(t, err, "--drop-old-trust-roots: the identity issuer is signed by root", "run again after that time")
		assertBundle(t, cl, r1, r2)
	})

	t.Run("--drop-old-trust-roots a day later removes the old root and says so", func(t *testing.T) {
		out := mustRun(t, opts(func(o *Options) {
			o.DropOldTrustRoots = true
			o.Now = func() time.Time { return time.Now().Add(25 * time.Hour) }
		}))
		wantInOrder(t, out, "trust bundle 1 root (1 dropped; see below)", "linkerd-control-plane 2026.11.1 upgraded",
			"trust-anchor rotation: dropped the old root", "1. the control plane restarts", "2. workloads injected before keep trusting the dropped root")
		assertBundle(t, cl, r2)
		requireIssuerVerifies(t, cl)
	})

	t.Run("a run after the rotation changes nothing and says nothing about it", func(t *testing.T) {
		out := mustRun(t, opts(nil))
		if !strings.Contains(out, "linkerd-control-plane 2026.11.1 unchanged") || strings.Contains(out, "trust-anchor rotation") {
			t.Error("a run after the rotation changed the control plane or talks about a rotation")
		}
		assertBundle(t, cl, r2)
		requireIssuerVerifies(t, cl)
	})
}
