package bootstrap

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/ignore"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/deploy"
)

// dirSource loads DIR/NAME (an unpacked chart) or DIR/NAME-VERSION.tgz, as
// `helm pull` names them. With a version it takes exactly that version;
// without, the newest by semantic version (never the last in name order:
// 2026.9.1 sorts after 2026.10.1).
type dirSource struct{ dir, version string }

func (s dirSource) String() string { return s.dir }

// candidate is one copy of a chart in the directory.
type candidate struct {
	path    string
	version string
	ch      *chart.Chart // set for the unpacked chart, which has to be loaded to know its version
}

func (s dirSource) Load(name string) (*chart.Chart, error) {
	var cands []candidate
	unpacked := filepath.Join(s.dir, name)
	if st, err := os.Stat(unpacked); err == nil && st.IsDir() {
		ch, err := loader.Load(unpacked)
		if err != nil {
			return nil, &Error{Problem: fmt.Sprintf("load chart %s", unpacked), Err: err, Fix: "check it is a valid Helm chart"}
		}
		cands = append(cands, candidate{path: unpacked, version: ch.Metadata.Version, ch: ch})
	}
	matches, _ := filepath.Glob(filepath.Join(s.dir, name+"-*.tgz"))
	for _, m := range matches {
		v := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m), name+"-"), ".tgz")
		if _, err := semver.NewVersion(v); err != nil {
			continue // another chart whose name starts with ours
		}
		cands = append(cands, candidate{path: m, version: v})
	}
	if len(cands) == 0 {
		return nil, &Error{
			Problem: fmt.Sprintf("chart %s not found in --chart-dir %s", name, s.dir),
			Fix:     fmt.Sprintf("put the unpacked chart in %s (helm pull --untar) or its .tgz next to it", unpacked),
		}
	}
	var pick *candidate
	if s.version != "" {
		for i := range cands {
			if cands[i].version == s.version {
				pick = &cands[i]
				break
			}
		}
		if pick == nil {
			var have []string
			for _, c := range cands {
				have = append(have, c.version)
			}
			sortVersions(have)
			return nil, &Error{
				Problem: fmt.Sprintf("chart %s version %s not in --chart-dir %s (it has %s)", name, s.version, s.dir, strings.Join(have, ", ")),
				Fix:     fmt.Sprintf("helm pull linkerd-edge/%s --version %s into it, or pass one of those to --version", name, s.version),
			}
		}
	} else {
		sort.SliceStable(cands, func(i, j int) bool { return versionLess(cands[i].version, cands[j].version) })
		pick = &cands[len(cands)-1]
	}
	ch := pick.ch
	if ch == nil {
		var err error
		if ch, err = loader.Load(pick.path); err != nil {
			return nil, &Error{Problem: fmt.Sprintf("load chart %s", pick.path), Err: err, Fix: "check it is a valid Helm chart"}
		}
	}
	if err := checkDependencies(ch, pick.path); err != nil {
		return nil, err
	}
	return ch, nil
}

func versionLess(a, b string) bool {
	va, errA := semver.NewVersion(a)
	vb, errB := semver.NewVersion(b)
	if errA != nil || errB != nil {
		return a < b
	}
	return va.LessThan(vb)
}

func sortVersions(vs []string) {
	sort.SliceStable(vs, func(i, j int) bool { return versionLess(vs[i], vs[j]) })
}

// checkDependencies refuses a chart whose Chart.yaml lists a subchart that
// is not in its charts/ directory: a chart from a source checkout before
// `helm dependency build`. Helm would only fail at render time, and with
// a message about the template, not the missing subchart.
func checkDependencies(ch *chart.Chart, path string) error {
	have := map[string]bool{}
	for _, d := range ch.Dependencies() {
		have[d.Name()] = true
	}
	var missing []string
	for _, d := range ch.Metadata.Dependencies {
		if !have[d.Name] {
			missing = append(missing, d.Name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return &Error{
		Problem: fmt.Sprintf("chart %s at %s needs subchart %s, which is not in its charts/ directory", ch.Name(), path, strings.Join(missing, ", ")),
		Fix:     fmt.Sprintf("run helm dependency build %s, or use the packaged chart from Linkerd's Helm repository (helm pull)", path),
	}
}

// embeddedWebhookChart loads this webhook's chart from the binary. A
// binary with a release version (semantic) installs its chart as that
// version, so `helm list` shows which binary installed it.
func embeddedWebhookChart(binaryVersion string) (*chart.Chart, error) {
	fsys := deploy.ChartFS()
	rules := ignore.Empty()
	if data, err := fs.ReadFile(fsys, ignore.HelmIgnore); err == nil {
		if rules, err = ignore.Parse(bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("embedded webhook chart: %s: %w", ignore.HelmIgnore, err)
		}
	}
	// As loader.LoadDir does for a chart directory.
	rules.AddDefaults()
	var files []*loader.BufferedFile
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if rules.Ignore(path, info) {
			return nil
		}
		data, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: path, Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded webhook chart: %w", err)
	}
	ch, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("embedded webhook chart: %w", err)
	}
	if v, err := semver.StrictNewVersion(strings.TrimPrefix(binaryVersion, "v")); err == nil {
		ch.Metadata.Version = v.String()
		ch.Metadata.AppVersion = binaryVersion
	}
	return ch, nil
}

// linkerdVersion is the Linkerd release a control-plane chart installs:
// its values' linkerdVersion (what linkerd-config records), else its
// appVersion.
func linkerdVersion(ch *chart.Chart) string {
	if ch == nil {
		return ""
	}
	if v, ok := ch.Values["linkerdVersion"].(string); ok && v != "" {
		return v
	}
	return ch.Metadata.AppVersion
}
