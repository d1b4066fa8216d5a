package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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

// TestEveryGrowthObjectIsChanged: at its two smallest sizes each growth
// family's object is changed by the default policy, and the handler
// patches it (so the growth benchmarks measure the mutating path; the
// objects are built alike at every size, and the largest are for the
// benchmarks, not for make test's time).
func TestEveryGrowthObjectIsChanged(t *testing.T) {
	cfg := policy.DefaultConfig()
	for _, f := range Families() {
		for _, n := range f.Sizes[:2] {
			t.Run(fmt.Sprintf("%s of size %d is changed and patched", f.Name, n), func(t *testing.T) {
				o := f.Object(n)
				d, err := policy.Evaluate(decode(t, o), policy.Context{Namespace: o.Namespace}, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if !d.Changed() {
					t.Fatal("no rule changed it")
				}
				if _, err := PatchOf(newHandler(t), Review(o, "uid-1")); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestLargestPodIsLargeAndPatched: the largest admissible Pod is within 1 %
// of the size asked for, under the apiserver's 3 MiB, and gets a patch.
func TestLargestPodIsLargeAndPatched(t *testing.T) {
	const want = 3<<20 - 64<<10
	o := LargestPod(want)
	if n := len(o.JSON); n > 3<<20 || n < want*99/100 {
		t.Fatalf("LargestPod(%d) is %d bytes of JSON", want, n)
	}
	if _, err := PatchOf(newHandler(t), Review(o, "uid-2")); err != nil {
		t.Fatal(err)
	}
}

// TestPatchingNoopAnswersWithOurPatch: the patching no-op's answer carries
// byte for byte the patch our handler gives, and the plain no-op none.
func TestPatchingNoopAnswersWithOurPatch(t *testing.T) {
	for _, o := range Objects() {
		t.Run(o.Name+" gets the same patch from both", func(t *testing.T) {
			review := Review(o, "uid-3")
			ours, err := PatchOf(newHandler(t), review)
			if err != nil {
				t.Fatal(err)
			}
			noop, err := PatchOf(NoopWebhook(ours), review)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ours, noop) {
				t.Fatalf("patching no-op answered %s, ours %s", noop, ours)
			}
			if _, err := PatchOf(NoopWebhook(nil), review); err == nil {
				t.Fatal("the plain no-op answered with a patch")
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
	benchHandler(b, true, func(b *testing.B, _ []byte) http.Handler { return newHandler(b) })
}

// BenchmarkNoopHandler is the no-op webhook's handler (controller-runtime's
// admission.Webhook answering allowed, no patch): the baseline of Handler.
func BenchmarkNoopHandler(b *testing.B) {
	benchHandler(b, false, func(*testing.B, []byte) http.Handler { return NoopWebhook(nil) })
}

// BenchmarkPatchingNoopHandler is the patching no-op's handler: the same
// admission.Webhook answering with the patch our handler gives for the
// object, precomputed, without evaluating any policy.
func BenchmarkPatchingNoopHandler(b *testing.B) {
	benchHandler(b, true, func(b *testing.B, review []byte) http.Handler {
		patch, err := PatchOf(newHandler(b), review)
		if err != nil {
			b.Fatal(err)
		}
		return NoopWebhook(patch)
	})
}

func newHandler(tb testing.TB) http.Handler {
	tb.Helper()
	h, err := webhook.NewHandler(webhook.HandlerOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// benchHandler runs the handler that handler builds for each object's review.
func benchHandler(b *testing.B, wantPatch bool, handler func(b *testing.B, review []byte) http.Handler) {
	for _, o := range Objects() {
		b.Run(o.Name, func(b *testing.B) {
			benchReview(b, handler, Review(o, "0f7a4a4e-0000-4000-8000-000000000001"), wantPatch)
		})
	}
}

// benchReview checks that h answers review with allowed (and a patch when
// wantPatch), then measures it.
func benchReview(b *testing.B, handler func(b *testing.B, review []byte) http.Handler, body []byte, wantPatch bool) {
	h := handler(b, body)
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
	if err := json.Unmarshal(rec.Body.Bytes(), &answer); rec.Code != 200 || err != nil || !answer.Response.Allowed || wantPatch && len(answer.Response.Patch) == 0 {
		b.Fatalf("handler answered HTTP %d (%v): %.300s", rec.Code, err, rec.Body)
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
}

// BenchmarkGrowthEvaluate is policy.Evaluate over each growth family at
// each size (issue #17); the report fits the exponent of time over size.
func BenchmarkGrowthEvaluate(b *testing.B) {
	cfg := policy.DefaultConfig()
	for _, f := range Families() {
		for _, n := range f.Sizes {
			b.Run(fmt.Sprintf("%s/n=%d", f.Name, n), func(b *testing.B) {
				o := f.Object(n)
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
}

// BenchmarkGrowthHandler is the whole /mutate handler over the same
// families and sizes.
func BenchmarkGrowthHandler(b *testing.B) {
	for _, f := range Families() {
		for _, n := range f.Sizes {
			b.Run(fmt.Sprintf("%s/n=%d", f.Name, n), func(b *testing.B) {
				benchReview(b, func(b *testing.B, _ []byte) http.Handler { return newHandler(b) },
					Review(f.Object(n), "0f7a4a4e-0000-4000-8000-000000000002"), true)
			})
		}
	}
}
