package certs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	admissionregistrationv1client "k8s.io/client-go/kubernetes/typed/admissionregistration/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// DefaultCheckInterval is how often RunSelfManaged re-reads the Secret and
// the webhook configuration when SelfManagedOptions.CheckInterval is 0. It
// also bounds how long a caBundle reset by someone else stays wrong.
const DefaultCheckInterval = time.Minute

// maxConflicts bounds the re-read loop when other replicas keep winning the
// race to write the Secret.
const maxConflicts = 5

// Client is the part of the Kubernetes API the self-managed certificates
// use: their Secret and the MutatingWebhookConfiguration's caBundle. A
// kubernetes.Interface is one.
type Client interface {
	CoreV1() corev1client.CoreV1Interface
	AdmissionregistrationV1() admissionregistrationv1client.AdmissionregistrationV1Interface
}

// SelfManagedOptions configure the self-managed serving-certificate mode.
type SelfManagedOptions struct {
	Client            Client
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
	// Stopped, if set, is called once the background loop has returned after
	// ctx ended, so a caller can wait until nothing writes CertDir any more.
	Stopped func()
}

func (o *SelfManagedOptions) defaults() error {
	var missing []string
	if o.Client == nil {
		missing = append(missing, "Client")
	}
	for _, f := range []struct{ name, value string }{
		{"Namespace", o.Namespace}, {"SecretName", o.SecretName}, {"ServiceName", o.ServiceName},
		{"WebhookConfigName", o.WebhookConfigName}, {"CertDir", o.CertDir},
	} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("self-managed options: %s required", strings.Join(missing, ", "))
	}
	if o.CAValidity < 0 || o.CertValidity < 0 || o.CheckInterval < 0 {
		return errors.New("self-managed options: validities and check interval must not be negative")
	}
	if o.CAValidity == 0 {
		o.CAValidity = DefaultServingCAValidity
	}
	if o.CertValidity == 0 {
		o.CertValidity = DefaultServingCertValidity
	}
	if o.CheckInterval == 0 {
		o.CheckInterval = DefaultCheckInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// RunSelfManaged ensures the Secret, files and caBundle once (returning an
// error if the Secret or the files cannot be made), then keeps checking every
// CheckInterval in the background until ctx ends: it rotates what is due,
// follows rotations made by other replicas, and restores the caBundle.
//
// Replicas agree on one Secret: the first Create wins and the others read
// it; rotations are Updates conditioned on the resourceVersion that was read,
// so a replica that loses the race re-reads and adopts the winner's result.
// A caBundle that cannot be written yet (for example the configuration is
// not created yet) is logged and retried without failing the start.
func RunSelfManaged(ctx context.Context, o SelfManagedOptions) error {
	if err := o.defaults(); err != nil {
		return err
	}
	m := &manager{o: o, dnsNames: ServiceDNSNames(o.ServiceName, o.Namespace)}
	b, err := m.ensureSecret(ctx)
	if err != nil {
		return err
	}
	caOK := m.sync(ctx, b)
	if err := m.writeFiles(b); err != nil {
		return err
	}
	go m.loop(ctx, caOK)
	return nil
}

type manager struct {
	o        SelfManagedOptions
	dnsNames []string
}

func (m *manager) loop(ctx context.Context, caOK bool) {
	if m.o.Stopped != nil {
		defer m.o.Stopped()
	}
	// A failed caBundle write is retried sooner than the regular check: until
	// it succeeds the apiserver cannot call us.
	retry := min(m.o.CheckInterval, 5*time.Second)
	for {
		wait := m.o.CheckInterval
		if !caOK {
			wait = retry
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		b, err := m.ensureSecret(ctx)
		if err != nil {
			if ctx.Err() == nil {
				m.o.Log.Error(err, "check self-managed certificates")
			}
			caOK = false
			continue
		}
		caOK = m.sync(ctx, b)
		if err := m.writeFiles(b); err != nil {
			m.o.Log.Error(err, "write serving certificate files")
		}
	}
}

// sync writes the caBundle and reports whether it is in place.
func (m *manager) sync(ctx context.Context, b *Bundle) bool {
	if err := m.patchCABundle(ctx, b.CABundle(m.o.Now())); err != nil {
		if ctx.Err() == nil {
			m.o.Log.Error(err, "update caBundle; retrying", "webhookConfiguration", m.o.WebhookConfigName)
		}
		return false
	}
	return true
}

// ensureSecret returns a Bundle that needs nothing at now, creating or
// rotating the Secret as needed.
func (m *manager) ensureSecret(ctx context.Context) (*Bundle, error) {
	secrets := m.o.Client.CoreV1().Secrets(m.o.Namespace)
	ref := m.o.Namespace + "/" + m.o.SecretName
	for attempt := 0; attempt < maxConflicts; attempt++ {
		now := m.o.Now()
		sec, err := secrets.Get(ctx, m.o.SecretName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			b, err := Rotate(nil, Plan{RotateCA: true, RotateServing: true}, m.dnsNames, now, m.o.CAValidity, m.o.CertValidity)
			if err != nil {
				return nil, err
			}
			_, err = secrets.Create(ctx, m.newSecret(b), metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				continue // another replica was first: use its Secret
			}
			if err != nil {
				return nil, fmt.Errorf("create secret %s: %w", ref, err)
			}
			m.o.Log.Info("created serving certificates", "secret", ref, "notAfter", b.Serving.Cert.NotAfter)
			return b, nil
		}
		if err != nil {
			return nil, fmt.Errorf("get secret %s: %w", ref, err)
		}
		old, parseErr := ParseBundle(sec.Data)
		plan := PlanRotation(old, m.dnsNames, now)
		if !plan.Due() {
			return old, nil
		}
		if parseErr != nil {
			plan.Reason = parseErr.Error()
		}
		next, err := Rotate(old, plan, m.dnsNames, now, m.o.CAValidity, m.o.CertValidity)
		if err != nil {
			return nil, err
		}
		upd := sec.DeepCopy()
		upd.Data = next.SecretData()
		if upd.Type == "" {
			upd.Type = corev1.SecretTypeTLS
		}
		// Update carries sec's resourceVersion: if another replica rotated
		// since we read, this fails with Conflict and we adopt its result.
		_, err = secrets.Update(ctx, upd, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("update secret %s: %w", ref, err)
		}
		m.o.Log.Info("rotated serving certificates", "secret", ref, "reason", plan.Reason, "caRotated", plan.RotateCA, "notAfter", next.Serving.Cert.NotAfter)
		return next, nil
	}
	return nil, fmt.Errorf("secret %s: still changing after %d attempts", ref, maxConflicts)
}

func (m *manager) newSecret(b *Bundle) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      m.o.SecretName,
			Namespace: m.o.Namespace,
			Labels: map[string]string{
				"app.kubernetes.io/name":       "linkerd-inject-policy",
				"app.kubernetes.io/managed-by": "linkerd-inject-policy",
			},
		},
		Type: corev1.SecretTypeTLS,
		Data: b.SecretData(),
	}
}

