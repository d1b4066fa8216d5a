package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// Example directories with a fixed namespace of their own, applied once.
var ownNamespace = map[string]string{"longhorn": "longhorn-system"}

// Example directories that hold no Kubernetes objects.
var notManifests = map[string]bool{"config": true}

// Kinds the table shows (ServiceAccounts, Secrets and ReplicaSets are noise here).
var shownKinds = []schema.GroupVersionResource{
	{Group: "batch", Version: "v1", Resource: "cronjobs"},
	{Group: "batch", Version: "v1", Resource: "jobs"},
	{Group: "apps", Version: "v1", Resource: "deployments"},
	{Group: "apps", Version: "v1", Resource: "statefulsets"},
	{Group: "apps", Version: "v1", Resource: "daemonsets"},
	{Group: "elasticsearch.k8s.elastic.co", Version: "v1", Resource: "elasticsearches"},
	{Group: "kibana.k8s.elastic.co", Version: "v1", Resource: "kibanas"},
	{Version: "v1", Resource: "services"},
	{Version: "v1", Resource: "pods"},
}

type demo struct {
	c    *cluster.Cluster
	repo string
	log  io.Writer

	// before holds the key annotations of each object as written in examples/,
	// by "Kind/name"; written the objects themselves.
	before  map[string]string
	written map[string]*unstructured.Unstructured
	// dirs are the example directories applied.
	dirs []string
	// warnings are kubectl's stderr lines starting with "Warning:", per command.
	warnings []warning
	// namespaces maps each namespace used to its mode as the table shows it;
	// phase to the Linkerd it was applied under, env to that Linkerd's facts
	// and labels to its labels.
	namespaces map[string]string
	phase      map[string]string
	env        map[string]policy.Environment
	labels     map[string]map[string]string
	// phases are the Linkerds in the order applied, with their facts.
	phases []phaseFacts
}

type phaseFacts struct {
	label string
	env   policy.Environment
}

type warning struct {
	command string
	lines   []string
}

func (d *demo) clients() (kubernetes.Interface, dynamic.Interface, error) {
	// The webhook's warnings on the dry-run probes are not the demo's output
	// (kubectl's warnings are, below the table).
	rc := rest.CopyConfig(d.c.RESTConfig)
	rc.WarningHandler = rest.NoWarnings{}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, fmt.Errorf("client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, nil, fmt.Errorf("client: %w", err)
	}
	return cs, dyn, nil
}

// waitWebhook waits until the apiserver calls the webhook: a dry-run Job in
// an enforce namespace comes back with linkerd.io/inject=disabled.
func (d *demo) waitWebhook(ctx context.Context) error {
	_, dyn, err := d.clients()
	if err != nil {
		return err
	}
	if err := d.c.CreateNamespace(ctx, "demo-probe", map[string]string{policy.LabelMode: string(policy.ModeEnforce)}); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	job := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "batch/v1", "kind": "Job",
		"metadata": map[string]any{"generateName": "probe-"},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"restartPolicy": "Never", "containers": []any{map[string]any{"name": "c", "image": "busybox"}},
		}}},
	}}
	return cluster.Poll(ctx, "the apiserver to call the webhook", func(ctx context.Context) (bool, error) {
		out, err := dyn.Resource(shownKinds[1]).Namespace("demo-probe").Create(ctx, job, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return false, err
		}
		v, _, _ := unstructured.NestedString(out.Object, "spec", "template", "metadata", "annotations", policy.AnnotationInject)
		return v == "disabled", nil
	})
}

// prepare reads every example as written.
func (d *demo) prepare() error {
	entries, err := os.ReadDir(filepath.Join(d.repo, "examples"))
	if err != nil {
		return fmt.Errorf("read examples: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() && !notManifests[e.Name()] {
			d.dirs = append(d.dirs, e.Name())
		}
	}
	d.before = map[string]string{}
	d.written = map[string]*unstructured.Unstructured{}
	for _, dir := range d.dirs {
		if err := d.readBefore(filepath.Join(d.repo, "examples", dir)); err != nil {
			return err
		}
	}
	d.namespaces = map[string]string{}
	d.phase = map[string]string{}
	d.env = map[string]policy.Environment{}
	d.labels = map[string]map[string]string{}
	return nil
}

