package webhook

import (
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/facts"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// Outcomes recorded in the requests metric.
const (
	OutcomePatched     = "patched"     // enforce: a non-empty patch was returned
	OutcomeWouldPatch  = "would_patch" // audit: changes reported as warnings, object admitted unchanged
	OutcomeUnchanged   = "unchanged"   // nothing to do (mode off, no rule applied, re-invocation)
	OutcomeUnsupported = "unsupported" // a kind, subresource or operation we do not handle: allowed unchanged
	OutcomeError       = "error"       // internal error: HTTP 500, the failurePolicy decides
	OutcomeBadRequest  = "bad_request" // malformed review: HTTP 4xx
	OutcomeTooLarge    = "too_large"   // body over --max-request-bytes: HTTP 413
	OutcomeRejected    = "rejected"    // over --max-bytes-in-flight: HTTP 429, retried by the apiserver
	OutcomeAborted     = "aborted"     // body stalled past --body-read-timeout, client gone, or the apiserver's timeout passed: no answer
	outcomePanic       = "panic"       // recovered panic: HTTP 500
	labelUnknown       = ""            // kind/operation/mode not known (request not decoded)
	metricsNamespace   = "linkerd_inject_policy"
	reloadResultOK     = "success"
	reloadResultFailed = "failure"
)

// Metrics are the Prometheus collectors of the webhook. Create them once per
// registry with NewMetrics; every method is safe for concurrent use.
type Metrics struct {
	requests       *prometheus.CounterVec
	changes        *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	reloads        *prometheus.CounterVec
	reloadFailures prometheus.Counter
	bytesInFlight  prometheus.Gauge
	facts          *prometheus.GaugeVec
}

// NewMetrics creates the webhook's collectors and registers them with reg
// (controller-runtime's metrics.Registry in production, a fresh registry in
// tests). Registering twice on the same registry reuses the collectors already
// there, so a second server in one process shares the counters.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "requests_total",
			Help:      "Admission requests by kind, operation, mode and outcome.",
		}, []string{"kind", "operation", "mode", "outcome"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "changes_total",
			Help:      "Changes made (mode=enforce) or that would have been made (mode=audit), by rule and reason.",
		}, []string{"rule", "reason", "mode"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace,
			Name:      "request_duration_seconds",
			Help:      "Time to answer an admission request, from the first byte read to the response written.",
			// Admission is on the apiserver's write path: resolution where it matters (sub-millisecond to 1s).
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
		}, []string{"kind", "outcome"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "config_reloads_total",
			Help:      "Configuration reload attempts by result (success or failure).",
		}, []string{"result"}),
		reloadFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "config_reload_failures_total",
			Help:      "Configuration files rejected at reload (the previous configuration kept serving).",
		}),
		bytesInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace,
			Name:      "request_bytes_in_flight",
			Help:      "Bytes of AdmissionReview bodies being read or decided now (bounded by --max-bytes-in-flight).",
		}),
		facts: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace,
			Name:      "linkerd_facts",
			Help:      "1 for the state of the facts about the installed Linkerd in force (known, unknown, forbidden), 0 for the others.",
		}, []string{"state"}),
	}
	var err error
	if m.requests, err = register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.changes, err = register(reg, m.changes); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.reloads, err = register(reg, m.reloads); err != nil {
		return nil, err
	}
	if m.reloadFailures, err = register(reg, m.reloadFailures); err != nil {
		return nil, err
	}
	if m.bytesInFlight, err = register(reg, m.bytesInFlight); err != nil {
		return nil, err
	}
	if m.facts, err = register(reg, m.facts); err != nil {
		return nil, err
	}
	return m, nil
}

// register adds c to reg, or returns the equal collector already registered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("register metric: %w", err)
	}
	return c, nil
}

func (m *Metrics) observeRequest(kind, operation, mode, outcome string, seconds float64) {
	m.requests.WithLabelValues(kind, operation, mode, outcome).Inc()
	m.duration.WithLabelValues(kind, outcome).Observe(seconds)
}

func (m *Metrics) observeChange(rule, reason, mode string) {
	m.changes.WithLabelValues(rule, reason, mode).Inc()
}

func (m *Metrics) observeReload(ok bool) {
	if ok {
		m.reloads.WithLabelValues(reloadResultOK).Inc()
		return
	}
	m.reloads.WithLabelValues(reloadResultFailed).Inc()
	m.reloadFailures.Inc()
}

// setFactsState records the state of the Linkerd facts in force (a
// facts.State… constant).
func (m *Metrics) setFactsState(state string) {
	for _, s := range []string{facts.StateKnown, facts.StateUnknown, facts.StateForbidden} {
		v := 0.0
		if s == state {
			v = 1
		}
		m.facts.WithLabelValues(s).Set(v)
	}
}

// labelValues are the label values requests usually carry, so that a label
// value is one of these strings and never a slice of a request body (the
// decoder's strings are; a metric series keeps its label values for the
// life of the process, and with them the whole body they point into).
var labelValues = func() map[string]string {
	m := map[string]string{}
	for _, s := range []string{opCreate, opUpdate, "DELETE", "CONNECT"} {
		m[s] = s
	}
	for _, k := range policy.Kinds() {
		m[k.Kind] = k.Kind
	}
	return m
}()

// labelValue is s as a label value: a known string, or a copy of s.
func labelValue(s string) string {
	if c, ok := labelValues[s]; ok {
		return c
	}
	return strings.Clone(s)
}
