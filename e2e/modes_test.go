package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/webhook"
)

// Audit mode through the real client: kubectl shows our warning, the object
// is stored as written, the apiserver's audit log carries our annotation.
func TestAuditMode(t *testing.T) {
	s := need(t)
	t.Parallel()

	t.Run("kubectl apply of a job in an audit namespace prints our warning and stores it unchanged", func(t *testing.T) {
		labels, annotations := meshedNamespace(policy.ModeAudit)
		ns := s.namespace(t, "audit", labels, annotations)
		stderr := s.apply(t, ns, "jobs/job.yaml")
		if !strings.Contains(stderr, "Warning: linkerd-inject-policy (audit)") || !strings.Contains(stderr, policy.AnnotationInject) {
			t.Errorf("kubectl stderr lacks our audit warning about %s:\n%s", policy.AnnotationInject, stderr)
		}
		job := s.get(t, gvrJob, ns, "db-migrate")
		if v, ok := templateAnnotations(job)[policy.AnnotationInject]; ok {
			t.Errorf("audit mode stored linkerd.io/inject=%s; the object must be unchanged", v)
		}
		if v, ok := job.GetAnnotations()[policy.AnnotationApplied]; ok {
			t.Errorf("audit mode stored %s=%s", policy.AnnotationApplied, v)
		}
		key := webhook.WebhookName + "/" + webhook.AuditAnnotationWouldChange
		for _, e := range s.auditEvents(t, "the Job create in "+ns, createEvent("jobs", ns, "db-migrate", false)) {
			if v := e.Annotations[key]; !strings.Contains(v, "jobs") {
				t.Errorf("audit event annotation %s = %q, want the jobs rule's would-be change; annotations: %v", key, v, e.Annotations)
			}
			for _, c := range e.ourCalls() {
				if c.Mutated {
					t.Errorf("audit mode mutated the Job: %+v", c)
				}
			}
		}
	})

	t.Run("the audit log records what enforce mode changed", func(t *testing.T) {
		labels, annotations := meshedNamespace(policy.ModeEnforce)
		ns := s.namespace(t, "enforce-audit-log", labels, annotations)
		s.apply(t, ns, "jobs/job.yaml")
		key := webhook.WebhookName + "/" + webhook.AuditAnnotationChanged
		for _, e := range s.auditEvents(t, "the Job create in "+ns, createEvent("jobs", ns, "db-migrate", false)) {
			if v := e.Annotations[key]; !strings.Contains(v, "jobs") {
				t.Errorf("audit annotation %s = %q, want the jobs rule's change", key, v)
			}
			calls := e.ourCalls()
			if len(calls) == 0 || !calls[0].Mutated {
				t.Errorf("apiserver recorded no mutating call to our webhook: %v", e.Annotations)
			}
		}
	})
}

// writeConfig writes a PolicyConfig for a test and returns its path.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("apiVersion: linkerd-inject-policy.io/v1alpha1\nkind: PolicyConfig\n"+body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// restoreDefaultWebhook puts the default webhook back after a test that
// replaced it, and waits until it enforces again.
func (s *suite) restoreDefaultWebhook(t *testing.T) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if s.wh.Exited() || s.wh.Options.ConfigPath != "" {
			s.restartWebhook(ctx, t, "")
		}
		if err := s.register(ctx, s.wh, admissionregistrationv1.Ignore); err != nil {
			t.Fatalf("restore registration: %v", err)
		}
		if err := s.waitEnforcing(ctx); err != nil {
			t.Fatalf("restore default webhook: %v", err)
		}
	})
}

// The author's explicit choice wins unless the config says override.
func TestExplicitInject(t *testing.T) {
	s := need(t)
	labels, annotations := meshedNamespace(policy.ModeEnforce)

	t.Run("a user's explicit inject enabled on a job is kept", func(t *testing.T) {
		ns := s.namespace(t, "explicit", labels, annotations)
		s.apply(t, ns, "explicit-inject/")
		job := s.get(t, gvrJob, ns, "report")
		wantAnnotation(t, job, policy.AnnotationInject, "enabled")
		pods := s.waitPods(t, ns, "job-name=report", 1)
		wantAnnotation(t, podObject(t, pods[0]), policy.AnnotationInject, "enabled")
	})

	t.Run("override true in the config replaces it", func(t *testing.T) {
		s.restoreDefaultWebhook(t)
		ns := s.namespace(t, "override", labels, annotations)
		s.restartWebhook(testCtx(t), t, writeConfig(t, "builtinRules:\n  jobs:\n    override: true\n"))
		explicit := func(job *unstructured.Unstructured) {
			_ = unstructured.SetNestedStringMap(job.Object, map[string]string{policy.AnnotationInject: "enabled"}, "spec", "template", "metadata", "annotations")
		}
		if err := s.waitJobVerdict(testCtx(t), ns, "disabled", explicit); err != nil {
			t.Fatal(err)
		}
		s.apply(t, ns, "explicit-inject/")
		job := s.get(t, gvrJob, ns, "report")
		wantAnnotation(t, job, policy.AnnotationInject, "disabled")
		pods := s.waitPods(t, ns, "job-name=report", 1)
		wantAnnotation(t, podObject(t, pods[0]), policy.AnnotationInject, "disabled")
	})
}

