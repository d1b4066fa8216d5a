package bootstrap

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"
)

// objectRef names one object of a release manifest.
type objectRef struct{ kind, namespace, name string }

func (o objectRef) String() string { return o.namespace + "/" + o.name }

// manifestObjects lists the objects of the given kinds in a release.
func manifestObjects(rel *release.Release, kinds ...string) []objectRef {
	want := map[string]bool{}
	for _, k := range kinds {
		want[k] = true
	}
	var out []objectRef
	for _, doc := range releaseutil.SplitManifests(rel.Manifest) {
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil || !want[head.Kind] {
			continue
		}
		ns := head.Metadata.Namespace
		if ns == "" {
			ns = rel.Namespace
		}
		out = append(out, objectRef{kind: head.Kind, namespace: ns, name: head.Metadata.Name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// wait blocks until every Deployment bootstrap installed is available and
// this webhook's Service has a ready endpoint, so that the apiserver can
// call it.
func (r *runner) wait(ctx context.Context) (string, error) {
	if r.o.DryRun {
		return "skipped (dry run)", nil
	}
	if !r.o.Wait {
		return "skipped (--wait=false)", nil
	}
	var deployments, services []objectRef
	for _, rel := range r.installed {
		deployments = append(deployments, manifestObjects(rel, "Deployment")...)
		if rel.Name == WebhookRelease {
			services = append(services, manifestObjects(rel, "Service")...)
		}
	}
	var lastPending []string
	// The checks use the caller's ctx, not the poll's: a check cut short by
	// the deadline would report the deadline instead of what is not ready.
	err := wait.PollUntilContextTimeout(ctx, time.Second, r.o.Timeout, true, func(context.Context) (bool, error) {
		var pending []string
		defer func() { lastPending = pending }()
		for _, d := range deployments {
			dep, err := r.c.kube.AppsV1().Deployments(d.namespace).Get(ctx, d.name, metav1.GetOptions{})
			if err != nil {
				pending = append(pending, fmt.Sprintf("Deployment %s (%v)", d, oneLine(err.Error())))
				continue
			}
			if !deploymentAvailable(dep) {
				want := int32(1)
				if dep.Spec.Replicas != nil {
					want = *dep.Spec.Replicas
				}
				pending = append(pending, fmt.Sprintf("Deployment %s (%d/%d available)", d, dep.Status.AvailableReplicas, want))
			}
		}
		for _, s := range services {
			ready, err := serviceHasReadyEndpoint(ctx, r, s)
			if err != nil {
				return false, err
			}
			if !ready {
				pending = append(pending, fmt.Sprintf("Service %s (no ready endpoint: the webhook is not answering)", s))
			}
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", &Error{
			Problem: fmt.Sprintf("timed out after %s waiting for %s", r.o.Timeout, strings.Join(lastPending, ", ")),
			Fix:     "check the pods (kubectl get pods -n linkerd, kubectl describe pod ...), raise --timeout, or pass --wait=false to skip waiting",
		}
	}
	return fmt.Sprintf("%d Deployments available, webhook answering", len(deployments)), nil
}

func deploymentAvailable(d *appsv1.Deployment) bool {
	if d.Generation > d.Status.ObservedGeneration {
		return false
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue && d.Status.UpdatedReplicas == d.Status.Replicas
		}
	}
	return false
}

func serviceHasReadyEndpoint(ctx context.Context, r *runner, s objectRef) (bool, error) {
	slices, err := r.c.kube.DiscoveryV1().EndpointSlices(s.namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + s.name})
	if err != nil {
		return false, fmt.Errorf("list endpoints of Service %s: %w", s, err)
	}
	for _, sl := range slices.Items {
		for _, ep := range sl.Endpoints {
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				return true, nil
			}
		}
	}
	return false, nil
}
