package fault

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/bench/proc"
)

// hostileCase is one request and the answer docs/operations.md promises.
type hostileCase struct {
	name        string
	method      string // "" means POST
	contentType string // "" means application/json
	body        []byte
	chunked     bool // send without Content-Length
	wantStatus  int
	// wantText must appear in the plain-text error, or for a 200 in the
	// answer's warnings.
	wantText string
	// wantPatch: for a 200, whether a JSON patch is expected.
	wantPatch bool
	// wantInPatch must appear in the JSON patch.
	wantInPatch string
}

func hostileCases(t *testing.T) []hostileCase {
	valid := reviewBody(t, "uid-valid", jobKind, "batch", jobObject("valid"))
	// edit decodes the valid review, lets f change it and encodes it again.
	edit := func(f func(review, request map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(valid, &m); err != nil {
			t.Fatal(err)
		}
		f(m, m["request"].(map[string]any))
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pod := func(annotations map[string]any, ports ...any) []byte {
		return reviewBody(t, "uid-pod", podKind, "apps", podObject("p", annotations, ports...))
	}
	// A 10 MiB object: over the 7 MiB default limit.
	huge := edit(func(_, r map[string]any) {
		r["object"].(map[string]any)["metadata"].(map[string]any)["annotations"] = map[string]any{"pad": strings.Repeat("x", 10<<20)}
	})
	// A 1 MiB annotation: large but under the limit.
	large := edit(func(_, r map[string]any) {
		r["object"].(map[string]any)["metadata"].(map[string]any)["annotations"] = map[string]any{"pad": strings.Repeat("y", 1<<20)}
	})
	manyAnnotations := map[string]any{}
	for i := range 5000 {
		manyAnnotations[fmt.Sprintf("example.com/a%d", i)] = "v"
	}
	// JSON nested deeper than any decoder should follow.
	deep := []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"deep","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"d"},"spec":{"x":` +
		strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}}}}`)
	// A Job object declared as a Pod, and a Pod declared as a Job.
	jobAsPod := reviewBody(t, "uid-mismatch-1", podKind, "batch", jobObject("liar"))
	podAsJob := reviewBody(t, "uid-mismatch-2", jobKind, "apps", podObject("liar", nil, 3306))
	// Invalid UTF-8 inside a string value (encoding/json would escape it, so splice raw bytes).
	badUTF8 := bytes.Replace(valid, []byte(`"name":"valid"`), []byte("\"name\":\"va\xff\xfeid\""), 1)
	dupKeys := bytes.Replace(valid, []byte(`"uid":"uid-valid"`), []byte(`"uid":"uid-first","uid":"uid-valid"`), 1)
	dupAnnotation := reviewBody(t, "uid-dup-ann", podKind, "apps", podObject("p", map[string]any{"k": "1"}, 3306))
	dupAnnotation = bytes.Replace(dupAnnotation, []byte(`"k":"1"`), []byte(`"k":"1","k":"2"`), 1)

	return []hostileCase{
		{name: "empty body is a bad request", body: nil, wantStatus: 400, wantText: "empty request body"},
		{name: "truncated JSON is a bad request", body: valid[:len(valid)/2], wantStatus: 400, wantText: "not an AdmissionReview JSON object"},
		{name: "a JSON array is a bad request", body: []byte(`[{"kind":"AdmissionReview"}]`), wantStatus: 400, wantText: "not an AdmissionReview JSON object"},
		{name: "a JSON string is a bad request", body: []byte(`"AdmissionReview"`), wantStatus: 400, wantText: "not an AdmissionReview JSON object"},
		{name: "JSON null is a bad request", body: []byte(`null`), wantStatus: 400, wantText: "expected apiVersion admission.k8s.io/v1"},
		{name: "an empty object is a bad request", body: []byte(`{}`), wantStatus: 400, wantText: "expected apiVersion admission.k8s.io/v1"},
		{name: "trailing garbage after the review is a bad request", body: append(append([]byte{}, valid...), []byte(`}{"x":1}`)...), wantStatus: 400, wantText: "not an AdmissionReview JSON object"},
		{name: "a byte-order mark before the JSON is a bad request", body: append([]byte("\xef\xbb\xbf"), valid...), wantStatus: 400, wantText: "not an AdmissionReview JSON object"},
		{name: "a wrong apiVersion is a bad request", body: edit(func(m, _ map[string]any) { m["apiVersion"] = "admission.k8s.io/v2" }), wantStatus: 400, wantText: `apiVersion "admission.k8s.io/v2"`},
		{name: "a wrong kind is a bad request", body: edit(func(m, _ map[string]any) { m["kind"] = "Pod" }), wantStatus: 400, wantText: `kind "Pod"`},
		{name: "a review without request is a bad request", body: edit(func(m, _ map[string]any) { delete(m, "request") }), wantStatus: 400, wantText: "has no request"},
		{name: "a request without uid is a bad request", body: edit(func(_, r map[string]any) { delete(r, "uid") }), wantStatus: 400, wantText: "has no uid"},
		{name: "a request without kind is a bad request", body: edit(func(_, r map[string]any) { delete(r, "kind") }), wantStatus: 400, wantText: "has no kind"},
		{name: "a create without object is a bad request", body: edit(func(_, r map[string]any) { delete(r, "object") }), wantStatus: 400, wantText: "has no object"},
		{name: "a create with a null object is a bad request", body: edit(func(_, r map[string]any) { r["object"] = nil }), wantStatus: 400, wantText: "has no object"},
		{name: "an object that is a number is a bad request", body: edit(func(_, r map[string]any) { r["object"] = 5 }), wantStatus: 400, wantText: "not a valid Kubernetes object"},
		{name: "an object without kind is a bad request", body: edit(func(_, r map[string]any) { delete(r["object"].(map[string]any), "kind") }), wantStatus: 400, wantText: "not a valid Kubernetes object"},
		{name: "a uid of the wrong type is a bad request", body: edit(func(_, r map[string]any) { r["uid"] = 42 }), wantStatus: 400, wantText: "not an AdmissionReview JSON object"},
		{name: "a number too large for any type is a bad request", body: bytes.Replace(valid, []byte(`"containerPort":3306`), []byte(`"containerPort":1e400`), 1), wantStatus: 400, wantText: "not a valid Kubernetes object"},
		{name: "deeply nested JSON is a bad request", body: deep, wantStatus: 400, wantText: "not an AdmissionReview JSON object"},
		{name: "a 10 MiB body is too large", body: huge, wantStatus: 413, wantText: "over the limit"},
		{name: "a 10 MiB chunked body is too large", body: huge, chunked: true, wantStatus: 413, wantText: "over the limit"},
		{name: "plain text content is unsupported", contentType: "text/plain", body: valid, wantStatus: 415, wantText: "application/json"},
		{name: "GET is not allowed", method: http.MethodGet, wantStatus: 405, wantText: "POST"},
		{name: "PUT is not allowed", method: http.MethodPut, body: valid, wantStatus: 405, wantText: "POST"},
		{name: "a 1 MiB annotation under the limit is still patched", body: large, wantStatus: 200, wantPatch: true},
		{name: "5000 annotations are handled", body: pod(manyAnnotations, 3306), wantStatus: 200, wantPatch: true},
		{name: "a Job declared as a Pod is admitted", body: jobAsPod, wantStatus: 200, wantPatch: true},
		{name: "a Pod declared as a Job is admitted", body: podAsJob, wantStatus: 200, wantPatch: true},
		// The apiserver never sends these (it decodes into typed objects first);
		// the answer must still keep them: only additions, nothing dropped.
		{name: "annotations with non-string values are kept and the policy still applies", body: pod(map[string]any{"n": 5, "b": true, "o": map[string]any{}}, 3306), wantStatus: 200, wantPatch: true, wantInPatch: "opaque-ports"},
		{name: "containerPort -1 is ignored", body: pod(nil, -1), wantStatus: 200},
		{name: "containerPort 99999 is ignored", body: pod(nil, 99999), wantStatus: 200},
		{name: "containerPort as a string is ignored", body: pod(nil, "3306"), wantStatus: 200},
		{name: "an opaque-ports value 3306- is left alone with a warning", body: pod(map[string]any{"config.linkerd.io/opaque-ports": "3306-"}, 3306), wantStatus: 200, wantText: "3306-"},
		{name: "an opaque-ports value abc is kept as a port name and 3306 merged", body: pod(map[string]any{"config.linkerd.io/opaque-ports": "abc"}, 3306), wantStatus: 200, wantPatch: true, wantInPatch: `"abc,3306"`},
		{name: "an opaque-ports value 3306,,abc!! is left alone with a warning", body: pod(map[string]any{"config.linkerd.io/opaque-ports": "3306,,abc!!"}, 3306), wantStatus: 200, wantText: "abc!!"},
		{name: "an opaque-ports value 99999 is left alone with a warning", body: pod(map[string]any{"config.linkerd.io/opaque-ports": "99999"}, 3306), wantStatus: 200, wantText: "99999"},
		{name: "an opaque-ports value -1 is left alone with a warning", body: pod(map[string]any{"config.linkerd.io/opaque-ports": "-1"}, 3306), wantStatus: 200, wantText: "-1"},
		{name: "duplicate keys in the review: the last one counts", body: dupKeys, wantStatus: 200, wantPatch: true},
		{name: "duplicate annotation keys: the last one counts", body: dupAnnotation, wantStatus: 200, wantPatch: true},
		{name: "invalid UTF-8 in a name is admitted", body: badUTF8, wantStatus: 200, wantPatch: true},
		{name: "DELETE is admitted unchanged", body: edit(func(_, r map[string]any) {
			r["operation"] = "DELETE"
			r["oldObject"] = r["object"]
			delete(r, "object")
		}), wantStatus: 200},
		{name: "a status subresource is admitted unchanged", body: edit(func(_, r map[string]any) { r["subResource"] = "status" }), wantStatus: 200},
		{name: "an unhandled kind is admitted unchanged", body: reviewBody(t, "uid-cm", gvk{"", "v1", "ConfigMap", "configmaps"}, "apps", map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "c"}}), wantStatus: 200},
		{name: "a v1beta1 review is answered", body: edit(func(m, _ map[string]any) { m["apiVersion"] = "admission.k8s.io/v1beta1" }), wantStatus: 200, wantPatch: true},
	}
}

// send posts one hostile request over HTTPS.
func send(ctx context.Context, client *http.Client, url string, c hostileCase) (int, []byte, error) {
	method := c.method
	if method == "" {
		method = http.MethodPost
	}
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
		if c.chunked {
			// A reader of unknown length: the client sends it chunked.
			body = io.MultiReader(body)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return 0, nil, err
	}
	ct := c.contentType
	if ct == "" {
		ct = "application/json"
	}
	req.Header.Set("Content-Type", ct)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func TestHostileInput(t *testing.T) {
	certDir, tlsConfig := newCertDir(t)
	s := startServer(t, serverOptions{certDir: certDir})
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	ctx := context.Background()
	cases := hostileCases(t)
	if len(cases) < 30 {
		t.Fatalf("only %d hostile cases; the issue asks for at least 30", len(cases))
	}
	canary := hostileCase{body: reviewBody(t, "uid-canary", jobKind, "batch", jobObject("canary")), wantStatus: 200, wantPatch: true}

	// Three rounds: a leak or a crash shows up as growth or a dead process.
	const rounds = 3
	for round := 1; round <= rounds; round++ {
		for _, c := range cases {
			t.Run(fmt.Sprintf("round %d: %s", round, c.name), func(t *testing.T) {
				status, body, err := send(ctx, client, s.url, c)
				if err != nil {
					t.Fatalf("request failed: %v\nserver log:\n%s", err, s.log.tail(2000))
				}
				checkAnswer(t, c, status, body)
				if s.proc.Exited() {
					t.Fatalf("the server died\nlog:\n%s", s.log.tail(4000))
				}
				// The server still answers a valid request correctly.
				status, body, err = send(ctx, client, s.url, canary)
				if err != nil {
					t.Fatalf("valid request after the hostile one: %v", err)
				}
				checkAnswer(t, canary, status, body)
			})
		}
	}
	mem, err := proc.ReadMemory(s.proc.Pid())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("server memory after %d hostile requests: RSS %.1f MiB, peak %.1f MiB", rounds*len(cases), mib(mem.RSS), mib(mem.HWM))
	// Bounded: the 10 MiB bodies are refused without being buffered whole,
	// so the peak stays far below what reading every body would take.
	const maxPeak = 256 << 20
	if mem.HWM > maxPeak {
		t.Errorf("peak RSS %.1f MiB is over %d MiB after the hostile table", mib(mem.HWM), maxPeak>>20)
	}
	if got := s.metric(t, `linkerd_inject_policy_requests_total{kind="",operation="",mode="",outcome="panic"}`); got != 0 {
		t.Errorf("%v requests ended in a recovered panic", got)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// checkAnswer compares one answer with the documented one.
func checkAnswer(t *testing.T, c hostileCase, status int, body []byte) {
	t.Helper()
	if status != c.wantStatus {
		t.Fatalf("HTTP %d, want %d; body: %.300s", status, c.wantStatus, body)
	}
	if status != http.StatusOK {
		if !strings.Contains(string(body), c.wantText) {
			t.Errorf("message %q does not contain %q", body, c.wantText)
		}
		return
	}
	var review struct {
		APIVersion string `json:"apiVersion"`
		Response   *struct {
			UID      string   `json:"uid"`
			Allowed  bool     `json:"allowed"`
			Patch    []byte   `json:"patch"`
			Warnings []string `json:"warnings"`
		} `json:"response"`
	}
	if err := json.Unmarshal(body, &review); err != nil || review.Response == nil {
		t.Fatalf("200 answer is not an AdmissionReview with a response (%v): %.300s", err, body)
	}
	r := review.Response
	if !r.Allowed {
		t.Errorf("denied; the webhook must never deny: %.300s", body)
	}
	if r.UID == "" {
		t.Error("answer has no uid")
	}
	if c.wantPatch != (len(r.Patch) > 0) {
		t.Errorf("patch %s, want a patch: %v", r.Patch, c.wantPatch)
	}
	if len(r.Patch) > 0 {
		checkPatchDropsNothing(t, c.body, r.Patch)
	}
	if c.wantInPatch != "" && !strings.Contains(string(r.Patch), c.wantInPatch) {
		t.Errorf("patch %s does not contain %s", r.Patch, c.wantInPatch)
	}
	if c.wantText != "" && !strings.Contains(strings.Join(r.Warnings, "\n"), c.wantText) {
		t.Errorf("warnings %q do not mention %q", r.Warnings, c.wantText)
	}
}

// checkPatchDropsNothing fails on a patch that drops anything from the
// request's object: fields of objects we patch are never silently dropped.
func checkPatchDropsNothing(t *testing.T, review, patch []byte) {
	t.Helper()
	var r struct {
		Request struct {
			Object json.RawMessage `json:"object"`
		} `json:"request"`
	}
	if err := json.Unmarshal(review, &r); err != nil {
		t.Fatalf("the request the patch answers is not JSON: %v", err)
	}
	for _, problem := range patchDrops(r.Request.Object, patch) {
		t.Errorf("%s: %s", problem, patch)
	}
}

// patchDrops applies a JSON patch to object one operation at a time and
// returns what drops something: any remove, and any replace, or add over a
// value already there (an add replaces what is at its path: a whole
// annotations map added over an existing one drops its keys), except on a
// Linkerd or linkerd-inject-policy annotation, which a rule may rewrite as a
// set merge.
func patchDrops(object, patch []byte) []string {
	var doc any
	if err := json.Unmarshal(object, &doc); err != nil {
		return []string{fmt.Sprintf("object is not JSON: %v", err)}
	}
	var ops []struct {
		Op    string          `json:"op"`
		Path  string          `json:"path"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(patch, &ops); err != nil {
		return []string{fmt.Sprintf("patch is not a JSON patch: %v", err)}
	}
	ours := func(path string) bool {
		for _, prefix := range []string{"config.linkerd.io~1", "linkerd.io~1", "linkerd-inject-policy.io~1"} {
			if strings.Contains(path, "/annotations/"+prefix) {
				return true
			}
		}
		return false
	}
	var problems []string
	for _, op := range ops {
		exists, inList, store, err := at(doc, op.Path)
		if err != nil {
			return append(problems, fmt.Sprintf("patch %s %s: %v", op.Op, op.Path, err))
		}
		switch op.Op {
		case "add", "replace":
			if op.Op == "replace" && !exists {
				return append(problems, fmt.Sprintf("patch replaces %s, which is not there", op.Path))
			}
			// An add into a list inserts; anywhere else it replaces.
			if exists && !(inList && op.Op == "add") && !ours(op.Path) {
				problems = append(problems, fmt.Sprintf("patch %ss %s over the value there", op.Op, op.Path))
			}
			var v any
			if err := json.Unmarshal(op.Value, &v); err != nil {
				return append(problems, fmt.Sprintf("patch %s %s: value is not JSON: %v", op.Op, op.Path, err))
			}
			doc = store(v, op.Op == "add")
		case "remove":
			problems = append(problems, fmt.Sprintf("patch removes %s", op.Path))
		default:
			problems = append(problems, fmt.Sprintf("patch has a %q operation on %s", op.Op, op.Path))
		}
	}
	return problems
}

