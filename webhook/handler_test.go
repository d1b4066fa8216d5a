package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// readReview loads an AdmissionReview fixture from testdata/reviews.
func readReview(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "reviews", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reviewFixture decodes a fixture for tests that edit it before sending.
func reviewFixture(t testing.TB, name string) *admissionv1.AdmissionReview {
	t.Helper()
	var r admissionv1.AdmissionReview
	if err := json.Unmarshal(readReview(t, name), &r); err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	return &r
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// answer is one HTTP exchange with the handler.
type answer struct {
	status int
	body   string
	review admissionv1.AdmissionReview
}

// auditChange is one entry of the audit annotation, as log tooling reads it.
type auditChange struct {
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
	Path   string `json:"path"`
	Action string `json:"action"`
	Value  string `json:"value,omitempty"`
}

func (a answer) patch(t testing.TB) []map[string]any {
	t.Helper()
	if len(a.review.Response.Patch) == 0 {
		return nil
	}
	var ops []map[string]any
	if err := json.Unmarshal(a.review.Response.Patch, &ops); err != nil {
		t.Fatalf("patch is not a JSON patch: %v\n%s", err, a.review.Response.Patch)
	}
	return ops
}

func post(t testing.TB, h http.Handler, body []byte) answer {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	a := answer{status: rec.Code, body: rec.Body.String()}
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &a.review); err != nil {
			t.Fatalf("200 answer is not an AdmissionReview: %v\n%s", err, rec.Body.String())
		}
		if a.review.Response == nil {
			t.Fatalf("AdmissionReview answer has no response: %s", rec.Body.String())
		}
	}
	return a
}

type testHandler struct {
	http.Handler
	registry *prometheus.Registry
	logs     *bytes.Buffer
}

