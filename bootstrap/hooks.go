package bootstrap

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/kube"
	"helm.sh/helm/v3/pkg/release"
)

// Helm waits for every hook Job to complete, whatever the install's Wait
// says, for the whole timeout. Under --wait=false bootstrap runs Helm with
// hooks disabled and creates the hooks itself (startHooks): in Helm's
// order and with its before-hook-creation rule (the default), but without
// waiting for them. With waiting, Helm runs the hooks and hookError names
// the one that failed.

// hooksFor returns the hooks of rel that run on event, in Helm's order:
// by weight, then by name.
func hooksFor(rel *release.Release, event release.HookEvent) []*release.Hook {
	var out []*release.Hook
	for _, h := range rel.Hooks {
		for _, e := range h.Events {
			if e == event {
				out = append(out, h)
				break
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Weight != out[j].Weight {
			return out[i].Weight < out[j].Weight
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// startHooks creates the hooks of rel for event without waiting for them.
// An object left by an earlier run (a hook Job that never completed) is
// deleted first, as Helm's before-hook-creation does, so a re-run never
// leaves a stale Job behind. It returns the hooks it started.
func startHooks(ac *action.Configuration, rel *release.Release, event release.HookEvent, timeout time.Duration) ([]string, error) {
	var started []string
	for _, h := range hooksFor(rel, event) {
		what := fmt.Sprintf("%s %s/%s", h.Kind, rel.Namespace, h.Name)
		resources, err := ac.KubeClient.Build(bytes.NewBufferString(h.Manifest), false)
		if err != nil {
			return started, fmt.Errorf("%s hook %s: %w", event, what, err)
		}
		// Every policy Helm knows ends with the object deleted before a new
		// run: before-hook-creation here, the others after a wait we skip.
		if h.Kind != "CustomResourceDefinition" {
			if _, errs := ac.KubeClient.Delete(resources); len(errs) > 0 {
				return started, fmt.Errorf("delete the previous %s hook %s: %w", event, what, errs[0])
			}
			if kc, ok := ac.KubeClient.(kube.InterfaceExt); ok {
				if err := kc.WaitForDelete(resources, timeout); err != nil {
					return started, fmt.Errorf("wait for the previous %s hook %s to go: %w", event, what, err)
				}
			}
		}
		if _, err := ac.KubeClient.Create(resources); err != nil {
			return started, fmt.Errorf("create %s hook %s: %w", event, what, err)
		}
		started = append(started, what)
	}
	return started, nil
}

// hookError explains a Helm error from a hook: which hook of which
// release, and what to do. rel is the release Helm recorded (it marks the
// failed hook); nil or no failed hook leaves err as it is.
func hookError(rel *release.Release, err error, timeout time.Duration) error {
	if rel == nil {
		return err
	}
	for _, h := range rel.Hooks {
		if h.LastRun.Phase != release.HookPhaseFailed {
			continue
		}
		var events []string
		for _, e := range h.Events {
			events = append(events, e.String())
		}
		problem := fmt.Sprintf("%s hook %s %s/%s of release %s/%s", strings.Join(events, ","), h.Kind, rel.Namespace, h.Name, rel.Namespace, rel.Name)
		if strings.Contains(err.Error(), "timed out") || strings.Contains(err.Error(), "context deadline exceeded") {
			problem += fmt.Sprintf(" did not complete within %s", timeout)
		} else {
			problem += fmt.Sprintf(" failed: %s", oneLine(err.Error()))
		}
		fix := "check its pods"
		if h.Kind == "Job" {
			fix = fmt.Sprintf("check its pods (kubectl -n %s describe job %s)", rel.Namespace, h.Name)
		}
		return &Error{Problem: problem, Fix: fix + ", raise --timeout, or pass --wait=false to start hooks without waiting; a re-run replaces the hook"}
	}
	return err
}
