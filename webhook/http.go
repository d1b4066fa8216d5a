package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// Defaults of the request bounds (and of the serve command's flags).
const (
	// DefaultMaxRequestBytes is the default limit on an AdmissionReview
	// body: 7 MiB, the same bound controller-runtime uses (an old and a new
	// object of at most 3 MiB each, the apiserver's own limit, plus the
	// envelope).
	DefaultMaxRequestBytes int64 = 7 << 20
	// DefaultMaxBytesInFlight bounds the request bodies being read or
	// decided at once. Decoded, a body costs about 13 times its size
	// (measured: docs/operations.md), so 8 MiB of bodies is two of the
	// largest objects the apiserver admits (3 MiB) at once, about 80 MiB
	// of heap; the chart's memory limit is sized for that.
	DefaultMaxBytesInFlight int64 = 8 << 20
	// DefaultBodyReadTimeout is how long a client may take to send the
	// body once its headers are in; a client that stalls is dropped.
	DefaultBodyReadTimeout = 10 * time.Second
	// defaultReviewTimeout bounds a decision when the apiserver does not
	// say its own timeout (the ?timeout= query parameter): the longest a
	// webhook may be given.
	defaultReviewTimeout = 30 * time.Second
)

// endpoint is the HTTP side of /mutate. controller-runtime's admission.Webhook
// answers every problem (oversized or malformed body, panic) with HTTP 200
// and allowed=false, which the apiserver treats as a denial whatever the
// failurePolicy says. We must never deny, so this endpoint answers problems
// with real HTTP status codes: 4xx for bad input, 429 over the bytes-in-flight
// budget, 500 for internal errors and panics, and nothing at all (the
// connection is dropped) when the apiserver has given up. The apiserver then
// applies the webhook's failurePolicy.
type endpoint struct {
	admitter    *admitter
	maxBytes    int64
	budget      int64
	inFlight    atomic.Int64
	readTimeout time.Duration
	metrics     *Metrics
	log         logr.Logger
}

// HandlerOptions configure NewHandler.
type HandlerOptions struct {
	// Config holds the configuration in force; nil means policy.DefaultConfig().
	Config *ConfigStore
	// Namespaces gives namespace labels; nil means unknown (default mode).
	Namespaces NamespaceLabels
	// Env gives the facts of the installed Linkerd and Kubernetes in force
	// (facts.Watcher.Current); nil means unknown.
	Env func() policy.Environment
	// MaxRequestBytes bounds the request body; 0 means DefaultMaxRequestBytes.
	MaxRequestBytes int64
	// MaxBytesInFlight bounds the bodies of requests being handled at once;
	// 0 means DefaultMaxBytesInFlight.
	MaxBytesInFlight int64
	// BodyReadTimeout bounds reading one body; 0 means DefaultBodyReadTimeout.
	BodyReadTimeout time.Duration
	// Metrics may be nil: collectors then live in a private registry.
	Metrics *Metrics
	// Log receives the decisions (changes at info, every one at debug);
	// the zero Logger discards.
	Log logr.Logger
}

// NewHandler returns the /mutate HTTP handler: decode the AdmissionReview,
// admit the object (policy.Admit), patch or warn, encode the answer. Run
// uses it; it is exported for handler-level tests and benchmarks.
func NewHandler(o HandlerOptions) (http.Handler, error) {
	return newEndpoint(o)
}

func newEndpoint(o HandlerOptions) (*endpoint, error) {
	if o.Config == nil {
		o.Config = NewConfigStore(nil)
	}
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if o.MaxBytesInFlight <= 0 {
		o.MaxBytesInFlight = DefaultMaxBytesInFlight
	}
	if o.BodyReadTimeout <= 0 {
		o.BodyReadTimeout = DefaultBodyReadTimeout
	}
	if o.Log.GetSink() == nil {
		o.Log = logr.Discard()
	}
	if o.Env == nil {
		o.Env = func() policy.Environment { return policy.Environment{} }
	}
	if o.Metrics == nil {
		m, err := NewMetrics(prometheus.NewRegistry())
		if err != nil {
			return nil, err
		}
		o.Metrics = m
	}
	return &endpoint{
		admitter:    &admitter{config: o.Config, namespaces: o.Namespaces, env: o.Env, metrics: o.Metrics, log: o.Log, zlog: decisionZap(o.Log)},
		maxBytes:    o.MaxRequestBytes,
		budget:      o.MaxBytesInFlight,
		readTimeout: o.BodyReadTimeout,
		metrics:     o.Metrics,
		log:         o.Log,
	}, nil
}