// applyPhase creates the namespaces of one Linkerd and applies every
// example into each (and, with first, the examples that bring their own
// namespace).
func (d *demo) applyPhase(ctx context.Context, first bool, label string, env policy.Environment, namespaces []demoNamespace) error {
	d.phases = append(d.phases, phaseFacts{label: label, env: env})
	cs, _, err := d.clients()
	if err != nil {
		return err
	}
	for _, ns := range namespaces {
		// Linkerd reads the annotation; many install guides set the label too.
		labels := map[string]string{"linkerd.io/inject": "enabled", policy.LabelMode: string(ns.mode), labelStandIn: "true"}
		obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.name, Labels: labels, Annotations: map[string]string{"linkerd.io/inject": "enabled"}}}
		if _, err := cs.CoreV1().Namespaces().Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create namespace %s: %w", ns.name, err)
		}
		d.namespaces[ns.name] = string(ns.mode)
		d.phase[ns.name], d.env[ns.name], d.labels[ns.name] = label, env, labels
	}
	start := time.Now()
	for _, ns := range namespaces {
		for _, dir := range d.dirs {
			if _, own := ownNamespace[dir]; own {
				continue
			}
			if err := d.kubectl(ctx, "apply", "-n", ns.name, "-f", filepath.Join("examples", dir)); err != nil {
				return err
			}
		}
		// The CronJob runs nightly; start one run now, as an operator would.
		if err := d.kubectl(ctx, "create", "job", "-n", ns.name, "nightly-backup-now", "--from=cronjob/nightly-backup"); err != nil {
			return err
		}
	}
	if first {
		for dir, ns := range ownNamespace {
			if err := d.kubectl(ctx, "apply", "-f", filepath.Join("examples", dir)); err != nil {
				return err
			}
			d.namespaces[ns] = "enforce (defaultMode)"
			d.phase[ns], d.env[ns], d.labels[ns] = label, env, map[string]string{}
		}
	}
	fmt.Fprintf(d.log, "%s: applied every example into %d namespace(s) in %s\n", label, len(namespaces), since(start))
	return nil
}

// waitFacts waits until the webhook decides by env: a Job gets the
// decision env gives it, and a Kibana gets the token only without
// projected tokens. Both come from policy.Admit, the webhook's own
// decision, so this proves its informer saw the ConfigMap.
func (d *demo) waitFacts(ctx context.Context, env policy.Environment) error {
	want := func(obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
		obj = obj.DeepCopy()
		obj.SetNamespace("demo-probe")
		a, err := policy.Admit(obj, policy.Context{Namespace: "demo-probe", NamespaceLabels: map[string]string{policy.LabelMode: string(policy.ModeEnforce)}, Env: env}, nil)
		if err != nil {
			return nil, err
		}
		return a.Decision.Object, nil
	}
	job, err := want(probeJob())
	if err != nil {
		return err
	}
	inject, _, _ := unstructured.NestedString(job.Object, "spec", "template", "metadata", "annotations", policy.AnnotationInject)
	if err := d.waitDecision(ctx, inject); err != nil {
		return err
	}
	kb, ok := d.written["Kibana/efk"]
	if !ok {
		return nil
	}
	kbWant, err := want(kb)
	if err != nil {
		return err
	}
	token, _, _ := unstructured.NestedBool(kbWant.Object, "spec", "podTemplate", "spec", "automountServiceAccountToken")
	_, dyn, err := d.clients()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return cluster.Poll(ctx, fmt.Sprintf("the webhook to follow linkerd-config (a Kibana with the token: %v)", token), func(ctx context.Context) (bool, error) {
		probe := kb.DeepCopy()
		probe.SetName("")
		probe.SetGenerateName("probe-")
		out, err := dyn.Resource(shownKinds[6]).Namespace("demo-probe").Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return false, err
		}
		got, _, _ := unstructured.NestedBool(out.Object, "spec", "podTemplate", "spec", "automountServiceAccountToken")
		return got == token, nil
	})
}

// kubectl runs the real kubectl from the repository root and keeps the
// warnings it printed.
func (d *demo) kubectl(ctx context.Context, args ...string) error {
	full := append([]string(nil), args...)
	for i, a := range full {
		if strings.HasPrefix(a, "examples") {
			full[i] = filepath.Join(d.repo, a)
		}
	}
	_, stderr, err := d.c.Kubectl(ctx, nil, full...)
	var lines []string
	for _, l := range strings.Split(string(stderr), "\n") {
		if strings.HasPrefix(l, "Warning:") {
			lines = append(lines, l)
		}
	}
	if len(lines) > 0 {
		d.warnings = append(d.warnings, warning{command: "kubectl " + strings.Join(args, " "), lines: lines})
	}
	return err
}