func newTestHandler(t testing.TB, cfg *policy.Config, namespaces NamespaceLabels) testHandler {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	// Verbosity 1 is --log-level=debug: every decision is logged.
	log := funcr.NewJSON(func(obj string) { logs.WriteString(obj + "\n") }, funcr.Options{Verbosity: 1})
	h, err := NewHandler(HandlerOptions{Config: NewConfigStore(cfg), Namespaces: namespaces, Metrics: m, Log: log, MaxRequestBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	return testHandler{Handler: h, registry: reg, logs: logs}
}

// fixtureCase is one fixture and what the policy must do with it in enforce mode.
type fixtureCase struct {
	name string
	// rules that must be among the applied ones in enforce mode (empty: no change expected).
	rules []string
}

var fixtureCases = []fixtureCase{
	{name: "job", rules: []string{"jobs"}},
	{name: "cronjob", rules: []string{"jobs"}},
	{name: "job-user-override"},
	{name: "admission-job-pod", rules: []string{"admission-jobs"}},
	{name: "traefik-deployment", rules: []string{"ingress"}},
	{name: "mysql-deployment", rules: []string{"opaque-ports"}},
	{name: "postgres-service", rules: []string{"opaque-ports"}},
	{name: "elasticsearch", rules: []string{"eck"}},
	{name: "kibana", rules: []string{"eck"}},
	{name: "node-exporter-daemonset", rules: []string{"unmeshable"}},
	{name: "longhorn-driver-deployer", rules: []string{"unmeshable"}},
	{name: "web-deployment"},
	{name: "configmap"},
}

// goldenAnswer is what the golden files record of a 200 answer.
type goldenAnswer struct {
	Allowed          bool              `json:"allowed"`
	Patch            []map[string]any  `json:"patch,omitempty"`
	Warnings         []string          `json:"warnings,omitempty"`
	AuditAnnotations map[string]string `json:"auditAnnotations,omitempty"`
}

func checkGolden(t *testing.T, name string, got goldenAnswer) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./webhook -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(want, b) {
		t.Errorf("answer differs from %s (rerun with -update if the change is intended)\n--- want\n%s\n--- got\n%s", path, want, b)
	}
}

// appliedRules reads the rule names out of an audit annotation.
func appliedRules(t testing.TB, annotation string) []string {
	t.Helper()
	var list []auditChange
	if err := json.Unmarshal([]byte(annotation), &list); err != nil {
		t.Fatalf("audit annotation is not a JSON list of changes: %v\n%s", err, annotation)
	}
	var rules []string
	for _, c := range list {
		if !slices.Contains(rules, c.Rule) {
			rules = append(rules, c.Rule)
		}
	}
	return rules
}

func TestFixturesInEachMode(t *testing.T) {
	for _, fc := range fixtureCases {
		raw := readReview(t, fc.name)
		review := reviewFixture(t, fc.name)
		ns := review.Request.Namespace
		answers := map[policy.Mode]answer{}
		for _, mode := range []policy.Mode{policy.ModeEnforce, policy.ModeAudit, policy.ModeOff} {
			t.Run(fc.name+" in "+string(mode)+" namespace", func(t *testing.T) {
				h := newTestHandler(t, policy.DefaultConfig(), StaticNamespaces{ns: {policy.LabelMode: string(mode)}})
				a := post(t, h, raw)
				if a.status != http.StatusOK {
					t.Fatalf("status %d: %s", a.status, a.body)
				}
				resp := a.review.Response
				if !resp.Allowed {
					t.Fatalf("denied: %+v", resp.Result)
				}
				if resp.UID != review.Request.UID {
					t.Errorf("response uid %q, want the request's %q", resp.UID, review.Request.UID)
				}
				if a.review.APIVersion != "admission.k8s.io/v1" || a.review.Kind != "AdmissionReview" {
					t.Errorf("answer typed %s %s, want admission.k8s.io/v1 AdmissionReview", a.review.APIVersion, a.review.Kind)
				}
				answers[mode] = a
				// The patch library emits operations on disjoint paths in map
				// order; sort them so the golden file is stable.
				ops := a.patch(t)
				slices.SortFunc(ops, func(x, y map[string]any) int {
					return strings.Compare(fmt.Sprint(x["path"], x["op"]), fmt.Sprint(y["path"], y["op"]))
				})
				checkGolden(t, fc.name+"."+string(mode), goldenAnswer{
					Allowed: resp.Allowed, Patch: ops, Warnings: resp.Warnings, AuditAnnotations: resp.AuditAnnotations,
				})

				switch mode {
				case policy.ModeOff:
					if len(resp.Patch) != 0 || len(resp.Warnings) != 0 || len(resp.AuditAnnotations) != 0 {
						t.Errorf("off mode must admit unchanged and silent, got patch %s warnings %q annotations %v", resp.Patch, resp.Warnings, resp.AuditAnnotations)
					}
				case policy.ModeAudit:
					if len(resp.Patch) != 0 {
						t.Errorf("audit mode must not patch, got %s", resp.Patch)
					}
					if len(fc.rules) == 0 {
						if _, ok := resp.AuditAnnotations[AuditAnnotationWouldChange]; ok {
							t.Errorf("no change expected, got audit annotation %v", resp.AuditAnnotations)
						}
						return
					}
					ann := resp.AuditAnnotations[AuditAnnotationWouldChange]
					var changes []auditChange
					if err := json.Unmarshal([]byte(ann), &changes); err != nil {
						t.Fatalf("audit annotation %q: %v", ann, err)
					}
					var audit []string
					for _, w := range resp.Warnings {
						if strings.HasPrefix(w, "linkerd-inject-policy (audit): ") {
							audit = append(audit, w)
						}
					}
					if len(audit) != len(changes) {
						t.Errorf("%d audit warnings for %d would-be changes: %q", len(audit), len(changes), resp.Warnings)
					}
					name := review.Request.Name
					if name == "" {
						name = "kube-prometheus-stack-admission-create-"
					}
					prefix := fmt.Sprintf("linkerd-inject-policy (audit): %s/%s/%s: would ", review.Request.Kind.Kind, ns, name)
					for _, w := range audit {
						if !strings.HasPrefix(w, prefix) {
							t.Errorf("warning %q does not start with %q", w, prefix)
						}
					}
					for _, want := range fc.rules {
						if got := appliedRules(t, ann); !slices.Contains(got, want) {
							t.Errorf("rules %v would apply, want %q among them", got, want)
						}
					}
				case policy.ModeEnforce:
					if len(fc.rules) == 0 {
						if len(resp.Patch) != 0 {
							t.Errorf("no change expected, got patch %s", resp.Patch)
						}
						return
					}
					if len(resp.Patch) == 0 || resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
						t.Fatalf("want a JSON patch, got type %v patch %q", resp.PatchType, resp.Patch)
					}
					for _, want := range fc.rules {
						if got := appliedRules(t, resp.AuditAnnotations[AuditAnnotationChanged]); !slices.Contains(got, want) {
							t.Errorf("rules %v applied, want %q among them", got, want)
						}
					}
					checkPatchKeepsFieldsAndIsStable(t, h, review, resp.Patch)
				}
			})
		}
		t.Run(fc.name+": audit reports exactly what enforce does", func(t *testing.T) {
			e, a := answers[policy.ModeEnforce], answers[policy.ModeAudit]
			if e.review.Response == nil || a.review.Response == nil {
				t.Skip("a mode's answer failed above")
			}
			if got, want := a.review.Response.AuditAnnotations[AuditAnnotationWouldChange], e.review.Response.AuditAnnotations[AuditAnnotationChanged]; got != want {
				t.Errorf("audit would change %s, enforce changed %s", got, want)
			}
		})
	}
}

