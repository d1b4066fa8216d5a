package bootstrap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/repo"
	"helm.sh/helm/v3/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// chartSource finds the Linkerd charts: a Helm repository (the default) or
// a directory for air-gapped clusters.
type chartSource interface {
	Load(name string) (*chart.Chart, error)
	String() string
}

// repoSource downloads charts from a Helm repository by name and version.
type repoSource struct {
	url     string
	version string
	getters getter.Providers
	cache   string // temporary directory for the index, removed by Close
	index   *repo.IndexFile
}

func newRepoSource(repoURL, version string, getters getter.Providers) (*repoSource, error) {
	if getters == nil {
		getters = getter.All(cli.New())
	}
	cache, err := os.MkdirTemp("", "lip-bootstrap-repo-")
	if err != nil {
		return nil, fmt.Errorf("create repository cache: %w", err)
	}
	return &repoSource{url: repoURL, version: version, getters: getters, cache: cache}, nil
}

func (s *repoSource) String() string { return s.url }

func (s *repoSource) Close() { _ = os.RemoveAll(s.cache) }

func (s *repoSource) unreachable(name string, err error) error {
	return &Error{
		Problem: fmt.Sprintf("chart %s not reachable in repository %s", name, s.url),
		Err:     err,
		Fix:     "check --repo and --version and that the repository is reachable, or use --chart-dir DIR for air-gapped clusters",
	}
}

func (s *repoSource) Load(name string) (*chart.Chart, error) {
	if s.index == nil {
		// Our own cache directory: never touch the user's Helm repositories.
		r, err := repo.NewChartRepository(&repo.Entry{Name: "bootstrap", URL: s.url}, s.getters)
		if err != nil {
			return nil, s.unreachable(name, err)
		}
		r.CachePath = s.cache
		path, err := r.DownloadIndexFile()
		if err != nil {
			return nil, s.unreachable(name, err)
		}
		idx, err := repo.LoadIndexFile(path)
		if err != nil {
			return nil, s.unreachable(name, err)
		}
		s.index = idx
	}
	cv, err := s.index.Get(name, s.version)
	if err != nil {
		what := "any version"
		if s.version != "" {
			what = "version " + s.version
		}
		return nil, s.unreachable(name, fmt.Errorf("the index has no %s of it", what))
	}
	if len(cv.URLs) == 0 {
		return nil, s.unreachable(name, errors.New("the index lists no download URL"))
	}
	chartURL, err := repo.ResolveReferenceURL(s.url, cv.URLs[0])
	if err != nil {
		return nil, s.unreachable(name, err)
	}
	u, err := url.Parse(chartURL)
	if err != nil {
		return nil, s.unreachable(name, err)
	}
	g, err := s.getters.ByScheme(u.Scheme)
	if err != nil {
		return nil, s.unreachable(name, err)
	}
	body, err := g.Get(chartURL)
	if err != nil {
		return nil, s.unreachable(name, err)
	}
	ch, err := loader.LoadArchive(body)
	if err != nil {
		return nil, s.unreachable(name, fmt.Errorf("load %s: %w", chartURL, err))
	}
	if err := checkDependencies(ch, chartURL); err != nil {
		return nil, err
	}
	return ch, nil
}

// helmRelease is one chart to install or upgrade.
type helmRelease struct {
	name      string
	namespace string
	chart     *chart.Chart
	values    map[string]any
	// digest is chartDigest of the chart as loaded, taken before Helm
	// touches it (Helm merges subchart values into the chart it renders).
	digest string
}

func newHelmRelease(name, namespace string, ch *chart.Chart, vals map[string]any) helmRelease {
	return helmRelease{name: name, namespace: namespace, chart: ch, values: vals, digest: chartDigest(ch)}
}

// chartDigestLabel is the release label (on Helm's release Secret) holding
// the digest of the chart a revision was made from. Helm stores a chart
// without its subcharts and with their values merged in, so the stored
// chart can never be compared with the loaded one.
const chartDigestLabel = "linkerd-inject-policy.io/chart-digest"

// helmOutcome says what ensureRelease did.
type helmOutcome struct {
	action   string // installed, upgraded, unchanged
	revision int
	release  *release.Release
	// hooks started without waiting (--wait=false).
	hooks []string
}

func (o helmOutcome) String() string {
	s := fmt.Sprintf("%s (revision %d)", o.action, o.revision)
	if len(o.hooks) > 0 {
		s += fmt.Sprintf(", hooks started without waiting: %s", strings.Join(o.hooks, ", "))
	}
	return s
}

