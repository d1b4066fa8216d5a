package certs

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Linkerd identity defaults, as in the usual cert-manager setup of Linkerd's docs.
const (
	// IdentityIssuerName is the common name (and DNS name) Linkerd's identity
	// controller expects of its issuer certificate.
	IdentityIssuerName = "identity.linkerd.cluster.local"
	// DefaultTrustAnchorCommonName is the usual name of Linkerd's root.
	DefaultTrustAnchorCommonName = "root.linkerd.cluster.local"
	// DefaultTrustAnchorValidity is used when GenerateTrustAnchor gets 0.
	DefaultTrustAnchorValidity = 365 * 24 * time.Hour
	// DefaultIssuerValidity is used when GenerateIssuer gets 0 (48h, as Linkerd's cert-manager docs use).
	DefaultIssuerValidity = 48 * time.Hour
)

// GenerateTrustAnchor makes a self-signed root CA (ECDSA P-256) valid from
// now (backdated by a few minutes for clock skew) for validity, or
// DefaultTrustAnchorValidity when validity is 0. An empty commonName means
// DefaultTrustAnchorCommonName.
func GenerateTrustAnchor(commonName string, now time.Time, validity time.Duration) (*KeyPair, error) {
	if validity < 0 {
		return nil, fmt.Errorf("trust anchor validity %s: must not be negative", validity)
	}
	if validity == 0 {
		validity = DefaultTrustAnchorValidity
	}
	if commonName == "" {
		commonName = DefaultTrustAnchorCommonName
	}
	kp, err := issue(template{
		commonName: commonName,
		isCA:       true,
		maxPathLen: -1,
		keyUsage:   x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		notBefore:  now.Add(-backdate(validity)),
		notAfter:   now.Add(validity),
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("trust anchor: %w", err)
	}
	return kp, nil
}

// GenerateIssuer makes Linkerd's identity issuer (intermediate CA,
// identity.linkerd.cluster.local) signed by anchor, valid for validity or
// DefaultIssuerValidity when 0. Its usages match Linkerd's cert-manager
// Certificate: cert sign, CRL sign, server auth, client auth. The issuer
// never outlives its anchor.
func GenerateIssuer(anchor *KeyPair, now time.Time, validity time.Duration) (*KeyPair, error) {
	if anchor == nil || anchor.Cert == nil || anchor.Key == nil {
		return nil, errors.New("identity issuer: trust anchor with certificate and key is required")
	}
	if !anchor.Cert.IsCA {
		return nil, fmt.Errorf("identity issuer: anchor %q is not a CA", anchor.Cert.Subject.CommonName)
	}
	if validity < 0 {
		return nil, fmt.Errorf("identity issuer validity %s: must not be negative", validity)
	}
	if validity == 0 {
		validity = DefaultIssuerValidity
	}
	notAfter := now.Add(validity)
	if notAfter.After(anchor.Cert.NotAfter) {
		notAfter = anchor.Cert.NotAfter
	}
	if !now.Before(notAfter) {
		return nil, fmt.Errorf("identity issuer: trust anchor %q expired at %s", anchor.Cert.Subject.CommonName, anchor.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	kp, err := issue(template{
		commonName:  IdentityIssuerName,
		dnsNames:    []string{IdentityIssuerName},
		isCA:        true,
		maxPathLen:  0, // it signs proxy leaf certificates only
		keyUsage:    x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		notBefore:   now.Add(-backdate(validity)),
		notAfter:    notAfter,
	}, anchor)
	if err != nil {
		return nil, fmt.Errorf("identity issuer: %w", err)
	}
	return kp, nil
}

// VerifyIssuer checks that issuerPEM (its first certificate) is a CA that
// chains to one of the certificates in anchorPEM at now, and returns how long
// it has left. It fails for an expired or not-yet-valid issuer or anchor.
func VerifyIssuer(issuerPEM, anchorPEM []byte, now time.Time) (time.Duration, error) {
	issuers, err := ParseCertificates(issuerPEM)
	if err != nil {
		return 0, fmt.Errorf("identity issuer: %w", err)
	}
	anchors, err := ParseCertificates(anchorPEM)
	if err != nil {
		return 0, fmt.Errorf("trust anchor: %w", err)
	}
	issuer := issuers[0]
	if !issuer.IsCA {
		return 0, fmt.Errorf("identity issuer %q is not a CA", issuer.Subject.CommonName)
	}
	roots := x509.NewCertPool()
	for _, a := range anchors {
		roots.AddCert(a)
	}
	// Intermediates between issuer and anchor may follow the issuer in its bundle.
	inter := x509.NewCertPool()
	for _, c := range issuers[1:] {
		inter.AddCert(c)
	}
	if _, err := issuer.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return 0, fmt.Errorf("identity issuer %q does not chain to the trust anchor at %s: %w", issuer.Subject.CommonName, now.UTC().Format(time.RFC3339), err)
	}
	return issuer.NotAfter.Sub(now), nil
}

// TrustRootSHA256 is the value Linkerd writes to a pod's
// linkerd.io/trust-root-sha256 annotation for a trust bundle: the lowercase
// hex SHA-256 of the bundle's bytes exactly as given, nothing trimmed or
// re-encoded. Linkerd's proxy injector hashes the ca-bundle.crt file it
// mounts from ConfigMap linkerd-identity-trust-roots, and its chart
// annotates the control plane's own pods with the sha256sum of the
// identityTrustAnchorsPEM value; pass the ConfigMap's ca-bundle.crt as it is
// to compare with injected workloads. The two agree when the value has no
// leading or trailing whitespace (the chart trims it into the ConfigMap),
// which EncodeTrustBundle guarantees.
func TrustRootSHA256(bundlePEM []byte) string {
	sum := sha256.Sum256(bundlePEM)
	return hex.EncodeToString(sum[:])
}

// EncodeTrustBundle writes roots as one PEM bundle in the given order, without
// the final newline: the form Linkerd's control-plane chart renders into
// ConfigMap linkerd-identity-trust-roots (it trims identityTrustAnchorsPEM),
// so a bundle passed as that value hashes (TrustRootSHA256) the same in the
// control plane's pods and in the workloads injected from the ConfigMap.
func EncodeTrustBundle(roots []*x509.Certificate) []byte {
	return bytes.TrimRight(encodeCerts(roots), "\n")
}
