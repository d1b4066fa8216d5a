package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/webhook"
)

// suite is the one control plane every test of the package shares; each test
// works in its own namespaces. Tests that change the webhook itself (its
// config, its registration, whether it runs) are not parallel and put it back
// as they found it.
type suite struct {
	c    *cluster.Cluster
	cs   kubernetes.Interface
	dyn  dynamic.Interface
	repo string

	// wh is the running webhook with the default configuration.
	wh *cluster.Webhook
}

// env is set by TestMain when the suite runs (nil in -short mode).
var env *suite

func TestMain(m *testing.M) {
	cluster.Isolate(cluster.ECKModule)
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	s, err := setUp()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		if s != nil {
			s.tearDown()
		}
		os.Exit(1)
	}
	env = s
	code := m.Run()
	s.tearDown()
	os.Exit(code)
}

func setUp() (*suite, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	start := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{ControllerManager: true, Log: os.Stderr})
	if err != nil {
		return nil, err
	}
	s := &suite{c: c, repo: repoRoot()}
	s.cs = kubernetes.NewForConfigOrDie(c.RESTConfig)
	s.dyn = dynamic.NewForConfigOrDie(c.RESTConfig)
	if err := c.InstallECKCRDs(ctx); err != nil {
		return s, err
	}
	s.wh, err = c.StartWebhook(ctx, cluster.WebhookOptions{})
	if err != nil {
		return s, err
	}
	if err := s.register(ctx, s.wh, admissionregistrationv1.Ignore); err != nil {
		return s, err
	}
	if err := s.waitEnforcing(ctx); err != nil {
		return s, err
	}
	fmt.Fprintf(os.Stderr, "e2e: control plane, ECK CRDs and webhook ready in %s\n", time.Since(start).Round(time.Millisecond))
	return s, nil
}

func (s *suite) tearDown() {
	if err := s.wh.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: stop webhook: %v\n", err)
	}
	if err := s.c.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: stop cluster: %v\n", err)
	}
}

// need returns the suite, or skips the test in -short mode.
func need(t *testing.T) *suite {
	t.Helper()
	if env == nil {
		t.Skip("e2e: needs a real control plane; skipped in -short mode")
	}
	return env
}

// register (re)registers w exactly as the chart does: same rules, same
// namespace selector, the default excluded namespaces.
func (s *suite) register(ctx context.Context, w *cluster.Webhook, failure admissionregistrationv1.FailurePolicyType) error {
	return s.c.ApplyWebhookConfiguration(ctx, webhook.MutatingWebhookConfiguration(webhook.RegistrationOptions{
		URL:                w.URL,
		CABundle:           w.CABundle,
		FailurePolicy:      failure,
		ExcludedNamespaces: policy.DefaultExcludedNamespaces(),
	}))
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// example is the absolute path of a file or directory under examples/.
func (s *suite) example(rel string) string {
	return filepath.Join(s.repo, "examples", rel)
}
