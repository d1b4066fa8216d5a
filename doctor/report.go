package doctor

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	reportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

// The OpenReports objects doctor writes.
const (
	// ReportName is the name of doctor's Report in each namespace and of
	// its ClusterReport.
	ReportName = "linkerd-inject-policy-doctor"
	// ReportSource is the reports' source and the results' policy.
	ReportSource = "linkerd-inject-policy"
	// FieldManager owns what doctor applies (reports, restarts).
	FieldManager = "linkerd-inject-policy-doctor"
	// LabelReport marks doctor's reports, so a later run finds and
	// replaces or removes them; LabelManagedBy is the usual owner label.
	LabelReport    = "linkerd-inject-policy.io/report"
	LabelManagedBy = "app.kubernetes.io/managed-by"
)

// GVRs of OpenReports' kinds.
var (
	ReportGVR        = reportsv1alpha1.SchemeGroupVersion.WithResource("reports")
	ClusterReportGVR = reportsv1alpha1.SchemeGroupVersion.WithResource("clusterreports")
)

func reportLabels() map[string]string {
	return map[string]string{LabelReport: "doctor", LabelManagedBy: ReportSource}
}

// kindAPIVersion is the API version of the kinds doctor reports on.
func kindAPIVersion(kind string) string {
	switch kind {
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet":
		return "apps/v1"
	case "Job", "CronJob":
		return "batch/v1"
	}
	return "v1"
}

// severity ranks a code: what breaks traffic or Jobs now is high, what
// will break on the next change medium, annotation mistakes low.
func severity(code string) (reportsv1alpha1.ResultSeverity, reportsv1alpha1.Result) {
	switch code {
	case CodeJobStuckOnProxy, CodeStaleTrustRoot:
		return "high", "fail"
	case CodeNeedsRestart, CodeServiceOpaque, CodePolicyDrift:
		return "medium", "fail"
	}
	return "low", "warn"
}

// Reports turns r into OpenReports objects: one Report per namespace with
// findings, and a ClusterReport for findings on cluster-scoped objects
// (nil when there are none).
func Reports(r Result) ([]reportsv1alpha1.Report, *reportsv1alpha1.ClusterReport) {
	ts := metav1.Timestamp{Seconds: r.Time.Unix(), Nanos: int32(r.Time.Nanosecond())}
	byNS := map[string][]reportsv1alpha1.ReportResult{}
	var namespaces []string
	for _, f := range r.Findings {
		sev, res := severity(f.Code)
		props := map[string]string{"fix": f.Fix}
		if f.Workload != "" {
			props["workload"] = f.Workload
		}
		rr := reportsv1alpha1.ReportResult{
			Source:      ReportSource,
			Policy:      ReportSource,
			Rule:        f.Code,
			Category:    "Linkerd",
			Severity:    sev,
			Timestamp:   ts,
			Result:      res,
			Subjects:    []corev1.ObjectReference{{APIVersion: kindAPIVersion(f.Kind), Kind: f.Kind, Namespace: f.Namespace, Name: f.Name}},
			Description: f.Message,
			Properties:  props,
		}
		if _, ok := byNS[f.Namespace]; !ok {
			namespaces = append(namespaces, f.Namespace)
		}
		byNS[f.Namespace] = append(byNS[f.Namespace], rr)
	}
	sort.Strings(namespaces)
	var reports []reportsv1alpha1.Report
	var cluster *reportsv1alpha1.ClusterReport
	for _, ns := range namespaces {
		results := byNS[ns]
		if ns == "" {
			cluster = &reportsv1alpha1.ClusterReport{
				TypeMeta:   metav1.TypeMeta{APIVersion: reportsv1alpha1.SchemeGroupVersion.String(), Kind: "ClusterReport"},
				ObjectMeta: metav1.ObjectMeta{Name: ReportName, Labels: reportLabels()},
				Source:     ReportSource,
				Summary:    summarize(results),
				Results:    results,
			}
			continue
		}
		reports = append(reports, reportsv1alpha1.Report{
			TypeMeta:   metav1.TypeMeta{APIVersion: reportsv1alpha1.SchemeGroupVersion.String(), Kind: "Report"},
			ObjectMeta: metav1.ObjectMeta{Name: ReportName, Namespace: ns, Labels: reportLabels()},
			Source:     ReportSource,
			Scope:      &corev1.ObjectReference{APIVersion: "v1", Kind: "Namespace", Name: ns},
			Summary:    summarize(results),
			Results:    results,
		})
	}
	return reports, cluster
}

func summarize(rs []reportsv1alpha1.ReportResult) reportsv1alpha1.ReportSummary {
	var s reportsv1alpha1.ReportSummary
	for _, r := range rs {
		switch r.Result {
		case "fail":
			s.Fail++
		case "warn":
			s.Warn++
		}
	}
	return s
}

