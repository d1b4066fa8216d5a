package webhook

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	admissionv1beta1 "k8s.io/api/admission/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// DefaultMaxRequestBytes is the default limit on an AdmissionReview body:
// 7 MiB, the same bound controller-runtime uses (an old and a new object of
// at most 3 MiB each, the apiserver's own limit, plus the envelope).
const DefaultMaxRequestBytes int64 = 7 << 20

// endpoint is the HTTP side of /mutate. controller-runtime's admission.Webhook
// answers every problem (oversized or malformed body, panic) with HTTP 200
// and allowed=false, which the apiserver treats as a denial whatever the
// failurePolicy says. We must never deny, so this endpoint answers problems
// with real HTTP status codes: 413 and 400 for bad input, 500 for internal
// errors and panics. The apiserver then applies the webhook's failurePolicy.
type endpoint struct {
	mutator  *Mutator
	maxBytes int64
	metrics  *Metrics
	log      logr.Logger
}

// HandlerOptions configure NewHandler.
type HandlerOptions struct {
	// Config holds the configuration in force; nil means policy.DefaultConfig().
	Config *ConfigStore
	// Namespaces gives namespace labels; nil means unknown (default mode).
	Namespaces NamespaceLabels
	// MaxRequestBytes bounds the request body; 0 means DefaultMaxRequestBytes.
	MaxRequestBytes int64
	// Metrics may be nil: collectors then live in a private registry.
	Metrics *Metrics
	// Log receives one line per decision; the zero Logger discards.
	Log logr.Logger
}

// NewHandler returns the /mutate HTTP handler: decode the AdmissionReview,
// evaluate the policy, patch or warn, encode the answer. Run uses it; it is
// exported for handler-level tests and benchmarks.
func NewHandler(o HandlerOptions) (http.Handler, error) {
	if o.Config == nil {
		o.Config = NewConfigStore(nil)
	}
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if o.Log.GetSink() == nil {
		o.Log = logr.Discard()
	}
	if o.Metrics == nil {
		m, err := NewMetrics(prometheus.NewRegistry())
		if err != nil {
			return nil, err
		}
		o.Metrics = m
	}
	return &endpoint{
		mutator:  NewMutator(o.Config, o.Namespaces, o.Metrics, o.Log),
		maxBytes: o.MaxRequestBytes,
		metrics:  o.Metrics,
		log:      o.Log,
	}, nil
}

// drainLimit bounds how much of an oversized body is read and thrown away
// so the client, still sending, can read our 413; beyond it the server
// closes the connection and the client sees a reset.
const drainLimit = 32 << 20

func discardBody(body io.Reader) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, drainLimit))
}