// readBefore records the key annotations of each object in dir as written.
func (d *demo) readBefore(dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read %s: %w", f, err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return fmt.Errorf("decode %s: %w", f, err)
			}
			if m == nil {
				continue
			}
			u := &unstructured.Unstructured{Object: m}
			d.before[u.GetKind()+"/"+u.GetName()] = keyAnnotations(u)
			d.written[u.GetKind()+"/"+u.GetName()] = u
		}
	}
	return nil
}

// waitForPods waits (bounded) until the controller manager has made the
// Pods of every Job, Deployment and StatefulSet; what is still missing then
// simply shows as absent in the table.
func (d *demo) waitForPods(ctx context.Context) {
	cs, _, err := d.clients()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	start := time.Now()
	err = cluster.Poll(ctx, "the controller manager to make the Pods", func(ctx context.Context) (bool, error) {
		for ns := range d.namespaces {
			pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			owners := map[string]bool{}
			for _, p := range pods.Items {
				for _, r := range p.OwnerReferences {
					owners[r.Kind+"/"+r.Name] = true
				}
			}
			jobs, err := cs.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			for _, j := range jobs.Items {
				if !owners["Job/"+j.Name] {
					return false, nil
				}
			}
			sets, err := cs.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			for _, s := range sets.Items {
				if !owners["StatefulSet/"+s.Name] {
					return false, nil
				}
			}
			rss, err := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			deps, err := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			for _, dep := range deps.Items {
				var has bool
				for _, rs := range rss.Items {
					if metav1.IsControlledBy(&rs, &dep) && owners["ReplicaSet/"+rs.Name] {
						has = true
					}
				}
				if !has {
					return false, nil
				}
			}
		}
		return true, nil
	})
	if err != nil {
		fmt.Fprintf(d.log, "not every Pod was made within 60s (%v); the table shows what exists\n", err)
		return
	}
	fmt.Fprintf(d.log, "the controller manager made every Pod in %s\n", since(start))
}

// row is one line of the table.
type row struct {
	obj       *unstructured.Unstructured
	namespace string
	mode      string
	linkerd   string // the Linkerd it was applied under
	rules     string
	// reasons are policy.Admit's for the object as written, with the
	// namespace's facts ("-" for objects made by controllers); admitRules
	// the rules it says change it.
	reasons, admitRules string
	before              string
	after               string
	proxy               string // Pods: how the stand-in injected the proxy
	madeBy              string
}

func (r row) object() string { return r.obj.GetKind() + "/" + r.obj.GetName() }

// collect reads every shown object back from the apiserver.
func (d *demo) collect(ctx context.Context) ([]row, error) {
	cs, dyn, err := d.clients()
	if err != nil {
		return nil, err
	}
	var names []string
	for ns := range d.namespaces {
		names = append(names, ns)
	}
	sort.Strings(names)
	var rows []row
	for _, ns := range names {
		for _, gvr := range shownKinds {
			list, err := dyn.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return nil, fmt.Errorf("list %s in %s: %w", gvr.Resource, ns, err)
			}
			for i := range list.Items {
				obj := &list.Items[i]
				r := row{
					obj:       obj,
					namespace: ns,
					mode:      d.namespaces[ns],
					rules:     obj.GetAnnotations()[policy.AnnotationApplied],
					after:     keyAnnotations(obj),
					before:    "-",
				}
				if r.rules == "" {
					r.rules = "-"
				}
				r.linkerd = d.phase[ns]
				r.reasons, r.admitRules = "-", "-"
				if b, ok := d.before[r.object()]; ok && !isControlled(obj) {
					r.before = b
					r.reasons, r.admitRules = d.admitReasons(d.written[r.object()], ns)
				}
				if obj.GetKind() == "Pod" {
					r.proxy = proxyText(obj)
				}
				r.madeBy = madeBy(ctx, cs, obj)
				rows = append(rows, r)
			}
		}
	}
	return rows, nil
}

