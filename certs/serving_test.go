package certs

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

var names = ServiceDNSNames("linkerd-inject-policy", "lip-system")

func mustBundle(t *testing.T, now time.Time, caValidity, certValidity time.Duration) *Bundle {
	t.Helper()
	b, err := Rotate(nil, Plan{RotateCA: true, RotateServing: true}, names, now, caValidity, certValidity)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	return b
}

func TestServiceDNSNamesCoverWhatTheAPIServerDials(t *testing.T) {
	got := strings.Join(ServiceDNSNames("svc", "ns"), ",")
	want := "svc,svc.ns,svc.ns.svc,svc.ns.svc.cluster.local"
	if got != want {
		t.Errorf("names %s, want %s", got, want)
	}
}

func TestServingCertChainsToItsCAForEveryServiceName(t *testing.T) {
	b := mustBundle(t, t0, 365*24*time.Hour, 90*24*time.Hour)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(b.CABundle(t0))
	for _, n := range names {
		if _, err := b.Serving.Cert.Verify(x509.VerifyOptions{DNSName: n, Roots: roots, CurrentTime: t0}); err != nil {
			t.Errorf("serving cert does not verify for %s: %v", n, err)
		}
	}
	if got, want := b.Serving.Cert.NotAfter, t0.Add(90*24*time.Hour); !got.Equal(want) {
		t.Errorf("NotAfter %s, want %s", got, want)
	}
	if b.Serving.Cert.IsCA {
		t.Error("serving certificate must not be a CA")
	}
}

func TestServingCertNeverOutlivesItsCA(t *testing.T) {
	b := mustBundle(t, t0, time.Hour, 24*time.Hour)
	if !b.Serving.Cert.NotAfter.Equal(b.CA.Cert.NotAfter) {
		t.Errorf("serving NotAfter %s, want the CA's %s", b.Serving.Cert.NotAfter, b.CA.Cert.NotAfter)
	}
}

func TestNeedsRotation(t *testing.T) {
	cert := &x509.Certificate{NotBefore: t0, NotAfter: t0.Add(90 * time.Hour)}
	renew := RenewBefore(cert)
	if renew != 30*time.Hour {
		t.Fatalf("RenewBefore %s, want the last third, 30h", renew)
	}
	cases := []struct {
		name string
		now  time.Time
		want bool
	}{
		{"fresh certificate is kept", t0.Add(time.Hour), false},
		{"certificate just before its renewal window is kept", t0.Add(60*time.Hour - time.Second), false},
		{"certificate entering its last third is rotated", t0.Add(60 * time.Hour), true},
		{"expired certificate is rotated", t0.Add(91 * time.Hour), true},
		{"certificate not valid yet is rotated", t0.Add(-time.Hour), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := NeedsRotation(cert, tc.now, renew); got != tc.want {
				t.Errorf("NeedsRotation at %s = %v, want %v", tc.now, got, tc.want)
			}
		})
	}
	if !NeedsRotation(nil, t0, 0) {
		t.Error("a missing certificate must need rotation")
	}
}

func TestPlanRotation(t *testing.T) {
	day := 24 * time.Hour
	b := mustBundle(t, t0, 300*day, 90*day)
	foreign := mustBundle(t, t0, 300*day, 90*day)
	mixed := &Bundle{CA: b.CA, Serving: foreign.Serving}
	cases := []struct {
		name        string
		b           *Bundle
		names       []string
		now         time.Time
		wantCA      bool
		wantServing bool
	}{
		{"missing secret needs everything", nil, names, t0, true, true},
		{"fresh bundle needs nothing", b, names, t0.Add(day), false, false},
		{"serving cert in its last third is renewed with the same CA", b, names, t0.Add(61 * day), false, true},
		{"CA in its last third renews both", b, names, t0.Add(201 * day), true, true},
		{"serving cert signed by another CA is replaced", mixed, names, t0.Add(day), false, true},
		{"renamed service needs a new serving cert", b, ServiceDNSNames("other", "lip-system"), t0.Add(day), false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := PlanRotation(tc.b, tc.names, tc.now)
			if p.RotateCA != tc.wantCA || p.RotateServing != tc.wantServing {
				t.Errorf("plan %+v, want RotateCA=%v RotateServing=%v", p, tc.wantCA, tc.wantServing)
			}
			if p.Due() && p.Reason == "" {
				t.Error("a due plan must say why")
			}
		})
	}
}

func TestRotateKeepsThePreviousCATrustedUntilItExpires(t *testing.T) {
	day := 24 * time.Hour
	old := mustBundle(t, t0, 300*day, 90*day)
	now := t0.Add(201 * day)
	next, err := Rotate(old, PlanRotation(old, names, now), names, now, 300*day, 90*day)
	if err != nil {
		t.Fatal(err)
	}
	if next.CA.Cert.Equal(old.CA.Cert) {
		t.Fatal("CA was not rotated")
	}
	if err := next.Serving.Cert.CheckSignatureFrom(next.CA.Cert); err != nil {
		t.Errorf("new serving cert not signed by new CA: %v", err)
	}
	bundle, err := ParseCertificates(next.CABundle(now))
	if err != nil {
		t.Fatal(err)
	}
	if len(bundle) != 2 || !bundle[0].Equal(next.CA.Cert) || !bundle[1].Equal(old.CA.Cert) {
		t.Errorf("caBundle has %d certificates, want the new CA then the old one", len(bundle))
	}
	after := old.CA.Cert.NotAfter.Add(time.Second)
	if got, _ := ParseCertificates(next.CABundle(after)); len(got) != 1 {
		t.Errorf("caBundle after the old CA expired has %d certificates, want 1", len(got))
	}
	// The previous CA survives a round trip through the Secret.
	parsed, err := ParseBundle(next.SecretData())
	if err != nil {
		t.Fatal(err)
	}
	if len(parsed.PreviousCAs) != 1 || !parsed.PreviousCAs[0].Equal(old.CA.Cert) {
		t.Errorf("previous CAs after round trip: %d", len(parsed.PreviousCAs))
	}
}

