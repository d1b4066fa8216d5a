package webhook

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// limitsServer is the handler on a real (plain HTTP) server, as the webhook
// server runs it, so read deadlines and dropped connections are real.
type limitsServer struct {
	*httptest.Server
	metrics *Metrics
	reg     *prometheus.Registry
}

func newLimitsServer(t *testing.T, o HandlerOptions) *limitsServer {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	o.Metrics = m
	o.Log = testLogger(t)
	h, err := NewHandler(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &limitsServer{Server: srv, metrics: m, reg: reg}
}

func (s *limitsServer) outcomes(t *testing.T, outcome string) float64 {
	t.Helper()
	total := 0.0
	for _, mf := range gather(t, s.reg) {
		if mf.GetName() != "linkerd_inject_policy_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

func (s *limitsServer) inFlight(t *testing.T) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	s.metrics.bytesInFlight.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// stall opens a connection, sends the headers of a body of declared bytes
// and only the first sent of them, and leaves it open.
func (s *limitsServer) stall(t *testing.T, declared, sent int) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", Path, declared)
	if _, err := conn.Write(bytes.Repeat([]byte(" "), sent)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// statusOf reads the status code the server answers on conn (0 when it
// closes the connection without an answer).
func statusOf(t *testing.T, conn net.Conn) int {
	t.Helper()
	// Guard only: the server's own deadline is what ends the wait.
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestAClientThatStallsMidBodyIsDropped(t *testing.T) {
	s := newLimitsServer(t, HandlerOptions{BodyReadTimeout: 200 * time.Millisecond})
	conn := s.stall(t, 100000, 1000)
	if code := statusOf(t, conn); code != http.StatusRequestTimeout && code != 0 {
		t.Errorf("stalled client answered %d, want 408 or a closed connection", code)
	}
	Eventually(t, "the stalled request counted as aborted", func() (bool, string) {
		n := s.outcomes(t, OutcomeAborted)
		return n == 1, fmt.Sprintf("%v aborted", n)
	})
	if n := s.inFlight(t); n != 0 {
		t.Errorf("%v bytes still in flight after the stalled client was dropped", n)
	}
}

func TestBytesInFlightAreBounded(t *testing.T) {
	const declared = 100000
	// Room for one such body, not two.
	s := newLimitsServer(t, HandlerOptions{MaxBytesInFlight: declared * 3 / 2, BodyReadTimeout: time.Minute})
	first := s.stall(t, declared, 1000)
	Eventually(t, "the first body reserved in the budget", func() (bool, string) {
		n := s.inFlight(t)
		return n == declared, fmt.Sprintf("%v bytes in flight", n)
	})

	second := s.stall(t, declared, 1000)
	if code := statusOf(t, second); code != http.StatusTooManyRequests {
		t.Errorf("a body over the budget answered %d, want 429", code)
	}
	if n := s.outcomes(t, OutcomeRejected); n != 1 {
		t.Errorf("%v requests counted as rejected, want 1", n)
	}

	// A small review still fits beside the first body.
	resp, err := http.Post(s.URL+Path, "application/json", bytes.NewReader(readReview(t, "job")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a small review beside the stalled body answered %d, want 200", resp.StatusCode)
	}

	first.Close()
	Eventually(t, "the budget released once the first client is gone", func() (bool, string) {
		n := s.inFlight(t)
		return n == 0, fmt.Sprintf("%v bytes in flight", n)
	})
}

// blockingNamespaces holds every lookup until the request's context ends.
type blockingNamespaces struct{ entered chan struct{} }

func (b blockingNamespaces) Labels(ctx context.Context, _ string) (map[string]string, bool) {
	b.entered <- struct{}{}
	<-ctx.Done()
	return nil, false
}

func TestNoAnswerOnceTheAPIServersTimeoutHasPassed(t *testing.T) {
	ns := blockingNamespaces{entered: make(chan struct{}, 1)}
	s := newLimitsServer(t, HandlerOptions{Namespaces: ns})
	resp, err := http.Post(s.URL+Path+"?timeout=300ms", "application/json", bytes.NewReader(readReview(t, "job")))
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("answered %d after the apiserver's timeout, want no answer: %s", resp.StatusCode, b)
	}
	<-ns.entered
	if n := s.outcomes(t, OutcomeAborted); n != 1 {
		t.Errorf("%v requests counted as aborted, want 1", n)
	}
	if n := s.inFlight(t); n != 0 {
		t.Errorf("%v bytes still in flight", n)
	}
}

// reviewOf wraps obj in an AdmissionReview of kind (group/version/kind).
func reviewOf(t testing.TB, group, version, kind, namespace string, obj map[string]any) []byte {
	t.Helper()
	return mustJSON(t, map[string]any{
		"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{
			"uid": "00000000-0000-4000-8000-00000000beef", "operation": "CREATE", "namespace": namespace,
			"kind":   map[string]any{"group": group, "version": version, "kind": kind},
			"object": obj,
		},
	})
}

func TestMalformedShapesOfKnownKindsAreBadRequests(t *testing.T) {
	deployment := func(edit func(o map[string]any)) []byte {
		o := map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "web", "namespace": "shop"},
			"spec": map[string]any{"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
				"spec":     map[string]any{"containers": []any{map[string]any{"name": "web", "image": "nginx"}}},
			}},
		}
		edit(o)
		return reviewOf(t, "apps", "v1", "Deployment", "shop", o)
	}
	spec := func(o map[string]any) map[string]any { return o["spec"].(map[string]any) }
	elasticsearch := reviewOf(t, "elasticsearch.k8s.elastic.co", "v1", "Elasticsearch", "search", map[string]any{
		"apiVersion": "elasticsearch.k8s.elastic.co/v1", "kind": "Elasticsearch",
		"metadata": map[string]any{"name": "logs", "namespace": "search"},
		"spec":     map[string]any{"nodeSets": []any{map[string]any{"name": "default", "podTemplate": map[string]any{"metadata": []any{}}}}},
	})
	tests := []struct {
		name, wantPath string
		body           []byte
	}{
		{"a list where the spec is an object", "spec", deployment(func(o map[string]any) { o["spec"] = []any{} })},
		{"a string where the annotations are a map", "metadata.annotations", deployment(func(o map[string]any) {
			o["metadata"].(map[string]any)["annotations"] = "string"
		})},
		{"a string where the pod template is an object", "spec.template", deployment(func(o map[string]any) { spec(o)["template"] = "oops" })},
		{"a list where an ECK pod template's metadata is an object", "spec.nodeSets[0].podTemplate.metadata", elasticsearch},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is a 400 naming the field", func(t *testing.T) {
			h := newTestHandler(t, policy.DefaultConfig(), StaticNamespaces{"shop": {policy.LabelMode: "enforce"}, "search": {policy.LabelMode: "enforce"}})
			a := post(t, h, tt.body)
			if a.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", a.status, a.body)
			}
			if !strings.Contains(a.body, tt.wantPath+":") {
				t.Errorf("answer %q does not name the field %s", a.body, tt.wantPath)
			}
			if n := counterValue(t, metricsOf(t, h).requests.WithLabelValues(requestKind(t, tt.body), "CREATE", "enforce", OutcomeBadRequest)); n != 1 {
				t.Errorf("%v requests counted as bad_request in mode enforce, want 1", n)
			}
		})
	}
}