// patchCABundle sets caBundle on every webhook of the named configuration
// with a JSON patch that touches nothing else. Each replace is guarded by a
// test of the webhook's name, so a concurrent change of the list fails the
// patch instead of writing into the wrong entry.
func (m *manager) patchCABundle(ctx context.Context, caBundle []byte) error {
	api := m.o.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	cfg, err := api.Get(ctx, m.o.WebhookConfigName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get mutatingwebhookconfiguration %s: %w", m.o.WebhookConfigName, err)
	}
	type op struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value"`
	}
	var ops []op
	for i, wh := range cfg.Webhooks {
		want := MergeCABundle(wh.ClientConfig.CABundle, caBundle, m.o.Now())
		if bytes.Equal(wh.ClientConfig.CABundle, want) {
			continue
		}
		ops = append(ops,
			op{Op: "test", Path: fmt.Sprintf("/webhooks/%d/name", i), Value: wh.Name},
			op{Op: "add", Path: fmt.Sprintf("/webhooks/%d/clientConfig/caBundle", i), Value: want}, // []byte marshals as base64, as the API wants
		)
	}
	if len(ops) == 0 {
		return nil
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return fmt.Errorf("encode caBundle patch: %w", err)
	}
	if _, err := api.Patch(ctx, m.o.WebhookConfigName, types.JSONPatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("patch caBundle of mutatingwebhookconfiguration %s: %w", m.o.WebhookConfigName, err)
	}
	m.o.Log.Info("updated caBundle", "webhookConfiguration", m.o.WebhookConfigName, "webhooks", len(ops)/2)
	return nil
}

// writeFiles puts tls.crt and tls.key into CertDir when they differ from what
// is there. Each file is replaced atomically by rename so the server's file
// watcher never reads half a file; the key goes first so that a watcher that
// reacts to the certificate finds the matching key already in place.
func (m *manager) writeFiles(b *Bundle) error {
	if err := os.MkdirAll(m.o.CertDir, 0o700); err != nil {
		return fmt.Errorf("cert dir %s: %w", m.o.CertDir, err)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{SecretKeyTLSKey, b.Serving.KeyPEM, 0o600},
		{SecretKeyTLSCert, b.Serving.CertPEM, 0o644},
	} {
		if err := writeFileAtomic(filepath.Join(m.o.CertDir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, data) {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