func helmConfig(cfg *rest.Config, namespace string) (*action.Configuration, error) {
	getter, err := newRESTClientGetter(cfg, namespace)
	if err != nil {
		return nil, err
	}
	ac := new(action.Configuration)
	if err := ac.Init(getter, namespace, "secret", func(string, ...any) {}); err != nil {
		return nil, fmt.Errorf("helm configuration: %w", err)
	}
	return ac, nil
}

// releaseHistory returns every revision of a release, oldest first.
func releaseHistory(ac *action.Configuration, name string) ([]*release.Release, error) {
	rels, err := action.NewHistory(ac).Run(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("history of release %s: %w", name, err)
	}
	releaseutil.SortByRevision(rels)
	return rels, nil
}

// lastRelease returns the newest revision of a release, or nil if there is none.
func lastRelease(ac *action.Configuration, name string) (*release.Release, error) {
	rels, err := releaseHistory(ac, name)
	if err != nil || len(rels) == 0 {
		return nil, err
	}
	return rels[len(rels)-1], nil
}

// neverDeployed reports whether no revision of a release was ever
// deployed: its install failed (a hook that did not complete) or was
// interrupted. Such a release is installed again, not upgraded, so that
// its install hooks run again.
func neverDeployed(rels []*release.Release) bool {
	for _, r := range rels {
		if r.Info.Status == release.StatusDeployed || r.Info.Status == release.StatusSuperseded {
			return false
		}
	}
	return true
}

// ensureRelease installs r, or upgrades it when its chart, values or set
// of objects differ from the deployed revision, so a re-run leaves
// revisions alone. A revision left pending by an interrupted run is marked
// failed first, which is what lets the upgrade go ahead. Without wait,
// Helm's hooks are started, not waited for.
func ensureRelease(ctx context.Context, cfg *rest.Config, r helmRelease, timeout time.Duration, wait bool) (helmOutcome, error) {
	ac, err := helmConfig(cfg, r.namespace)
	if err != nil {
		return helmOutcome{}, err
	}
	history, err := releaseHistory(ac, r.name)
	if err != nil {
		return helmOutcome{}, err
	}
	var last *release.Release
	if len(history) > 0 {
		last = history[len(history)-1]
	}
	if last != nil && last.Info.Status.IsPending() {
		last.SetStatus(release.StatusFailed, "interrupted; recovered by linkerd-inject-policy bootstrap")
		if err := ac.Releases.Update(last); err != nil {
			return helmOutcome{}, fmt.Errorf("recover interrupted release %s/%s: %w", r.namespace, r.name, err)
		}
	}
	labels := map[string]string{chartDigestLabel: r.digest[:32]}

	if last == nil || last.Info.Status == release.StatusUninstalled || neverDeployed(history) {
		in := action.NewInstall(ac)
		in.ReleaseName = r.name
		in.Namespace = r.namespace
		in.Timeout = timeout
		in.Replace = last != nil
		in.Labels = labels
		in.DisableHooks = !wait
		rel, err := in.RunWithContext(ctx, r.chart, r.values)
		if err != nil {
			return helmOutcome{}, hookError(failedRelease(ac, r.name), fmt.Errorf("install release %s/%s: %w", r.namespace, r.name, err), timeout)
		}
		out := helmOutcome{action: "installed", revision: rel.Version, release: rel}
		if !wait {
			out.hooks, err = startReleaseHooks(ac, rel, timeout, release.HookPreInstall, release.HookPostInstall)
		}
		return out, err
	}

	// Render what an upgrade would deploy, without deploying it.
	preview := action.NewUpgrade(ac)
	preview.Namespace = r.namespace
	preview.DryRun = true
	rendered, err := preview.RunWithContext(ctx, r.name, r.chart, r.values)
	if err != nil {
		return helmOutcome{}, fmt.Errorf("render release %s/%s: %w", r.namespace, r.name, err)
	}
	if last.Info.Status == release.StatusDeployed && sameRelease(last, rendered, r) {
		return helmOutcome{action: "unchanged", revision: last.Version, release: last}, nil
	}

	up := action.NewUpgrade(ac)
	up.Namespace = r.namespace
	up.Timeout = timeout
	up.Labels = labels
	up.DisableHooks = !wait
	// Keep a few revisions for `helm rollback`, not an unbounded pile.
	up.MaxHistory = 10
	rel, err := up.RunWithContext(ctx, r.name, r.chart, r.values)
	if err != nil {
		return helmOutcome{}, hookError(failedRelease(ac, r.name), fmt.Errorf("upgrade release %s/%s: %w", r.namespace, r.name, err), timeout)
	}
	out := helmOutcome{action: "upgraded", revision: rel.Version, release: rel}
	if !wait {
		out.hooks, err = startReleaseHooks(ac, rel, timeout, release.HookPreUpgrade, release.HookPostUpgrade)
	}
	return out, err
}

