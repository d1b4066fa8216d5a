package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustAnchor(t *testing.T, now time.Time, validity time.Duration) *KeyPair {
	t.Helper()
	a, err := GenerateTrustAnchor("", now, validity)
	if err != nil {
		t.Fatalf("GenerateTrustAnchor: %v", err)
	}
	return a
}

func TestGenerateTrustAnchorIsAOneYearP256RootCA(t *testing.T) {
	a := mustAnchor(t, t0, 0)
	c := a.Cert
	if !c.IsCA || !c.BasicConstraintsValid {
		t.Errorf("anchor is not a CA: IsCA=%v BasicConstraintsValid=%v", c.IsCA, c.BasicConstraintsValid)
	}
	if c.Subject.CommonName != DefaultTrustAnchorCommonName {
		t.Errorf("common name %q, want %q", c.Subject.CommonName, DefaultTrustAnchorCommonName)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", c.PublicKey)
	}
	if got, want := c.NotAfter, t0.Add(365*24*time.Hour); !got.Equal(want) {
		t.Errorf("NotAfter %s, want %s", got, want)
	}
	if c.NotBefore.After(t0) {
		t.Errorf("NotBefore %s is after issue time %s", c.NotBefore, t0)
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("key usage %v lacks cert sign", c.KeyUsage)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("anchor is not self-signed: %v", err)
	}
	if _, err := ParseKeyPair(a.CertPEM, a.KeyPEM); err != nil {
		t.Errorf("PEM of anchor does not parse back: %v", err)
	}
}

func TestGenerateIssuerMatchesTheCertManagerCertificate(t *testing.T) {
	a := mustAnchor(t, t0, 0)
	is, err := GenerateIssuer(a, t0, 0)
	if err != nil {
		t.Fatalf("GenerateIssuer: %v", err)
	}
	c := is.Cert
	if c.Subject.CommonName != IdentityIssuerName {
		t.Errorf("common name %q, want %q", c.Subject.CommonName, IdentityIssuerName)
	}
	if len(c.DNSNames) != 1 || c.DNSNames[0] != IdentityIssuerName {
		t.Errorf("DNS names %v, want [%s]", c.DNSNames, IdentityIssuerName)
	}
	if !c.IsCA {
		t.Error("issuer is not a CA")
	}
	if got, want := c.NotAfter, t0.Add(48*time.Hour); !got.Equal(want) {
		t.Errorf("NotAfter %s, want %s (48h)", got, want)
	}
	for _, u := range []x509.KeyUsage{x509.KeyUsageCertSign, x509.KeyUsageCRLSign} {
		if c.KeyUsage&u == 0 {
			t.Errorf("key usage %v lacks %v", c.KeyUsage, u)
		}
	}
	has := map[x509.ExtKeyUsage]bool{}
	for _, u := range c.ExtKeyUsage {
		has[u] = true
	}
	if !has[x509.ExtKeyUsageServerAuth] || !has[x509.ExtKeyUsageClientAuth] {
		t.Errorf("ext key usage %v, want server and client auth", c.ExtKeyUsage)
	}
	if err := c.CheckSignatureFrom(a.Cert); err != nil {
		t.Errorf("issuer is not signed by the anchor: %v", err)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", c.PublicKey)
	}
}

func TestGenerateIssuerNeverOutlivesItsAnchor(t *testing.T) {
	a := mustAnchor(t, t0, 24*time.Hour)
	is, err := GenerateIssuer(a, t0, 48*time.Hour)
	if err != nil {
		t.Fatalf("GenerateIssuer: %v", err)
	}
	if !is.Cert.NotAfter.Equal(a.Cert.NotAfter) {
		t.Errorf("issuer NotAfter %s, want the anchor's %s", is.Cert.NotAfter, a.Cert.NotAfter)
	}
}

