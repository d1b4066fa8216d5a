package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/facts"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/manifest"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// checkFlags are the check command's flags.
type checkFlags struct {
	files      []string
	configPath string
	output     string
	// The facts of the installed Linkerd and Kubernetes: from a file and a
	// version, or read from a live cluster.
	linkerdConfig    string
	kubeVersion      string
	kubeconfig       string
	kubeContext      string
	linkerdNamespace string
}

func newCheckCmd() *cobra.Command {
	f := &checkFlags{}
	cmd := &cobra.Command{
		Use:   "check -f PATH|DIR|- [-f ...] [--config FILE] [--linkerd-config FILE] [--kube-version vX.Y] [--kubeconfig K] [--context C] [-o yaml|json|table]",
		Short: "Apply the policy to manifest files offline",
		Long: `Apply the injection policy to Kubernetes manifests offline, as the webhook
would in an enforced namespace, and print them: pipe the result to
kubectl apply -f -.

Inputs are files, directories (every .yaml, .yml and .json file below them,
in sorted order) or - for stdin; multi-document YAML, JSON and List objects
(whose items are evaluated one by one) are understood. Documents are printed
in input order; those the policy does not change are printed exactly as they
were, changed ones keep their field order, comments and unknown fields.

Every document is treated as admitted in enforce mode, except that a
document whose metadata.namespace is one of the configuration's
excludedNamespaces, or which lowers its own mode with the
linkerd-inject-policy.io/mode annotation, is left unchanged, as the webhook
would leave it.

The rules decide by the installed Linkerd and Kubernetes. Without facts
they behave as for Linkerd 2.11 (the conservative case). Give them with
--linkerd-config (ConfigMap linkerd-config as kubectl get -o yaml prints it,
or the plain Helm values in its "values" key) and --kube-version, or read
both from a live cluster with --kubeconfig and/or --context (ConfigMap
linkerd-config in --linkerd-namespace, and the apiserver's version; only
reads). With a cluster, --linkerd-config and --kube-version replace what it
says.

-o table states the facts used in its first line, then prints one row per
object: the rules that changed it and why (including rules that
deliberately left it alone, such as user_override or
native_sidecar_completes), then the Linkerd annotation warnings.

Linkerd annotation warnings (misplaced, invalid, unknown, deprecated or not
yet read annotations; never rewritten) go to stderr as
"warning: SOURCE: OBJECT: text" lines, in every output format.

Exit status: 0 on success, whether or not anything changed or was warned
about; 2 on bad input, with one "file: document N: reason" line per problem,
and on a bad flag value, with one line; 1 when the cluster cannot be read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCheck(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.files, "filename", "f", nil, "manifest file, directory, or - for stdin (repeatable)")
	fl.StringVar(&f.configPath, "config", "", "PolicyConfig file (default: built-in defaults)")
	fl.StringVarP(&f.output, "output", "o", "yaml", "output format: yaml, json or table")
	fl.StringVar(&f.linkerdConfig, "linkerd-config", "", "ConfigMap linkerd-config (kubectl get -o yaml) or its values file: the installed Linkerd's facts (default: unknown)")
	fl.StringVar(&f.kubeVersion, "kube-version", "", "Kubernetes version of the cluster, such as v1.31 (default: unknown)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "read the facts from this cluster (default with --context: $KUBECONFIG or ~/.kube/config)")
	fl.StringVar(&f.kubeContext, "context", "", "read the facts from the cluster of this kubeconfig context")
	fl.StringVar(&f.linkerdNamespace, "linkerd-namespace", facts.DefaultLinkerdNamespace, "namespace of Linkerd's control plane, with --kubeconfig or --context")
	return cmd
}

// checkRow is one object of the table output.
type checkRow struct {
	source, object, rules, reasons string
}

// checkWarning is one lint finding, for stderr and the table.
type checkWarning struct {
	source, object string
	finding        policy.Finding
}

func (w checkWarning) String() string {
	return "warning: " + w.source + ": " + w.object + ": " + w.finding.Message
}

func runCheck(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, f *checkFlags) error {
	switch f.output {
	case "yaml", "json", "table":
	default:
		return &exitError{code: 2, err: fmt.Errorf("-o %q: must be yaml, json or table", f.output)}
	}
	if len(f.files) == 0 {
		return &exitError{code: 2, err: errors.New("no input: give -f FILE, -f DIR or -f - for stdin")}
	}
	cfg := policy.DefaultConfig()
	if f.configPath != "" {
		c, err := policy.LoadConfigFile(f.configPath)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--config: %w", err)}
		}
		cfg = c
	}
	env, err := checkFacts(ctx, stderr, f)
	if err != nil {
		return err
	}

	sources, err := manifest.ExpandInputs(f.files)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	var docs []*manifest.Document
	var rows []checkRow
	var warnings []checkWarning
	var problems []string
	for _, src := range sources {
		data, name, err := manifest.ReadSource(src, stdin)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		ds, err := manifest.Split(name, data)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		for _, d := range ds {
			r, w, err := checkDocument(d, cfg, env)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: document %d: %v", d.Source, d.Index, err))
				continue
			}
			docs = append(docs, d)
			rows = append(rows, r...)
			warnings = append(warnings, w...)
		}
	}
	if len(problems) > 0 {
		// Nothing is printed: a partial stream piped to kubectl apply
		// would apply half of the input.
		return &exitError{code: 2, err: errors.New(strings.Join(problems, "\n"))}
	}
	for _, w := range warnings {
		fmt.Fprintln(stderr, w)
	}

	w := bufio.NewWriter(stdout)
	switch f.output {
	case "yaml":
		err = manifest.WriteYAML(w, docs)
	case "json":
		err = manifest.WriteJSON(w, docs)
	case "table":
		err = writeTable(w, env, rows, warnings)
	}
	if err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// checkFacts gathers the facts the rules decide by: from the cluster when
// --kubeconfig or --context is given, then --linkerd-config and
// --kube-version on top.
func checkFacts(ctx context.Context, stderr io.Writer, f *checkFlags) (policy.Environment, error) {
	var env policy.Environment
	live := f.kubeconfig != "" || f.kubeContext != ""
	if !live && f.linkerdNamespace != facts.DefaultLinkerdNamespace {
		return env, &exitError{code: 2, err: errors.New("--linkerd-namespace: only read from a cluster: give --kubeconfig or --context too")}
	}
	if live {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = f.kubeconfig
		overrides := &clientcmd.ConfigOverrides{CurrentContext: f.kubeContext}
		rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
		if err != nil {
			return env, &exitError{code: 2, err: fmt.Errorf("--kubeconfig/--context: %s", oneLine(err))}
		}
		rc.Timeout = 15 * time.Second
		client, err := kubernetes.NewForConfig(rc)
		if err != nil {
			return env, &exitError{code: 2, err: fmt.Errorf("--kubeconfig/--context: %s", oneLine(err))}
		}
		if ctx == nil {
			ctx = context.Background()
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		e, note, err := facts.Read(ctx, client, f.linkerdNamespace)
		if err != nil {
			return env, &exitError{code: 1, err: fmt.Errorf("read the facts from %s: %s", rc.Host, oneLine(err))}
		}
		if note != "" {
			fmt.Fprintln(stderr, "note: "+note)
		}
		env = e
	}
	if f.linkerdConfig != "" {
		data, err := os.ReadFile(f.linkerdConfig)
		if err != nil {
			return env, &exitError{code: 2, err: fmt.Errorf("--linkerd-config: %s", oneLine(err))}
		}
		e, err := policy.LinkerdFactsFromFile(f.linkerdConfig, data)
		if err != nil {
			return env, &exitError{code: 2, err: fmt.Errorf("--linkerd-config: %s", oneLine(err))}
		}
		e.Kubernetes = env.Kubernetes
		env = e
	}
	if f.kubeVersion != "" {
		v, err := policy.ParseKubernetesVersion(f.kubeVersion)
		if err != nil {
			return env, &exitError{code: 2, err: fmt.Errorf("--kube-version: %w", err)}
		}
		env.Kubernetes = v
	}
	return env, nil
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }

// checkDocument parses a document and admits the object(s) in it.
func checkDocument(d *manifest.Document, cfg *policy.Config, env policy.Environment) ([]checkRow, []checkWarning, error) {
	if err := d.Parse(); err != nil {
		return nil, nil, err
	}
	objs := d.Objects()
	if len(objs) == 0 {
		return nil, nil, nil
	}
	var rows []checkRow
	var warnings []checkWarning
	outs := make([]map[string]any, len(objs))
	for i, o := range objs {
		out, row, ws, err := checkObject(o.Value, cfg, env)
		if err != nil {
			if o.Item != "" {
				return nil, nil, fmt.Errorf("%s: %w", o.Item, err)
			}
			return nil, nil, err
		}
		row.source = o.Name
		for j := range ws {
			ws[j].source = o.Name
		}
		outs[i] = out
		rows = append(rows, row)
		warnings = append(warnings, ws...)
	}
	if err := d.SetResult(outs); err != nil {
		return nil, nil, err
	}
	return rows, warnings, nil
}

// enforcedNamespace is what check assumes of every namespace.
var enforcedNamespace = map[string]string{policy.LabelMode: string(policy.ModeEnforce)}

// checkObject admits one object as the webhook would in an enforced
// namespace (policy.Admit decides: excluded namespaces and the object's
// own mode annotation leave it unchanged) and keeps what enforce mode
// would store.
func checkObject(obj map[string]any, cfg *policy.Config, env policy.Environment) (map[string]any, checkRow, []checkWarning, error) {
	u := &unstructured.Unstructured{Object: obj}
	row := checkRow{object: objectRef(u), rules: "-", reasons: "-"}
	a, err := policy.Admit(u, policy.Context{NamespaceLabels: enforcedNamespace, Env: env}, cfg)
	if err != nil {
		return nil, row, nil, err
	}
	var warnings []checkWarning
	for _, f := range a.Findings {
		warnings = append(warnings, checkWarning{object: row.object, finding: f})
	}
	if a.Mode != policy.ModeEnforce {
		if a.ModeReason == policy.ModeReasonExcludedNamespace {
			row.reasons = "excluded_namespace"
		} else {
			row.reasons = "mode_" + string(a.Mode) + " (object annotation)"
		}
		return obj, row, warnings, nil
	}
	dec := a.Decision
	var rules, reasons []string
	for _, c := range dec.Changes {
		if !slicesContains(rules, c.Rule) {
			rules = append(rules, c.Rule)
		}
		if !slicesContains(reasons, c.Reason) {
			reasons = append(reasons, c.Reason)
		}
	}
	for _, s := range dec.Skipped {
		r := s.Reason
		if s.Rule != "" {
			r += " (" + s.Rule + ")"
		}
		if !slicesContains(reasons, r) {
			reasons = append(reasons, r)
		}
	}
	if len(rules) > 0 {
		row.rules = strings.Join(rules, ",")
	}
	if len(reasons) > 0 {
		row.reasons = strings.Join(reasons, ",")
	}
	return dec.Object.Object, row, warnings, nil
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func objectRef(u *unstructured.Unstructured) string {
	name := u.GetName()
	if name == "" && u.GetGenerateName() != "" {
		name = u.GetGenerateName() + "*"
	}
	if name == "" {
		name = "(unnamed)"
	}
	if ns := u.GetNamespace(); ns != "" {
		return u.GetKind() + "/" + ns + "/" + name
	}
	return u.GetKind() + "/" + name
}

// writeTable prints the facts used, one row per object, then the lint's
// warnings (if any).
func writeTable(w io.Writer, env policy.Environment, rows []checkRow, warnings []checkWarning) error {
	fmt.Fprintf(w, "Facts: %s\n", env.Summary())
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tOBJECT\tRULES\tREASONS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.source, r.object, r.rules, r.reasons)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(warnings) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tOBJECT\tWARNING\tMESSAGE")
	for _, x := range warnings {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", x.source, x.object, x.finding.Code, x.finding.Message)
	}
	return tw.Flush()
}
