package policy

import "fmt"

// Reasons of the jobs rule (and of admission-jobs' auto strategy).
const (
	ReasonJobNeverCompletes = "job_never_completes"
	ReasonJobNativeSidecar  = "job_native_sidecar"
	// ReasonNativeSidecarCompletes: a Skip, not a change: the installed
	// Linkerd already runs the proxy as a native sidecar, so the job
	// completes meshed and nothing needs doing.
	ReasonNativeSidecarCompletes = "native_sidecar_completes"
)

const (
	msgJobNeverCompletes = "jobs never complete with a meshed proxy: the proxy keeps running after the job's containers exit"
	msgJobNativeSidecar  = "the proxy runs as a native sidecar, which Kubernetes stops when the job's containers exit, so the job completes (needs Kubernetes 1.29 or later)"
)

// jobDecision is what a job's template needs.
type jobDecision int8

const (
	jobDisable       jobDecision = iota // linkerd.io/inject: disabled
	jobNativeSidecar                    // the native-sidecar annotation, "true"
	jobKeep                             // nothing: the proxy is a native sidecar already
)

// ruleJobs keeps Jobs completing: their pod templates (and Pods owned by a
// Job, for Jobs created before the policy or by other controllers) are
// either kept out of the mesh or meshed with a native-sidecar proxy.
func (e *eval) ruleJobs(r *JobsRule) {
	for _, t := range e.jobTargets() {
		e.decideJob(t, RuleJobs, r.Override, e.jobStrategy(t, r.Strategy), r, msgJobNeverCompletes, ReasonJobNeverCompletes)
	}
}

// jobStrategy resolves a strategy for t to what it does with the facts at
// hand. auto: a proxy the installed Linkerd already runs as a native
// sidecar is kept; native sidecars supported (Linkerd ≥ 2.15, Kubernetes
// ≥ 1.29) but off → the annotation; otherwise, or unknown → disable. A
// template whose author asks for the classic sidecar (the native-sidecar
// annotation "false") is disabled: that proxy would never exit.
func (e *eval) jobStrategy(t *target, strategy string) jobDecision {
	switch strategy {
	case JobsStrategyDisable:
		return jobDisable
	case JobsStrategyNativeSidecar:
		return jobNativeSidecar
	}
	if !e.env.NativeSidecarSupported() {
		return jobDisable
	}
	switch e.nativeSidecarOnTemplate(t) {
	case FactFalse:
		return jobDisable
	case FactTrue:
		return jobKeep
	}
	if e.env.NativeSidecar.True() {
		return jobKeep
	}
	return jobNativeSidecar
}

// nativeSidecarOnTemplate is what t's own native-sidecar annotation says,
// read as the installed Linkerd reads it: GA over beta over alpha, only
// the names that version reads (all of them when it is unknown), and a
// value it cannot parse as unset.
func (e *eval) nativeSidecarOnTemplate(t *target) Fact {
	ann := e.annotations(t)
	for _, k := range [...]string{AnnotationNativeSidecarGA, AnnotationNativeSidecarBeta, AnnotationNativeSidecarAlpha} {
		v, ok := getString(ann, k)
		if !ok || !e.env.readsNativeSidecarName(k) {
			continue
		}
		switch v {
		case "true":
			return FactTrue
		case "false":
			return FactFalse
		}
		return FactUnknown
	}
	return FactUnknown
}

// decideJob carries out d on t for rule.
func (e *eval) decideJob(t *target, rule string, override bool, d jobDecision, r *JobsRule, disableMsg, disableReason string) {
	switch d {
	case jobDisable:
		e.setInject(t, rule, override, "disabled", disableReason, disableMsg)
	case jobNativeSidecar:
		if t.injectBy != "" {
			return // another rule (admission-jobs, unmeshable) already decided
		}
		if v, _ := getString(e.annotations(t), AnnotationInject); v == "disabled" {
			return // no proxy, nothing to run as a sidecar
		}
		t.injectBy = rule
		e.setAnnotation(t, rule, override, r.nativeSidecarKey(e.env), "true", ReasonJobNativeSidecar, msgJobNativeSidecar)
	case jobKeep:
		if t.injectBy != "" {
			return
		}
		if v, _ := getString(e.annotations(t), AnnotationInject); v == "disabled" {
			return // kept out of the mesh by its author: nothing to say
		}
		t.injectBy = rule
		e.skips = append(e.skips, Skip{
			Rule:    rule,
			Reason:  ReasonNativeSidecarCompletes,
			Path:    annotationPath(t, AnnotationInject),
			Message: fmt.Sprintf("left meshed: Linkerd %s runs the proxy as a native sidecar (proxy.nativeSidecar=true), which Kubernetes stops when the job's containers exit, so the job completes", e.env.Linkerd.Raw),
		})
	}
}

// jobTargets are the templates of Jobs and CronJobs, or the Pod itself
// when a Job owns it.
func (e *eval) jobTargets() []*target {
	switch e.kind.name {
	case "Job", "CronJob":
		return e.targets
	case "Pod":
		if _, ok := ownerNamed(e.orig, "batch", "Job"); ok {
			return e.targets
		}
	}
	return nil
}
