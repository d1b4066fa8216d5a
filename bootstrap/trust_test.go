package bootstrap

import (
	"bytes"
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/certs"
)

func mustRoot(t *testing.T, name string) *certs.KeyPair {
	t.Helper()
	kp, err := certs.GenerateTrustAnchor(name, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func names(list []*x509.Certificate) string {
	var out []string
	for _, c := range list {
		out = append(out, c.Subject.CommonName)
	}
	return strings.Join(out, ",")
}

func TestPlanBundle(t *testing.T) {
	r1, r2, r3 := mustRoot(t, "r1").Cert, mustRoot(t, "r2").Cert, mustRoot(t, "r3").Cert
	list := func(c ...*x509.Certificate) []*x509.Certificate { return c }
	tests := []struct {
		name                       string
		current, issuer            []*x509.Certificate
		ca                         *x509.Certificate
		drop                       bool
		roots, added, dropped, old string
		issuerUntrusted            bool
	}{
		{name: "a first install trusts the issuer's root", issuer: list(r1), ca: r1, roots: "r1"},
		{name: "a first install whose CA renewed already trusts both roots", issuer: list(r1), ca: r2, roots: "r1,r2"},
		{name: "nothing changed keeps the bundle", current: list(r1), issuer: list(r1), ca: r1, roots: "r1"},
		{name: "a CA root renewed with a new key is added after the current root", current: list(r1), issuer: list(r1), ca: r2, roots: "r1,r2", added: "r2"},
		{name: "an issuer already signed by an untrusted root adds it and says so", current: list(r1), issuer: list(r2), ca: r2, roots: "r1,r2", added: "r2", old: "r1", issuerUntrusted: true},
		{name: "a finished rotation keeps the old root without --drop-old-trust-roots", current: list(r1, r2), issuer: list(r2), ca: r2, roots: "r1,r2", old: "r1"},
		{name: "--drop-old-trust-roots removes the root nothing uses", current: list(r1, r2), issuer: list(r2), ca: r2, drop: true, roots: "r2", dropped: "r1"},
		{name: "--drop-old-trust-roots keeps the issuer's root and the CA's next root", current: list(r1, r2, r3), issuer: list(r1), ca: r3, drop: true, roots: "r1,r3", dropped: "r2"},
		{name: "a root the issuer uses is never dropped", current: list(r1), issuer: list(r1), ca: r1, drop: true, roots: "r1"},
		{name: "a CA that is no CA issuer leaves the issuer's root alone", current: list(r1), issuer: list(r1), roots: "r1"},
		{name: "duplicates in the cluster's bundle are kept once", current: list(r1, r1), issuer: list(r1), ca: r1, roots: "r1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := planBundle(tt.current, tt.issuer, tt.ca, tt.drop)
			got := [4]string{names(p.roots), names(p.added), names(p.dropped), names(p.old)}
			want := [4]string{tt.roots, tt.added, tt.dropped, tt.old}
			if got != want {
				t.Errorf("roots, added, dropped, old = %q, want %q", got, want)
			}
			if p.issuerUntrusted != tt.issuerUntrusted {
				t.Errorf("issuerUntrusted = %v, want %v", p.issuerUntrusted, tt.issuerUntrusted)
			}
			// The property the issue asks for: the issuer always verifies.
			for _, ir := range tt.issuer {
				if !containsCert(p.roots, ir) {
					t.Errorf("bundle %s lacks the issuer's root %s", names(p.roots), ir.Subject.CommonName)
				}
			}
		})
	}
}

func TestRenewalOfReadsTheRootCertificateAsCertManagerDoes(t *testing.T) {
	notBefore := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	cert90d := &x509.Certificate{NotBefore: notBefore, NotAfter: notBefore.Add(90 * 24 * time.Hour)}
	certificate := func(spec map[string]any, status map[string]any) *unstructured.Unstructured {
		o := map[string]any{"spec": spec}
		if status != nil {
			o["status"] = status
		}
		return &unstructured.Unstructured{Object: o}
	}
	tests := []struct {
		name        string
		certificate *unstructured.Unstructured
		cert        *x509.Certificate
		at          time.Time
		newKey      bool
	}{
		{"a root without duration renews at day 60 with a new key", certificate(map[string]any{"isCA": true}, nil), cert90d, notBefore.Add(60 * 24 * time.Hour), true},
		{"renewBefore sets the renewal time", certificate(map[string]any{"renewBefore": "240h"}, nil), cert90d, notBefore.Add(80 * 24 * time.Hour), true},
		{"renewBeforePercentage sets it too", certificate(map[string]any{"renewBeforePercentage": int64(50)}, nil), cert90d, notBefore.Add(45 * 24 * time.Hour), true},
		{"status.renewalTime wins", certificate(map[string]any{}, map[string]any{"renewalTime": "2027-01-02T03:04:05Z"}), cert90d, time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC), true},
		{"rotationPolicy Never keeps the key", certificate(map[string]any{"privateKey": map[string]any{"rotationPolicy": "Never"}}, nil), cert90d, notBefore.Add(60 * 24 * time.Hour), false},
		{"rotationPolicy Always makes a new key", certificate(map[string]any{"privateKey": map[string]any{"rotationPolicy": "Always"}}, nil), cert90d, notBefore.Add(60 * 24 * time.Hour), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := renewalOf(tt.certificate, tt.cert)
			if !r.at.Equal(tt.at) || r.newKey() != tt.newKey {
				t.Errorf("renewal at %s, new key %v; want %s, %v", r.at, r.newKey(), tt.at, tt.newKey)
			}
		})
	}
}