func TestLintFindingsAreWarningsInEveryMode(t *testing.T) {
	obj := map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": "shop", "annotations": map[string]any{policy.AnnotationInject: "enabled"}},
		"spec": map[string]any{"template": map[string]any{
			"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
			"spec":     map[string]any{"containers": []any{map[string]any{"name": "web", "image": "nginx"}}},
		}},
	}
	body := reviewOf(t, "apps", "v1", "Deployment", "shop", obj)
	want := "linkerd-inject-policy: Deployment/shop/web: metadata.annotations[linkerd.io/inject]: "
	for _, mode := range []string{"enforce", "audit", "off"} {
		t.Run("an inject annotation on the deployment's own metadata is warned about in mode "+mode, func(t *testing.T) {
			h := newTestHandler(t, policy.DefaultConfig(), StaticNamespaces{"shop": {policy.LabelMode: mode}})
			a := post(t, h, body)
			if a.status != http.StatusOK {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			found := false
			for _, w := range a.review.Response.Warnings {
				if strings.HasPrefix(w, want) {
					found = true
				}
			}
			if !found {
				t.Errorf("no warning starting %q among %q", want, a.review.Response.Warnings)
			}
		})
	}
}

func TestInfoLogHasOneCompactLinePerChange(t *testing.T) {
	var logs bytes.Buffer
	log := funcr.NewJSON(func(obj string) { logs.WriteString(obj + "\n") }, funcr.Options{})
	h, err := NewHandler(HandlerOptions{Log: log, Namespaces: StaticNamespaces{"batch": {policy.LabelMode: "enforce"}, "web": {policy.LabelMode: "enforce"}}})
	if err != nil {
		t.Fatal(err)
	}
	post(t, h, readReview(t, "web-deployment"))
	if strings.Contains(logs.String(), `"decision"`) {
		t.Errorf("an unchanged object logged a decision at info:\n%s", logs.String())
	}
	post(t, h, readReview(t, "job"))
	if n := strings.Count(logs.String(), `"msg":"decision"`); n != 1 {
		t.Errorf("%d decision lines for one patched job, want 1:\n%s", n, logs.String())
	}
}

