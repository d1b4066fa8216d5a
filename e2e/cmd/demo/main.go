// Command demo is `make demo`: it starts a real control plane (etcd,
// kube-apiserver, kube-controller-manager), runs the webhook binary against
// it, applies every example with the real kubectl into three namespaces
// (enforce, audit, off) and prints what the apiserver stored, what kubectl
// warned, and who made each Pod. Then it tears everything down, unless
// DEMO_KEEP=1, in which case it waits for Ctrl-C and prints how to explore.
//
// Environment: LIP_TOOLS_BIN (control-plane binaries; default: hack/tools.sh
// builds them) and LIP_BINARY (the linkerd-inject-policy binary; default:
// go build).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/doctor"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/e2e/cluster"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/webhook"
)

func main() {
	cluster.Isolate(cluster.ECKModule)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := run(ctx, os.Stdout, os.Stderr)
	os.Exit(code)
}

// demoNamespace is one of the demo's namespaces: Linkerd would inject all
// of them (linkerd.io/inject: enabled), so the table shows what our policy
// changes in each mode (see linkerdPhases).
type demoNamespace struct {
	name string
	mode policy.Mode
}

func run(ctx context.Context, stdout, stderr io.Writer) int {
	logw := prefixWriter{w: stderr, prefix: "demo: "}
	repo, err := repoRoot()
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	if err := checkDisk(os.TempDir(), 1<<30); err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}

	// Resolve (or build) the webhook binary before starting anything, so a
	// broken build fails fast.
	binDir, err := os.MkdirTemp("", "lip-demo-bin-")
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n%s", err, advice(err))
		return 1
	}
	defer os.RemoveAll(binDir)
	binary, err := cluster.FindWebhookBinary(ctx, binDir, logw)
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n%s", err, advice(err))
		return 1
	}

	fmt.Fprintln(logw, "starting etcd, kube-apiserver and kube-controller-manager")
	c, err := cluster.Start(ctx, cluster.Options{ControllerManager: true, Log: logw})
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n%s", err, advice(err))
		return 1
	}
	var wh *cluster.Webhook
	defer func() {
		fmt.Fprintln(logw, "tearing down")
		if err := wh.Stop(); err != nil {
			fmt.Fprintf(stderr, "demo: stop webhook: %v\n", err)
		}
		if err := c.Stop(); err != nil {
			fmt.Fprintf(stderr, "demo: stop cluster: %v\n", err)
		}
	}()

	if err := c.InstallECKCRDs(ctx); err != nil {
		fmt.Fprintf(stderr, "demo: %v\n%s", err, advice(err))
		return 1
	}
	fmt.Fprintln(logw, "starting the webhook (linkerd-inject-policy serve) on loopback")
	wh, err = c.StartWebhook(ctx, cluster.WebhookOptions{Binary: binary})
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n%s", err, advice(err))
		return 1
	}
	reg := webhook.MutatingWebhookConfiguration(webhook.RegistrationOptions{
		URL:                wh.URL,
		CABundle:           wh.CABundle,
		FailurePolicy:      admissionregistrationv1.Ignore,
		ExcludedNamespaces: policy.DefaultExcludedNamespaces(),
	})
	if err := c.ApplyWebhookConfiguration(ctx, reg); err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}

	d := &demo{c: c, repo: repo, log: logw}
	_, stopStandIn, err := d.startStandIn(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	defer stopStandIn()
	if err := d.waitWebhook(ctx); err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	if err := d.prepare(); err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	for i, ph := range linkerdPhases {
		env, err := d.installLinkerd(ctx, ph.configFile)
		if err == nil {
			err = d.waitFacts(ctx, env)
		}
		if err == nil {
			err = d.applyPhase(ctx, i == 0, ph.label, env, ph.namespaces)
		}
		if err != nil {
			fmt.Fprintf(stderr, "demo: %v\n", err)
			return 1
		}
		// Every Pod of this phase exists before linkerd-config changes.
		d.waitForPods(ctx)
	}
	rows, err := d.collect(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	d.printFacts(stdout)
	printTable(stdout, rows)
	printSideBySide(stdout, rows)
	d.printWarnings(stdout)
	failed := printChecks(stdout, checks(rows, d.warnings))

	fmt.Fprintln(stdout, "\n== linkerd-inject-policy doctor: what is wrong in the running cluster ==")
	if _, err := doctor.PrintScan(ctx, c.RESTConfig, stdout); err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}

	if os.Getenv("DEMO_KEEP") == "1" {
		kubectl := filepath.Join(c.BinDir, "kubectl")
		fmt.Fprintf(stdout, `
The cluster keeps running (DEMO_KEEP=1). Explore it with the real kubectl:

  export KUBECONFIG=%[1]s
  alias kubectl=%[2]s
  kubectl get namespaces -L %[3]s
  kubectl get pods -n demo-enforce -o custom-columns='POD:.metadata.name,INJECT:.metadata.annotations.linkerd\.io/inject,RULES:.metadata.annotations.linkerd-inject-policy\.io/applied'
  kubectl get job db-migrate -n demo-enforce -o yaml
  kubectl apply -n demo-audit -f %[4]s    # prints the audit warnings again
  less %[5]s    # the apiserver's audit log

Press Ctrl-C to stop it and clean up.
`, c.KubeconfigPath, kubectl, policy.LabelMode, filepath.Join(repo, "examples", "jobs"), c.AuditLogPath)
		<-ctx.Done()
		return 0
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "demo: interrupted")
		return 130
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// advice turns the usual failures into what to do.
func advice(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "address already in use"):
		return "A port the demo picked was taken in the meantime by another program; run `make demo` again.\n"
	case strings.Contains(msg, "no space left on device"):
		return "The disk is full: free some space (or set TMPDIR to a disk with room) and run `make demo` again.\n"
	case strings.Contains(msg, "binaries missing"), strings.Contains(msg, "tools.sh"):
		return "The control-plane binaries are not built: run `make tools` and read its output.\n"
	case strings.Contains(msg, "go build"), strings.Contains(msg, "LIP_BINARY"):
		return "The webhook binary could not be built: run `make build` and fix what it reports.\n"
	case strings.Contains(msg, "go mod download"):
		return "The Go module proxy is needed once to fetch ECK's CRDs; check GOPROXY and the network.\n"
	}
	return ""
}

// checkDisk fails early, with advice, when dir has less than need bytes free.
func checkDisk(dir string, need uint64) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return fmt.Errorf("check free space in %s: %w", dir, err)
	}
	free := st.Bavail * uint64(st.Bsize)
	if free < need {
		return fmt.Errorf("only %d MiB free in %s; the demo's etcd and logs need about %d MiB: free some space or set TMPDIR elsewhere", free>>20, dir, need>>20)
	}
	return nil
}

func repoRoot() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
		if _, err := os.Stat(filepath.Join(root, "examples")); err == nil {
			return root, nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(wd, "examples")); err == nil {
		return wd, nil
	}
	return "", errors.New("cannot find the repository's examples/: run the demo from the repository root (make demo)")
}

// prefixWriter prefixes each write (the harness writes whole lines).
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	if _, err := fmt.Fprintf(p.w, "%s%s", p.prefix, b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// since is a readable duration for progress lines.
func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }
