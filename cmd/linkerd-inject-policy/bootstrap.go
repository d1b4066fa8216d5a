package main

import (
	"errors"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/bootstrap"
)

func newBootstrapCmd() *cobra.Command {
	o := bootstrap.Options{}
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Install Linkerd and this webhook in one command",
		Long: `Install or upgrade, idempotently, what a Linkerd install guide does by hand:

  1. preflight: cluster reachable, permissions, cert-manager and Prometheus operator CRDs, existing Linkerd
  2. namespace linkerd with the labels the control plane needs
  3. identity issuer: a cert-manager Certificate (--identity cert-manager) or a generated trust anchor + issuer
  4. Helm releases linkerd-crds and linkerd-control-plane (trust anchor and issuer scheme set for you)
  5. with --viz: namespace linkerd-viz, release linkerd-viz on your Prometheus/Grafana, the PodMonitors Linkerd's docs give for an external Prometheus operator (chosen by the Linkerd version)
  6. this webhook's chart (built into this binary; --webhook-chart overrides), in --policy-mode (audit by default: nothing changes until you choose)
  7. wait until the Deployments are available and the webhook answers (--wait=false skips)

A second run upgrades in place and reports "unchanged" where nothing changed.
Chart hooks (linkerd-viz's namespace-metadata Job) are waited for, up to --timeout;
with --wait=false they are started and not waited for.
--dry-run prints every object as YAML (private keys redacted) and changes nothing;
without a reachable cluster it needs --kube-version. See docs/bootstrap.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			if !cmd.Flags().Changed("issuer-ref") {
				// Empty lets bootstrap fall back to its own trust-anchor
				// chain when the default issuer does not exist.
				o.IssuerRef = ""
			}
			o.BinaryVersion = version
			return bootstrapExit(bootstrap.Run(ctx, o, cmd.OutOrStdout()))
		},
	}
	fl := cmd.Flags()
	addClusterFlags(cmd, &o)
	fl.StringVar(&o.Identity, "identity", bootstrap.IdentityGenerated, "identity issuer: cert-manager (a Certificate signed by --issuer-ref) or generated (trust anchor and issuer made here)")
	fl.StringVar(&o.IssuerRef, "issuer-ref", bootstrap.DefaultIssuerRef, "cert-manager issuer of the identity issuer, Kind/name (ClusterIssuer or Issuer in linkerd); if left at the default and missing, bootstrap makes a trust anchor through cert-manager")
	fl.BoolVar(&o.DropOldTrustRoots, "drop-old-trust-roots", false, "with --identity cert-manager: remove from the trust bundle the roots neither the issuer nor its CA uses, once no meshed pod holds another bundle (see docs/trust-rotation.md); without it a run only adds roots")
	fl.StringVar(&o.RepoURL, "repo", bootstrap.DefaultRepoURL, "Helm repository of the Linkerd charts")
	fl.StringVar(&o.Version, "version", "", "version of the Linkerd charts (default: the newest in --repo or --chart-dir)")
	fl.StringVar(&o.ChartDir, "chart-dir", "", "directory with the charts linkerd-crds, linkerd-control-plane, linkerd-viz (unpacked, or NAME-VERSION.tgz as helm pull saves them) instead of --repo, for air-gapped clusters")
	fl.StringArrayVarP(&o.ValuesFiles, "values", "f", nil, "values file for linkerd-control-plane (repeatable)")
	fl.StringArrayVar(&o.SetValues, "set", nil, "value for linkerd-control-plane, key=value[,key=value] (repeatable)")
	fl.BoolVar(&o.Viz, "viz", false, "also install the linkerd-viz extension")
	fl.StringVar(&o.PrometheusURL, "prometheus-url", "", "with --viz: your Prometheus (viz's own is then disabled)")
	fl.StringVar(&o.GrafanaURL, "grafana-url", "", "with --viz: your Grafana, for the dashboard's links")
	fl.StringVar(&o.PodMonitorNamespace, "podmonitor-namespace", bootstrap.VizNamespace, "with --viz and the Prometheus operator: namespace of the PodMonitors Linkerd's docs give for the Prometheus operator")
	fl.StringVar(&o.WebhookChart, "webhook-chart", "", "this webhook's chart, a directory or .tgz (default: the chart built into this binary)")
	fl.StringArrayVar(&o.WebhookValuesFiles, "webhook-values", nil, "values file for this webhook's chart (repeatable), e.g. image.repository for your registry")
	fl.StringArrayVar(&o.WebhookSetValues, "webhook-set", nil, "value for this webhook's chart, key=value[,key=value] (repeatable); default image "+bootstrap.DefaultImageRepository+":"+version)
	fl.StringVar(&o.PolicyMode, "policy-mode", bootstrap.PolicyModeAudit, "webhook default mode: audit (warn only), enforce (cluster-wide) or opt-in (only labelled namespaces)")
	fl.BoolVar(&o.Wait, "wait", true, "wait for the Deployments to become available and the webhook to answer")
	fl.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "how long each wait may take")
	fl.BoolVar(&o.DryRun, "dry-run", false, "print every object as YAML (private keys redacted) and change nothing")
	fl.StringVar(&o.KubeVersion, "kube-version", "", "with --dry-run: the Kubernetes version to render for, like v1.31.0 (required without a reachable cluster)")
	cmd.AddCommand(newBootstrapUninstallCmd())
	return cmd
}

func addClusterFlags(cmd *cobra.Command, o *bootstrap.Options) {
	cmd.Flags().StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	cmd.Flags().StringVar(&o.Context, "context", "", "kubeconfig context (default the current one)")
}

func newBootstrapUninstallCmd() *cobra.Command {
	o := bootstrap.Options{}
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove what bootstrap installed, in reverse order",
		Long: `Remove the webhook, linkerd-viz and its PodMonitors, the control plane, the CRDs
and the identity objects bootstrap created, then the namespaces bootstrap
created. Namespaces that existed before (and anything else in them) stay.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return bootstrapExit(bootstrap.Uninstall(ctx, o, cmd.OutOrStdout()))
		},
	}
	addClusterFlags(cmd, &o)
	cmd.Flags().StringVar(&o.PodMonitorNamespace, "podmonitor-namespace", bootstrap.VizNamespace, "namespace bootstrap put the PodMonitors in")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 5*time.Minute, "how long each Helm uninstall may take")
	return cmd
}

// bootstrapExit gives bad options exit code 2, like the other commands.
func bootstrapExit(err error) error {
	var be *bootstrap.Error
	if errors.As(err, &be) && be.Usage {
		return &exitError{code: 2, err: err}
	}
	return err
}
