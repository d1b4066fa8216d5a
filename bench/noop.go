package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// NoopWebhook is the baseline handler of bench/cmd/noop-webhook and of the
// NoopHandler benchmarks: controller-runtime's admission.Webhook answering
// every review with allowed and, when patch is not nil, that JSON patch
// (the same bytes every time: nothing is evaluated or computed per request).
func NoopWebhook(patch []byte) *admission.Webhook {
	if patch == nil {
		return &admission.Webhook{Handler: admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
			return admission.Allowed("")
		})}
	}
	pt := admissionv1.PatchTypeJSONPatch
	return &admission.Webhook{Handler: admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
		return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: true, Patch: patch, PatchType: &pt}}
	})}
}

// PatchOf POSTs review to h (in process, no network) and returns the JSON
// patch of its answer: what the patching no-op is given to answer with.
func PatchOf(h http.Handler, review []byte) ([]byte, error) {
	req := httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(review))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var answer struct {
		Response *struct {
			Allowed bool   `json:"allowed"`
			Patch   []byte `json:"patch"`
		} `json:"response"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &answer); rec.Code != http.StatusOK || err != nil || answer.Response == nil {
		return nil, fmt.Errorf("handler answered HTTP %d (%v): %.300s", rec.Code, err, rec.Body)
	}
	if !answer.Response.Allowed || len(answer.Response.Patch) == 0 {
		return nil, fmt.Errorf("handler answered without a patch: %.300s", rec.Body)
	}
	return answer.Response.Patch, nil
}
