package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // RFC 5280 §4.2.1.2 method 1: SHA-1 of the public key for the key identifier.
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// KeyPair is a certificate with its private key, parsed and PEM-encoded.
type KeyPair struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
	KeyPEM  []byte
}

// maxBackdate bounds how far NotBefore is set before the issue time, so a
// certificate is already valid on nodes whose clocks run a little behind.
const maxBackdate = 5 * time.Minute

// backdate is a tenth of the validity, at most maxBackdate: short-lived
// certificates (tests) keep most of their life after the issue time, which
// keeps RenewBefore (a third of the life) meaningful.
func backdate(validity time.Duration) time.Duration {
	return min(maxBackdate, validity/10)
}

// template holds what differs between the certificates this package makes.
type template struct {
	commonName  string
	dnsNames    []string
	ipAddresses []net.IP
	isCA        bool
	maxPathLen  int // only for CAs; -1 means unlimited
	keyUsage    x509.KeyUsage
	extKeyUsage []x509.ExtKeyUsage
	notBefore   time.Time
	notAfter    time.Time
}

// issue creates a fresh ECDSA P-256 key and a certificate for it, signed by
// parent (self-signed when parent is nil).
func issue(t template, parent *KeyPair) (*KeyPair, error) {
	if !t.notAfter.After(t.notBefore) {
		return nil, fmt.Errorf("certificate %q: validity must be positive", t.commonName)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ECDSA P-256 key for %q: %w", t.commonName, err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generate serial number for %q: %w", t.commonName, err)
	}
	skid, err := subjectKeyID(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("subject key id for %q: %w", t.commonName, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: t.commonName},
		DNSNames:              t.dnsNames,
		IPAddresses:           t.ipAddresses,
		NotBefore:             t.notBefore,
		NotAfter:              t.notAfter,
		KeyUsage:              t.keyUsage,
		ExtKeyUsage:           t.extKeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  t.isCA,
		SubjectKeyId:          skid,
	}
	if t.isCA {
		if t.maxPathLen < 0 {
			tmpl.MaxPathLen = -1
		} else {
			tmpl.MaxPathLen = t.maxPathLen
			tmpl.MaxPathLenZero = t.maxPathLen == 0
		}
	}
	signerCert, signerKey := tmpl, key
	if parent != nil {
		if parent.Cert == nil || parent.Key == nil {
			return nil, fmt.Errorf("certificate %q: signing key pair is incomplete", t.commonName)
		}
		signerCert, signerKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signerKey)
	if err != nil {
		return nil, fmt.Errorf("sign certificate %q: %w", t.commonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse new certificate %q: %w", t.commonName, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key of %q: %w", t.commonName, err)
	}
	return &KeyPair{
		Cert:    cert,
		Key:     key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func subjectKeyID(pub *ecdsa.PublicKey) ([]byte, error) {
	raw, err := pub.Bytes()
	if err != nil {
		return nil, err
	}
	sum := sha1.Sum(raw) //nolint:gosec // identifier, not a security boundary
	return sum[:], nil
}

// ParseKeyPair parses a PEM certificate (the first CERTIFICATE block) and
// its PEM ECDSA private key (SEC 1 or PKCS #8), and checks they belong together.
func ParseKeyPair(certPEM, keyPEM []byte) (*KeyPair, error) {
	certs, err := ParseCertificates(certPEM)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("private key: no PEM block found")
	}
	var key *ecdsa.PrivateKey
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("private key: %w", err)
		}
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("private key: %w", err)
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("private key: %T, want ECDSA", k)
		}
		key = ek
	default:
		return nil, fmt.Errorf("private key: PEM block %q, want EC PRIVATE KEY or PRIVATE KEY", block.Type)
	}
	pub, ok := certs[0].PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("certificate %q does not match its private key", certs[0].Subject.CommonName)
	}
	return &KeyPair{Cert: certs[0], Key: key, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// ParseCertificates parses every CERTIFICATE block of a PEM bundle; it fails
// when there is none or one is malformed.
func ParseCertificates(bundle []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := bundle
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	return out, nil
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
