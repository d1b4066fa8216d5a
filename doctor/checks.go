package doctor

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// admit runs the one admission semantics on a top-level object (or a bare
// pod, or a Service) and turns what it would change into findings:
// opaque-ports on a Service is service_not_opaque, everything else
// policy_drift; the annotation lint's findings keep their codes.
func (s *scan) admit(obj runtime.Object, ref Ref, workload string) error {
	meta, err := apimeta.Accessor(obj)
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	ns := s.namespaces[ref.Namespace]
	a, err := policy.Admit(&unstructured.Unstructured{Object: u}, policy.Context{
		Namespace:       ref.Namespace,
		NamespaceLabels: ns.labels,
		Env:             s.env,
	}, s.opts.Config)
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	for _, f := range a.Findings {
		s.add(Finding{
			Code: f.Code, Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name, Workload: workload,
			Message: f.Path + ": " + f.Message,
			Fix:     "kubectl edit " + strings.ToLower(ref.Kind) + "/" + shellQuote(ref.Name) + kubectlNS(ref.Namespace),
		})
	}
	if a.Mode != policy.ModeEnforce && a.Mode != policy.ModeAudit {
		return nil
	}
	var drift, opaque []policy.Change
	for _, c := range a.Decision.Changes {
		if ref.Kind == "Service" && c.Rule == policy.RuleOpaquePorts && c.Path == "metadata.annotations["+policy.AnnotationOpaquePorts+"]" {
			opaque = append(opaque, c)
		} else {
			drift = append(drift, c)
		}
	}
	for _, c := range opaque {
		overwrite := ""
		if _, ok := meta.GetAnnotations()[policy.AnnotationOpaquePorts]; ok {
			overwrite = " --overwrite"
		}
		s.add(Finding{
			Code: CodeServiceOpaque, Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name, Workload: workload,
			Message: fmt.Sprintf("the opaque-ports rule would set %s=%q: these ports carry protocols where the server speaks first (such as MySQL, PostgreSQL, SMTP), so without it every new connection from a meshed client waits for Linkerd's protocol detection to time out",
				policy.AnnotationOpaquePorts, c.Value),
			Fix: "kubectl annotate service " + shellQuote(ref.Name) + kubectlNS(ref.Namespace) + " " + shellQuote(policy.AnnotationOpaquePorts+"="+c.Value) + overwrite,
		})
	}
	if len(drift) > 0 {
		s.add(Finding{
			Code: CodePolicyDrift, Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name, Workload: workload,
			Message: driftMessage(a.Mode, drift),
			Fix:     s.driftFix(ref),
		})
	}
	return nil
}

func driftMessage(mode policy.Mode, changes []policy.Change) string {
	var b strings.Builder
	if mode == policy.ModeAudit {
		b.WriteString("the policy would change it (its namespace is in audit mode, which only reports): ")
	} else {
		b.WriteString("the policy would change it today, so it was admitted before the webhook enforced or before its configuration changed: ")
	}
	for i, c := range changes {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s sets %s", c.Rule, c.Path)
		if c.Value != "" {
			fmt.Fprintf(&b, "=%q", c.Value)
		}
		if c.Message != "" {
			b.WriteString(" (" + strings.TrimSuffix(c.Message, ".") + ")")
		}
	}
	return b.String()
}

// driftFix pipes the live object through check (the same policy) and
// replaces it.
func (s *scan) driftFix(ref Ref) string {
	cfg := ""
	if s.opts.ConfigPath != "" {
		cfg = " --config " + shellQuote(s.opts.ConfigPath)
	}
	return "kubectl get " + strings.ToLower(ref.Kind) + " " + shellQuote(ref.Name) + kubectlNS(ref.Namespace) +
		" -o yaml | linkerd-inject-policy check -f -" + cfg + " | kubectl replace -f -"
}

func (s *scan) add(f Finding) { s.findings = append(s.findings, f) }

