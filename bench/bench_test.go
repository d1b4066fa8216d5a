package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"gomodules.xyz/jsonpatch/v2"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/webhook"
)

func decode(tb testing.TB, o Object) *unstructured.Unstructured {
	tb.Helper()
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(o.JSON); err != nil {
		tb.Fatalf("%s: %v", o.Name, err)
	}
	return u
}

// TestEveryBenchmarkObjectIsChanged keeps the benchmarks honest: each case
// must exercise a rule that changes the object, not the no-op path.
func TestEveryBenchmarkObjectIsChanged(t *testing.T) {
	cfg := policy.DefaultConfig()
	for _, o := range Objects() {
		t.Run(o.Name+" is changed by the default policy", func(t *testing.T) {
			d, err := policy.Evaluate(decode(t, o), policy.Context{Namespace: o.Namespace}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !d.Changed() {
				t.Fatalf("%s: no rule changed it", o.Name)
			}
			if ops := policy.Diff(decode(t, o).Object, d.Object.Object); len(ops) == 0 {
				t.Fatal("policy.Diff: want a non-empty patch")
			}
			mutated, err := d.Object.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			ops, err := jsonpatch.CreatePatch(o.JSON, mutated)
			if err != nil || len(ops) == 0 {
				t.Fatalf("patch %v, %v: want a non-empty patch", ops, err)
			}
		})
	}
}

// BenchmarkEvaluate is the policy engine alone on a decoded object.
func BenchmarkEvaluate(b *testing.B) {
	cfg := policy.DefaultConfig()
	for _, o := range Objects() {
		b.Run(o.Name, func(b *testing.B) {
			obj := decode(b, o)
			ctx := policy.Context{Namespace: o.Namespace}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := policy.Evaluate(obj, ctx, cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEvaluatePatch is Evaluate plus what the handler does to turn the
// decision into a JSON patch: policy.Diff of the decoded request object and
// the copy-on-write result (shared subtrees are skipped, nothing is encoded).
func BenchmarkEvaluatePatch(b *testing.B) {
	benchEvaluateAndPatch(b, func(_ Object, obj *unstructured.Unstructured, d policy.Decision) error {
		if len(policy.Diff(obj.Object, d.Object.Object)) == 0 {
			return errors.New("empty patch")
		}
		return nil
	})
}

// BenchmarkEvaluateRawPatch is the previous way, kept for comparison:
// encode the mutated object and diff it with the raw request bytes
// (admission.PatchResponseFromRaw).
func BenchmarkEvaluateRawPatch(b *testing.B) {
	benchEvaluateAndPatch(b, func(o Object, _ *unstructured.Unstructured, d policy.Decision) error {
		mutated, err := d.Object.MarshalJSON()
		if err != nil {
			return err
		}
		_, err = jsonpatch.CreatePatch(o.JSON, mutated)
		return err
	})
}

// benchEvaluateAndPatch runs Evaluate then patch on every benchmark object.
func benchEvaluateAndPatch(b *testing.B, patch func(o Object, obj *unstructured.Unstructured, d policy.Decision) error) {
	cfg := policy.DefaultConfig()
	for _, o := range Objects() {
		b.Run(o.Name, func(b *testing.B) {
			obj := decode(b, o)
			ctx := policy.Context{Namespace: o.Namespace}
			b.ReportAllocs()
			for b.Loop() {
				d, err := policy.Evaluate(obj, ctx, cfg)
				if err != nil {
					b.Fatal(err)
				}
				if err := patch(o, obj, d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHandler is the whole /mutate handler without the network:
// decode the AdmissionReview, evaluate, patch, encode the answer.
func BenchmarkHandler(b *testing.B) {
	for _, o := range Objects() {
		b.Run(o.Name, func(b *testing.B) {
			h, err := webhook.NewHandler(webhook.HandlerOptions{})
			if err != nil {
				b.Fatal(err)
			}
			body := Review(o, "0f7a4a4e-0000-4000-8000-000000000001")
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, webhook.Path, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			h.ServeHTTP(rec, req)
			var answer struct {
				Response struct {
					Allowed bool   `json:"allowed"`
					Patch   []byte `json:"patch"`
				} `json:"response"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &answer); rec.Code != 200 || err != nil || !answer.Response.Allowed || len(answer.Response.Patch) == 0 {
				b.Fatalf("handler answered HTTP %d (%v): %s", rec.Code, err, rec.Body)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodPost, webhook.Path, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("HTTP %d", rec.Code)
				}
			}
		})
	}
}
