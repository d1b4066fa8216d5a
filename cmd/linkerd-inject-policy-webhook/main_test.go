package main

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// heavyPrefixes are packages only bootstrap, check or doctor need (the Helm
// SDK and what it brings: chart rendering, registries, kubectl's apply
// machinery). The webhook binary must link none of them.
var heavyPrefixes = []string{
	"helm.sh/",
	"k8s.io/cli-runtime/",
	"k8s.io/kubectl/",
	"k8s.io/apiextensions-apiserver/",
	"sigs.k8s.io/kustomize/",
	"oras.land/",
	"github.com/Masterminds/",
	"github.com/containerd/",
	"github.com/docker/",
	"github.com/evanphx/json-patch", // kubectl's strategic merge, not our patch library
	// serve --report-interval's reports (doctor, in the full CLI only).
	"github.com/openreports/",
	"k8s.io/client-go/dynamic",
}

const module = "github.com/linkerd-inject-policy/linkerd-inject-policy/"

// ownPackages are this module's packages the webhook may link; any other
// (bootstrap, deploy, e2e, check's manifest editor, doctor and the reports
// of serve --report-interval) is a mistake. Every package linked costs
// resident memory even when it never runs: its init, its types and the
// binary's larger tables.
var ownPackages = []string{"certs", "cmd/linkerd-inject-policy-webhook", "facts", "internal/serve", "policy", "webhook"}

// unwanted lists what the package pattern links that the webhook must not.
func unwanted(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	var bad []string
	for _, dep := range strings.Fields(string(out)) {
		for _, p := range heavyPrefixes {
			if strings.HasPrefix(dep, p) {
				bad = append(bad, dep+" ("+p+"… is only for the full CLI)")
			}
		}
		if own, ok := strings.CutPrefix(dep, module); ok && !slices.Contains(ownPackages, own) {
			bad = append(bad, dep+" (a package of this module serve does not need)")
		}
	}
	return bad
}

func TestWebhookBinaryLinksNothingOnlyTheCLINeeds(t *testing.T) {
	if testing.Short() {
		t.Skip("go list of the whole dependency graph")
	}
	for _, dep := range unwanted(t, ".") {
		t.Errorf("the webhook binary links %s", dep)
	}
}

// The same list taken of the full CLI must find the Helm SDK, doctor and
// the reports' OpenReports types: otherwise the check above could not fail.
func TestTheFullCLILinksWhatTheWebhookMustNot(t *testing.T) {
	if testing.Short() {
		t.Skip("go list of the whole dependency graph")
	}
	bad := unwanted(t, "../linkerd-inject-policy")
	for _, want := range []string{"helm.sh/", module + "doctor ", module + "internal/serve/reports ", "github.com/openreports/", "k8s.io/client-go/dynamic "} {
		if !slices.ContainsFunc(bad, func(d string) bool { return strings.HasPrefix(d, want) }) {
			t.Errorf("the full CLI links no %s package by this test's list: %v", strings.TrimSpace(want), bad)
		}
	}
}

func TestWebhookBinaryHasOnlyServeAndVersion(t *testing.T) {
	var names []string
	for _, c := range newRootCmd().Commands() {
		if c.Name() != "help" && c.Name() != "completion" {
			names = append(names, c.Name())
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"serve", "version"}) {
		t.Errorf("commands %v, want [serve version]", names)
	}
}

// wholeClientSymbols are symbols of client-go's whole clientset and of its
// SharedInformerFactory. Both are imported by controller-runtime anyway, so
// go list cannot keep them out; what matters is whether the linker keeps
// them: either links the clients (or informers) of every API group, over a
// MiB of resident memory the webhook never uses.
var wholeClientSymbols = []string{
	"k8s.io/client-go/kubernetes.NewForConfigAndClient",
	"k8s.io/client-go/informers.NewSharedInformerFactoryWithOptions",
}

// linkedSymbols builds pkg and returns which of wholeClientSymbols its
// binary has.
func linkedSymbols(t *testing.T, pkg string) []string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bin")
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	out, err := exec.Command("go", "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}
	var found []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && slices.Contains(wholeClientSymbols, f[2]) && !slices.Contains(found, f[2]) {
			found = append(found, f[2])
		}
	}
	return found
}

func TestWebhookBinaryLinksNoWholeClientset(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if found := linkedSymbols(t, "."); len(found) > 0 {
		t.Errorf("the webhook binary links %v: use the typed clients it needs, and informers built on them", found)
	}
	// The same check of a program that uses both finds both.
	if found := linkedSymbols(t, "./testdata/fullclientset"); len(found) != len(wholeClientSymbols) {
		t.Errorf("a program using the whole clientset and the informer factory: found %v of %v", found, wholeClientSymbols)
	}
}