// pod checks one pod: what only a running pod shows (a proxy holding a
// Job open, a missing proxy, an old trust root) and, for bare pods, the
// policy.
func (s *scan) pod(p *corev1.Pod) error {
	top, owned := s.topLevel(&p.ObjectMeta)
	workload := ""
	if owned {
		workload = top.Kind + "/" + top.Name
	}
	if !owned {
		if err := s.admit(p, Ref{"Pod", p.Namespace, p.Name}, ""); err != nil {
			return err
		}
	}
	if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return nil
	}
	base := Finding{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, Workload: workload}
	if owned {
		base.owner = top
	}
	if f, ok := jobStuckOnProxy(p); ok {
		f.Kind, f.Namespace, f.Name, f.Workload, f.owner = base.Kind, base.Namespace, base.Name, base.Workload, base.owner
		job := metav1.GetControllerOf(&p.ObjectMeta).Name
		f.Fix = "kubectl delete job " + shellQuote(job) + kubectlNS(p.Namespace)
		if top.Kind == "CronJob" {
			f.Message += fmt.Sprintf("; the next Job of CronJob %s will hang the same way until its template runs the proxy as a native sidecar or without one (see policy_drift for it)", top.Name)
		}
		s.add(f)
	}
	why, ok, err := s.needsRestart(p, top, owned)
	if err != nil {
		return err
	}
	if ok {
		f := base
		f.Code = CodeNeedsRestart
		f.Message = why
		f.Fix = restartFix(p, top, owned)
		s.add(f)
	}
	if hasProxy(p) && s.trustRoot != "" {
		if got, ok := p.Annotations[AnnotationTrustRoot]; ok && got != s.trustRoot {
			f := base
			f.Code = CodeStaleTrustRoot
			f.Message = fmt.Sprintf("injected with trust root sha256 %s, but ConfigMap %s/%s now holds %s: the proxy trusts only the bundle it started with, so it rejects peers whose certificates chain to the new anchor",
				short(got), s.opts.LinkerdNamespace, TrustRootsConfigMap, short(s.trustRoot))
			f.Fix = restartFix(p, top, owned)
			s.add(f)
		}
	}
	return nil
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12] + "…"
	}
	return sum
}

// hasProxy reports whether the pod runs linkerd-proxy, as a classic or a
// native sidecar.
func hasProxy(p *corev1.Pod) bool {
	return slices.ContainsFunc(p.Spec.Containers, isProxy) || slices.ContainsFunc(p.Spec.InitContainers, isProxy)
}

func isProxy(c corev1.Container) bool { return c.Name == ProxyContainer }

// jobStuckOnProxy: a Job's pod whose own containers have all terminated
// while linkerd-proxy still runs (the classic sidecar in containers, or a
// native sidecar the kubelet has not stopped).
func jobStuckOnProxy(p *corev1.Pod) (Finding, bool) {
	c := metav1.GetControllerOf(&p.ObjectMeta)
	if c == nil || c.Kind != "Job" {
		return Finding{}, false
	}
	how := ""
	for _, st := range p.Status.ContainerStatuses {
		if st.Name == ProxyContainer && st.State.Running != nil {
			how = "as a classic sidecar, which nothing stops"
		}
	}
	for _, st := range p.Status.InitContainerStatuses {
		if st.Name == ProxyContainer && st.State.Running != nil {
			how = "as a native sidecar the kubelet has not stopped"
		}
	}
	if how == "" {
		return Finding{}, false
	}
	var done []string
	for _, ct := range p.Spec.Containers {
		if isProxy(ct) {
			continue
		}
		st := containerStatus(p.Status.ContainerStatuses, ct.Name)
		if st == nil || st.State.Terminated == nil {
			return Finding{}, false
		}
		done = append(done, fmt.Sprintf("%s: exit %d", ct.Name, st.State.Terminated.ExitCode))
	}
	if len(done) == 0 {
		return Finding{}, false
	}
	return Finding{
		Code: CodeJobStuckOnProxy,
		Message: fmt.Sprintf("the containers of Job %s's pod have finished (%s) but %s keeps running %s, so the Job never completes",
			c.Name, strings.Join(done, ", "), ProxyContainer, how),
	}, true
}