// checkPatchKeepsFieldsAndIsStable applies the patch to the object the
// apiserver sent, checks nothing it had is lost, and sends the patched object
// again, as the apiserver does on re-invocation: the answer must be empty.
func checkPatchKeepsFieldsAndIsStable(t *testing.T, h http.Handler, review *admissionv1.AdmissionReview, patch []byte) {
	t.Helper()
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		t.Fatalf("decode patch: %v", err)
	}
	patched, err := p.Apply(review.Request.Object.Raw)
	if err != nil {
		t.Fatalf("apply patch: %v", err)
	}
	var before, after map[string]any
	if err := json.Unmarshal(review.Request.Object.Raw, &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(patched, &after); err != nil {
		t.Fatal(err)
	}
	for _, lost := range lostLeaves("", before, after) {
		t.Errorf("the patch removed or replaced %s", lost)
	}

	again := *review
	req := *review.Request
	req.UID = req.UID + "-reinvoked"
	req.Object.Raw = patched
	again.Request = &req
	a := post(t, h, mustJSON(t, again))
	if a.status != http.StatusOK {
		t.Fatalf("re-invocation status %d: %s", a.status, a.body)
	}
	if len(a.review.Response.Patch) != 0 {
		t.Errorf("re-invocation on the patched object must yield an empty patch, got %s", a.review.Response.Patch)
	}
}

// lostLeaves lists the paths of scalar values in before that after lacks or
// changed, except policy annotations (which a rule may rewrite as a set merge).
func lostLeaves(path string, before, after any) []string {
	switch b := before.(type) {
	case map[string]any:
		a, ok := after.(map[string]any)
		if !ok {
			return []string{path}
		}
		var lost []string
		for k, v := range b {
			av, ok := a[k]
			if !ok {
				lost = append(lost, path+"/"+k)
				continue
			}
			if strings.HasPrefix(k, "config.linkerd.io/") || strings.HasPrefix(k, "linkerd.io/") {
				continue
			}
			lost = append(lost, lostLeaves(path+"/"+k, v, av)...)
		}
		return lost
	case []any:
		a, ok := after.([]any)
		if !ok || len(a) < len(b) {
			return []string{path}
		}
		var lost []string
		for i := range b {
			lost = append(lost, lostLeaves(fmt.Sprintf("%s/%d", path, i), b[i], a[i])...)
		}
		return lost
	default:
		if fmt.Sprint(before) != fmt.Sprint(after) {
			return []string{path}
		}
		return nil
	}
}