// The handler's own decoding and encoding, end to end, against the full
// round trip: every fixture and example sent as a review, the answer's patch
// applied to the raw object, equals the object unstructured decodes,
// Evaluate mutates and encoding/json encodes.
func TestHandlerPatchMatchesTheFullRoundTrip(t *testing.T) {
	cfg := policy.DefaultConfig()
	for _, o := range oracleObjects(t) {
		t.Run(o.name+" answered by the handler equals the full round trip", func(t *testing.T) {
			var obj map[string]any
			if err := json.Unmarshal(o.raw, &obj); err != nil {
				t.Fatal(err)
			}
			kind, _ := obj["kind"].(string)
			group, version, _ := strings.Cut(fmt.Sprint(obj["apiVersion"]), "/")
			if version == "" {
				group, version = "", group
			}
			body := mustJSON(t, map[string]any{
				"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
				"request": map[string]any{
					"uid": "00000000-0000-4000-8000-000000000042", "operation": "CREATE", "namespace": o.namespace,
					"kind":   map[string]any{"group": group, "version": version, "kind": kind},
					"object": json.RawMessage(o.raw),
				},
			})
			h := newTestHandler(t, cfg, nil)
			a := post(t, h, body)
			if a.status != http.StatusOK {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			want := roundTrip(t, o, cfg)
			got := o.raw
			if len(a.review.Response.Patch) > 0 {
				got = applyRawPatch(t, o.raw, a.review.Response.Patch)
			}
			if !jsonEqual(t, got, want) {
				t.Errorf("the handler's patch gives\n%s\nthe full round trip gives\n%s", got, want)
			}
		})
	}
}

func TestAppendStringEncodesAsEncodingJSONDecodes(t *testing.T) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "new\nline\ttab\r", "\x00\x1f\x7f", "ünïcödé ✓ 𝄞", "bad \xff utf-8 \xc3", "<html>&amp;", "\u2028\u2029"} {
		var got, want string
		if err := json.Unmarshal(appendString(nil, s), &got); err != nil {
			t.Fatalf("%q encoded as invalid JSON %s: %v", s, appendString(nil, s), err)
		}
		std, _ := json.Marshal(s)
		if err := json.Unmarshal(std, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%q decodes as %q, encoding/json's as %q", s, got, want)
		}
	}
}

// roundTrip is what the full round trip makes of o: unstructured's decode,
// Admit as the handler calls it (no namespace labels), encoding/json.
func roundTrip(t *testing.T, o oracleObject, cfg *policy.Config) []byte {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(o.raw); err != nil {
		t.Fatal(err)
	}
	a, err := policy.Admit(obj, policy.Context{Namespace: o.namespace}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.Mode != policy.ModeEnforce {
		return o.raw
	}
	out, err := a.Decision.Object.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func applyRawPatch(t *testing.T, raw, patch []byte) []byte {
	t.Helper()
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		t.Fatalf("patch does not decode: %v\n%s", err, patch)
	}
	out, err := p.Apply(raw)
	if err != nil {
		t.Fatalf("patch does not apply: %v\n%s", err, patch)
	}
	return out
}