func containerStatus(sts []corev1.ContainerStatus, name string) *corev1.ContainerStatus {
	for i := range sts {
		if sts[i].Name == name {
			return &sts[i]
		}
	}
	return nil
}

// needsRestart: no proxy, although the pod (or its workload's template, or
// its namespace) asks for injection and Linkerd's injector would have
// injected it.
func (s *scan) needsRestart(p *corev1.Pod, top Ref, owned bool) (string, bool, error) {
	if hasProxy(p) || p.Spec.HostNetwork {
		return "", false, nil
	}
	if c := metav1.GetControllerOf(&p.ObjectMeta); c != nil && c.Kind == "Job" {
		// A Job's pod ends by itself; what matters is the next run, which
		// the jobs rule keeps out of the mesh or gives a native sidecar.
		return "", false, nil
	}
	if _, mirror := p.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return "", false, nil
	}
	ns := s.namespaces[p.Namespace]
	if slices.Contains(injectorSkipsNamespaces, p.Namespace) || ns.labels[LabelAdmissionWebhooks] == "disabled" {
		return "", false, nil
	}
	value, where := "", ""
	if v, ok := p.Annotations[policy.AnnotationInject]; ok {
		value, where = v, "the pod's annotation"
	} else if v, ok := s.templateInject(p, top, owned); ok {
		value, where = v, "the pod template of "+top.Kind+" "+top.Name
	} else if v, ok := ns.annotations[policy.AnnotationInject]; ok {
		value, where = v, "namespace "+p.Namespace
	}
	if value != "enabled" && value != "ingress" {
		return "", false, nil
	}
	// A new pod passes the policy first: if it would keep the pod out of
	// the mesh (unmeshable workloads, say), a restart changes nothing.
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(p)
	if err != nil {
		return "", false, fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	a, err := policy.Admit(&unstructured.Unstructured{Object: u}, policy.Context{Namespace: p.Namespace, NamespaceLabels: ns.labels, Env: s.env}, s.opts.Config)
	if err != nil {
		return "", false, fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	if a.Mode == policy.ModeEnforce && a.Decision.Object.GetAnnotations()[policy.AnnotationInject] == "disabled" {
		return "", false, nil
	}
	return fmt.Sprintf("no %s although %s asks for injection (%s: %s): the pod was created before that, while Linkerd's injector was down, or was skipped; a new pod gets the proxy",
		ProxyContainer, where, policy.AnnotationInject, value), true, nil
}

// templateInject is the inject annotation of the template the pod was made
// from: its direct controller's (a ReplicaSet, a Job) or the top-level
// workload's, whose template may have changed since.
func (s *scan) templateInject(p *corev1.Pod, top Ref, owned bool) (string, bool) {
	if !owned {
		return "", false
	}
	if c := metav1.GetControllerOf(&p.ObjectMeta); c != nil {
		if v, ok := s.tmplAnn[Ref{c.Kind, p.Namespace, c.Name}]; ok {
			return v, true
		}
	}
	v, ok := s.tmplAnn[top]
	return v, ok
}

// restartable kinds are those `kubectl rollout restart` (and Restart)
// handle.
func restartable(kind string) bool {
	return kind == "Deployment" || kind == "StatefulSet" || kind == "DaemonSet"
}

// restartFix is the command that replaces the pod by a new one.
func restartFix(p *corev1.Pod, top Ref, owned bool) string {
	switch {
	case owned && restartable(top.Kind):
		return "kubectl rollout restart " + strings.ToLower(top.Kind) + "/" + shellQuote(top.Name) + kubectlNS(p.Namespace)
	case owned:
		// A ReplicaSet or Job makes a new pod from its template.
		return "kubectl delete pod " + shellQuote(p.Name) + kubectlNS(p.Namespace)
	}
	return "kubectl get pod " + shellQuote(p.Name) + kubectlNS(p.Namespace) + " -o yaml | kubectl replace --force -f -"
}
