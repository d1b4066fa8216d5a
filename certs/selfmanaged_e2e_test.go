package certs_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/certs"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
)

// The self-managed mode against a real kube-apiserver: one control plane,
// one namespace per scenario.
func TestSelfManagedOnARealAPIServer(t *testing.T) {
	c := cluster.StartForTest(t, cluster.Options{})
	cs, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("secret is created, caBundle patched, and the apiserver keeps calling through a rotation", func(t *testing.T) {
		ctx := context.Background()
		ns, svc, cfgName := "sm-calls", "webhook", "sm-calls"
		mustNamespace(t, c, ns)
		certDir := t.TempDir()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		mustExternalNameService(t, cs, ns, svc)
		mustWebhookConfig(t, cs, cfgName, ns, svc, int32(port))

		runCtx, cancel := context.WithCancel(ctx)
		t.Cleanup(cancel)
		if err := runManager(t, runCtx, certs.SelfManagedOptions{
			Client: cs, Namespace: ns, SecretName: "tls", ServiceName: svc, WebhookConfigName: cfgName,
			CertDir: certDir, CAValidity: time.Hour, CertValidity: 6 * time.Second, CheckInterval: 250 * time.Millisecond,
			Log: testr.New(t),
		}); err != nil {
			t.Fatalf("RunSelfManaged: %v", err)
		}

		sec, err := cs.CoreV1().Secrets(ns).Get(ctx, "tls", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the Secret was not created: %v", err)
		}
		if sec.Type != corev1.SecretTypeTLS {
			t.Errorf("secret type %s, want %s", sec.Type, corev1.SecretTypeTLS)
		}
		first, err := certs.ParseBundle(sec.Data)
		if err != nil {
			t.Fatalf("Secret content: %v", err)
		}
		if got := readFile(t, filepath.Join(certDir, "tls.crt")); !bytes.Equal(got, sec.Data["tls.crt"]) {
			t.Error("tls.crt in the cert dir differs from the Secret")
		}
		if got := readFile(t, filepath.Join(certDir, "tls.key")); !bytes.Equal(got, sec.Data["tls.key"]) {
			t.Error("tls.key in the cert dir differs from the Secret")
		}
		mwc, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, cfgName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(mwc.Webhooks[0].ClientConfig.CABundle, sec.Data["ca.crt"]) {
			t.Errorf("caBundle is not the Secret's ca.crt:\n%s", mwc.Webhooks[0].ClientConfig.CABundle)
		}
		if mwc.Webhooks[0].ClientConfig.Service == nil || mwc.Webhooks[0].ClientConfig.Service.Name != svc {
			t.Error("patching the caBundle changed the rest of the client config")
		}

		// The server reloads the files through controller-runtime's cert
		// watcher, as the real server does.
		serveOnListener(t, ln, certDir)
		createConfigMapThroughWebhook(t, cs, ns, "before-rotation")

		// Wait for the first serving certificate to expire: by then the
		// manager must have rotated it and the server picked it up, or the
		// apiserver (failurePolicy Fail) refuses the create.
		waitUntil(t, 60*time.Second, "the serving certificate is rotated in the Secret", func() (bool, error) {
			s, err := cs.CoreV1().Secrets(ns).Get(ctx, "tls", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return !bytes.Equal(s.Data["tls.crt"], sec.Data["tls.crt"]), nil
		})
		time.Sleep(time.Until(first.Serving.Cert.NotAfter.Add(time.Second)))
		createConfigMapThroughWebhook(t, cs, ns, "after-the-first-certificate-expired")
		sec2, err := cs.CoreV1().Secrets(ns).Get(ctx, "tls", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sec2.Data["ca.crt"], sec.Data["ca.crt"]) {
			t.Error("a serving-certificate rotation replaced the CA too")
		}
	})

	t.Run("CA rotation keeps the previous CA in the caBundle", func(t *testing.T) {
		ctx := context.Background()
		ns, cfgName := "sm-ca", "sm-ca"
		mustNamespace(t, c, ns)
		mustWebhookConfig(t, cs, cfgName, ns, "webhook", 443)
		runCtx, cancel := context.WithCancel(ctx)
		t.Cleanup(cancel)
		if err := runManager(t, runCtx, certs.SelfManagedOptions{
			Client: cs, Namespace: ns, SecretName: "tls", ServiceName: "webhook", WebhookConfigName: cfgName,
			CertDir: t.TempDir(), CAValidity: 6 * time.Second, CertValidity: time.Hour, CheckInterval: 250 * time.Millisecond,
			Log: testr.New(t),
		}); err != nil {
			t.Fatalf("RunSelfManaged: %v", err)
		}
		first, err := cs.CoreV1().Secrets(ns).Get(ctx, "tls", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 60*time.Second, "the caBundle holds the new CA and the previous one", func() (bool, error) {
			mwc, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, cfgName, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			got, err := certs.ParseCertificates(mwc.Webhooks[0].ClientConfig.CABundle)
			if err != nil {
				return false, err
			}
			old, err := certs.ParseCertificates(first.Data["ca.crt"])
			if err != nil {
				return false, err
			}
			return len(got) == 2 && !got[0].Equal(old[0]) && got[1].Equal(old[0]), nil
		})
	})

	t.Run("two replicas starting together write the Secret once", func(t *testing.T) {
		ctx := context.Background()
		ns, cfgName := "sm-two", "sm-two"
		mustNamespace(t, c, ns)
		mustWebhookConfig(t, cs, cfgName, ns, "webhook", 443)
		events := watchSecret(t, cs, ns, "tls")
		runCtx, cancel := context.WithCancel(ctx)
		t.Cleanup(cancel)
		dirs := startReplicas(t, runCtx, 2, certs.SelfManagedOptions{
			Client: cs, Namespace: ns, SecretName: "tls", ServiceName: "webhook", WebhookConfigName: cfgName,
			CheckInterval: 100 * time.Millisecond,
		})
		// Let both run several check rounds.
		time.Sleep(2 * time.Second)
		cancel()
		got := events()
		if len(got) != 1 || got[0].Type != watch.Added {
			t.Fatalf("Secret events %v, want exactly one ADDED", eventTypes(got))
		}
		want := got[0].Object.(*corev1.Secret).Data["tls.crt"]
		for _, d := range dirs {
			if !bytes.Equal(readFile(t, filepath.Join(d, "tls.crt")), want) {
				t.Errorf("replica dir %s serves another certificate than the Secret's", d)
			}
		}
	})

	t.Run("two replicas rotating together do not flap", func(t *testing.T) {
		ctx := context.Background()
		ns, cfgName := "sm-flap", "sm-flap"
		mustNamespace(t, c, ns)
		mustWebhookConfig(t, cs, cfgName, ns, "webhook", 443)
		events := watchSecret(t, cs, ns, "tls")
		runCtx, cancel := context.WithCancel(ctx)
		t.Cleanup(cancel)
		validity := 6 * time.Second
		dirs := startReplicas(t, runCtx, 2, certs.SelfManagedOptions{
			Client: cs, Namespace: ns, SecretName: "tls", ServiceName: "webhook", WebhookConfigName: cfgName,
			CAValidity: time.Hour, CertValidity: validity, CheckInterval: 100 * time.Millisecond,
		})
		waitUntil(t, 60*time.Second, "two rotations of the serving certificate", func() (bool, error) {
			return len(events()) >= 3, nil
		})
		var current []byte
		waitUntil(t, 30*time.Second, "both replicas serve the Secret's current certificate", func() (bool, error) {
			s, err := cs.CoreV1().Secrets(ns).Get(ctx, "tls", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			current = s.Data["tls.crt"]
			for _, d := range dirs {
				if !bytes.Equal(readFile(t, filepath.Join(d, "tls.crt")), current) {
					return false, nil
				}
			}
			return true, nil
		})
		cancel()
		// Every change of the Secret must have been due: the new certificate
		// was issued (NotAfter - validity, to the second) no earlier than the
		// old one entered its renewal window.
		var prev *x509.Certificate
		for i, ev := range events() {
			cert := parseLeaf(t, ev.Object.(*corev1.Secret).Data["tls.crt"])
			if prev != nil {
				if cert.Equal(prev) {
					t.Errorf("event %d (%s) rewrote the Secret with the same certificate", i, ev.Type)
				}
				issued := cert.NotAfter.Add(-validity)
				due := prev.NotAfter.Add(-certs.RenewBefore(prev))
				if issued.Before(due.Add(-time.Second)) {
					t.Errorf("event %d: certificate issued at %s, but the previous one was only due at %s (flapping)", i, issued, due)
				}
			}
			prev = cert
		}
	})

	t.Run("a broken Secret is repaired in place", func(t *testing.T) {
		ctx := context.Background()
		ns, cfgName := "sm-broken", "sm-broken"
		mustNamespace(t, c, ns)
		mustWebhookConfig(t, cs, cfgName, ns, "webhook", 443)
		if _, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "tls", Labels: map[string]string{"keep": "me"}},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{"tls.crt": []byte("garbage"), "tls.key": []byte("garbage")},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		t.Cleanup(cancel)
		if err := runManager(t, runCtx, certs.SelfManagedOptions{
			Client: cs, Namespace: ns, SecretName: "tls", ServiceName: "webhook", WebhookConfigName: cfgName,
			CertDir: t.TempDir(), Log: testr.New(t),
		}); err != nil {
			t.Fatalf("RunSelfManaged: %v", err)
		}
		s, err := cs.CoreV1().Secrets(ns).Get(ctx, "tls", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := certs.ParseBundle(s.Data); err != nil {
			t.Errorf("Secret still broken: %v", err)
		}
		if s.Labels["keep"] != "me" {
			t.Error("repairing the Secret dropped its labels")
		}
	})

	t.Run("a missing webhook configuration does not stop the start and is patched once it exists", func(t *testing.T) {
		ctx := context.Background()
		ns, cfgName := "sm-late", "sm-late"
		mustNamespace(t, c, ns)
		runCtx, cancel := context.WithCancel(ctx)
		t.Cleanup(cancel)
		if err := runManager(t, runCtx, certs.SelfManagedOptions{
			Client: cs, Namespace: ns, SecretName: "tls", ServiceName: "webhook", WebhookConfigName: cfgName,
			CertDir: t.TempDir(), CheckInterval: 200 * time.Millisecond, Log: testr.New(t),
		}); err != nil {
			t.Fatalf("RunSelfManaged: %v", err)
		}
		mustWebhookConfig(t, cs, cfgName, ns, "webhook", 443)
		waitUntil(t, 30*time.Second, "the late webhook configuration gets its caBundle", func() (bool, error) {
			mwc, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, cfgName, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return len(mwc.Webhooks[0].ClientConfig.CABundle) > 0, nil
		})
	})
}

func mustNamespace(t *testing.T, c *cluster.Cluster, name string) {
	t.Helper()
	if err := c.CreateNamespace(context.Background(), name, nil); err != nil {
		t.Fatal(err)
	}
}

// mustExternalNameService makes a Service the apiserver resolves to
// localhost: it dials there but verifies the certificate for
// <svc>.<ns>.svc, exactly as for an in-cluster Service.
func mustExternalNameService(t *testing.T, cs kubernetes.Interface, ns, name string) {
	t.Helper()
	_, err := cs.CoreV1().Services(ns).Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// mustWebhookConfig registers a webhook for ConfigMaps created in ns, with
// failurePolicy Fail so a TLS problem shows up as a refused create.
func mustWebhookConfig(t *testing.T, cs kubernetes.Interface, name, ns, svc string, port int32) {
	t.Helper()
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	path := "/mutate"
	timeout := int32(10)
	_, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(context.Background(), &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:         "test.linkerd-inject-policy.io",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: ns, Name: svc, Path: &path, Port: &port}},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
			}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// serveOnListener answers admission reviews on ln with the certificate in
// certDir, reloaded by controller-runtime's cert watcher; every allowed
// object gets the annotation test.linkerd-inject-policy.io/called.
func serveOnListener(t *testing.T, ln net.Listener, certDir string) {
	t.Helper()
	cw, err := certwatcher.New(filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	cw.WithWatchInterval(200 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = cw.Start(ctx) }()
	srv := &http.Server{
		Handler:           http.HandlerFunc(admit),
		TLSConfig:         &tls.Config{GetCertificate: cw.GetCertificate, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { cancel(); _ = srv.Close() })
}

func admit(w http.ResponseWriter, r *http.Request) {
	var review admissionv1.AdmissionReview
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(body, &review)
	}
	if err != nil || review.Request == nil {
		http.Error(w, fmt.Sprintf("bad review: %v", err), http.StatusBadRequest)
		return
	}
	pt := admissionv1.PatchTypeJSONPatch
	review.Response = &admissionv1.AdmissionResponse{
		UID:       review.Request.UID,
		Allowed:   true,
		PatchType: &pt,
		Patch:     []byte(`[{"op":"add","path":"/metadata/annotations","value":{"test.linkerd-inject-policy.io/called":"true"}}]`),
	}
	review.Request = nil
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(review)
}

func createConfigMapThroughWebhook(t *testing.T, cs kubernetes.Interface, ns, name string) {
	t.Helper()
	cm, err := cs.CoreV1().ConfigMaps(ns).Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create configmap %s through the webhook (failurePolicy Fail): %v", name, err)
	}
	if cm.Annotations["test.linkerd-inject-policy.io/called"] != "true" {
		t.Errorf("configmap %s was admitted without the webhook's patch: %v", name, cm.Annotations)
	}
}

// watchSecret records every event of one Secret from now on; the returned
// function gives the events so far.
func watchSecret(t *testing.T, cs kubernetes.Interface, ns, name string) func() []watch.Event {
	t.Helper()
	w, err := cs.CoreV1().Secrets(ns).Watch(context.Background(), metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []watch.Event
	go func() {
		for ev := range w.ResultChan() {
			mu.Lock()
			got = append(got, ev)
			mu.Unlock()
		}
	}()
	t.Cleanup(w.Stop)
	return func() []watch.Event {
		mu.Lock()
		defer mu.Unlock()
		return append([]watch.Event(nil), got...)
	}
}

// runManager starts one manager and, on cleanup, stops it and waits for its
// loop to end before the test's temporary dirs are removed.
func runManager(t *testing.T, ctx context.Context, o certs.SelfManagedOptions) error {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	o.Stopped = func() { close(stopped) }
	if o.Log.GetSink() == nil {
		o.Log = testr.New(t)
	}
	err := certs.RunSelfManaged(ctx, o)
	if err != nil {
		cancel()
		return err
	}
	t.Cleanup(func() { cancel(); <-stopped })
	return nil
}

// startReplicas runs n managers concurrently, as n webhook pods would, and
// returns their cert dirs once all have started.
func startReplicas(t *testing.T, ctx context.Context, n int, o certs.SelfManagedOptions) []string {
	t.Helper()
	dirs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		dirs[i] = t.TempDir()
		ro := o
		ro.CertDir = dirs[i]
		ro.Log = testr.New(t).WithValues("replica", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = runManager(t, ctx, ro)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	return dirs
}

func eventTypes(evs []watch.Event) []watch.EventType {
	var out []watch.EventType
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

func parseLeaf(t *testing.T, pemBytes []byte) *x509.Certificate {
	t.Helper()
	c, err := certs.ParseCertificates(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	return c[0]
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting until %s (last error: %v)", timeout, what, lastErr)
}
