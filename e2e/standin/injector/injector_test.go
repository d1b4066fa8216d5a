package injector

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"gomodules.xyz/jsonpatch/v2"
)

func TestStandInDecidesLikeLinkerdsInjector(t *testing.T) {
	enabledNS := func(context.Context, string) (map[string]string, error) {
		return map[string]string{"linkerd.io/inject": "enabled"}, nil
	}
	plainNS := func(context.Context, string) (map[string]string, error) { return nil, nil }
	cases := []struct {
		name   string
		ns     NamespaceAnnotations
		pod    string
		inject bool
	}{
		{"pod in an enabled namespace is injected", enabledNS, `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"app"}]}}`, true},
		{"pod disabled by its own annotation is not injected", enabledNS, `{"metadata":{"name":"p","annotations":{"linkerd.io/inject":"disabled"}},"spec":{"containers":[{"name":"app"}]}}`, false},
		{"ingress pod in a plain namespace is injected", plainNS, `{"metadata":{"name":"p","annotations":{"linkerd.io/inject":"ingress"}},"spec":{"containers":[{"name":"app"}]}}`, true},
		{"host network pod is never injected", enabledNS, `{"metadata":{"name":"p"},"spec":{"hostNetwork":true,"containers":[{"name":"app"}]}}`, false},
		{"pod in a plain namespace is not injected", plainNS, `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"app"}]}}`, false},
		{"pod that already has the proxy is not injected twice", enabledNS, `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"app"},{"name":"linkerd-proxy"}]}}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inj := New(tc.ns)
			review := admissionv1.AdmissionReview{
				TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
				Request: &admissionv1.AdmissionRequest{
					UID: types.UID("1"), Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
					Namespace: "ns", Operation: admissionv1.Create,
				},
			}
			review.Request.Object.Raw = []byte(tc.pod)
			body, _ := json.Marshal(review)
			rec := httptest.NewRecorder()
			inj.ServeHTTP(rec, httptest.NewRequest("POST", "/", bytes.NewReader(body)))
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
				t.Fatalf("bad response %s: %v", rec.Body.String(), err)
			}
			if !out.Response.Allowed || out.Response.UID != "1" {
				t.Fatalf("response = %+v", out.Response)
			}
			if got := len(out.Response.Patch) > 0; got != tc.inject {
				t.Fatalf("patched = %v, want %v (patch %s)", got, tc.inject, out.Response.Patch)
			}
			records := inj.Records()
			if len(records) != 1 || records[0].Injected != tc.inject || records[0].Name != "p" {
				t.Fatalf("records = %+v", records)
			}
			if tc.inject {
				var ops []jsonpatch.Operation
				if err := json.Unmarshal(out.Response.Patch, &ops); err != nil {
					t.Fatalf("patch: %v", err)
				}
				var sawContainer, sawVersion bool
				for _, op := range ops {
					sawContainer = sawContainer || op.Path == "/spec/containers/1"
					sawVersion = sawVersion || op.Path == "/metadata/annotations" || op.Path == "/metadata/annotations/linkerd.io~1proxy-version"
				}
				if !sawContainer || !sawVersion {
					t.Fatalf("patch %s lacks the proxy container or version annotation", out.Response.Patch)
				}
			}
		})
	}
}
