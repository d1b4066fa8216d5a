package certs

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"
)

// Self-managed serving-certificate defaults.
const (
	// DefaultServingCAValidity is the life of the self-managed CA.
	DefaultServingCAValidity = 365 * 24 * time.Hour
	// DefaultServingCertValidity is the life of the serving certificate.
	DefaultServingCertValidity = 90 * 24 * time.Hour
	// ServingCACommonName names the self-managed CA.
	ServingCACommonName = "linkerd-inject-policy-ca"
)

// Keys of the Secret holding the self-managed certificates. tls.crt and
// tls.key make it a valid kubernetes.io/tls Secret.
const (
	SecretKeyCACert     = "ca.crt"
	SecretKeyCAKey      = "ca.key"
	SecretKeyTLSCert    = "tls.crt"
	SecretKeyTLSKey     = "tls.key"
	SecretKeyPreviousCA = "ca-previous.crt"
)

// ServiceDNSNames are the names the apiserver may use to reach a Service:
// it dials <svc>.<ns>.svc, and in-cluster clients use the longer forms.
func ServiceDNSNames(service, namespace string) []string {
	return []string{
		service,
		service + "." + namespace,
		service + "." + namespace + ".svc",
		service + "." + namespace + ".svc.cluster.local",
	}
}

// GenerateServingCA makes the self-signed CA of the self-managed mode.
func GenerateServingCA(now time.Time, validity time.Duration) (*KeyPair, error) {
	if validity <= 0 {
		return nil, fmt.Errorf("serving CA validity %s: must be positive", validity)
	}
	kp, err := issue(template{
		commonName: ServingCACommonName,
		isCA:       true,
		maxPathLen: 0,
		keyUsage:   x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		notBefore:  now.Add(-backdate(validity)),
		notAfter:   now.Add(validity),
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("serving CA: %w", err)
	}
	return kp, nil
}

// GenerateServingCert makes a server certificate for names signed by ca; a
// name that parses as an IP address goes into the IP SANs (TLS clients check
// an address only against those), any other into the DNS SANs. It never
// outlives the CA.
func GenerateServingCert(ca *KeyPair, names []string, now time.Time, validity time.Duration) (*KeyPair, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, errors.New("serving certificate: CA with certificate and key is required")
	}
	if len(names) == 0 {
		return nil, errors.New("serving certificate: at least one name is required")
	}
	if validity <= 0 {
		return nil, fmt.Errorf("serving certificate validity %s: must be positive", validity)
	}
	var dnsNames []string
	var ips []net.IP
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else {
			dnsNames = append(dnsNames, n)
		}
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	kp, err := issue(template{
		commonName:  names[0],
		dnsNames:    dnsNames,
		ipAddresses: ips,
		keyUsage:    x509.KeyUsageDigitalSignature,
		extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		notBefore:   now.Add(-backdate(validity)),
		notAfter:    notAfter,
	}, ca)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	return kp, nil
}

// RenewBefore is how long before expiry cert should be replaced: the last
// third of its life, so there is plenty of time for every replica to pick up
// the new one and for a failed rotation to be retried.
func RenewBefore(cert *x509.Certificate) time.Duration {
	return cert.NotAfter.Sub(cert.NotBefore) / 3
}

// NeedsRotation reports whether cert is not valid at now, or will expire
// within renewBefore of now.
func NeedsRotation(cert *x509.Certificate, now time.Time, renewBefore time.Duration) bool {
	if cert == nil {
		return true
	}
	return now.Before(cert.NotBefore) || !now.Before(cert.NotAfter.Add(-renewBefore))
}

// Bundle is the content of the self-managed Secret.
type Bundle struct {
	CA      *KeyPair
	Serving *KeyPair
	// PreviousCAs are CAs replaced by a rotation; they stay in the caBundle
	// until they expire so replicas still serving a certificate they signed
	// are trusted while they pick up the new one.
	PreviousCAs []*x509.Certificate
}

// ParseBundle reads a Bundle from Secret data; a missing or broken key is an
// error naming that key.
func ParseBundle(data map[string][]byte) (*Bundle, error) {
	for _, k := range []string{SecretKeyCACert, SecretKeyCAKey, SecretKeyTLSCert, SecretKeyTLSKey} {
		if len(data[k]) == 0 {
			return nil, fmt.Errorf("key %s is missing", k)
		}
	}
	ca, err := ParseKeyPair(data[SecretKeyCACert], data[SecretKeyCAKey])
	if err != nil {
		return nil, fmt.Errorf("CA (%s, %s): %w", SecretKeyCACert, SecretKeyCAKey, err)
	}
	serving, err := ParseKeyPair(data[SecretKeyTLSCert], data[SecretKeyTLSKey])
	if err != nil {
		return nil, fmt.Errorf("serving certificate (%s, %s): %w", SecretKeyTLSCert, SecretKeyTLSKey, err)
	}
	b := &Bundle{CA: ca, Serving: serving}
	if prev := data[SecretKeyPreviousCA]; len(prev) > 0 {
		b.PreviousCAs, err = ParseCertificates(prev)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", SecretKeyPreviousCA, err)
		}
	}
	return b, nil
}

