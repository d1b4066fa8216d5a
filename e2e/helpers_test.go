package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/webhook"
)

// Resources the tests read back.
var (
	gvrJob           = schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}
	gvrCronJob       = schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "cronjobs"}
	gvrDeployment    = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	gvrStatefulSet   = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}
	gvrDaemonSet     = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}
	gvrService       = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	gvrPod           = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	gvrElasticsearch = schema.GroupVersionResource{Group: "elasticsearch.k8s.elastic.co", Version: "v1", Resource: "elasticsearches"}
	gvrKibana        = schema.GroupVersionResource{Group: "kibana.k8s.elastic.co", Version: "v1", Resource: "kibanas"}
)

// Namespace labels and annotations of the scenarios.
const (
	labelStandIn = "e2e.linkerd-inject-policy.io/stand-in"
)

var nsCounter atomic.Int64

// testCtx is a context bounded well inside the package's time budget.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// meshedNamespace returns labels and annotations of a namespace where Linkerd
// injects (annotation, as Linkerd reads it, and label, as many install guides
// sets it) with our mode set to mode ("" leaves the label out).
func meshedNamespace(mode policy.Mode) (labels, annotations map[string]string) {
	labels = map[string]string{"linkerd.io/inject": "enabled"}
	if mode != "" {
		labels[policy.LabelMode] = string(mode)
	}
	return labels, map[string]string{"linkerd.io/inject": "enabled"}
}