func TestModeResolution(t *testing.T) {
	offByDefault := policy.DefaultConfig()
	offByDefault.DefaultMode = policy.ModeOff
	excluding := policy.DefaultConfig()
	excluding.ExcludedNamespaces = append(excluding.ExcludedNamespaces, "batch")

	withAnnotation := func(mode string) []byte {
		r := reviewFixture(t, "job")
		var obj map[string]any
		if err := json.Unmarshal(r.Request.Object.Raw, &obj); err != nil {
			t.Fatal(err)
		}
		obj["metadata"].(map[string]any)["annotations"] = map[string]any{policy.LabelMode: mode}
		r.Request.Object.Raw = mustJSON(t, obj)
		return mustJSON(t, r)
	}
	plain := readReview(t, "job")
	label := func(mode string) StaticNamespaces { return StaticNamespaces{"batch": {policy.LabelMode: mode}} }

	tests := []struct {
		name       string
		cfg        *policy.Config
		namespaces NamespaceLabels
		body       []byte
		want       policy.Mode
	}{
		{"job in unlabelled namespace is patched when the default mode is enforce", policy.DefaultConfig(), StaticNamespaces{}, plain, policy.ModeEnforce},
		{"job with no cluster gets the default mode", policy.DefaultConfig(), nil, plain, policy.ModeEnforce},
		{"job in unlabelled namespace is untouched when the default mode is off", offByDefault, StaticNamespaces{}, plain, policy.ModeOff},
		{"job in namespace opted in to enforce is patched under an off default", offByDefault, label("enforce"), plain, policy.ModeEnforce},
		{"job in audited namespace is admitted unchanged with warnings", offByDefault, label("audit"), plain, policy.ModeAudit},
		{"job in namespace labelled off is untouched under an enforce default", policy.DefaultConfig(), label("off"), plain, policy.ModeOff},
		{"object annotation lowers enforce to audit", policy.DefaultConfig(), label("enforce"), withAnnotation("audit"), policy.ModeAudit},
		{"object annotation lowers enforce to off", policy.DefaultConfig(), label("enforce"), withAnnotation("off"), policy.ModeOff},
		{"object annotation cannot raise audit to enforce", policy.DefaultConfig(), label("audit"), withAnnotation("enforce"), policy.ModeAudit},
		{"job in excluded namespace is untouched whatever its label", excluding, label("enforce"), plain, policy.ModeOff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHandler(t, tt.cfg, tt.namespaces)
			a := post(t, h, tt.body)
			if a.status != http.StatusOK {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			resp := a.review.Response
			var got policy.Mode
			switch {
			case len(resp.Patch) > 0:
				got = policy.ModeEnforce
			case len(resp.Warnings) > 0 && resp.AuditAnnotations[AuditAnnotationWouldChange] != "":
				got = policy.ModeAudit
			default:
				got = policy.ModeOff
			}
			if got != tt.want {
				t.Errorf("behaved as %s, want %s (patch %s, warnings %q)", got, tt.want, resp.Patch, resp.Warnings)
			}
			if !strings.Contains(h.logs.String(), `"mode":"`+string(tt.want)+`"`) {
				t.Errorf("decision log does not record mode %s:\n%s", tt.want, h.logs.String())
			}
		})
	}
}

func TestDecisionLogLine(t *testing.T) {
	h := newTestHandler(t, policy.DefaultConfig(), nil)
	a := post(t, h, readReview(t, "job"))
	if a.status != http.StatusOK {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err == nil && m["msg"] == "decision" {
			line = m
		}
	}
	if line == nil {
		t.Fatalf("no decision line in logs:\n%s", h.logs.String())
	}
	want := map[string]any{
		"uid": "7f0c1a52-0001-4a39-9d6e-000000000001", "kind": "Job", "namespace": "batch", "name": "nightly",
		"operation": "CREATE", "mode": "enforce", "outcome": OutcomePatched,
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("log field %s = %v, want %v", k, line[k], v)
		}
	}
	if rules, _ := line["rules"].(string); !strings.Contains(rules, "jobs") {
		t.Errorf("log field rules = %v, want it to name jobs", line["rules"])
	}
}

// panickingNamespaces makes the handler panic mid-request.
type panickingNamespaces struct{}

func (panickingNamespaces) Labels(context.Context, string) (map[string]string, bool) {
	panic("namespace lookup exploded")
}

