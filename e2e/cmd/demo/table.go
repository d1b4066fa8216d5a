package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// printFacts prints the facts each Linkerd gave the webhook.
func (d *demo) printFacts(w io.Writer) {
	fmt.Fprintln(w, "\nThe Linkerds the webhook stood in front of (read from ConfigMap linkerd/linkerd-config by its informer):")
	for _, p := range d.phases {
		fmt.Fprintf(w, "  %s: %s\n", p.label, p.env.Summary())
	}
}

// printTable prints one line per object as the apiserver stored it.
func printTable(w io.Writer, rows []row) {
	fmt.Fprintln(w, "\nWhat the real apiserver stored (BEFORE: as written in examples/, AFTER: as stored; REASONS: the")
	fmt.Fprintln(w, "decision's, including rules that deliberately left the object alone; PROXY: what the stand-in injector did):")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OBJECT\tNAMESPACE\tLINKERD\tMODE\tRULES APPLIED\tREASONS\tBEFORE\tAFTER\tPROXY\tMADE BY")
	for _, r := range rows {
		proxy := r.proxy
		if proxy == "" {
			proxy = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.object(), r.namespace, r.linkerd, r.mode, r.rules, r.reasons, r.before, r.after, proxy, r.madeBy)
	}
	tw.Flush()
}