// reportObjects are the reports as unstructured objects, in order.
func reportObjects(r Result) ([]*unstructured.Unstructured, error) {
	reports, cluster := Reports(r)
	var out []*unstructured.Unstructured
	for i := range reports {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&reports[i])
		if err != nil {
			return nil, fmt.Errorf("report %s: %w", reports[i].Namespace, err)
		}
		out = append(out, &unstructured.Unstructured{Object: u})
	}
	if cluster != nil {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cluster)
		if err != nil {
			return nil, fmt.Errorf("cluster report: %w", err)
		}
		out = append(out, &unstructured.Unstructured{Object: u})
	}
	for _, u := range out {
		// Server-set fields the typed objects carry as zero values.
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	}
	return out, nil
}

// WriteReports writes the reports as one YAML List (empty when clean),
// ready for kubectl apply -f -.
func WriteReports(w io.Writer, r Result) error {
	objs, err := reportObjects(r)
	if err != nil {
		return err
	}
	items := make([]any, 0, len(objs))
	for _, o := range objs {
		items = append(items, o.Object)
	}
	data, err := yaml.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
	if err != nil {
		return fmt.Errorf("write reports: %w", err)
	}
	_, err = w.Write(data)
	return err
}

// ReportAction is one change ApplyReports made.
type ReportAction struct {
	// Action is applied or deleted.
	Action    string
	Kind      string
	Namespace string
	Name      string
	Results   int
}

func (a ReportAction) String() string {
	obj := Ref{a.Kind, a.Namespace, a.Name}.String()
	if a.Action == "deleted" {
		return fmt.Sprintf("deleted %s %s (no findings)", reportsv1alpha1.SchemeGroupVersion.Group, obj)
	}
	return fmt.Sprintf("applied %s %s (%s)", reportsv1alpha1.SchemeGroupVersion.Group, obj, plural(a.Results, "result", "results"))
}

// ApplyReports writes r's reports to the cluster by server-side apply
// (field manager FieldManager, labelled LabelReport), replacing what an
// earlier run wrote, and deletes doctor's reports in r's scope that have
// nothing to report any more: with r.Namespace set only that namespace's
// Report is considered; otherwise every namespace's and the ClusterReport.
// It needs get, list, patch and delete on reports and clusterreports.
func ApplyReports(ctx context.Context, dyn dynamic.Interface, r Result) ([]ReportAction, error) {
	objs, err := reportObjects(r)
	if err != nil {
		return nil, err
	}
	var done []ReportAction
	keep := map[Ref]bool{}
	for _, o := range objs {
		gvr, ri := ReportGVR, dynamic.ResourceInterface(nil)
		if o.GetKind() == "ClusterReport" {
			gvr = ClusterReportGVR
			ri = dyn.Resource(gvr)
		} else {
			ri = dyn.Resource(gvr).Namespace(o.GetNamespace())
		}
		if _, err := ri.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
			return done, fmt.Errorf("apply %s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), reportsHint(err))
		}
		results, _, _ := unstructured.NestedSlice(o.Object, "results")
		done = append(done, ReportAction{Action: "applied", Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName(), Results: len(results)})
		keep[Ref{o.GetKind(), o.GetNamespace(), o.GetName()}] = true
	}
	stale, err := listOwnReports(ctx, dyn, ReportGVR, "Report", r.Namespace)
	if err != nil {
		return done, err
	}
	if r.Namespace == "" {
		cs, err := listOwnReports(ctx, dyn, ClusterReportGVR, "ClusterReport", "")
		if err != nil {
			return done, err
		}
		stale = append(stale, cs...)
	}
	for _, ref := range stale {
		if keep[ref] {
			continue
		}
		var err error
		if ref.Kind == "ClusterReport" {
			err = dyn.Resource(ClusterReportGVR).Delete(ctx, ref.Name, metav1.DeleteOptions{})
		} else {
			err = dyn.Resource(ReportGVR).Namespace(ref.Namespace).Delete(ctx, ref.Name, metav1.DeleteOptions{})
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return done, fmt.Errorf("delete %s: %w", ref, err)
		}
		done = append(done, ReportAction{Action: "deleted", Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name})
	}
	return done, nil
}

// listOwnReports lists doctor's reports of one kind, page by page.
func listOwnReports(ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, kind, namespace string) ([]Ref, error) {
	var ri dynamic.ResourceInterface = dyn.Resource(gvr)
	if kind == "Report" {
		ri = dyn.Resource(gvr).Namespace(namespace)
	}
	var out []Ref
	opts := metav1.ListOptions{LabelSelector: LabelReport + "=doctor", Limit: 500}
	for {
		list, err := ri.List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", gvr.Resource, reportsHint(err))
		}
		for _, it := range list.Items {
			out = append(out, Ref{kind, it.GetNamespace(), it.GetName()})
		}
		if list.GetContinue() == "" {
			return out, nil
		}
		opts.Continue = list.GetContinue()
	}
}

// reportsHint says what a missing kind means.
func reportsHint(err error) error {
	if apierrors.IsNotFound(err) && strings.Contains(err.Error(), "the server could not find the requested resource") {
		return fmt.Errorf("%w (are the OpenReports CRDs installed? see docs/doctor.md)", err)
	}
	return err
}
