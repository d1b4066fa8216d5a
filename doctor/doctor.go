// Package doctor looks at a running cluster for what admission alone cannot
// fix: pods that predate a namespace's inject annotation or an anchor
// rotation, Jobs held open by their proxy, workloads the policy would change
// today, annotation mistakes and Services without opaque ports. It reads with
// get and list only (paginated); restarts (Restart) and reports
// (ApplyReports) are separate steps the caller asks for.
//
// The policy decisions come from policy.Admit with facts.Read's Environment,
// the same semantics as serve and check.
package doctor

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/facts"
	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// Finding codes. They are stable: scripts and OpenReports consumers match
// on them.
const (
	CodeJobStuckOnProxy = "job_stuck_on_proxy"
	CodeNeedsRestart    = "needs_restart"
	CodeStaleTrustRoot  = "stale_trust_root"
	CodePolicyDrift     = "policy_drift"
	CodeServiceOpaque   = "service_not_opaque"
	// The annotation lint's codes (policy.Finding.Code) are used as they are:
	// misplaced_annotation, invalid_annotation, unknown_annotation,
	// deprecated_annotation, unsupported_annotation.
)

// TrustRootsConfigMap is Linkerd's trust bundle: ConfigMap
// linkerd-identity-trust-roots, key ca-bundle.crt.
const (
	TrustRootsConfigMap = "linkerd-identity-trust-roots"
	TrustRootsKey       = "ca-bundle.crt"
)

// Linkerd's pod annotations that doctor reads.
const (
	AnnotationTrustRoot = "linkerd.io/trust-root-sha256"
	ProxyContainer      = "linkerd-proxy"
	// LabelAdmissionWebhooks disabled on a namespace makes Linkerd's
	// injector skip it.
	LabelAdmissionWebhooks = "config.linkerd.io/admission-webhooks"
)

// injectorSkipsNamespaces are the namespaces Linkerd's injector
// registration never sends (shared/linkerd/README.md).
var injectorSkipsNamespaces = []string{"kube-system", "cert-manager"}

// Options say what to scan and how.
type Options struct {
	// Namespace limits the scan to one namespace; "" scans all.
	Namespace string
	// Config is the PolicyConfig serve and check use (nil: defaults).
	Config *policy.Config
	// ConfigPath is the file Config came from, repeated in fix commands
	// ("" for the defaults).
	ConfigPath string
	// LinkerdNamespace is where Linkerd runs ("" for linkerd).
	LinkerdNamespace string
	// Dynamic, when set, also lists the policy's custom kinds (ECK's
	// Elasticsearch and Kibana) where their CRDs are installed.
	Dynamic dynamic.Interface
	// Progress receives one line per page listed (nil: none).
	Progress io.Writer
	// PageSize is the list page size (0: 500).
	PageSize int64
	// Now stamps report results (nil: time.Now).
	Now func() time.Time
}

// Finding is one thing wrong with one object.
type Finding struct {
	Code      string `json:"code"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Workload is the top-level workload a pod belongs to, as Kind/name
	// (Deployment/web, CronJob/backup), or the object itself for
	// workloads; "" for bare pods and Services.
	Workload string `json:"workload"`
	Message  string `json:"message"`
	// Fix is a command a person can run.
	Fix string `json:"fix"`

	// owner is the object a restart acts on (zero: none).
	owner Ref
}

// Ref names an object.
type Ref struct {
	Kind, Namespace, Name string
}

func (r Ref) String() string {
	if r.Namespace == "" {
		return r.Kind + "/" + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// Summary counts what was found and scanned.
type Summary struct {
	// Findings is the number of findings; ByCode splits it.
	Findings int            `json:"findings"`
	ByCode   map[string]int `json:"byCode"`
	// Scanned counts the objects listed, by kind.
	Scanned map[string]int `json:"scanned"`
	// Facts is policy.Environment.Summary of the facts used.
	Facts string `json:"facts"`
	// Notes say what could not be read (and which checks were skipped).
	Notes []string `json:"notes,omitempty"`
}

// Result is one scan.
type Result struct {
	Findings []Finding `json:"findings"`
	Summary  Summary   `json:"summary"`
	// Fixes is what Restart did, when asked.
	Fixes []FixAction `json:"fixes,omitempty"`

	// Namespace is the scope scanned ("" for all), for ApplyReports.
	Namespace string `json:"-"`
	// Time is when the scan ran.
	Time time.Time `json:"-"`
}

// Run scans the cluster once. An error means the cluster could not be
// asked (connection, authentication, a list forbidden); missing Linkerd
// ConfigMaps are notes, not errors.
func Run(ctx context.Context, client kubernetes.Interface, opts Options) (Result, error) {
	if opts.Config == nil {
		opts.Config = policy.DefaultConfig()
	}
	if opts.LinkerdNamespace == "" {
		opts.LinkerdNamespace = facts.DefaultLinkerdNamespace
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 500
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	env, note, err := facts.Read(ctx, client, opts.LinkerdNamespace)
	if err != nil {
		return Result{}, err
	}
	s := &scan{
		ctx:     ctx,
		client:  client,
		opts:    opts,
		env:     env,
		owners:  map[Ref]Ref{},
		tmplAnn: map[Ref]string{},
		scanned: map[string]int{},
	}
	if note != "" {
		s.notes = append(s.notes, note)
	}
	if err := s.run(); err != nil {
		return Result{}, err
	}
	sortFindings(s.findings)
	r := Result{
		Findings:  s.findings,
		Namespace: opts.Namespace,
		Time:      now(),
		Summary: Summary{
			Findings: len(s.findings),
			ByCode:   map[string]int{},
			Scanned:  s.scanned,
			Facts:    env.Summary(),
			Notes:    s.notes,
		},
	}
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	for _, f := range s.findings {
		r.Summary.ByCode[f.Code]++
	}
	return r, nil
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Code < b.Code
	})
}

// kubectlNS is " -n NS" for namespaced objects.
func kubectlNS(ns string) string {
	if ns == "" {
		return ""
	}
	return " -n " + shellQuote(ns)
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