// namespace creates a fresh namespace named after base.
func (s *suite) namespace(t *testing.T, base string, labels, annotations map[string]string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", base, nsCounter.Add(1))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: annotations}}
	if _, err := s.cs.CoreV1().Namespaces().Create(testCtx(t), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	// The ServiceAccount admission plugin refuses pods until the
	// controller manager has made the namespace's default ServiceAccount.
	if err := s.c.WaitForDefaultServiceAccount(testCtx(t), name); err != nil {
		t.Fatal(err)
	}
	return name
}

// kubectl runs the real kubectl and fails the test on error.
func (s *suite) kubectl(t *testing.T, stdin string, args ...string) (stdout, stderr string) {
	t.Helper()
	var in io.Reader // stays a nil interface without stdin
	if stdin != "" {
		in = strings.NewReader(stdin)
	}
	out, errb, err := s.c.Kubectl(testCtx(t), in, args...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return string(out), string(errb)
}

// apply runs `kubectl apply -n ns -f examples/rel` and returns kubectl's stderr.
func (s *suite) apply(t *testing.T, ns, rel string) string {
	t.Helper()
	_, stderr := s.kubectl(t, "", "apply", "-n", ns, "-f", s.example(rel))
	return stderr
}

// get reads an object back from the apiserver.
func (s *suite) get(t *testing.T, gvr schema.GroupVersionResource, ns, name string) *unstructured.Unstructured {
	t.Helper()
	obj, err := s.dyn.Resource(gvr).Namespace(ns).Get(testCtx(t), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get %s %s/%s: %v", gvr.Resource, ns, name, err)
	}
	return obj
}

// templateAnnotations returns the annotations of the Pod template of a
// workload, of a CronJob's Job template, or of a Pod or Service itself.
func templateAnnotations(obj *unstructured.Unstructured) map[string]string {
	var path []string
	switch obj.GetKind() {
	case "Pod", "Service":
		return obj.GetAnnotations()
	case "CronJob":
		path = []string{"spec", "jobTemplate", "spec", "template", "metadata", "annotations"}
	default:
		path = []string{"spec", "template", "metadata", "annotations"}
	}
	m, _, _ := unstructured.NestedStringMap(obj.Object, path...)
	return m
}

// wantAnnotation fails unless obj's (template) annotation key is want.
func wantAnnotation(t *testing.T, obj *unstructured.Unstructured, key, want string) {
	t.Helper()
	got, ok := templateAnnotations(obj)[key]
	if !ok || got != want {
		t.Errorf("%s %s/%s: annotation %s = %q (set: %v), want %q; annotations: %v",
			obj.GetKind(), obj.GetNamespace(), obj.GetName(), key, got, ok, want, templateAnnotations(obj))
	}
}

// wantList fails unless the comma-separated list annotation contains every item.
func wantList(t *testing.T, obj *unstructured.Unstructured, key string, items ...string) {
	t.Helper()
	got := templateAnnotations(obj)[key]
	have := map[string]bool{}
	for _, v := range strings.Split(got, ",") {
		have[strings.TrimSpace(v)] = true
	}
	for _, it := range items {
		if !have[it] && !rangeCovers(got, it) {
			t.Errorf("%s %s/%s: %s = %q, want it to include %s", obj.GetKind(), obj.GetNamespace(), obj.GetName(), key, got, it)
		}
	}
}

// rangeCovers reports whether a port list like "25,3000-4000" covers port.
func rangeCovers(list, port string) bool {
	var p int
	if _, err := fmt.Sscanf(port, "%d", &p); err != nil {
		return false
	}
	for _, v := range strings.Split(list, ",") {
		var lo, hi int
		if n, _ := fmt.Sscanf(strings.TrimSpace(v), "%d-%d", &lo, &hi); n == 2 && lo <= p && p <= hi {
			return true
		}
	}
	return false
}

// wantApplied fails unless the trace annotation lists rule.
func wantApplied(t *testing.T, obj *unstructured.Unstructured, rule string) {
	t.Helper()
	got := obj.GetAnnotations()[policy.AnnotationApplied]
	for _, r := range strings.Split(got, ",") {
		if r == rule {
			return
		}
	}
	t.Errorf("%s %s/%s: %s = %q, want it to list %q", obj.GetKind(), obj.GetNamespace(), obj.GetName(), policy.AnnotationApplied, got, rule)
}

// waitPods polls until at least n Pods match selector in ns, and returns them.
func (s *suite) waitPods(t *testing.T, ns, selector string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	err := cluster.Poll(testCtx(t), fmt.Sprintf("%d pod(s) %q in %s made by the controller manager", n, selector, ns), func(ctx context.Context) (bool, error) {
		list, err := s.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err
		}
		pods = list.Items
		return len(pods) >= n, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pods
}

// podObject converts a typed Pod for the annotation helpers.
func podObject(t *testing.T, p corev1.Pod) *unstructured.Unstructured {
	t.Helper()
	m, err := runtimeToUnstructured(&p)
	if err != nil {
		t.Fatalf("convert pod: %v", err)
	}
	m.SetKind("Pod")
	return m
}

func runtimeToUnstructured(p *corev1.Pod) (*unstructured.Unstructured, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := json.Unmarshal(data, &u.Object); err != nil {
		return nil, err
	}
	return u, nil
}

// ownerKind is the kind of the controller owning obj ("" if none).
func ownerKind(refs []metav1.OwnerReference) string {
	for _, r := range refs {
		if r.Controller != nil && *r.Controller {
			return r.Kind
		}
	}
	return ""
}

// probeJob is a minimal Job used to ask the webhook what it would do.
func probeJob(ns string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "batch/v1",
		"kind":       "Job",
		"metadata":   map[string]any{"generateName": "probe-", "namespace": ns},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"restartPolicy": "Never",
			"containers":    []any{map[string]any{"name": "main", "image": "busybox"}},
		}}},
	}}
}

// dryRunJob creates probeJob server-side in dry-run mode: it goes through
// admission exactly like a real create but is not stored.
func (s *suite) dryRunJob(ctx context.Context, ns string, mutate func(*unstructured.Unstructured)) (*unstructured.Unstructured, error) {
	job := probeJob(ns)
	if mutate != nil {
		mutate(job)
	}
	return s.dyn.Resource(gvrJob).Namespace(ns).Create(ctx, job, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
}

// waitJobVerdict polls dry-run creations in ns until the Job template's
// linkerd.io/inject is want ("" = unset): a webhook (re)start, registration
// or namespace label change has taken effect.
func (s *suite) waitJobVerdict(ctx context.Context, ns, want string, mutate func(*unstructured.Unstructured)) error {
	return cluster.Poll(ctx, fmt.Sprintf("a Job in %s to get linkerd.io/inject=%q", ns, want), func(ctx context.Context) (bool, error) {
		job, err := s.dryRunJob(ctx, ns, mutate)
		if err != nil {
			return false, err
		}
		return templateAnnotations(job)[policy.AnnotationInject] == want, nil
	})
}

// waitEnforcing waits until the registered webhook mutates in an enforce namespace.
func (s *suite) waitEnforcing(ctx context.Context) error {
	const probeNS = "e2e-probe"
	_, err := s.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: probeNS, Labels: map[string]string{policy.LabelMode: string(policy.ModeEnforce)},
	}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create probe namespace: %w", err)
	}
	if err := s.c.WaitForDefaultServiceAccount(ctx, probeNS); err != nil {
		return err
	}
	return s.waitJobVerdict(ctx, probeNS, "disabled", nil)
}