// reviewEnvelope is decoded first: the AdmissionReview with its request.
type reviewEnvelope struct {
	APIVersion string                        `json:"apiVersion"`
	Kind       string                        `json:"kind"`
	Request    *admissionv1.AdmissionRequest `json:"request"`
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	v := verdict{mode: labelUnknown}
	var uid string
	defer func() {
		if p := recover(); p != nil {
			v.outcome = outcomePanic
			e.log.Error(fmt.Errorf("panic: %v", p), "recovered from panic while handling an admission request", "uid", uid, "kind", v.kind)
			http.Error(w, fmt.Sprintf("internal error handling admission request %s (recovered panic; see the webhook's log)", uid), http.StatusInternalServerError)
		}
		e.metrics.observeRequest(v.kind, v.operation, v.mode, v.outcome, time.Since(start).Seconds())
	}()

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		v.outcome = OutcomeBadRequest
		http.Error(w, "method "+r.Method+" not allowed: POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" {
		v.outcome = OutcomeBadRequest
		http.Error(w, fmt.Sprintf("Content-Type %q not supported: send an AdmissionReview as application/json", r.Header.Get("Content-Type")), http.StatusUnsupportedMediaType)
		return
	}
	if r.ContentLength > e.maxBytes {
		v.outcome = OutcomeTooLarge
		discardBody(r.Body)
		http.Error(w, fmt.Sprintf("request body of %d bytes is over the limit of %d bytes (--max-request-bytes)", r.ContentLength, e.maxBytes), http.StatusRequestEntityTooLarge)
		return
	}
	// Not http.MaxBytesReader: it makes the server close the connection at
	// once, and a client still sending then sees a reset instead of our 413.
	body, err := io.ReadAll(io.LimitReader(r.Body, e.maxBytes+1))
	if err != nil {
		v.outcome = OutcomeBadRequest
		http.Error(w, "read request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if int64(len(body)) > e.maxBytes {
		v.outcome = OutcomeTooLarge
		discardBody(r.Body)
		http.Error(w, fmt.Sprintf("request body is over the limit of %d bytes (--max-request-bytes)", e.maxBytes), http.StatusRequestEntityTooLarge)
		return
	}

	review, msg := decodeReview(body)
	if msg != "" {
		v.outcome = OutcomeBadRequest
		e.log.Info("bad request", "reason", msg, "remote", r.RemoteAddr)
		http.Error(w, msg, http.StatusBadRequest)
		return
	}
	req := admission.Request{AdmissionRequest: *review.Request}
	uid = string(req.UID)

	resp, got := e.mutator.review(r.Context(), req)
	v = got
	if !resp.Allowed {
		// The mutator never denies: a refusal is an error to report as such.
		code := http.StatusInternalServerError
		text := "internal error"
		if resp.Result != nil {
			if resp.Result.Code >= 400 && resp.Result.Code <= 599 {
				code = int(resp.Result.Code)
			}
			text = resp.Result.Message
		}
		if code < http.StatusInternalServerError {
			e.log.Info("bad request", "reason", text, "uid", uid, "kind", v.kind, "remote", r.RemoteAddr)
		}
		http.Error(w, fmt.Sprintf("admission request %s: %s", uid, text), code)
		return
	}
	if err := resp.Complete(req); err != nil {
		v.outcome = OutcomeError
		e.log.Error(err, "encode admission response", "uid", uid)
		http.Error(w, fmt.Sprintf("admission request %s: encode response: %v", uid, err), http.StatusInternalServerError)
		return
	}
	out, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: review.typeMeta(),
		Response: &resp.AdmissionResponse,
	})
	if err != nil {
		v.outcome = OutcomeError
		e.log.Error(err, "encode admission review", "uid", uid)
		http.Error(w, fmt.Sprintf("admission request %s: encode response: %v", uid, err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if _, err := w.Write(out); err != nil {
		e.log.Error(err, "write admission response", "uid", uid)
	}
}

// decodeReview parses and checks an AdmissionReview; msg says what is wrong
// in words a person can act on.
func decodeReview(body []byte) (review reviewEnvelope, msg string) {
	if len(body) == 0 {
		return review, "empty request body: expected an AdmissionReview (admission.k8s.io/v1) JSON object"
	}
	if err := json.Unmarshal(body, &review); err != nil {
		return review, "request body is not an AdmissionReview JSON object: " + err.Error()
	}
	if review.Kind != "AdmissionReview" ||
		(review.APIVersion != admissionv1.SchemeGroupVersion.String() && review.APIVersion != admissionv1beta1.SchemeGroupVersion.String()) {
		return review, fmt.Sprintf("request body has apiVersion %q and kind %q: expected apiVersion admission.k8s.io/v1, kind AdmissionReview", review.APIVersion, review.Kind)
	}
	switch {
	case review.Request == nil:
		return review, "AdmissionReview has no request"
	case review.Request.UID == "":
		return review, "AdmissionReview request has no uid"
	case review.Request.Kind.Kind == "":
		return review, fmt.Sprintf("AdmissionReview request %s has no kind", review.Request.UID)
	}
	op := review.Request.Operation
	if (op == admissionv1.Create || op == admissionv1.Update) && len(review.Request.Object.Raw) == 0 {
		return review, fmt.Sprintf("AdmissionReview request %s (%s %s) has no object", review.Request.UID, op, review.Request.Kind.Kind)
	}
	return review, ""
}

// typeMeta answers in the version the request was sent in.
func (r reviewEnvelope) typeMeta() metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: r.APIVersion, Kind: "AdmissionReview"}
}
