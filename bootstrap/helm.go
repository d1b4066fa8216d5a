package bootstrap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
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
	"k8s.io/client-go/rest"
)

// chartSource finds the Linkerd charts: a Helm repository (the default) or
// a directory for air-gapped clusters.
type chartSource interface {
	Load(name string) (*chart.Chart, error)
	String() string
}

// dirSource loads DIR/NAME (an unpacked chart) or DIR/NAME-*.tgz.
type dirSource struct{ dir string }

func (s dirSource) String() string { return s.dir }

func (s dirSource) Load(name string) (*chart.Chart, error) {
	path := filepath.Join(s.dir, name)
	if _, err := os.Stat(path); err != nil {
		matches, _ := filepath.Glob(filepath.Join(s.dir, name+"-*.tgz"))
		if len(matches) == 0 {
			return nil, &Error{
				Problem: fmt.Sprintf("chart %s not found in --chart-dir %s", name, s.dir),
				Fix:     fmt.Sprintf("put the unpacked chart in %s (helm pull --untar) or its .tgz next to it", path),
			}
		}
		sort.Strings(matches)
		path = matches[len(matches)-1]
	}
	ch, err := loader.Load(path)
	if err != nil {
		return nil, &Error{Problem: fmt.Sprintf("load chart %s", path), Err: err, Fix: "check it is a valid Helm chart"}
	}
	return ch, nil
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
	return ch, nil
}

// helmRelease is one chart to install or upgrade.
type helmRelease struct {
	name      string
	namespace string
	chart     *chart.Chart
	values    map[string]any
}

// helmOutcome says what ensureRelease did.
type helmOutcome struct {
	action   string // installed, upgraded, unchanged
	revision int
	release  *release.Release
}

func (o helmOutcome) String() string {
	if o.action == "unchanged" {
		return fmt.Sprintf("unchanged (revision %d)", o.revision)
	}
	return fmt.Sprintf("%s (revision %d)", o.action, o.revision)
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

// lastRelease returns the newest revision of a release, or nil if there is none.
func lastRelease(ac *action.Configuration, name string) (*release.Release, error) {
	h := action.NewHistory(ac)
	rels, err := h.Run(name)
	if errors.Is(err, driver.ErrReleaseNotFound) || (err == nil && len(rels) == 0) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("history of release %s: %w", name, err)
	}
	releaseutil.SortByRevision(rels)
	return rels[len(rels)-1], nil
}

// ensureRelease installs r, or upgrades it when its rendered manifest or
// values differ from the deployed revision, so a re-run leaves revisions
// alone. A revision left pending by an interrupted run is marked failed
// first, which is what lets the upgrade go ahead.
func ensureRelease(ctx context.Context, cfg *rest.Config, r helmRelease, timeout time.Duration) (helmOutcome, error) {
	ac, err := helmConfig(cfg, r.namespace)
	if err != nil {
		return helmOutcome{}, err
	}
	last, err := lastRelease(ac, r.name)
	if err != nil {
		return helmOutcome{}, err
	}
	if last == nil || last.Info.Status == release.StatusUninstalled {
		in := action.NewInstall(ac)
		in.ReleaseName = r.name
		in.Namespace = r.namespace
		in.Timeout = timeout
		in.Replace = last != nil
		rel, err := in.RunWithContext(ctx, r.chart, r.values)
		if err != nil {
			return helmOutcome{}, fmt.Errorf("install release %s/%s: %w", r.namespace, r.name, err)
		}
		return helmOutcome{action: "installed", revision: rel.Version, release: rel}, nil
	}
	if last.Info.Status.IsPending() {
		last.SetStatus(release.StatusFailed, "interrupted; recovered by linkerd-inject-policy bootstrap")
		if err := ac.Releases.Update(last); err != nil {
			return helmOutcome{}, fmt.Errorf("recover interrupted release %s/%s: %w", r.namespace, r.name, err)
		}
	}

	// Render what an upgrade would deploy, without deploying it.
	preview := action.NewUpgrade(ac)
	preview.Namespace = r.namespace
	preview.DryRun = true
	rendered, err := preview.RunWithContext(ctx, r.name, r.chart, r.values)
	if err != nil {
		return helmOutcome{}, fmt.Errorf("render release %s/%s: %w", r.namespace, r.name, err)
	}
	if last.Info.Status == release.StatusDeployed && sameRelease(last, rendered, r.chart, r.values) {
		return helmOutcome{action: "unchanged", revision: last.Version, release: last}, nil
	}

	up := action.NewUpgrade(ac)
	up.Namespace = r.namespace
	up.Timeout = timeout
	// Keep a few revisions for `helm rollback`, not an unbounded pile.
	up.MaxHistory = 10
	rel, err := up.RunWithContext(ctx, r.name, r.chart, r.values)
	if err != nil {
		return helmOutcome{}, fmt.Errorf("upgrade release %s/%s: %w", r.namespace, r.name, err)
	}
	return helmOutcome{action: "upgraded", revision: rel.Version, release: rel}, nil
}

// sameRelease reports whether deploying ch with vals would change nothing.
// The rendered manifest is the first test. Charts that generate secrets in
// their templates (Linkerd's control plane makes its webhooks' certificates
// with genCA unless told otherwise) render differently every time, so
// identical chart content and values also count as unchanged.
func sameRelease(deployed, rendered *release.Release, ch *chart.Chart, vals map[string]any) bool {
	if !sameValues(deployed.Config, vals) {
		return false
	}
	if deployed.Manifest == rendered.Manifest {
		return true
	}
	return deployed.Chart != nil && chartDigest(deployed.Chart) == chartDigest(ch)
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

// chartDigest hashes everything of a chart that can change what it renders.
func chartDigest(ch *chart.Chart) string {
	h := sha256.New()
	var walk func(c *chart.Chart)
	walk = func(c *chart.Chart) {
		meta, _ := json.Marshal(c.Metadata)
		vals, _ := json.Marshal(c.Values)
		fmt.Fprintf(h, "chart %s\nvalues %s\n", meta, vals)
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
// Kubernetes version and API versions when known, and writes every manifest (CRDs and hooks
// included) to w.
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
	manifest := strings.TrimSpace(rel.Manifest)
	if manifest != "" {
		if !strings.HasPrefix(manifest, "---") {
			fmt.Fprintln(w, "---")
		}
		fmt.Fprintln(w, manifest)
	}
	for _, hook := range rel.Hooks {
		fmt.Fprintf(w, "---\n# Source: %s (hook %v)\n%s\n", hook.Path, hook.Events, strings.TrimSpace(hook.Manifest))
	}
	return nil
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
	return true, nil
}