// printSideBySide prints the enforce namespaces of the two Linkerds next
// to each other: the same workloads, different decisions.
func printSideBySide(w io.Writer, rows []row) {
	fmt.Fprintf(w, "\nThe same workloads, enforced, side by side: %s under a 2.14-style linkerd-config, %s under a 2.20-style one:\n\n", enforce214, enforce220)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OBJECT\t2.14: AFTER\t2.14: REASONS\t2.14: PROXY\t2.20: AFTER\t2.20: REASONS\t2.20: PROXY")
	for _, a := range rows {
		if a.namespace != enforce214 {
			continue
		}
		b, ok := find(rows, enforce220, a.obj.GetKind(), a.obj.GetName())
		if !ok && a.obj.GetKind() == "Pod" {
			b, ok = findPod(rows, enforce220, a.obj)
		}
		if !ok {
			continue
		}
		dash := func(s string) string {
			if s == "" {
				return "-"
			}
			return s
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", podKey(a), a.after, a.reasons, dash(a.proxy), b.after, b.reasons, dash(b.proxy))
	}
	tw.Flush()
}

// podKey names a row for the side-by-side table: Pods made by controllers
// by their owner, since their names differ between namespaces.
func podKey(r row) string {
	if r.obj.GetKind() != "Pod" {
		return r.object()
	}
	if ref := ownerOf(r.obj); ref != "" {
		return "Pod of " + ref
	}
	return r.object()
}

func ownerOf(obj *unstructured.Unstructured) string {
	for _, ref := range obj.GetOwnerReferences() {
		if ref.Controller != nil && *ref.Controller {
			return ref.Kind + "/" + ref.Name
		}
	}
	return ""
}

// findPod finds the Pod in ns made by the owner named like p's (ReplicaSet
// names carry a hash: compared without it).
func findPod(rows []row, ns string, p *unstructured.Unstructured) (row, bool) {
	want := ownerName(p)
	if want == "" {
		return row{}, false
	}
	for _, r := range rows {
		if r.namespace == ns && r.obj.GetKind() == "Pod" && ownerName(r.obj) == want {
			return r, true
		}
	}
	return row{}, false
}

// ownerName is Kind/name of the controller, ReplicaSet hashes cut off.
func ownerName(obj *unstructured.Unstructured) string {
	for _, ref := range obj.GetOwnerReferences() {
		if ref.Controller == nil || !*ref.Controller {
			continue
		}
		name := ref.Name
		if ref.Kind == "ReplicaSet" {
			if i := strings.LastIndex(name, "-"); i > 0 {
				name = name[:i]
			}
		}
		return ref.Kind + "/" + name
	}
	return ""
}

// printWarnings prints kubectl's warnings as kubectl printed them.
func (d *demo) printWarnings(w io.Writer) {
	fmt.Fprintln(w, "\nWarnings kubectl printed (audit mode admits unchanged and says what enforce would do):")
	if len(d.warnings) == 0 {
		fmt.Fprintln(w, "  (none)")
		return
	}
	for _, wr := range d.warnings {
		fmt.Fprintf(w, "\n$ %s\n", wr.command)
		for _, l := range wr.lines {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
}

// check is one expectation about the stored objects.
type check struct {
	what string
	err  string // empty: passed
}

// find returns the row of kind/name in ns, if any.
func find(rows []row, ns, kind, name string) (row, bool) {
	for _, r := range rows {
		if r.namespace == ns && r.obj.GetKind() == kind && r.obj.GetName() == name {
			return r, true
		}
	}
	return row{}, false
}

// expectAfter checks that an object's AFTER column contains each want.
func expectAfter(rows []row, ns, kind, name string, want ...string) check {
	c := check{what: fmt.Sprintf("%s %s/%s stored with %s", ns, kind, name, strings.Join(want, " "))}
	r, ok := find(rows, ns, kind, name)
	if !ok {
		c.err = "not found"
		return c
	}
	fields := strings.Fields(r.after)
	for _, w := range want {
		var ok bool
		for _, f := range fields {
			// "token=X" also accepts "token=X,X" (one per nodeSet).
			ok = ok || f == w || strings.HasPrefix(w, "token=") && strings.HasPrefix(f, "token=") && sameEach(strings.TrimPrefix(f, "token="), strings.TrimPrefix(w, "token="))
		}
		if !ok {
			c.err = "stored " + r.after
		}
	}
	return c
}

// sameEach reports whether every comma-separated item of list is want.
func sameEach(list, want string) bool {
	for _, it := range strings.Split(list, ",") {
		if it != want {
			return false
		}
	}
	return true
}

// checks lists what the demo must show: every example scenario applied in
// the enforce namespaces as each Linkerd needs it, the served decisions
// equal to policy.Admit's, nothing changed in audit and off, warnings in
// audit.
func checks(rows []row, warnings []warning) []check {
	const enf = enforce214
	var out []check
	jobPods := check{what: enf + " (2.14): every Pod the Job controller made is unmeshed and gets no proxy (except the explicit one)"}
	var n int
	for _, p := range podRows(rows, enf) {
		owner := ownerOf(p.obj)
		if !strings.HasPrefix(owner, "Job/") {
			continue
		}
		n++
		want, proxy := "disabled", "none"
		if owner == "Job/report" {
			want, proxy = "enabled", "sidecar (containers[0])"
		}
		if got := p.obj.GetAnnotations()[policy.AnnotationInject]; got != want || p.proxy != proxy {
			jobPods.err = fmt.Sprintf("pod %s has linkerd.io/inject=%q and proxy %q, want %q and %q", p.obj.GetName(), got, p.proxy, want, proxy)
		}
	}
	if n == 0 && jobPods.err == "" {
		jobPods.err = "no Pods made by the Job controller"
	}
	out = append(out, jobPods)
	native := check{what: enforce220 + " (2.20): every Pod the Job controller made keeps a native-sidecar proxy and no linkerd.io/inject: disabled"}
	n = 0
	for _, p := range podRows(rows, enforce220) {
		if !strings.HasPrefix(ownerOf(p.obj), "Job/") {
			continue
		}
		n++
		if got := p.obj.GetAnnotations()[policy.AnnotationInject]; got == "disabled" || p.proxy != "native sidecar" {
			native.err = fmt.Sprintf("pod %s has linkerd.io/inject=%q and proxy %q", p.obj.GetName(), got, p.proxy)
		}
	}
	if n == 0 && native.err == "" {
		native.err = "no Pods made by the Job controller"
	}
	out = append(out, native)
	traefik := check{what: enf + ": Traefik's Pods run in ingress mode and skip 443"}
	var seen bool
	for _, p := range podRows(rows, enf) {
		if strings.HasPrefix(p.obj.GetName(), "traefik-") {
			seen = true
			ann := p.obj.GetAnnotations()
			if ann[policy.AnnotationInject] != "ingress" || !strings.Contains(ann[policy.AnnotationSkipOutboundPorts], "443") {
				traefik.err = fmt.Sprintf("pod %s: %v", p.obj.GetName(), ann)
			}
		}
	}
	if !seen {
		traefik.err = "no Traefik Pod"
	}
	out = append(out, traefik)
	for _, ns := range []string{enforce214, enforce220} {
		out = append(out,
			expectAfter(rows, ns, "StatefulSet", "mysql", "opaque=3306"),
			expectAfter(rows, ns, "Service", "mysql", "opaque=3306"),
			expectAfter(rows, ns, "StatefulSet", "orders-mysql", "opaque=4406"),
			expectAfter(rows, ns, "Service", "orders-mysql", "opaque=4406"),
			expectAfter(rows, ns, "StatefulSet", "postgresql", "opaque=5432"),
			expectAfter(rows, ns, "Service", "postgresql", "opaque=5432"),
			expectAfter(rows, ns, "Deployment", "mail-postfix", "opaque=25,587"),
			expectAfter(rows, ns, "Service", "mail-postfix", "opaque=25,587"),
			// Both Linkerds project the proxy's token: ECK is left alone.
			expectAfter(rows, ns, "Elasticsearch", "efk", "token=unset"),
			expectAfter(rows, ns, "Kibana", "efk", "token=unset"),
			expectAfter(rows, ns, "Pod", "efk-es-default-0", "token=false"),
			expectReason(rows, ns, "Elasticsearch", "efk", "token_projected"),
			expectAfter(rows, ns, "DaemonSet", "kube-prometheus-stack-prometheus-node-exporter", "inject=disabled"),
			expectAfter(rows, ns, "Job", "report", "inject=enabled"),
		)
	}
	out = append(out,
		expectAfter(rows, enf, "Job", "db-migrate", "inject=disabled"),
		expectReason(rows, enf, "Job", "db-migrate", "job_never_completes"),
		expectReason(rows, enforce220, "Job", "db-migrate", "native_sidecar_completes"),
		expectAfter(rows, "longhorn-system", "Deployment", "longhorn-driver-deployer", "inject=disabled"),
	)
	if r, ok := find(rows, enforce220, "Job", "db-migrate"); ok && strings.Contains(r.after, "inject=") {
		out = append(out, check{what: enforce220 + ": Job/db-migrate stays meshed", err: "stored " + r.after})
	}
	served := check{what: "in every enforce namespace, the webhook stored exactly the rules policy.Admit decides with that Linkerd's facts"}
	for _, r := range rows {
		if (r.namespace == enforce214 || r.namespace == enforce220) && r.before != "-" && r.rules != r.admitRules {
			served.err = fmt.Sprintf("%s in %s: stored rules %s, policy.Admit says %s", r.object(), r.namespace, r.rules, r.admitRules)
		}
	}
	out = append(out, served)
	for _, name := range []string{"Deployment/web", "Service/web"} {
		c := check{what: enf + ": nginx " + name + " untouched"}
		kind, n, _ := strings.Cut(name, "/")
		if r, ok := find(rows, enf, kind, n); !ok {
			c.err = "not found"
		} else if r.rules != "-" || r.after != r.before {
			c.err = fmt.Sprintf("rules %s, before %s, after %s", r.rules, r.before, r.after)
		}
		out = append(out, c)
	}
	for _, ns := range []string{"demo-audit", "demo-off"} {
		c := check{what: ns + ": nothing stored with " + policy.AnnotationApplied}
		for _, r := range rows {
			if r.namespace == ns && r.rules != "-" {
				c.err = r.object() + " has rules " + r.rules
			}
		}
		out = append(out, c)
	}
	audit := check{what: "demo-audit: kubectl printed our audit warnings", err: "no warning from linkerd-inject-policy (audit)"}
	for _, w := range warnings {
		if strings.Contains(w.command, "-n demo-audit") {
			for _, l := range w.lines {
				if strings.Contains(l, "linkerd-inject-policy (audit)") {
					audit.err = ""
				}
			}
		}
	}
	off := check{what: "demo-off: kubectl printed no audit warnings"}
	for _, w := range warnings {
		if strings.Contains(w.command, "-n demo-off") {
			off.err = strings.Join(w.lines, "; ")
		}
	}
	return append(out, audit, off)
}

// expectReason checks that an object's decision gives reason.
func expectReason(rows []row, ns, kind, name, reason string) check {
	c := check{what: fmt.Sprintf("%s %s/%s decided with reason %s", ns, kind, name, reason)}
	r, ok := find(rows, ns, kind, name)
	switch {
	case !ok:
		c.err = "not found"
	case !strings.Contains(r.reasons, reason):
		c.err = "reasons " + r.reasons
	}
	return c
}

// podRows are the Pod rows of ns.
func podRows(rows []row, ns string) []row {
	var out []row
	for _, r := range rows {
		if r.namespace == ns && r.obj.GetKind() == "Pod" {
			out = append(out, r)
		}
	}
	return out
}

// printChecks prints the checks and returns how many failed.
func printChecks(w io.Writer, cs []check) int {
	fmt.Fprintln(w, "\nChecks:")
	failed := 0
	for _, c := range cs {
		if c.err == "" {
			fmt.Fprintf(w, "  ok    %s\n", c.what)
			continue
		}
		failed++
		fmt.Fprintf(w, "  FAIL  %s: %s\n", c.what, c.err)
	}
	if failed == 0 {
		fmt.Fprintf(w, "\nAll %d checks passed: every example scenario was applied by the real apiserver.\n", len(cs))
	} else {
		fmt.Fprintf(w, "\n%d of %d checks failed.\n", failed, len(cs))
	}
	return failed
}