// at resolves a JSON pointer in doc: whether a value is there, whether its
// container is a list, and a function that stores v there (inserting into a
// list when insert is set) and returns the new document.
func at(doc any, pointer string) (exists, inList bool, store func(v any, insert bool) any, err error) {
	if pointer == "" {
		return true, false, func(v any, _ bool) any { return v }, nil
	}
	if !strings.HasPrefix(pointer, "/") {
		return false, false, nil, fmt.Errorf("pointer does not start with /")
	}
	rest := ""
	tok, after, more := strings.Cut(pointer[1:], "/")
	if more {
		rest = "/" + after
	}
	tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
	switch c := doc.(type) {
	case map[string]any:
		child, ok := c[tok]
		if !more {
			return ok, false, func(v any, _ bool) any { c[tok] = v; return c }, nil
		}
		if !ok {
			return false, false, nil, fmt.Errorf("%s is not there", tok)
		}
		exists, inList, st, err := at(child, rest)
		return exists, inList, func(v any, insert bool) any { c[tok] = st(v, insert); return c }, err
	case []any:
		n, convErr := strconv.Atoi(tok)
		if tok == "-" && !more {
			n, convErr = len(c), nil
		}
		if convErr != nil || n < 0 || n > len(c) || (more && n == len(c)) {
			return false, false, nil, fmt.Errorf("index %s out of range", tok)
		}
		if !more {
			return n < len(c), true, func(v any, insert bool) any {
				if insert {
					return slices.Insert(c, n, v)
				}
				c[n] = v
				return c
			}, nil
		}
		exists, inList, st, err := at(c[n], rest)
		return exists, inList, func(v any, insert bool) any { c[n] = st(v, insert); return c }, err
	}
	return false, false, nil, fmt.Errorf("%s is inside a scalar", tok)
}