// failedRelease is the revision Helm recorded for a failed action, which
// marks the hook that failed; nil if there is none.
func failedRelease(ac *action.Configuration, name string) *release.Release {
	rel, err := lastRelease(ac, name)
	if err != nil || rel == nil || rel.Info.Status != release.StatusFailed {
		return nil
	}
	return rel
}

// startReleaseHooks starts the hooks of rel for events; if one cannot be
// created the revision is marked failed, so the next run tries again.
// Pre-hooks start after the release's objects here: without waiting
// there is nothing they could hold back.
func startReleaseHooks(ac *action.Configuration, rel *release.Release, timeout time.Duration, events ...release.HookEvent) ([]string, error) {
	var started []string
	for _, e := range events {
		s, err := startHooks(ac, rel, e, timeout)
		started = append(started, s...)
		if err != nil {
			rel.SetStatus(release.StatusFailed, "hook not started by linkerd-inject-policy bootstrap: "+oneLine(err.Error()))
			if uerr := ac.Releases.Update(rel); uerr != nil {
				return started, fmt.Errorf("%w (and marking release %s/%s failed: %v)", err, rel.Namespace, rel.Name, uerr)
			}
			return started, fmt.Errorf("release %s/%s: %w", rel.Namespace, rel.Name, err)
		}
	}
	return started, nil
}

// sameRelease reports whether deploying r would change nothing. Charts
// that generate secrets in their templates (Linkerd's make their webhooks'
// TLS Secrets with genSelfSignedCert) render differently every time, so the
// rendered manifests cannot decide. What does: the same values, the same
// chart (its digest in the release's label), and the same set of objects
// (a chart that renders other objects for another cluster, such as the
// webhook's Certificate once cert-manager is there, must be upgraded).
// Releases from before the label are unchanged only if their manifest is.
func sameRelease(deployed, rendered *release.Release, r helmRelease) bool {
	if !sameValues(deployed.Config, r.values) {
		return false
	}
	if deployed.Manifest == rendered.Manifest {
		return true
	}
	return deployed.Labels[chartDigestLabel] == r.digest[:32] &&
		strings.Join(objectSet(deployed), "\n") == strings.Join(objectSet(rendered), "\n")
}

// objectSet lists kind, namespace and name of every object of a release.
func objectSet(rel *release.Release) []string {
	var out []string
	for _, doc := range releaseutil.SplitManifests(rel.Manifest) {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil || head.Kind == "" {
			continue
		}
		out = append(out, head.APIVersion+" "+head.Kind+" "+head.Metadata.Namespace+"/"+head.Metadata.Name)
	}
	sort.Strings(out)
	return out
}

func sameValues(a, b map[string]any) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	// JSON normalises numbers (YAML ints against stored float64s) and sorts keys.
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

// chartDigest hashes everything of a chart, subcharts included, that can
// change what it renders.
func chartDigest(ch *chart.Chart) string {
	h := sha256.New()
	var walk func(c *chart.Chart)
	walk = func(c *chart.Chart) {
		meta, _ := json.Marshal(c.Metadata)
		vals, _ := json.Marshal(c.Values)
		fmt.Fprintf(h, "chart %s\nvalues %s\nschema %d\n", meta, vals, len(c.Schema))
		h.Write(c.Schema)
		for _, set := range [][]*chart.File{c.Templates, c.Files} {
			files := append([]*chart.File(nil), set...)
			sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
			for _, f := range files {
				fmt.Fprintf(h, "file %s %d\n", f.Name, len(f.Data))
				h.Write(f.Data)
			}
		}
		deps := append([]*chart.Chart(nil), c.Dependencies()...)
		sort.Slice(deps, func(i, j int) bool { return deps[i].Name() < deps[j].Name() })
		for _, d := range deps {
			walk(d)
		}
	}
	walk(ch)
	return hex.EncodeToString(h.Sum(nil))
}

