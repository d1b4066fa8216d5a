package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// printTable prints one line per object as the apiserver stored it.
func printTable(w io.Writer, rows []row) {
	fmt.Fprintln(w, "\nWhat the real apiserver stored (BEFORE: as written in examples/, AFTER: as stored):")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OBJECT\tNAMESPACE\tMODE\tRULES APPLIED\tBEFORE\tAFTER\tMADE BY")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.object(), r.namespace, r.mode, r.rules, r.before, r.after, r.madeBy)
	}
	tw.Flush()
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
			// "token=true" also accepts "token=true,true" (one per nodeSet).
			ok = ok || f == w || strings.HasPrefix(w, "token=") && strings.Trim(strings.TrimPrefix(f, "token="), "true,") == "" && strings.HasPrefix(f, "token=true")
		}
		if !ok {
			c.err = "stored " + r.after
		}
	}
	return c
}

// checks lists what the demo must show: every example scenario applied in the
// enforce namespace, nothing changed in audit and off, warnings in audit.
func checks(rows []row, warnings []warning) []check {
	const enf = "demo-enforce"
	var out []check
	jobPods := check{what: enf + ": every Pod the Job controller made is unmeshed (except the explicit one)"}
	var n int
	for _, p := range podsOf(rows, enf) {
		for _, ref := range p.OwnerReferences {
			if ref.Kind != "Job" {
				continue
			}
			n++
			want := "disabled"
			if ref.Name == "report" {
				want = "enabled"
			}
			if got := p.Annotations[policy.AnnotationInject]; got != want {
				jobPods.err = fmt.Sprintf("pod %s has linkerd.io/inject=%q, want %q", p.Name, got, want)
			}
		}
	}
	if n == 0 && jobPods.err == "" {
		jobPods.err = "no Pods made by the Job controller"
	}
	out = append(out, jobPods)
	traefik := check{what: enf + ": Traefik's Pods run in ingress mode and skip 443"}
	var seen bool
	for _, p := range podsOf(rows, enf) {
		if strings.HasPrefix(p.Name, "traefik-") {
			seen = true
			if p.Annotations[policy.AnnotationInject] != "ingress" || !strings.Contains(p.Annotations[policy.AnnotationSkipOutboundPorts], "443") {
				traefik.err = fmt.Sprintf("pod %s: %v", p.Name, p.Annotations)
			}
		}
	}
	if !seen {
		traefik.err = "no Traefik Pod"
	}
	out = append(out, traefik,
		expectAfter(rows, enf, "StatefulSet", "mysql", "opaque=3306"),
		expectAfter(rows, enf, "Service", "mysql", "opaque=3306"),
		expectAfter(rows, enf, "StatefulSet", "postgresql", "opaque=5432"),
		expectAfter(rows, enf, "Service", "postgresql", "opaque=5432"),
		expectAfter(rows, enf, "Deployment", "mail-postfix", "opaque=25,587"),
		expectAfter(rows, enf, "Service", "mail-postfix", "opaque=25,587"),
		expectAfter(rows, enf, "Elasticsearch", "efk", "token=true"),
		expectAfter(rows, enf, "Kibana", "efk", "token=true"),
		expectAfter(rows, enf, "Pod", "efk-es-default-0", "token=true"),
		expectAfter(rows, enf, "DaemonSet", "kube-prometheus-stack-prometheus-node-exporter", "inject=disabled"),
		expectAfter(rows, "longhorn-system", "Deployment", "longhorn-driver-deployer", "inject=disabled"),
		expectAfter(rows, enf, "Job", "report", "inject=enabled"),
	)
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