// The patch check has teeth: every way of dropping a field is caught, and
// what the webhook legitimately does is not.
func TestPatchCheckCatchesEveryDrop(t *testing.T) {
	const object = `{"metadata":{"name":"p","annotations":{"a":"1","config.linkerd.io/opaque-ports":"25"}},"spec":{"containers":[{"name":"c"}]}}`
	const bare = `{"metadata":{"name":"p"}}`
	for _, tc := range []struct {
		name, object, patch string
		want                string // "" means no problem
	}{
		{"adding an annotation next to others drops nothing", object, `[{"op":"add","path":"/metadata/annotations/linkerd.io~1inject","value":"disabled"}]`, ""},
		{"adding an annotations map where there was none drops nothing", bare, `[{"op":"add","path":"/metadata/annotations","value":{"linkerd.io/inject":"disabled"}}]`, ""},
		{"adding a map and then a key in it drops nothing", bare, `[{"op":"add","path":"/metadata/annotations","value":{}},{"op":"add","path":"/metadata/annotations/x","value":"1"}]`, ""},
		{"rewriting a Linkerd annotation as a set merge drops nothing", object, `[{"op":"replace","path":"/metadata/annotations/config.linkerd.io~1opaque-ports","value":"25,3306"}]`, ""},
		{"adding into a list inserts and drops nothing", object, `[{"op":"add","path":"/spec/containers/0","value":{"name":"b"}}]`, ""},
		{"adding an annotations map over an existing one is caught", object, `[{"op":"add","path":"/metadata/annotations","value":{"linkerd.io/inject":"disabled"}}]`, "patch adds /metadata/annotations over the value there"},
		{"adding over a user annotation is caught", object, `[{"op":"add","path":"/metadata/annotations/a","value":"2"}]`, "patch adds /metadata/annotations/a over the value there"},
		{"adding a whole metadata over the existing one is caught", object, `[{"op":"add","path":"/metadata","value":{}}]`, "patch adds /metadata over the value there"},
		{"adding over a key added earlier in the patch is caught", bare, `[{"op":"add","path":"/metadata/labels","value":{"x":"1"}},{"op":"add","path":"/metadata/labels","value":{}}]`, "patch adds /metadata/labels over the value there"},
		{"replacing a user annotation is caught", object, `[{"op":"replace","path":"/metadata/annotations/a","value":"2"}]`, "patch replaces /metadata/annotations/a over the value there"},
		{"replacing a list element is caught", object, `[{"op":"replace","path":"/spec/containers/0","value":{}}]`, "patch replaces /spec/containers/0 over the value there"},
		{"removing anything is caught", object, `[{"op":"remove","path":"/metadata/annotations/linkerd.io~1inject"}]`, "patch removes /metadata/annotations/linkerd.io~1inject"},
		{"a move is caught", object, `[{"op":"move","from":"/metadata/name","path":"/metadata/x"}]`, `patch has a "move" operation on /metadata/x`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(patchDrops([]byte(tc.object), []byte(tc.patch)), "; ")
			if got != tc.want {
				t.Errorf("problems = %q, want %q", got, tc.want)
			}
		})
	}
}