// renderRelease renders r client-side for --dry-run, with the cluster's
// (or --kube-version's) Kubernetes version and API versions when known,
// and writes every manifest (CRDs and hooks included) to w, private keys
// redacted.
func renderRelease(r helmRelease, kubeVersion string, apiVersions []string, w io.Writer) error {
	in := action.NewInstall(&action.Configuration{})
	in.ReleaseName = r.name
	in.Namespace = r.namespace
	in.DryRun = true
	in.ClientOnly = true
	in.IncludeCRDs = true
	in.Replace = true
	in.APIVersions = apiVersions
	if kubeVersion != "" {
		kv, err := chartutil.ParseKubeVersion(kubeVersion)
		if err == nil {
			in.KubeVersion = kv
		}
	}
	rel, err := in.Run(r.chart, r.values)
	if err != nil {
		return fmt.Errorf("render release %s/%s: %w", r.namespace, r.name, err)
	}
	fmt.Fprintf(w, "# Helm release %s in namespace %s: chart %s %s\n", r.name, r.namespace, r.chart.Name(), r.chart.Metadata.Version)
	for _, doc := range releaseutil.SplitManifests(rel.Manifest) {
		fmt.Fprintf(w, "---\n%s\n", redactPrivateKeys(strings.TrimSpace(doc)))
	}
	for _, hook := range rel.Hooks {
		fmt.Fprintf(w, "---\n# Source: %s (hook %v)\n%s\n", hook.Path, hook.Events, redactPrivateKeys(strings.TrimSpace(hook.Manifest)))
	}
	return nil
}

// redactedNote replaces a private key in --dry-run output.
const redactedNote = "<private key redacted: the real run's chart generates its own>"

// redactPrivateKeys returns a rendered document with the private keys of a
// Secret (a charts' generated webhook TLS key, say) replaced by a note, and
// a comment saying so; anything else is returned as it is.
func redactPrivateKeys(doc string) string {
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil || obj["kind"] != "Secret" {
		return doc
	}
	var redacted []string
	for _, field := range []string{"data", "stringData"} {
		data, _ := obj[field].(map[string]any)
		for k, v := range data {
			str, _ := v.(string)
			if field == "data" {
				if dec, err := base64.StdEncoding.DecodeString(str); err == nil {
					str = string(dec)
				}
			}
			if str != redactedNote && (strings.Contains(str, "PRIVATE KEY") || k == corev1.TLSPrivateKeyKey) {
				delete(data, k)
				if obj["stringData"] == nil {
					obj["stringData"] = map[string]any{}
				}
				obj["stringData"].(map[string]any)[k] = redactedNote
				redacted = append(redacted, k)
			}
		}
	}
	if len(redacted) == 0 {
		return doc
	}
	out, err := yaml.Marshal(obj)
	if err != nil {
		return "# a Secret that could not be re-encoded without its private key was left out"
	}
	sort.Strings(redacted)
	// Keep Helm's "# Source:" line.
	var comments []string
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "#") {
			comments = append(comments, line)
		}
	}
	comments = append(comments, "# private key data redacted from the dry run: "+strings.Join(redacted, ", "))
	return strings.Join(comments, "\n") + "\n" + strings.TrimSpace(string(out))
}

// uninstallRelease removes a release if it exists; it reports whether it did.
func uninstallRelease(cfg *rest.Config, name, namespace string, timeout time.Duration) (bool, error) {
	ac, err := helmConfig(cfg, namespace)
	if err != nil {
		return false, err
	}
	last, err := lastRelease(ac, name)
	if err != nil {
		return false, err
	}
	if last == nil {
		return false, nil
	}
	un := action.NewUninstall(ac)
	un.Timeout = timeout
	if _, err := un.Run(name); err != nil {
		return false, fmt.Errorf("uninstall release %s/%s: %w", namespace, name, err)
	}
	// Helm leaves hook objects alone; those of install and upgrade hooks
	// that were started without waiting (--wait=false) are still there.
	for _, h := range last.Hooks {
		if h.Kind == "CustomResourceDefinition" || !hasInstallEvent(h) {
			continue
		}
		resources, err := ac.KubeClient.Build(bytes.NewBufferString(h.Manifest), false)
		if err != nil {
			return true, fmt.Errorf("hook %s %s/%s of release %s/%s: %w", h.Kind, namespace, h.Name, namespace, name, err)
		}
		if _, errs := ac.KubeClient.Delete(resources); len(errs) > 0 {
			return true, fmt.Errorf("delete hook %s %s/%s of release %s/%s: %w", h.Kind, namespace, h.Name, namespace, name, errs[0])
		}
	}
	return true, nil
}

func hasInstallEvent(h *release.Hook) bool {
	for _, e := range h.Events {
		switch e {
		case release.HookPreInstall, release.HookPostInstall, release.HookPreUpgrade, release.HookPostUpgrade:
			return true
		}
	}
	return false
}
