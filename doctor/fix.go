package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// RestartCodes are the codes Restart acts on: findings a new pod from the
// same template resolves.
var RestartCodes = []string{CodeNeedsRestart, CodeStaleTrustRoot}

// RestartedAtAnnotation is what `kubectl rollout restart` sets on the pod
// template; a changed template makes the controller roll the pods.
const RestartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

// FixAction is what Restart did (or would do) for one workload.
type FixAction struct {
	Kind      string   `json:"kind"`
	Namespace string   `json:"namespace"`
	Name      string   `json:"name"`
	Codes     []string `json:"codes"`
	// Action is restarted, would_restart (dry run) or skipped.
	Action string `json:"action"`
	// Detail says why it was skipped, or the command it amounts to.
	Detail string `json:"detail"`
}

func (a FixAction) String() string {
	obj := Ref{a.Kind, a.Namespace, a.Name}.String()
	switch a.Action {
	case "restarted":
		return fmt.Sprintf("restarted %s (%s): %s", obj, strings.Join(a.Codes, ", "), a.Detail)
	case "would_restart":
		return fmt.Sprintf("would restart %s (%s): %s  [dry run: add --yes]", obj, strings.Join(a.Codes, ", "), a.Detail)
	}
	return fmt.Sprintf("skipped %s (%s): %s", obj, strings.Join(a.Codes, ", "), a.Detail)
}

// ParseFixCodes reads --fix's comma-separated codes.
func ParseFixCodes(s string) ([]string, error) {
	var out []string
	for _, c := range strings.Split(s, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if !slices.Contains(RestartCodes, c) {
			return nil, fmt.Errorf("--fix %s: a restart fixes only %s", c, strings.Join(RestartCodes, ", "))
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--fix: name the codes to fix, such as --fix %s", strings.Join(RestartCodes, ","))
	}
	return out, nil
}

// Restart restarts, one after the other, the workloads owning the pods of
// r's findings with the given codes, the way `kubectl rollout restart`
// does: it sets RestartedAtAnnotation on the pod template, and the
// controller replaces the pods. Only Deployments, StatefulSets and
// DaemonSets are restarted; bare pods and other owners are skipped with
// the command to run instead. Without yes nothing is changed (a dry run).
// It stops at the first error, returning what it did so far.
func Restart(ctx context.Context, client kubernetes.Interface, r Result, codes []string, yes bool, now func() time.Time) ([]FixAction, error) {
	if now == nil {
		now = time.Now
	}
	type plan struct {
		ref   Ref
		codes []string
		fix   string
	}
	plans := map[Ref]*plan{}
	var order []Ref
	for _, f := range r.Findings {
		if f.Kind != "Pod" || !slices.Contains(codes, f.Code) {
			continue
		}
		ref := f.owner
		if ref.Kind == "" || !restartable(ref.Kind) {
			ref = Ref{"Pod", f.Namespace, f.Name}
		}
		p, ok := plans[ref]
		if !ok {
			p = &plan{ref: ref, fix: f.Fix}
			plans[ref] = p
			order = append(order, ref)
		}
		if !slices.Contains(p.codes, f.Code) {
			p.codes = append(p.codes, f.Code)
		}
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Name < b.Name
	})
	var done []FixAction
	for _, ref := range order {
		p := plans[ref]
		sort.Strings(p.codes)
		a := FixAction{Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name, Codes: p.codes}
		if !restartable(ref.Kind) {
			a.Action = "skipped"
			a.Detail = "not restarted here (only Deployments, StatefulSets and DaemonSets are); run: " + p.fix
			done = append(done, a)
			continue
		}
		a.Detail = "kubectl rollout restart " + strings.ToLower(ref.Kind) + "/" + shellQuote(ref.Name) + kubectlNS(ref.Namespace)
		if !yes {
			a.Action = "would_restart"
			done = append(done, a)
			continue
		}
		if err := restart(ctx, client, ref, now()); err != nil {
			return done, err
		}
		a.Action = "restarted"
		done = append(done, a)
	}
	return done, nil
}

func restart(ctx context.Context, client kubernetes.Interface, ref Ref, at time.Time) error {
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{RestartedAtAnnotation: at.Format(time.RFC3339)},
	}}}})
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: FieldManager}
	apps := client.AppsV1()
	switch ref.Kind {
	case "Deployment":
		_, err = apps.Deployments(ref.Namespace).Patch(ctx, ref.Name, types.StrategicMergePatchType, patch, opts)
	case "StatefulSet":
		_, err = apps.StatefulSets(ref.Namespace).Patch(ctx, ref.Name, types.StrategicMergePatchType, patch, opts)
	case "DaemonSet":
		_, err = apps.DaemonSets(ref.Namespace).Patch(ctx, ref.Name, types.StrategicMergePatchType, patch, opts)
	default:
		return fmt.Errorf("restart %s: not a Deployment, StatefulSet or DaemonSet", ref)
	}
	if err != nil {
		return fmt.Errorf("restart %s: %w", ref, err)
	}
	return nil
}
