package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// FuzzMutateEndpoint sends arbitrary bodies to /mutate: every answer must be
// a well-formed allow (200), a client error or an evaluation error (500), and
// never a panic or a denial.
func FuzzMutateEndpoint(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "reviews", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"apps","version":"v1","kind":"Deployment"},"operation":"CREATE","object":{"apiVersion":"apps/v1","kind":"Deployment","spec":{"template":"not a map"}}}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"batch","version":"v1","kind":"CronJob"},"operation":"UPDATE","object":{"apiVersion":"batch/v1","kind":"CronJob","spec":{"jobTemplate":{"spec":{"template":{"metadata":{"annotations":{"linkerd.io/inject":7}}}}}}}}}`))

	h, err := NewHandler(HandlerOptions{Namespaces: StaticNamespaces{"batch": {policy.LabelMode: "audit"}}, MaxRequestBytes: 1 << 20})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			var r admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || r.Response == nil {
				t.Fatalf("200 without an AdmissionReview response (%v): %s", err, rec.Body.String())
			}
			if !r.Response.Allowed {
				t.Fatalf("denied: %s", rec.Body.String())
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		case http.StatusInternalServerError:
			// An object the policy cannot evaluate is an internal error for
			// the failurePolicy to decide; a panic is a bug.
			if strings.Contains(rec.Body.String(), "recovered panic") {
				t.Fatalf("panic for body %q: %s", body, rec.Body.String())
			}
		default:
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body.String())
		}
	})
}

// FuzzJSONDecoderMatchesUnstructured holds the handler's JSON decoder equal
// to the one unstructured.Unstructured uses: same values, same types, and
// an error exactly when that one errs.
func FuzzJSONDecoderMatchesUnstructured(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "reviews", "*.json"))
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{`"\ud83d\ude00 \ud83d x \udc00\u0041"`, `[1, -0, 1.0, 1e3, 9223372036854775807, 9223372036854775808, -1.5E-3]`,
		`{"a":1,"a":2}`, `"bad \xff\xc3 utf8"`, `[]`, `{}`, `null`, `tru`, `[1,]`, `{"a" 1}`, `01`, `1.`, `"\q"`, "\"\t\"", ` {"k": [true, false, null]} `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want any
		wantErr := utiljson.Unmarshal(data, &want)
		got, gotErr := decodeJSONValue(data)
		if (wantErr != nil) != (gotErr != nil) {
			t.Fatalf("%q: util/json error %v, ours %v", data, wantErr, gotErr)
		}
		if wantErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: util/json gives %#v, ours %#v", data, want, got)
		}
	})
}