// httpError is a request the endpoint answers with an HTTP error status:
// the one error path from decoding and admitting to the response.
type httpError struct {
	code    int
	outcome string
	msg     string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) *httpError {
	return &httpError{code: http.StatusBadRequest, outcome: OutcomeBadRequest, msg: fmt.Sprintf(format, args...)}
}

// drainLimit bounds how much of an oversized body is read and thrown away
// so the client, still sending, can read our 413; beyond it the server
// closes the connection and the client sees a reset.
const drainLimit = 32 << 20

func discardBody(body io.Reader) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, drainLimit))
}

// reserve takes n bytes of the in-flight budget, or reports that they do
// not fit. A single request always fits when nothing else is in flight, so
// a body under --max-request-bytes is never refused on an idle server.
func (e *endpoint) reserve(n int64) bool {
	now := e.inFlight.Add(n)
	if now > e.budget && now != n {
		e.inFlight.Add(-n)
		return false
	}
	e.metrics.bytesInFlight.Set(float64(now))
	return true
}

func (e *endpoint) release(n int64) {
	e.metrics.bytesInFlight.Set(float64(e.inFlight.Add(-n)))
}

// result is what deciding one request gives the HTTP side.
type result struct {
	body    []byte
	verdict verdict
	err     error
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	v := verdict{mode: labelUnknown}
	defer func() {
		p := recover()
		if p == http.ErrAbortHandler {
			v.outcome = OutcomeAborted
		} else if p != nil {
			v.outcome = outcomePanic
			e.log.Error(fmt.Errorf("panic: %v", p), "recovered from panic while handling an admission request", "uid", v.uid, "kind", v.kind)
			http.Error(w, fmt.Sprintf("internal error handling admission request %s (recovered panic; see the webhook's log)", v.uid), http.StatusInternalServerError)
		}
		e.metrics.observeRequest(v.kind, v.operation, v.mode, v.outcome, time.Since(start).Seconds())
		if p == http.ErrAbortHandler {
			panic(p)
		}
	}()

	// Everything the client sends must arrive within the read deadline,
	// including bodies read only to be thrown away.
	rc := http.NewResponseController(w)
	// Recorders in tests do not support deadlines: ignore ErrNotSupported.
	_ = rc.SetReadDeadline(time.Now().Add(e.readTimeout))

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		v.outcome = OutcomeBadRequest
		http.Error(w, "method "+r.Method+" not allowed: POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	if !isJSON(r.Header.Get("Content-Type")) {
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
	// A body of unknown length may be as large as the limit.
	weight := r.ContentLength
	if weight < 0 {
		weight = e.maxBytes
	}
	if !e.reserve(weight) {
		v.outcome = OutcomeRejected
		// The apiserver's client retries a 429 after Retry-After, within
		// the webhook's timeout.
		w.Header().Set("Retry-After", "1")
		// Do not read the body to reuse the connection: that is what the
		// budget refuses to spend.
		w.Header().Set("Connection", "close")
		http.Error(w, fmt.Sprintf("too many request bytes in flight (over --max-bytes-in-flight %d): retry", e.budget), http.StatusTooManyRequests)
		return
	}
	defer e.release(weight)

	body, err := e.readBody(rc, r)
	if err != nil {
		var he *httpError
		if errors.As(err, &he) {
			v.outcome = he.outcome
			if he.outcome == OutcomeTooLarge {
				discardBody(r.Body)
			}
			http.Error(w, he.msg, he.code)
			return
		}
		// The client stalled past the read deadline or went away mid-body.
		v.outcome = OutcomeAborted
		e.log.Info("request body not received", "reason", err.Error(), "remote", r.RemoteAddr)
		w.Header().Set("Connection", "close")
		http.Error(w, "read request body: "+err.Error(), http.StatusRequestTimeout)
		return
	}

	// The decision's context ends with the apiserver's timeout; the
	// request's own context also ends when the client goes away, and when
	// the server shuts down (in-flight requests are drained then, not
	// dropped).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), reviewTimeout(r))
	defer cancel()
	gone := func() error {
		if err := context.Cause(r.Context()); err != nil && !errors.Is(err, errShuttingDown) {
			return err
		}
		return context.Cause(ctx)
	}
	// The policy runs to its end (it is pure and linear in the object);
	// when the apiserver has stopped waiting by then, nothing is answered.
	res := e.decide(ctx, body, r.RemoteAddr, gone)
	if why := gone(); why != nil {
		v = res.verdict
		e.abandon(r, why)
	}
	v = res.verdict
	if res.err != nil {
		var he *httpError
		if !errors.As(res.err, &he) {
			he = &httpError{code: http.StatusInternalServerError, outcome: OutcomeError, msg: res.err.Error()}
		}
		v.outcome = he.outcome
		msg := he.msg
		if v.uid != "" {
			msg = "admission request " + v.uid + ": " + msg
		}
		http.Error(w, msg, he.code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if _, err := w.Write(res.body); err != nil {
		e.log.Error(err, "write admission response", "uid", v.uid)
	}
}

// errShuttingDown is the cause with which the server ends requests'
// contexts when it shuts down (see Run).
var errShuttingDown = errors.New("webhook server shutting down")

// abandon gives up a request whose client is gone or whose apiserver
// timeout has passed: no answer at all, the server drops the connection.
func (e *endpoint) abandon(r *http.Request, why error) {
	e.log.Info("admission abandoned: the apiserver stopped waiting", "reason", why.Error(), "remote", r.RemoteAddr)
	panic(http.ErrAbortHandler)
}

// readBody reads the whole body within the read deadline; a body over the
// limit is an *httpError (413). The buffer is fresh for each request and
// is never reused: the decoded review's strings point into it.
func (e *endpoint) readBody(rc *http.ResponseController, r *http.Request) ([]byte, error) {
	// Not http.MaxBytesReader: it makes the server close the connection at
	// once, and a client still sending then sees a reset instead of our 413.
	n := r.ContentLength
	if n < 0 {
		n = 512
	}
	buf := make([]byte, 0, n+1)
	body, err := readAllInto(buf, io.LimitReader(r.Body, e.maxBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > e.maxBytes {
		return nil, &httpError{code: http.StatusRequestEntityTooLarge, outcome: OutcomeTooLarge,
			msg: fmt.Sprintf("request body is over the limit of %d bytes (--max-request-bytes)", e.maxBytes)}
	}
	// Deciding may outlast the body deadline: lift it, or the server's
	// check for a closed connection would cancel the request at it.
	_ = rc.SetReadDeadline(time.Time{})
	return body, nil
}

// readAllInto is io.ReadAll into a buffer sized from Content-Length.
func readAllInto(b []byte, r io.Reader) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// isJSON reports whether a Content-Type is application/json (with any
// parameters); the apiserver sends exactly that, which needs no parsing.
func isJSON(contentType string) bool {
	if contentType == "application/json" {
		return true
	}
	ct, _, err := mime.ParseMediaType(contentType)
	return err == nil && ct == "application/json"
}

// reviewTimeout is the apiserver's own timeout for this call, which it
// sends as the query parameter timeout (such as "10s").
func reviewTimeout(r *http.Request) time.Duration {
	if r.URL.RawQuery == "" {
		return defaultReviewTimeout
	}
	if s := r.URL.Query().Get("timeout"); s != "" {
		if d, err := time.ParseDuration(s); err == nil && d > 0 {
			return d
		}
	}
	return defaultReviewTimeout
}

// decide decodes, admits and encodes one review. A panic here is a 500.
func (e *endpoint) decide(ctx context.Context, body []byte, remote string, gone func() error) (res result) {
	defer func() {
		if p := recover(); p != nil {
			e.log.Error(fmt.Errorf("panic: %v", p), "recovered from panic while handling an admission request", "uid", res.verdict.uid, "kind", res.verdict.kind)
			res.err = &httpError{code: http.StatusInternalServerError, outcome: outcomePanic,
				msg: "internal error (recovered panic; see the webhook's log)"}
		}
	}()
	res.verdict.mode = labelUnknown
	review, err := decodeReview(body)
	if err != nil {
		res.verdict.outcome = OutcomeBadRequest
		e.log.Info("bad request", "reason", err.Error(), "remote", remote)
		return result{verdict: res.verdict, err: err}
	}
	if gone() != nil {
		return res
	}
	req := review.Request
	res.verdict = verdict{uid: req.UID, kind: labelValue(req.Kind.Kind), operation: labelValue(req.Operation), mode: labelUnknown}
	resp, err := e.admitter.review(ctx, req, &res.verdict)
	if err != nil {
		var he *httpError
		if errors.As(err, &he) && he.code < http.StatusInternalServerError {
			e.log.Info("bad request", "reason", he.msg, "uid", req.UID, "kind", req.Kind.Kind, "remote", remote)
		} else {
			e.log.Error(err, "admission failed", "uid", req.UID, "kind", req.Kind.Kind)
		}
		res.err = err
		return res
	}
	res.body = appendReview(make([]byte, 0, reviewSize(review.APIVersion, req.UID, &resp)), review.APIVersion, req.UID, &resp)
	return res
}
