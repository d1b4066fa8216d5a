package policy

// ReasonAdmissionJob is the reason of the admission-jobs rule.
const ReasonAdmissionJob = "admission_job_never_completes"

const msgAdmissionJob = "admission webhook certificate jobs must complete before the chart's install can go on; with a meshed proxy they never do"

// ruleAdmissionJobs keeps the certificate Jobs of admission webhooks
// (kube-prometheus-stack's and ingress-nginx's kube-webhook-certgen)
// completing, whatever the jobs strategy: they run as Helm hooks, and a
// hook that never completes blocks the whole release. With strategy auto
// (default) they follow the jobs rule's auto decision (left meshed when the
// proxy is a native sidecar; out of the mesh when facts are unknown, as
// before); with disable they are always out of the mesh.
func (e *eval) ruleAdmissionJobs(r *AdmissionJobsRule) {
	targets := e.jobTargets()
	if len(targets) == 0 {
		return
	}
	matched := false
	switch e.kind.name {
	case "Job", "CronJob":
		name, _ := getString(getMap(e.orig, "metadata"), "name")
		matched = anyGlob(r.JobNames, name)
	case "Pod":
		job, _ := ownerNamed(e.orig, "batch", "Job")
		labels := getMap(e.orig, "metadata", "labels")
		l1, _ := getString(labels, "batch.kubernetes.io/job-name")
		l2, _ := getString(labels, "job-name")
		for _, n := range [...]string{job, l1, l2} {
			if n != "" && anyGlob(r.JobNames, n) {
				matched = true
			}
		}
	}
	jobs := &e.cfg.BuiltinRules.Jobs
	for _, t := range targets {
		if matched || e.anyImage(t, r.Images) {
			// auto: the jobs rule's decision, which with facts unknown is
			// disable; an explicit native-sidecar jobs strategy does not
			// apply (these hooks block a Helm release if they hang).
			e.decideJob(t, RuleAdmissionJobs, r.Override, e.jobStrategy(t, r.Strategy), jobs, msgAdmissionJob, ReasonAdmissionJob)
		}
	}
}