func TestGenerateRejectsBadInput(t *testing.T) {
	a := mustAnchor(t, t0, time.Hour)
	leaf := &KeyPair{Cert: &x509.Certificate{}, Key: a.Key}
	cases := []struct {
		name string
		run  func() error
		want string
	}{
		{"negative anchor validity is refused", func() error { _, err := GenerateTrustAnchor("x", t0, -time.Hour); return err }, "must not be negative"},
		{"issuer without an anchor is refused", func() error { _, err := GenerateIssuer(nil, t0, 0); return err }, "trust anchor with certificate and key is required"},
		{"issuer signed by a non-CA is refused", func() error { _, err := GenerateIssuer(leaf, t0, 0); return err }, "is not a CA"},
		{"issuer from an expired anchor is refused", func() error { _, err := GenerateIssuer(a, t0.Add(2*time.Hour), 0); return err }, "expired"},
		{"negative issuer validity is refused", func() error { _, err := GenerateIssuer(a, t0, -time.Second); return err }, "must not be negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestVerifyIssuer(t *testing.T) {
	anchor := mustAnchor(t, t0, 0)
	issuer, err := GenerateIssuer(anchor, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	other := mustAnchor(t, t0, 0)
	bundle := append(append([]byte{}, other.CertPEM...), anchor.CertPEM...)
	cases := []struct {
		name      string
		issuer    []byte
		anchor    []byte
		now       time.Time
		wantLeft  time.Duration
		wantError string
	}{
		{"fresh issuer has 48h left", issuer.CertPEM, anchor.CertPEM, t0, 48 * time.Hour, ""},
		{"issuer a day later has 24h left", issuer.CertPEM, anchor.CertPEM, t0.Add(24 * time.Hour), 24 * time.Hour, ""},
		{"anchor bundle with the right root among others verifies", issuer.CertPEM, bundle, t0.Add(time.Hour), 47 * time.Hour, ""},
		{"expired issuer fails", issuer.CertPEM, anchor.CertPEM, t0.Add(49 * time.Hour), 0, "does not chain"},
		{"issuer from another anchor fails", issuer.CertPEM, other.CertPEM, t0, 0, "does not chain"},
		{"a leaf is not an issuer", mustLeaf(t, anchor).CertPEM, anchor.CertPEM, t0, 0, "is not a CA"},
		{"garbage issuer is a clear error", []byte("not pem"), anchor.CertPEM, t0, 0, "identity issuer: no PEM CERTIFICATE block"},
		{"garbage anchor is a clear error", issuer.CertPEM, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), t0, 0, "trust anchor: certificate 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			left, err := VerifyIssuer(tc.issuer, tc.anchor, tc.now)
			if tc.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantError) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantError)
				}
				return
			}
			if err != nil {
				t.Fatalf("VerifyIssuer: %v", err)
			}
			if left != tc.wantLeft {
				t.Errorf("left %s, want %s", left, tc.wantLeft)
			}
		})
	}
}

func mustLeaf(t *testing.T, ca *KeyPair) *KeyPair {
	t.Helper()
	kp, err := issue(template{
		commonName:  "leaf",
		keyUsage:    x509.KeyUsageDigitalSignature,
		extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		notBefore:   t0.Add(-time.Minute),
		notAfter:    t0.Add(time.Hour),
	}, ca)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func TestTrustRootSHA256(t *testing.T) {
	a, b := mustAnchor(t, t0, 0), mustAnchor(t, t0, 0)
	bundle := EncodeTrustBundle([]*x509.Certificate{a.Cert, b.Cert})
	tests := []struct {
		name   string
		bundle []byte
		want   string
	}{
		// sha256 of no bytes, the published test vector.
		{"an empty bundle hashes as zero bytes", nil, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"the hash is lowercase hex of the bundle's bytes", []byte("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TrustRootSHA256(tt.bundle); got != tt.want {
				t.Errorf("TrustRootSHA256 = %s, want %s", got, tt.want)
			}
		})
	}
	t.Run("a trailing newline is a different bundle, as for Linkerd's injector", func(t *testing.T) {
		if TrustRootSHA256(bundle) == TrustRootSHA256(append(append([]byte{}, bundle...), '\n')) {
			t.Error("TrustRootSHA256 ignores a trailing newline; Linkerd hashes the file's exact bytes")
		}
	})
	t.Run("the order of the roots changes the hash", func(t *testing.T) {
		if TrustRootSHA256(bundle) == TrustRootSHA256(EncodeTrustBundle([]*x509.Certificate{b.Cert, a.Cert})) {
			t.Error("two orders of the same roots hash alike")
		}
	})
}

func TestEncodeTrustBundleIsTheTrimmedFormTheChartRenders(t *testing.T) {
	a, b := mustAnchor(t, t0, 0), mustAnchor(t, t0, 0)
	bundle := EncodeTrustBundle([]*x509.Certificate{a.Cert, b.Cert})
	if strings.TrimSpace(string(bundle)) != string(bundle) {
		t.Errorf("bundle has leading or trailing whitespace: %q", bundle)
	}
	got, err := ParseCertificates(bundle)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].Equal(a.Cert) || !got[1].Equal(b.Cert) {
		t.Errorf("bundle holds %d certificates, want the two roots in order", len(got))
	}
	if string(bundle) != strings.TrimSpace(string(a.CertPEM)+string(b.CertPEM)) {
		t.Error("bundle is not the roots' PEM blocks one after the other")
	}
}