// restartWebhook replaces the running webhook with one using configPath
// ("" = defaults) on the same port and certificate. Callers then wait for
// the behaviour they expect with a dry-run probe (waitJobVerdict).
func (s *suite) restartWebhook(ctx context.Context, t *testing.T, configPath string) {
	t.Helper()
	if err := s.wh.Stop(); err != nil {
		t.Fatalf("stop webhook: %v", err)
	}
	o := s.wh.Options
	o.ConfigPath = configPath
	wh, err := s.c.StartWebhook(ctx, o)
	if err != nil {
		t.Fatalf("restart webhook with config %q: %v", configPath, err)
	}
	s.wh = wh
}

// auditEvent is the part of an apiserver audit event the tests read.
type auditEvent struct {
	AuditID   string `json:"auditID"`
	Stage     string `json:"stage"`
	Verb      string `json:"verb"`
	ObjectRef struct {
		Resource  string `json:"resource"`
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"objectRef"`
	ResponseStatus struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	Annotations    map[string]string `json:"annotations"`
	ResponseObject json.RawMessage   `json:"responseObject"`
}

// name is the stored object's name (objectRef has none for generateName creates).
func (e auditEvent) name() string {
	if e.ObjectRef.Name != "" {
		return e.ObjectRef.Name
	}
	var obj struct {
		Metadata struct{ Name string } `json:"metadata"`
	}
	_ = json.Unmarshal(e.ResponseObject, &obj)
	return obj.Metadata.Name
}

// webhookCall is one mutation.webhook.admission.k8s.io/round_R_index_I annotation.
type webhookCall struct {
	Key           string
	Configuration string `json:"configuration"`
	Webhook       string `json:"webhook"`
	Mutated       bool   `json:"mutated"`
}

// calls lists the mutating webhooks the apiserver called for e, in order.
func (e auditEvent) calls() []webhookCall {
	var out []webhookCall
	for k, v := range e.Annotations {
		if !strings.HasPrefix(k, "mutation.webhook.admission.k8s.io/") {
			continue
		}
		c := webhookCall{Key: strings.TrimPrefix(k, "mutation.webhook.admission.k8s.io/")}
		if json.Unmarshal([]byte(v), &c) == nil {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// ourCalls are the calls to our webhook.
func (e auditEvent) ourCalls() []webhookCall {
	var out []webhookCall
	for _, c := range e.calls() {
		if c.Configuration == webhook.ConfigurationName {
			out = append(out, c)
		}
	}
	return out
}

// auditEvents polls the audit log until match finds at least one
// ResponseComplete event, and returns the matches.
func (s *suite) auditEvents(t *testing.T, what string, match func(auditEvent) bool) []auditEvent {
	t.Helper()
	var found []auditEvent
	err := cluster.Poll(testCtx(t), "audit log entry for "+what, func(context.Context) (bool, error) {
		data, err := os.ReadFile(s.c.AuditLogPath)
		if err != nil {
			return false, err
		}
		found = found[:0]
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			var e auditEvent
			if json.Unmarshal(sc.Bytes(), &e) != nil || e.Stage != "ResponseComplete" {
				continue
			}
			if match(e) {
				found = append(found, e)
			}
		}
		return len(found) > 0, sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// createEvent matches the successful create of resource ns/name (name may
// be a generateName prefix when prefix is true).
func createEvent(resource, ns, name string, prefix bool) func(auditEvent) bool {
	return func(e auditEvent) bool {
		if e.Verb != "create" || e.ObjectRef.Resource != resource || e.ObjectRef.Namespace != ns || e.ResponseStatus.Code >= 300 {
			return false
		}
		if prefix {
			return strings.HasPrefix(e.name(), name)
		}
		return e.name() == name
	}
}
