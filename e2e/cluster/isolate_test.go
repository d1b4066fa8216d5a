package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
)

// TestMain isolated this test binary: it runs in a private network
// namespace, where nothing but loopback answers and nothing leaves.
func TestTestsRunInAPrivateNetworkNamespace(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: -short runs unisolated and starts no control plane")
	}
	if err := cluster.CheckIsolated(); err != nil {
		t.Fatalf("not isolated: %v", err)
	}
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	if len(ifs) != 1 || ifs[0].Name != "lo" {
		t.Errorf("interfaces = %v, want lo alone", ifs)
	}
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if host, err := os.Readlink("/proc/1/ns/net"); err == nil && host == self {
		t.Errorf("this process shares the network namespace of PID 1 (%s)", host)
	}
	// Processes the tests start (the control plane, the webhook) are in
	// the same namespace.
	out, err := exec.Command("readlink", "/proc/self/ns/net").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != self {
		t.Errorf("a child process is in network namespace %s, this test in %s", got, self)
	}

	// A connect either fails with the kernel's immediate answer or the
	// test fails: a timeout would mean the SYN went somewhere.
	for _, tc := range []struct {
		addr string
		want []error
	}{
		{"192.0.2.10:443", []error{syscall.EHOSTUNREACH, syscall.ENETUNREACH}},
		{"8.8.8.8:53", []error{syscall.EHOSTUNREACH, syscall.ENETUNREACH}},
		{"[2001:db8::10]:443", []error{syscall.EHOSTUNREACH, syscall.ENETUNREACH}},
		{"10.0.0.1:443", []error{syscall.ECONNREFUSED}},
		{"10.96.0.10:53", []error{syscall.ECONNREFUSED}},
	} {
		conn, err := net.DialTimeout("tcp", tc.addr, 10*time.Second)
		if err == nil {
			conn.Close()
			t.Errorf("connect to %s succeeded; from inside the harness it must fail", tc.addr)
			continue
		}
		matched := false
		for _, w := range tc.want {
			matched = matched || errors.Is(err, w)
		}
		if !matched {
			t.Errorf("connect to %s: %v; want one of %v (an immediate refusal, not a timeout)", tc.addr, err, tc.want)
		}
	}

	// A server listening on a ClusterIP is reached there, on loopback.
	l, err := net.Listen("tcp", "10.0.0.77:0")
	if err != nil {
		t.Fatalf("listen on a ClusterIP: %v", err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	conn, err := net.DialTimeout("tcp", l.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatalf("connect to a server listening on a ClusterIP: %v", err)
	}
	conn.Close()
}

// Without CAP_SYS_ADMIN a test binary cannot create the namespace: it stops
// with one line saying so and runs no test.
func TestWithoutThePrivilegeNothingRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: -short runs unisolated")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) is not installed; it drops CAP_SYS_ADMIN for this test")
	}
	cmd := exec.Command(setpriv, "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", "--",
		os.Args[0], "-test.run=^TestTestsRunInAPrivateNetworkNamespace$", "-test.v")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LIP_NETNS=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("run without CAP_SYS_ADMIN: %v, want exit status 1\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "needs root (CAP_SYS_ADMIN)") || strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
		t.Errorf("stderr = %q, want one line saying the namespace needs root", stderr.String())
	}
	if strings.Contains(stdout.String(), "=== RUN") {
		t.Errorf("tests ran without the namespace:\n%s", stdout.String())
	}
}

// serviceFormWebhookIsRefused registers a webhook by Service, as a chart
// does, with nothing behind it: the apiserver dials the Service's ClusterIP,
// which inside the namespace is a local address, and the call ends in
// "connection refused" instead of leaving the machine.
func serviceFormWebhookIsRefused(t *testing.T, c *cluster.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs := kubernetes.NewForConfigOrDie(c.RESTConfig)
	const ns = "isolation"
	if err := c.CreateNamespace(ctx, ns, map[string]string{"lip-isolation": "probe"}); err != nil {
		t.Fatal(err)
	}
	svc, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "hook"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intstr.FromInt32(9443)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		t.Fatalf("the Service got no ClusterIP: %q", svc.Spec.ClusterIP)
	}
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	path := "/mutate"
	port := int32(443)
	timeout := int32(5)
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "lip-isolation-probe"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "probe.isolation.lip.test",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: ns, Name: "hook", Path: &path, Port: &port}},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}}}},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"lip-isolation": "probe"}},
			TimeoutSeconds:          &timeout,
		}},
	}
	if err := c.ApplyWebhookConfiguration(ctx, mwc); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), mwc.Name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete the probe webhook: %v", err)
		}
	}()
	// The apiserver picks the registration up within a second or so;
	// until then the ConfigMap is simply created.
	var callErr error
	err = cluster.Poll(ctx, "the apiserver to call the service-form webhook", func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"}}, metav1.CreateOptions{})
		if err == nil {
			return false, nil
		}
		callErr = err
		return strings.Contains(err.Error(), "failed calling webhook"), nil
	})
	if err != nil {
		t.Fatalf("%v (last: %v)", err, callErr)
	}
	want := "dial tcp " + svc.Spec.ClusterIP + ":443: connect: connection refused"
	if !strings.Contains(callErr.Error(), want) {
		t.Errorf("service-form webhook call: %v\nwant it to end in %q", callErr, want)
	}
}