// SecretData is the Secret content of b.
func (b *Bundle) SecretData() map[string][]byte {
	data := map[string][]byte{
		SecretKeyCACert:  b.CA.CertPEM,
		SecretKeyCAKey:   b.CA.KeyPEM,
		SecretKeyTLSCert: b.Serving.CertPEM,
		SecretKeyTLSKey:  b.Serving.KeyPEM,
	}
	if len(b.PreviousCAs) > 0 {
		data[SecretKeyPreviousCA] = encodeCerts(b.PreviousCAs)
	}
	return data
}

// CABundle is what the webhook configuration must trust at now: the current
// CA followed by previous CAs that have not expired yet.
func (b *Bundle) CABundle(now time.Time) []byte {
	var buf bytes.Buffer
	buf.Write(b.CA.CertPEM)
	for _, c := range b.PreviousCAs {
		if now.Before(c.NotAfter) {
			buf.Write(encodeCerts([]*x509.Certificate{c}))
		}
	}
	return buf.Bytes()
}

// MergeCABundle returns desired plus every certificate of current that is a
// CA, still valid at now, and newer than the first CA of desired. A replica
// that read the Secret just before another replica rotated the CA would
// otherwise write back a caBundle without the new CA, and the apiserver would
// reject the other replica's new certificate until the next check. Older CAs
// are not kept: the replica with the newest Secret converges the caBundle to
// exactly its own. A current value that does not parse is replaced.
func MergeCABundle(current, desired []byte, now time.Time) []byte {
	want, err := ParseCertificates(desired)
	if err != nil {
		return desired
	}
	have, err := ParseCertificates(current)
	if err != nil {
		return desired
	}
	out := bytes.Clone(desired)
	for _, c := range have {
		if !c.IsCA || !now.Before(c.NotAfter) || !c.NotBefore.After(want[0].NotBefore) {
			continue
		}
		if slices.ContainsFunc(want, c.Equal) {
			continue
		}
		out = append(out, pemCert(c.Raw)...)
	}
	return out
}

// Plan is what a Bundle needs at a given time.
type Plan struct {
	RotateCA      bool
	RotateServing bool
	// Reason says why, in a few words, for the log; empty when nothing is due.
	Reason string
}

// Due reports whether anything must be regenerated.
func (p Plan) Due() bool { return p.RotateCA || p.RotateServing }

// PlanRotation decides what b needs at now to serve dnsNames. A nil bundle
// (no Secret yet, or one that does not parse) needs everything.
func PlanRotation(b *Bundle, dnsNames []string, now time.Time) Plan {
	switch {
	case b == nil:
		return Plan{RotateCA: true, RotateServing: true, Reason: "no usable certificates"}
	case !b.CA.Cert.IsCA:
		return Plan{RotateCA: true, RotateServing: true, Reason: "CA certificate is not a CA"}
	case NeedsRotation(b.CA.Cert, now, RenewBefore(b.CA.Cert)):
		return Plan{RotateCA: true, RotateServing: true, Reason: "CA expires soon"}
	}
	if err := b.Serving.Cert.CheckSignatureFrom(b.CA.Cert); err != nil {
		return Plan{RotateServing: true, Reason: "serving certificate is not signed by the CA"}
	}
	if NeedsRotation(b.Serving.Cert, now, RenewBefore(b.Serving.Cert)) {
		return Plan{RotateServing: true, Reason: "serving certificate expires soon"}
	}
	for _, name := range dnsNames {
		if b.Serving.Cert.VerifyHostname(name) != nil {
			return Plan{RotateServing: true, Reason: "serving certificate does not cover " + name}
		}
	}
	return Plan{}
}

// Rotate applies p to b (nil: start from nothing) and returns the new Bundle;
// b itself is not changed. A replaced CA moves to PreviousCAs while it is
// still valid.
func Rotate(b *Bundle, p Plan, dnsNames []string, now time.Time, caValidity, certValidity time.Duration) (*Bundle, error) {
	next := &Bundle{}
	if b != nil {
		next.CA = b.CA
		next.Serving = b.Serving
		for _, c := range b.PreviousCAs {
			if now.Before(c.NotAfter) {
				next.PreviousCAs = append(next.PreviousCAs, c)
			}
		}
	}
	if p.RotateCA || next.CA == nil {
		ca, err := GenerateServingCA(now, caValidity)
		if err != nil {
			return nil, err
		}
		if next.CA != nil && now.Before(next.CA.Cert.NotAfter) {
			next.PreviousCAs = append([]*x509.Certificate{next.CA.Cert}, next.PreviousCAs...)
		}
		next.CA = ca
	}
	if p.RotateServing || p.RotateCA || next.Serving == nil {
		s, err := GenerateServingCert(next.CA, dnsNames, now, certValidity)
		if err != nil {
			return nil, err
		}
		next.Serving = s
	}
	return next, nil
}

func encodeCerts(certs []*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range certs {
		buf.Write(pemCert(c.Raw))
	}
	return buf.Bytes()
}
