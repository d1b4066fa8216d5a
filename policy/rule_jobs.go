package policy

// Reasons of the jobs rule.
const (
	ReasonJobNeverCompletes = "job_never_completes"
	ReasonJobNativeSidecar  = "job_native_sidecar"
)

const (
	msgJobNeverCompletes = "jobs never complete with a meshed proxy: the proxy keeps running after the job's containers exit"
	msgJobNativeSidecar  = "the proxy runs as a native sidecar, which Kubernetes stops when the job's containers exit, so the job completes (needs Kubernetes 1.29 or later)"
)

// ruleJobs keeps Jobs completing: their pod templates (and Pods owned by a
// Job, for Jobs created before the policy or by other controllers) are
// either kept out of the mesh or meshed with a native-sidecar proxy.
func (e *eval) ruleJobs(r *JobsRule) {
	for _, t := range e.jobTargets() {
		if r.Strategy == JobsStrategyNativeSidecar {
			if t.injectBy != "" {
				continue // another rule (admission-jobs, unmeshable) already decided
			}
			if v, _ := getString(e.annotations(t), AnnotationInject); v == "disabled" {
				continue // no proxy, nothing to run as a sidecar
			}
			e.setAnnotation(t, RuleJobs, r.Override, r.NativeSidecarAnnotation, "true", ReasonJobNativeSidecar, msgJobNativeSidecar)
			continue
		}
		e.setInject(t, RuleJobs, r.Override, "disabled", ReasonJobNeverCompletes, msgJobNeverCompletes)
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