func TestTrustNotesSayWhatToDoInOrder(t *testing.T) {
	r1, r2 := mustRoot(t, "r1").Cert, mustRoot(t, "r2").Cert
	ref := issuerRef{Kind: "ClusterIssuer", Name: "ca-issuer"}
	renewal := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	dropAfter := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		plan bundlePlan
		ca   *x509.Certificate
		want []string // in this order
	}{
		{
			name: "a new CA root asks to restart the workloads before the issuer renews",
			plan: planBundle([]*x509.Certificate{r1}, []*x509.Certificate{r1}, r2, false), ca: r2,
			want: []string{"new root \"r2\"", "with a new key", "1. the control plane trusts the new bundle", "2. restart every meshed workload before cert-manager renews the identity issuer", "2026-12-02T10:00:00Z", "stale_trust_root", "1 pod holds another bundle now: shop/web-1", "3. when doctor lists no stale_trust_root and it is after 2026-12-03T10:00:00Z", "--drop-old-trust-roots"},
		},
		{
			name: "an issuer from an untrusted root asks to restart the workloads now",
			plan: planBundle([]*x509.Certificate{r1}, []*x509.Certificate{r2}, r2, false), ca: r2,
			want: []string{"signed by a root the cluster did not trust", "IssuerUpdateSkipped", "1. the control plane", "2. restart every meshed workload now", "3. when doctor lists no stale_trust_root", "--drop-old-trust-roots"},
		},
		{
			name: "a kept old root says how it goes",
			plan: planBundle([]*x509.Certificate{r1, r2}, []*x509.Certificate{r2}, r2, false), ca: r2,
			want: []string{"keeps the old root \"r1\"", "stale_trust_root", "--drop-old-trust-roots"},
		},
		{
			name: "a dropped root says the workloads may restart when convenient",
			plan: planBundle([]*x509.Certificate{r1, r2}, []*x509.Certificate{r2}, r2, true), ca: r2,
			want: []string{"dropped the old root \"r1\"", "1. the control plane restarts", "2. workloads injected before keep trusting the dropped root"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			notes := strings.Join(trustNotes(tt.plan, ref, tt.ca, r2, renewal, dropAfter, []string{"shop/web-1"}), "\n")
			at := 0
			for _, w := range tt.want {
				i := strings.Index(notes[at:], w)
				if i < 0 {
					t.Fatalf("notes lack %q after position %d:\n%s", w, at, notes)
				}
				at += i
			}
		})
	}
	t.Run("a bundle of roots in use needs no notes", func(t *testing.T) {
		if n := trustNotes(planBundle([]*x509.Certificate{r1}, []*x509.Certificate{r1}, r1, false), ref, r1, r1, renewal, dropAfter, nil); n != nil {
			t.Errorf("notes = %q, want none", n)
		}
	})
}

// The chart trims identityTrustAnchorsPEM into the ConfigMap; bootstrap's
// trimmed bundle makes the control plane's pods (hash of the value) and the
// injected workloads (hash of the ConfigMap) carry the same trust-root-sha256.
func TestTheBundleHashesAlikeInTheValueAndTheRenderedConfigMap(t *testing.T) {
	ch, err := loader.Load(filepath.Join(testChartDir, ControlPlaneRelease))
	if err != nil {
		t.Fatal(err)
	}
	bundle := certs.EncodeTrustBundle([]*x509.Certificate{mustRoot(t, "r1").Cert, mustRoot(t, "r2").Cert})
	r := &runner{controlPlane: ch, anchorPEM: bundle, userValues: map[string]any{}}
	var out bytes.Buffer
	if err := renderRelease(helmRelease{name: ControlPlaneRelease, namespace: ControlPlaneNamespace, chart: ch, values: mustValues(t, r)}, "v1.31.0", nil, &out); err != nil {
		t.Fatal(err)
	}
	cm := find(parseStream(t, out.Bytes()), "ConfigMap", TrustRootsConfigMap)
	if cm == nil {
		t.Fatal("no trust roots ConfigMap rendered")
	}
	got, _, _ := unstructured.NestedString(cm.Object, "data", "ca-bundle.crt")
	if certs.TrustRootSHA256([]byte(got)) != certs.TrustRootSHA256(bundle) {
		t.Errorf("ConfigMap bundle hashes %s, the value %s", certs.TrustRootSHA256([]byte(got)), certs.TrustRootSHA256(bundle))
	}
}

func TestDropOldTrustRootsNeedsTheCertManagerIdentity(t *testing.T) {
	_, _, err := Options{Identity: IdentityGenerated, DropOldTrustRoots: true, WebhookChart: "chart"}.withDefaults()
	assertOneLineError(t, err, "--drop-old-trust-roots: only with --identity cert-manager")
	if _, _, err := (Options{Identity: IdentityCertManager, DropOldTrustRoots: true, WebhookChart: "chart"}).withDefaults(); err != nil {
		t.Errorf("with --identity cert-manager: %v", err)
	}
}