// With defaultMode off the policy is opt-in per namespace, and the webhook
// follows namespace label changes (informer) without restart.
func TestOptInPerNamespace(t *testing.T) {
	s := need(t)
	s.restoreDefaultWebhook(t)
	s.restartWebhook(testCtx(t), t, s.example("config/opt-in.yaml"))
	ctx := testCtx(t)
	plainLabels, annotations := meshedNamespace("")
	plain := s.namespace(t, "optin-plain", plainLabels, annotations)
	enforcedLabels, _ := meshedNamespace(policy.ModeEnforce)
	enforced := s.namespace(t, "optin-enforced", enforcedLabels, annotations)
	// The restarted webhook answers once its namespace cache is synced.
	if err := s.waitJobVerdict(ctx, enforced, "disabled", nil); err != nil {
		t.Fatal(err)
	}

	t.Run("an unlabeled namespace is untouched", func(t *testing.T) {
		s.apply(t, plain, "jobs/job.yaml")
		job := s.get(t, gvrJob, plain, "db-migrate")
		if v, ok := templateAnnotations(job)[policy.AnnotationInject]; ok {
			t.Errorf("opt-in: job in unlabeled namespace got linkerd.io/inject=%s", v)
		}
	})

	t.Run("a labeled namespace is enforced", func(t *testing.T) {
		s.apply(t, enforced, "jobs/job.yaml")
		wantAnnotation(t, s.get(t, gvrJob, enforced, "db-migrate"), policy.AnnotationInject, "disabled")
	})

	t.Run("labelling a namespace turns the policy on within seconds", func(t *testing.T) {
		s.kubectl(t, "", "label", "namespace", plain, policy.LabelMode+"=enforce")
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := s.waitJobVerdict(ctx, plain, "disabled", nil); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("removing the label turns it off again", func(t *testing.T) {
		s.kubectl(t, "", "label", "namespace", plain, policy.LabelMode+"-")
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := s.waitJobVerdict(ctx, plain, "", nil); err != nil {
			t.Fatal(err)
		}
	})
}

// Through the apiserver, our patch is a fixed point.
func TestIdempotenceThroughTheAPIServer(t *testing.T) {
	s := need(t)
	t.Parallel()
	labels, annotations := meshedNamespace(policy.ModeEnforce)
	ns := s.namespace(t, "idempotence", labels, annotations)

	t.Run("server-side apply of the same manifests twice is a no-op", func(t *testing.T) {
		apply := func() {
			s.kubectl(t, "", "apply", "--server-side", "-n", ns, "-f", s.example("mysql/"))
			s.kubectl(t, "", "apply", "--server-side", "-n", ns, "-f", s.example("jobs/cronjob.yaml"))
		}
		// Objects no controller writes status to keep their resourceVersion
		// when nothing changes; the StatefulSet's status moves on its own, so
		// for it the generation (bumped by spec changes only) tells.
		stable := []struct {
			gvr  schema.GroupVersionResource
			name string
		}{{gvrService, "mysql"}, {gvrService, "mysql-headless"}, {gvrCronJob, "nightly-backup"}}
		apply()
		before := map[string]*unstructured.Unstructured{}
		for _, o := range stable {
			before[o.name+o.gvr.Resource] = s.get(t, o.gvr, ns, o.name)
		}
		wantList(t, before["mysqlservices"], policy.AnnotationOpaquePorts, "3306")
		wantAnnotation(t, before["nightly-backupcronjobs"], policy.AnnotationInject, "disabled")
		sts1 := s.get(t, gvrStatefulSet, ns, "mysql")
		apply()
		for _, o := range stable {
			b, a := before[o.name+o.gvr.Resource], s.get(t, o.gvr, ns, o.name)
			if b.GetResourceVersion() != a.GetResourceVersion() {
				t.Errorf("second apply changed %s %s: resourceVersion %s -> %s\nbefore: %v\nafter:  %v",
					o.gvr.Resource, o.name, b.GetResourceVersion(), a.GetResourceVersion(), templateAnnotations(b), templateAnnotations(a))
			}
		}
		if sts2 := s.get(t, gvrStatefulSet, ns, "mysql"); sts1.GetGeneration() != sts2.GetGeneration() {
			t.Errorf("second apply changed the StatefulSet's spec: generation %d -> %d", sts1.GetGeneration(), sts2.GetGeneration())
		}
	})

	t.Run("an update of a patched object yields no new changes", func(t *testing.T) {
		s.apply(t, ns, "jobs/job.yaml")
		before := s.get(t, gvrJob, ns, "db-migrate")
		s.kubectl(t, "", "label", "-n", ns, "job/db-migrate", "e2e=touched")
		after := s.get(t, gvrJob, ns, "db-migrate")
		if after.GetLabels()["e2e"] != "touched" {
			t.Fatalf("label not stored: %v", after.GetLabels())
		}
		if b, a := templateAnnotations(before), templateAnnotations(after); !equalMaps(b, a) {
			t.Errorf("update changed the template annotations:\nbefore %v\nafter  %v", b, a)
		}
		if b, a := before.GetAnnotations()[policy.AnnotationApplied], after.GetAnnotations()[policy.AnnotationApplied]; b != a {
			t.Errorf("update changed %s: %q -> %q", policy.AnnotationApplied, b, a)
		}
		events := s.auditEvents(t, "the Job label patch", func(e auditEvent) bool {
			return e.Verb == "patch" && e.ObjectRef.Resource == "jobs" && e.ObjectRef.Namespace == ns && e.ObjectRef.Name == "db-migrate"
		})
		for _, e := range events {
			calls := e.ourCalls()
			if len(calls) == 0 {
				t.Errorf("our webhook was not called on the update: %v", e.Annotations)
			}
			for _, c := range calls {
				if c.Mutated {
					t.Errorf("our webhook mutated an already patched object on update: %+v", c)
				}
			}
		}
	})
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// The cluster's failurePolicy decides what a webhook outage means.
func TestWebhookDown(t *testing.T) {
	s := need(t)
	s.restoreDefaultWebhook(t)
	labels, annotations := meshedNamespace(policy.ModeEnforce)
	ns := s.namespace(t, "webhook-down", labels, annotations)
	if err := s.wh.Stop(); err != nil {
		t.Fatal(err)
	}

	t.Run("with failurePolicy Ignore creations succeed unchanged", func(t *testing.T) {
		s.apply(t, ns, "jobs/job.yaml")
		job := s.get(t, gvrJob, ns, "db-migrate")
		if v, ok := templateAnnotations(job)[policy.AnnotationInject]; ok {
			t.Errorf("job created while the webhook was down has linkerd.io/inject=%s", v)
		}
	})

	t.Run("with failurePolicy Fail creations are refused with a clear message", func(t *testing.T) {
		if err := s.register(testCtx(t), s.wh, admissionregistrationv1.Fail); err != nil {
			t.Fatal(err)
		}
		var refusal error
		err := pollErr(testCtx(t), func(ctx context.Context) error {
			_, refusal = s.dryRunJob(ctx, ns, nil)
			return refusal
		})
		if err != nil {
			t.Fatalf("creations still accepted with failurePolicy Fail: %v", err)
		}
		want := `failed calling webhook "` + webhook.WebhookName + `"`
		if !strings.Contains(refusal.Error(), want) {
			t.Errorf("refusal %q does not name the webhook (%s)", refusal, want)
		}
		_, stderr, kerr := s.c.Kubectl(testCtx(t), nil, "apply", "-n", ns, "-f", s.example("jobs/cronjob.yaml"))
		if kerr == nil || !strings.Contains(string(stderr), want) {
			t.Errorf("kubectl apply with the webhook down and Fail: err %v, stderr %s", kerr, stderr)
		}
	})

	t.Run("when the webhook comes back behaviour resumes", func(t *testing.T) {
		s.restartWebhook(testCtx(t), t, "")
		if err := s.waitJobVerdict(testCtx(t), ns, "disabled", nil); err != nil {
			t.Fatal(err)
		}
		s.apply(t, ns, "jobs/cronjob.yaml")
		wantAnnotation(t, s.get(t, gvrCronJob, ns, "nightly-backup"), policy.AnnotationInject, "disabled")
	})
}

// pollErr polls until f returns an error (what the caller waits for).
func pollErr(ctx context.Context, f func(context.Context) error) error {
	for {
		if err := f(ctx); err != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
