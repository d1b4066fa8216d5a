package certs

// TODO(skeleton): this file is replaced by the real implementation; it fixes
// the API other packages (serve, bootstrap) are written against.

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"
)

// KeyPair is a certificate with its private key, parsed and PEM-encoded.
type KeyPair struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
	KeyPEM  []byte
}

// GenerateTrustAnchor makes a self-signed root CA (ECDSA P-256) valid from now.
func GenerateTrustAnchor(commonName string, now time.Time, validity time.Duration) (*KeyPair, error) {
	return nil, errors.New("not implemented")
}

// GenerateIssuer makes Linkerd's identity issuer (intermediate CA,
// identity.linkerd.cluster.local) signed by anchor.
func GenerateIssuer(anchor *KeyPair, now time.Time, validity time.Duration) (*KeyPair, error) {
	return nil, errors.New("not implemented")
}

// VerifyIssuer checks that issuerPEM chains to anchorPEM at now and returns how long it has left.
func VerifyIssuer(issuerPEM, anchorPEM []byte, now time.Time) (time.Duration, error) {
	return 0, errors.New("not implemented")
}

// SelfManagedOptions configure the self-managed serving-certificate mode.
type SelfManagedOptions struct {
	Client            kubernetes.Interface
	Namespace         string // the webhook's own namespace
	SecretName        string // Secret holding ca.crt, tls.crt, tls.key
	ServiceName       string // the webhook Service: DNS names of the serving cert
	WebhookConfigName string // MutatingWebhookConfiguration whose caBundle we own
	CertDir           string // where tls.crt/tls.key are written for the server
	CAValidity        time.Duration
	CertValidity      time.Duration
	CheckInterval     time.Duration
	Now               func() time.Time
	Log               logr.Logger
}

// RunSelfManaged ensures the Secret, files and caBundle once (returning an
// error if that fails), then keeps rotating in the background until ctx ends.
func RunSelfManaged(ctx context.Context, o SelfManagedOptions) error {
	return errors.New("self-managed certificates: not implemented")
}
