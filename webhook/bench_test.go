package webhook

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// BenchmarkMutate measures one /mutate request through the handler (decode,
// resolve the mode, evaluate, patch or warn, encode), without TLS. It reports
// only; nothing asserts a time.
func BenchmarkMutate(b *testing.B) {
	cases := []struct {
		name, fixture, mode string
	}{
		{"job enforce", "job", "enforce"},
		{"job audit", "job", "audit"},
		{"traefik enforce", "traefik-deployment", "enforce"},
		{"untouched deployment", "web-deployment", "enforce"},
		{"unsupported kind", "configmap", "enforce"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			body := readReview(b, c.fixture)
			ns := reviewFixture(b, c.fixture).Request.Namespace
			h, err := NewHandler(HandlerOptions{Namespaces: StaticNamespaces{ns: {policy.LabelMode: c.mode}}})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
				}
			}
		})
	}
}