func TestBadRequests(t *testing.T) {
	job := reviewFixture(t, "job")
	edit := func(f func(r map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(readReview(t, "job"), &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		return mustJSON(t, m)
	}
	request := func(m map[string]any) map[string]any { return m["request"].(map[string]any) }
	big := edit(func(m map[string]any) {
		request(m)["object"].(map[string]any)["metadata"].(map[string]any)["annotations"] = map[string]any{"padding": strings.Repeat("x", 70<<10)}
	})

	tests := []struct {
		name        string
		method      string
		contentType string
		body        []byte
		chunked     bool
		namespaces  NamespaceLabels
		wantStatus  int
		wantText    string
	}{
		{name: "empty body is a bad request", body: nil, wantStatus: 400, wantText: "empty request body"},
		{name: "a JSON array is not an AdmissionReview", body: []byte(`[1,2]`), wantStatus: 400, wantText: "not an AdmissionReview"},
		{name: "truncated JSON is a bad request", body: readReview(t, "job")[:200], wantStatus: 400, wantText: "not an AdmissionReview"},
		{name: "another kind of object is a bad request", body: []byte(`{"apiVersion":"v1","kind":"Pod"}`), wantStatus: 400, wantText: "expected apiVersion admission.k8s.io/v1"},
		{name: "review without request is a bad request", body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), wantStatus: 400, wantText: "has no request"},
		{name: "request without uid is a bad request", body: edit(func(m map[string]any) { delete(request(m), "uid") }), wantStatus: 400, wantText: "has no uid"},
		{name: "create without object is a bad request", body: edit(func(m map[string]any) { delete(request(m), "object") }), wantStatus: 400, wantText: "has no object"},
		{name: "object that is not a Kubernetes object is a bad request", body: edit(func(m map[string]any) { request(m)["object"] = map[string]any{"spec": 1} }), wantStatus: 400, wantText: "not a valid Kubernetes object"},
		{name: "body over the limit is too large", body: big, wantStatus: 413, wantText: "over the limit"},
		{name: "chunked body over the limit is too large", body: big, chunked: true, wantStatus: 413, wantText: "over the limit"},
		{name: "plain text is unsupported", contentType: "text/plain", body: readReview(t, "job"), wantStatus: 415, wantText: "application/json"},
		{name: "GET is not allowed", method: http.MethodGet, wantStatus: 405, wantText: "POST"},
		{name: "panic in the handler is a 500 naming the uid", body: readReview(t, "job"), namespaces: panickingNamespaces{}, wantStatus: 500, wantText: string(job.Request.UID)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHandler(t, policy.DefaultConfig(), tt.namespaces)
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, Path, bytes.NewReader(tt.body))
			if tt.chunked {
				req.ContentLength = -1
			}
			ct := tt.contentType
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body.String())
			}
			if !strings.Contains(rec.Body.String(), tt.wantText) {
				t.Errorf("answer %q does not say %q", rec.Body.String(), tt.wantText)
			}
			if tt.wantStatus == 500 && !strings.Contains(h.logs.String(), string(job.Request.UID)) {
				t.Errorf("panic not logged with the uid:\n%s", h.logs.String())
			}
		})
	}
}

func TestRequestsWeDoNotHandleAreAllowedUnchanged(t *testing.T) {
	deleteJob := reviewFixture(t, "job")
	deleteJob.Request.Operation = admissionv1.Delete
	deleteJob.Request.OldObject = deleteJob.Request.Object
	deleteJob.Request.Object.Raw = nil
	statusUpdate := reviewFixture(t, "job")
	statusUpdate.Request.Operation = admissionv1.Update
	statusUpdate.Request.SubResource = "status"
	v1beta1 := reviewFixture(t, "configmap")
	v1beta1.APIVersion = "admission.k8s.io/v1beta1"

	tests := []struct {
		name string
		body []byte
		want string // apiVersion of the answer
	}{
		{"configmap is a kind we do not handle", readReview(t, "configmap"), "admission.k8s.io/v1"},
		{"deleting a job is not our business", mustJSON(t, deleteJob), "admission.k8s.io/v1"},
		{"a status update is not our business", mustJSON(t, statusUpdate), "admission.k8s.io/v1"},
		{"a v1beta1 review is answered in v1beta1", mustJSON(t, v1beta1), "admission.k8s.io/v1beta1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHandler(t, policy.DefaultConfig(), nil)
			a := post(t, h, tt.body)
			if a.status != http.StatusOK {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			if !a.review.Response.Allowed || len(a.review.Response.Patch) != 0 || len(a.review.Response.Warnings) != 0 {
				t.Errorf("want allowed unchanged, got %+v", a.review.Response)
			}
			if a.review.APIVersion != tt.want {
				t.Errorf("answered in %s, want %s", a.review.APIVersion, tt.want)
			}
			if got := counterValue(t, metricsOf(t, h).requests.WithLabelValues(requestKind(t, tt.body), requestOp(t, tt.body), labelUnknown, OutcomeUnsupported)); got != 1 {
				t.Errorf("unsupported requests counted %v times, want 1", got)
			}
		})
	}
}

func requestKind(t testing.TB, body []byte) string {
	var r admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	return r.Request.Kind.Kind
}