// admitReasons is what policy.Admit, the webhook's decision, says of obj
// as written when admitted into ns with the namespace's facts.
func (d *demo) admitReasons(obj *unstructured.Unstructured, ns string) (reasons, rules string) {
	if obj == nil {
		return "-", "-"
	}
	obj = obj.DeepCopy()
	if obj.GetNamespace() == "" {
		obj.SetNamespace(ns)
	}
	a, err := policy.Admit(obj, policy.Context{Namespace: ns, NamespaceLabels: d.labels[ns], Env: d.env[ns]}, nil)
	if err != nil {
		return "error: " + err.Error(), "-"
	}
	var rs, ruleList []string
	add := func(list *[]string, s string) {
		for _, x := range *list {
			if x == s {
				return
			}
		}
		*list = append(*list, s)
	}
	for _, c := range a.Decision.Changes {
		add(&rs, c.Reason)
		add(&ruleList, c.Rule)
	}
	for _, s := range a.Decision.Skipped {
		add(&rs, s.Reason+" ("+s.Rule+")")
	}
	sort.Strings(ruleList)
	rules = strings.Join(ruleList, ",")
	if rules == "" || a.Mode != policy.ModeEnforce {
		rules = "-"
	}
	reasons = strings.Join(rs, ",")
	switch {
	case a.Mode == policy.ModeOff:
		reasons = "mode_off (" + a.ModeReason + ")"
	case reasons == "":
		reasons = "-"
	case a.Mode == policy.ModeAudit:
		reasons = "would: " + reasons
	}
	return reasons, rules
}

func isControlled(obj *unstructured.Unstructured) bool {
	return metav1.GetControllerOfNoCopy(obj) != nil
}

// madeBy says who created obj: kubectl (from examples/), or the controller
// manager on behalf of its owner chain.
func madeBy(ctx context.Context, cs kubernetes.Interface, obj *unstructured.Unstructured) string {
	ref := metav1.GetControllerOfNoCopy(obj)
	if ref == nil {
		return "kubectl"
	}
	chain := ref.Kind + "/" + ref.Name
	if ref.Kind == "ReplicaSet" {
		if rs, err := cs.AppsV1().ReplicaSets(obj.GetNamespace()).Get(ctx, ref.Name, metav1.GetOptions{}); err == nil {
			if owner := metav1.GetControllerOfNoCopy(rs); owner != nil {
				chain = owner.Kind + "/" + owner.Name + " > " + chain
			}
		}
	}
	if ref.Kind == "CronJob" {
		return "kubectl create job --from " + chain
	}
	return "controller-manager (" + chain + ")"
}

// keyAnnotations summarises what the policy acts on, for one object.
func keyAnnotations(obj *unstructured.Unstructured) string {
	var ann map[string]string
	var parts []string
	switch obj.GetKind() {
	case "Pod", "Service":
		ann = obj.GetAnnotations()
	case "CronJob":
		ann, _, _ = unstructured.NestedStringMap(obj.Object, "spec", "jobTemplate", "spec", "template", "metadata", "annotations")
	case "Elasticsearch":
		sets, _, _ := unstructured.NestedSlice(obj.Object, "spec", "nodeSets")
		var tokens []string
		for _, s := range sets {
			m, _ := s.(map[string]any)
			v, found, _ := unstructured.NestedBool(m, "podTemplate", "spec", "automountServiceAccountToken")
			tokens = append(tokens, boolText(v, found))
		}
		parts = append(parts, "token="+strings.Join(tokens, ","))
	case "Kibana":
		v, found, _ := unstructured.NestedBool(obj.Object, "spec", "podTemplate", "spec", "automountServiceAccountToken")
		parts = append(parts, "token="+boolText(v, found))
	default:
		ann, _, _ = unstructured.NestedStringMap(obj.Object, "spec", "template", "metadata", "annotations")
	}
	if v, ok := ann[policy.AnnotationInject]; ok {
		parts = append(parts, "inject="+v)
	}
	if v, ok := ann[policy.AnnotationOpaquePorts]; ok {
		parts = append(parts, "opaque="+v)
	}
	if v, ok := ann[policy.AnnotationSkipOutboundPorts]; ok {
		parts = append(parts, "skip-out="+v)
	}
	if obj.GetKind() == "Pod" {
		if v, found, _ := unstructured.NestedBool(obj.Object, "spec", "automountServiceAccountToken"); found {
			parts = append(parts, "token="+boolText(v, found))
		}
	}
	if len(parts) == 0 {
		return "(none)"
	}
	return strings.Join(parts, " ")
}

func boolText(v, found bool) string {
	if !found {
		return "unset"
	}
	return fmt.Sprint(v)
}