func TestParseBundleNamesWhatIsWrong(t *testing.T) {
	b := mustBundle(t, t0, time.Hour, time.Hour)
	other := mustBundle(t, t0, time.Hour, time.Hour)
	with := func(k string, v []byte) map[string][]byte {
		d := b.SecretData()
		if v == nil {
			delete(d, k)
		} else {
			d[k] = v
		}
		return d
	}
	cases := []struct {
		name string
		data map[string][]byte
		want string
	}{
		{"empty secret", map[string][]byte{}, "key ca.crt is missing"},
		{"missing key", with(SecretKeyTLSKey, nil), "key tls.key is missing"},
		{"garbage certificate", with(SecretKeyTLSCert, []byte("nope")), "serving certificate (tls.crt, tls.key): no PEM CERTIFICATE block"},
		{"key of another certificate", with(SecretKeyCAKey, other.CA.KeyPEM), "does not match its private key"},
		{"garbage previous CA", with(SecretKeyPreviousCA, []byte("x")), "ca-previous.crt"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseBundle(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestGenerateServingRejectsBadInput(t *testing.T) {
	ca, err := GenerateServingCA(t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := GenerateServingCA(t0, 0); err == nil {
		t.Error("zero CA validity accepted")
	}
	if _, err := GenerateServingCert(ca, nil, t0, time.Hour); err == nil {
		t.Error("serving cert without DNS names accepted")
	}
	if _, err := GenerateServingCert(nil, names, t0, time.Hour); err == nil {
		t.Error("serving cert without CA accepted")
	}
	if _, err := GenerateServingCert(ca, names, t0, -time.Hour); err == nil {
		t.Error("negative validity accepted")
	}
}

func TestMergeCABundle(t *testing.T) {
	day := 24 * time.Hour
	older := mustBundle(t, t0, 300*day, 90*day)
	mine := mustBundle(t, t0.Add(day), 300*day, 90*day)
	newer := mustBundle(t, t0.Add(2*day), 300*day, 90*day)
	now := t0.Add(3 * day)
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	cases := []struct {
		name    string
		current []byte
		want    []*Bundle
	}{
		{"empty caBundle becomes mine", nil, []*Bundle{mine}},
		{"an older CA is dropped", cat(older.CA.CertPEM), []*Bundle{mine}},
		{"a newer CA written by another replica is kept", cat(newer.CA.CertPEM, mine.CA.CertPEM), []*Bundle{mine, newer}},
		{"my own CA is not duplicated", cat(mine.CA.CertPEM), []*Bundle{mine}},
		{"garbage is replaced", []byte("garbage"), []*Bundle{mine}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCertificates(MergeCABundle(tc.current, mine.CA.CertPEM, now))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d certificates, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				if !got[i].Equal(w.CA.Cert) {
					t.Errorf("certificate %d is %s, want the CA issued at %s", i, got[i].NotBefore, w.CA.Cert.NotBefore)
				}
			}
		})
	}
	expired := mustBundle(t, t0.Add(2*day), time.Hour, time.Hour)
	if got, _ := ParseCertificates(MergeCABundle(expired.CA.CertPEM, mine.CA.CertPEM, now)); len(got) != 1 {
		t.Errorf("an expired newer CA was kept (%d certificates)", len(got))
	}
}

func TestServingCertPutsAddressesInIPSANsAndNamesInDNSSANs(t *testing.T) {
	ca, err := GenerateServingCA(t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := GenerateServingCert(ca, []string{"127.0.0.1", "localhost", "::1"}, t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, ip := range kp.Cert.IPAddresses {
		ips = append(ips, ip.String())
	}
	if got, want := strings.Join(ips, ","), "127.0.0.1,::1"; got != want {
		t.Errorf("IP SANs %s, want %s", got, want)
	}
	if got, want := strings.Join(kp.Cert.DNSNames, ","), "localhost"; got != want {
		t.Errorf("DNS SANs %s, want %s", got, want)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	for _, host := range []string{"127.0.0.1", "::1", "localhost"} {
		if _, err := kp.Cert.Verify(x509.VerifyOptions{DNSName: host, Roots: roots, CurrentTime: t0}); err != nil {
			t.Errorf("serving cert does not verify for %s: %v", host, err)
		}
	}
	if _, err := kp.Cert.Verify(x509.VerifyOptions{DNSName: "10.0.0.1", Roots: roots, CurrentTime: t0}); err == nil {
		t.Error("serving cert verifies for an address it was not issued for")
	}
}
