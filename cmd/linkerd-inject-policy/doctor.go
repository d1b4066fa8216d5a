package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/doctor"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/facts"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

type doctorFlags struct {
	kubeconfig, context string
	namespace           string
	allNamespaces       bool
	configPath          string
	linkerdNamespace    string
	output              string
	apply               bool
	fix                 string
	yes                 bool
	quiet               bool
}

func newDoctorCmd() *cobra.Command {
	f := &doctorFlags{}
	cmd := &cobra.Command{
		Use:   "doctor [--kubeconfig K] [--context C] [-n NS | -A] [--config FILE] [-o table|json|report]",
		Short: "Find what is wrong with Linkerd injection in a running cluster",
		Long: `Look at the running cluster for what admission alone cannot fix, and say for
each finding why it matters and the command that fixes it:

  job_stuck_on_proxy   a Job's pod finished its work but linkerd-proxy keeps running
  needs_restart        no proxy in a pod whose namespace or workload asks for injection
  stale_trust_root     a proxy started with a trust bundle that is no longer Linkerd's
  policy_drift         a workload the policy would change today (enforce or audit mode)
  service_not_opaque   a Service with server-speaks-first ports lacking opaque-ports
  misplaced_annotation, invalid_annotation, unknown_annotation,
  deprecated_annotation, unsupported_annotation   the annotation lint

It reads with get and list only (docs/doctor.md has the ClusterRole), with
the same policy and Linkerd facts as serve and check. Progress goes to
stderr, the result to stdout.

-o report prints the findings as OpenReports objects (openreports.io/v1alpha1
Report per namespace, ClusterReport for cluster-scoped objects); with --apply
it writes them (server-side apply) and removes those with nothing left to
report.

--fix needs_restart[,stale_trust_root] restarts the owning Deployments,
StatefulSets and DaemonSets one at a time, as kubectl rollout restart does;
a dry run unless --yes. Bare pods are never restarted.

Exit status: 0 when there is nothing to report, 1 with findings, 2 on bad
flags or when the cluster cannot be read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return runDoctor(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	fl.StringVar(&f.context, "context", "", "kubeconfig context (default the current one)")
	fl.StringVarP(&f.namespace, "namespace", "n", "", "namespace to scan (default the context's namespace)")
	fl.BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "scan every namespace")
	fl.StringVar(&f.configPath, "config", "", "PolicyConfig file, as given to serve (default: built-in defaults)")
	fl.StringVar(&f.linkerdNamespace, "linkerd-namespace", facts.DefaultLinkerdNamespace, "namespace of Linkerd's control plane (linkerd-config, linkerd-identity-trust-roots)")
	fl.StringVarP(&f.output, "output", "o", "table", "output format: table, json or report")
	fl.BoolVar(&f.apply, "apply", false, "with -o report: write the reports to the cluster and remove those with nothing left to report")
	fl.StringVar(&f.fix, "fix", "", "restart the workloads behind these findings: "+strings.Join(doctor.RestartCodes, ","))
	fl.BoolVar(&f.yes, "yes", false, "with --fix: really restart (default: a dry run)")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress lines on stderr")
	return cmd
}

func usageErr(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

func runDoctor(ctx context.Context, stdout, stderr io.Writer, f *doctorFlags) error {
	switch f.output {
	case "table", "json", "report":
	default:
		return usageErr("-o %q: must be table, json or report", f.output)
	}
	if f.apply && f.output != "report" {
		return usageErr("--apply writes reports: use it with -o report")
	}
	if f.allNamespaces && f.namespace != "" {
		return usageErr("-n and -A: give one of them")
	}
	if f.yes && f.fix == "" {
		return usageErr("--yes confirms --fix: give --fix CODES")
	}
	var fixCodes []string
	if f.fix != "" {
		codes, err := doctor.ParseFixCodes(f.fix)
		if err != nil {
			return usageErr("%v", err)
		}
		fixCodes = codes
	}
	cfg := policy.DefaultConfig()
	if f.configPath != "" {
		c, err := policy.LoadConfigFile(f.configPath)
		if err != nil {
			return usageErr("--config: %v", err)
		}
		cfg = c
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: f.context})
	rc, err := cc.ClientConfig()
	if err != nil {
		return usageErr("kubeconfig: %v", oneLineErr(err))
	}
	ns := f.namespace
	if ns == "" && !f.allNamespaces {
		if ns, _, err = cc.Namespace(); err != nil {
			return usageErr("kubeconfig: %v", oneLineErr(err))
		}
	}
	rc.UserAgent = "linkerd-inject-policy-doctor"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return usageErr("kubernetes client: %v", oneLineErr(err))
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return usageErr("kubernetes client: %v", oneLineErr(err))
	}
	opts := doctor.Options{
		Dynamic:          dyn,
		Namespace:        ns,
		Config:           cfg,
		ConfigPath:       f.configPath,
		LinkerdNamespace: f.linkerdNamespace,
	}
	if !f.quiet {
		opts.Progress = stderr
	}
	res, err := doctor.Run(ctx, client, opts)
	if err != nil {
		return &exitError{code: 2, err: oneLineErr(err)}
	}
	for _, n := range res.Summary.Notes {
		fmt.Fprintln(stderr, "doctor: note:", n)
	}
	if !f.quiet {
		fmt.Fprintln(stderr, "doctor: facts:", res.Summary.Facts)
	}
	if fixCodes != nil {
		actions, err := doctor.Restart(ctx, client, res, fixCodes, f.yes, time.Now)
		res.Fixes = actions
		if err != nil {
			_ = writeDoctor(stdout, res, f.output)
			return &exitError{code: 2, err: oneLineErr(err)}
		}
	}
	if f.apply {
		actions, err := doctor.ApplyReports(ctx, dyn, res)
		w := bufio.NewWriter(stdout)
		for _, a := range actions {
			fmt.Fprintln(w, a.String())
		}
		if ferr := w.Flush(); ferr != nil && err == nil {
			err = ferr
		}
		if err != nil {
			return &exitError{code: 2, err: oneLineErr(err)}
		}
	} else if err := writeDoctor(stdout, res, f.output); err != nil {
		return err
	}
	if len(res.Findings) > 0 {
		return &exitError{code: 1, err: errFindings(res)}
	}
	return nil
}

func writeDoctor(stdout io.Writer, res doctor.Result, output string) error {
	w := bufio.NewWriter(stdout)
	var err error
	switch output {
	case "json":
		err = doctor.WriteJSON(w, res)
	case "report":
		err = doctor.WriteReports(w, res)
		for _, a := range res.Fixes {
			fmt.Fprintln(w, "# "+a.String())
		}
	default:
		err = doctor.WriteTable(w, res)
	}
	if err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// errFindings is the exit-1 message: the findings are on stdout already.
func errFindings(res doctor.Result) error {
	return fmt.Errorf("doctor: %d finding(s)", len(res.Findings))
}

func oneLineErr(err error) error {
	return errors.New(strings.Join(strings.Fields(err.Error()), " "))
}