func requestOp(t testing.TB, body []byte) string {
	var r admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	return string(r.Request.Operation)
}

func metricsOf(t testing.TB, h testHandler) *Metrics {
	t.Helper()
	m, err := NewMetrics(h.registry) // returns the collectors already registered
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMetricsCountDecisions(t *testing.T) {
	h := newTestHandler(t, policy.DefaultConfig(), StaticNamespaces{"batch": {policy.LabelMode: "audit"}})
	post(t, h, readReview(t, "job"))            // audit: would patch
	post(t, h, readReview(t, "web-deployment")) // enforce default, nothing to do
	post(t, h, []byte("garbage"))
	m := metricsOf(t, h)
	checks := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"audited job counted as would_patch", m.requests.WithLabelValues("Job", "CREATE", "audit", OutcomeWouldPatch), 1},
		{"untouched deployment counted as unchanged", m.requests.WithLabelValues("Deployment", "CREATE", "enforce", OutcomeUnchanged), 1},
		{"garbage counted as bad request", m.requests.WithLabelValues("", "", "", OutcomeBadRequest), 1},
		{"would-be jobs change counted under audit", m.changes.WithLabelValues("jobs", jobsReason(t), "audit"), 1},
	}
	for _, c := range checks {
		if got := counterValue(t, c.c); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	var observed uint64
	for _, mf := range gather(t, h.registry) {
		if mf.GetName() == "linkerd_inject_policy_request_duration_seconds" {
			for _, metric := range mf.GetMetric() {
				observed += metric.GetHistogram().GetSampleCount()
			}
		}
	}
	if observed != 3 {
		t.Errorf("%d request durations observed, want 3", observed)
	}
}

// jobsReason is the reason code the jobs rule gives for the job fixture.
func jobsReason(t testing.TB) string {
	t.Helper()
	h := newTestHandler(t, policy.DefaultConfig(), nil)
	a := post(t, h, readReview(t, "job"))
	var list []auditChange
	if err := json.Unmarshal([]byte(a.review.Response.AuditAnnotations[AuditAnnotationChanged]), &list); err != nil || len(list) == 0 {
		t.Fatalf("no changes for the job fixture: %v", err)
	}
	for _, c := range list {
		if c.Rule == "jobs" {
			return c.Reason
		}
	}
	t.Fatal("the jobs rule did not apply to the job fixture")
	return ""
}

func TestNewHandlerDefaults(t *testing.T) {
	h, err := NewHandler(HandlerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a := post(t, h, readReview(t, "job"))
	if a.status != http.StatusOK || len(a.review.Response.Patch) == 0 {
		t.Errorf("handler with defaults must enforce the default policy on a job: status %d patch %s", a.status, a.review.Response.Patch)
	}
}

// counterValue reads one counter (client_golang's testutil needs a module
// this repository does not carry).
func counterValue(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	close(ch)
	var m dto.Metric
	for metric := range ch {
		if err := metric.Write(&m); err != nil {
			t.Fatal(err)
		}
	}
	return m.GetCounter().GetValue()
}

func gather(t testing.TB, g prometheus.Gatherer) []*dto.MetricFamily {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

func TestDryRunIsHandledLikeAnyOtherRequest(t *testing.T) {
	h := newTestHandler(t, policy.DefaultConfig(), nil)
	plain := post(t, h, readReview(t, "job"))
	r := reviewFixture(t, "job")
	dry := true
	r.Request.DryRun = &dry
	a := post(t, h, mustJSON(t, r))
	if a.status != http.StatusOK || len(a.review.Response.Patch) == 0 {
		t.Fatalf("dry run not patched: %d %s", a.status, a.body)
	}
	// Operations on disjoint paths come in map order: compare the results.
	applied := func(patch []byte) string {
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			t.Fatal(err)
		}
		out, err := p.Apply(r.Request.Object.Raw)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatal(err)
		}
		return string(mustJSON(t, v))
	}
	if got, want := applied(a.review.Response.Patch), applied(plain.review.Response.Patch); got != want {
		t.Errorf("dry-run patch gives %s, the real one %s", got, want)
	}
	if !strings.Contains(h.logs.String(), `"dryRun":true`) {
		t.Errorf("decision log does not mark the dry run:\n%s", h.logs.String())
	}
}
