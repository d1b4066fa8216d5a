package bootstrap

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/certs"
)

// clusterResourceNamespace is where cert-manager looks for the Secrets of
// ClusterIssuers (its --cluster-resource-namespace default).
const clusterResourceNamespace = "cert-manager"

// fakeCertManagerIssuer plays cert-manager's controller, which cannot run
// here (its controller module is not served): for every Certificate whose
// issuer exists it makes a key and a CSR, signs the CSR with the issuer's
// CA (or self-signs for a selfSigned Issuer), writes the kubernetes.io/tls
// Secret with ca.crt and the cert-manager annotations, and sets the Ready
// condition for the Certificate's generation. It re-issues when the
// Certificate's generation moves. It stops when the test ends; problems are
// reported through t.Errorf.
func fakeCertManagerIssuer(t *testing.T, cfg *rest.Config) {
	t.Helper()
	kc := kubernetes.NewForConfigOrDie(cfg)
	dc := dynamic.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	t.Cleanup(func() { cancel(); wg.Wait() })
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			list, err := dc.Resource(certificateGVR).Namespace(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
			if err != nil {
				continue // the CRDs may not be there yet, or the test is ending
			}
			for i := range list.Items {
				if err := issueCertificate(ctx, kc, dc, &list.Items[i]); err != nil && ctx.Err() == nil {
					t.Errorf("fake cert-manager: %v", err)
				}
			}
		}
	}()
}

func issueCertificate(ctx context.Context, kc kubernetes.Interface, dc dynamic.Interface, cert *unstructured.Unstructured) error {
	if certificateIssued(cert) {
		return nil
	}
	ns := cert.GetNamespace()
	spec, _, _ := unstructured.NestedMap(cert.Object, "spec")
	kind, _, _ := unstructured.NestedString(spec, "issuerRef", "kind")
	name, _, _ := unstructured.NestedString(spec, "issuerRef", "name")
	var issuer *unstructured.Unstructured
	var err error
	secretNS := ns
	if kind == "ClusterIssuer" {
		issuer, err = dc.Resource(clusterIssuerGVR).Get(ctx, name, metav1.GetOptions{})
		secretNS = clusterResourceNamespace
	} else {
		issuer, err = dc.Resource(issuerGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	}
	if apierrors.IsNotFound(err) {
		return nil // cert-manager leaves it pending too
	}
	if err != nil {
		return err
	}

	// The requester's side: a fresh key and a CSR from the Certificate's spec.
	if alg, _, _ := unstructured.NestedString(spec, "privateKey", "algorithm"); alg != "ECDSA" {
		return fmt.Errorf("Certificate %s/%s asks for a %q key; this fake only does ECDSA", ns, cert.GetName(), alg)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	cn, _, _ := unstructured.NestedString(spec, "commonName")
	dns, _, _ := unstructured.NestedStringSlice(spec, "dnsNames")
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}, DNSNames: dns}, key)
	if err != nil {
		return err
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return err
	}

	// The issuer's side: sign the CSR.
	isCA, _, _ := unstructured.NestedBool(spec, "isCA")
	duration := 90 * 24 * time.Hour
	if d, ok, _ := unstructured.NestedString(spec, "duration"); ok {
		if duration, err = time.ParseDuration(d); err != nil {
			return fmt.Errorf("Certificate %s/%s: duration: %w", ns, cert.GetName(), err)
		}
	}
	usages, _, _ := unstructured.NestedStringSlice(spec, "usages")
	ku, eku := x509.KeyUsageDigitalSignature, []x509.ExtKeyUsage(nil)
	for _, u := range usages {
		switch u {
		case "cert sign":
			ku |= x509.KeyUsageCertSign
		case "crl sign":
			ku |= x509.KeyUsageCRLSign
		case "server auth":
			eku = append(eku, x509.ExtKeyUsageServerAuth)
		case "client auth":
			eku = append(eku, x509.ExtKeyUsageClientAuth)
		}
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: csr.Subject, DNSNames: csr.DNSNames,
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(duration),
		KeyUsage: ku, ExtKeyUsage: eku, IsCA: isCA, BasicConstraintsValid: true,
	}
	var caPEM, certDER []byte
	if _, selfSigned, _ := unstructured.NestedMap(issuer.Object, "spec", "selfSigned"); selfSigned {
		if certDER, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, csr.PublicKey, key); err != nil {
			return err
		}
		caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})
	} else {
		caSecretName, _, _ := unstructured.NestedString(issuer.Object, "spec", "ca", "secretName")
		caSecret, err := kc.CoreV1().Secrets(secretNS).Get(ctx, caSecretName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil // the CA's Secret is not there yet (a chain being built)
		}
		if err != nil {
			return err
		}
		ca, err := certs.ParseKeyPair(caSecret.Data["tls.crt"], caSecret.Data["tls.key"])
		if err != nil {
			return fmt.Errorf("CA Secret %s/%s: %w", secretNS, caSecretName, err)
		}
		if certDER, err = x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.Key); err != nil {
			return err
		}
		caPEM = ca.CertPEM
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}

	secretName, _, _ := unstructured.NestedString(spec, "secretName")
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: secretName, Namespace: ns,
			Annotations: map[string]string{
				"cert-manager.io/certificate-name": cert.GetName(),
				"cert-manager.io/issuer-name":      name,
				"cert-manager.io/issuer-kind":      kind,
				"cert-manager.io/issuer-group":     "cert-manager.io",
			},
		},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{
			"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}),
			"tls.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
			"ca.crt":  caPEM,
		},
	}
	if _, err := kc.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		existing, err := kc.CoreV1().Secrets(ns).Get(ctx, secretName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		existing.Annotations, existing.Data, existing.Type = secret.Annotations, secret.Data, secret.Type
		if _, err := kc.CoreV1().Secrets(ns).Update(ctx, existing, metav1.UpdateOptions{}); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}

	_ = unstructured.SetNestedSlice(cert.Object, []any{map[string]any{
		"type": "Ready", "status": "True", "reason": "Ready", "message": "Certificate is up to date and has not expired",
		"observedGeneration": cert.GetGeneration(), "lastTransitionTime": now.UTC().Format(time.RFC3339),
	}}, "status", "conditions")
	_ = unstructured.SetNestedField(cert.Object, tmpl.NotAfter.UTC().Format(time.RFC3339), "status", "notAfter")
	if _, err := dc.Resource(certificateGVR).Namespace(ns).UpdateStatus(ctx, cert, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("update status of Certificate %s/%s: %w", ns, cert.GetName(), err)
	}
	return nil
}

func certificateIssued(cert *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(cert.Object, "status", "conditions")
	for _, raw := range conds {
		c, _ := raw.(map[string]any)
		gen, _, _ := unstructured.NestedInt64(c, "observedGeneration")
		if c["type"] == "Ready" && c["status"] == "True" && gen == cert.GetGeneration() {
			return true
		}
	}
	return false
}
